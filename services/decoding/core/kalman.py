"""Kalman filter decoder (Wu et al. 2003; Glaser et al. 2020): the targets are a hidden linear-Gaussian state.

The model
---------
The latent state ``x_t`` (``n_outputs`` values, e.g. hand velocity; augment it with position or
acceleration by passing those as further target columns) and the observation ``z_t`` (the window
of sample ``t`` flattened, ``n_lags * n_features`` values; with ``history_bins=0`` the current
bin's features) follow, around their training means ``mu_x`` and ``mu_z``,

    x_{t+1} - mu_x = A (x_t - mu_x) + w_t,      w_t ~ N(0, W)
    z_t     - mu_z = H (x_t - mu_x) + q_t,      q_t ~ N(0, Q)

with ``x_1 ~ N(mu_x, S_0)``, ``S_0`` the training covariance of the targets. Consecutive rows of
``X`` are consecutive time steps, in ``fit`` and in ``predict``.

Fitting (least squares, as in Wu et al.)
----------------------------------------
``A`` regresses ``x_{t+1}`` on ``x_t`` and ``W`` is the covariance of its residuals; ``H``
regresses ``z_t`` on ``x_t`` and ``Q`` is the covariance of those residuals. ``ridge`` adds
``ridge * mean(diag(.))`` times the identity to the normal equations of ``H`` and to ``Q``, so a
silent unit, or more window columns than samples, does not make ``Q`` singular.

Filtering, and why it is cheap
------------------------------
Decoding needs no target values: the filter runs forward from ``N(mu_x, S_0)``. The observations
enter the update only through ``S = H^T Q^-1 H`` (k x k) and ``b_t = H^T Q^-1 (z_t - mu_z)``
(k values, all ``t`` in one matrix product), the information form: with ``p`` observed values
and ``k`` outputs a step costs O(k^3), not O(p^3). Writing ``S = G G^T`` (G is k x k), the
update is a Kalman update with a k-dimensional observation of unit noise, done in Joseph form
so the covariance stays symmetric positive semi-definite:

    K = P^- G (I + G^T P^- G)^-1,   P = (I - K G^T) P^- (I - K G^T)^T + K K^T,
    m = m^- + P (b_t - S m^-).

The covariances do not depend on the data, so they are iterated only until they converge to the
steady state (Riccati recursion); the remaining steps reuse it. ``S``, its factor ``G`` and the
``k x p`` matrix ``H^T Q^-1`` are computed once, on first use after ``fit`` (or after loading a
saved model, whose file does not hold them), and reused by every later call.

Online decoding
---------------
A brain-computer interface receives one bin at a time. :meth:`KalmanDecoder.step` takes one
window (``n_lags, n_features``), does one predict + update and returns the filtered mean,
carrying the mean and covariance to the next call; :meth:`KalmanDecoder.start_online` starts a
new stream from the prior ``N(mu_x, S_0)``. Stepping through ``X`` gives the means of
``filter(X)``. Until the covariance has converged a step runs the ``k x k`` Riccati update; from
then on it is ``m_t = T m_{t-1} + K z_t - c`` with the precomputed steady-state transition ``T``
(k x k), gain ``K`` (k x p) and offset ``c``: two small matrix-vector products.

One decoder object serves one online stream: the stream's state lives on the object, so two
streams (or two threads) need two decoders (``copy.deepcopy`` or :func:`load_model` of the same
bytes). ``fit`` ends the stream; the next ``step`` starts from the prior.

Example
-------
>>> rng = np.random.default_rng(0)
>>> v = np.zeros((3000, 1))
>>> for t in range(1, 3000):                       # a slow AR(1) "velocity"
...     v[t] = 0.95 * v[t - 1] + rng.normal()
>>> counts = v @ [[1.0, -0.5, 0.8]] + rng.normal(size=(3000, 3))
>>> X = counts[:, np.newaxis, :]                   # windows with history_bins=0
>>> model = KalmanDecoder().fit(X[:2000], v[:2000])
>>> round(float(model.A_[0, 0]), 2)
0.95
>>> model.score(X[2000:], v[2000:]) > 0.8
True

Online, one window at a time, the same means as the batch filter:

>>> model.start_online()
>>> online = np.array([model.step(window) for window in X[2000:2100]])
>>> online.shape
(100, 1)
>>> bool(np.allclose(online, model.predict(X[2000:2100]), rtol=0, atol=1e-10))
True
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .base import Decoder, Report, check_targets, check_windows, register_decoder

__all__ = ["KalmanDecoder"]

# the covariance recursion has reached its steady state when a step changes it by less than this,
# relative to its size: further steps would only move rounding noise
_RICCATI_RTOL = 1e-14


def _check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _symmetric(M: np.ndarray) -> np.ndarray:
    return 0.5 * (M + M.T)


def _has_converged(current: np.ndarray, previous: np.ndarray) -> bool:
    """The Riccati recursion's steady-state test, shared by ``filter`` and ``step``."""
    return bool(np.abs(current - previous).max() <= (
        _RICCATI_RTOL * max(np.abs(current).max(), np.finfo(float).tiny)))


