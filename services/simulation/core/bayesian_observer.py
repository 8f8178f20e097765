"""An ideal Bayesian observer of a Gaussian stimulus, its psychometric curves, and fitting it to choices.

The generative model
--------------------
A stimulus value ``x`` (say, an orientation or a duration) is drawn from a Gaussian **prior**
``N(mu0, s0^2)``. The observer does not see ``x``; it sees noisy measurements
``m_k = x + noise``, ``noise ~ N(0, s^2)`` independently (the **likelihood**, with sensory noise
``s``). After each measurement its belief about ``x`` is the conjugate Gaussian posterior,
updated sequentially (a scalar Kalman filter with a static state):

* gain ``K_k = v_{k-1} / (v_{k-1} + s^2)``,
* mean ``mu_k = mu_{k-1} + K_k (m_k - mu_{k-1})``,
* variance ``v_k = v_{k-1} s^2 / (v_{k-1} + s^2)``,

starting from ``mu_0 = mu0``, ``v_0 = s0^2``. In closed form after ``n`` measurements the
precision is ``1/v_n = 1/s0^2 + n/s^2`` and ``mu_n = v_n (mu0/s0^2 + sum(m)/s^2)``
(:func:`sequential_posterior` computes the recursion; the tests check it against this). The
**predictive** distribution of the next measurement is ``N(mu_n, v_n + s^2)``, and the product
of the predictive densities of the measurements, each given those before it, is the evidence
``p(m_1 .. m_n)``.

Two-alternative forced choice
-----------------------------
On each trial the observer sees ``n`` measurements of a stimulus ``x`` and says whether ``x`` is
greater than a reference ``r``. It answers "greater" when its posterior puts more than half of
its mass above ``r``, which, the posterior being Gaussian, is when ``mu_n > r``. With weight
``w = s0^2 / (s0^2 + s^2/n)`` on the data, ``mu_n = w mean(m) + (1 - w) mu0`` is itself Gaussian
given ``x``, with mean ``w x + (1 - w) mu0`` and standard deviation ``w s / sqrt(n)``, so

``P("greater" | x) = lapse/2 + (1 - lapse) Phi((w x + (1 - w) mu0 - r) / (w s / sqrt(n)))``

(:func:`psychometric_curve`): a probit of slope ``sqrt(n)/s`` whose point of subjective
equality ``(r - (1 - w) mu0) / w`` is pulled away from ``r`` by the prior (the central-tendency
bias). On a lapse, with probability ``lapse``, the observer guesses. Slope, bias and the way the
bias grows with ``r`` identify ``s``, ``mu0`` and ``s0`` (a single reference identifies only
their combination in the bias: vary the references).

Fitting
-------
:func:`fit_observer` maximises the Bernoulli likelihood of the choices over
``theta = (mu0, log s0, log s[, logit lapse])`` with scipy (BFGS, then Nelder-Mead if BFGS does
not converge), and gives Wald confidence intervals from the observed Fisher information, the
Hessian of the negative log-likelihood at the optimum (central differences), on the ``theta``
scale and mapped back (so the intervals of the standard deviations and the lapse stay in their
ranges). A parametric bootstrap (simulate choices from the fit, refit) is optional.

Example
-------
>>> post = sequential_posterior([1.0, 3.0], prior_mean=0.0, prior_sd=1.0, noise_sd=1.0)
>>> post.means.round(4).tolist(), post.variances.round(4).tolist()
([0.0, 0.5, 1.3333], [1.0, 0.5, 0.3333])
>>> truth = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=0.5, lapse=0.0)
>>> float(psychometric_curve(0.0, reference=0.0, parameters=truth))
0.5
>>> rng = np.random.default_rng(0)
>>> stimuli = rng.normal(0.0, 1.0, 3000)
>>> references = rng.choice([-1.0, 0.0, 1.0], 3000)
>>> choices = simulate_choices(stimuli, references, parameters=truth, seed=1)
>>> fit = fit_observer(stimuli, references, choices, fit_lapse=False)
>>> fit.names
('prior_mean', 'prior_sd', 'noise_sd')
>>> bool(np.all(np.abs(fit.estimate - [0.0, 1.0, 0.5]) < 4 * fit.standard_error))
True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import optimize, special, stats

__all__ = ["ObserverParameters", "PosteriorSequence", "ObserverFit", "sequential_posterior", "psychometric_curve",
           "simulate_choices", "choice_log_likelihood", "fit_observer"]

#: progress callback: ``report(fraction_done, message)``; an exception it raises stops the work
Report = Callable[[float, str], None]

_LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------------------------
# checks


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _lapse(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0.0 <= value < 1.0):
        raise ValueError(f"lapse must be a number in [0, 1), got {value!r}")
    return float(value)


def _finite_array(values, name: str, *, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers, got {values!r}") from None
    if array.ndim not in ndim:
        raise ValueError(f"{name} must have rank {' or '.join(map(str, ndim))}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty, shape {array.shape}")
    if not np.isfinite(array).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    return array


def _trial_arrays(stimuli, references, n_samples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stimuli, references and measurement counts as 1-D arrays of one length."""
    x = _finite_array(stimuli, "stimuli")
    r = _finite_array(references, "references", ndim=(0, 1))
    if r.ndim == 0:
        r = np.full(x.shape, float(r))
    elif r.shape != x.shape:
        raise ValueError(f"references must be a number or have the shape of stimuli {x.shape}, got shape {r.shape}")
    n = np.asarray(n_samples)
    if n.ndim == 0:
        n = np.full(x.shape, n)
    if n.shape != x.shape:
        raise ValueError(f"n_samples must be an integer or have the shape of stimuli {x.shape}, got shape {n.shape}")
    if not np.issubdtype(n.dtype, np.integer) or n.min() < 1:
        raise ValueError(f"n_samples must be integers >= 1 (measurements per trial), got {n_samples!r}")
    return x, r, n.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# belief updates


