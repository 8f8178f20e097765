"""Factor analysis fitted by EM on the sample covariance, in torch.

The model
---------
Each sample (time bin) of population activity ``x`` (``n_neurons`` values) is

    x = L z + mu + eps,     z ~ N(0, I_k),     eps ~ N(0, Psi),  Psi = diag(psi) (n_neurons values)

so ``x ~ N(mu, C)`` with ``C = L L^T + Psi``: ``k = n_components`` shared latent factors plus
noise private to each neuron, of its own variance (the heteroscedastic noise that tells factor
analysis from probabilistic PCA, whose noise is ``sigma^2 I``). ``mu`` is the sample mean.

Fitting: EM on the covariance alone
-----------------------------------
The EM algorithm of Rubin & Thayer (1982), in the form of Ghahramani & Hinton (1996), needs
the data only through the maximum-likelihood sample covariance ``S = (1/n) sum (x - mu)(x - mu)^T``:

* E-step: ``beta = L^T C^-1`` (the posterior mean is ``E[z|x] = beta (x - mu)``), and the
  average posterior second moment ``E[z z^T] = I - beta L + beta S beta^T``. By the Woodbury
  identity ``beta = M^-1 L^T Psi^-1`` with ``M = I + L^T Psi^-1 L`` (k x k), and
  ``I - beta L = M^-1``, so no ``n_neurons x n_neurons`` matrix is ever inverted.
* M-step: ``L <- S beta^T E[z z^T]^-1`` and ``psi <- diag(S - L beta S)``, floored (below).

``S`` is computed once, in one pass over the rows (:class:`CovarianceAccumulator`), and every
iteration then costs ``O(n_neurons^2 k + k^3)`` whatever the number of samples. That is why
this is much faster than scikit-learn's ``FactorAnalysis`` on long recordings: that one takes
an SVD of the whole (rescaled) data matrix in every iteration. The two reach the same maximum
of the likelihood (by different paths: scikit-learn's iteration is not EM).

The average log-likelihood per sample, the quantity scikit-learn's ``FactorAnalysis.score``
returns, is ``-(1/2) (n_neurons log 2 pi + log|C| + tr(C^-1 S))`` on the training data, and it
costs nothing extra: ``log|C| = log|M| + sum(log psi)`` (matrix determinant lemma) and
``tr(C^-1 S) = sum(S_jj / psi_j) - tr(Psi^-1 L beta S)``, both from products the E-step forms
anyway. EM never decreases it (up to rounding: float32 sums wobble in the seventh digit).
``loglike_`` holds it after every iteration; it is scikit-learn's ``loglike_`` divided by the
number of samples (scikit-learn stores the total).

Choices, and why
----------------
* **Initialisation** (``init``): ``"pca"`` (default) starts from the maximum-likelihood
  probabilistic PCA of ``S`` (Tipping & Bishop 1999): ``L = U_k (Lambda_k - sigma^2)^(1/2)``
  from the top-k eigenpairs, ``psi = sigma^2``, the mean of the other eigenvalues. It is
  deterministic and already close (PPCA is FA with equal noise variances), so ``seed`` is
  unused. ``"random"`` draws ``L_jk ~ N(0, S_jj / 2k)`` from ``seed`` and ``psi = S_jj / 2``.
* **Noise floor** (``min_noise_variance``): ``psi_j >= min_noise_variance * S_jj``, a fraction
  of neuron ``j``'s own variance, so the floor means the same for spike counts and for
  normalised fluorescence. Without one, a neuron that the factors explain almost fully
  (a Heywood case) drives ``psi_j`` to zero and ``Psi^-1`` to infinity.
* **A constant neuron is refused** (ValueError naming it) rather than floored: its variance
  is zero, its noise variance would be an arbitrary floor, and its log-likelihood density
  infinite; such a neuron carries nothing to reduce and the caller should drop it.
* **Orientation.** The likelihood does not change when ``L`` is rotated (``L R``, ``R``
  orthogonal). The fitted ``L`` is rotated so that ``L^T Psi^-1 L`` is diagonal with
  decreasing entries (Lawley & Maxwell's canonical orientation): factor 0 has the most signal
  relative to noise, the factors' posterior means are uncorrelated, and the result does not
  depend on the initialisation or on the dtype. Each factor's sign makes its largest-magnitude
  loading positive.
* **Precision.** ``dtype`` is the precision of the pass over the data, the one step whose cost
  grows with the number of samples (``O(n_samples n_neurons^2)``), of the fitted arrays and
  of inference; ``"float32"`` (default) halves the time and memory of all three. The chunk
  Gram matrices are summed in float64 around a shift (the mean of the first chunk), so
  removing the mean cancels no digits however far the activity is from zero. The EM
  iterations themselves always run in float64: each costs ``O(n_neurons^2 k)``, nothing next
  to the pass for any recording longer than a few thousand bins, and in float32 the
  log-likelihood stops resolving EM's progress long before the parameters converge (measured
  on 30 neurons, 3 factors: its change rounds to exactly 0 at iteration 23, with the model
  covariance still 0.04 from the optimum, twice its sampling error), so the stopping rule
  would fire far too early.
* **Device**: ``"auto"`` uses CUDA when torch sees it, else the CPU. A saved model computes on
  the CPU where there is no CUDA. The library never sets torch's thread count; the caller does.
* **Convergence**: stop when the relative change of the average log-likelihood between two
  iterations is at most ``tol`` (``tol=0`` runs all ``max_iter`` iterations). EM converges
  linearly and the likelihood is flat near its maximum (it is quadratic in the parameters'
  error), so ``tol`` must be small: the default 1e-10 stopped about 2e-9 (relative) below the
  maximum on the test model, with the covariance within a fifth of its sampling error; 1e-8
  left it at about one sampling error.
* **Progress**: ``report(fraction, message)`` is called after every chunk of the covariance
  pass and after every EM iteration with the log-likelihood. The fraction weighs the pass and
  the EM by their operation counts (``n_samples`` against ``2 k max_iter`` rows' worth); it
  jumps to 1 on early convergence. An exception it raises propagates from ``fit`` and leaves
  the estimator as it was.

Held-out neurons (co-smoothing)
-------------------------------
:meth:`FactorAnalysis.posterior_heldout` infers the factors from a subset of the neurons, with
only their loadings and noise (the Gaussian conditional ``E[z | x_in] = L_in^T C_in^-1 (x_in -
mu_in)``, again via Woodbury), and :meth:`FactorAnalysis.predict_heldout` predicts other
neurons from them: ``mu_out + L_out E[z | x_in]``.

Example
-------
>>> rng = np.random.default_rng(0)
>>> L = rng.normal(size=(6, 2))
>>> X = rng.normal(size=(4000, 2)) @ L.T + rng.normal(size=(4000, 6)) * 0.5 + 3.0
>>> fa = FactorAnalysis(n_components=2, dtype="float64").fit(X)
>>> fa.components_.shape, fa.transform(X[:5]).shape
((2, 6), (5, 2))
>>> bool(np.allclose(fa.noise_variance_, 0.25, atol=0.05))
True
>>> bool(np.all(np.diff(fa.loglike_) > -1e-9))
True
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np
import torch

from .base import Reducer, Report, check_activity, register_reducer

__all__ = ["FactorAnalysis", "CovarianceAccumulator"]

_DEVICES = ("auto", "cpu", "cuda")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_INITS = ("pca", "random")
#: rows per torch product in the covariance pass and in inference. Small enough that a chunk of
#: a few hundred float32 neurons stays in cache-friendly tens of MiB; big enough that the
#: per-chunk overhead is nil. Also bounds the float32 accumulation length of one Gram product.
_CHUNK = 8192
_LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------------------------
# parameter checks


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _fraction(value, name: str, *, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < high:
        raise ValueError(f"{name} must be a number in [0, {high:g}), got {value!r}")
    return float(value)


def _choice(value, name: str, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def _resolve_device(device, *, fitting: bool) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU. Asking for CUDA without one is an error when
    fitting; a saved model computes on the CPU instead, so it can be served without a GPU."""
    _choice(device, "device", _DEVICES)
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if device == "cuda" and fitting:
        raise ValueError("device='cuda' but torch sees no CUDA device (use device='auto' or 'cpu')")
    return torch.device("cpu")


