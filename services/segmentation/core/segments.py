"""A table of the segments of a label volume: size, bounding box, centroid, block by block.

Axes are always ``(z, y, x)``. One row per nonzero label, as a dict of equal-length columns (ready
for Parquet or JSON):

=========================  =========  ======================================================
column                     dtype      meaning
=========================  =========  ======================================================
``id``                     uint64     the label, ascending
``voxel_count``            int64      voxels with that label
``volume``                 float64    ``voxel_count * prod(voxel_size)``, physical units cubed
``bbox_z0 .. bbox_x0``     int64      first voxel of the bounding box (inclusive)
``bbox_z1 .. bbox_x1``     int64      end of the bounding box (exclusive, like a slice)
``centroid_z .. _x``       float64    mean voxel position, in voxels
``physical_centroid_z ..`` float64    the same times ``voxel_size`` (e.g. nm)
=========================  =========  ======================================================

:class:`SegmentTableAccumulator` adds blocks one at a time (sums, minima and maxima combine
exactly over blocks), so a Zarr volume larger than memory is tabulated block by block with
the same result as the whole volume at once.

Example
-------
>>> labels = np.zeros((1, 4, 4), np.uint64); labels[0, :2, :2] = 7
>>> table = segment_table(labels, voxel_size=(40.0, 4.0, 4.0))
>>> table["id"], table["voxel_count"], table["centroid_y"], table["physical_centroid_y"]
(array([7], dtype=uint64), array([4]), array([0.5]), array([2.]))
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .metrics import _check_labels

__all__ = ["segment_table", "SegmentTableAccumulator", "SEGMENT_TABLE_COLUMNS"]

_AXES = ("z", "y", "x")
SEGMENT_TABLE_COLUMNS = (("id", "voxel_count", "volume")
                         + tuple(f"bbox_{a}0" for a in _AXES) + tuple(f"bbox_{a}1" for a in _AXES)
                         + tuple(f"centroid_{a}" for a in _AXES) + tuple(f"physical_centroid_{a}" for a in _AXES))
"""The columns of a segment table, in order."""


def _check_voxel_size(voxel_size):
    try:
        size = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise ValueError(f"voxel_size must be 3 positive numbers (z, y, x), got {voxel_size!r}") from None
    if len(size) != 3 or not all(np.isfinite(v) and v > 0 for v in size):
        raise ValueError(f"voxel_size must be 3 positive numbers (z, y, x), got {voxel_size!r}")
    return size


class SegmentTableAccumulator:
    """Collects per-label statistics block by block; :meth:`table` gives the segment table.

    Parameters
    ----------
    voxel_size : tuple of 3 float, optional
        Physical size of a voxel ``(z, y, x)``, for ``volume`` and ``physical_centroid_*``.

    Example
    -------
    >>> labels = np.array([[[1, 1, 2, 2]]], np.uint64)
    >>> acc = SegmentTableAccumulator()
    >>> acc.add(labels[..., :3]); acc.add(labels[..., 3:], offset=(0, 0, 3))
    >>> acc.table()["centroid_x"], acc.table()["bbox_x1"]
    (array([0.5, 2.5]), array([2, 4]))
    """

    def __init__(self, *, voxel_size=(1.0, 1.0, 1.0)):
        self.voxel_size = _check_voxel_size(voxel_size)
        self._parts = []

    def add(self, labels, *, offset=(0, 0, 0)) -> None:
        """Add one block of labels whose first voxel is at ``offset`` ``(z, y, x)`` in the volume."""
        labels = _check_labels("labels", labels)
        offset = np.asarray(offset, dtype=np.int64)
        if offset.shape != (3,):
            raise ValueError(f"offset must be 3 integers (z, y, x), got {offset.tolist()}")
        ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(labels.shape)
        if ids.size and ids[0] == 0:                        # background: rank 0, dropped below
            ids, counts = ids[1:], counts[1:]
        else:
            inverse = inverse + 1
        if ids.size == 0:
            return
        n = ids.size
        flat = inverse.ravel()
        sums = np.empty((n, 3))
        for axis in range(3):
            coordinate = np.arange(labels.shape[axis], dtype=np.float64) + offset[axis]
            shape = [1, 1, 1]
            shape[axis] = -1
            weights = np.broadcast_to(coordinate.reshape(shape), labels.shape).ravel()
            sums[:, axis] = np.bincount(flat, weights=weights, minlength=n + 1)[1:]
        boxes = ndimage.find_objects(inverse, max_label=n)
        low = np.array([[s.start for s in box] for box in boxes], np.int64) + offset
        high = np.array([[s.stop for s in box] for box in boxes], np.int64) + offset
        self._parts.append((ids.astype(np.uint64), counts.astype(np.int64), sums, low, high))

    def table(self) -> dict:
        """The segment table of everything added, one row per label, ``id`` ascending."""
        if not self._parts:
            columns = {name: np.zeros(0, np.float64) for name in SEGMENT_TABLE_COLUMNS}
            columns["id"] = np.zeros(0, np.uint64)
            for name in ("voxel_count",) + SEGMENT_TABLE_COLUMNS[3:9]:
                columns[name] = np.zeros(0, np.int64)
            return columns
        ids = np.concatenate([p[0] for p in self._parts])
        unique, inverse = np.unique(ids, return_inverse=True)
        n = unique.size
        counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in self._parts]), minlength=n)
        counts = counts.astype(np.int64)
        sums = np.stack([np.bincount(inverse, weights=np.concatenate([p[2][:, a] for p in self._parts]),
                                     minlength=n) for a in range(3)], axis=1)
        low = np.full((n, 3), np.iinfo(np.int64).max)
        high = np.full((n, 3), np.iinfo(np.int64).min)
        np.minimum.at(low, inverse, np.concatenate([p[3] for p in self._parts]))
        np.maximum.at(high, inverse, np.concatenate([p[4] for p in self._parts]))
        centroid = sums / counts[:, None]
        columns = {"id": unique, "voxel_count": counts, "volume": counts * float(np.prod(self.voxel_size))}
        for a, axis in enumerate(_AXES):
            columns[f"bbox_{axis}0"] = low[:, a]
        for a, axis in enumerate(_AXES):
            columns[f"bbox_{axis}1"] = high[:, a]
        for a, axis in enumerate(_AXES):
            columns[f"centroid_{axis}"] = centroid[:, a]
        for a, axis in enumerate(_AXES):
            columns[f"physical_centroid_{axis}"] = centroid[:, a] * self.voxel_size[a]
        return columns


def segment_table(labels, *, voxel_size=(1.0, 1.0, 1.0), blocks=None):
    """Size, bounding box and centroid of every nonzero label of a ``(z, y, x)`` volume.

    Parameters
    ----------
    labels : array-like of non-negative int, shape (z, y, x)
        Label volume; numpy, or any sliceable array (Zarr) when ``blocks`` is given.
    voxel_size : tuple of 3 float, optional
        Physical voxel size ``(z, y, x)``, e.g. ``(40, 4, 4)`` nm.
    blocks : sequence of Block, optional
        Tabulate block by block (reading ``labels[block.core]``), for volumes larger than memory;
        the result is the same as without.

    Returns
    -------
    table : dict of str to ndarray
        The columns of :data:`SEGMENT_TABLE_COLUMNS`, one row per label.

    Example
    -------
    >>> labels = np.zeros((2, 3, 3), np.uint32); labels[1, 1:, 1:] = 5
    >>> t = segment_table(labels)
    >>> [int(t[c][0]) for c in ("bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1")]
    [1, 1, 1, 2, 3, 3]
    """
    accumulator = SegmentTableAccumulator(voxel_size=voxel_size)
    if blocks is None:
        accumulator.add(labels)
    else:
        shape = tuple(int(s) for s in getattr(labels, "shape", ()))
        if len(shape) != 3:
            raise ValueError(f"labels must be a 3-D label volume with axes (z, y, x), got shape {shape}")
        for block in blocks:
            if any(s.stop > n for s, n in zip(block.core, shape)):
                raise ValueError(f"block {block.describe()} reaches beyond labels of shape {shape}")
            accumulator.add(np.asarray(labels[block.core]), offset=tuple(s.start for s in block.core))
    return accumulator.table()