@dataclass(frozen=True)
class PosteriorSequence:
    """The observer's beliefs after each measurement of a stimulus.

    Index ``k`` of every array is the belief after the first ``k`` measurements (``k = 0`` is
    the prior), along the last axis; leading axes are those of the measurements (trials).

    Attributes
    ----------
    means, variances : ndarray, shape (..., n + 1)
        Posterior mean and variance of the stimulus.
    predictive_means, predictive_sds : ndarray, shape (..., n + 1)
        Mean and standard deviation of the predicted next measurement, ``N(mu_k, v_k + s^2)``.
    gains : ndarray, shape (..., n)
        The weight ``K_k`` that measurement ``k`` (1-based) gets in the update.
    log_evidence : ndarray, shape (...)
        ``log p(m_1 .. m_n)``, the sum of the log predictive densities of the measurements.
    """

    means: np.ndarray
    variances: np.ndarray
    predictive_means: np.ndarray
    predictive_sds: np.ndarray
    gains: np.ndarray
    log_evidence: np.ndarray


def sequential_posterior(observations, *, prior_mean: float, prior_sd: float, noise_sd: float) -> PosteriorSequence:
    """Update a Gaussian belief about a stimulus one noisy measurement at a time.

    Parameters
    ----------
    observations : array_like, shape (n,) or (n_trials, n)
        Measurements, in order along the last axis; each row is one stimulus.
    prior_mean, prior_sd : float
        The prior ``N(prior_mean, prior_sd^2)`` over the stimulus.
    noise_sd : float
        Standard deviation of the sensory noise of each measurement.

    Returns
    -------
    PosteriorSequence

    Examples
    --------
    >>> post = sequential_posterior([2.0, 2.0, 2.0, 2.0], prior_mean=0.0, prior_sd=1.0, noise_sd=2.0)
    >>> post.means.round(3).tolist()
    [0.0, 0.4, 0.667, 0.857, 1.0]
    >>> round(float(post.predictive_sds[0] ** 2), 12)   # prior variance + noise variance
    5.0
    """
    m = _finite_array(observations, "observations", ndim=(1, 2))
    mu0 = _finite(prior_mean, "prior_mean")
    s0 = _positive(prior_sd, "prior_sd")
    s = _positive(noise_sd, "noise_sd")
    n = m.shape[-1]
    lead = m.shape[:-1]
    means = np.empty(lead + (n + 1,))
    variances = np.empty(lead + (n + 1,))
    gains = np.empty(lead + (n,))
    log_evidence = np.zeros(lead)
    means[..., 0], variances[..., 0] = mu0, s0 ** 2
    noise_var = s ** 2
    for k in range(n):
        mean, var = means[..., k], variances[..., k]
        predictive_var = var + noise_var
        innovation = m[..., k] - mean
        # the predictive density of this measurement given the ones before it
        log_evidence = log_evidence - 0.5 * (_LOG_2PI + np.log(predictive_var) + innovation ** 2 / predictive_var)
        gain = var / predictive_var
        gains[..., k] = gain
        means[..., k + 1] = mean + gain * innovation
        variances[..., k + 1] = var * noise_var / predictive_var
    return PosteriorSequence(means=means, variances=variances, predictive_means=means.copy(),
                             predictive_sds=np.sqrt(variances + noise_var), gains=gains,
                             log_evidence=np.asarray(log_evidence))