def _neuron_indices(idx, name: str, n_neurons: int) -> np.ndarray:
    """``idx`` (integer indices or a boolean mask over the neurons) as unique int64 indices."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (n_neurons,):
            raise ValueError(f"{name} as a boolean mask must have shape ({n_neurons},), got {idx.shape}")
        idx = np.flatnonzero(idx)
    elif idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of neuron indices or a boolean mask, "
                         f"got dtype {idx.dtype} and shape {idx.shape}")
    if idx.size == 0:
        raise ValueError(f"{name} selects no neuron")
    bad = idx[(idx < 0) | (idx >= n_neurons)]
    if bad.size:
        raise ValueError(f"{name} holds index {int(bad[0])}, outside 0..{n_neurons - 1}")
    unique, counts = np.unique(idx, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"{name} repeats neuron {int(unique[counts > 1][0])}")
    return idx.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# the covariance pass


class CovarianceAccumulator:
    """Mean and maximum-likelihood covariance of rows that arrive in chunks, in one pass.

    Each chunk is shifted by ``K``, the mean of the first chunk, and its Gram matrix
    ``sum (x - K)(x - K)^T`` is computed in ``dtype`` on ``device`` and added to a float64 sum;
    at the end ``S = G / n - (m - K)(m - K)^T``. With ``K`` close to the mean the last term is
    small and nothing cancels (the raw ``sum x x^T / n - m m^T`` loses about
    ``log10(1 + m^2 / var)`` digits, ruinous in float32 for neurons with a high mean rate).

    Parameters
    ----------
    n_neurons : int
    dtype : {"float32", "float64"}
        Precision of the Gram products (their sums are float64 either way).
    device : {"auto", "cpu", "cuda"}

    Examples
    --------
    >>> X = np.arange(12.0).reshape(6, 2) ** 2
    >>> acc = CovarianceAccumulator(2, dtype="float64")
    >>> acc.update(X[:4]); acc.update(X[4:])
    >>> acc.n_samples, bool(np.allclose(acc.covariance(), np.cov(X.T, bias=True)))
    (6, True)
    """

    def __init__(self, n_neurons: int, *, dtype: str = "float32", device: str = "auto") -> None:
        self.n_neurons = _count(n_neurons, "n_neurons", 1)
        self.dtype = _DTYPES[_choice(dtype, "dtype", _DTYPES)]
        self.device = _resolve_device(device, fitting=True)
        self.n_samples = 0
        self._shift: torch.Tensor | None = None     # in self.dtype, as subtracted
        self._first_row: torch.Tensor | None = None
        self._varies = torch.zeros(self.n_neurons, dtype=torch.bool, device=self.device)
        self._sum = torch.zeros(self.n_neurons, dtype=torch.float64, device=self.device)
        self._gram = torch.zeros((self.n_neurons, self.n_neurons), dtype=torch.float64, device=self.device)

    def update(self, chunk) -> None:
        """Add rows, shape ``(n_rows, n_neurons)``; they are checked only for their shape."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != self.n_neurons:
            raise ValueError(f"chunk must have shape (n_rows, {self.n_neurons}), got {chunk.shape}")
        if chunk.shape[0] == 0:
            return
        x = torch.as_tensor(chunk).to(device=self.device, dtype=self.dtype)
        if self._shift is None:
            self._shift = x.to(torch.float64).mean(dim=0).to(self.dtype)
            self._first_row = x[0].clone()
        self._varies |= (x != self._first_row).any(dim=0)
        x = x - self._shift
        self._sum += x.sum(dim=0, dtype=torch.float64)
        self._gram += (x.T @ x).to(torch.float64)
        self.n_samples += chunk.shape[0]

    def _check_nonempty(self) -> None:
        if self.n_samples == 0:
            raise ValueError("no rows were added")

    def mean(self) -> np.ndarray:
        """The sample mean, float64, shape ``(n_neurons,)``."""
        self._check_nonempty()
        return (self._shift.to(torch.float64) + self._sum / self.n_samples).cpu().numpy()

    def covariance(self) -> np.ndarray:
        """``(1/n) sum (x - mean)(x - mean)^T``, float64, symmetric."""
        self._check_nonempty()
        d = self._sum / self.n_samples
        S = self._gram / self.n_samples - torch.outer(d, d)
        return (0.5 * (S + S.T)).cpu().numpy()

    def constant_neurons(self) -> np.ndarray:
        """Indices of the neurons whose every value so far equals their first."""
        self._check_nonempty()
        return np.flatnonzero(~self._varies.cpu().numpy())


