"""Synthetic sessions with known ground truth, for tests, benchmarks and the demo.

Three sessions: a continuous reaching session (:func:`simulate_reaching_session`, for regression
decoders), a trial-structured session of discrete conditions (:func:`simulate_condition_session`,
for classifiers) and the classic centre-out task (:func:`simulate_center_out_session`: reaches
to targets on a circle, for both); the models of the last two are in their docstrings.

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


# ------------------------------------------------------------------------------------------------
# the centre-out reaching task

#: phase codes of :attr:`CenterOutSession.phase`, in the order they occur in a trial
CENTER_OUT_PHASES = ("hold", "reach", "target_hold", "return")


@dataclass(frozen=True)
class CenterOutSession:
    """Spikes, binned counts and hand kinematics of a centre-out session, with the ground truth.

    Made by :func:`simulate_center_out_session` (the model is in its Notes). Coordinates are in
    cm with the centre target at the origin; ``x`` is rightward, ``y`` upward, and target
    directions are counter-clockwise from ``+x``. Every per-bin array has one row per bin
    ``k``, whose centre is ``(k + 0.5) * bin_width_s`` s from the start of the session; the rows
    line up with ``bin_spike_trains(spike_times, unit_ids, bin_width_s=bin_width_s, start_s=0,
    stop_s=duration_s, n_units=n_units)``, which is what :attr:`counts` holds. A bin belongs to
    the trial (and phase) that contains its centre.

    Attributes
    ----------
    spike_times : ndarray of float64, shape (n_spikes,)
        Spike times in seconds, sorted, in ``[0, duration_s)``.
    unit_ids : ndarray of int64, shape (n_spikes,)
        Unit of each spike, ``0 .. n_units - 1``.
    counts : ndarray of float32, shape (n_bins, n_units)
        Spike counts per bin and unit.
    bin_centres_s : ndarray of float64, shape (n_bins,)
        Bin centres, seconds from the start of the session.
    velocity : ndarray of float64, shape (n_bins, 2)
        True hand velocity (vx, vy) in cm/s at the bin centres (exact, not a finite difference).
    position : ndarray of float64, shape (n_bins, 2)
        True hand position (x, y) in cm at the bin centres; the time integral of the velocity
        (with ``return_s > 0``; otherwise it jumps back to the centre between trials).
    target : ndarray of int64, shape (n_bins,)
        Target index ``0 .. n_targets - 1`` of the trial each bin belongs to (in every phase,
        including the hold before the reach).
    trial : ndarray of int64, shape (n_bins,)
        Trial index ``0 .. n_trials - 1`` of each bin, in the order the trials were run.
    time_in_trial_s : ndarray of float64, shape (n_bins,)
        Bin centre minus the start of its trial, seconds.
    phase : ndarray of int64, shape (n_bins,)
        Phase of the trial at the bin centre, an index into :data:`CENTER_OUT_PHASES`: 0 hold at
        the centre, 1 reach out, 2 hold at the target, 3 return to the centre.
    rates_hz : ndarray of float64, shape (n_bins, n_units)
        True firing rate of every unit at the bin centres.
    trial_target : ndarray of int64, shape (n_trials,)
        Target of each trial; every target occurs ``n_trials_per_target`` times, in random order.
    trial_start_s : ndarray of float64, shape (n_trials,)
        Start of each trial, seconds (``i * trial_s``: trials follow each other without gaps).
    target_directions_rad : ndarray of float64, shape (n_targets,)
        ``phi_c = 2 pi c / n_targets``.
    target_positions_cm : ndarray of float64, shape (n_targets, 2)
        ``radius_cm * (cos phi_c, sin phi_c)``.
    preferred_directions_rad, baseline_rates_hz, modulation_hz : ndarray of float64, shape (n_units,)
        Tuning parameters ``theta_i``, ``b_i`` and ``m_i`` of the model.
    n_units, n_targets, n_trials : int
    bin_width_s, duration_s, trial_s : float
        Seconds; ``trial_s = hold_s + reach_s + target_hold_s + return_s`` and
        ``duration_s = n_trials * trial_s``.
    hold_s, reach_s, target_hold_s, return_s : float
        Durations of the phases of every trial, seconds.
    radius_cm : float
        Distance of the targets from the centre.
    lag_s : float
        Neural activity leads the movement by this much (0.1 s).
    peak_speed_cm_s : float
        Peak speed of an outward reach, ``1.875 * radius_cm / reach_s``, reached at mid-reach.
    """

    spike_times: np.ndarray
    unit_ids: np.ndarray
    counts: np.ndarray
    bin_centres_s: np.ndarray
    velocity: np.ndarray
    position: np.ndarray
    target: np.ndarray
    trial: np.ndarray
    time_in_trial_s: np.ndarray
    phase: np.ndarray
    rates_hz: np.ndarray
    trial_target: np.ndarray
    trial_start_s: np.ndarray
    target_directions_rad: np.ndarray
    target_positions_cm: np.ndarray
    preferred_directions_rad: np.ndarray
    baseline_rates_hz: np.ndarray
    modulation_hz: np.ndarray
    n_units: int
    n_targets: int
    n_trials: int
    bin_width_s: float
    duration_s: float
    trial_s: float
    hold_s: float
    reach_s: float
    target_hold_s: float
    return_s: float
    radius_cm: float
    lag_s: float
    peak_speed_cm_s: float


def _minimum_jerk(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of the distance covered, and its derivative in s, at normalised time ``s``.

    ``10 s^3 - 15 s^4 + 6 s^5`` and ``30 s^2 (1 - s)^2`` on ``[0, 1]``; 0 / 0 before, 1 / 0 after.
    """
    c = np.clip(s, 0.0, 1.0)
    return c ** 3 * (10.0 - 15.0 * c + 6.0 * c ** 2), 30.0 * c ** 2 * (1.0 - c) ** 2