def _raise_non_finite(window: np.ndarray) -> None:
    """ValueError for a window whose update is not finite."""
    if not np.isfinite(window).all():
        raise ValueError("the window holds NaN or infinite values")
    # finite, but so large that the update overflows
    raise ValueError("the window's values are too large: the filter update overflows")


class _Observation:
    """What the filter needs of the observation model, computed once per set of parameters.

    ``S = H^T Q^-1 H``, its factor ``G`` (``S = G G^T``), ``gain_rows = H^T Q^-1`` (k x p) and
    ``offset = H^T Q^-1 mu_z``, so ``b_t = gain_rows @ z_t - offset``; the steady-state
    quantities are filled in the first time a recursion reaches the steady state. Holds the
    parameter arrays it was built from: a decoder whose arrays were replaced builds a new one.
    """

    __slots__ = ("sources", "S", "G", "gain_rows", "offset", "steady_cov", "steady_transition",
                 "steady_gain", "steady_offset")

    def __init__(self, model: "KalmanDecoder") -> None:
        self.sources = model._parameter_arrays()
        try:
            chol = np.linalg.cholesky(model.Q_)
        except np.linalg.LinAlgError:
            raise ValueError("the observation noise covariance Q_ is not positive definite; "
                             "fit with ridge > 0") from None
        # L^-1 H, so that S = (L^-1 H)^T (L^-1 H) is symmetric by construction
        whitened = np.linalg.solve(chol, model.H_)                            # (p, k)
        self.gain_rows = np.ascontiguousarray(np.linalg.solve(chol.T, whitened).T)   # H^T Q^-1, (k, p)
        self.offset = self.gain_rows @ np.asarray(model.feature_mean_, dtype=np.float64)
        self.S = _symmetric(whitened.T @ whitened)
        eigvals, eigvecs = np.linalg.eigh(self.S)
        self.G = eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))               # S = G G^T
        self.steady_cov = self.steady_transition = self.steady_gain = self.steady_offset = None

    def set_steady_state(self, cov: np.ndarray, A: np.ndarray) -> None:
        if self.steady_cov is None:
            self.steady_transition = (np.eye(len(cov)) - cov @ self.S) @ A
            self.steady_gain = np.ascontiguousarray(cov @ self.gain_rows)     # P H^T Q^-1, (k, p)
            self.steady_offset = cov @ self.offset
            self.steady_cov = cov


class _OnlineState:
    """One online stream: the step count, the mean (deviation from mu_x) and covariance of the
    last posterior, and whether the covariance has reached the steady state."""

    __slots__ = ("observation", "t", "mean", "cov", "steady")

    def __init__(self, observation: _Observation) -> None:
        self.observation = observation
        self.t = 0
        self.mean = None
        self.cov = None
        self.steady = False


