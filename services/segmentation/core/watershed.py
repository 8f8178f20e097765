"""Classical neuron segmentation: seeded watershed fragments, a region graph, hierarchical agglomeration.

Axes are always ``(z, y, x)``. The pipeline, from a boundary map (1 on membranes) or affinities:

1. :func:`seeded_watershed` over-segments the volume into *fragments* (supervoxels): seeds are
   the local maxima of the distance transform of the voxels below a boundary threshold, flooded
   over the boundary map. ``per_section=True`` does it section by section for anisotropic data.
   The flood (:func:`flood_watershed`) and the distance transform are native (the ``_flood``
   extension, built by setup.py): a bucket queue over the map quantised to 256 levels, linear
   time, scikit-image's flooding order (``method="skimage"`` runs scikit-image's own).
2. :func:`region_adjacency_graph` lists the pairs of fragments that touch, with the sum and count
   of the affinities over their shared faces (so that means of merged edges stay exact).
3. :func:`agglomerate` merges fragments, highest mean affinity first, average linkage, once, and
   records every merge with its score in a :class:`MergeTree`; ``tree.segmentation(threshold)``
   cuts it at any threshold without running it again (:func:`segment_at_thresholds`).
4. :func:`remove_small_fragments` cleans up what is left below a size.

Affinity convention (that of :func:`~services.segmentation.core.synthetic.affinities_from_labels`):
``aff[c, z, y, x]`` links voxel ``(z, y, x)`` with voxel ``(z, y, x) - offsets[c]``; high means
"same neuron". A boundary map is turned into an affinity for the graph as ``1 - mean`` of the two
voxels' boundary values.

Example
-------
>>> from services.segmentation.core.synthetic import (affinities_from_labels, boundary_map_from_labels,
...                                                    synthetic_em_volume)
>>> _, truth = synthetic_em_volume((16, 24, 24), n_neurites=5, seed=0)
>>> fragments = seeded_watershed(boundary_map_from_labels(truth), min_seed_distance=1, threshold=0.5,
...                              mask=truth > 0)              # label 0: extracellular space
>>> tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities_from_labels(truth)))
>>> segmentation = tree.segmentation(0.5)
>>> int(fragments.max()) > int(segmentation.max()) == int(truth.max())   # fragments merged into neurons
True
>>> bool(np.all((segmentation > 0) == (truth > 0)))
True
"""

from __future__ import annotations

import heapq
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse

from .metrics import _check_labels, _check_same_shape, _check_volume
from .synthetic import DEFAULT_OFFSETS, _check_offsets, _shifted_pair

__all__ = ["seeded_watershed", "flood_watershed", "quantize_boundaries", "affinities_to_boundaries", "RegionAdjacencyGraph", "region_adjacency_graph",
           "MergeTree", "agglomerate", "segment_at_thresholds", "remove_small_fragments"]


# ---- fragments -----------------------------------------------------------------------------------------

def _seeds(foreground, distance, min_seed_distance, structure):
    """Label image of seeds: plateaus of local maxima of ``distance``, at least one per foreground piece."""
    window = 2 * min_seed_distance + 1
    peaks = foreground & (distance == ndimage.maximum_filter(distance, size=window, mode="nearest"))
    seeds, n_seeds = ndimage.label(peaks, structure=structure)
    # a foreground piece without a peak (all its maxima suppressed by a larger neighbour's window)
    # still gets a seed at its deepest voxel, so that no piece is flooded from another one
    pieces, n_pieces = ndimage.label(foreground, structure=structure)
    if n_pieces:
        seeded = np.zeros(n_pieces + 1, bool)
        seeded[pieces[seeds > 0]] = True
        missing = np.flatnonzero(~seeded[1:]) + 1
        if missing.size:
            positions = ndimage.maximum_position(distance, pieces, index=missing)
            for k, position in enumerate(positions, start=1):
                seeds[position] = n_seeds + k
            n_seeds += missing.size
    return seeds, n_seeds


#: quantisation of the boundary map for the bucket-queue flood: a U-Net probability carries no
#: more than this many meaningful levels, and the flood's queue has one list per level
DEFAULT_LEVELS = 256
WATERSHED_METHODS = ("bucket", "skimage")


def quantize_boundaries(boundaries, levels=DEFAULT_LEVELS, value_range=None):
    """Boundary values as integer levels ``0 .. levels - 1`` (uint16) for :func:`flood_watershed`.

    ``value_range=(lo, hi)`` maps ``lo`` to 0 and ``hi`` to ``levels - 1`` (values outside are
    clipped). By default it is ``(0, 1)`` when every value lies in ``[0, 1]`` (a probability map:
    the same mapping in every block of a volume, which blockwise consistency needs) and the data's
    minimum and maximum otherwise.

    Example
    -------
    >>> quantize_boundaries(np.array([0.0, 0.5, 1.0]), levels=5)
    array([0, 2, 4], dtype=uint16)
    """
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or not 2 <= levels <= 65536:
        raise ValueError(f"levels must be an integer in 2 .. 65536, got {levels!r}")
    boundaries = np.asarray(boundaries)
    if value_range is None:
        lo, hi = (float(boundaries.min()), float(boundaries.max())) if boundaries.size else (0.0, 1.0)
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
    else:
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"value_range must be two finite numbers lo <= hi, got {value_range!r}")
    scale = (levels - 1) / (hi - lo) if hi > lo else 0.0
    scaled = (boundaries.astype(np.float32, copy=False) - np.float32(lo)) * np.float32(scale)
    return np.clip(np.rint(scaled), 0, levels - 1).astype(np.uint16)


