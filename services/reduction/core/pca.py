"""Principal component analysis, in memory and out of core.

:class:`PCA` (registered as ``"pca"``) centres the activity and finds the directions of largest
variance in one of two ways:

* ``solver="exact"``: the eigendecomposition of the scatter matrix ``Xc^T Xc`` (``Xc`` the
  centred data), accumulated over blocks of rows: each block's product in the data's precision
  (float32 data in float32, like scikit-learn), the blocks'
  sums in float64. It costs ``O(n_samples n_neurons^2)`` time and ``O(n_neurons^2)`` memory,
  whatever the number of samples: the right choice for recordings (up to a few thousand
  neurons).
* ``solver="randomized"``: the randomized range finder with power (subspace) iterations of
  Halko, Martinsson & Tropp (2011, Algorithms 4.4 and 5.1) on the centred data, ``O(n_samples
  n_neurons (n_components + oversamples))`` per iteration: for many neurons and few components.
  It holds a float64 centred copy of the data.

:func:`fit_pca_streaming` fits the exact solution from an array too big for memory (a memmap, a
``zarr.Array`` on S3) in one pass over its rows, and :func:`transform_streaming` writes the
latents block by block into any writable array.

Conventions: ``explained_variance_`` is the variance along each component with the unbiased
``n_samples - 1`` denominator (as scikit-learn); each component is a unit vector whose
largest-magnitude loading is positive (so fits are deterministic, whichever solver or machine);
a neuron that is constant over the data gets exactly zero loading in every component of nonzero
variance.

Example
-------
>>> from services.reduction.core.synthetic import low_rank_gaussian
>>> data = low_rank_gaussian(n_samples=1000, n_neurons=8, rank=2, noise_std=0.1, seed=0)
>>> pca = PCA(n_components=2).fit(data.activity)
>>> pca.explained_variance_ratio_.round(3)
array([0.801, 0.188])
>>> Z = pca.transform(data.activity)
>>> float(np.abs(pca.reconstruct(data.activity) - data.activity).max()) < 0.5
True
>>> streamed = fit_pca_streaming(data.activity, n_components=2, chunk_rows=64)
>>> bool(np.allclose(streamed.components_, pca.components_))
True
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.linalg

from .base import Reducer, Report, all_finite, check_activity, register_reducer

__all__ = ["PCA", "fit_pca_streaming", "transform_streaming"]

#: rows per block are chosen so a block holds about this many float64 values (32 MiB)
_BLOCK_ELEMENTS = 1 << 22
_SOLVERS = ("exact", "randomized")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class _Scatter:
    """Running n, sum and cross-product of rows, shifted by a fixed vector, in float64.

    ``sum((x - c)(x - c)^T) - n (m - c)(m - c)^T`` is the scatter about the mean ``m`` for any
    shift ``c``; the round-off of the subtraction grows with ``|m - c|^2 / variance``, so ``c``
    is the first block's mean (close to the mean, whatever the offset of the data), and one pass
    over the rows suffices, in memory as when streaming.
    """

    def __init__(self, n_neurons: int, shift: np.ndarray | None = None, *,
                 first_row: np.ndarray | None = None) -> None:
        self.shift = shift
        self.n = 0
        self.sum = np.zeros(n_neurons)
        self.cross = np.zeros((n_neurons, n_neurons))
        # Constant neurons are found exactly, which round-off in the sums cannot do: streamed
        # data track every neuron's min and max; in memory (``first_row`` given), only neurons
        # whose scatter is at round-off level are checked against the data at the end, which
        # saves two passes over the rows.
        self.first_row = first_row
        self.low = np.full(n_neurons, np.inf)
        self.high = np.full(n_neurons, -np.inf)

    def add(self, block: np.ndarray) -> None:
        # float32 blocks stay float32 inside a block (half the memory traffic, twice the BLAS
        # rate), as scikit-learn computes float32 PCA; the blocks' sums add up in float64, so
        # round-off grows with the rows of one block, not of the whole recording
        block = np.asarray(block)
        dtype = np.float32 if block.dtype == np.float32 else np.float64
        block = block.astype(dtype, copy=False)
        if self.shift is None:
            self.shift = block.mean(axis=0, dtype=np.float64)
        if self.first_row is None:
            np.minimum(self.low, block.min(axis=0), out=self.low)
            np.maximum(self.high, block.max(axis=0), out=self.high)
        d = block - self.shift.astype(dtype)
        self.n += block.shape[0]
        self.sum += d.sum(axis=0, dtype=np.float64)
        # a general product, though d^T d is symmetric: scipy's syrk on C-ordered blocks measured
        # 3x slower here than gemm (it transposes its input first)
        self.cross += d.T @ d

    def finish(self, data: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, scatter matrix about the mean, and the mask of neurons that vary.

        ``data`` is the whole array, needed when the scatter was accumulated with ``first_row``.
        """
        mean = self.shift + self.sum / self.n
        scatter = self.cross - np.outer(self.sum, self.sum) / self.n
        if self.first_row is None:
            varying = self.high > self.low
            value = self.low
        else:
            # a constant neuron's deviations from the shift are one value (0 when the shift is
            # the first block's exact mean), so its scatter is 0 up to the round-off of that
            # value; every neuron under a generous bound on that round-off is checked exactly
            eps = np.finfo(np.float32 if data.dtype == np.float32 else np.float64).eps
            bound = self.n * (64 * eps * np.abs(self.shift)) ** 2 + np.finfo(np.float64).tiny
            varying = np.ones(self.sum.size, dtype=bool)
            for j in np.flatnonzero(np.diag(scatter) <= bound):
                varying[j] = bool(np.any(data[:, j] != self.first_row[j]))
            value = self.first_row
        # a constant neuron's mean is its value and its row and column of the scatter are zero
        mean[~varying] = value[~varying]
        scatter[~varying, :] = 0.0
        scatter[:, ~varying] = 0.0
        return mean, 0.5 * (scatter + scatter.T), varying


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry (the first, on ties) is positive."""
    peak = components[np.arange(components.shape[0]), np.argmax(np.abs(components), axis=1)]
    return components * np.where(peak < 0, -1.0, 1.0)[:, None]


def _embed(sub_components: np.ndarray, sub_variance: np.ndarray, varying: np.ndarray,
           n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Components found among the varying neurons, as full-width rows; if more are asked for than
    there are varying neurons, the rest are unit vectors on constant neurons (variance 0)."""
    n_neurons = varying.size
    components = np.zeros((n_components, n_neurons))
    variance = np.zeros(n_components)
    m = min(n_components, sub_components.shape[0])
    components[:m, varying] = sub_components[:m]
    variance[:m] = sub_variance[:m]
    for row, neuron in zip(range(m, n_components), np.flatnonzero(~varying)):
        components[row, neuron] = 1.0
    return _fix_signs(components), variance


