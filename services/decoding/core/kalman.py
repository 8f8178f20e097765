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
steady state (Riccati recursion); the remaining steps reuse it.

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
"""

from __future__ import annotations

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
        if report is not None:
            report(1.0, f"fitted a {k}-dimensional state observed through {z.shape[1]} values")
        return self

    def _information(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``S = H^T Q^-1 H`` and ``b_t = H^T Q^-1 (z_t - mu_z)`` for every row of ``X``."""
        if not hasattr(self, "A_"):
            raise ValueError("KalmanDecoder is not fitted")
        X = check_windows(X)
        if X.shape[1:] != (self.n_lags_, self.n_features_):
            raise ValueError(f"X has windows of shape {X.shape[1:]}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        try:
            chol = np.linalg.cholesky(self.Q_)
        except np.linalg.LinAlgError:
            raise ValueError("the observation noise covariance Q_ is not positive definite; "
                             "fit with ridge > 0") from None
        # L^-1 H, so that S = (L^-1 H)^T (L^-1 H) is symmetric by construction
        whitened = np.linalg.solve(chol, self.H_)                             # (p, k)
        gain_rows = np.linalg.solve(chol.T, whitened).T                       # H^T Q^-1, (k, p)
        S = _symmetric(whitened.T @ whitened)
        b = (X.reshape(X.shape[0], -1).astype(np.float64) - self.feature_mean_) @ gain_rows.T
        return S, b

    def filter(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Filtered posterior ``p(x_t | z_1..t)`` for every row of ``X``, from ``N(mu_x, S_0)``.

        Returns
        -------
        means : ndarray, shape (n_samples, n_outputs)
        covariances : ndarray, shape (n_samples, n_outputs, n_outputs)
        """
        S, b = self._information(X)
        n, k = b.shape
        eigvals, eigvecs = np.linalg.eigh(S)
        G = eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))                   # S = G G^T
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
            if t > 0 and np.abs(covariances[t] - covariances[t - 1]).max() <= (
                    _RICCATI_RTOL * max(np.abs(covariances[t]).max(), np.finfo(float).tiny)):
                converged_at = t + 1
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