def _neighbour_steps(shape, connectivity):
    """Flat index offsets of the neighbours (``connectivity`` as scipy's) in an array of ``shape``."""
    structure = ndimage.generate_binary_structure(len(shape), connectivity)
    centre = np.ones(len(shape), int)
    offsets = np.argwhere(structure) - centre
    offsets = offsets[np.any(offsets != 0, axis=1)]
    strides = np.array([int(np.prod(shape[axis + 1:])) for axis in range(len(shape))], np.int64)
    return (offsets @ strides).astype(np.int64)


def flood_watershed(levels, markers, *, mask=None, connectivity=1, n_levels=None):
    """Watershed of integer ``levels`` from ``markers`` by a bucket-queue priority flood, in linear time.

    The flood is scikit-image's (:func:`skimage.segmentation.watershed` with markers and a mask):
    the lowest pending voxel is taken first, first in first out among equal levels, and each of
    its unlabelled neighbours is labelled with its label when it is queued. Where levels and the
    seeds' levels are distinct the partition equals scikit-image's; among equal levels the order
    is the queueing order (seeds in raster order), so ties may go to another basin.

    Parameters
    ----------
    levels : array_like of int, 2-D or 3-D
        Quantised boundary values in ``0 .. n_levels - 1`` (:func:`quantize_boundaries`).
    markers : array_like of int, same shape
        Seed labels, 0 elsewhere; ids below 2**32 - 1.
    mask : array_like of bool, same shape, optional
        Only these voxels are flooded; the rest are 0.
    connectivity : int, optional
        As scipy's ``generate_binary_structure``: 1 faces, up to ``ndim`` (all neighbours).
    n_levels : int, optional
        Number of levels (default ``levels.max() + 1``), at most 65,536.

    Returns
    -------
    labels : ndarray of uint32
        Each voxel reachable from a seed through the mask gets that seed's label; 0 elsewhere.

    Example
    -------
    >>> levels = np.array([[0, 1, 5, 2, 0]])
    >>> flood_watershed(levels, np.array([[1, 0, 0, 0, 2]]), connectivity=2)
    array([[1, 1, 1, 2, 2]], dtype=uint32)
    """
    from ._flood import BLOCKED, flood

    levels = np.asarray(levels)
    markers = np.asarray(markers)
    if levels.ndim not in (2, 3) or levels.shape != markers.shape:
        raise ValueError(f"levels and markers must be 2-D or 3-D of one shape, got {levels.shape} and {markers.shape}")
    if not np.issubdtype(levels.dtype, np.integer) or (levels.size and (levels.min() < 0 or levels.max() > 65535)):
        raise ValueError("levels must be integers in 0 .. 65535 (see quantize_boundaries)")
    if not np.issubdtype(markers.dtype, np.integer) or (markers.size and (markers.min() < 0
                                                                         or markers.max() >= BLOCKED)):
        raise ValueError(f"markers must be integers in 0 .. {BLOCKED - 1}")
    if connectivity not in range(1, levels.ndim + 1):
        raise ValueError(f"connectivity must be 1 .. {levels.ndim}, got {connectivity!r}")
    if n_levels is None:
        n_levels = int(levels.max()) + 1 if levels.size else 1
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != levels.shape:
            raise ValueError(f"mask has shape {mask.shape} but levels has shape {levels.shape}")
    # one voxel of padding, marked blocked, spares the inner loop every bounds check
    labels = np.pad(markers.astype(np.uint32), 1, constant_values=BLOCKED)
    if mask is not None:
        inner = labels[(slice(1, -1),) * levels.ndim]
        inner[~mask] = BLOCKED
    padded_levels = np.pad(levels.astype(np.uint16, copy=False), 1)
    steps = _neighbour_steps(labels.shape, connectivity)
    flat_labels = labels.reshape(-1)
    flood(padded_levels.reshape(-1), flat_labels, steps, int(n_levels))
    labels = labels[(slice(1, -1),) * levels.ndim]
    labels[labels == BLOCKED] = 0
    return np.ascontiguousarray(labels)


def _distance_transform(foreground, sampling):
    """Euclidean distance of each foreground voxel to the background, as scipy's
    ``distance_transform_edt`` (equal to the last bit, tested) but about 4x faster: the native
    separable transform. Without any background voxel scipy's own is used, for its convention."""
    if foreground.all():
        return ndimage.distance_transform_edt(foreground, sampling=sampling)
    from ._flood import distance_transform

    sampling = [1.0] * foreground.ndim if sampling is None else [float(v) for v in sampling]
    return distance_transform(np.ascontiguousarray(foreground, dtype=np.uint8), sampling)


