"""How good a low-dimensional description of population activity is.

* Gaussian scores: :func:`explained_variance_score` (of a reconstruction),
  :func:`latent_recovery_r2` (of latents against known true latents, through the best affine
  map, since latents are identified only up to one) and :func:`forward_prediction_r2`.
* Poisson scores of predicted rates for spike counts: :func:`poisson_log_likelihood`,
  :func:`bits_per_spike`, and the Neural Latents Benchmark's co-smoothing score
  :func:`co_smoothing_bits_per_spike` (Pei et al. 2021), which reads held-out neurons out of
  the latents with a Poisson GLM (:func:`poisson_readout`).

Rates are **expected counts per bin** (``lambda`` of ``Poisson(lambda)``, in the same bins as
the counts), not spikes per second. A model may predict a rate of zero (or, for a linear
readout, below zero) where a spike occurred, which has log-likelihood minus infinity; every
Poisson score here first raises rates below :data:`RATE_FLOOR` (1e-9 counts per bin) to it, so
such a prediction is heavily penalised but finite (the floor NLB's evaluation code uses for
zeros).

Activity may be ``(n_samples, n_neurons)`` or ``(n_trials, n_time, n_neurons)``; the
trials of the latter are pooled.

Example
-------
>>> counts = np.array([[0, 2], [1, 0], [3, 1]])
>>> round(bits_per_spike(counts, counts.mean(axis=0) * np.ones((3, 1))), 12)   # the null: 0 bits
0.0
>>> round(bits_per_spike(counts, counts + 0.1), 3)                                # near-perfect rates
0.684
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

__all__ = ["RATE_FLOOR", "ExplainedVariance", "explained_variance_score", "LatentRecovery", "latent_recovery_r2",
           "poisson_log_likelihood", "bits_per_spike", "poisson_readout", "co_smoothing_bits_per_spike",
           "ForwardPrediction", "forward_prediction_r2"]

#: rates (expected counts per bin) below this are raised to it before taking logs
RATE_FLOOR = 1e-9


def _as_array(X, name: str, *, ndims=(2, 3)) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim not in ndims:
        shapes = {1: "(n_samples,)", 2: "(n_samples, n_columns)", 3: "(n_trials, n_time, n_columns)"}
        raise ValueError(f"{name} must have shape {' or '.join(shapes[n] for n in ndims)}, got an array of rank "
                         f"{X.ndim} with shape {X.shape}")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if 0 in X.shape:
        raise ValueError(f"{name} is empty, shape {X.shape}")
    if not np.isfinite(X).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    return X.astype(np.float64, copy=False)


def _rows(X: np.ndarray) -> np.ndarray:
    return X.reshape(-1, X.shape[-1])


def _same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")


def _r2_columns(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column R² (NaN where the truth is constant), and the SSE and SST behind it."""
    sse = np.sum((y - pred) ** 2, axis=0)
    sst = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    constant = np.ptp(y, axis=0) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    r2[constant] = np.nan
    return r2, sse, np.where(constant, 0.0, sst)


def _pooled(sse: np.ndarray, sst: np.ndarray) -> float:
    total = float(np.sum(sst))
    return float("nan") if total == 0 else 1.0 - float(np.sum(sse[sst > 0])) / total


# ---------------------------------------------------------------------- Gaussian scores
class ExplainedVariance(NamedTuple):
    """:func:`explained_variance_score`: pooled over neurons, and per neuron."""

    total: float
    per_neuron: np.ndarray


def explained_variance_score(X, reconstruction) -> ExplainedVariance:
    """Fraction of the variance of ``X`` that ``reconstruction`` accounts for.

    Parameters
    ----------
    X, reconstruction : array_like, shape (n_samples, n_neurons) or (n_trials, n_time, n_neurons)
        Activity and its reconstruction from the latents (e.g. ``PCA.reconstruct``); same shape.

    Returns
    -------
    ExplainedVariance
        ``per_neuron[j] = 1 - SSE_j / SST_j`` with ``SSE_j = sum_t (X_tj - R_tj)^2`` and ``SST_j =
        sum_t (X_tj - mean_j)^2`` (NaN for a constant neuron, whose variance is undefined to
        explain), and ``total = 1 - sum_j SSE_j / sum_j SST_j`` over the neurons that vary: the
        pooled score, in which each neuron weighs by its variance (NaN if none varies).

    Raises
    ------
    ValueError
        Shapes differ or are not 2-D/3-D, empty or non-finite input.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [2.0, 2.0], [3.0, 4.0]])
    >>> score = explained_variance_score(X, [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    >>> score.total, score.per_neuron.tolist()
    (0.8, [1.0, 0.75])
    """
    X = _as_array(X, "X")
    R = _as_array(reconstruction, "reconstruction")
    _same_shape(X, R, ("X", "reconstruction"))
    per_neuron, sse, sst = _r2_columns(_rows(X), _rows(R))
    return ExplainedVariance(total=_pooled(sse, sst), per_neuron=per_neuron)


