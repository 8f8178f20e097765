"""The blockwise stages of the segmentation service, over volumes read and written by slices.

Transport-free: every stage takes sliceable inputs (numpy arrays, Zarr arrays opened on the
object store, :class:`~services.common.volumes.Region`) and writes by slice assignment
into ``out`` (a numpy array, or an :class:`~services.common.store.ArrayWriter` for a volume
larger than memory). Blocks come from :func:`~services.segmentation.core.blockwise.plan_blocks`
and run through the core's :func:`~services.segmentation.core.blockwise.run_blocks`: a block
that raises is retried and, if it keeps failing, fails the whole stage with a
:class:`~services.segmentation.core.blockwise.BlockFailedError` naming it; bad input (a
``ValueError``) fails at once. Axes are ``(z, y, x)``; affinities are ``(channel, z, y, x)``.

The stages, in the order the service runs them (``Segment`` runs them all in one call over all
blocks; ``SegmentBlocks`` runs stage 1 or 2 for some blocks, each block's core written to an
array of its own through a :class:`BlockSink`, and ``MergeSegmentBlocks`` reads those through a
:class:`BlockMosaic` as one volume and runs stages 3 to 5, so a volume spread over replicas is
segmented by the same functions, to the same result):

1. boundaries: :func:`predict_boundaries` (a trained U-Net, each block predicted with its halo of
   context) or :func:`classical_boundaries` (1 - Gaussian-smoothed intensity);
2. :func:`watershed_fragments`: seeded watershed per block (ids unique over the volume), the
   fragments that block faces cut stitched (in one call by the core; over replicas each block
   keeps its labels where it meets its neighbours, and :func:`stitch_pairs` joins them);
3. :func:`fragment_graph` (one global region adjacency graph), then the core's ``agglomerate``;
4. per threshold, :func:`merge_small_segments` on the graph (no voxel read) and
   :func:`write_segmentation`: labels written block by block, with the segment table and the
   contingency table against ground truth accumulated on the way;
5. :func:`scores_from_contingency`: VOI, adapted Rand and CREMI from the merged table.

:class:`StageMeter` carries progress (each report is a cancellation checkpoint) and per-block
measurements out of the stages, so they stay free of any metrics library.

Example
-------
>>> from services.segmentation.core import plan_blocks, synthetic_em_volume
>>> raw, truth = synthetic_em_volume((16, 32, 32), n_neurites=5, seed=0)
>>> blocks = plan_blocks(raw.shape, (8, 16, 16), halo=(2, 4, 4))
>>> boundaries = np.zeros(raw.shape, np.float32)
>>> classical_boundaries(raw, boundaries, blocks, sigma_voxels=(1.0, 1.0, 1.0))
>>> fragments = np.zeros(raw.shape, np.uint64)
>>> ids = watershed_fragments(boundaries, fragments, blocks)
>>> tree = agglomerate(None, fragment_graph(fragments, boundaries, blocks), fragment_ids=ids)
>>> labels = np.zeros(raw.shape, np.uint64)
>>> table, contingency = write_segmentation(fragments, tree, tree.segment_of(0.5), blocks, labels,
...                                         ground_truth=truth)
>>> int(table["voxel_count"].sum()) == raw.size, scores_from_contingency(*contingency).cremi_score < 1.0
(True, True)
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import numpy as np
from scipy import ndimage, sparse

from .core.blockwise import (Block, blockwise_fragments, blockwise_region_adjacency_graph, join_fragments,
                             match_overlapping_fragments, plan_blocks, run_blocks, stitching_boxes)
from .core.metrics import SegmentationScores, contingency_table, scores_from_table
from .core.segments import SegmentTableAccumulator
from .core.training import normalize_intensity, predict_affinities
from .core.watershed import MergeTree, RegionAdjacencyGraph, affinities_to_boundaries, agglomerate, seeded_watershed
from .requests import RequestError, check_finite
from services.common.store import normalize_selection

__all__ = ["StageMeter", "predict_boundaries", "classical_boundaries", "smoothing_blocks", "watershed_fragments",
           "fragment_sizes", "fragment_graph", "merge_small_segments", "write_segmentation", "score_volumes",
           "merge_contingency", "scores_from_contingency", "agglomerate", "MAX_ATTEMPTS", "BlockMosaic", "BlockSink",
           "fragment_capacity", "block_fragments", "check_block_indices", "stitch_pairs", "rename_fragments",
           "stitching_labels", "stitched_fragments"]

#: attempts per block before the stage fails (blocks are the unit of retry)
MAX_ATTEMPTS = 3


@dataclass
class StageMeter:
    """Progress and measurements of the blocks of one stage.

    Attributes
    ----------
    stage : str
        Name of the stage ("predict", "watershed", "agglomerate", ...).
    n_blocks : int
    report : callable, optional
        ``report(fraction, message)`` with the fraction of the stage done, when a block starts;
        it may raise (a cancelled call) to stop the stage.
    observe : callable, optional
        ``observe(stage, voxels, seconds)`` when a block finished: its core voxels and duration.
    track : callable, optional
        A context manager factory held while a block runs (e.g. a gauge of blocks in progress).
    """

    stage: str
    n_blocks: int
    report: Callable[[float, str], None] | None = None
    observe: Callable[[str, int, float], None] | None = None
    track: Callable[[], ContextManager] | None = None

    @contextlib.contextmanager
    def block(self, block: Block):
        if self.report is not None:
            self.report(block.linear_index / max(self.n_blocks, 1),
                        f"{self.stage}: block {block.linear_index + 1} of {self.n_blocks}, {block.describe()}")
        with self.track() if self.track is not None else contextlib.nullcontext():
            started = time.perf_counter()
            yield
        if self.observe is not None:
            self.observe(self.stage, math.prod(block.shape), time.perf_counter() - started)


def _meter(meter: StageMeter | None, stage: str, blocks) -> StageMeter:
    return meter if meter is not None else StageMeter(stage, len(blocks))


def _raw_block(raw, block: Block) -> np.ndarray:
    """raw with the block's halo as float32 in [0, 1]; bad intensities are bad input named ``raw``."""
    data = np.asarray(raw[block.halo])
    check_finite(data, "raw", f"block {block.describe()}")
    try:
        return normalize_intensity(data, name=f"raw (block {block.describe()})")
    except ValueError as exc:
        raise RequestError(str(exc), field="raw", reason="INVALID_INTENSITIES") from None