def _watershed_once(boundaries, mask, *, min_seed_distance, threshold, connectivity, sampling, method, levels,
                    value_range, max_seed_depth):
    structure = ndimage.generate_binary_structure(boundaries.ndim, connectivity)
    foreground = boundaries < threshold
    if mask is not None:
        foreground &= mask
    distance = _distance_transform(foreground, sampling)
    if max_seed_depth is not None:
        # deeper than this is all one depth: a plateau, one seed per connected deep region
        np.minimum(distance, max_seed_depth, out=distance)
    seeds, n_seeds = _seeds(foreground, distance, min_seed_distance, structure)
    if n_seeds == 0:
        return np.zeros(boundaries.shape, np.uint64), 0
    # voxels are claimed by the first basin that reaches them (both floods label on push), so the
    # foreground, at the lowest levels, is flooded before any boundary voxel is contended
    if method == "bucket":
        labels = flood_watershed(quantize_boundaries(boundaries, levels, value_range), seeds, mask=mask,
                                 connectivity=connectivity, n_levels=levels)
    else:
        from skimage.segmentation import watershed
        labels = watershed(boundaries, markers=seeds, mask=mask, connectivity=connectivity)
    return labels.astype(np.uint64), n_seeds


def seeded_watershed(boundaries, *, min_seed_distance=2, threshold=0.5, mask=None, per_section=False,
                     connectivity=None, voxel_size=None, method="bucket", levels=DEFAULT_LEVELS,
                     max_seed_depth=None):
    """Fragments (an over-segmentation) from a boundary map by a distance-transform seeded watershed.

    Seeds are the local maxima of the Euclidean distance transform of the voxels with
    ``boundaries < threshold`` (a plateau of equal maxima is one seed; every connected piece of
    such voxels gets at least one), and the seeds are flooded over ``boundaries``.

    Parameters
    ----------
    boundaries : array_like of float, shape (z, y, x)
        Boundary map, high on membranes (a probability in [0, 1] or any real values); finite.
    min_seed_distance : int, optional
        Two seeds are at least this many voxels apart (Chebyshev distance), unless they lie in
        different pieces: a maximum is a seed when no higher distance lies within this radius.
        Larger gives fewer, bigger fragments. 0 gives one seed per piece.
    threshold : float, optional
        Voxels below it are inside neurons, where seeds are placed.
    mask : array_like of bool, shape (z, y, x), optional
        Only voxels where it is True are segmented; the rest are 0.
    per_section : bool, optional
        Segment each z section on its own in 2-D (for anisotropic data whose z step is several
        times the xy pixel size); fragment ids stay unique across sections.
    connectivity : {1, 2, 3}, optional
        Neighbourhood of the flooding and of the seed pieces: 1 (faces), 2 (edges too) or 3 (all
        26 neighbours, the default in 3-D; 2 in a 2-D section, all 8 neighbours). With the
        default and a perfect boundary map
        (:func:`~services.segmentation.core.synthetic.boundary_map_from_labels`) no fragment
        crosses a neuron boundary wherever neurons are at least three voxels thick.
    voxel_size : tuple of 3 float, optional
        Physical voxel size ``(z, y, x)`` for the distance transform (default isotropic).
    method : {"bucket", "skimage"}, optional
        The flood: ``"bucket"`` (default) is :func:`flood_watershed`, linear time on the map
        quantised to ``levels`` levels (:func:`quantize_boundaries`; a map in [0, 1] is quantised
        over [0, 1]); ``"skimage"`` is :func:`skimage.segmentation.watershed` on the float map
        (a binary heap, several times slower). Both label on push in the same order; they differ
        only where quantisation creates ties.
    levels : int, optional
        Quantisation levels of the ``"bucket"`` flood, 2 .. 65,536 (default 256).
    max_seed_depth : float, optional
        Cap the distance transform at this depth (in voxels, or ``voxel_size`` units): the
        voxels deeper than it form plateaus, one seed per connected plateau. Block by block,
        a depth is then exact wherever the halo reaches ``max_seed_depth`` beyond it, so blocks
        whose halo is at least ``max_seed_depth + min_seed_distance`` find the whole volume's
        seeds in their cores. Default: no cap.

    Returns
    -------
    fragments : ndarray of uint64, shape (z, y, x)
        Fragment ids ``1 .. n``; 0 outside ``mask`` and in any part of it that holds no voxel
        below ``threshold`` (no seed to flood from; all 0 when no voxel is below it).

    Raises
    ------
    ValueError
        ``boundaries`` not 3-D or holding NaN, ``mask`` of another shape, bad options.

    Example
    -------
    >>> boundaries = np.zeros((1, 5, 9)); boundaries[:, :, 4] = 1.0      # one membrane at x = 4
    >>> seeded_watershed(boundaries, min_seed_distance=1, per_section=True)[0]
    array([[1, 1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 1, 2, 2, 2, 2]], dtype=uint64)
    """
    boundaries = _check_volume("boundaries", boundaries)
    if isinstance(min_seed_distance, bool) or not isinstance(min_seed_distance, numbers.Integral) \
            or min_seed_distance < 0:
        raise ValueError(f"min_seed_distance must be an integer >= 0, got {min_seed_distance!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite real number, got {threshold!r}")
    if mask is not None:
        mask = np.asarray(mask)
        _check_same_shape("mask", mask, "boundaries", boundaries)
        mask = mask.astype(bool)
    ndim = 2 if per_section else 3
    if connectivity is None:
        connectivity = ndim
    if connectivity not in range(1, ndim + 1):
        raise ValueError(f"connectivity must be 1 .. {ndim} for {ndim}-D flooding, got {connectivity!r}")
    if voxel_size is not None:
        voxel_size = tuple(float(v) for v in voxel_size)
        if len(voxel_size) != 3 or not all(v > 0 and np.isfinite(v) for v in voxel_size):
            raise ValueError(f"voxel_size must be 3 positive numbers (z, y, x), got {voxel_size!r}")
    if method not in WATERSHED_METHODS:
        raise ValueError(f"method must be one of {WATERSHED_METHODS}, got {method!r}")
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or not 2 <= levels <= 65536:
        raise ValueError(f"levels must be an integer in 2 .. 65536, got {levels!r}")
    if max_seed_depth is not None and (isinstance(max_seed_depth, bool) or not isinstance(max_seed_depth, numbers.Real)
                                       or not max_seed_depth > 0 or not np.isfinite(max_seed_depth)):
        raise ValueError(f"max_seed_depth must be a positive number or None, got {max_seed_depth!r}")
    options = dict(min_seed_distance=int(min_seed_distance), threshold=float(threshold), max_seed_depth=max_seed_depth,
                   connectivity=connectivity, method=method, levels=int(levels))
    # one quantisation for the whole volume (sections of a per-section run alike)
    lo, hi = (float(boundaries.min()), float(boundaries.max())) if boundaries.size else (0.0, 1.0)
    options["value_range"] = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
    if not per_section:
        fragments, _ = _watershed_once(boundaries, mask, sampling=voxel_size, **options)
        return fragments
    fragments = np.zeros(boundaries.shape, np.uint64)
    next_id = 0
    for z in range(boundaries.shape[0]):
        section, n = _watershed_once(boundaries[z], None if mask is None else mask[z],
                                     sampling=None if voxel_size is None else voxel_size[1:], **options)
        fragments[z] = np.where(section > 0, section + np.uint64(next_id), np.uint64(0))
        next_id += n
    return fragments


