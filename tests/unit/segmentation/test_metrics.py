"""VOI split/merge, adapted Rand error and the CREMI score against hand-computed values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import metrics as skmetrics

from services.segmentation.core.metrics import (adapted_rand_error, contingency_table, segmentation_scores,
                                                variation_of_information)


def vol(values):
    """A (1, 1, n) volume from a list, or (1, h, w) from a nested list."""
    a = np.asarray(values)
    return a.reshape((1,) * (3 - a.ndim) + a.shape)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.uint64])
def test_identical_and_relabelled_segmentations_score_zero(dtype):
    rng = np.random.default_rng(0)
    gt = rng.integers(1, 6, size=(4, 5, 6)).astype(dtype)
    permuted = np.array([0, 40, 10, 30, 20, 50], dtype=np.uint64)[gt.astype(np.int64)]    # other ids, one to one
    for seg in (gt, permuted):
        s = segmentation_scores(seg, gt)
        assert (s.voi_split, s.voi_merge, s.adapted_rand_error, s.cremi_score) == (0.0, 0.0, 0.0, 0.0)
        assert s.rand_precision == pytest.approx(1.0) and s.rand_recall == pytest.approx(1.0)
        assert s.n_voxels == gt.size


def test_everything_merged():
    # gt: two neurons of 2 voxels. One segment over all: nothing split, H(gt|seg) = H(gt) = 1 bit.
    # pairs (self pairs counted): joint 2^2 + 2^2 = 8, segment 4^2 = 16, truth 8
    # -> precision 8/16, recall 1, F = 2/3, error 1/3, CREMI sqrt(1/3 * 1)
    s = segmentation_scores(vol([9, 9, 9, 9]), vol([1, 1, 2, 2]))
    assert s.voi_split == 0.0 and s.voi_merge == pytest.approx(1.0)
    assert (s.rand_precision, s.rand_recall) == (pytest.approx(0.5), pytest.approx(1.0))
    assert s.adapted_rand_error == pytest.approx(1 / 3)
    assert s.cremi_score == pytest.approx(math.sqrt(1 / 3))


def test_everything_split():
    # every voxel its own segment: each neuron of 2 split in two halves: H(seg|gt) = 1 bit, nothing merged;
    # joint = 4 singletons = 4, segment = 4, truth = 8 -> precision 1, recall 1/2, error 1/3
    s = segmentation_scores(vol([1, 2, 3, 4]), vol([1, 1, 2, 2]))
    assert s.voi_split == pytest.approx(1.0) and s.voi_merge == 0.0
    assert (s.rand_precision, s.rand_recall) == (pytest.approx(1.0), pytest.approx(0.5))
    assert s.adapted_rand_error == pytest.approx(1 / 3)


def test_two_by_two_worked_example():
    # gt = [[1, 1],      seg = [[1, 2],
    #       [2, 2]]             [2, 2]]
    # contingency n(seg, gt): (1,1) = 1, (2,1) = 1, (2,2) = 2; N = 4; p = 1/4, 1/4, 1/2
    # p_gt = (1/2, 1/2), p_seg = (1/4, 3/4)
    # H(seg|gt) = -[1/4 log2(1/4 / 1/2) + 1/4 log2(1/4 / 1/2) + 1/2 log2(1/2 / 1/2)] = 1/4 + 1/4 = 0.5
    # H(gt|seg) = -[1/4 log2(1/4 / 1/4) + 1/4 log2(1/4 / 3/4) + 1/2 log2(1/2 / 3/4)]
    #           = 1/4 log2 3 + 1/2 (log2 3 - 1) = 3/4 log2 3 - 1/2 = 0.68872...
    # Rand, self pairs: joint 1 + 1 + 4 = 6, segment 1^2 + 3^2 = 10, truth 2^2 + 2^2 = 8
    #   precision 6/10, recall 6/8, F = 2 * 0.45 / 1.35 = 2/3, error 1/3
    # Rand, distinct pairs (n^2 - n): joint 2, segment 6, truth 4 -> P 1/3, R 1/2, F 0.4, error 0.6
    gt, seg = vol([[1, 1], [2, 2]]), vol([[1, 2], [2, 2]])
    split, merge = variation_of_information(seg, gt)
    assert split == pytest.approx(0.5)
    assert merge == pytest.approx(0.75 * math.log2(3) - 0.5)
    error, precision, recall = adapted_rand_error(seg, gt)
    assert (error, precision, recall) == (pytest.approx(1 / 3), pytest.approx(0.6), pytest.approx(0.75))
    error, precision, recall = adapted_rand_error(seg, gt, count_self_pairs=False)
    assert (error, precision, recall) == (pytest.approx(0.6), pytest.approx(1 / 3), pytest.approx(0.5))
    s = segmentation_scores(seg, gt)
    assert s.cremi_score == pytest.approx(math.sqrt((1 / 3) * (0.5 + 0.75 * math.log2(3) - 0.5)))
    assert s.voi == pytest.approx(split + merge)
    # in nats the entropies scale by ln 2
    split_nats, merge_nats = variation_of_information(seg, gt, base=np.e)
    assert split_nats == pytest.approx(0.5 * math.log(2)) and merge_nats == pytest.approx(merge * math.log(2))


def test_ground_truth_zero_is_ignored_and_segmentation_zero_is_a_label():
    gt, seg = vol([[1, 1], [2, 2]]), vol([[1, 2], [2, 2]])
    base = segmentation_scores(seg, gt)
    # extra voxels with truth 0 change nothing, whatever the segmentation says there
    gt_padded = np.concatenate([gt, np.zeros_like(gt)], axis=0)
    seg_padded = np.concatenate([seg, np.array([[[7, 1], [2, 0]]])], axis=0)
    padded = segmentation_scores(seg_padded, gt_padded)
    assert padded.to_dict() == pytest.approx(base.to_dict())
    assert padded.n_voxels == 4
    # segment 0 is an ordinary segment (CREMI's VOI convention): relabelling 2 -> 0 changes nothing
    assert segmentation_scores(np.where(seg == 2, 0, seg), gt).to_dict() == pytest.approx(base.to_dict())


def test_matches_scikit_image_where_conventions_agree():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 6, size=(6, 7, 8))
    seg = (gt + (rng.random(gt.shape) < 0.3) * rng.integers(1, 4, size=gt.shape)) % 7
    # scikit-image's VOI, ignoring truth label 0, returns (H(seg|gt), H(gt|seg)), in bits
    np.testing.assert_allclose(variation_of_information(seg, gt),
                               skmetrics.variation_of_information(gt, seg, ignore_labels=[0]), rtol=1e-12)
    # scikit-image counts distinct pairs, n (n - 1); it names precision and recall the other way round
    # (0.26: precision over the truth's pairs), so compare the error and the pair of ratios
    ours = adapted_rand_error(seg, gt, count_self_pairs=False)
    theirs = skmetrics.adapted_rand_error(gt, seg, ignore_labels=(0,))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    assert sorted(ours[1:]) == pytest.approx(sorted(theirs[1:]), rel=1e-12)


def test_large_ids_give_the_same_table_and_scores():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 4, size=(3, 4, 5)).astype(np.uint64)
    seg = rng.integers(0, 5, size=gt.shape).astype(np.uint64)
    big = np.uint64(2**40)
    small_ids = contingency_table(seg, gt)
    big_ids = contingency_table(seg + big, gt + np.where(gt > 0, big, 0).astype(np.uint64))
    np.testing.assert_array_equal(small_ids[0] + big, big_ids[0])
    np.testing.assert_array_equal(small_ids[2], big_ids[2])
    assert segmentation_scores(seg + big, np.where(gt > 0, gt + big, 0)).to_dict() == pytest.approx(
        segmentation_scores(seg, gt).to_dict())


def test_contingency_table_is_sparse_pairs():
    seg = vol([1, 1, 2, 2, 2, 5])
    gt = vol([3, 3, 3, 0, 4, 4])
    seg_ids, gt_ids, counts = contingency_table(seg, gt)
    assert seg_ids.tolist() == [1, 2, 2, 5] and gt_ids.tolist() == [3, 3, 4, 4] and counts.tolist() == [2, 1, 1, 1]
    _, _, all_counts = contingency_table(seg, gt, ignore_ground_truth=())
    assert all_counts.sum() == 6


@pytest.mark.parametrize("bad, message", [
    (lambda gt: (gt[0], gt), "same shape"),
    (lambda gt: (gt.astype(float), gt), "integer"),
    (lambda gt: (gt - 5, gt), "negative"),
    (lambda gt: (gt, np.zeros_like(gt)), "no voxel"),
])
def test_bad_input_raises_value_error_naming_the_problem(bad, message):
    gt = np.arange(1, 9).reshape(2, 2, 2)
    seg, truth = bad(gt)
    with pytest.raises(ValueError, match=message):
        segmentation_scores(seg, truth)
    with pytest.raises(ValueError, match="base"):
        variation_of_information(gt, gt, base=1)
