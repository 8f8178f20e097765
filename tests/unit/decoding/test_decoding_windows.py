"""history_design_matrix: values against a hand-built example and a loop, the valid mask, errors."""

from __future__ import annotations

import numpy as np
import pytest

from services.decoding.core.windows import history_design_matrix


def test_hand_built_example():
    f = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0], [4.0, -4.0], [5.0, -5.0]])
    X, valid = history_design_matrix(f, history_bins=2, future_bins=1)
    nan = np.nan
    # columns: lag -2 (both features), lag -1, lag 0, lag +1
    expected = np.array([
        [nan, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, nan, nan, nan, nan, nan, nan],
        [1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 4.0, -4.0],
        [2.0, -2.0, 3.0, -3.0, 4.0, -4.0, 5.0, -5.0],
        [nan, nan, nan, nan, nan, nan, nan, nan],
    ])
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(valid, [False, False, True, True, False])


@pytest.mark.parametrize("history_bins, future_bins", [(0, 0), (3, 0), (0, 2), (4, 3)])
def test_matches_a_loop_and_marks_exactly_the_edges_invalid(history_bins, future_bins):
    rng = np.random.default_rng(history_bins * 10 + future_bins)
    f = rng.poisson(2.0, size=(50, 3)).astype(np.float32)
    X, valid = history_design_matrix(f, history_bins=history_bins, future_bins=future_bins)
    n_lags = history_bins + 1 + future_bins
    assert X.shape == (50, 3 * n_lags) and X.dtype == np.float32
    for t in range(50):
        if history_bins <= t < 50 - future_bins:
            assert valid[t]
            np.testing.assert_array_equal(X[t], f[t - history_bins:t + future_bins + 1].ravel())
        else:
            assert not valid[t] and np.isnan(X[t]).all()
    assert valid.sum() == 50 - history_bins - future_bins


def test_no_lags_returns_the_features():
    f = np.arange(12.0).reshape(6, 2)
    X, valid = history_design_matrix(f, history_bins=0)
    np.testing.assert_array_equal(X, f)
    assert valid.all()


def test_one_dimensional_and_integer_features():
    X, valid = history_design_matrix(np.array([1, 2, 3, 4]), history_bins=1)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X[1:], [[1, 2], [2, 3], [3, 4]])
    assert not valid[0]


def test_window_as_long_as_the_recording_leaves_one_valid_sample():
    X, valid = history_design_matrix(np.arange(4.0), history_bins=2, future_bins=1)
    np.testing.assert_array_equal(valid, [False, False, True, False])
    np.testing.assert_array_equal(X[2], [0, 1, 2, 3])


@pytest.mark.parametrize("features, kwargs, message", [
    (np.zeros((5, 2)), {"history_bins": -1}, r"history_bins must be an integer >= 0, got -1"),
    (np.zeros((5, 2)), {"history_bins": 1.5}, r"history_bins must be an integer"),
    (np.zeros((5, 2)), {"history_bins": 1, "future_bins": -2}, r"future_bins must be an integer >= 0"),
    (np.zeros((5, 2)), {"history_bins": 3, "future_bins": 2}, r"window of 6 bins .* longer than the recording \(5"),
    (np.zeros((5, 2, 2)), {"history_bins": 1}, r"1-D or 2-D .* shape \(5, 2, 2\)"),
    (np.zeros((0, 2)), {"history_bins": 0}, r"empty, shape \(0, 2\)"),
    (np.array([[1.0], [np.nan]]), {"history_bins": 0}, r"NaN or infinite .* sample 1, feature 0"),
    (np.array(["a", "b"]), {"history_bins": 0}, r"real numbers"),
])
def test_bad_input_raises(features, kwargs, message):
    with pytest.raises(ValueError, match=message):
        history_design_matrix(features, **kwargs)