def affinities_to_boundaries(affinities, *, offsets=DEFAULT_OFFSETS, reduce="min"):
    """A boundary map from affinities: ``1 -`` the lowest (or mean) affinity of each voxel's links.

    Every link of a voxel counts, the ones it owns (``aff[c, p]``, to ``p - offsets[c]``) and the
    ones its neighbours own towards it (``aff[c, p + offsets[c]]``); links that leave the volume
    are not links. A voxel with no link at all gets 0.

    Parameters
    ----------
    affinities : array_like of float, shape (channels, z, y, x)
        Affinities in [0, 1], one channel per offset.
    offsets : sequence of (dz, dy, dx) int, optional
        The offset of each channel (default: the 6-neighbourhood ``(1,0,0), (0,1,0), (0,0,1)``).
    reduce : {"min", "mean"}, optional
        Lowest affinity (default: a voxel next to any membrane is a boundary) or the mean.

    Returns
    -------
    boundaries : ndarray of float32, shape (z, y, x)

    Example
    -------
    >>> from services.segmentation.core.synthetic import affinities_from_labels
    >>> affinities_to_boundaries(affinities_from_labels(np.array([[[1, 1, 2, 2]]])))
    array([[[0., 1., 1., 0.]]], dtype=float32)
    """
    affinities = _check_volume("affinities", affinities, channels=True)
    offsets = _check_offsets(offsets)
    if len(offsets) != affinities.shape[0]:
        raise ValueError(f"affinities has {affinities.shape[0]} channels but offsets has {len(offsets)} entries")
    if reduce not in ("min", "mean"):
        raise ValueError(f"reduce must be 'min' or 'mean', got {reduce!r}")
    shape = affinities.shape[1:]
    if reduce == "min":
        lowest = np.ones(shape, np.float64)
        for channel, offset in enumerate(offsets):
            here, there = _shifted_pair(shape, offset)
            values = affinities[(channel,) + here]
            np.minimum(lowest[here], values, out=lowest[here])
            np.minimum(lowest[there], values, out=lowest[there])
        return (1.0 - lowest).astype(np.float32)
    total, count = np.zeros(shape), np.zeros(shape)
    for channel, offset in enumerate(offsets):
        here, there = _shifted_pair(shape, offset)
        values = affinities[(channel,) + here]
        for where in (here, there):
            total[where] += values
            count[where] += 1
    return np.where(count > 0, 1.0 - total / np.maximum(count, 1), 0.0).astype(np.float32)