def simulate_center_out_session(*, n_units: int = 60, n_targets: int = 8, n_trials_per_target: int = 20,
                                bin_width_s: float = 0.05, hold_s: float = 0.5, reach_s: float = 0.5,
                                target_hold_s: float = 0.3, return_s: float = 0.5, radius_cm: float = 8.0,
                                seed: int | np.random.Generator | None = 0) -> CenterOutSession:
    """Simulate the centre-out reaching task with cosine-tuned Poisson units.

    The classic task of Georgopoulos et al. (1982): hold at the centre, reach straight to one of
    ``n_targets`` targets on a circle, hold there, come back. See Notes for the model.

    Parameters
    ----------
    n_units : int, default 60
        Number of units, >= 1.
    n_targets : int, default 8
        Targets equally spaced on the circle, >= 2; target ``c`` is at angle ``2 pi c / n_targets``.
    n_trials_per_target : int, default 20
        Trials to every target, >= 1; the trial order is a random permutation.
    bin_width_s : float, default 0.05
        Bin width in seconds, > 0 and at most the session length. A ``trial_s`` that is a whole
        number of bins (as with the defaults: 1.8 s, 36 bins) makes every trial start on a bin
        edge, so ``time_in_trial_s`` takes the same values in every trial.
    hold_s : float, default 0.5
        Hold at the centre at the start of every trial, seconds, >= 0.
    reach_s : float, default 0.5
        Duration of the outward reach, seconds, > 0.
    target_hold_s : float, default 0.3
        Hold at the target after the reach, seconds, >= 0.
    return_s : float, default 0.5
        Duration of the minimum-jerk movement back to the centre, seconds, >= 0. With 0 there is
        no return movement: the hand is put back at the centre between trials (the position jumps
        and is no longer the integral of the velocity across trial boundaries).
    radius_cm : float, default 8
        Distance of the targets from the centre, cm, > 0.
    seed : int, numpy Generator or None, default 0
        Seed of the random generator; the same seed gives the same session.

    Returns
    -------
    CenterOutSession

    Raises
    ------
    ValueError
        A parameter out of range or of the wrong type.

    Notes
    -----
    * **Trials.** Trial ``j`` starts at ``j * trial_s``, ``trial_s = hold_s + reach_s +
      target_hold_s + return_s``, and goes to target ``c_j`` (a random permutation of
      ``n_trials_per_target`` copies of every target). Its phases: the hand rests at the centre
      for ``hold_s``, reaches in a straight line to ``radius_cm * (cos phi_c, sin phi_c)`` in
      ``reach_s``, rests there for ``target_hold_s`` and returns along the same line in
      ``return_s``. Before the first trial and after the last the hand rests at the centre.
    * **Minimum-jerk movements** (Flash & Hogan 1985). A movement of length ``D`` and duration
      ``T`` from ``p0`` in direction ``e`` is ``p(t) = p0 + D e f(t / T)``, ``f(s) = 10 s^3 -
      15 s^4 + 6 s^5``: velocity ``D e 30 s^2 (1 - s)^2 / T``, a bell-shaped, symmetric speed
      profile that is 0 (with 0 acceleration) at both ends and peaks at ``s = 1/2`` at
      ``1.875 D / T`` (30 cm/s with the defaults). Position and velocity are computed exactly,
      so the velocity integrates to the position.
    * **Units**, as in :func:`simulate_reaching_session` (same parameter ranges, same law, same
      lag): baseline ``b_i ~ U(5, 25)`` Hz, preferred direction ``theta_i ~ U(0, 2 pi)`` (unit
      vector ``u_i``), modulation ``m_i = d_i b_i``, ``d_i ~ U(0.4, 0.9)``, and

          rate_i(t) = max(0, b_i + m_i * (v(t + lag) . u_i) / 10 cm/s)
                    = max(0, b_i + m_i * |v(t + lag)| cos(angle(v) - theta_i) / 10 cm/s)

      with ``lag = 0.1`` s: activity leads the movement, so the units start to be tuned 0.1 s
      before the reach begins, and a decoder needs the preceding bins. At the defaults' peak
      speed the drive is 3 modulations, so units moving against their preferred direction are
      silenced (the rectification): the tuning of the rate to the movement direction is a
      rectified cosine, whose peak is still at ``theta_i``. At rest the rate is ``b_i``.
    * **Spikes**: an inhomogeneous Poisson process per unit, drawn exactly by thinning, as in
      :func:`simulate_reaching_session`; :attr:`~CenterOutSession.counts` are their counts.

    Known truth: the target of every trial and bin, position and velocity at every bin centre,
    the rates and the tuning parameters. Random draws, in order: the tuning parameters, the
    trial order, the spikes.

    Examples
    --------
    >>> s = simulate_center_out_session(n_units=10, n_targets=4, n_trials_per_target=2, seed=1)
    >>> s.n_trials, s.duration_s, s.counts.shape, s.velocity.shape
    (8, 14.4, (288, 10), (288, 2))
    >>> np.bincount(s.trial_target).tolist(), s.time_in_trial_s[:2].round(6).tolist()
    ([2, 2, 2, 2], [0.025, 0.075])
    >>> end_of_reach = (s.trial == 0) & (s.phase == 2)      # holding at the first trial's target
    >>> bool(np.allclose(s.position[end_of_reach], s.target_positions_cm[s.trial_target[0]]))
    True
    >>> round(s.peak_speed_cm_s, 3), bool(np.all(np.diff(s.spike_times) >= 0))
    (30.0, True)
    """
    n_units = _count(n_units, "n_units", 1)
    n_targets = _count(n_targets, "n_targets", 2)
    n_trials_per_target = _count(n_trials_per_target, "n_trials_per_target", 1)
    bin_width_s = _positive(bin_width_s, "bin_width_s")
    hold_s = _non_negative(hold_s, "hold_s")
    reach_s = _positive(reach_s, "reach_s")
    target_hold_s = _non_negative(target_hold_s, "target_hold_s")
    return_s = _non_negative(return_s, "return_s")
    radius_cm = _positive(radius_cm, "radius_cm")
    if not (seed is None or isinstance(seed, np.random.Generator)
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise ValueError(f"seed must be an integer >= 0, a numpy Generator or None, got {seed!r}")
    n_trials = n_targets * n_trials_per_target
    trial_s = hold_s + reach_s + target_hold_s + return_s
    duration_s = n_trials * trial_s
    n_bins = count_bins(bin_width_s=bin_width_s, start_s=0.0, stop_s=duration_s)
    if n_bins == 0:
        raise ValueError(f"bin_width_s={bin_width_s} is longer than the session ({duration_s:g} s)")
    rng = np.random.default_rng(seed)

    theta = rng.uniform(0.0, 2.0 * np.pi, n_units)
    baseline = rng.uniform(*_BASELINE_HZ, n_units)
    modulation = rng.uniform(*_DEPTH, n_units) * baseline
    preferred = np.stack([np.cos(theta), np.sin(theta)], axis=1)             # (n_units, 2)
    phi = 2.0 * np.pi * np.arange(n_targets) / n_targets
    target_unit = np.stack([np.cos(phi), np.sin(phi)], axis=1)               # (n_targets, 2)
    trial_target = rng.permutation(np.repeat(np.arange(n_targets), n_trials_per_target)).astype(np.int64)
    trial_start = np.arange(n_trials) * trial_s
    return_start = hold_s + reach_s + target_hold_s

    def locate(times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Trial of each time (-1 outside the session), time in that trial, and inside mask."""
        trial = np.searchsorted(trial_start, times, side="right") - 1
        inside = (times >= 0.0) & (times < duration_s)
        trial = np.where(inside, np.clip(trial, 0, n_trials - 1), -1)
        return trial, times - trial_start[np.maximum(trial, 0)], inside

    def kinematics(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact hand position (cm) and velocity (cm/s) at ``times``, shape (n, 2) each."""
        trial, tau, inside = locate(times)
        out_fraction, out_rate = _minimum_jerk((tau - hold_s) / reach_s)
        speed = radius_cm * out_rate / reach_s
        if return_s > 0:
            back_fraction, back_rate = _minimum_jerk((tau - return_start) / return_s)
            speed = speed - radius_cm * back_rate / return_s
        else:
            back_fraction = np.zeros_like(tau)
        direction = target_unit[trial_target[np.maximum(trial, 0)]] * inside[:, np.newaxis]
        return (radius_cm * (out_fraction - back_fraction))[:, np.newaxis] * direction, speed[:, np.newaxis] * direction

    def rates_at(times: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
        v = kinematics(times + _LAG_S)[1]
        if units is None:   # every unit at every time: (n_times, n_units)
            return np.maximum(0.0, baseline + modulation * (v @ preferred.T) / _VELOCITY_SD)
        return np.maximum(0.0, baseline[units] + modulation[units]
                          * np.einsum("ij,ij->i", v, preferred[units]) / _VELOCITY_SD)

    # thinning: the speed never exceeds the larger of the two movements' peak speeds, which bounds
    # every unit's rate; the bound need not be tight for the thinning to be exact
    peak_speed = 1.875 * radius_cm / reach_s
    max_speed = max(peak_speed, 1.875 * radius_cm / return_s if return_s > 0 else 0.0)
    peak = (baseline + modulation * max_speed / _VELOCITY_SD) * (1.0 + 1e-9)
    n_candidates = rng.poisson(peak * duration_s)
    units = np.repeat(np.arange(n_units), n_candidates)
    times = rng.uniform(0.0, duration_s, units.size)
    order = np.argsort(times, kind="stable")
    times, units = times[order], units[order]
    kept = rng.uniform(0.0, 1.0, units.size) * peak[units] < rates_at(times, units)
    times, units = times[kept], units[kept].astype(np.int64)

    centres = (np.arange(n_bins) + 0.5) * bin_width_s
    position, velocity = kinematics(centres)
    trial, tau, _ = locate(centres)
    bounds = np.array([hold_s, hold_s + reach_s, return_start])
    phase = np.searchsorted(bounds, tau, side="right").astype(np.int64)
    counts = bin_spike_trains(times, units, bin_width_s=bin_width_s, start_s=0.0, stop_s=duration_s,
                              n_units=n_units)
    return CenterOutSession(
        spike_times=times, unit_ids=units, counts=counts, bin_centres_s=centres, velocity=velocity,
        position=position, target=trial_target[trial], trial=trial.astype(np.int64), time_in_trial_s=tau,
        phase=phase, rates_hz=rates_at(centres), trial_target=trial_target, trial_start_s=trial_start,
        target_directions_rad=phi, target_positions_cm=radius_cm * target_unit, preferred_directions_rad=theta,
        baseline_rates_hz=baseline, modulation_hz=modulation, n_units=n_units, n_targets=n_targets,
        n_trials=n_trials, bin_width_s=bin_width_s, duration_s=duration_s, trial_s=trial_s, hold_s=hold_s,
        reach_s=reach_s, target_hold_s=target_hold_s, return_s=return_s, radius_cm=radius_cm, lag_s=_LAG_S,
        peak_speed_cm_s=peak_speed)


__all__ += ["CENTER_OUT_PHASES", "CenterOutSession", "simulate_center_out_session"]