# ------------------------------------------------------------------------------------------------
# 1. boundaries


def predict_boundaries(model, raw, out, blocks, *, patch_shape=None, overlap=None, device=None,
                       meter: StageMeter | None = None, max_attempts: int = MAX_ATTEMPTS) -> None:
    """The model's sigmoid outputs, block by block: each block is predicted with its halo of
    context (blended sliding windows inside it) and its core written to ``out``.

    ``out`` is ``(3, z, y, x)`` for an affinity model, ``(z, y, x)`` for a boundary model.
    """
    meter = _meter(meter, "predict", blocks)
    channels = model.config.out_channels

    def run(block: Block) -> None:
        with meter.block(block):
            data = _raw_block(raw, block)
            predicted = predict_affinities(model, data, patch_shape=patch_shape, overlap=overlap, device=device)
            core = (slice(None),) + block.core_in_halo
            if channels == 1:
                out[block.core] = predicted[0][block.core_in_halo]
            else:
                out[(slice(None),) + block.core] = predicted[core]

    run_blocks(blocks, run, max_attempts=max_attempts)


def smoothing_blocks(shape, block_shape, sigma_voxels) -> list[Block]:
    """Blocks whose halo is the Gaussian's radius (clipped to the block), so that smoothing block
    by block equals smoothing the whole volume wherever the block is at least that large."""
    radius = tuple(min(int(4.0 * s + 0.5), b) for s, b in zip(sigma_voxels, block_shape))
    return plan_blocks(shape, block_shape, radius)


def classical_boundaries(raw, out, blocks, *, sigma_voxels, bright_membranes=False,
                         meter: StageMeter | None = None, max_attempts: int = MAX_ATTEMPTS) -> None:
    """``1 - gaussian(raw)`` (or ``gaussian(raw)`` with bright membranes), intensities in [0, 1].

    Membranes are dark in EM, so the smoothed darkness is a boundary map that needs no training.
    ``blocks`` should come from :func:`smoothing_blocks` for an exact result.
    """
    meter = _meter(meter, "predict", blocks)
    sigma = tuple(float(s) for s in sigma_voxels)

    def run(block: Block) -> None:
        with meter.block(block):
            smoothed = ndimage.gaussian_filter(_raw_block(raw, block), sigma, mode="reflect")
            boundaries = smoothed if bright_membranes else 1.0 - smoothed
            out[block.core] = np.clip(boundaries[block.core_in_halo], 0.0, 1.0).astype(np.float32)

    run_blocks(blocks, run, max_attempts=max_attempts)