class LatentRecovery(NamedTuple):
    """:func:`latent_recovery_r2`: R² per true latent, their mean, and the fitted affine map."""

    r2: np.ndarray
    mean_r2: float
    weights: np.ndarray
    intercept: np.ndarray


def _split_fraction(train_fraction, n: int, unit: str) -> int:
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, numbers.Real) \
            or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be a number strictly between 0 and 1, got {train_fraction!r}")
    n_train = int(round(float(train_fraction) * n))
    if n_train < 1 or n - n_train < 1:
        raise ValueError(f"train_fraction={train_fraction} of {n} {unit} leaves no {unit} to "
                         f"{'fit' if n_train < 1 else 'evaluate'} on")
    return n_train


def latent_recovery_r2(latents, true_latents, *, train_fraction: float | None = None) -> LatentRecovery:
    """How well the true latents are a linear function of the estimated ones.

    Latent variable models identify latents only up to an affine transformation (a rotation
    and scaling for PCA and factor analysis), so the estimated latents ``Z`` are mapped to the
    true ones ``T`` by the least-squares affine map ``T ~ Z W + b`` before scoring.

    Parameters
    ----------
    latents : array_like, shape (n_samples, n_latents) or (n_trials, n_time, n_latents)
        Estimated latents.
    true_latents : array_like, shape (n_samples, n_true) or (n_trials, n_time, n_true)
        The ground truth, same number of samples (and trials).
    train_fraction : float, optional
        None (default): fit and score the map on all samples (in-sample R², optimistic by about
        ``n_latents / n_samples``). A number in (0, 1): fit on the first ``train_fraction`` of
        the samples in time (of the trials, for 3-D input) and score on the rest, so a map that
        merely overfits scores low.

    Returns
    -------
    LatentRecovery
        ``r2`` (n_true,) per true latent on the evaluated samples (NaN for a constant one),
        ``mean_r2`` their mean (ignoring NaN), and the map ``weights`` (n_latents, n_true) and
        ``intercept`` (n_true,).

    Raises
    ------
    ValueError
        Bad shapes (different sample counts), non-finite values, bad ``train_fraction``, or fewer
        fitting samples than the map has parameters (``n_latents + 1``).

    Examples
    --------
    >>> t = np.linspace(0, 1, 50)[:, None]
    >>> result = latent_recovery_r2(3.0 - 2.0 * t, t)       # any affine image scores 1
    >>> result.r2.round(12).tolist(), result.weights.round(6).tolist()
    ([1.0], [[-0.5]])
    """
    Z = _as_array(latents, "latents")
    T = _as_array(true_latents, "true_latents")
    if Z.ndim != T.ndim or Z.shape[:-1] != T.shape[:-1]:
        raise ValueError(f"latents and true_latents must have the same samples (leading dimensions), "
                         f"got shapes {Z.shape} and {T.shape}")
    if train_fraction is None:
        Z_fit, T_fit, Z_eval, T_eval = _rows(Z), _rows(T), _rows(Z), _rows(T)
    else:
        n_train = _split_fraction(train_fraction, Z.shape[0], "trials" if Z.ndim == 3 else "samples")
        Z_fit, T_fit = _rows(Z[:n_train]), _rows(T[:n_train])
        Z_eval, T_eval = _rows(Z[n_train:]), _rows(T[n_train:])
    if Z_fit.shape[0] < Z_fit.shape[1] + 1:
        raise ValueError(f"{Z_fit.shape[0]} samples to fit on, fewer than the {Z_fit.shape[1] + 1} parameters "
                         f"of the affine map per true latent")
    design = np.column_stack([Z_fit, np.ones(Z_fit.shape[0])])
    coef, *_ = np.linalg.lstsq(design, T_fit, rcond=None)
    weights, intercept = coef[:-1], coef[-1]
    r2, _, _ = _r2_columns(T_eval, Z_eval @ weights + intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN (every true latent constant) -> NaN
        mean_r2 = float(np.nanmean(r2))
    return LatentRecovery(r2=r2, mean_r2=mean_r2, weights=weights, intercept=intercept)


class ForwardPrediction(NamedTuple):
    """:func:`forward_prediction_r2`: R² per output, their mean, and pooled R² per future step."""

    r2: np.ndarray
    mean_r2: float
    r2_by_step: np.ndarray | None


def forward_prediction_r2(true_future, predicted_future) -> ForwardPrediction:
    """R² of predicted future activity (or latent state) against what happened.

    Parameters
    ----------
    true_future, predicted_future : array_like, shape (n_samples, n_outputs) or (n_trials, n_steps, n_outputs)
        The observed future and its prediction, same shape; for 3-D input ``[:, k]`` is the
        prediction ``k + 1`` steps ahead.

    Returns
    -------
    ForwardPrediction
        ``r2`` (n_outputs,): ``1 - SSE / SST`` per output over all samples (NaN where the truth is
        constant); ``mean_r2``: their mean, ignoring NaN; ``r2_by_step`` (n_steps,) for 3-D input:
        R² at each horizon, pooled over outputs (``1 - sum SSE / sum SST``, deviations about
        each output's mean over trials at that step), showing how prediction decays with
        horizon; None for 2-D input.

    Raises
    ------
    ValueError
        Shapes differ or are not 2-D/3-D, empty or non-finite input.

    Examples
    --------
    >>> truth = np.array([[[0.0], [1.0]], [[2.0], [3.0]], [[4.0], [8.0]]])   # 3 trials, 2 steps
    >>> result = forward_prediction_r2(truth, truth + [[[0.0], [1.0]]])
    >>> result.r2.round(4).tolist(), result.r2_by_step.round(4).tolist()
    ([0.925], [1.0, 0.8846])
    """
    Y = _as_array(true_future, "true_future")
    P = _as_array(predicted_future, "predicted_future")
    _same_shape(Y, P, ("true_future", "predicted_future"))
    r2, _, _ = _r2_columns(_rows(Y), _rows(P))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_r2 = float(np.nanmean(r2))
    by_step = None
    if Y.ndim == 3:
        by_step = np.array([_pooled(*_r2_columns(Y[:, k], P[:, k])[1:]) for k in range(Y.shape[1])])
    return ForwardPrediction(r2=r2, mean_r2=mean_r2, r2_by_step=by_step)


# ---------------------------------------------------------------------- Poisson scores
def _counts(counts, name: str = "counts") -> np.ndarray:
    counts = _as_array(counts, name)
    if np.any(counts < 0):
        first = tuple(int(i) for i in np.argwhere(counts < 0)[0])
        raise ValueError(f"{name} must be non-negative spike counts, found a negative value at index {first}")
    return counts


def _floored_rates(rates, shape: tuple[int, ...], name: str = "rates") -> np.ndarray:
    rates = np.asarray(rates)
    if rates.dtype == bool or not np.issubdtype(rates.dtype, np.number) or np.iscomplexobj(rates):
        raise ValueError(f"{name} must hold real numbers, got dtype {rates.dtype}")
    if not np.isfinite(rates).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(rates))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    try:
        rates = np.broadcast_to(rates.astype(np.float64, copy=False), shape)
    except ValueError:
        raise ValueError(f"{name} of shape {rates.shape} do not match counts of shape {shape}") from None
    return np.maximum(rates, RATE_FLOOR)