# ---- region adjacency graph ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegionAdjacencyGraph:
    """Pairs of touching fragments with the affinity summed over their shared faces.

    Attributes
    ----------
    u, v : ndarray of uint64, shape (n_edges,)
        Fragment ids of each edge, ``u < v``, sorted by ``(u, v)``; 0 (background) never appears.
    affinity_sum : ndarray of float64, shape (n_edges,)
        Sum of the affinities of the voxel links between ``u`` and ``v``.
    count : ndarray of int64, shape (n_edges,)
        Number of such links (the contact area in voxel faces, for the 6-neighbourhood).
    """

    u: np.ndarray
    v: np.ndarray
    affinity_sum: np.ndarray
    count: np.ndarray

    @property
    def mean_affinity(self) -> np.ndarray:
        """Mean affinity of each edge, ``affinity_sum / count``."""
        return self.affinity_sum / np.maximum(self.count, 1)

    def __len__(self) -> int:
        return int(self.u.size)

    @classmethod
    def combine(cls, graphs) -> RegionAdjacencyGraph:
        """One graph from several, e.g. one per block: sums and counts of the same edge add up."""
        graphs = list(graphs)
        if not graphs:
            return _group_edges(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0), np.zeros(0, np.int64))
        return _group_edges(np.concatenate([g.u for g in graphs]), np.concatenate([g.v for g in graphs]),
                            np.concatenate([g.affinity_sum for g in graphs]),
                            np.concatenate([g.count for g in graphs]))


