"""Synthetic population activity with known low-dimensional structure, for tests and benchmarks.

Each generator is an independent function returning its data and the ground truth it was made
from; the models are in their docstrings.

* :func:`low_rank_gaussian`: Gaussian activity in a known linear subspace plus isotropic noise
  (probabilistic PCA's model), the ground truth for PCA and factor analysis.
* :func:`poisson_latent_population`: spike counts of a Poisson GLM driven by smooth latents
  (log-linear rates), the ground truth for latent recovery and co-smoothing scores.

Example
-------
>>> data = low_rank_gaussian(n_samples=2000, n_neurons=10, rank=2, noise_std=0.1, seed=0)
>>> data.activity.shape, data.loadings.shape, data.latents.shape
((2000, 10), (10, 2), (2000, 2))
>>> bool(np.allclose(data.loadings.T @ data.loadings, np.eye(2)))
True
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["LowRankGaussian", "low_rank_gaussian", "PoissonLatentPopulation", "poisson_latent_population"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def _orthonormal_basis(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """A uniformly random ``n x k`` matrix with orthonormal columns (QR of a Gaussian matrix,
    signs fixed so the distribution is Haar; Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.normal(size=(n, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


@dataclass(frozen=True)
class LowRankGaussian:
    """Activity from :func:`low_rank_gaussian` and the truth it was made from.

    Attributes
    ----------
    activity : ndarray of float64, shape (n_samples, n_neurons)
    loadings : ndarray of float64, shape (n_neurons, rank)
        Orthonormal basis ``W`` of the true subspace; column ``i`` is the direction of latent ``i``.
    latents : ndarray of float64, shape (n_samples, rank)
        The latent values ``z_t``.
    mean : ndarray of float64, shape (n_neurons,)
        The offset ``mu`` of each neuron.
    latent_std : ndarray of float64, shape (rank,)
        Standard deviation of each latent, decreasing.
    noise_std : float
    """

    activity: np.ndarray
    loadings: np.ndarray
    latents: np.ndarray
    mean: np.ndarray
    latent_std: np.ndarray
    noise_std: float

    @property
    def covariance(self) -> np.ndarray:
        """The population covariance ``W diag(latent_std**2) W^T + noise_std**2 I``."""
        W = self.loadings
        return (W * self.latent_std**2) @ W.T + self.noise_std**2 * np.eye(W.shape[0])


def low_rank_gaussian(*, n_samples: int, n_neurons: int, rank: int, noise_std: float, seed: int | None = 0,
                      latent_std=None, mean_range: tuple[float, float] = (5.0, 15.0)) -> LowRankGaussian:
    """Gaussian activity in a known ``rank``-dimensional subspace plus isotropic noise.

    The model (probabilistic PCA; Tipping & Bishop 1999) for samples ``t = 0 .. n_samples - 1``::

        x_t = mu + W z_t + noise_std * e_t,   z_t ~ N(0, diag(latent_std**2)),   e_t ~ N(0, I)

    with ``W`` a uniformly random ``n_neurons x rank`` matrix with orthonormal columns and
    ``mu_j ~ U(mean_range)``. The population covariance has eigenvectors ``W[:, i]`` with
    eigenvalues ``latent_std[i]**2 + noise_std**2`` and ``noise_std**2`` for the remaining
    ``n_neurons - rank`` directions, so the top-``rank`` principal subspace is ``span(W)``.

    Parameters
    ----------
    n_samples, n_neurons, rank : int
        Sizes; ``rank <= n_neurons``.
    noise_std : float
        Standard deviation of the independent noise of every neuron (>= 0).
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    latent_std : array_like, shape (rank,), optional
        Latent standard deviations; default ``rank, rank - 1, ..., 1``, distinct so that each
        principal component, not just the subspace, is identifiable.
    mean_range : (float, float)
        Range of the uniform offsets ``mu``; the default (5, 15) puts the data away from zero,
        as firing rates are, which exercises centring.

    Returns
    -------
    LowRankGaussian

    Raises
    ------
    ValueError
        Non-positive sizes, ``rank > n_neurons``, negative noise, ``latent_std`` of the wrong shape.

    Examples
    --------
    >>> d = low_rank_gaussian(n_samples=5000, n_neurons=6, rank=2, noise_std=0.5, seed=1)
    >>> d.latent_std.tolist(), np.linalg.eigvalsh(d.covariance)[::-1].round(2).tolist()
    ([2.0, 1.0], [4.25, 1.25, 0.25, 0.25, 0.25, 0.25])
    """
    n_samples = _positive_int(n_samples, "n_samples")
    n_neurons = _positive_int(n_neurons, "n_neurons")
    rank = _positive_int(rank, "rank")
    if rank > n_neurons:
        raise ValueError(f"rank {rank} exceeds n_neurons {n_neurons}")
    noise_std = _non_negative(noise_std, "noise_std")
    if latent_std is None:
        latent_std = np.arange(rank, 0, -1, dtype=np.float64)
    latent_std = np.asarray(latent_std, dtype=np.float64)
    if latent_std.shape != (rank,) or not np.all(np.isfinite(latent_std)) or np.any(latent_std < 0):
        raise ValueError(f"latent_std must be {rank} non-negative numbers, got {latent_std!r}")
    lo, hi = mean_range
    rng = np.random.default_rng(seed)
    W = _orthonormal_basis(rng, n_neurons, rank)
    mu = rng.uniform(lo, hi, size=n_neurons)
    z = rng.normal(size=(n_samples, rank)) * latent_std
    x = mu + z @ W.T + noise_std * rng.normal(size=(n_samples, n_neurons))
    return LowRankGaussian(activity=x, loadings=W, latents=z, mean=mu, latent_std=latent_std, noise_std=noise_std)


@dataclass(frozen=True)
class PoissonLatentPopulation:
    """Spike counts from :func:`poisson_latent_population` and the truth behind them.

    Attributes
    ----------
    counts : ndarray of int64, shape (n_samples, n_neurons)
        Spike counts per bin.
    rates : ndarray of float64, shape (n_samples, n_neurons)
        The expected count per bin ``lambda_t`` (not per second) from which the counts were drawn.
    latents : ndarray of float64, shape (n_samples, n_latents)
        Smooth latents, each with mean 0 and standard deviation 1 over the session.
    loadings : ndarray of float64, shape (n_neurons, n_latents)
    log_baseline : ndarray of float64, shape (n_neurons,)
    """

    counts: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    loadings: np.ndarray
    log_baseline: np.ndarray


def poisson_latent_population(*, n_samples: int, n_neurons: int, n_latents: int, seed: int | None = 0,
                              smoothness_bins: float = 5.0, mean_count: float = 0.3,
                              gain: float = 0.6) -> PoissonLatentPopulation:
    """Spike counts of neurons whose log rate is a linear function of smooth latents.

    The model (a Poisson GLM, the generative model of GPFA-like latent variable models)::

        z_t = standardised Gaussian-smoothed white noise     (n_latents, sigma = smoothness_bins)
        lambda_t = exp(b + C z_t)                            (expected counts per bin)
        y_t ~ Poisson(lambda_t), independently per neuron and bin

    with ``C_jk ~ N(0, gain**2 / n_latents)`` (so each neuron's log rate has standard deviation
    about ``gain``) and ``b_j = log(m_j) - |C_j|**2 / 2``, ``m_j ~ U(0.5, 1.5) * mean_count``, so
    that neuron ``j``'s mean count is about ``m_j``.

    Parameters
    ----------
    n_samples, n_neurons, n_latents : int
    seed : int or None
    smoothness_bins : float
        Standard deviation of the Gaussian kernel that smooths the latents, in bins (> 0).
    mean_count : float
        Typical mean count per bin (> 0); e.g. 0.3 is 15 spikes/s in 20 ms bins.
    gain : float
        Standard deviation of each neuron's log rate (>= 0).

    Returns
    -------
    PoissonLatentPopulation

    Examples
    --------
    >>> pop = poisson_latent_population(n_samples=20000, n_neurons=30, n_latents=3, seed=0)
    >>> pop.counts.shape, pop.latents.std(axis=0).round(6).tolist()
    ((20000, 30), [1.0, 1.0, 1.0])
    >>> bool(0.2 < pop.counts.mean() < 0.4)
    True
    """
    from .preprocessing import gaussian_smooth

    n_samples = _positive_int(n_samples, "n_samples")
    n_neurons = _positive_int(n_neurons, "n_neurons")
    n_latents = _positive_int(n_latents, "n_latents")
    gain = _non_negative(gain, "gain")
    if _non_negative(mean_count, "mean_count") == 0:
        raise ValueError("mean_count must be positive, got 0")
    rng = np.random.default_rng(seed)
    z = gaussian_smooth(rng.normal(size=(n_samples, n_latents)), sigma_bins=smoothness_bins)
    std = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    C = rng.normal(scale=gain / np.sqrt(n_latents), size=(n_neurons, n_latents))
    # E[exp(c.z)] = exp(|c|^2 / 2) for z ~ N(0, I): subtracting it gives each neuron its mean count
    b = np.log(rng.uniform(0.5, 1.5, size=n_neurons) * float(mean_count)) - 0.5 * np.sum(C**2, axis=1)
    rates = np.exp(b + z @ C.T)
    counts = rng.poisson(rates).astype(np.int64)
    return PoissonLatentPopulation(counts=counts, rates=rates, latents=z, loadings=C, log_baseline=b)


# ------------------------------------------------------------------------------------------------
# the Lorenz benchmark of sequential (dynamics) models

__all__ += ["LorenzDataset", "lorenz_poisson_dataset"]

_LORENZ_SIGMA, _LORENZ_RHO, _LORENZ_BETA = 10.0, 28.0, 8.0 / 3.0
_LORENZ_DT = 0.01             # RK4 step, in Lorenz time units (well inside RK4's stable range)
_LORENZ_STEPS_PER_BIN = 2     # so one bin is 0.02 Lorenz time units
_LORENZ_BURN_IN_STEPS = 1000  # 10 time units: long enough to forget the start and reach the attractor
_LORENZ_WEIGHT_SD = 0.5       # readout weights ~ N(0, 0.5^2): log-rates vary by about +-1 (a factor e)
_LORENZ_MEAN_RATE_HZ = (5.0, 20.0)


@dataclass(frozen=True)
class LorenzDataset:
    """Spike counts driven by Lorenz dynamics, from :func:`lorenz_poisson_dataset`, with the truth.

    Attributes
    ----------
    counts : ndarray of int64, shape (n_trials, n_time, n_neurons)
        Poisson spike counts per bin.
    rates : ndarray of float64, shape (n_trials, n_time, n_neurons)
        The true expected count of every bin (``rate_hz * bin_width_s``), the scale on which
        Poisson likelihoods and bits per spike are computed.
    latents : ndarray of float64, shape (n_trials, n_time, 3)
        The Lorenz state (x, y, z) at every bin, z-scored over the whole dataset.
    weights : ndarray of float64, shape (n_neurons, 3)
        Readout weights of the log-rates from the latents.
    bias : ndarray of float64, shape (n_neurons,)
        Offsets of the log-rates (log expected counts per bin).
    bin_width_s : float
    """

    counts: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    bin_width_s: float

    @property
    def rates_hz(self) -> np.ndarray:
        """The true firing rates in spikes per second."""
        return self.rates / self.bin_width_s


def _lorenz_derivative(state: np.ndarray) -> np.ndarray:
    x, y, z = state[:, 0], state[:, 1], state[:, 2]
    return np.stack([_LORENZ_SIGMA * (y - x), x * (_LORENZ_RHO - z) - y, x * y - _LORENZ_BETA * z], axis=1)


def _lorenz_rk4_step(state: np.ndarray, dt: float) -> np.ndarray:
    k1 = _lorenz_derivative(state)
    k2 = _lorenz_derivative(state + 0.5 * dt * k1)
    k3 = _lorenz_derivative(state + 0.5 * dt * k2)
    k4 = _lorenz_derivative(state + dt * k3)
    return state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def lorenz_poisson_dataset(*, n_trials: int = 200, n_time: int = 50, n_neurons: int = 100,
                           bin_width_s: float = 0.02, seed: int = 0) -> LorenzDataset:
    """Poisson spike counts whose log-rates are a linear readout of a Lorenz attractor.

    The synthetic benchmark of LFADS (Sussillo et al. 2016, arXiv:1608.06315) and of the Neural
    Latents Benchmark: low-dimensional chaotic dynamics, observed only through the spikes of many
    neurons, which a dynamics model should recover.

    Notes
    -----
    The model:

    * **Dynamics.** The Lorenz system ``dx/dt = sigma (y - x)``, ``dy/dt = x (rho - z) - y``,
      ``dz/dt = x y - beta z`` with the classic chaotic parameters ``sigma = 10``, ``rho = 28``,
      ``beta = 8/3``, integrated with fourth-order Runge-Kutta at a step of 0.01 time units, two
      steps per bin (so one bin is 0.02 Lorenz time units and 50 bins are about one and a half
      turns around a wing, enough that a trial's future is not a straight extrapolation).
    * **Initial conditions.** Every trial starts from its own random point
      ``(x, y, z) ~ N((0, 0, 25), 10^2 I)``, integrated for a burn-in of 10 time units before the
      first bin, so trials start at independent, random places *on* the attractor (the state
      depends on the start sensitively, since the system is chaotic) rather than on the
      transient towards it.
    * **Latents.** The three coordinates are z-scored over all trials and bins of the dataset,
      so the readout weights have one scale for all three.
    * **Log-rates.** ``log r_{t,i} = W_i . z_t + b_i`` with ``W_i ~ N(0, 0.5^2 I)`` (the log-rate
      of a typical neuron then varies by about +-1 around its mean, a few-fold modulation), and
      ``b_i`` set so that neuron ``i``'s mean rate over the dataset is exactly a rate drawn from
      ``U(5, 20)`` spikes/s (typical cortical rates).
    * **Spikes.** Counts ``n_{t,i} ~ Poisson(r_{t,i})`` independently per bin, ``r`` being the
      expected count per bin (``rate_hz * bin_width_s``).

    Parameters
    ----------
    n_trials : int, default 200
        Independent trials, >= 1.
    n_time : int, default 50
        Bins per trial, >= 1.
    n_neurons : int, default 100
        Neurons, >= 1.
    bin_width_s : float, default 0.02
        Bin width in seconds, > 0; it sets only the counts per bin (the dynamics are in bins).
    seed : int, default 0
        Seed of the initial conditions, the readout and the spikes.

    Returns
    -------
    LorenzDataset

    Examples
    --------
    >>> data = lorenz_poisson_dataset(n_trials=4, n_time=30, n_neurons=10, seed=1)
    >>> data.counts.shape, data.latents.shape, data.weights.shape
    ((4, 30, 10), (4, 30, 3), (10, 3))
    >>> bool(np.allclose(data.latents.reshape(-1, 3).std(axis=0), 1.0))
    True
    >>> rates_hz = data.rates_hz.mean(axis=(0, 1))
    >>> bool(rates_hz.min() >= 5.0 and rates_hz.max() <= 20.0)
    True
    """
    for name, value in (("n_trials", n_trials), ("n_time", n_time), ("n_neurons", n_neurons), ("seed", seed)):
        minimum = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(bin_width_s, bool) or not isinstance(bin_width_s, numbers.Real) or not (
            np.isfinite(bin_width_s) and bin_width_s > 0):
        raise ValueError(f"bin_width_s must be a finite number > 0, got {bin_width_s!r}")
    n_trials, n_time, n_neurons = int(n_trials), int(n_time), int(n_neurons)
    rng = np.random.default_rng(seed)

    state = rng.normal(loc=(0.0, 0.0, 25.0), scale=10.0, size=(n_trials, 3))
    for _ in range(_LORENZ_BURN_IN_STEPS):
        state = _lorenz_rk4_step(state, _LORENZ_DT)
    latents = np.empty((n_trials, n_time, 3))
    for t in range(n_time):
        latents[:, t] = state
        for _ in range(_LORENZ_STEPS_PER_BIN):
            state = _lorenz_rk4_step(state, _LORENZ_DT)
    flat = latents.reshape(-1, 3)
    scale = flat.std(axis=0)
    # one bin of one trial has no spread; keep it at 0 rather than dividing by 0
    scale[scale == 0] = 1.0
    latents = (latents - flat.mean(axis=0)) / scale

    weights = rng.normal(scale=_LORENZ_WEIGHT_SD, size=(n_neurons, 3))
    drive = latents @ weights.T                                   # (n_trials, n_time, n_neurons)
    mean_rate_hz = rng.uniform(*_LORENZ_MEAN_RATE_HZ, size=n_neurons)
    # the bias that makes the dataset's mean rate of each neuron its drawn rate exactly
    bias = np.log(mean_rate_hz * bin_width_s) - np.log(np.exp(drive).mean(axis=(0, 1)))
    rates = np.exp(drive + bias)
    counts = rng.poisson(rates).astype(np.int64)
    return LorenzDataset(counts=counts, rates=rates, latents=latents, weights=weights, bias=bias,
                         bin_width_s=float(bin_width_s))