def poisson_log_likelihood(counts, rates) -> float:
    """Log-likelihood of spike counts under independent Poisson distributions, summed over all bins.

    ``sum_tj [ k_tj log(lambda_tj) - lambda_tj - log(k_tj!) ]`` in nats, with rates below
    :data:`RATE_FLOOR` raised to it.

    Parameters
    ----------
    counts : array_like, shape (n_samples, n_neurons) or (n_trials, n_time, n_neurons)
        Non-negative counts (the log-factorial is ``gammaln(k + 1)``, so non-integers are accepted).
    rates : array_like, broadcastable to the shape of ``counts``
        Expected counts per bin.

    Raises
    ------
    ValueError
        Bad shapes, non-finite values, negative counts.

    Examples
    --------
    >>> round(poisson_log_likelihood([[0, 1], [2, 0]], [[0.5, 1.0], [2.0, 0.5]]), 6)
    -3.306853
    >>> round(float(-0.5 + (0 - 1) + (2 * np.log(2) - 2 - np.log(2)) - 0.5), 6)   # the four terms by hand
    -3.306853
    """
    counts = _counts(counts)
    rates = _floored_rates(rates, counts.shape)
    return float(np.sum(counts * np.log(rates) - rates - gammaln(counts + 1.0)))


def bits_per_spike(counts, rates, *, null_rates=None) -> float:
    """Log-likelihood gain of ``rates`` over a null model, in bits per spike (Pei et al. 2021).

    ``(LL(rates) - LL(null)) / (n_spikes ln 2)``, both log-likelihoods of the same ``counts``
    (:func:`poisson_log_likelihood`; the log-factorials cancel) and ``n_spikes`` the total count.
    It is 0 for the null model, positive when the rates predict the spikes better than it, and
    negative (without bound) when they predict worse.

    Parameters
    ----------
    counts : array_like, shape (n_samples, n_neurons) or (n_trials, n_time, n_neurons)
        The evaluated spike counts.
    rates : array_like, broadcastable to ``counts``
        Predicted expected counts per bin.
    null_rates : array_like, optional
        The null model's rates, broadcastable to ``counts`` (e.g. shape (n_neurons,)); default the
        Neural Latents Benchmark's: each neuron's mean count over the evaluated data (all its
        bins, over all trials).

    Raises
    ------
    ValueError
        Bad shapes or values, or no spikes at all (the score is undefined).

    Examples
    --------
    >>> counts = np.array([[0, 1], [2, 0], [1, 1]])
    >>> rates = np.array([[0.2, 1.0], [2.0, 0.2], [1.0, 1.0]])
    >>> round(bits_per_spike(counts, rates), 4)
    0.5186
    """
    counts = _counts(counts)
    n_spikes = float(counts.sum())
    if n_spikes == 0:
        raise ValueError("counts hold no spikes: bits per spike is undefined")
    if null_rates is None:
        null_rates = _rows(counts).mean(axis=0)
    gain = poisson_log_likelihood(counts, rates) - poisson_log_likelihood(counts, null_rates)
    return float(gain / (n_spikes * np.log(2.0)))


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}")
    return float(alpha)