# ------------------------------------------------------------------------------------------------
# the forced-choice task


@dataclass(frozen=True)
class ObserverParameters:
    """A Bayesian observer of the forced-choice task: its prior, its sensory noise, its lapses.

    ``lapse`` is the probability of guessing (either answer with probability 1/2) on a trial.
    """

    prior_mean: float
    prior_sd: float
    noise_sd: float
    lapse: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prior_mean", _finite(self.prior_mean, "prior_mean"))
        object.__setattr__(self, "prior_sd", _positive(self.prior_sd, "prior_sd"))
        object.__setattr__(self, "noise_sd", _positive(self.noise_sd, "noise_sd"))
        object.__setattr__(self, "lapse", _lapse(self.lapse))

    def as_array(self) -> np.ndarray:
        return np.array([self.prior_mean, self.prior_sd, self.noise_sd, self.lapse])


def _probit_argument(x, r, n, mu0, s0, s):
    """``z`` of ``P("greater") = Phi(z)`` without lapses (see the module docstring)."""
    measurement_var = s ** 2 / n
    w = s0 ** 2 / (s0 ** 2 + measurement_var)
    return (w * x + (1.0 - w) * mu0 - r) / (w * np.sqrt(measurement_var))


def psychometric_curve(stimuli, *, reference, parameters: ObserverParameters, n_samples=1) -> np.ndarray:
    """Probability that the observer reports "stimulus greater than reference", per stimulus.

    Parameters
    ----------
    stimuli : array_like
        Stimulus values (any shape, or a number).
    reference : float or array_like
        The reference, a number or one per stimulus.
    parameters : ObserverParameters
    n_samples : int or array_like of int
        Measurements the observer gets per trial.

    Returns
    -------
    ndarray, shaped like ``stimuli``

    Examples
    --------
    >>> observer = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=1.0)
    >>> psychometric_curve([-1.0, 0.5, 1.0], reference=0.5, parameters=observer).round(3).tolist()
    [0.023, 0.309, 0.5]
    """
    if not isinstance(parameters, ObserverParameters):
        raise ValueError(f"parameters must be an ObserverParameters, got {type(parameters).__name__}")
    shape = np.shape(stimuli)
    x, r, n = _trial_arrays(np.reshape(stimuli, -1), np.reshape(reference, -1) if np.ndim(reference) else reference,
                            np.reshape(n_samples, -1) if np.ndim(n_samples) else n_samples)
    p = special.ndtr(_probit_argument(x, r, n, parameters.prior_mean, parameters.prior_sd, parameters.noise_sd))
    p = 0.5 * parameters.lapse + (1.0 - parameters.lapse) * p
    return p.reshape(shape)