@register_decoder("kalman")
class KalmanDecoder(Decoder):
    """Kalman filter decoder: linear-Gaussian dynamics of the targets, linear-Gaussian observations.

    See the module docstring for the model, the fit and the filter.

    Parameters
    ----------
    ridge : float, default 1e-6
        Regularisation of the observation model, >= 0: ``ridge * mean(diag(M))`` is added to the
        diagonal of the state scatter matrix ``M`` when ``H`` is solved for, and likewise to
        ``Q``. 0 gives plain least squares (``Q`` must then be non-singular).
    transition_noise_scale : float, default 1.0
        Factor on the fitted ``W``, > 0 (the ``C`` of Glaser et al. 2020): above 1 the filter
        trusts its dynamics less and the new observations more.

    Attributes
    ----------
    A_, W_ : ndarray, shape (n_outputs, n_outputs)
        State transition and its noise covariance (``W_`` includes ``transition_noise_scale``).
    H_ : ndarray, shape (n_lags * n_features, n_outputs)
        Observation matrix.
    Q_ : ndarray, shape (n_lags * n_features, n_lags * n_features)
        Observation noise covariance.
    state_mean_, state_cov_ : ndarray, shapes (n_outputs,) and (n_outputs, n_outputs)
        Training mean ``mu_x`` and covariance ``S_0`` of the targets: the filter's starting point.
    feature_mean_ : ndarray, shape (n_lags * n_features,)
        Training mean ``mu_z`` of the flattened windows.
    n_lags_, n_features_ : int

    Examples
    --------
    A model with known parameters, filtering two steps of a scalar state:

    >>> model = KalmanDecoder.from_parameters(A=[[1.0]], W=[[1.0]], H=[[1.0]], Q=[[1.0]],
    ...                                       state_mean=[0.0], state_cov=[[1.0]])
    >>> means, covs = model.filter(np.array([[[2.0]], [[2.0]]]))
    >>> means[:, 0].round(4).tolist(), covs[:, 0, 0].round(4).tolist()
    ([1.0, 1.6], [0.5, 0.6])

    The same two steps online (one decoder object serves one stream; not thread-safe):

    >>> model.start_online()
    >>> [round(float(model.step([[2.0]])[0]), 4) for _ in range(2)]
    [1.0, 1.6]
    """

    state_attributes = ("A_", "W_", "H_", "Q_", "state_mean_", "state_cov_", "feature_mean_",
                        "n_lags_", "n_features_")

    def __init__(self, *, ridge: float = 1e-6, transition_noise_scale: float = 1.0) -> None:
        self.ridge = ridge
        self.transition_noise_scale = transition_noise_scale

    @classmethod
    def from_parameters(cls, *, A, W, H, Q, state_mean, state_cov, feature_mean=None,
                        n_lags: int = 1) -> "KalmanDecoder":
        """A decoder with given model parameters instead of fitted ones (e.g. the true ones).

        Shapes as in the class attributes; ``H`` is (p, k) with ``p = n_lags * n_features``;
        ``feature_mean`` defaults to zeros. ValueError if the shapes disagree.
        """
        A, W, H, Q = (np.array(m, dtype=np.float64, ndmin=2) for m in (A, W, H, Q))
        mean = np.array(state_mean, dtype=np.float64, ndmin=1)
        cov = np.array(state_cov, dtype=np.float64, ndmin=2)
        p, k = H.shape
        z_mean = np.zeros(p) if feature_mean is None else np.array(feature_mean, dtype=np.float64, ndmin=1)
        for name, m, shape in (("A", A, (k, k)), ("W", W, (k, k)), ("Q", Q, (p, p)), ("state_mean", mean, (k,)),
                               ("state_cov", cov, (k, k)), ("feature_mean", z_mean, (p,))):
            if m.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for H of shape {H.shape}, got {m.shape}")
        if isinstance(n_lags, bool) or not isinstance(n_lags, numbers.Integral) or n_lags < 1 or p % n_lags:
            raise ValueError(f"n_lags must be an integer >= 1 dividing H's {p} rows, got {n_lags!r}")
        model = cls()
        model.A_, model.W_, model.H_, model.Q_ = A, W, H, Q
        model.state_mean_, model.state_cov_, model.feature_mean_ = mean, cov, z_mean
        model.n_lags_, model.n_features_ = int(n_lags), p // int(n_lags)
        return model

    def fit(self, X, y, *, report: Report | None = None) -> "KalmanDecoder":
        """Fit ``A, W, H, Q`` by least squares; rows of ``X`` and ``y`` are consecutive time steps."""
        ridge = _check_nonnegative(self.ridge, "ridge")
        scale = _check_nonnegative(self.transition_noise_scale, "transition_noise_scale")
        if scale == 0:
            raise ValueError("transition_noise_scale must be > 0, got 0")
        X = check_windows(X)
        y = check_targets(y, task="regression", n_samples=X.shape[0])
        n, n_lags, n_features = X.shape
        k = y.shape[1]
        if n < k + 2:
            raise ValueError(f"KalmanDecoder needs at least n_outputs + 2 = {k + 2} consecutive samples "
                             f"to estimate its dynamics, got {n}")
        z = X.reshape(n, -1).astype(np.float64)
        z_mean = z.mean(axis=0)
        x_mean = y.mean(axis=0)
        zc = z - z_mean
        xc = y - x_mean

        # dynamics: x_{t+1} = A x_t + w; lstsq gives the minimum-norm A when a target is constant
        past, future = xc[:-1], xc[1:]
        A = np.linalg.lstsq(past, future, rcond=None)[0].T
        transition_residual = future - past @ A.T
        W = scale * _symmetric(transition_residual.T @ transition_residual) / (n - 1)

        # observations: z_t = H x_t + q, ridge on the normal equations for stability
        scatter = xc.T @ xc
        scatter_reg = scatter + ridge * max(np.trace(scatter) / k, np.finfo(float).tiny) * np.eye(k)
        H = np.linalg.lstsq(scatter_reg, xc.T @ zc, rcond=None)[0].T          # (p, k)
        residual = zc - xc @ H.T
        Q = _symmetric(residual.T @ residual) / n
        Q[np.diag_indices_from(Q)] += ridge * np.trace(Q) / Q.shape[0]

        self.A_, self.W_, self.H_, self.Q_ = A, W, H, Q
        self.state_mean_, self.state_cov_, self.feature_mean_ = x_mean, _symmetric(scatter) / n, z_mean
        self.n_lags_, self.n_features_ = n_lags, n_features
        self._observation = self._online = None          # recomputed / restarted on first use
        if report is not None:
            report(1.0, f"fitted a {k}-dimensional state observed through {z.shape[1]} values")
        return self

    def _parameter_arrays(self) -> tuple:
        return (self.A_, self.W_, self.H_, self.Q_, self.state_mean_, self.state_cov_, self.feature_mean_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "A_"):
            raise ValueError("KalmanDecoder is not fitted")

    def _observation_model(self) -> _Observation:
        """The cached :class:`_Observation`, rebuilt when fit ran again or the arrays were replaced."""
        cached = getattr(self, "_observation", None)
        if cached is None or any(a is not b for a, b in zip(cached.sources, self._parameter_arrays())):
            cached = self._observation = _Observation(self)
        return cached

    def _information(self, X) -> tuple[_Observation, np.ndarray]:
        """The observation model and ``b_t = H^T Q^-1 (z_t - mu_z)`` for every row of ``X``."""
        self._check_fitted()
        X = check_windows(X)
        if X.shape[1:] != (self.n_lags_, self.n_features_):
            raise ValueError(f"X has windows of shape {X.shape[1:]}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        obs = self._observation_model()
        b = X.reshape(X.shape[0], -1).astype(np.float64, copy=False) @ obs.gain_rows.T - obs.offset
        return obs, b

    def filter(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Filtered posterior ``p(x_t | z_1..t)`` for every row of ``X``, from ``N(mu_x, S_0)``.

        Returns
        -------
        means : ndarray, shape (n_samples, n_outputs)
        covariances : ndarray, shape (n_samples, n_outputs, n_outputs)
        """
        obs, b = self._information(X)
        S, G = obs.S, obs.G
        n, k = b.shape
        identity = np.eye(k)
        A, W = self.A_, self.W_

        # covariances: data independent, iterated until the steady state is reached
        covariances = np.empty((n, k, k))
        prior = _symmetric(np.asarray(self.state_cov_, dtype=np.float64))
        converged_at = n
        for t in range(n):
            if t > 0:
                prior = _symmetric(A @ covariances[t - 1] @ A.T + W)
            gain = np.linalg.solve(identity + G.T @ prior @ G, G.T @ prior).T   # P^- G (I + G^T P^- G)^-1
            reduce = identity - gain @ G.T
            covariances[t] = _symmetric(reduce @ prior @ reduce.T + gain @ gain.T)
            if t > 0 and _has_converged(covariances[t], covariances[t - 1]):
                converged_at = t + 1
                obs.set_steady_state(covariances[t].copy(), A)
                break
        covariances[converged_at:] = covariances[converged_at - 1]

        # means: m_t = (I - P_t S) A m_{t-1} + P_t b_t, deviations from mu_x, m_0^- = 0
        drive = np.einsum("tij,tj->ti", covariances[:converged_at], b[:converged_at])
        if converged_at < n:
            drive = np.concatenate([drive, b[converged_at:] @ covariances[converged_at - 1].T])
        steady = (identity - covariances[converged_at - 1] @ S) @ A
        means = np.empty((n, k))
        m = np.zeros(k)
        for t in range(n):
            if t > 0:
                transition = steady if t >= converged_at else (identity - covariances[t] @ S) @ A
                m = transition @ m
            m = m + drive[t]
            means[t] = m
        return means + self.state_mean_, covariances

    def predict(self, X) -> np.ndarray:
        """Filtered means ``E[x_t | z_1..t]``, shape (n_samples, n_outputs); needs no targets."""
        return self.filter(X)[0]

    # ---- online decoding

    def start_online(self) -> None:
        """Start a new online stream: the next :meth:`step` is the first, from ``N(mu_x, S_0)``.

        The stream's state lives on this object: one decoder serves one stream (use a copy per
        stream or per thread). ValueError if the decoder is not fitted.
        """
        self._check_fitted()
        self._online = _OnlineState(self._observation_model())

    def step(self, window) -> np.ndarray:
        """One online step: the filtered mean ``E[x_t | z_1..t]`` after the window of bin ``t``.

        ``window`` has shape (n_lags, n_features), the row ``X[t]`` that :meth:`filter` would
        see; returns shape (n_outputs,). Consecutive calls are consecutive time steps, as the rows
        of ``X`` are: stepping through ``X`` gives ``filter(X)[0]``. The first step after
        :meth:`start_online`, ``fit`` or loading starts from the prior (so does the first step
        after the model's parameter arrays were replaced). Once the covariance has reached its
        steady state a step is two small matrix-vector products. ValueError if the decoder is not
        fitted or the window has the wrong shape or non-finite values.
        """
        self._check_fitted()
        window = np.asarray(window)
        if window.shape != (self.n_lags_, self.n_features_):
            raise ValueError(f"the window has shape {window.shape}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        if window.dtype.kind not in "iuf":
            raise ValueError(f"the window must hold real numbers, got dtype {window.dtype}")
        state = getattr(self, "_online", None)
        if state is None or any(a is not b for a, b in zip(state.observation.sources, self._parameter_arrays())):
            self.start_online()
            state = self._online
        obs = state.observation
        z = window.reshape(-1)
        if state.steady:                                     # the fast path: m = T m + K z - c
            drive = obs.steady_gain.dot(z)
            # a NaN or infinity in z reaches the k values of K z (cheaper to test than the p of z)
            if not all(map(math.isfinite, drive.tolist())):
                _raise_non_finite(window)
            mean = obs.steady_transition.dot(state.mean)
            mean += drive
            mean -= obs.steady_offset
            state.mean = mean
            return mean + self.state_mean_
        if not np.isfinite(window).all():
            _raise_non_finite(window)
        # the transient: one step of the Riccati recursion, exactly as in filter
        A, G = self.A_, obs.G
        k = A.shape[0]
        identity = np.eye(k)
        if state.t == 0:
            prior = _symmetric(np.asarray(self.state_cov_, dtype=np.float64))
            mean = np.zeros(k)
        else:
            prior = _symmetric(A @ state.cov @ A.T + self.W_)
            mean = state.mean
        gain = np.linalg.solve(identity + G.T @ prior @ G, G.T @ prior).T
        reduce = identity - gain @ G.T
        cov = _symmetric(reduce @ prior @ reduce.T + gain @ gain.T)
        b = obs.gain_rows @ z - obs.offset
        if state.t > 0:
            mean = (identity - cov @ obs.S) @ A @ mean
        mean = mean + cov @ b
        if state.t > 0 and _has_converged(cov, state.cov):
            obs.set_steady_state(cov, A)
            state.steady = True
        state.t += 1
        state.mean, state.cov = mean, cov
        return mean + self.state_mean_