def poisson_readout(train_latents, train_counts, test_latents, *, alpha: float = 1e-3,
                    max_iter: int = 500) -> np.ndarray:
    """Rates of each neuron predicted from latents by a Poisson GLM fitted on training data.

    For every neuron (column of ``train_counts``) a scikit-learn ``PoissonRegressor`` (log link,
    L2 penalty ``alpha``) is fitted from the training latents to its counts and evaluated on the
    test latents. The latents are first standardised with the training mean and standard
    deviation, so ``alpha`` means the same whatever the scale of a method's latents; a neuron
    without a single training spike gets rate 0 (the maximum-likelihood rate), which the
    Poisson scores floor.

    Parameters
    ----------
    train_latents : array_like, shape (n_train, n_latents) or (n_trials, n_time, n_latents)
    train_counts : array_like, same leading shape, (..., n_neurons)
    test_latents : array_like, shape (n_test, n_latents) or (n_trials, n_time, n_latents)
    alpha : float
        L2 penalty of each GLM (scikit-learn's: added to the mean deviance as ``alpha/2 |w|^2``).
    max_iter : int
        Solver iterations per neuron.

    Returns
    -------
    rates : ndarray of float64, shape ``test_latents.shape[:-1] + (n_neurons,)``
        Expected counts per bin.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4000, 1))
    >>> y = rng.poisson(np.exp(0.5 + 0.8 * z))
    >>> rates = poisson_readout(z[:3000], y[:3000], z[3000:], alpha=0.0)
    >>> float(np.abs(np.log(rates) - (0.5 + 0.8 * z[3000:])).max()) < 0.1
    True
    """
    from sklearn.linear_model import PoissonRegressor

    Z = _as_array(train_latents, "train_latents")
    Y = _counts(train_counts, "train_counts")
    Z_test = _as_array(test_latents, "test_latents")
    if Z.ndim != Y.ndim or Z.shape[:-1] != Y.shape[:-1]:
        raise ValueError(f"train_latents and train_counts must have the same samples (leading dimensions), "
                         f"got shapes {Z.shape} and {Y.shape}")
    if Z_test.shape[-1] != Z.shape[-1]:
        raise ValueError(f"test_latents have {Z_test.shape[-1]} latents, train_latents have {Z.shape[-1]}")
    alpha = _check_alpha(alpha)
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    Z, Y, Z_test_rows = _rows(Z), _rows(Y), _rows(Z_test)
    centre, spread = Z.mean(axis=0), Z.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    Z, Z_test_rows = (Z - centre) / spread, (Z_test_rows - centre) / spread
    rates = np.zeros((Z_test_rows.shape[0], Y.shape[1]))
    for j in range(Y.shape[1]):
        if not Y[:, j].any():
            continue
        # Newton-Cholesky: a few exact Newton steps, accurate and fast for tens of latents
        glm = PoissonRegressor(alpha=alpha, max_iter=int(max_iter), solver="newton-cholesky")
        rates[:, j] = glm.fit(Z, Y[:, j]).predict(Z_test_rows)
    return rates.reshape(Z_test.shape[:-1] + (Y.shape[1],))


