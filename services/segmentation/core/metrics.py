"""Scores of a neuron segmentation against ground truth: VOI split/merge, adapted Rand, CREMI.

Conventions (those of the CREMI challenge, https://cremi.org, and its ``cremi_python`` package):

* **Ground-truth label 0 is ignored**: voxels where ``ground_truth == 0`` (background, unlabelled
  or a masked border) take no part in any score. Every other label, including label 0 of the
  *segmentation*, is an ordinary segment (CREMI's VOI does the same; a segmentation that leaves
  voxels at 0 is scored as if those voxels were one segment).
* **Variation of information** (Meila 2007) is reported as its two conditional entropies, in
  **bits** (log base 2, as ``cremi_python`` and :func:`skimage.metrics.variation_of_information`):
  ``voi_split = H(seg | gt)`` (over-segmentation: one true neuron cut into pieces) and
  ``voi_merge = H(gt | seg)`` (under-segmentation: neurons glued together). ``base=np.e`` gives nats.
* **Adapted Rand error** (Arganda-Carreras et al. 2015, the SNEMI3D/CREMI definition) is
  ``1 - F``, the F-score of the Rand precision ``sum_ij n_ij^2 / sum_j s_j^2`` and recall
  ``sum_ij n_ij^2 / sum_i t_i^2``, with ``n_ij`` the contingency table (voxels with truth label
  ``i`` and segment ``j``), ``t_i`` its row sums and ``s_j`` its column sums. The squares count
  ordered voxel pairs *including* a voxel paired with itself, as in the paper and CREMI;
  ``count_self_pairs=False`` uses ``n (n - 1)`` instead, the convention of
  :func:`skimage.metrics.adapted_rand_error`.
* **CREMI score** ``sqrt(adapted_rand_error * (voi_split + voi_merge))``, the geometric mean the
  challenge ranks by. All scores are 0 for a perfect segmentation, larger is worse.

Everything is computed from the *sparse* contingency table, the distinct (segment, truth) label
pairs and their voxel counts, found by one sort of the paired labels: memory and time grow with
the number of voxels and of overlapping pairs, never with ``n_gt x n_seg``, so a 250^3 volume
with tens of thousands of labels scores in a few seconds.

Example
-------
>>> gt = np.array([[[1, 1, 2, 2]]])
>>> segmentation_scores(gt, gt).cremi_score
0.0
>>> scores = segmentation_scores(np.array([[[5, 5, 5, 5]]]), gt)   # the two neurons merged
>>> round(scores.voi_split, 6), round(scores.voi_merge, 6)
(0.0, 1.0)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["contingency_table", "variation_of_information", "adapted_rand_error", "segmentation_scores",
           "SegmentationScores"]


# ---- input checks shared by the segmentation core -------------------------------------------------------

def _check_labels(name: str, labels, *, ndim: int | None = 3) -> np.ndarray:
    """Return ``labels`` as a non-negative integer ndarray, or raise ValueError naming it."""
    labels = np.asarray(labels)
    if ndim is not None and labels.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D label volume with axes (z, y, x), got shape {labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative labels (min {labels.min()}); labels are >= 0, 0 is background")
    return labels


def _check_volume(name: str, volume, *, ndim: int = 3, channels: bool = False) -> np.ndarray:
    """Return ``volume`` as a finite float ndarray (float32 kept, other types to float64)."""
    volume = np.asarray(volume)
    want = ndim + (1 if channels else 0)
    if volume.ndim != want:
        axes = "(channel, z, y, x)" if channels else "(z, y, x)"
        raise ValueError(f"{name} must be {want}-D with axes {axes}, got shape {volume.shape}")
    if volume.dtype == bool or not (np.issubdtype(volume.dtype, np.number)) or np.iscomplexobj(volume):
        raise ValueError(f"{name} must hold real numbers, got dtype {volume.dtype}")
    if volume.dtype != np.float32:
        volume = volume.astype(np.float64)
    if not np.isfinite(volume).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(volume))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first}, shape {volume.shape})")
    return volume


def _check_same_shape(name_a: str, a, name_b: str, b) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _pair_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pairs ``(a[k], b[k])`` and how often each occurs, by one sort of packed keys.

    Two labels below 2**32 pack into one uint64 key; larger labels are first replaced by their rank.
    Returns ``(a_values, b_values, counts)`` sorted by ``(a, b)``.
    """
    a = a.ravel().astype(np.uint64, copy=False)
    b = b.ravel().astype(np.uint64, copy=False)
    if a.size == 0:
        empty = np.zeros(0, np.uint64)
        return empty, empty, np.zeros(0, np.int64)
    limit = np.uint64(1 << 32)
    if a.max() < limit and b.max() < limit:
        keys, counts = np.unique((a << np.uint64(32)) | b, return_counts=True)
        return keys >> np.uint64(32), keys & np.uint64(0xFFFFFFFF), counts.astype(np.int64)
    a_ids, a_rank = np.unique(a, return_inverse=True)
    b_ids, b_rank = np.unique(b, return_inverse=True)
    keys, counts = np.unique(a_rank.astype(np.uint64) * np.uint64(b_ids.size) + b_rank.astype(np.uint64),
                             return_counts=True)
    return a_ids[keys // np.uint64(b_ids.size)], b_ids[keys % np.uint64(b_ids.size)], counts.astype(np.int64)


# ---- scores ----------------------------------------------------------------------------------------------

def contingency_table(segmentation, ground_truth, *, ignore_ground_truth=(0,)):
    """Sparse contingency table of a segmentation against the ground truth.

    Parameters
    ----------
    segmentation, ground_truth : array_like of non-negative int, same shape
        Label volumes, axes ``(z, y, x)`` (any number of dimensions is accepted).
    ignore_ground_truth : sequence of int, optional
        Truth labels whose voxels are left out (default: 0, background).

    Returns
    -------
    seg_ids, gt_ids : ndarray of uint64, shape (n_pairs,)
        The distinct (segment, truth) label pairs among the counted voxels, sorted.
    counts : ndarray of int64, shape (n_pairs,)
        Voxels of each pair; ``counts.sum()`` is the number of counted voxels.

    Example
    -------
    >>> contingency_table(np.array([1, 1, 2, 2]), np.array([0, 3, 3, 3]))
    (array([1, 2], dtype=uint64), array([3, 3], dtype=uint64), array([1, 2]))
    """
    seg = _check_labels("segmentation", segmentation, ndim=None)
    gt = _check_labels("ground_truth", ground_truth, ndim=None)
    _check_same_shape("segmentation", seg, "ground_truth", gt)
    seg, gt = seg.ravel(), gt.ravel()
    ignore = [int(label) for label in ignore_ground_truth]
    if ignore:
        keep = ~np.isin(gt, np.asarray(ignore, dtype=gt.dtype))
        if not keep.all():
            seg, gt = seg[keep], gt[keep]
    return _pair_keys(seg, gt)


def _entropy_terms(seg_ids, gt_ids, counts, log):
    """H(seg|gt) and H(gt|seg) from the sparse table, with log the chosen logarithm."""
    n = counts.sum()
    if n == 0:
        raise ValueError("no voxel to score: ground_truth is all ignored labels (0)")
    p = counts / n
    _, seg_inverse = np.unique(seg_ids, return_inverse=True)
    _, gt_inverse = np.unique(gt_ids, return_inverse=True)
    p_seg = np.bincount(seg_inverse, weights=p)
    p_gt = np.bincount(gt_inverse, weights=p)
    # H(S|G) = -sum p_sg log(p_sg / p_g); H(G|S) = -sum p_sg log(p_sg / p_s)
    h_seg_given_gt = float(-np.sum(p * log(p / p_gt[gt_inverse])))
    h_gt_given_seg = float(-np.sum(p * log(p / p_seg[seg_inverse])))
    # -0.0 and rounding noise of exact zeros read badly; the entropies are >= 0
    return (h_seg_given_gt if h_seg_given_gt > 0 else 0.0), (h_gt_given_seg if h_gt_given_seg > 0 else 0.0)


def _logarithm(base):
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not base > 1 or not math.isfinite(base):
        raise ValueError(f"base must be a finite real number > 1, got {base!r}")
    if base == 2:
        return np.log2
    scale = math.log(base)
    return lambda x: np.log(x) / scale


def variation_of_information(segmentation, ground_truth, *, base=2):
    """Split and merge parts of the variation of information, ground-truth label 0 ignored.

    Parameters
    ----------
    segmentation, ground_truth : array_like of non-negative int, same shape
        Label volumes, axes ``(z, y, x)``.
    base : float, optional
        Base of the logarithm: 2 (default, bits, as CREMI) or ``np.e`` (nats).

    Returns
    -------
    voi_split : float
        ``H(seg | gt)``: 0 when no true neuron is split over several segments.
    voi_merge : float
        ``H(gt | seg)``: 0 when no segment covers several true neurons.

    Example
    -------
    >>> gt = np.array([[[1, 1, 1, 1]]])
    >>> variation_of_information(np.array([[[1, 1, 2, 2]]]), gt)     # one neuron cut in half: 1 bit
    (1.0, 0.0)
    """
    table = contingency_table(segmentation, ground_truth)
    return _entropy_terms(*table, _logarithm(base))


def _rand_terms(seg_ids, gt_ids, counts, count_self_pairs):
    n = counts.sum()
    if n == 0:
        raise ValueError("no voxel to score: ground_truth is all ignored labels (0)")
    counts = counts.astype(np.float64)
    _, seg_inverse = np.unique(seg_ids, return_inverse=True)
    _, gt_inverse = np.unique(gt_ids, return_inverse=True)
    seg_sizes = np.bincount(seg_inverse, weights=counts)
    gt_sizes = np.bincount(gt_inverse, weights=counts)
    sum_joint, sum_seg, sum_gt = counts @ counts, seg_sizes @ seg_sizes, gt_sizes @ gt_sizes
    if not count_self_pairs:
        sum_joint, sum_seg, sum_gt = sum_joint - n, sum_seg - n, sum_gt - n
    # no pairs at all (every segment or neuron a single voxel, distinct pairs only): define the
    # ratio as 1 when the numerator is 0 too (nothing to get wrong), else the usual quotient
    precision = sum_joint / sum_seg if sum_seg > 0 else 1.0
    recall = sum_joint / sum_gt if sum_gt > 0 else 1.0
    f_score = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    error = 1.0 - f_score
    return (float(error) if error > 0 else 0.0), float(precision), float(recall)


def adapted_rand_error(segmentation, ground_truth, *, count_self_pairs=True):
    """Adapted Rand error (SNEMI3D/CREMI), with Rand precision and recall; truth label 0 ignored.

    Parameters
    ----------
    segmentation, ground_truth : array_like of non-negative int, same shape
        Label volumes, axes ``(z, y, x)``.
    count_self_pairs : bool, optional
        True (default): pair counts are squared sizes ``n^2``, as in Arganda-Carreras et al. (2015)
        and CREMI. False: ``n (n - 1)``, pairs of distinct voxels, as
        :func:`skimage.metrics.adapted_rand_error`.

    Returns
    -------
    error : float
        ``1 - 2 P R / (P + R)``, in [0, 1].
    precision : float
        Rand precision: of the voxel pairs in one segment, the fraction also in one true neuron
        (1 when nothing is merged).
    recall : float
        Rand recall: of the voxel pairs in one true neuron, the fraction also in one segment
        (1 when nothing is split).

    Example
    -------
    >>> gt = np.array([[[1, 1, 2, 2]]])
    >>> adapted_rand_error(np.array([[[7, 7, 7, 7]]]), gt)   # merged: precision 8/16, recall 1
    (0.33333333333333337, 0.5, 1.0)
    """
    table = contingency_table(segmentation, ground_truth)
    return _rand_terms(*table, bool(count_self_pairs))


@dataclass(frozen=True)
class SegmentationScores:
    """All scores of :func:`segmentation_scores`; 0 is perfect for every error.

    Attributes
    ----------
    voi_split, voi_merge : float
        Conditional entropies ``H(seg|gt)`` and ``H(gt|seg)`` in the unit of ``voi_base``.
    adapted_rand_error, rand_precision, rand_recall : float
        As :func:`adapted_rand_error` (self pairs counted).
    cremi_score : float
        ``sqrt(adapted_rand_error * (voi_split + voi_merge))``.
    n_voxels : int
        Voxels scored (those with ground-truth label other than 0).
    voi_base : float
        Base of the logarithm of the VOI terms (2: bits).
    """

    voi_split: float
    voi_merge: float
    adapted_rand_error: float
    rand_precision: float
    rand_recall: float
    cremi_score: float
    n_voxels: int
    voi_base: float = 2.0

    @property
    def voi(self) -> float:
        """Total variation of information, ``voi_split + voi_merge``."""
        return self.voi_split + self.voi_merge

    def to_dict(self) -> dict:
        """The scores as a JSON-ready dict (plus ``voi``)."""
        return {**asdict(self), "voi": self.voi}


def segmentation_scores(segmentation, ground_truth, *, voi_base=2):
    """VOI split/merge, adapted Rand error and the CREMI score, from one contingency table.

    Parameters
    ----------
    segmentation, ground_truth : array_like of non-negative int, same shape
        Label volumes, axes ``(z, y, x)``. Ground-truth label 0 is ignored.
    voi_base : float, optional
        Base of the VOI logarithm (2, bits, by default, as CREMI).

    Returns
    -------
    SegmentationScores

    Example
    -------
    >>> gt = np.array([[[1, 1, 2, 2]]])
    >>> s = segmentation_scores(np.array([[[1, 2, 3, 4]]]), gt)   # every voxel its own segment
    >>> s.voi_split, s.voi_merge, s.rand_precision, s.rand_recall
    (1.0, 0.0, 1.0, 0.5)
    """
    return scores_from_table(*contingency_table(segmentation, ground_truth), voi_base=voi_base)


def scores_from_table(seg_ids, gt_ids, counts, *, voi_base=2):
    """:func:`segmentation_scores` from a sparse contingency table (:func:`contingency_table`).

    Tables of blocks can be summed (same label pairs added) and scored once, so a volume larger
    than memory is scored block by block with the same result as in one piece.

    Example
    -------
    >>> table = contingency_table(np.array([[[1, 2, 3, 4]]]), np.array([[[1, 1, 2, 2]]]))
    >>> scores_from_table(*table).voi_split
    1.0
    """
    counts = np.asarray(counts)
    if int(counts.sum()) == 0:
        raise ValueError("no voxel to score: the ground truth is 0 (unlabelled) everywhere")
    voi_split, voi_merge = _entropy_terms(seg_ids, gt_ids, counts, _logarithm(voi_base))
    are, precision, recall = _rand_terms(seg_ids, gt_ids, counts, True)
    return SegmentationScores(voi_split=voi_split, voi_merge=voi_merge, adapted_rand_error=are,
                              rand_precision=precision, rand_recall=recall,
                              cremi_score=math.sqrt(are * (voi_split + voi_merge)),
                              n_voxels=int(counts.sum()), voi_base=float(voi_base))
