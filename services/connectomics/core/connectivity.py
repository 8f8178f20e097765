"""Region x region connectivity from streamline endpoints and an integer parcellation.

Streamlines are sequences of points in world coordinates (mm, RAS+); ``affine`` maps voxel
indices of the parcellation to the same world space. A streamline's **endpoints** (its first and
last points) fall in the voxel whose centre is nearest, ``floor(inverse(affine) @ p + 0.5)``
(the rounding of dipy's ``connectivity_matrix``), and take that voxel's label. Label 0 is
background; a streamline with an end in the background or outside the volume connects nothing
and is counted in ``n_unassigned``. The matrix is symmetric (a streamline has no direction);
``matrix[a, a]`` counts the streamlines with both ends in region ``a``.

Normalisations (``Connectivity.matrices``), regions in the order of ``Connectivity.labels``:

* ``"count"``: the number of streamlines joining the two regions (int64);
* ``"volume"``: count / sqrt(V_a * V_b), with region volumes V in **mm^3** (voxels times the
  voxel volume ``|det affine[:3, :3]|``), so the value does not change with the resolution the
  parcellation is sampled at; unit streamlines/mm^3;
* ``"length"``: the sum over the joining streamlines of 1 / length (mm^-1). Seeds are spread
  uniformly through white matter, so a bundle collects seeds in proportion to its volume and
  hence to its length, and long connections are over-counted; weighting each streamline by the
  inverse of its length removes that bias (Hagmann et al. 2008). The per-streamline weight is
  kept instead of a matrix of mean lengths divided out afterwards because it is additive (the
  matrix of a union of tractograms is the sum of theirs) and well-defined for every streamline.

``Connectivity.mean_length_mm`` also gives the mean length of the streamlines of each pair (0
where none), the usual companion of the count. Lengths are the sums of the distances between
consecutive points, in mm; they need every point, the rest only the endpoints, so they are
computed only when the ``length`` normalisation or a length limit asks for them.

Everything is vectorised: endpoints come from the flat point buffer of a nibabel
``ArraySequence`` (dipy's ``Streamlines``), labels from one fancy index, pairs from one
``bincount``.

Example
-------
>>> labels = np.zeros((4, 1, 1), int); labels[0] = 1; labels[3] = 2     # regions at x = 0 and x = 3
>>> affine = np.diag([2.0, 2.0, 2.0, 1.0])                               # 2 mm voxels
>>> streamlines = [np.array([[0.0, 0, 0], [3, 0, 0], [6, 0, 0]]),        # 1 -> 2, 6 mm
...                np.array([[0.0, 0, 0], [0.5, 0, 0]])]                   # 1 -> 1, 0.5 mm
>>> conn = connectivity_matrices(streamlines, affine, labels)
>>> conn.labels.tolist(), conn.matrices["count"].tolist()
([1, 2], [[1, 1], [1, 0]])
>>> conn.matrices["length"].round(4).tolist()
[[2.0, 0.1667], [0.1667, 0.0]]
>>> conn.region_volumes_mm3.tolist()                                     # 1 voxel of 8 mm^3 each
[8.0, 8.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Connectivity", "NORMALISATIONS", "as_streamlines", "streamline_lengths", "endpoint_labels",
           "region_volumes", "voxel_volume_mm3", "connectivity_matrices"]

NORMALISATIONS = ("count", "volume", "length")
"""The matrices :func:`connectivity_matrices` computes (see the module docstring)."""


def as_streamlines(streamlines):
    """A nibabel ``ArraySequence`` of ``(n_i, 3)`` float arrays from a sequence of streamlines.

    An ``ArraySequence`` (dipy's ``Streamlines``) is returned as it is, without a copy.
    """
    from nibabel.streamlines import ArraySequence
    if isinstance(streamlines, ArraySequence):
        seq = streamlines
    else:
        arrays = [np.asarray(s, dtype=np.float64) for s in streamlines]
        seq = ArraySequence(arrays) if arrays else ArraySequence()
    if len(seq) and (seq._data.ndim != 2 or seq._data.shape[1] != 3):
        raise ValueError(f"streamlines must be arrays of 3-D points, got points of shape {seq._data.shape[1:]}")
    return seq


def _flat(seq):
    # nibabel keeps the points of all streamlines in one buffer with per-streamline offsets and
    # lengths (its own loaders and dipy build and read sequences through these attributes)
    return seq._data, np.asarray(seq._offsets, dtype=np.intp), np.asarray(seq._lengths, dtype=np.intp)


def streamline_lengths(streamlines) -> np.ndarray:
    """Length of each streamline in mm (sum of the distances between consecutive points).

    A streamline of one point has length 0.

    Examples
    --------
    >>> streamline_lengths([np.array([[0.0, 0, 0], [3, 4, 0], [3, 4, 1]]), np.zeros((1, 3))]).tolist()
    [6.0, 0.0]
    """
    from dipy.tracking.streamline import length
    seq = as_streamlines(streamlines)
    if len(seq) == 0:
        return np.zeros(0)
    # dipy's compiled loop over the flat point buffer: one pass, ~10x numpy's diff/sqrt/cumsum
    return np.asarray(length(seq), dtype=np.float64).reshape(len(seq))


def endpoint_labels(streamlines, affine, parcellation) -> np.ndarray:
    """Labels at the first and last point of each streamline, shape ``(2, n)``; 0 outside the volume.

    Streamlines with no point get 0 at both ends.
    """
    seq = as_streamlines(streamlines)
    parcellation = np.asarray(parcellation)
    out = np.zeros((2, len(seq)), dtype=np.int64)
    if len(seq) == 0:
        return out
    data, offsets, lengths = _flat(seq)
    present = lengths > 0
    ends = np.stack([data[offsets[present]], data[offsets[present] + lengths[present] - 1]]).astype(np.float64)
    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    # dipy's mapping: points times the transposed linear part, plus the offset and half a voxel
    voxel = ends @ inverse[:3, :3].T
    voxel += inverse[:3, 3] + 0.5
    index = np.floor(voxel).astype(np.intp)
    inside = np.all((index >= 0) & (index < np.array(parcellation.shape[:3])), axis=-1)
    safe = np.where(inside[..., None], index, 0)
    values = parcellation[safe[..., 0], safe[..., 1], safe[..., 2]]
    out[:, present] = np.where(inside, values, 0)
    return out


def region_volumes(parcellation, affine, labels) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and mm^3 of each region in ``labels`` (mm^3 = voxels x |det affine[:3, :3]|)."""
    parcellation = np.asarray(parcellation)
    labels = np.asarray(labels, dtype=np.int64)
    present, counts = np.unique(parcellation, return_counts=True)
    where = np.searchsorted(present, labels)
    where = np.clip(where, 0, max(present.size - 1, 0))
    voxels = np.where(present[where] == labels, counts[where], 0).astype(np.int64)
    return voxels, voxels * voxel_volume_mm3(affine)


def voxel_volume_mm3(affine) -> float:
    """Volume of one voxel in mm^3: ``|det affine[:3, :3]|``, as the triple product of its columns
    (exact for diagonal affines, where ``numpy.linalg.det`` rounds)."""
    lin = np.asarray(affine, dtype=np.float64)[:3, :3]
    return abs(float(np.dot(lin[:, 0], np.cross(lin[:, 1], lin[:, 2]))))


@dataclass(frozen=True)
class Connectivity:
    """Connectivity matrices of a tractogram over a parcellation (see the module docstring)."""

    labels: np.ndarray
    """Region labels in matrix order (sorted, 0 excluded), int64, shape ``(K,)``."""
    matrices: dict = field(default_factory=dict)
    """Normalisation name -> ``(K, K)`` symmetric matrix: ``count`` int64, the others float64."""
    mean_length_mm: np.ndarray | None = None
    """Mean length (mm) of the streamlines joining each pair, 0 where none, ``(K, K)``; None when no
    lengths were computed (neither the ``length`` normalisation nor a length limit asked for them)."""
    region_volumes_voxels: np.ndarray | None = None
    """Voxels in each region, ``(K,)``."""
    region_volumes_mm3: np.ndarray | None = None
    """Volume of each region in mm^3, ``(K,)``."""
    n_streamlines: int = 0
    """Streamlines given."""
    n_used: int = 0
    """Streamlines within the length limits with both ends in a region (the sum of the upper triangle of ``count``)."""
    n_unassigned: int = 0
    """Streamlines within the length limits with an end in the background or outside the volume."""
    n_length_filtered: int = 0
    """Streamlines left out by ``min_length_mm`` / ``max_length_mm``."""


def connectivity_matrices(streamlines, affine, parcellation, *, normalisations=NORMALISATIONS,
                          labels=None, min_length_mm: float | None = None,
                          max_length_mm: float | None = None) -> Connectivity:
    """Region x region matrices of the streamlines' endpoints over an integer parcellation.

    Parameters
    ----------
    streamlines : sequence of (n_i, 3) arrays, or ArraySequence
        Points in world mm (RAS+).
    affine : ndarray, shape (4, 4)
        Voxel indices of ``parcellation`` to world mm.
    parcellation : ndarray of int, shape (X, Y, Z)
        Region labels, 0 for background; non-negative.
    normalisations : sequence of str
        Any of ``"count"``, ``"volume"``, ``"length"`` (see the module docstring).
    labels : sequence of int, optional
        Regions (rows) in this order; default every non-zero label of ``parcellation``, sorted.
        Streamlines ending in a region not listed count as unassigned.
    min_length_mm, max_length_mm : float, optional
        Only streamlines with ``min_length_mm <= length <= max_length_mm`` are counted.

    Returns
    -------
    Connectivity

    Raises
    ------
    ValueError
        For an unknown normalisation, a parcellation that is not 3-D non-negative integers, or
        length limits that are not ``0 <= min <= max``.
    """
    unknown = set(normalisations) - set(NORMALISATIONS)
    if unknown:
        raise ValueError(f"unknown normalisation(s) {sorted(unknown)}; choose from {list(NORMALISATIONS)}")
    parcellation = np.asarray(parcellation)
    if parcellation.ndim != 3 or parcellation.dtype.kind not in "biu":
        raise ValueError(f"the parcellation must be a 3-D integer array, got {parcellation.ndim}-D "
                         f"{parcellation.dtype}")
    if parcellation.size and parcellation.min() < 0:
        raise ValueError("the parcellation has negative labels")
    lo = 0.0 if min_length_mm is None else float(min_length_mm)
    hi = np.inf if max_length_mm is None else float(max_length_mm)
    if not (0 <= lo <= hi):
        raise ValueError(f"length limits must satisfy 0 <= min_length_mm <= max_length_mm, got {lo:g} and {hi:g}")
    if labels is None:
        labels = np.unique(parcellation)
        labels = labels[labels != 0].astype(np.int64)
    else:
        labels = np.asarray(labels, dtype=np.int64).ravel()
        if np.any(labels <= 0) or np.unique(labels).size != labels.size:
            raise ValueError("labels must be distinct positive region labels")
    k = labels.size

    seq = as_streamlines(streamlines)
    n = len(seq)
    # lengths need every point (the rest only the endpoints): compute them only when used
    with_lengths = "length" in normalisations or min_length_mm is not None or max_length_mm is not None
    if with_lengths:
        lengths = streamline_lengths(seq)
        keep = (lengths >= lo) & (lengths <= hi)
    else:
        lengths, keep = None, np.ones(n, dtype=bool)
    ends = endpoint_labels(seq, affine, parcellation)[:, keep]

    # label -> row: position in `labels`, or -1 for background and unlisted labels
    rows = np.full(ends.shape, -1, dtype=np.intp)
    if k:
        order = np.argsort(labels)
        pos = np.clip(np.searchsorted(labels[order], ends), 0, k - 1)
        rows = np.where(labels[order][pos] == ends, order[pos], -1)
    assigned = np.all(rows >= 0, axis=0)
    a, b = np.sort(rows[:, assigned], axis=0)
    pair = a * k + b                          # upper triangle (a <= b) of a K x K matrix

    def symmetric(weights, dtype):
        upper = np.bincount(pair, weights=weights, minlength=k * k).reshape(k, k).astype(dtype)
        return upper + np.triu(upper, 1).T

    count = symmetric(None, np.int64)
    voxels, mm3 = region_volumes(parcellation, affine, labels)
    matrices = {}
    if "count" in normalisations:
        matrices["count"] = count
    if "volume" in normalisations:
        norm = np.sqrt(np.outer(mm3, mm3))
        matrices["volume"] = np.divide(count, norm, out=np.zeros((k, k)), where=norm > 0)
    mean_length = None
    if with_lengths:
        w_length = lengths[keep][assigned]
        if "length" in normalisations:
            with np.errstate(divide="ignore"):
                inverse = np.where(w_length > 0, 1.0 / w_length, 0.0)   # a zero-length streamline adds nothing
            matrices["length"] = symmetric(inverse, np.float64)
        total_length = symmetric(w_length, np.float64)
        mean_length = np.divide(total_length, count, out=np.zeros((k, k)), where=count > 0)
    return Connectivity(labels=labels, matrices=matrices, mean_length_mm=mean_length, region_volumes_voxels=voxels,
                        region_volumes_mm3=mm3, n_streamlines=n, n_used=int(assigned.sum()),
                        n_unassigned=int(keep.sum() - assigned.sum()), n_length_filtered=int(n - keep.sum()))