def _group_edges(u, v, weight, count):
    """Sum ``weight`` and ``count`` over equal ``(u, v)`` pairs (``u < v`` already)."""
    u = u.astype(np.uint64, copy=False)
    v = v.astype(np.uint64, copy=False)
    if u.size == 0:
        return RegionAdjacencyGraph(u, v, np.zeros(0), np.zeros(0, np.int64))
    ids, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    ru, rv = inverse[:u.size].astype(np.uint64), inverse[u.size:].astype(np.uint64)
    keys, key_inverse = np.unique(ru * np.uint64(ids.size) + rv, return_inverse=True)
    weights = np.bincount(key_inverse, weights=weight, minlength=keys.size)
    counts = np.bincount(key_inverse, weights=count, minlength=keys.size).astype(np.int64)
    return RegionAdjacencyGraph(ids[keys // np.uint64(ids.size)], ids[keys % np.uint64(ids.size)], weights, counts)


def _link_arrays(fragments, values, offsets, core=None):
    """Fragment pairs and affinities of the voxel links that cross fragments.

    ``values`` is affinities (channels first), a boundary map, or None (counts only). With ``core``
    (slices into ``fragments``), only links owned by voxels inside it count, so that blocks that
    each pass their core, read with a margin of the largest offset, count every link once.
    """
    shape = fragments.shape
    if core is None:
        core = tuple(slice(0, s) for s in shape)
    us, vs, ws = [], [], []
    for channel, offset in enumerate(offsets):
        here, there = [], []
        for axis, o in enumerate(offset):
            lo = max(core[axis].start, o)                 # the voxel in the core, its partner in the array
            hi = min(core[axis].stop, shape[axis] + o)
            hi = max(hi, lo)
            here.append(slice(lo, hi))
            there.append(slice(lo - o, hi - o))
        here, there = tuple(here), tuple(there)
        a, b = fragments[here], fragments[there]
        crossing = (a != b) & (a != 0) & (b != 0)
        if not crossing.any():
            continue
        a, b = a[crossing], b[crossing]
        if values is None:
            w = np.zeros(a.size)
        elif values.ndim == 4:
            w = values[(channel,) + here][crossing].astype(np.float64)
        else:
            w = 1.0 - 0.5 * (values[here][crossing].astype(np.float64) + values[there][crossing])
        us.append(np.minimum(a, b))
        vs.append(np.maximum(a, b))
        ws.append(w)
    if not us:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ws)


def _check_graph_inputs(fragments, affinities_or_boundaries, offsets):
    fragments = _check_labels("fragments", fragments)
    offsets = _check_offsets(offsets)
    values = affinities_or_boundaries
    if values is not None:
        values = np.asarray(values)
        if values.ndim == 4:
            values = _check_volume("affinities_or_boundaries", values, channels=True)
            if values.shape[0] != len(offsets):
                raise ValueError(f"affinities_or_boundaries has {values.shape[0]} channels but offsets has "
                                 f"{len(offsets)} entries")
            if values.shape[1:] != fragments.shape:
                raise ValueError(f"affinities_or_boundaries has spatial shape {values.shape[1:]} but fragments "
                                 f"has shape {fragments.shape}")
        else:
            values = _check_volume("affinities_or_boundaries", values)
            _check_same_shape("affinities_or_boundaries", values, "fragments", fragments)
    return fragments, values, offsets


def region_adjacency_graph(fragments, affinities_or_boundaries=None, *, offsets=DEFAULT_OFFSETS):
    """The region adjacency graph of a fragment volume, weighted by affinities or a boundary map.

    For every voxel link ``(p, p - offsets[c])`` between two different nonzero fragments the link's
    affinity is added to their edge: ``aff[c, p]`` for affinities, ``1 - (b[p] + b[p - o]) / 2``
    for a boundary map ``b``, nothing (count only) for None. Vectorised: a few array passes per
    offset and one sort of the crossing links.

    Parameters
    ----------
    fragments : array_like of non-negative int, shape (z, y, x)
        Fragment ids; 0 is background and has no edges.
    affinities_or_boundaries : array_like of float, shape (channels, z, y, x) or (z, y, x), optional
        Affinities (one channel per offset, high = same neuron) or a boundary map (high = membrane).
    offsets : sequence of (dz, dy, dx) int, optional
        Links considered, one per affinity channel (default: the 6-neighbourhood).

    Returns
    -------
    RegionAdjacencyGraph

    Example
    -------
    >>> fragments = np.array([[[1, 1, 2, 2, 3]]])
    >>> affinities = np.zeros((3, 1, 1, 5)); affinities[2] = [0.0, 0.9, 0.8, 0.9, 0.1]
    >>> rag = region_adjacency_graph(fragments, affinities)
    >>> rag.u, rag.v, rag.mean_affinity, rag.count
    (array([1, 2], dtype=uint64), array([2, 3], dtype=uint64), array([0.8, 0.1]), array([1, 1]))
    """
    fragments, values, offsets = _check_graph_inputs(fragments, affinities_or_boundaries, offsets)
    u, v, w = _link_arrays(fragments, values, offsets)
    return _group_edges(u, v, w, np.ones(u.size, np.int64))


# ---- agglomeration ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class MergeTree:
    """The merges of a hierarchical agglomeration, in order, cut at any threshold afterwards.

    Nodes ``0 .. n - 1`` are the fragments ``fragment_ids``; merge ``k`` joins nodes
    ``children[k]`` into node ``n + k`` with score ``scores[k]``, the mean affinity of the edge it
    merged (non-increasing over ``k``).

    Attributes
    ----------
    fragment_ids : ndarray of uint64, shape (n,)
        Sorted nonzero fragment ids.
    children : ndarray of int64, shape (n_merges, 2)
    scores : ndarray of float64, shape (n_merges,)
    fragments : array-like or None
        The fragment volume agglomerated, when one was given, for :meth:`segmentation`.
    """

    fragment_ids: np.ndarray
    children: np.ndarray
    scores: np.ndarray
    fragments: object = field(default=None, repr=False)

    def segment_of(self, threshold) -> np.ndarray:
        """Segment id (``1 .. n_segments``) of each fragment of ``fragment_ids`` at ``threshold``.

        All merges with score ``>= threshold`` are applied. Segments are numbered in the order of
        their smallest fragment id, so the same cut always gives the same ids.
        """
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or np.isnan(threshold):
            raise ValueError(f"threshold must be a real number, got {threshold!r}")
        n = self.fragment_ids.size
        if n == 0:
            return np.zeros(0, np.uint64)
        k = int(np.count_nonzero(self.scores >= threshold))     # scores are non-increasing
        nodes = n + k
        rows = np.repeat(np.arange(n, nodes), 2)
        cols = self.children[:k].ravel()
        graph = sparse.coo_array((np.ones(rows.size, np.int8), (rows, cols)), shape=(nodes, nodes))
        _, component = sparse.csgraph.connected_components(graph, directed=False)
        # connected_components numbers components in order of their lowest node
        _, segment = np.unique(component[:n], return_inverse=True)
        return (segment + 1).astype(np.uint64)

    def n_segments(self, threshold) -> int:
        """Number of segments at ``threshold``."""
        return self.fragment_ids.size - int(np.count_nonzero(self.scores >= threshold))

    def relabel(self, fragments, threshold) -> np.ndarray:
        """Segment ids of a fragment array (e.g. one block) at ``threshold``; 0 stays 0."""
        return self.map_fragments(fragments, self.segment_of(threshold))

    def map_fragments(self, fragments, segment_ids) -> np.ndarray:
        """Replace each fragment id by ``segment_ids[i]``, ``i`` its position in ``fragment_ids``.

        With ``segment_ids = tree.segment_of(t)`` computed once, relabels many blocks at ``t``.
        Raises ValueError for a nonzero id that is not in the tree.
        """
        fragments = np.asarray(fragments)
        segment_ids = np.asarray(segment_ids)
        flat = fragments.ravel()
        out = np.zeros(flat.size, np.uint64)
        nonzero = flat != 0
        if nonzero.any():
            values = flat[nonzero].astype(np.uint64)
            position = np.searchsorted(self.fragment_ids, values)
            inside = position < self.fragment_ids.size
            known = inside.copy()
            known[inside] = self.fragment_ids[position[inside]] == values[inside]
            if not known.all():
                raise ValueError(f"fragments holds id {int(values[~known][0])}, which is not in the merge tree")
            out[nonzero] = segment_ids[position]
        return out.reshape(fragments.shape)

    def segmentation(self, threshold, fragments=None) -> np.ndarray:
        """The segmentation at ``threshold``: every merge with score ``>= threshold`` applied.

        ``fragments`` defaults to the volume given to :func:`agglomerate`.
        """
        fragments = self.fragments if fragments is None else fragments
        if fragments is None:
            raise ValueError("this tree was built without a fragment volume: pass fragments")
        return self.relabel(fragments, threshold)


def agglomerate(fragments, edges, *, fragment_ids=None, min_score=-np.inf):
    """Average-linkage agglomeration of fragments, recording every merge in a :class:`MergeTree`.

    Repeatedly merges the two touching segments whose edge has the highest mean affinity. The
    edge of a merged segment to a neighbour has as sum and count the sums and counts of the two
    edges it replaces, so its mean is the mean affinity over the whole shared surface (average
    linkage weighted by contact area), never a mean of means. Merge scores never increase, so a
    cut at a threshold is a prefix of the merges. A heap of edges with lazy deletion: about
    ``O(E log E)`` for ``E`` edges; the graph, not the volume, is what it works on.

    Parameters
    ----------
    fragments : array_like of non-negative int, shape (z, y, x), or None
        The fragment volume (kept by the tree for :meth:`MergeTree.segmentation`); its nonzero ids
        are the nodes unless ``fragment_ids`` is given. Any array-like (e.g. a Zarr array) works
        when ``fragment_ids`` is given, as it is then only stored.
    edges : RegionAdjacencyGraph
        Edges between fragments, from :func:`region_adjacency_graph`.
    fragment_ids : array_like of int, optional
        All fragment ids (e.g. collected block by block); ids on edges must be among them.
    min_score : float, optional
        Stop when the best remaining mean affinity is below this (default: merge until no edge is
        left, the full hierarchy).

    Returns
    -------
    MergeTree

    Example
    -------
    >>> fragments = np.array([[[1, 1, 2, 2, 3]]])
    >>> affinities = np.zeros((3, 1, 1, 5)); affinities[2] = [0.0, 0.9, 0.8, 0.9, 0.1]
    >>> tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities))
    >>> tree.scores
    array([0.8, 0.1])
    >>> tree.segmentation(0.5), tree.segmentation(0.9)
    (array([[[1, 1, 1, 1, 2]]], dtype=uint64), array([[[1, 1, 2, 2, 3]]], dtype=uint64))
    """
    if not isinstance(edges, RegionAdjacencyGraph):
        raise ValueError(f"edges must be a RegionAdjacencyGraph (from region_adjacency_graph), got "
                         f"{type(edges).__name__}")
    if fragment_ids is None:
        if fragments is None:
            raise ValueError("pass fragments or fragment_ids")
        array = _check_labels("fragments", fragments)
        ids = np.unique(array)
    else:
        ids = np.unique(np.asarray(fragment_ids).astype(np.uint64))
    ids = ids[ids != 0].astype(np.uint64)
    if len(edges):
        u = np.searchsorted(ids, edges.u)
        v = np.searchsorted(ids, edges.v)
        if ids.size == 0 or np.any(u >= ids.size) or np.any(v >= ids.size) or np.any(ids[np.minimum(
                u, ids.size - 1)] != edges.u) or np.any(ids[np.minimum(v, ids.size - 1)] != edges.v):
            raise ValueError("edges name fragment ids that are not in fragments / fragment_ids")
    else:
        u = v = np.zeros(0, np.int64)
    n = ids.size
    # adjacency[node][neighbour] = [affinity sum, count]; a node is alive while in adjacency
    adjacency: dict[int, dict[int, list]] = {i: {} for i in range(n)}
    heap = []
    for a, b, s, c in zip(u.tolist(), v.tolist(), edges.affinity_sum.tolist(), edges.count.tolist()):
        adjacency[a][b] = [s, c]
        adjacency[b][a] = [s, c]
        heap.append((-s / c, a, b))
    heapq.heapify(heap)
    children, scores = [], []
    next_node = n
    while heap:
        negative_mean, a, b = heapq.heappop(heap)
        if a not in adjacency or b not in adjacency:
            continue                                   # an edge of a segment merged since
        if -negative_mean < min_score:
            break
        score = -negative_mean
        if scores and score > scores[-1]:
            score = scores[-1]                         # rounding of merged sums: keep the order exact
        new = next_node
        next_node += 1
        adj_a, adj_b = adjacency.pop(a), adjacency.pop(b)
        if len(adj_a) < len(adj_b):
            adj_a, adj_b = adj_b, adj_a
        adj_a.pop(a, None), adj_a.pop(b, None)
        for neighbour, (s, c) in adj_b.items():
            if neighbour in (a, b):
                continue
            if neighbour in adj_a:
                adj_a[neighbour][0] += s
                adj_a[neighbour][1] += c
            else:
                adj_a[neighbour] = [s, c]
        for neighbour, sc in adj_a.items():
            nb = adjacency[neighbour]
            nb.pop(a, None), nb.pop(b, None)
            nb[new] = sc
            heapq.heappush(heap, (-sc[0] / sc[1], min(neighbour, new), max(neighbour, new)))
        adjacency[new] = adj_a
        children.append((min(a, b), max(a, b)))
        scores.append(score)
    return MergeTree(fragment_ids=ids, children=np.asarray(children, np.int64).reshape(-1, 2),
                     scores=np.asarray(scores, np.float64), fragments=fragments)


def segment_at_thresholds(fragments, affinities_or_boundaries, thresholds, *, offsets=DEFAULT_OFFSETS):
    """Segmentations at several thresholds from one graph and one agglomeration.

    Parameters
    ----------
    fragments : array_like of non-negative int, shape (z, y, x)
    affinities_or_boundaries : array_like of float, shape (channels, z, y, x) or (z, y, x)
        As :func:`region_adjacency_graph`.
    thresholds : sequence of float
        Mean-affinity thresholds; a higher threshold merges less (more segments).

    Returns
    -------
    segmentations : list of ndarray of uint64, shape (z, y, x)
        One per threshold, in the order given.

    Example
    -------
    >>> fragments = np.array([[[1, 2, 3]]])
    >>> affinities = np.zeros((3, 1, 1, 3)); affinities[2] = [0.0, 0.9, 0.4]
    >>> [s.ravel().tolist() for s in segment_at_thresholds(fragments, affinities, [0.3, 0.5, 0.95])]
    [[1, 1, 1], [1, 1, 2], [1, 2, 3]]
    """
    tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities_or_boundaries, offsets=offsets))
    return [tree.segmentation(t) for t in thresholds]


