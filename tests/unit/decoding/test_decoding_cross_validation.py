"""blocked_kfold: contiguous test blocks that partition the samples, guard gaps, errors."""

from __future__ import annotations

import numpy as np
import pytest

from services.decoding.core.cross_validation import _blocked_folds, blocked_kfold


@pytest.mark.parametrize("n_samples, n_folds, gap", [(10, 2, 0), (10, 3, 1), (101, 5, 7), (1000, 10, 25),
                                                     (7, 7, 0)])
def test_test_blocks_partition_the_samples_and_gaps_separate_train_from_test(n_samples, n_folds, gap):
    folds = blocked_kfold(n_samples, n_folds=n_folds, gap=gap)
    assert len(folds) == n_folds
    tests = [test for _, test in folds]
    np.testing.assert_array_equal(np.concatenate(tests), np.arange(n_samples))   # a partition, in order
    sizes = [t.size for t in tests]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert np.all(np.diff(test) == 1)                                         # contiguous
        assert train.dtype == np.int64 and test.dtype == np.int64
        assert np.all(np.diff(train) > 0)
        distance = np.abs(train[:, None] - test[None, :]).min()
        assert distance > gap
        # nothing more than the gap is dropped
        expected = np.setdiff1d(np.arange(n_samples), np.arange(test[0] - gap, test[-1] + gap + 1))
        np.testing.assert_array_equal(train, expected)


def test_small_example():
    folds = blocked_kfold(6, n_folds=3, gap=1)
    assert [t.tolist() for _, t in folds] == [[0, 1], [2, 3], [4, 5]]
    assert [t.tolist() for t, _ in folds] == [[3, 4, 5], [0, 5], [0, 1, 2]]


def test_gap_is_measured_in_time_when_positions_have_a_hole():
    # an outer training set: samples 0..9 and 30..39 (10..29 were the outer test block and gaps)
    positions = np.concatenate([np.arange(10), np.arange(30, 40)])
    folds = _blocked_folds(positions, n_folds=4, gap=3)
    for train, test in folds:
        assert np.abs(positions[train][:, None] - positions[test][None, :]).min() > 3
    # the test block 5..9 lies far from 30..39 in time, so no sample of that side is dropped
    train, test = folds[1]
    np.testing.assert_array_equal(positions[test], [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(positions[train], [0, 1] + list(range(30, 40)))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 10, "n_folds": 1, "gap": 0}, r"n_folds must be an integer >= 2, got 1"),
    ({"n_samples": 10, "n_folds": 11, "gap": 0}, r"n_folds=11 is larger than n_samples=10"),
    ({"n_samples": 1, "n_folds": 2, "gap": 0}, r"n_samples must be an integer >= 2"),
    ({"n_samples": 10, "n_folds": 2.0, "gap": 0}, r"n_folds must be an integer"),
    ({"n_samples": 10, "n_folds": 2, "gap": -1}, r"gap must be an integer >= 0, got -1"),
    ({"n_samples": 10, "n_folds": 2, "gap": 5}, r"gap=5 leaves fold 0 .* without training samples"),
    ({"n_samples": True, "n_folds": 2, "gap": 0}, r"n_samples must be an integer"),
])
def test_bad_parameters_raise(kwargs, message):
    n_samples = kwargs.pop("n_samples")
    with pytest.raises(ValueError, match=message):
        blocked_kfold(n_samples, **kwargs)