# ------------------------------------------------------------------------------------------------
# 2. fragments


def _key(slices) -> tuple:
    return tuple((s.start, s.stop) if isinstance(s, slice) else s for s in slices)


class _RecordingReader:
    """A sliceable view that remembers the last selection read (to tell which block is running)."""

    def __init__(self, array) -> None:
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.last = None

    def __getitem__(self, selection):
        self.last = selection
        return self.array[selection]


def watershed_fragments(values, out, blocks, *, boundary_threshold=0.5, min_seed_distance=2, per_section=False,
                        voxel_size=None, affinity_reduction="min", max_seed_depth=None,
                        meter: StageMeter | None = None, max_attempts: int = MAX_ATTEMPTS,
                        on_labels: Callable[[Block, np.ndarray], None] | None = None) -> np.ndarray:
    """Seeded-watershed fragments of every block, with ids unique over the volume; the sorted ids.

    ``values`` are affinities ``(3, z, y, x)`` (turned into a boundary map per block with
    ``affinity_reduction``) or a boundary map ``(z, y, x)``. ``max_seed_depth`` caps the seeds'
    distance transform (``seeded_watershed``). The fragments are not stitched here:
    ``on_labels(block, labels)`` hands out each block's watershed labels over its whole read,
    from which :func:`stitched_fragments` (one call) and :func:`block_fragments` (SegmentBlocks)
    keep what :func:`stitch_pairs` compares.
    """
    meter = _meter(meter, "watershed", blocks)
    reader = _RecordingReader(values)
    by_halo = {_key(block.halo): block for block in blocks}

    def fragment(data: np.ndarray) -> np.ndarray:
        block = by_halo.get(_key(reader.last[1:])) if reader.last else None
        with meter.block(block) if block is not None else contextlib.nullcontext():
            boundaries = affinities_to_boundaries(data, reduce=affinity_reduction) if data.ndim == 4 else data
            labels = seeded_watershed(boundaries, min_seed_distance=min_seed_distance, threshold=boundary_threshold,
                                      per_section=per_section, voxel_size=voxel_size, max_seed_depth=max_seed_depth)
            if on_labels is not None and block is not None:
                on_labels(block, labels)
            return labels

    _, ids = blockwise_fragments(reader, fragment, blocks, out=out, max_attempts=max_attempts)
    return ids


def fragment_sizes(fragments, blocks, *, report: Callable[[float, str], None] | None = None,
                   max_attempts: int = MAX_ATTEMPTS) -> tuple[np.ndarray, np.ndarray]:
    """Every nonzero fragment id (sorted) and its voxel count, block by block."""
    def run(block: Block):
        if report is not None:
            report(block.linear_index / len(blocks), f"counting fragments: block {block.linear_index + 1}")
        ids, counts = np.unique(np.asarray(fragments[block.core]), return_counts=True)
        keep = ids != 0
        return ids[keep].astype(np.uint64), counts[keep]

    parts = run_blocks(blocks, run, max_attempts=max_attempts)
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    ids = np.concatenate([p[0] for p in parts])
    unique, inverse = np.unique(ids, return_inverse=True)
    sizes = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]), minlength=unique.size)
    return unique, sizes.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# 3. the graph; 4. the cut


class _CountingReader(_RecordingReader):
    """Reports progress each time a block is read (the graph pass reads each block once)."""

    def __init__(self, array, n_blocks: int, report: Callable[[float, str], None] | None) -> None:
        super().__init__(array)
        self.n_blocks, self.report, self.reads = n_blocks, report, 0

    def __getitem__(self, selection):
        if self.report is not None:
            self.report(min(self.reads / self.n_blocks, 1.0), f"graph: block {min(self.reads + 1, self.n_blocks)} "
                        f"of {self.n_blocks}")
        self.reads += 1
        return super().__getitem__(selection)