def simulate_choices(stimuli, references, *, parameters: ObserverParameters, n_samples=1,
                     seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Choices of a simulated subject: measure, update the belief, answer (or lapse).

    Each trial draws ``n_samples`` measurements of its stimulus, runs
    :func:`sequential_posterior` on them, and answers "greater" (True) when the posterior mean
    exceeds the reference; with probability ``parameters.lapse`` it instead guesses.

    Returns
    -------
    ndarray of bool, shape (n_trials,)

    Examples
    --------
    >>> observer = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=0.1)
    >>> simulate_choices([-2.0, 2.0], 0.0, parameters=observer, seed=0).tolist()
    [False, True]
    """
    if not isinstance(parameters, ObserverParameters):
        raise ValueError(f"parameters must be an ObserverParameters, got {type(parameters).__name__}")
    x, r, n = _trial_arrays(stimuli, references, n_samples)
    rng = np.random.default_rng(seed)
    choices = np.empty(x.size, dtype=bool)
    posterior_means = np.empty(x.size)
    for count in np.unique(n):          # trials with the same number of measurements update together
        rows = np.flatnonzero(n == count)
        measurements = x[rows, None] + parameters.noise_sd * rng.standard_normal((rows.size, int(count)))
        posterior = sequential_posterior(measurements, prior_mean=parameters.prior_mean,
                                         prior_sd=parameters.prior_sd, noise_sd=parameters.noise_sd)
        posterior_means[rows] = posterior.means[:, -1]
    choices[:] = posterior_means > r
    lapses = rng.random(x.size) < parameters.lapse
    choices[lapses] = rng.random(int(lapses.sum())) < 0.5
    return choices


def _choice_array(choices, n_trials: int) -> np.ndarray:
    c = np.asarray(choices)
    if c.shape != (n_trials,):
        raise ValueError(f"choices must have one entry per trial, shape ({n_trials},), got shape {c.shape}")
    if c.dtype != bool:
        if not np.issubdtype(c.dtype, np.number) or not np.isin(c, (0, 1)).all():
            raise ValueError("choices must be booleans or 0/1 (1 = 'greater')")
        c = c.astype(bool)
    return c


def _negative_log_likelihood(mu0, s0, s, lapse, x, r, n, c) -> float:
    z = _probit_argument(x, r, n, mu0, s0, s)
    z = np.where(c, z, -z)              # P(answer given) = Phi(+-z) before lapses
    log_p = special.log_ndtr(z)
    if lapse > 0.0:
        log_p = np.logaddexp(math.log(0.5 * lapse), math.log1p(-lapse) + log_p)
    return float(-log_p.sum())


def choice_log_likelihood(stimuli, references, choices, *, parameters: ObserverParameters, n_samples=1) -> float:
    """Log-likelihood of observed choices (True/1 = "greater") under an observer.

    Examples
    --------
    >>> observer = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=1.0)
    >>> round(choice_log_likelihood([0.0], 0.0, [True], parameters=observer), 4) == round(math.log(0.5), 4)
    True
    """
    x, r, n = _trial_arrays(stimuli, references, n_samples)
    c = _choice_array(choices, x.size)
    p = parameters
    return -_negative_log_likelihood(p.prior_mean, p.prior_sd, p.noise_sd, p.lapse, x, r, n, c)


# ------------------------------------------------------------------------------------------------
# maximum-likelihood fit


@dataclass(frozen=True)
class ObserverFit:
    """Maximum-likelihood observer parameters with their uncertainty.

    Attributes
    ----------
    parameters : ObserverParameters
        The estimate (``lapse`` is the fixed value when it was not fitted).
    names : tuple of str
        The fitted parameters, in the order of the arrays below.
    estimate, standard_error, ci_lower, ci_upper : ndarray, shape (n_params,)
        Estimates on their natural scale; Wald intervals at ``confidence`` built on the
        unconstrained scale ``theta`` and mapped back (so ``standard_error`` is the delta-method
        error on the natural scale, while the interval is not symmetric about the estimate).
    theta, theta_covariance : ndarray
        The unconstrained estimate ``(mu0, log s0, log s[, logit lapse])`` and the inverse of
        the observed information there (NaN where the Hessian is not positive definite).
    hessian_positive_definite : bool
        Whether the optimum is a proper maximum; False means the intervals are not trustworthy.
        A lapse estimate at its boundary 0 (``logit`` towards minus infinity) leaves the
        likelihood flat in that direction: the lapse interval then spans about ``[0, 1]``,
        which says only that the data do not bound it by Wald's method (the bootstrap does).
    negative_log_likelihood : float
    n_trials : int
    converged : bool
        Whether the optimiser reported convergence.
    confidence : float
    bootstrap_estimates : ndarray, shape (n_bootstrap, n_params)
        Refits to choices simulated from the estimate (empty without a bootstrap).
    bootstrap_ci_lower, bootstrap_ci_upper : ndarray, shape (n_params,)
        Percentile intervals of the bootstrap (NaN without one).
    """

    parameters: ObserverParameters
    names: tuple[str, ...]
    estimate: np.ndarray
    standard_error: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    theta: np.ndarray
    theta_covariance: np.ndarray
    hessian_positive_definite: bool
    negative_log_likelihood: float
    n_trials: int
    converged: bool
    confidence: float
    bootstrap_estimates: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    bootstrap_ci_lower: np.ndarray = field(default_factory=lambda: np.empty(0))
    bootstrap_ci_upper: np.ndarray = field(default_factory=lambda: np.empty(0))


def _to_natural(theta: np.ndarray, fit_lapse: bool) -> np.ndarray:
    natural = np.array([theta[0], math.exp(theta[1]), math.exp(theta[2])])
    if fit_lapse:
        natural = np.append(natural, special.expit(theta[3]))
    return natural


def _natural_derivative(theta: np.ndarray, fit_lapse: bool) -> np.ndarray:
    """d natural / d theta, elementwise (the map is diagonal)."""
    d = [1.0, math.exp(theta[1]), math.exp(theta[2])]
    if fit_lapse:
        q = special.expit(theta[3])
        d.append(q * (1.0 - q))
    return np.array(d)


def _numerical_hessian(f: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``theta`` (steps scaled to each coordinate)."""
    k = theta.size
    h = 1e-4 * np.maximum(1.0, np.abs(theta))
    H = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(theta + ei) - 2.0 * f0 + f(theta - ei)) / h[i] ** 2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej)
                                 + f(theta - ei - ej)) / (4.0 * h[i] * h[j])
    return H