def _check_n_components(n_components, n_samples: int, n_neurons: int, name: str = "activity") -> int:
    if n_samples < 2:
        raise ValueError(f"{name} has {n_samples} sample, PCA needs at least 2 to estimate a variance")
    if n_components is None:
        return min(n_samples, n_neurons)
    k = _positive_int(n_components, "n_components")
    if k > n_neurons:
        raise ValueError(f"n_components={k} exceeds the number of neurons, {n_neurons}")
    if k > n_samples:
        raise ValueError(f"{name} has {n_samples} samples, fewer than the n_components={k} asked for")
    return k


def _eig_components(scatter: np.ndarray, varying: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-``k`` eigenpairs of the scatter restricted to the varying neurons, largest first."""
    sub = scatter[np.ix_(varying, varying)]
    m = min(k, sub.shape[0])
    values, vectors = scipy.linalg.eigh(sub, subset_by_index=[sub.shape[0] - m, sub.shape[0] - 1])
    order = np.argsort(values)[::-1]
    return vectors[:, order].T, np.clip(values[order], 0.0, None)


@register_reducer("pca")
class PCA(Reducer):
    """Principal component analysis of ``(n_samples, n_neurons)`` activity.

    Parameters
    ----------
    n_components : int or None
        Number of components kept, at most ``min(n_samples, n_neurons)``; None keeps that many.
    solver : {"exact", "randomized"}
        Eigendecomposition of the float64 scatter matrix, or the randomized range finder
        (see the module docstring).
    whiten : bool
        If True, :meth:`transform` divides each latent by its standard deviation, so the latents
        of the training data have unit variance (components of zero variance are left unscaled).
    seed : int or None
        Seed of the random test matrix of the randomized solver (unused by the exact one).
    oversamples : int
        Extra random directions of the randomized solver (Halko et al.'s ``p``), default 10.
    power_iterations : int
        Subspace iterations of the randomized solver (Halko et al.'s ``q``), default 4; each one
        sharpens the gap between kept and discarded singular values by their ratio squared.

    Attributes
    ----------
    components_ : ndarray of float64, shape (n_components, n_neurons)
        Orthonormal principal axes, by decreasing variance.
    mean_ : ndarray of float64, shape (n_neurons,)
    explained_variance_ : ndarray of float64, shape (n_components,)
        Variance of the data along each component (denominator ``n_samples - 1``).
    explained_variance_ratio_ : ndarray of float64, shape (n_components,)
        Its fraction of the total variance (the sum over all neurons).
    n_samples_seen_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) * [3.0, 1.0, 0.1] + 10.0
    >>> pca = PCA(n_components=2).fit(X)
    >>> np.abs(pca.components_).round(2)
    array([[1.  , 0.01, 0.  ],
           [0.01, 1.  , 0.  ]])
    >>> pca.transform(X).shape, pca.reconstruct(X).shape
    ((500, 2), (500, 3))
    """

    state_attributes = ("components_", "mean_", "explained_variance_", "explained_variance_ratio_",
                        "n_samples_seen_")

    def __init__(self, *, n_components: int | None = None, solver: str = "exact", whiten: bool = False,
                 seed: int | None = None, oversamples: int = 10, power_iterations: int = 4) -> None:
        self.n_components = n_components
        self.solver = solver
        self.whiten = whiten
        self.seed = seed
        self.oversamples = oversamples
        self.power_iterations = power_iterations

    # ------------------------------------------------------------------ fitting
    def fit(self, X, *, report: Report | None = None) -> "PCA":
        """Fit the components to ``X`` (n_samples, n_neurons).

        Raises ValueError for activity that is not 2-D, empty or not finite, for fewer than 2
        samples, for ``n_components`` above ``min(n_samples, n_neurons)``, for bad options and
        for activity in which every neuron is constant. ``report(fraction, message)`` is called
        as blocks of rows (exact) or power iterations (randomized) finish.
        """
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        X = check_activity(X)
        n_samples, n_neurons = X.shape
        k = _check_n_components(self.n_components, n_samples, n_neurons)
        if self.solver == "exact":
            # one pass, shifted by the first block's mean (as when streaming): the scatter comes
            # out as exact as with the true mean, without a pass to compute it first
            acc = _Scatter(n_neurons, first_row=np.asarray(X[0], dtype=np.float64))
            step = max(1, _BLOCK_ELEMENTS // n_neurons)
            for start in range(0, n_samples, step):
                acc.add(X[start:start + step])
                if report is not None:
                    report(0.9 * min(start + step, n_samples) / n_samples, "accumulating the covariance")
            mean, scatter, varying = acc.finish(X)
            if not varying.any():
                raise ValueError("activity is constant: every neuron has zero variance")
            sub_components, sub_values = _eig_components(scatter, varying, k)
            total = float(np.trace(scatter))
        else:
            mean = X.mean(axis=0, dtype=np.float64)
            varying = np.ptp(X, axis=0) > 0
            if not varying.any():
                raise ValueError("activity is constant: every neuron has zero variance")
            mean[~varying] = X[0, ~varying]
            sub_components, sub_values, total = self._randomized(X[:, varying] - mean[varying], k, report)
        self._set_fit(mean, sub_components, sub_values, varying, k, n_samples, total)
        if report is not None:
            report(1.0, "done")
        return self

    def _randomized(self, Xc: np.ndarray, k: int, report: Report | None) -> tuple[np.ndarray, np.ndarray, float]:
        Xc = np.asarray(Xc, dtype=np.float64)
        n, p = Xc.shape
        for name in ("oversamples", "power_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        oversamples = int(self.oversamples)
        width = min(k + oversamples, n, p)
        rng = np.random.default_rng(self.seed)
        # range finder: Q spans (Xc Xc^T)^q Xc Omega, re-orthonormalised after every product so
        # the small singular directions are not lost to round-off (Halko et al., Algorithm 4.4)
        Q, _ = np.linalg.qr(Xc @ rng.standard_normal((p, width)))
        for i in range(int(self.power_iterations)):
            Q, _ = np.linalg.qr(Xc.T @ Q)
            Q, _ = np.linalg.qr(Xc @ Q)
            if report is not None:
                report(0.9 * (i + 1) / (self.power_iterations + 1), "power iterations")
        # Xc ~ Q (Q^T Xc): the SVD of the small matrix B = Q^T Xc gives the right singular vectors
        _, s, Vt = np.linalg.svd(Q.T @ Xc, full_matrices=False)
        return Vt[:k], s[:k] ** 2, float(np.einsum("ij,ij->", Xc, Xc))

    def _set_fit(self, mean, sub_components, sub_values, varying, k, n_samples, total) -> None:
        components, scatter_values = _embed(sub_components, sub_values, varying, k)
        self.mean_ = mean
        self.components_ = components
        self.explained_variance_ = scatter_values / (n_samples - 1)
        self.explained_variance_ratio_ = scatter_values / total
        self.n_samples_seen_ = int(n_samples)

    # ------------------------------------------------------------------ using
    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet: call fit first")

    @property
    def n_neurons_(self) -> int:
        self._check_fitted()
        return int(self.components_.shape[1])

    def _scale(self) -> np.ndarray:
        ev = np.asarray(self.explained_variance_, dtype=np.float64)
        return np.where(ev > 0, np.sqrt(ev), 1.0)

    def transform(self, X) -> np.ndarray:
        """Latents ``(X - mean_) @ components_.T`` (divided by their std if ``whiten``), float64,
        shape (n_samples, n_components)."""
        self._check_fitted()
        X = check_activity(X)
        if X.shape[1] != self.n_neurons_:
            raise ValueError(f"activity has {X.shape[1]} neurons, this PCA was fitted on {self.n_neurons_}")
        Z = (X - self.mean_) @ self.components_.T
        return Z / self._scale() if self.whiten else Z

    def inverse_transform(self, Z) -> np.ndarray:
        """Activity ``Z @ components_ + mean_`` from latents (n_samples, n_components)."""
        self._check_fitted()
        Z = check_activity(Z, name="latents")
        if Z.shape[1] != self.components_.shape[0]:
            raise ValueError(f"latents have {Z.shape[1]} components, this PCA has {self.components_.shape[0]}")
        if self.whiten:
            Z = Z * self._scale()
        return Z @ self.components_ + self.mean_

    def reconstruct(self, X) -> np.ndarray:
        """The projection of ``X`` on the principal subspace, in the units of ``X``."""
        return self.inverse_transform(self.transform(X))

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "PCA":
        model = super().from_model_state(params, arrays)
        model.n_samples_seen_ = int(model.n_samples_seen_)
        return model


# ---------------------------------------------------------------------- out of core
def _row_alignment(array) -> int:
    """Rows per storage chunk (per shard for sharded Zarr arrays), 1 for unchunked arrays."""
    for name in ("shards", "chunks"):
        try:
            chunks = getattr(array, name, None)
        except Exception:  # a property that does not apply to this kind of array
            chunks = None
        if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], numbers.Integral) and chunks[0] > 0:
            return int(chunks[0])
    return 1


def _block_rows(n_cols: int, chunk_rows, alignment: int) -> int:
    if chunk_rows is None:
        rows = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    else:
        rows = _positive_int(chunk_rows, "chunk_rows")
    # whole storage chunks per block: each chunk is fetched (and decompressed) exactly once
    return -(-rows // alignment) * alignment


def _check_array_like(array, name: str) -> tuple[int, int]:
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_neurons), got shape {shape}")
    try:
        dtype = np.dtype(array.dtype)
    except (AttributeError, TypeError):
        raise ValueError(f"{name} has no numpy dtype (got {getattr(array, 'dtype', None)!r})") from None
    if dtype == bool or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {dtype}")
    if 0 in shape:
        raise ValueError(f"{name} is empty, shape {shape}")
    return int(shape[0]), int(shape[1])


def _read_block(array, start: int, stop: int, n_cols: int, name: str) -> np.ndarray:
    block = np.asarray(array[start:stop])
    if block.shape != (stop - start, n_cols):
        raise ValueError(f"{name}[{start}:{stop}] has shape {block.shape}, expected {(stop - start, n_cols)}")
    if not all_finite(block):
        row, col = np.argwhere(~np.isfinite(block))[0]
        raise ValueError(f"{name} holds NaN or infinite values (first at index {(start + int(row), int(col))})")
    return block


def fit_pca_streaming(array, *, n_components: int, whiten: bool = False, chunk_rows: int | None = None,
                      report: Report | None = None) -> PCA:
    """Exact PCA of an array read block by block, in one pass: for data larger than memory.

    Parameters
    ----------
    array : array-like of shape (n_samples, n_neurons)
        Anything with ``.shape``, ``.dtype`` and row slicing ``array[i:j]`` returning an array: a
        NumPy array or memmap, an h5py dataset, a ``zarr.Array`` (for example opened from S3).
    n_components : int
        At most ``min(n_samples, n_neurons)``.
    whiten : bool
        As for :class:`PCA`.
    chunk_rows : int, optional
        Rows read at a time; default about 4 million values per block (32 MiB as float64). If
        the array has ``.chunks`` (or ``.shards``), it is rounded up to a whole number of its row
        chunks, so every stored chunk is read exactly once.
    report : callable, optional
        ``report(fraction, message)`` after every block; an exception it raises stops the fit.

    Returns
    -------
    PCA
        Fitted as ``PCA(n_components=n_components, solver="exact", whiten=whiten)`` would be on
        the whole array in memory, to round-off (about 1e-12 relative on well-scaled data).

    Notes
    -----
    One pass accumulates, in float64, the count, the sum and the cross-product ``D^T D`` of the
    rows shifted by the first block's mean, ``D = X - c``; the scatter about the mean is
    ``D^T D - s s^T / n`` with ``s`` the sum of ``D``. Shifting by an estimate of the mean
    avoids the catastrophic cancellation of the textbook ``X^T X - n m m^T`` when the data have
    a large offset (firing rates far from zero). Memory is one block plus ``n_neurons^2`` floats.

    Raises
    ------
    ValueError
        Not 2-D, empty or non-numeric, fewer than 2 samples, ``n_components`` too large, a block
        with NaN or infinite values (its global index is named), every neuron constant.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(1001, 5)) @ rng.normal(size=(5, 5)) + 1e3
    >>> streamed = fit_pca_streaming(X, n_components=3, chunk_rows=100)
    >>> in_memory = PCA(n_components=3).fit(X)
    >>> bool(np.allclose(streamed.explained_variance_, in_memory.explained_variance_, rtol=1e-10))
    True
    """
    n_samples, n_neurons = _check_array_like(array, "array")
    if n_components is None:
        raise ValueError("n_components must be a positive integer, got None")
    k = _check_n_components(n_components, n_samples, n_neurons, "array")
    step = _block_rows(n_neurons, chunk_rows, _row_alignment(array))
    acc = _Scatter(n_neurons)
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        acc.add(_read_block(array, start, stop, n_neurons, "array"))
        if report is not None:
            report(0.95 * stop / n_samples, f"read rows {stop} of {n_samples}")
    mean, scatter, varying = acc.finish()
    if not varying.any():
        raise ValueError("array is constant: every neuron has zero variance")
    sub_components, sub_values = _eig_components(scatter, varying, k)
    pca = PCA(n_components=k, solver="exact", whiten=whiten)
    pca._set_fit(mean, sub_components, sub_values, varying, k, n_samples, float(np.trace(scatter)))
    if report is not None:
        report(1.0, "done")
    return pca


def transform_streaming(pca: PCA, array, out=None, *, chunk_rows: int | None = None,
                        report: Report | None = None):
    """Latents of ``array`` (n_samples, n_neurons) written block by block into ``out``.

    Parameters
    ----------
    pca : PCA
        Fitted.
    array : array-like of shape (n_samples, n_neurons)
        As for :func:`fit_pca_streaming`.
    out : writable array-like of shape (n_samples, n_components), optional
        Anything supporting ``out[i:j] = block`` (a NumPy array, a ``zarr.Array`` being written
        to the store); values are cast to its dtype. Default: a new float64 NumPy array.
    chunk_rows : int, optional
        Rows per block; rounded up to whole row chunks of ``array``, and of ``out`` too when that
        costs at most a few times more memory, so no stored chunk is read or written twice.
    report : callable, optional
        ``report(fraction, message)`` after every block.

    Returns
    -------
    out
        The array written to.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> X = rng.normal(size=(300, 4))
    >>> pca = PCA(n_components=2).fit(X)
    >>> out = np.zeros((300, 2), dtype=np.float32)
    >>> _ = transform_streaming(pca, X, out, chunk_rows=64)
    >>> bool(np.allclose(out, pca.transform(X), atol=1e-5))
    True
    """
    pca._check_fitted()
    n_samples, n_neurons = _check_array_like(array, "array")
    if n_neurons != pca.n_neurons_:
        raise ValueError(f"array has {n_neurons} neurons, this PCA was fitted on {pca.n_neurons_}")
    k = pca.components_.shape[0]
    if out is None:
        out = np.empty((n_samples, k), dtype=np.float64)
    if tuple(getattr(out, "shape", ())) != (n_samples, k):
        raise ValueError(f"out must have shape {(n_samples, k)}, got {tuple(getattr(out, 'shape', ()))}")
    align_in, align_out = _row_alignment(array), _row_alignment(out)
    step = _block_rows(n_neurons, chunk_rows, align_in)
    both = math.lcm(align_in, align_out)
    if both <= 4 * step:
        step = -(-step // both) * both
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        out[start:stop] = pca.transform(_read_block(array, start, stop, n_neurons, "array"))
        if report is not None:
            report(stop / n_samples, f"wrote rows {stop} of {n_samples}")
    return out