def fragment_graph(fragments, values, blocks, *, report: Callable[[float, str], None] | None = None,
                   max_attempts: int = MAX_ATTEMPTS) -> RegionAdjacencyGraph:
    """The global region adjacency graph of the fragments, with affinities or boundaries as weights."""
    reader = _CountingReader(fragments, len(blocks), report)
    return blockwise_region_adjacency_graph(reader, values, blocks, max_attempts=max_attempts)


def merge_small_segments(segment_of, fragment_sizes, graph: RegionAdjacencyGraph, fragment_ids,
                         min_size: int) -> np.ndarray:
    """Segment ids of the fragments after merging every segment below ``min_size`` voxels.

    The policy of the core's ``remove_small_fragments``, on the graph instead of the voxels (so
    a volume of any size costs nothing to read): a small segment joins the touching segment it
    shares the most faces with (ties: the larger neighbour, then the lower id), repeatedly
    until every segment that touches another is large enough; small segments touching none
    become 0 (background). Surviving segments are renumbered ``1 .. n`` in the order of their
    first fragment.

    Parameters
    ----------
    segment_of : ndarray of uint64, shape (n_fragments,)
        Segment of each fragment of ``fragment_ids`` (``MergeTree.segment_of``), ``1 .. n``.
    fragment_sizes : ndarray of int, shape (n_fragments,)
        Voxels of each fragment.
    graph : RegionAdjacencyGraph
        The fragments' graph; its ``count`` is the number of shared faces.
    fragment_ids : ndarray of uint64, sorted
    min_size : int

    Example
    -------
    >>> from services.segmentation.core import region_adjacency_graph
    >>> fragments = np.array([[[1, 1, 1, 2, 3, 3, 3, 3, 0, 4]]], np.uint64)
    >>> ids, sizes = np.array([1, 2, 3, 4], np.uint64), np.array([3, 1, 4, 1])
    >>> merge_small_segments(np.array([1, 2, 3, 4], np.uint64), sizes, region_adjacency_graph(fragments), ids, 2)
    array([1, 2, 2, 0], dtype=uint64)
    """
    segment_of = np.asarray(segment_of, dtype=np.int64)
    fragment_sizes = np.asarray(fragment_sizes, dtype=np.int64)
    if segment_of.size == 0 or min_size <= 1:
        return segment_of.astype(np.uint64)
    n = int(segment_of.max()) + 1                                # node 0 is the background
    base_size = np.bincount(segment_of, weights=fragment_sizes, minlength=n).astype(np.int64)
    if len(graph):
        su = segment_of[np.searchsorted(fragment_ids, graph.u)]
        sv = segment_of[np.searchsorted(fragment_ids, graph.v)]
        faces = np.asarray(graph.count, dtype=np.int64)
    else:
        su = sv = faces = np.zeros(0, np.int64)
    current = np.arange(n)                                       # current segment of each original one
    while True:
        size = np.bincount(current, weights=base_size, minlength=n).astype(np.int64)
        alive = np.zeros(n, bool)
        alive[current[1:]] = True
        alive[0] = False
        small = alive & (size < min_size)
        if not small.any():
            break
        a, b = current[su], current[sv]
        keep = (a != b) & (a != 0) & (b != 0)
        a, b, c = a[keep], b[keep], faces[keep]
        if a.size:
            pairs = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
            contact = np.bincount(pairs[1], weights=c).astype(np.int64)
            lo, hi = pairs[0] // n, pairs[0] % n
            src, dst, cnt = np.concatenate([lo, hi]), np.concatenate([hi, lo]), np.concatenate([contact, contact])
            pick = small[src]
            src, dst, cnt = src[pick], dst[pick], cnt[pick]
        else:
            src = dst = cnt = np.zeros(0, np.int64)
        if src.size == 0:                                        # the small ones left touch nothing
            current = np.where(small[current], 0, current)
            break
        order = np.lexsort((dst, -size[dst], -cnt, src))
        src, dst = src[order], dst[order]
        first = np.r_[True, src[1:] != src[:-1]]
        src, dst = src[first], dst[first]
        joined = sparse.coo_array((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
        _, component = sparse.csgraph.connected_components(joined, directed=False)
        by_size = np.lexsort((np.arange(n), -size))              # largest first, then lowest id
        groups, first_member = np.unique(component[by_size], return_index=True)
        keeper = np.empty(groups.size, np.int64)
        keeper[groups] = by_size[first_member]
        current = np.where(current == 0, 0, keeper[component[current]])
    final = current[segment_of]
    survivors = np.unique(final[final != 0])
    out = np.zeros(final.size, np.uint64)
    out[final != 0] = np.searchsorted(survivors, final[final != 0]) + 1
    return out


def write_segmentation(fragments, tree: MergeTree, segment_ids, blocks, out, *, ground_truth=None,
                       voxel_size=(1.0, 1.0, 1.0), meter: StageMeter | None = None,
                       max_attempts: int = MAX_ATTEMPTS):
    """Labels of one cut of the merge tree, written block by block; the segment table and, with
    ground truth, the contingency table, accumulated on the way.

    ``out`` may be None when the labels are already stored (the tables are still computed).

    Returns
    -------
    table : dict of str to ndarray
        The core's segment table (:data:`~services.segmentation.core.segments.SEGMENT_TABLE_COLUMNS`).
    contingency : (seg_ids, gt_ids, counts) or None
        The merged sparse contingency table against ``ground_truth``.
    """
    meter = _meter(meter, "agglomerate", blocks)
    table = SegmentTableAccumulator(voxel_size=voxel_size)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def run(block: Block) -> None:
        with meter.block(block):
            labels = tree.map_fragments(np.asarray(fragments[block.core]), segment_ids)
            truth = None
            if ground_truth is not None:
                truth = np.asarray(ground_truth[block.core])
                if np.issubdtype(truth.dtype, np.signedinteger) and truth.size and truth.min() < 0:
                    raise RequestError(f"ground_truth holds negative labels in block {block.describe()}",
                                       field="ground_truth")
            if out is not None:
                out[block.core] = labels
            # accumulate last: a block that failed above is retried without counting twice
            table.add(labels, offset=tuple(s.start for s in block.core))
            if truth is not None:
                parts.append(contingency_table(labels, truth))

    run_blocks(blocks, run, max_attempts=max_attempts)
    return table.table(), (merge_contingency(parts) if ground_truth is not None else None)


# ------------------------------------------------------------------------------------------------
# 5. scores


def merge_contingency(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sparse contingency table from per-block ones: counts of equal (segment, truth) pairs summed."""
    parts = list(parts)
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64)
    seg = np.concatenate([p[0] for p in parts]).astype(np.uint64)
    gt = np.concatenate([p[1] for p in parts]).astype(np.uint64)
    counts = np.concatenate([p[2] for p in parts]).astype(np.int64)
    if seg.size == 0:
        return seg, gt, counts
    order = np.lexsort((gt, seg))
    seg, gt, counts = seg[order], gt[order], counts[order]
    starts = np.flatnonzero(np.r_[True, (seg[1:] != seg[:-1]) | (gt[1:] != gt[:-1])])
    return seg[starts], gt[starts], np.add.reduceat(counts, starts)


def scores_from_contingency(seg_ids, gt_ids, counts) -> SegmentationScores:
    """The core's scores from a (merged) sparse contingency table; VOI in bits."""
    if int(np.sum(counts)) == 0:
        raise RequestError("no voxel to score: ground_truth is 0 (unlabelled) everywhere", field="ground_truth")
    return scores_from_table(seg_ids, gt_ids, counts)


def score_volumes(segmentation, ground_truth, blocks, *, report: Callable[[float, str], None] | None = None,
                  max_attempts: int = MAX_ATTEMPTS) -> SegmentationScores:
    """Scores of a segmentation against ground truth, reading both block by block."""
    def run(block: Block):
        if report is not None:
            report(block.linear_index / len(blocks), f"score: block {block.linear_index + 1} of {len(blocks)}")
        seg, gt = np.asarray(segmentation[block.core]), np.asarray(ground_truth[block.core])
        for name, labels in (("segmentation", seg), ("ground_truth", gt)):
            if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
                raise RequestError(f"{name} holds negative labels in block {block.describe()}", field=name)
        return contingency_table(seg, gt)

    return scores_from_contingency(*merge_contingency(run_blocks(blocks, run, max_attempts=max_attempts)))


def stage_bounds(weights: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Each stage's [start, end) of the overall fraction, proportional to its weight."""
    total = sum(weights.values()) or 1.0
    bounds, at = {}, 0.0
    for name, weight in weights.items():
        bounds[name] = (at / total, (at + weight) / total)
        at += weight
    return bounds


def section_indices(depth: int, n: int = 3) -> list[int]:
    """Up to ``n`` z sections spread over the volume (quartiles for 3), for figures."""
    return sorted({int(round(z)) for z in np.linspace(0, depth - 1, n + 2)[1:-1]}) or [0]


def boundary_section(values, z: int) -> np.ndarray:
    """The boundary map of section ``z`` from affinities ``(3, z, y, x)`` or a map ``(z, y, x)``."""
    if len(values.shape) == 3:
        return np.asarray(values[z])
    lo, hi = max(z - 1, 0), min(z + 2, values.shape[1])
    return affinities_to_boundaries(np.asarray(values[:, lo:hi]))[z - lo]


def checkpoint_patch_shape(metadata: dict[str, Any]) -> tuple[int, int, int] | None:
    patch = metadata.get("patch_shape") if isinstance(metadata, dict) else None
    if isinstance(patch, (list, tuple)) and len(patch) == 3 and all(isinstance(p, int) and p > 0 for p in patch):
        return tuple(patch)
    return None


# ------------------------------------------------------------------------------------------------
# blocks stored one array each (SegmentBlocks / MergeSegmentBlocks)


def check_block_indices(indices, n_blocks: int, field: str = "block_indices") -> list[int]:
    """The block numbers asked for, checked: at least one, distinct, each in ``[0, n_blocks)``.

    >>> check_block_indices([2, 0], 4)
    [2, 0]
    >>> check_block_indices([1, 4], 4)
    Traceback (most recent call last):
    ...
    services.common.errors.RequestError: block_indices[1] = 4 is not a block of the tiling, which has 4 blocks (0 .. 3)
    """
    indices = [int(i) for i in indices]
    if not indices:
        raise RequestError(f"{field} is empty: name at least one block (0 .. {n_blocks - 1})", field=field)
    seen: set[int] = set()
    for position, index in enumerate(indices):
        if not 0 <= index < n_blocks:
            raise RequestError(f"{field}[{position}] = {index} is not a block of the tiling, which has {n_blocks} "
                               f"blocks (0 .. {n_blocks - 1})", field=field)
        if index in seen:
            raise RequestError(f"{field}[{position}] = {index} is named twice", field=field)
        seen.add(index)
    return indices


def fragment_capacity(blocks) -> int:
    """Ids per block of the fragments of a tiling: block ``k``'s are ``k * capacity + 1, ...``.

    The voxels of the largest core, as the core's ``blockwise_fragments`` numbers them when it
    runs over the whole tiling; :func:`block_fragments` gives one block the same ids.
    """
    return max(math.prod(b.shape) for b in blocks)


class BlockSink:
    """Where a stage writes one block: ``sink[global selection] = data`` lands in the block's own array.

    The stages write ``out[block.core] = ...`` (with leading channel axes whole); the sink
    subtracts the core's origin, and adds ``id_shift`` to the nonzero values (fragment ids
    renumbered to the whole tiling's, see :func:`block_fragments`).
    """

    def __init__(self, out, block: Block, shape, *, id_shift: int = 0) -> None:
        self.out, self.block, self.id_shift = out, block, np.uint64(id_shift)
        self.shape = tuple(int(n) for n in shape)
        """The whole volume's shape (the stages check that ``out`` fits the volume)."""

    def __setitem__(self, selection, data) -> None:
        items = selection if isinstance(selection, tuple) else (selection,)
        spatial, leading = items[-3:], items[:-3]
        local = []
        for s, c in zip(spatial, self.block.core):
            if not isinstance(s, slice) or s.start < c.start or s.stop > c.stop:
                raise ValueError(f"a write at {spatial} is outside block {self.block.describe()}")
            local.append(slice(s.start - c.start, s.stop - c.start))
        data = np.asarray(data)
        if self.id_shift:
            data = np.where(data > 0, data + self.id_shift, data).astype(data.dtype)
        self.out[tuple(leading) + tuple(local)] = data


class BlockMosaic:
    """One volume made of per-block arrays (each a block's core): read by slices like the whole.

    Parameters
    ----------
    blocks : list of Block
        The tiling; ``arrays[k]`` holds block ``k``'s core.
    arrays : list of sliceable
        Shapes ``leading + block.shape`` (``leading``: channel axes, e.g. ``(3,)`` for affinities).
    dtype : dtype

    Example
    -------
    >>> from services.segmentation.core import plan_blocks
    >>> volume = np.arange(4 * 6 * 6).reshape(4, 6, 6)
    >>> blocks = plan_blocks(volume.shape, (2, 4, 4))
    >>> mosaic = BlockMosaic(blocks, [volume[b.core] for b in blocks], volume.dtype)
    >>> bool(np.array_equal(mosaic[1:3, 2:5, :], volume[1:3, 2:5, :])), mosaic.shape
    (True, (4, 6, 6))
    """

    def __init__(self, blocks, arrays, dtype) -> None:
        blocks, arrays = list(blocks), list(arrays)
        if len(blocks) != len(arrays):
            raise ValueError(f"{len(arrays)} arrays for {len(blocks)} blocks")
        self.blocks, self.arrays = blocks, arrays
        leading = tuple(int(n) for n in arrays[0].shape[:-3])
        self.shape = leading + tuple(max(b.core[axis].stop for b in blocks) for axis in range(3))
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, selection) -> np.ndarray:
        region, out_shape = normalize_selection(selection, self.shape)
        leading, spatial = region[:-3], region[-3:]
        out = np.zeros(tuple(s.stop - s.start for s in region), self.dtype)
        for block, array in zip(self.blocks, self.arrays):
            meet = tuple(slice(max(s.start, c.start), min(s.stop, c.stop)) for s, c in zip(spatial, block.core))
            if any(m.stop <= m.start for m in meet):
                continue
            src = tuple(slice(m.start - c.start, m.stop - c.start) for m, c in zip(meet, block.core))
            dst = tuple(slice(m.start - s.start, m.stop - s.start) for m, s in zip(meet, spatial))
            out[(slice(None),) * len(leading) + dst] = np.asarray(array[tuple(leading) + src])
        return out.reshape(out_shape)

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)


def block_fragments(values, out, blocks, index: int, *, stitching_out=None, meter: StageMeter | None = None,
                    **watershed) -> np.ndarray:
    """The fragments of block ``index`` of the tiling ``blocks``, written to ``out`` (its own array,
    shape ``block.shape``), numbered as :func:`watershed_fragments` over the whole tiling numbers
    them before stitching; the sorted ids.

    ``values`` is the whole volume's boundaries (or affinities), e.g. a :class:`BlockMosaic`: the
    block reads its halo, neighbours' cores included. The core numbers one block's fragments
    ``k * capacity + rank`` with the capacity of the blocks it is given, so the block runs alone
    and its ids are shifted to the whole tiling's capacity (:func:`fragment_capacity`).

    ``stitching_out`` (shape of the block's read, ``block.halo``) receives what stitching needs
    from this block, since its neighbours run elsewhere: its watershed labels in each box of
    ``stitching_boxes`` it shares with a neighbour, numbered as its core (the fragment ids above;
    0 for a fragment seen only in the halo, which the block does not own), 0 elsewhere. These are
    exactly the labels ``blockwise_fragments(stitch=True)`` compares, so :func:`stitch_pairs` over
    every block's finds the pairs the one-call path joins.
    """
    block = blocks[index]
    shift = index * (fragment_capacity(blocks) - math.prod(block.shape))
    shape = tuple(values.shape[-3:])
    sink = BlockSink(out, block, shape, id_shift=shift)
    on_labels = None
    if stitching_out is not None:
        def on_labels(_block: Block, labels: np.ndarray) -> None:
            kept = np.zeros(labels.shape, np.uint64)
            for box, seen in stitching_labels(labels, blocks, index, shape).values():
                kept[_local(box, block.halo)] = seen
            stitching_out[...] = kept

    ids = watershed_fragments(values, sink, [block], meter=meter, on_labels=on_labels, **watershed)
    return ids + np.uint64(shift) if ids.size else ids


def _local(box, read) -> tuple:
    """The slices of ``box`` (volume coordinates) within an array read at ``read``."""
    return tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(box, read))


def stitching_labels(labels: np.ndarray, blocks, index: int, shape) -> dict[int, tuple[tuple, np.ndarray]]:
    """Block ``index``'s watershed ``labels`` (over its read) in each box it shares with a neighbour.

    ``{j: (box, ids)}`` for each neighbour ``j`` of ``stitching_boxes``: the labels numbered as the
    block's core fragments (rank among the core's labels, from 1 when the core holds no
    background, plus ``index * fragment_capacity(blocks)``, as ``blockwise_fragments`` numbers
    them), 0 for a fragment seen only in the halo, which the block does not own.
    """
    block = blocks[index]
    capacity = np.uint64(fragment_capacity(blocks))
    ids = np.unique(labels[block.core_in_halo])
    out = {}
    for j, box in stitching_boxes(blocks, shape).get(index, []):
        seen = labels[_local(box, block.halo)]
        position = np.searchsorted(ids, seen)
        known = (position < ids.size) & (ids[np.minimum(position, ids.size - 1)] == seen) & (seen != 0)
        rank = position.astype(np.uint64) + np.uint64(0 if ids[0] == 0 else 1)
        out[j] = (box, np.where(known, rank + np.uint64(index) * capacity, np.uint64(0)))
    return out


def stitch_pairs(blocks, box_labels: Callable[[int, int, tuple], np.ndarray], shape) -> tuple[np.ndarray, np.ndarray]:
    """Which fragments stitching renames, from every block's labels where it meets its neighbours.

    For each pair of neighbouring blocks ``i < j``, ``box_labels(i, j, box)`` and
    ``box_labels(j, i, box)`` (their :func:`stitching_labels` in the box of ``stitching_boxes``
    they share) are compared by ``match_overlapping_fragments`` (more than half of each other's
    voxels) and all pairs joined by ``join_fragments``: the decisions of
    ``blockwise_fragments(stitch=True)``, made from labels that may have been computed on other
    replicas.

    Returns
    -------
    ids, joined : ndarray of uint64
        The fragments in some stitched pair (sorted) and the id each takes (the lowest of its
        group); every other fragment keeps its id (:func:`rename_fragments`).
    """
    pairs = []
    for i, neighbours in stitching_boxes(blocks, shape).items():
        for j, box in neighbours:
            if i < j:
                pairs.append(match_overlapping_fragments(np.asarray(box_labels(i, j, box)),
                                                         np.asarray(box_labels(j, i, box))))
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.uint64)
    if not pairs.size:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    ids = np.unique(pairs)
    return ids, join_fragments(ids, pairs)