# ------------------------------------------------------------------------------------------------
# the EM


def _pca_init(S: torch.Tensor, k: int, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The maximum-likelihood probabilistic PCA of ``S`` (Tipping & Bishop 1999) as (L, psi)."""
    p = S.shape[0]
    evals, evecs = torch.linalg.eigh(S)                    # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    # with k == p no eigenvalue is left over to estimate the noise; half the smallest keeps every
    # loading real and the start well inside the parameter space
    sigma2 = evals[k:].mean() if k < p else 0.5 * evals[-1]
    L = evecs[:, :k] * torch.sqrt(torch.clamp(evals[:k] - sigma2, min=0.0))
    psi = torch.maximum(sigma2.expand(p), floor)
    return L, psi


def _random_init(S: torch.Tensor, k: int, floor: torch.Tensor, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """Loadings ``N(0, S_jj / 2k)`` from ``seed`` (so ``L L^T`` carries about half of each neuron's
    variance) and ``psi = S_jj / 2``."""
    p = S.shape[0]
    diag = torch.diagonal(S)
    # numpy's generator, so that a seed gives the same start on every device
    draws = np.random.default_rng(seed).standard_normal((p, k))
    L = torch.as_tensor(draws, dtype=S.dtype, device=S.device) * torch.sqrt(diag / (2 * k))[:, None]
    return L, torch.maximum(diag / 2, floor)


def _e_step(S: torch.Tensor, L: torch.Tensor, psi: torch.Tensor):
    """Posterior quantities of (L, psi) and the average log-likelihood of S under them.

    Returns ``(ll, chol, beta, SB)`` with ``chol`` the Cholesky factor of M, ``beta = M^-1 L^T
    Psi^-1`` (k x p) and ``SB = S beta^T`` (p x k)."""
    p, k = L.shape
    PL = L / psi[:, None]                                   # Psi^-1 L
    M = torch.eye(k, dtype=L.dtype, device=L.device) + L.T @ PL
    chol = torch.linalg.cholesky(M)
    beta = torch.cholesky_solve(PL.T, chol)
    SB = S @ beta.T                                         # the O(p^2 k) product of the iteration
    logdet = 2.0 * torch.log(torch.diagonal(chol)).sum() + torch.log(psi).sum()
    trace = (torch.diagonal(S) / psi).sum() - (PL * SB).sum()
    ll = -0.5 * (p * _LOG_2PI + logdet + trace)
    return ll, chol, beta, SB


def _m_step(S_diag: torch.Tensor, chol, beta, SB, floor):
    Ezz = torch.cholesky_inverse(chol) + beta @ SB          # M^-1 + beta S beta^T, symmetric PD
    L = torch.linalg.solve(Ezz, SB.T).T                     # S beta^T Ezz^-1
    psi = torch.maximum(S_diag - (L * SB).sum(dim=1), floor)
    return L, psi


def _canonical(L: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``L R`` with R orthogonal such that ``R^T L^T Psi^-1 L R`` is diagonal, decreasing, and each
    column's largest-magnitude entry positive (see the module docstring)."""
    evals, R = np.linalg.eigh(L.T @ (L / psi[:, None]))
    LR = L @ R[:, ::-1]
    signs = np.sign(LR[np.argmax(np.abs(LR), axis=0), np.arange(LR.shape[1])])
    return LR * np.where(signs == 0, 1.0, signs)


# ------------------------------------------------------------------------------------------------
# the estimator


@register_reducer("factor_analysis")
class FactorAnalysis(Reducer):
    """Factor analysis by EM on the sample covariance (see the module docstring).

    Parameters
    ----------
    n_components : int
        Number of factors ``k`` (1 .. n_neurons).
    max_iter : int
        Most EM iterations (>= 1).
    tol : float
        Stop when the relative change of the average log-likelihood between two iterations is
        at most this (>= 0; 0 runs ``max_iter`` iterations).
    min_noise_variance : float
        Floor of each noise variance as a fraction of that neuron's variance, in [0, 1). With 0,
        a neuron the factors explain fully stops the fit with FloatingPointError.
    init : {"pca", "random"}
        Starting point: probabilistic PCA of the covariance, or random loadings from ``seed``.
    seed : int or None
        Seed of the random start (``init="random"``); the PCA start uses none.
    dtype : {"float32", "float64"}
        Precision of the pass over the data, of the fitted arrays (``mean_`` is always
        float64) and of inference; the EM iterations run in float64.
    device : {"auto", "cpu", "cuda"}

    Attributes
    ----------
    components_ : ndarray, shape (n_components, n_neurons)
        ``L^T``, in the canonical orientation.
    mean_ : ndarray of float64, shape (n_neurons,)
    noise_variance_ : ndarray, shape (n_neurons,)
        ``psi``.
    loglike_ : ndarray of float64, shape (n_iter_,)
        Average log-likelihood per training sample after each iteration; the last one is
        ``score`` of the training data.
    n_iter_ : int
        EM iterations run.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(3000, 1)) @ [[1.0, 2.0, -1.0, 0.5]] + rng.normal(size=(3000, 4))
    >>> fa = FactorAnalysis(n_components=1).fit(X)
    >>> np.round(fa.components_, 1)
    array([[ 1. ,  1.9, -1. ,  0.5]], dtype=float32)
    >>> fa.predict_heldout(X[:2, :3], [0, 1, 2], [3]).shape
    (2, 1)
    """

    state_attributes: ClassVar[tuple[str, ...]] = ("components_", "mean_", "noise_variance_", "loglike_", "n_iter_")

    def __init__(self, n_components: int = 2, *, max_iter: int = 1000, tol: float = 1e-10,
                 min_noise_variance: float = 1e-4, init: str = "pca", seed: int | None = 0,
                 dtype: str = "float32", device: str = "auto") -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.min_noise_variance = min_noise_variance
        self.init = init
        self.seed = seed
        self.dtype = dtype
        self.device = device

    # ---- fitting

    def _check_params(self, n_neurons: int) -> None:
        k = _count(self.n_components, "n_components", 1)
        if k > n_neurons:
            raise ValueError(f"n_components={k} exceeds the number of neurons, {n_neurons}")
        _count(self.max_iter, "max_iter", 1)
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or not 0 <= self.tol < math.inf:
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        _fraction(self.min_noise_variance, "min_noise_variance", high=1.0)
        _choice(self.init, "init", _INITS)
        _choice(self.dtype, "dtype", _DTYPES)
        _resolve_device(self.device, fitting=True)
        if self.seed is not None:
            _count(self.seed, "seed", 0)

    def fit(self, X, *, report: Report | None = None) -> "FactorAnalysis":
        """Fit to activity ``X``, shape ``(n_samples, n_neurons)``, ``n_samples >= 2``.

        Raises
        ------
        ValueError
            Bad parameters, activity that is not finite 2-D numbers, fewer than 2 samples, more
            components than neurons, a constant neuron.
        """
        X = check_activity(X, min_samples=2)
        n, p = X.shape
        self._check_params(p)
        acc = CovarianceAccumulator(p, dtype=self.dtype, device=self.device)
        pass_share = n / (n + 2.0 * self.n_components * self.max_iter)
        for start in range(0, n, _CHUNK):
            acc.update(X[start:start + _CHUNK])
            if report is not None:
                report(pass_share * acc.n_samples / n, f"covariance: {acc.n_samples}/{n} rows")
        constant = acc.constant_neurons()
        if constant.size:
            raise ValueError(f"neuron {int(constant[0])} is constant (all {n} values equal "
                             f"{float(X[0, constant[0]])!r}); drop constant neurons before factor analysis")
        self._fit_statistics(acc.covariance(), acc.mean(), report, pass_share)
        return self

    def fit_covariance(self, covariance, mean, n_samples: int, *, report: Report | None = None) -> "FactorAnalysis":
        """Fit from sufficient statistics streamed elsewhere (e.g. by :class:`CovarianceAccumulator`).

        Parameters
        ----------
        covariance : array_like, shape (n_neurons, n_neurons)
            The maximum-likelihood sample covariance, normalised by ``n_samples`` (``np.cov(X.T,
            bias=True)``), symmetric with a positive diagonal.
        mean : array_like, shape (n_neurons,)
        n_samples : int
            How many samples the statistics summarise (>= 2; the fit itself does not use it).
        """
        S = np.asarray(covariance, dtype=np.float64)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"covariance must be a square (n_neurons, n_neurons) matrix, got shape {S.shape}")
        p = S.shape[0]
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != (p,):
            raise ValueError(f"mean must have shape ({p},) like the covariance, got {mean.shape}")
        if not (np.isfinite(S).all() and np.isfinite(mean).all()):
            raise ValueError("covariance and mean must be finite")
        if not np.allclose(S, S.T, rtol=1e-5, atol=1e-8 * max(float(np.abs(np.diagonal(S)).max()), 1e-300)):
            raise ValueError("covariance is not symmetric")
        zero = np.flatnonzero(np.diagonal(S) <= 0)
        if zero.size:
            raise ValueError(f"neuron {int(zero[0])} has variance {float(S[zero[0], zero[0]])!r}; a constant neuron "
                             f"cannot be factor-analysed, drop it")
        _count(n_samples, "n_samples", 2)
        self._check_params(p)
        self._fit_statistics(0.5 * (S + S.T), mean, report, 0.0)
        return self

    def _fit_statistics(self, S64: np.ndarray, mean: np.ndarray, report: Report | None, done: float) -> None:
        """EM from the covariance; sets the fitted attributes only when it completes."""
        device = _resolve_device(self.device, fitting=True)
        k = self.n_components
        S = torch.as_tensor(S64, dtype=torch.float64, device=device)      # float64: see "Precision"
        S_diag = torch.diagonal(S).clone()
        floor = self.min_noise_variance * S_diag
        if self.init == "pca":
            L, psi = _pca_init(S, k, floor)
        else:
            L, psi = _random_init(S, k, floor, self.seed)

        loglike: list[float] = []
        previous = None
        for iteration in range(self.max_iter + 1):
            try:
                ll_t, chol, beta, SB = _e_step(S, L, psi)
                ll = float(ll_t)       # the stopping rule needs it on the host anyway
            except torch.linalg.LinAlgError:   # M not positive definite: a noise variance hit 0
                ll = math.nan
            if not math.isfinite(ll):
                raise FloatingPointError(f"factor analysis EM broke down at iteration {iteration} (a noise "
                                         f"variance reached 0, a Heywood case); use min_noise_variance > 0")
            if iteration > 0:      # the log-likelihood of the parameters after `iteration` updates
                loglike.append(ll)
                if report is not None:
                    report(done + (1.0 - done) * iteration / self.max_iter,
                           f"EM iteration {iteration}: average log-likelihood {ll:.7g}")
                if self.tol > 0 and abs(ll - previous) <= self.tol * abs(previous):
                    break
                if iteration == self.max_iter:
                    break
            previous = ll
            L, psi = _m_step(S_diag, chol, beta, SB, floor)

        psi64 = psi.to(torch.float64).cpu().numpy()
        L64 = _canonical(L.to(torch.float64).cpu().numpy(), psi64)
        np_dtype = np.dtype(self.dtype)
        self.components_ = np.ascontiguousarray(L64.T, dtype=np_dtype)
        self.noise_variance_ = psi64.astype(np_dtype)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.loglike_ = np.asarray(loglike, dtype=np.float64)
        self.n_iter_ = len(loglike)

    # ---- the fitted model

    def get_covariance(self) -> np.ndarray:
        """The model covariance ``L L^T + Psi``, float64, shape ``(n_neurons, n_neurons)``."""
        L = self._loadings()
        return L @ L.T + np.diag(self.noise_variance_.astype(np.float64))

    def _loadings(self) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise ValueError("FactorAnalysis is not fitted (no components_)")
        return np.asarray(self.components_, dtype=np.float64).T

    def _posterior_operator(self, idx: np.ndarray):
        """Float64 ``(L_idx, psi_idx, beta_idx, chol(M_idx))`` of the neurons ``idx``."""
        L = self._loadings()[idx]
        psi = np.asarray(self.noise_variance_, dtype=np.float64)[idx]
        PL = L / psi[:, None]
        M = np.eye(L.shape[1]) + L.T @ PL
        chol = np.linalg.cholesky(M)
        beta = np.linalg.solve(M, PL.T)                     # M^-1 L^T Psi^-1 (Woodbury)
        return L, psi, beta, chol

    def _check_input(self, X, n_columns: int, what: str) -> np.ndarray:
        X = check_activity(X)
        if X.shape[1] != n_columns:
            raise ValueError(f"{what} must have {n_columns} columns, got shape {X.shape}")
        return X

    def _chunked(self, X: np.ndarray, center: np.ndarray, fn, width: int) -> np.ndarray:
        """``fn(X[rows] - center)`` over chunks of rows, in torch on the model's device and dtype."""
        dtype = _DTYPES[self.dtype]
        device = _resolve_device(self.device, fitting=False)
        center_t = torch.as_tensor(center, device=device).to(dtype)
        out = np.empty((X.shape[0], width), dtype=np.dtype(self.dtype))
        with torch.inference_mode():
            for start in range(0, X.shape[0], _CHUNK):
                x = torch.as_tensor(X[start:start + _CHUNK]).to(device=device, dtype=dtype) - center_t
                out[start:start + _CHUNK] = fn(x).cpu().numpy()
        return out

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=_resolve_device(self.device, fitting=False)).to(_DTYPES[self.dtype])

    def _posterior_mean(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        _, _, beta, _ = self._posterior_operator(idx)
        beta_t = self._tensor(beta.T)
        return self._chunked(X, self.mean_[idx], lambda d: d @ beta_t, beta.shape[0])

    def transform(self, X) -> np.ndarray:
        """Posterior means ``E[z | x]``, shape ``(n_samples, n_components)``."""
        p = self._loadings().shape[0]
        X = self._check_input(X, p, "activity")
        return self._posterior_mean(X, np.arange(p))

    def reconstruct(self, X) -> np.ndarray:
        """The denoised activity ``mu + L E[z | x]``, shaped like ``X``."""
        Z = self.transform(X)
        return (self.mean_ + Z @ self._loadings().T).astype(Z.dtype)

    def score_samples(self, X) -> np.ndarray:
        """Log-density of each row under ``N(mean_, L L^T + Psi)``, float64, shape ``(n_samples,)``."""
        L, psi, _, chol = self._posterior_operator(np.arange(self._loadings().shape[0]))
        X = self._check_input(X, L.shape[0], "activity")
        logdet = 2.0 * np.log(np.diagonal(chol)).sum() + np.log(psi).sum()
        # (x-mu)^T C^-1 (x-mu) = d^T Psi^-1 d - |chol^-1 L^T Psi^-1 d|^2 (Woodbury)
        W = self._tensor(np.linalg.solve(chol, (L / psi[:, None]).T).T)     # p x k
        inv_psi = self._tensor(1.0 / psi)

        def quad(d: torch.Tensor) -> torch.Tensor:
            return ((d * d * inv_psi).sum(dim=1) - ((d @ W) ** 2).sum(dim=1))[:, None]

        q = self._chunked(X, self.mean_, quad, 1)[:, 0].astype(np.float64)
        return -0.5 * (L.shape[0] * _LOG_2PI + logdet + q)

    def score(self, X) -> float:
        """Average log-likelihood per sample (scikit-learn's ``FactorAnalysis.score``)."""
        return float(np.mean(self.score_samples(X)))

    def posterior_heldout(self, X_heldin, heldin_idx) -> np.ndarray:
        """``E[z | x_in]`` from the neurons ``heldin_idx`` alone, shape ``(n_samples, n_components)``.

        ``X_heldin`` holds only those neurons' activity, columns in the order of ``heldin_idx``
        (integer indices into the fitted neurons, or a boolean mask over them).
        """
        idx = _neuron_indices(heldin_idx, "heldin_idx", self._loadings().shape[0])
        X_heldin = self._check_input(X_heldin, idx.size, "X_heldin")
        return self._posterior_mean(X_heldin, idx)

    def predict_heldout(self, X_heldin, heldin_idx, heldout_idx) -> np.ndarray:
        """``E[x_out | x_in] = mu_out + L_out E[z | x_in]``, shape ``(n_samples, len(heldout_idx))``.

        The co-smoothing prediction of the neurons ``heldout_idx`` from the activity of the
        neurons ``heldin_idx``. A neuron in both gets its denoised reconstruction from the
        held-in set (a prediction that has seen it).
        """
        out = _neuron_indices(heldout_idx, "heldout_idx", self._loadings().shape[0])
        Z = self.posterior_heldout(X_heldin, heldin_idx)
        return (self.mean_[out] + Z @ self._loadings()[out].T).astype(Z.dtype)