def remove_small_fragments(labels, min_size):
    """Merge every fragment below ``min_size`` voxels into the neighbour it shares most faces with.

    Policy: a small fragment joins the touching fragment with the largest contact area (6-neighbour
    faces; ties to the larger neighbour, then the lower id) and keeps that neighbour's id; this is
    repeated until every fragment with a neighbour is large enough (small fragments that touch
    only each other first merge together). A small fragment that touches no other nonzero
    fragment is set to 0 (background). Label 0 is never a merge target.

    Parameters
    ----------
    labels : array_like of non-negative int, shape (z, y, x)
    min_size : int
        Smallest size kept, in voxels.

    Returns
    -------
    labels : ndarray, same shape and dtype
        Surviving ids are unchanged (not renumbered).

    Example
    -------
    >>> labels = np.array([[[1, 1, 1, 2, 3, 3, 3, 3, 0, 4]]])
    >>> remove_small_fragments(labels, 2)      # 2 joins 3 (larger), 4 is isolated: 0
    array([[[1, 1, 1, 3, 3, 3, 3, 3, 0, 0]]])
    """
    labels = _check_labels("labels", labels)
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    # The policy runs on the graph, not the voxels: sizes and contact areas of merged groups are
    # the sums of their members', so one pass over the volume for sizes, one for the contacts and
    # one to relabel give what repeating the merge on the voxels would (tested against that).
    flat = labels.ravel()
    dense = flat.size > 0 and int(flat.max()) < 4 * flat.size + 1024
    if dense:                                       # ids from a cut of a merge tree: 1 .. n
        counts = np.bincount(flat.astype(np.intp, copy=False))
        ids = np.flatnonzero(counts).astype(np.uint64)
        sizes = counts[ids.astype(np.intp)].astype(np.int64)
    else:
        ids, sizes = np.unique(flat, return_counts=True)
        ids, sizes = ids.astype(np.uint64), sizes.astype(np.int64)
    keep = ids != 0
    ids, sizes = ids[keep], sizes[keep]
    if not np.any(sizes < min_size):
        return labels.copy()
    rag = region_adjacency_graph(labels)
    u = np.searchsorted(ids, rag.u).astype(np.int64)
    v = np.searchsorted(ids, rag.v).astype(np.int64)
    count = rag.count.astype(np.int64)
    owner = np.arange(ids.size)                     # each original id's current group (a position)
    alive_ids = ids.copy()                           # the id a group carries (its keeper's)
    while True:
        small = sizes < min_size
        src, dst, cnt = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([count, count])
        pick = small[src]
        src, dst, cnt = src[pick], dst[pick], cnt[pick]
        if src.size == 0:                           # the small ones left touch nothing: drop them
            new_ids = np.where(small, np.uint64(0), alive_ids)
            break
        # each small fragment's target: most shared faces, then the larger neighbour, then the lower id
        order = np.lexsort((alive_ids[dst], -sizes[dst], -cnt, src))
        src, dst = src[order], dst[order]
        first = np.r_[True, src[1:] != src[:-1]]
        src, dst = src[first], dst[first]
        n = sizes.size
        graph = sparse.coo_array((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
        n_groups, component = sparse.csgraph.connected_components(graph, directed=False)
        # each merged group keeps the id of its largest member (ties: the lowest id); a group holds
        # at most one fragment that is not small, since only small ones point at a target
        by_size = np.lexsort((alive_ids, -sizes))
        groups, first_member = np.unique(component[by_size], return_index=True)
        keeper = np.empty(n_groups, np.int64)
        keeper[groups] = by_size[first_member]
        alive_ids = alive_ids[keeper]
        sizes = np.bincount(component, weights=sizes, minlength=n_groups).astype(np.int64)
        owner = component[owner]
        # the contacts between groups: sums over their members' edges, internal ones gone
        cu, cv = component[u], component[v]
        between = cu != cv
        cu, cv, count = np.minimum(cu, cv)[between], np.maximum(cu, cv)[between], count[between]
        if cu.size:
            key, inverse = np.unique(cu * n_groups + cv, return_inverse=True)
            count = np.bincount(inverse, weights=count).astype(np.int64)
            u, v = key // n_groups, key % n_groups
        else:
            u = v = count = np.zeros(0, np.int64)
        if not np.any(sizes < min_size):
            new_ids = alive_ids
            break
    final = new_ids[owner]                            # new id of each original id
    if dense:
        lookup = np.zeros(int(ids.max()) + 1, labels.dtype)
        lookup[ids.astype(np.intp)] = final.astype(labels.dtype)
        return lookup[labels]
    position = np.searchsorted(ids, flat)
    out = np.where(flat != 0, final[np.minimum(position, ids.size - 1)], 0).astype(labels.dtype)
    return out.reshape(labels.shape)