def stitched_fragments(values, out, blocks, scratch, *, meter: StageMeter | None = None,
                       max_attempts: int = MAX_ATTEMPTS, **watershed) -> np.ndarray:
    """:func:`watershed_fragments` over the whole tiling, stitched, into a write-only ``out``; the sorted ids.

    The core's ``blockwise_fragments(stitch=True)`` renames in place, reading ``out`` back, which
    an array being written to the store cannot do; and SegmentBlocks cannot, since its blocks'
    neighbours run elsewhere. So both paths stitch alike: the blocks' fragments go to
    ``scratch`` (a sliceable volume, e.g. a memory-mapped file), each block's
    :func:`stitching_labels` are kept (the halo shells' worth), :func:`stitch_pairs` decides,
    and the fragments are written to ``out`` block by block through :func:`rename_fragments`.
    The result equals ``blockwise_fragments(..., stitch=True)``.
    """
    shape = tuple(values.shape[-3:])
    kept: dict[int, dict] = {}

    def on_labels(block: Block, labels: np.ndarray) -> None:
        kept[block.linear_index] = stitching_labels(labels, blocks, block.linear_index, shape)

    watershed_fragments(values, scratch, blocks, meter=meter, max_attempts=max_attempts, on_labels=on_labels,
                        **watershed)
    ids, joined = stitch_pairs(blocks, lambda i, j, box: kept[i][j][1], shape)
    kept.clear()
    found = []

    def write(block: Block) -> None:
        renamed = rename_fragments(np.asarray(scratch[block.core]), ids, joined)
        out[block.core] = renamed
        found.append(np.unique(renamed[renamed > 0]))

    run_blocks(blocks, write, max_attempts=max_attempts)
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)


def rename_fragments(fragments: np.ndarray, ids: np.ndarray, joined: np.ndarray) -> np.ndarray:
    """``fragments`` with each of ``ids`` replaced by its ``joined`` id (:func:`stitch_pairs`), the rest kept."""
    fragments = np.asarray(fragments)
    if not ids.size:
        return fragments
    position = np.minimum(np.searchsorted(ids, fragments), ids.size - 1)
    return np.where(ids[position] == fragments, joined[position], fragments).astype(fragments.dtype)