def _initial_theta(x, r, fit_lapse: bool) -> np.ndarray:
    spread = float(np.std(x)) or 1.0
    theta = [float(np.mean(r)), math.log(spread), math.log(0.5 * spread)]
    if fit_lapse:
        theta.append(special.logit(0.02))
    return np.array(theta)


def _maximise(x, r, n, c, lapse: float, fit_lapse: bool, start: np.ndarray,
              callback: Callable[[np.ndarray], None] | None = None):
    """ML estimate of theta from ``start``: (theta, negative log-likelihood, converged, the objective)."""
    def nll(theta):
        if not np.isfinite(theta).all() or np.abs(theta[1:3]).max() > 30:
            return 1e300
        lam = special.expit(theta[3]) if fit_lapse else lapse
        return _negative_log_likelihood(theta[0], math.exp(theta[1]), math.exp(theta[2]), lam, x, r, n, c)

    result = optimize.minimize(nll, start, method="BFGS", callback=callback, options={"gtol": 1e-6, "maxiter": 500})
    if not result.success:
        polished = optimize.minimize(nll, result.x, method="Nelder-Mead", callback=callback,
                                     options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
        if polished.fun <= result.fun:
            result = polished
    return np.asarray(result.x, dtype=float), float(result.fun), bool(result.success), nll


def fit_observer(stimuli, references, choices, *, n_samples=1, fit_lapse: bool = True, lapse: float = 0.0,
                 confidence: float = 0.95, n_bootstrap: int = 0, seed: int | None = 0,
                 report: Report | None = None) -> ObserverFit:
    """Fit a Bayesian observer's prior, noise (and lapse rate) to forced-choice data.

    Parameters
    ----------
    stimuli : array_like, shape (n_trials,)
        Stimulus value on each trial.
    references : float or array_like, shape (n_trials,)
        Reference on each trial; use several values, or ``prior_mean`` and ``prior_sd`` are not
        separately identifiable.
    choices : array_like of bool or 0/1, shape (n_trials,)
        True (1) where the subject answered "stimulus greater than reference".
    n_samples : int or array_like of int
        Measurements per trial (as in :func:`psychometric_curve`).
    fit_lapse : bool
        Fit the lapse rate; otherwise hold it at ``lapse``.
    lapse : float
        The fixed lapse rate when ``fit_lapse`` is False.
    confidence : float
        Level of the intervals, in (0, 1).
    n_bootstrap : int
        Parametric-bootstrap replicates (0 for none).
    seed : int or None
        Seeds the bootstrap's simulated choices.
    report : callable, optional
        ``report(fraction_done, message)``, called during the fit and after each bootstrap
        replicate; an exception it raises stops the fit.

    Returns
    -------
    ObserverFit

    Examples
    --------
    >>> truth = ObserverParameters(prior_mean=0.5, prior_sd=1.0, noise_sd=0.8)
    >>> rng = np.random.default_rng(3)
    >>> x, r = rng.normal(0.5, 1.5, 2000), rng.choice([-0.5, 0.5, 1.5], 2000)
    >>> fit = fit_observer(x, r, simulate_choices(x, r, parameters=truth, seed=4), fit_lapse=False)
    >>> np.round(fit.estimate, 1).tolist()
    [0.5, 1.0, 0.8]
    """
    x, r, n = _trial_arrays(stimuli, references, n_samples)
    c = _choice_array(choices, x.size)
    if not isinstance(fit_lapse, bool):
        raise ValueError(f"fit_lapse must be True or False, got {fit_lapse!r}")
    lapse = _lapse(lapse)
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, numbers.Integral) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    if np.unique(x).size < 2:
        raise ValueError("stimuli must take at least two different values to fit a psychometric curve")
    names = ("prior_mean", "prior_sd", "noise_sd") + (("lapse",) if fit_lapse else ())
    total = 1 + int(n_bootstrap)
    iterations = [0]

    def on_iteration(_theta):
        iterations[0] += 1
        if report is not None and iterations[0] % 10 == 0:
            report(min(0.99, iterations[0] / 200.0) / total, f"maximum-likelihood fit, iteration {iterations[0]}")

    start = _initial_theta(x, r, fit_lapse)
    theta, nll_value, converged, nll = _maximise(x, r, n, c, lapse, fit_lapse, start, on_iteration)
    estimate = _to_natural(theta, fit_lapse)
    H = _numerical_hessian(nll, theta)
    H = 0.5 * (H + H.T)
    positive_definite = bool(np.all(np.linalg.eigvalsh(H) > 0))
    covariance = np.linalg.inv(H) if positive_definite else np.full_like(H, np.nan)
    theta_se = np.sqrt(np.diag(covariance))
    z = stats.norm.ppf(0.5 + 0.5 * confidence)
    lower = _to_natural(theta - z * theta_se, fit_lapse) if positive_definite else np.full(theta.size, np.nan)
    upper = _to_natural(theta + z * theta_se, fit_lapse) if positive_definite else np.full(theta.size, np.nan)
    standard_error = np.abs(_natural_derivative(theta, fit_lapse)) * theta_se
    parameters = ObserverParameters(*estimate[:3], lapse=float(estimate[3]) if fit_lapse else lapse)
    if report is not None:
        report(1.0 / total, f"maximum-likelihood fit done (negative log-likelihood {nll_value:.4g})")

    boot = np.empty((int(n_bootstrap), theta.size))
    rng = np.random.default_rng(seed)
    for b in range(int(n_bootstrap)):
        simulated = simulate_choices(x, r, parameters=parameters, n_samples=n, seed=rng)
        boot_theta, *_ = _maximise(x, r, n, simulated, lapse, fit_lapse, theta)
        boot[b] = _to_natural(boot_theta, fit_lapse)
        if report is not None:
            report((2 + b) / total, f"bootstrap replicate {b + 1} of {n_bootstrap}")
    if n_bootstrap:
        tail = 100 * (0.5 - 0.5 * confidence)
        boot_lower, boot_upper = np.percentile(boot, [tail, 100 - tail], axis=0)
    else:
        boot_lower = boot_upper = np.full(theta.size, np.nan)
    return ObserverFit(parameters=parameters, names=names, estimate=estimate, standard_error=standard_error,
                       ci_lower=lower, ci_upper=upper, theta=theta, theta_covariance=covariance,
                       hessian_positive_definite=positive_definite, negative_log_likelihood=nll_value,
                       n_trials=int(x.size), converged=converged, confidence=float(confidence),
                       bootstrap_estimates=boot, bootstrap_ci_lower=boot_lower, bootstrap_ci_upper=boot_upper)