def co_smoothing_bits_per_spike(train_latents, train_heldout_counts, test_latents, test_heldout_counts, *,
                                alpha: float = 1e-3) -> float:
    """The Neural Latents Benchmark co-smoothing score of latents (Pei et al. 2021).

    Latents inferred from the held-in neurons are judged by how well they predict neurons the
    model never saw: a Poisson GLM per held-out neuron (:func:`poisson_readout`) is fitted from
    the training latents to the training counts of the held-out neurons, predicts their rates
    from the test latents, and those rates are scored by :func:`bits_per_spike` on the test
    counts, with the null model each held-out neuron's mean test count.

    Parameters
    ----------
    train_latents : array_like, shape (n_train, n_latents) or (n_trials, n_time, n_latents)
    train_heldout_counts : array_like, shape (n_train, n_heldout) or (n_trials, n_time, n_heldout)
    test_latents : array_like, shape (n_test, n_latents) or (n_trials, n_time, n_latents)
    test_heldout_counts : array_like, shape (n_test, n_heldout) or (n_trials, n_time, n_heldout)
    alpha : float
        L2 penalty of the readout GLMs (on standardised latents).

    Returns
    -------
    float
        Bits per spike of the held-out test counts.

    Raises
    ------
    ValueError
        Mismatched shapes (samples, latents, held-out neurons), bad values, no test spikes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(6000, 2))
    >>> counts = rng.poisson(np.exp(-0.5 + z @ [[0.7, -0.3, 0.0], [0.2, 0.6, -0.8]]))
    >>> bps = co_smoothing_bits_per_spike(z[:4000], counts[:4000], z[4000:], counts[4000:])
    >>> bool(0.1 < bps < 0.6)
    True
    """
    train_counts = _counts(train_heldout_counts, "train_heldout_counts")
    test_counts = _counts(test_heldout_counts, "test_heldout_counts")
    if train_counts.shape[-1] != test_counts.shape[-1]:
        raise ValueError(f"train_heldout_counts have {train_counts.shape[-1]} neurons, "
                         f"test_heldout_counts have {test_counts.shape[-1]}")
    Z_test = _as_array(test_latents, "test_latents")
    if Z_test.ndim != test_counts.ndim or Z_test.shape[:-1] != test_counts.shape[:-1]:
        raise ValueError(f"test_latents and test_heldout_counts must have the same samples (leading dimensions), "
                         f"got shapes {Z_test.shape} and {test_counts.shape}")
    rates = poisson_readout(train_latents, train_counts, Z_test, alpha=alpha)
    return bits_per_spike(test_counts, rates)
