"""bin_spike_trains against a brute-force loop, at its edges, and on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from services.decoding.core.binning import bin_spike_trains, count_bins


def brute_force_counts(times, ids, *, bin_width_s, start_s, n_bins, n_units):
    """The definition, spike by spike and bin by bin: bin k is [start + k w, start + (k + 1) w)."""
    counts = np.zeros((n_bins, n_units))
    for t, u in zip(times, ids):
        for k in range(n_bins):
            if start_s + k * bin_width_s <= t < start_s + (k + 1) * bin_width_s:
                counts[k, int(u)] += 1
    return counts


@pytest.mark.parametrize("time_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("id_dtype", [np.int64, np.int32, np.uint16, np.float64])
def test_matches_brute_force_on_random_spikes(time_dtype, id_dtype):
    rng = np.random.default_rng(42)
    times = rng.uniform(-1.0, 4.0, 400).astype(time_dtype)      # some before start and after stop
    ids = rng.integers(0, 7, 400).astype(id_dtype)
    start, stop, width = -0.3, 3.31, 0.137                        # a partial last bin is dropped
    counts = bin_spike_trains(times, ids, bin_width_s=width, start_s=start, stop_s=stop)
    n_bins = int(np.floor((stop - start) / width))
    expected = brute_force_counts(times.astype(np.float64), ids, bin_width_s=width, start_s=start,
                                  n_bins=n_bins, n_units=7)
    assert counts.dtype == np.float32 and counts.shape == (n_bins, 7)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == np.sum((times >= start) & (times < start + n_bins * width))


def test_spikes_on_decimal_edges_fall_in_the_bin_they_open():
    # 0.3 / 0.1 == 2.9999999999999996 in floating point: naive flooring would put 0.3 in bin 2
    times = [0.0, 0.1, 0.2, 0.3, 0.39999, 0.4]
    counts = bin_spike_trains(times, [0] * 6, bin_width_s=0.1, start_s=0.0, stop_s=0.4)
    np.testing.assert_array_equal(counts[:, 0], [1, 1, 1, 2])     # 0.4 == stop_s is outside


def test_edges_stay_exact_far_from_time_zero():
    start = 10_000.0
    times = start + np.array([0.0, 0.3, 0.7, 0.9])
    counts = bin_spike_trains(times, [0, 0, 0, 0], bin_width_s=0.1, start_s=start, stop_s=start + 0.9)
    assert counts.shape == (9, 1)
    np.testing.assert_array_equal(np.flatnonzero(counts[:, 0]), [0, 3, 7])   # start + 0.9 is the stop


def test_window_boundaries_and_partial_last_bin():
    times = [-0.001, 0.0, 0.449, 0.45, 0.5, 0.7]
    counts = bin_spike_trains(times, [1] * 6, bin_width_s=0.1, start_s=0.0, stop_s=0.55)
    assert counts.shape == (5, 2)                                  # [0.5, 0.55) is a partial bin
    np.testing.assert_array_equal(counts[:, 1], [1, 0, 0, 0, 2])   # -0.001, 0.5 and 0.7 are outside
    np.testing.assert_array_equal(counts[:, 0], 0)                  # unit 0 exists, without spikes


def test_count_bins_forgives_decimal_rounding():
    assert count_bins(bin_width_s=0.1, start_s=0.0, stop_s=0.3) == 3
    assert count_bins(bin_width_s=0.05, start_s=0.0, stop_s=300.0) == 6000
    assert count_bins(bin_width_s=0.1, start_s=0.0, stop_s=0.299) == 2
    assert count_bins(bin_width_s=0.1, start_s=1.0, stop_s=1.0) == 0


def test_n_units_sets_the_columns():
    counts = bin_spike_trains([0.1, 0.2], [2, 0], bin_width_s=1.0, start_s=0.0, stop_s=1.0, n_units=5)
    np.testing.assert_array_equal(counts, [[1, 0, 1, 0, 0]])
    assert bin_spike_trains([0.1], [2], bin_width_s=1.0, start_s=0.0, stop_s=1.0).shape == (1, 3)


def test_no_spikes_is_valid_and_gives_zero_counts():
    counts = bin_spike_trains([], [], bin_width_s=0.1, start_s=0.0, stop_s=1.0, n_units=4)
    assert counts.shape == (10, 4) and not counts.any()
    assert bin_spike_trains(np.array([]), np.array([], dtype=np.int64), bin_width_s=0.1,
                            start_s=0.0, stop_s=1.0).shape == (10, 0)


def test_an_hour_of_spikes_keeps_every_spike_inside_the_window():
    rng = np.random.default_rng(0)
    times = rng.uniform(0, 3600, 500_000)
    ids = rng.integers(0, 100, times.size)
    counts = bin_spike_trains(times, ids, bin_width_s=0.05, start_s=0.0, stop_s=3600.0)
    assert counts.shape == (72_000, 100) and counts.sum() == times.size
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(ids, minlength=100))
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount((times / 0.05).astype(int), minlength=72_000))


@pytest.mark.parametrize("times, ids, kwargs, message", [
    ([0.1, np.nan], [0, 1], {}, r"finite, got nan at index 1"),
    ([0.1, np.inf], [0, 1], {}, r"finite, got inf at index 1"),
    ([0.1, 0.2], [0], {}, r"same length, got 2 and 1"),
    ([[0.1, 0.2]], [[0, 1]], {}, r"1-D, got shapes \(1, 2\)"),
    ([0.1, 0.2], [0, -1], {}, r">= 0, got -1 at index 1"),
    ([0.1, 0.2], [0, 1.5], {}, r"integers, got 1.5 at index 1"),
    ([0.1, 0.2], [True, False], {}, r"non-negative integers, got dtype bool"),
    (["a"], [0], {}, r"spike_times must be real numbers"),
    ([0.1, 0.2], [0, 3], {"n_units": 3}, r"n_units=3 is smaller than the largest unit id \+ 1 \(4\)"),
    ([0.1], [0], {"n_units": -1}, r"n_units must be an integer >= 0"),
    ([0.1], [0], {"n_units": 2.0}, r"n_units must be an integer >= 0"),
    ([0.1], [0], {"bin_width_s": 0.0}, r"bin_width_s must be > 0, got 0.0"),
    ([0.1], [0], {"bin_width_s": -0.1}, r"bin_width_s must be > 0"),
    ([0.1], [0], {"bin_width_s": np.nan}, r"bin_width_s must be finite"),
    ([0.1], [0], {"stop_s": 0.0}, r"holds no whole bin"),
    ([0.1], [0], {"stop_s": -1.0}, r"holds no whole bin"),
    ([0.1], [0], {"stop_s": 0.05}, r"holds no whole bin"),
    ([0.1], [0], {"start_s": np.inf}, r"start_s must be finite"),
])
def test_bad_input_raises_a_value_error_that_names_it(times, ids, kwargs, message):
    params = {"bin_width_s": 0.1, "start_s": 0.0, "stop_s": 1.0} | kwargs
    with pytest.raises(ValueError, match=message):
        bin_spike_trains(np.asarray(times), np.asarray(ids), **params)
