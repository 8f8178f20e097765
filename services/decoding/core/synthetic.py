"""Synthetic sessions with known ground truth, for tests, benchmarks and the demo.

Two sessions: a continuous reaching session (:func:`simulate_reaching_session`, for regression
decoders) and a trial-structured session of discrete conditions
(:func:`simulate_condition_session`, for classifiers; its model is in that function's docstring).

The reaching model
------------------
* **Hand velocity** ``v(t) = (vx, vy)`` in cm/s: two independent Gaussian processes, white noise
  on a 5 ms grid smoothed by a Gaussian kernel (sigma 150 ms, so velocity changes over a few
  hundred milliseconds like reaching movements), each scaled to a standard deviation of
  10 cm/s over the session. Between grid points it is linearly interpolated.
* **Units** are cosine tuned to velocity (Georgopoulos et al. 1982; Moran & Schwartz 1999). Unit
  ``i`` has a baseline rate ``b_i ~ U(5, 25)`` Hz, a preferred direction ``theta_i ~ U(0, 2 pi)``
  (unit vector ``u_i``) and a modulation depth ``m_i = d_i * b_i`` with ``d_i ~ U(0.4, 0.9)``:

      rate_i(t) = max(0, b_i + m_i * (v(t + lag) . u_i) / 10 cm/s)

  The activity **leads** the movement by ``lag = 0.1`` s, as in motor cortex, so a decoder of
  ``v(t)`` needs the spikes of the preceding bins: history matters.
* **Spikes** are an inhomogeneous Poisson process per unit with that rate, drawn exactly by
  thinning (Lewis & Shedler 1979): candidates from a homogeneous process at the unit's peak rate,
  each kept with probability ``rate_i(t) / peak_i``.

The velocity is reported at bin centres ``(k + 0.5) * bin_width_s``, aligned with the rows of
``bin_spike_trains(..., start_s=0, stop_s=duration_s)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .binning import bin_spike_trains, count_bins

__all__ = ["SyntheticSession", "simulate_reaching_session", "ConditionSession", "simulate_condition_session"]

_GRID_S = 0.005          # resolution of the velocity process
_SMOOTHING_S = 0.15      # sigma of the Gaussian kernel that makes velocity smooth
_VELOCITY_SD = 10.0      # cm/s per component; also the velocity unit of the tuning curves
_LAG_S = 0.1             # neural activity leads velocity by this much
_BASELINE_HZ = (5.0, 25.0)
_DEPTH = (0.4, 0.9)      # modulation depth as a fraction of the baseline


@dataclass(frozen=True)
class SyntheticSession:
    """Spikes and behaviour from :func:`simulate_reaching_session`, with the ground truth.

    Attributes
    ----------
    spike_times : ndarray of float64, shape (n_spikes,)
        Spike times in seconds, sorted, in ``[0, duration_s)``.
    unit_ids : ndarray of int64, shape (n_spikes,)
        Unit of each spike, ``0 .. n_units - 1``.
    velocity : ndarray of float64, shape (n_bins, 2)
        Hand velocity (vx, vy) in cm/s at the bin centres.
    bin_centres_s : ndarray of float64, shape (n_bins,)
    rates_hz : ndarray of float64, shape (n_bins, n_units)
        True firing rate of every unit at the bin centres.
    preferred_directions_rad, baseline_rates_hz, modulation_hz : ndarray, shape (n_units,)
        Tuning parameters ``theta_i``, ``b_i`` and ``m_i`` of the model.
    n_units : int
    duration_s, bin_width_s, lag_s : float
    """

    spike_times: np.ndarray
    unit_ids: np.ndarray
    velocity: np.ndarray
    bin_centres_s: np.ndarray
    rates_hz: np.ndarray
    preferred_directions_rad: np.ndarray
    baseline_rates_hz: np.ndarray
    modulation_hz: np.ndarray
    n_units: int
    duration_s: float
    bin_width_s: float
    lag_s: float

    def binned_counts(self) -> np.ndarray:
        """Spike counts (n_bins, n_units), float32, aligned with :attr:`velocity`."""
        return bin_spike_trains(self.spike_times, self.unit_ids, bin_width_s=self.bin_width_s, start_s=0.0,
                                stop_s=self.duration_s, n_units=self.n_units)


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def simulate_reaching_session(*, n_units: int = 60, duration_s: float = 300.0, bin_width_s: float = 0.05,
                              seed: int | np.random.Generator | None = 0) -> SyntheticSession:
    """Simulate cosine-tuned Poisson units driven by a smooth 2-D hand velocity.

    See the module docstring for the model.

    Parameters
    ----------
    n_units : int, default 60
        Number of units, >= 1.
    duration_s : float, default 300
        Session length in seconds, > 0.
    bin_width_s : float, default 0.05
        Width of the bins at whose centres the velocity is reported; at most ``duration_s``.
    seed : int, numpy Generator or None, default 0
        Seed of the random generator; the same seed gives the same session.

    Returns
    -------
    SyntheticSession

    Raises
    ------
    ValueError
        A parameter out of range or of the wrong type.

    Examples
    --------
    >>> s = simulate_reaching_session(n_units=10, duration_s=20.0, seed=1)
    >>> s.velocity.shape, s.binned_counts().shape
    ((400, 2), (400, 10))
    >>> bool(np.all(np.diff(s.spike_times) >= 0))
    True
    """
    if isinstance(n_units, bool) or not isinstance(n_units, numbers.Integral) or n_units < 1:
        raise ValueError(f"n_units must be an integer >= 1, got {n_units!r}")
    n_units = int(n_units)
    duration_s = _positive(duration_s, "duration_s")
    bin_width_s = _positive(bin_width_s, "bin_width_s")
    n_bins = count_bins(bin_width_s=bin_width_s, start_s=0.0, stop_s=duration_s)
    if n_bins == 0:
        raise ValueError(f"bin_width_s={bin_width_s} is longer than duration_s={duration_s}")
    if not (seed is None or isinstance(seed, np.random.Generator)
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise ValueError(f"seed must be an integer >= 0, a numpy Generator or None, got {seed!r}")
    rng = np.random.default_rng(seed)

    # velocity on a grid covering [0, duration + lag]; smoothing uses only the noise around each
    # point (a 'valid' convolution over a padded noise sequence), so the ends have no artefacts
    half = int(np.ceil(4 * _SMOOTHING_S / _GRID_S))
    kernel = np.exp(-0.5 * ((np.arange(-half, half + 1) * _GRID_S) / _SMOOTHING_S) ** 2)
    n_grid = int(np.ceil((duration_s + _LAG_S) / _GRID_S)) + 2
    grid_s = np.arange(n_grid) * _GRID_S
    noise = rng.standard_normal((2, n_grid + 2 * half))
    velocity_grid = np.stack([np.convolve(component, kernel, mode="valid") for component in noise], axis=1)
    velocity_grid *= _VELOCITY_SD / velocity_grid.std(axis=0)

    theta = rng.uniform(0.0, 2.0 * np.pi, n_units)
    baseline = rng.uniform(*_BASELINE_HZ, n_units)
    modulation = rng.uniform(*_DEPTH, n_units) * baseline
    directions = np.stack([np.cos(theta), np.sin(theta)], axis=1)       # (n_units, 2)

    def rates_at(times: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
        v = np.stack([np.interp(times + _LAG_S, grid_s, velocity_grid[:, c]) for c in range(2)], axis=-1)
        if units is None:   # every unit at every time: (n_times, n_units)
            return np.maximum(0.0, baseline + modulation * (v @ directions.T) / _VELOCITY_SD)
        return np.maximum(0.0, baseline[units] + modulation[units]
                          * np.einsum("ij,ij->i", v, directions[units]) / _VELOCITY_SD)

    # thinning needs each unit's peak rate over [0, duration]. The rate is a monotone function of
    # the piecewise-linear velocity, so its maximum lies at a grid point (shifted by the lag) or
    # at an end of the session; the factor absorbs rounding of the shifted grid
    breakpoints = grid_s[(grid_s >= _LAG_S) & (grid_s <= duration_s + _LAG_S)] - _LAG_S
    peak = rates_at(np.concatenate(([0.0, duration_s], breakpoints))).max(axis=0) * (1.0 + 1e-9)
    n_candidates = rng.poisson(peak * duration_s)
    units = np.repeat(np.arange(n_units), n_candidates)
    times = rng.uniform(0.0, duration_s, units.size)
    # sort before evaluating the rates: np.interp is several times faster on sorted queries
    order = np.argsort(times, kind="stable")
    times, units = times[order], units[order]
    kept = rng.uniform(0.0, 1.0, units.size) * peak[units] < rates_at(times, units)
    times, units = times[kept], units[kept]

    centres = (np.arange(n_bins) + 0.5) * bin_width_s
    velocity = np.stack([np.interp(centres, grid_s, velocity_grid[:, c]) for c in range(2)], axis=1)
    return SyntheticSession(spike_times=times, unit_ids=units.astype(np.int64), velocity=velocity,
                            bin_centres_s=centres, rates_hz=rates_at(centres), preferred_directions_rad=theta,
                            baseline_rates_hz=baseline, modulation_hz=modulation, n_units=n_units,
                            duration_s=duration_s, bin_width_s=bin_width_s, lag_s=_LAG_S)


# ------------------------------------------------------------------------------------------------
# trials of discrete conditions


@dataclass(frozen=True)
class ConditionSession:
    """Binned spike counts of trials of discrete conditions, from :func:`simulate_condition_session`.

    Trials follow each other without gaps; bin ``k`` of the session is bin ``k % bins_per_trial``
    of trial ``k // bins_per_trial``.

    Attributes
    ----------
    counts : ndarray of float32, shape (n_bins, n_units)
        Spike counts, ``n_bins = n_trials * bins_per_trial``.
    condition : ndarray of int64, shape (n_bins,)
        Condition ``0 .. n_conditions - 1`` of the trial each bin belongs to.
    trial : ndarray of int64, shape (n_bins,)
        Trial index of each bin, ``0 .. n_trials - 1``, in the order the trials were run.
    time_in_trial_s : ndarray of float64, shape (n_bins,)
        Centre of each bin relative to the start of its trial.
    trial_condition : ndarray of int64, shape (n_trials,)
        Condition of each trial (every condition occurs ``n_trials_per_condition`` times, in
        random order).
    rates_hz : ndarray of float64, shape (n_bins, n_units)
        True firing rates, constant within a bin.
    tuning_gain : ndarray of float64, shape (bins_per_trial,)
        ``g`` of the model at each bin of a trial: 0 in the baseline, 1 once fully tuned.
    condition_directions_rad : ndarray, shape (n_conditions,)
        ``phi_c = 2 pi c / n_conditions``.
    preferred_directions_rad, baseline_rates_hz, modulation_hz : ndarray, shape (n_units,)
        ``theta_i``, ``b_i`` and ``m_i`` of the model.
    n_units, n_conditions, n_trials, bins_per_trial : int
    bin_width_s, baseline_s, ramp_s : float
    """

    counts: np.ndarray
    condition: np.ndarray
    trial: np.ndarray
    time_in_trial_s: np.ndarray
    trial_condition: np.ndarray
    rates_hz: np.ndarray
    tuning_gain: np.ndarray
    condition_directions_rad: np.ndarray
    preferred_directions_rad: np.ndarray
    baseline_rates_hz: np.ndarray
    modulation_hz: np.ndarray
    n_units: int
    n_conditions: int
    n_trials: int
    bins_per_trial: int
    bin_width_s: float
    baseline_s: float
    ramp_s: float


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _non_negative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def simulate_condition_session(*, n_units: int = 40, n_conditions: int = 4, n_trials_per_condition: int = 30,
                               bins_per_trial: int = 40, bin_width_s: float = 0.05, baseline_s: float = 0.5,
                               ramp_s: float = 0.5,
                               seed: int | np.random.Generator | None = 0) -> ConditionSession:
    """Simulate trials of discrete conditions (e.g. target directions) with time-varying tuning.

    See Notes for the model.

    Parameters
    ----------
    n_units : int, default 40
        Number of units, >= 1.
    n_conditions : int, default 4
        Number of conditions, >= 2.
    n_trials_per_condition : int, default 30
        Trials of every condition, >= 1; the trial order is a random permutation.
    bins_per_trial : int, default 40
        Bins in a trial, >= 1.
    bin_width_s : float, default 0.05
        Bin width in seconds, > 0.
    baseline_s : float, default 0.5
        Untuned start of every trial, >= 0 and shorter than the trial.
    ramp_s : float, default 0.5
        Time over which the tuning grows from 0 to full, >= 0.
    seed : int, numpy Generator or None, default 0
        Seed of the random generator; the same seed gives the same session.

    Returns
    -------
    ConditionSession

    Raises
    ------
    ValueError
        A parameter out of range or of the wrong type.

    Notes
    -----
    Condition ``c`` is a direction ``phi_c = 2 pi c / n_conditions``. Unit ``i`` has a baseline
    rate ``b_i ~ U(5, 25)`` Hz, a preferred direction ``theta_i ~ U(0, 2 pi)`` and a modulation
    depth ``m_i = d_i * b_i``, ``d_i ~ U(0.4, 0.9)``, as in :func:`simulate_reaching_session`. At
    time ``tau`` into a trial of condition ``c`` its rate is

        rate_i(tau, c) = b_i + g(tau) * m_i * cos(phi_c - theta_i),
        g(tau) = clip((tau - baseline_s) / ramp_s, 0, 1),

    evaluated at the bin centre and held over the bin: untuned during the baseline (the first
    ``baseline_s`` seconds), then the tuning ramps up linearly over ``ramp_s`` seconds (a step
    when ``ramp_s = 0``) and stays. Rates are positive (``d_i < 1``). The count of each unit in
    each bin is Poisson with mean ``rate * bin_width_s``, independent across bins and units, so
    in the baseline the counts carry no information about the condition.

    Examples
    --------
    >>> s = simulate_condition_session(n_units=5, n_conditions=3, n_trials_per_condition=2,
    ...                                bins_per_trial=4, bin_width_s=0.25, baseline_s=0.5, ramp_s=0.0)
    >>> s.counts.shape, s.trial_condition.shape, np.bincount(s.trial_condition).tolist()
    ((24, 5), (6,), [2, 2, 2])
    >>> s.time_in_trial_s[:4].tolist(), s.tuning_gain.tolist()
    ([0.125, 0.375, 0.625, 0.875], [0.0, 0.0, 1.0, 1.0])
    >>> bool(np.array_equal(s.condition, np.repeat(s.trial_condition, 4)))
    True
    """
    n_units = _count(n_units, "n_units", 1)
    n_conditions = _count(n_conditions, "n_conditions", 2)
    n_trials_per_condition = _count(n_trials_per_condition, "n_trials_per_condition", 1)
    bins_per_trial = _count(bins_per_trial, "bins_per_trial", 1)
    bin_width_s = _positive(bin_width_s, "bin_width_s")
    baseline_s = _non_negative(baseline_s, "baseline_s")
    ramp_s = _non_negative(ramp_s, "ramp_s")
    trial_s = bins_per_trial * bin_width_s
    if baseline_s >= trial_s:
        raise ValueError(f"baseline_s={baseline_s} leaves no tuned time in trials of {bins_per_trial} bins of "
                         f"{bin_width_s} s ({trial_s:g} s)")
    if not (seed is None or isinstance(seed, np.random.Generator)
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise ValueError(f"seed must be an integer >= 0, a numpy Generator or None, got {seed!r}")
    rng = np.random.default_rng(seed)

    theta = rng.uniform(0.0, 2.0 * np.pi, n_units)
    baseline = rng.uniform(*_BASELINE_HZ, n_units)
    modulation = rng.uniform(*_DEPTH, n_units) * baseline
    phi = 2.0 * np.pi * np.arange(n_conditions) / n_conditions
    n_trials = n_conditions * n_trials_per_condition
    trial_condition = rng.permutation(np.repeat(np.arange(n_conditions), n_trials_per_condition)).astype(np.int64)

    centres = (np.arange(bins_per_trial) + 0.5) * bin_width_s
    if ramp_s > 0:
        gain = np.clip((centres - baseline_s) / ramp_s, 0.0, 1.0)
    else:   # a step at the end of the baseline
        gain = (centres >= baseline_s).astype(np.float64)
    tuning = modulation * np.cos(phi[:, np.newaxis] - theta)                   # (n_conditions, n_units)
    # rates of every (trial, bin, unit): baseline plus the gained tuning of the trial's condition
    rates = baseline + gain[np.newaxis, :, np.newaxis] * tuning[trial_condition][:, np.newaxis, :]
    rates = rates.reshape(n_trials * bins_per_trial, n_units)
    counts = rng.poisson(rates * bin_width_s).astype(np.float32)
    return ConditionSession(
        counts=counts, condition=np.repeat(trial_condition, bins_per_trial),
        trial=np.repeat(np.arange(n_trials, dtype=np.int64), bins_per_trial),
        time_in_trial_s=np.tile(centres, n_trials), trial_condition=trial_condition, rates_hz=rates,
        tuning_gain=gain, condition_directions_rad=phi, preferred_directions_rad=theta,
        baseline_rates_hz=baseline, modulation_hz=modulation, n_units=n_units, n_conditions=n_conditions,
        n_trials=n_trials, bins_per_trial=bins_per_trial, bin_width_s=bin_width_s, baseline_s=baseline_s,
        ramp_s=ramp_s)
