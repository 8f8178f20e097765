"""The contact graph of an EM segmentation, block by block, and the synapse graph of a synapse table.

Axes are always ``(z, y, x)``. Two segments *touch* where a voxel of one shares a face with a
voxel of the other (6-connectivity); the **contact graph** has a node per nonzero label and an
undirected edge per touching pair, weighted by the number of shared voxel faces and by the
physical contact area (each face along z counts ``vy * vx``, along y ``vz * vx``, along x
``vz * vy``, in the units of ``voxel_size`` squared). Label 0 is background: never a node.

The volume is read one block at a time (any object with ``shape``, ``dtype`` and slice reads: a
NumPy array, a Zarr array, :class:`services.common.volumes.Region`), so a segmentation larger
than memory is graphed all the same. Each block is read with one extra voxel on its high side
along every axis, and only the faces between a voxel of the block and its +1 neighbour are
counted there: every face of the volume is counted by exactly one block, so the blockwise graph
is the whole-volume graph whatever the block shape (tested).

A **synapse graph** turns a table of synapses (presynaptic segment, postsynaptic segment,
position) into a directed graph whose edge weight is the number of synapses from one segment
onto another (:func:`synapse_graph`).

Example
-------
>>> labels = np.zeros((1, 3, 4), np.uint64)
>>> labels[0, :, :2] = 5; labels[0, :, 2:] = 9; labels[0, 2, 3] = 0
>>> graph = contact_graph(labels, voxel_size=(40.0, 4.0, 4.0))
>>> graph.node_ids.tolist(), graph.node_voxels.tolist()
([5, 9], [6, 5])
>>> graph.edge_a.tolist(), graph.edge_b.tolist(), graph.faces.tolist(), graph.area.tolist()
([5], [9], [3], [480.0])
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import sparse

__all__ = ["ContactGraph", "contact_graph", "SynapseGraph", "synapse_graph", "DEFAULT_BLOCK_SHAPE"]

#: blocks of (64, 256, 256) uint64 voxels: 32 MiB read at a time, plus the pair arrays
DEFAULT_BLOCK_SHAPE = (64, 256, 256)

ProgressFn = Callable[[int, int], None]


def _check_voxel_size(voxel_size) -> tuple[float, float, float]:
    if voxel_size is None:
        return (1.0, 1.0, 1.0)
    try:
        size = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise ValueError(f"voxel_size must be 3 positive numbers (z, y, x), got {voxel_size!r}") from None
    if len(size) != 3 or not all(math.isfinite(v) and v > 0 for v in size):
        raise ValueError(f"voxel_size must be 3 positive numbers (z, y, x), got {voxel_size!r}")
    return size  # type: ignore[return-value]


def _check_labels(labels: Any) -> None:
    shape = tuple(getattr(labels, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"the segmentation must be a 3-D label volume (z, y, x), got shape {shape}")
    if 0 in shape:
        raise ValueError(f"the segmentation is empty: shape {shape}")
    dtype = np.dtype(labels.dtype)
    if dtype.kind not in "iu" and dtype != np.bool_:
        raise ValueError(f"the segmentation must hold integer labels, got dtype {dtype}")


def _as_labels(block: np.ndarray) -> np.ndarray:
    """A block as uint64 labels; negative labels are refused (they have no uint64 id)."""
    if block.dtype.kind == "i" and block.size and int(block.min()) < 0:
        raise ValueError(f"the segmentation holds negative labels (min {int(block.min())}); ids must be >= 0")
    return block.astype(np.uint64, copy=False)


def _pair_counts(lo: np.ndarray, hi: np.ndarray, weights: np.ndarray | None = None):
    """Unique (lo, hi) pairs with their counts (and summed weights): compact the ids, then one
    int64 key per pair, so the sort is of plain integers rather than of rows."""
    ids, inverse = np.unique(np.concatenate([lo, hi]), return_inverse=True)
    n = np.int64(len(ids))
    keys = inverse[:len(lo)].astype(np.int64) * n + inverse[len(lo):].astype(np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    summed = None
    if weights is not None:
        order = np.argsort(keys, kind="stable")
        summed = np.add.reduceat(weights[order], np.searchsorted(keys[order], unique)) if len(keys) else weights[:0]
    return ids[unique // n], ids[unique % n], counts.astype(np.int64), summed


def _merge_edges(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
    """Sum the per-block (a, b, faces, area) tables into one, sorted by (a, b)."""
    if not parts:
        empty = np.zeros(0, np.uint64)
        return empty, empty, np.zeros(0, np.int64), np.zeros(0, np.float64)
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    faces = np.concatenate([p[2] for p in parts])
    area = np.concatenate([p[3] for p in parts])
    order = np.lexsort((b, a))
    a, b, faces, area = a[order], b[order], faces[order], area[order]
    starts = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]) if len(a) else np.zeros(0, np.intp)
    return a[starts], b[starts], np.add.reduceat(faces, starts), np.add.reduceat(area, starts)


@dataclass(frozen=True)
class ContactGraph:
    """Segments of a label volume and the faces they share.

    Attributes
    ----------
    node_ids : uint64 (n_nodes,)
        Every nonzero label, ascending.
    node_voxels : int64 (n_nodes,)
        Voxels of each label.
    edge_a, edge_b : uint64 (n_edges,)
        The two labels of each touching pair, ``edge_a < edge_b``, sorted by (a, b).
    faces : int64 (n_edges,)
        Voxel faces the pair shares.
    area : float64 (n_edges,)
        Contact area, in the units of ``voxel_size`` squared.
    voxel_size : (float, float, float)
    shape : (int, int, int)
        Shape of the volume.
    """

    node_ids: np.ndarray
    node_voxels: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    faces: np.ndarray
    area: np.ndarray
    voxel_size: tuple[float, float, float]
    shape: tuple[int, int, int]

    @property
    def n_nodes(self) -> int:
        return int(len(self.node_ids))

    @property
    def n_edges(self) -> int:
        return int(len(self.edge_a))

    @property
    def total_faces(self) -> int:
        return int(self.faces.sum())

    def node_index(self, ids: np.ndarray) -> np.ndarray:
        """Positions of labels ``ids`` in :attr:`node_ids` (every id must be a node)."""
        ids = np.asarray(ids, dtype=np.uint64)
        index = np.searchsorted(self.node_ids, ids)
        inside = index < len(self.node_ids)
        if not (inside.all() and np.array_equal(self.node_ids[index[inside]], ids[inside])):
            missing = ids[~inside] if not inside.all() else ids[self.node_ids[index] != ids]
            raise ValueError(f"labels {missing[:5].tolist()} are not segments of this graph")
        return index

    def adjacency(self, *, weight: str = "area") -> sparse.csr_matrix:
        """The symmetric (n_nodes, n_nodes) adjacency in :attr:`node_ids` order; ``weight`` is
        ``"area"``, ``"faces"`` or ``"binary"``."""
        values = {"area": self.area, "faces": self.faces.astype(np.float64),
                  "binary": np.ones(self.n_edges)}.get(weight)
        if values is None:
            raise ValueError(f"weight must be 'area', 'faces' or 'binary', got {weight!r}")
        i, j = self.node_index(self.edge_a), self.node_index(self.edge_b)
        n = self.n_nodes
        return sparse.coo_matrix((np.r_[values, values], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()


def _blocks(shape: tuple[int, ...], block_shape: tuple[int, ...]):
    starts = [range(0, s, b) for s, b in zip(shape, block_shape)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, min(c + b, s)) for c, b, s in zip(corner, block_shape, shape))


def contact_graph(labels: Any, *, voxel_size=None, block_shape=None,
                  progress: ProgressFn | None = None) -> ContactGraph:
    """The contact graph of a label volume: segments as nodes, shared voxel faces as edges.

    Parameters
    ----------
    labels : array-like (z, y, x) of integers
        Any object with ``shape``, ``dtype`` and slice reads; read one block at a time.
    voxel_size : 3 positive numbers (z, y, x), optional
        Physical voxel size (e.g. nm); the contact area is in its units squared. Default 1.
    block_shape : 3 positive ints, optional
        Voxels read at a time (plus one on the high side of each axis); default
        :data:`DEFAULT_BLOCK_SHAPE`. The result does not depend on it.
    progress : callable ``(blocks_done, n_blocks)``, optional
        Called after each block; may raise to stop.

    Returns
    -------
    ContactGraph

    Raises
    ------
    ValueError
        For a volume that is not 3-D, is empty, or does not hold integers (naming the dtype),
        negative labels, a bad ``voxel_size`` or ``block_shape``.

    Example
    -------
    Two cubes of 2 voxels side by side share a 2 x 2 face:

    >>> labels = np.zeros((2, 2, 4), np.int32); labels[:, :, :2] = 1; labels[:, :, 2:] = 2
    >>> g = contact_graph(labels, block_shape=(1, 1, 3))       # blocks do not change the answer
    >>> g.n_nodes, g.n_edges, g.faces.tolist(), g.node_voxels.tolist()
    (2, 1, [4], [8, 8])
    """
    _check_labels(labels)
    spacing = _check_voxel_size(voxel_size)
    shape = tuple(int(s) for s in labels.shape)
    block = tuple(DEFAULT_BLOCK_SHAPE if block_shape is None else block_shape)
    if len(block) != 3 or not all(isinstance(b, (int, np.integer)) and b >= 1 for b in block):
        raise ValueError(f"block_shape must be 3 integers >= 1 (z, y, x), got {block_shape!r}")
    # area of one face normal to z, y, x
    face_area = (spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1])
    slices = list(_blocks(shape, block))
    node_parts: list[tuple[np.ndarray, np.ndarray]] = []
    edge_parts = []
    for done, core in enumerate(slices, start=1):
        extended = tuple(slice(s.start, min(s.stop + 1, n)) for s, n in zip(core, shape))
        data = _as_labels(np.asarray(labels[extended]))
        size = tuple(s.stop - s.start for s in core)
        inner = data[:size[0], :size[1], :size[2]]
        ids, counts = np.unique(inner, return_counts=True)
        keep = ids != 0
        node_parts.append((ids[keep], counts[keep]))
        los, his, weights = [], [], []
        for axis in range(3):
            # faces between voxel i (in this block) and i + 1 (in it or in the extra layer)
            n_pairs = min(size[axis], data.shape[axis] - 1)
            if n_pairs <= 0:
                continue
            window = [slice(0, s) for s in size]
            window[axis] = slice(0, n_pairs)
            first = inner[tuple(window)]
            window[axis] = slice(1, n_pairs + 1)
            second = data[tuple(window)]
            differ = (first != second) & (first != 0) & (second != 0)
            a, b = first[differ], second[differ]
            los.append(np.minimum(a, b))
            his.append(np.maximum(a, b))
            weights.append(np.full(len(a), face_area[axis]))
        if los and sum(len(x) for x in los):
            a, b, faces, area = _pair_counts(np.concatenate(los), np.concatenate(his), np.concatenate(weights))
            edge_parts.append((a, b, faces, area))
        if progress is not None:
            progress(done, len(slices))
    if node_parts:
        all_ids = np.concatenate([p[0] for p in node_parts])
        all_counts = np.concatenate([p[1] for p in node_parts]).astype(np.int64)
        node_ids, inverse = np.unique(all_ids, return_inverse=True)
        node_voxels = np.bincount(inverse, weights=all_counts, minlength=len(node_ids)).astype(np.int64)
    else:
        node_ids, node_voxels = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    a, b, faces, area = _merge_edges(edge_parts)
    return ContactGraph(node_ids=node_ids.astype(np.uint64), node_voxels=node_voxels, edge_a=a.astype(np.uint64),
                        edge_b=b.astype(np.uint64), faces=faces.astype(np.int64), area=area.astype(np.float64),
                        voxel_size=spacing, shape=shape)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SynapseGraph:
    """A directed graph of synapses between segments.

    Attributes
    ----------
    pre, post : uint64 (n_edges,)
        Presynaptic and postsynaptic segment of each edge, sorted by (pre, post).
    synapses : int64 (n_edges,)
        Synapses from ``pre`` onto ``post``.
    weight : float64 (n_edges,)
        Summed synapse weights (the synapse count when the table has no weights).
    node_ids : uint64 (n_nodes,)
        Every segment that has a synapse, ascending.
    """

    pre: np.ndarray
    post: np.ndarray
    synapses: np.ndarray
    weight: np.ndarray
    node_ids: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(len(self.node_ids))

    @property
    def n_edges(self) -> int:
        return int(len(self.pre))

    def adjacency(self, *, weight: str = "synapses") -> sparse.csr_matrix:
        """The directed (n_nodes, n_nodes) adjacency in :attr:`node_ids` order, row = pre;
        ``weight`` is ``"synapses"``, ``"weight"`` or ``"binary"``."""
        values = {"synapses": self.synapses.astype(np.float64), "weight": self.weight,
                  "binary": np.ones(self.n_edges)}.get(weight)
        if values is None:
            raise ValueError(f"weight must be 'synapses', 'weight' or 'binary', got {weight!r}")
        i, j = np.searchsorted(self.node_ids, self.pre), np.searchsorted(self.node_ids, self.post)
        return sparse.coo_matrix((values, (i, j)), shape=(self.n_nodes, self.n_nodes)).tocsr()


def _id_column(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D column, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values; segment ids are integers")
        if not np.array_equal(array, np.round(array)):
            raise ValueError(f"{name} holds non-integer values; segment ids are integers")
    elif array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer segment ids, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} holds negative ids (min {array.min()}); segment ids are >= 0")
    return array.astype(np.uint64)


def synapse_graph(pre: Any, post: Any, *, positions: Any = None, weights: Any = None, shape=None,
                  drop_background: bool = True) -> SynapseGraph:
    """The directed synapse graph of a synapse table.

    Parameters
    ----------
    pre, post : 1-D integer arrays of equal length
        Presynaptic and postsynaptic segment id of each synapse.
    positions : (n, 3) array (z, y, x) in voxels, optional
        Checked to be finite and, with ``shape``, inside the volume.
    weights : 1-D array, optional
        A weight per synapse (e.g. detection confidence or cleft size), finite, >= 0.
    shape : 3 ints, optional
        The segmentation's shape, to check ``positions`` against.
    drop_background : bool
        Leave out synapses with a side on label 0 (unsegmented), the usual choice.

    Raises
    ------
    ValueError
        For columns of different lengths, non-integer or negative ids, positions that are not
        finite or lie outside the volume, negative or non-finite weights.

    Example
    -------
    >>> g = synapse_graph([1, 1, 2, 1], [2, 2, 1, 3])
    >>> g.pre.tolist(), g.post.tolist(), g.synapses.tolist(), g.node_ids.tolist()
    ([1, 1, 2], [2, 3, 1], [2, 1, 1], [1, 2, 3])
    """
    pre_ids, post_ids = _id_column(pre, "pre"), _id_column(post, "post")
    if len(pre_ids) != len(post_ids):
        raise ValueError(f"pre and post must have the same length, got {len(pre_ids)} and {len(post_ids)}")
    n = len(pre_ids)
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"weights must have one value per synapse, shape ({n},), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and >= 0")
    if positions is not None:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (n, 3):
            raise ValueError(f"positions must be (n_synapses, 3) = ({n}, 3) (z, y, x), got {pos.shape}")
        if not np.isfinite(pos).all():
            raise ValueError("positions hold NaN or infinite values")
        if shape is not None:
            limits = np.asarray(shape, dtype=np.float64)
            outside = ((pos < 0) | (pos >= limits)).any(axis=1)
            if outside.any():
                first = int(np.flatnonzero(outside)[0])
                raise ValueError(f"{int(outside.sum())} synapse positions lie outside the volume of shape "
                                 f"{tuple(shape)}, the first (row {first}) at {pos[first].tolist()}")
    if drop_background:
        keep = (pre_ids != 0) & (post_ids != 0)
        pre_ids, post_ids, w = pre_ids[keep], post_ids[keep], w[keep]
    if len(pre_ids) == 0:
        empty = np.zeros(0, np.uint64)
        return SynapseGraph(empty, empty, np.zeros(0, np.int64), np.zeros(0), empty)
    order = np.lexsort((post_ids, pre_ids))
    pre_ids, post_ids, w = pre_ids[order], post_ids[order], w[order]
    starts = np.flatnonzero(np.r_[True, (pre_ids[1:] != pre_ids[:-1]) | (post_ids[1:] != post_ids[:-1])])
    counts = np.diff(np.r_[starts, len(pre_ids)]).astype(np.int64)
    return SynapseGraph(pre=pre_ids[starts], post=post_ids[starts], synapses=counts, weight=np.add.reduceat(w, starts),
                        node_ids=np.unique(np.r_[pre_ids, post_ids]))
