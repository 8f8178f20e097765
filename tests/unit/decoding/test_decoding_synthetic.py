"""The synthetic reaching session follows its documented model."""

from __future__ import annotations

import numpy as np
import pytest

from services.decoding.core.synthetic import simulate_reaching_session
from services.decoding.core.synthetic import simulate_condition_session


def test_shapes_types_and_order(reaching_session):
    session, counts = reaching_session
    assert session.n_units == 60 and session.duration_s == 300.0 and session.bin_width_s == 0.05
    assert session.spike_times.dtype == np.float64 and session.unit_ids.dtype == np.int64
    assert session.spike_times.shape == session.unit_ids.shape
    assert np.all(np.diff(session.spike_times) >= 0)
    assert session.spike_times.min() >= 0 and session.spike_times.max() < 300.0
    assert set(np.unique(session.unit_ids)) == set(range(60))
    assert session.velocity.shape == (6000, 2) and counts.shape == (6000, 60)
    np.testing.assert_allclose(session.bin_centres_s[:2], [0.025, 0.075])
    assert session.rates_hz.shape == (6000, 60) and np.all(session.rates_hz >= 0)


def test_same_seed_same_session_other_seed_other_session():
    a = simulate_reaching_session(n_units=5, duration_s=10.0, seed=11)
    b = simulate_reaching_session(n_units=5, duration_s=10.0, seed=11)
    c = simulate_reaching_session(n_units=5, duration_s=10.0, seed=12)
    np.testing.assert_array_equal(a.spike_times, b.spike_times)
    np.testing.assert_array_equal(a.velocity, b.velocity)
    assert a.spike_times.size != c.spike_times.size or not np.array_equal(a.spike_times, c.spike_times)


def test_velocity_is_smooth_with_the_documented_scale(reaching_session):
    session, _ = reaching_session
    v = session.velocity
    np.testing.assert_allclose(v.std(axis=0), 10.0, rtol=0.05)          # cm/s
    lag1 = [np.corrcoef(v[:-1, c], v[1:, c])[0, 1] for c in range(2)]   # 50 ms apart
    assert min(lag1) > 0.9
    assert abs(np.corrcoef(v[:, 0], v[:, 1])[0, 1]) < 0.1               # independent components


def test_spike_counts_follow_the_rates(reaching_session):
    """Poisson counts: the total per unit matches the integrated rate within sampling error."""
    session, counts = reaching_session
    expected = session.rates_hz.sum(axis=0) * session.bin_width_s
    observed = counts.sum(axis=0)
    z = (observed - expected) / np.sqrt(expected)
    assert np.all(np.abs(z) < 5), z
    # Poisson variance equals the mean: Fano factor of the residual counts close to 1
    residual = counts - session.rates_hz * session.bin_width_s
    fano = residual.var(axis=0) / (session.rates_hz * session.bin_width_s).mean(axis=0)
    assert 0.85 < np.median(fano) < 1.15


def test_units_are_cosine_tuned_and_lead_velocity_by_the_lag(reaching_session):
    session, counts = reaching_session
    directions = np.stack([np.cos(session.preferred_directions_rad),
                           np.sin(session.preferred_directions_rad)], axis=1)
    drive = session.velocity @ directions.T                          # (bins, units): v . u_i
    lag_bins = int(round(session.lag_s / session.bin_width_s))
    # correlation of each unit's counts with its drive, counts shifted against velocity
    def mean_correlation(shift):
        c = counts[: counts.shape[0] - shift] if shift >= 0 else counts[-shift:]
        d = drive[shift:] if shift >= 0 else drive[: drive.shape[0] + shift]
        return np.mean([np.corrcoef(c[:, i], d[:, i])[0, 1] for i in range(session.n_units)])
    shifts = list(range(-4, 5))
    correlations = [mean_correlation(s) for s in shifts]
    assert shifts[int(np.argmax(correlations))] == lag_bins == 2
    assert max(correlations) > 0.3


@pytest.mark.parametrize("kwargs, message", [
    ({"n_units": 0}, r"n_units must be an integer >= 1, got 0"),
    ({"n_units": 2.5}, r"n_units must be an integer"),
    ({"duration_s": -1.0}, r"duration_s must be a finite number > 0"),
    ({"duration_s": np.nan}, r"duration_s must be a finite number > 0"),
    ({"bin_width_s": 0.0}, r"bin_width_s must be a finite number > 0"),
    ({"bin_width_s": 20.0, "duration_s": 10.0}, r"bin_width_s=20.0 is longer than duration_s=10.0"),
    ({"seed": -1}, r"seed must be an integer >= 0"),
    ({"seed": "a"}, r"seed must be an integer >= 0"),
])
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_reaching_session(**kwargs)


# --------------------------------------------------------------------------------------------------
# the condition session


@pytest.fixture(scope="module")
def condition_session():
    return simulate_condition_session()


def test_condition_session_layout(condition_session):
    s = condition_session
    assert (s.n_units, s.n_conditions, s.n_trials, s.bins_per_trial) == (40, 4, 120, 40)
    assert s.counts.shape == (4800, 40) and s.counts.dtype == np.float32
    assert s.rates_hz.shape == (4800, 40)
    for name in ("condition", "trial", "trial_condition"):
        assert getattr(s, name).dtype == np.int64
    np.testing.assert_array_equal(np.bincount(s.trial_condition), [30, 30, 30, 30])
    np.testing.assert_array_equal(s.trial, np.repeat(np.arange(120), 40))
    np.testing.assert_array_equal(s.condition, s.trial_condition[s.trial])
    np.testing.assert_allclose(s.time_in_trial_s[:3], [0.025, 0.075, 0.125])
    np.testing.assert_allclose(s.time_in_trial_s[40:43], [0.025, 0.075, 0.125])
    np.testing.assert_allclose(s.condition_directions_rad, [0.0, np.pi / 2, np.pi, 3 * np.pi / 2])
    assert not np.array_equal(s.trial_condition, np.sort(s.trial_condition))   # randomly ordered


def test_condition_session_gain_and_rates_follow_the_model(condition_session):
    s = condition_session
    tau = (np.arange(40) + 0.5) * 0.05
    np.testing.assert_allclose(s.tuning_gain, np.clip((tau - 0.5) / 0.5, 0, 1))
    tuning = s.modulation_hz * np.cos(s.condition_directions_rad[:, None] - s.preferred_directions_rad)
    gain = s.tuning_gain[np.tile(np.arange(40), 120)]
    expected = s.baseline_rates_hz + gain[:, None] * tuning[s.condition]
    np.testing.assert_allclose(s.rates_hz, expected, rtol=1e-12)
    assert np.all(s.rates_hz > 0)
    # in the baseline every condition has the same rates
    baseline = s.time_in_trial_s < s.baseline_s
    np.testing.assert_allclose(s.rates_hz[baseline], np.broadcast_to(s.baseline_rates_hz, (baseline.sum(), 40)))


def test_condition_session_counts_are_poisson_with_the_rates(condition_session):
    s = condition_session
    tuned = s.tuning_gain[np.tile(np.arange(40), 120)] == 1
    for c in range(4):
        rows = tuned & (s.condition == c)
        expected = s.rates_hz[rows].sum(axis=0) * s.bin_width_s
        z = (s.counts[rows].sum(axis=0) - expected) / np.sqrt(expected)
        assert np.all(np.abs(z) < 5), (c, z)
    residual = s.counts - s.rates_hz * s.bin_width_s
    fano = residual.var(axis=0) / (s.rates_hz * s.bin_width_s).mean(axis=0)
    assert 0.85 < np.median(fano) < 1.15


def test_condition_session_step_tuning_and_seeds():
    a = simulate_condition_session(n_units=3, n_conditions=2, n_trials_per_condition=2, bins_per_trial=4,
                                   bin_width_s=0.25, baseline_s=0.5, ramp_s=0.0, seed=5)
    np.testing.assert_array_equal(a.tuning_gain, [0.0, 0.0, 1.0, 1.0])
    b = simulate_condition_session(n_units=3, n_conditions=2, n_trials_per_condition=2, bins_per_trial=4,
                                   bin_width_s=0.25, baseline_s=0.5, ramp_s=0.0, seed=5)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.trial_condition, b.trial_condition)
    c = simulate_condition_session(seed=6)
    assert not np.array_equal(c.counts, simulate_condition_session(seed=7).counts)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_units": 0}, r"n_units must be an integer >= 1, got 0"),
    ({"n_conditions": 1}, r"n_conditions must be an integer >= 2, got 1"),
    ({"n_trials_per_condition": 0}, r"n_trials_per_condition must be an integer >= 1, got 0"),
    ({"bins_per_trial": 2.0}, r"bins_per_trial must be an integer >= 1, got 2.0"),
    ({"bin_width_s": 0.0}, r"bin_width_s must be a finite number > 0"),
    ({"baseline_s": -0.1}, r"baseline_s must be a finite number >= 0, got -0.1"),
    ({"ramp_s": np.nan}, r"ramp_s must be a finite number >= 0"),
    ({"baseline_s": 2.0}, r"baseline_s=2.0 leaves no tuned time in trials of 40 bins of 0.05 s \(2 s\)"),
    ({"seed": -3}, r"seed must be an integer >= 0"),
])
def test_condition_session_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_condition_session(**kwargs)
