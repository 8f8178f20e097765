"""Wiener filter decoding: ridge regression on a history window, cross-validated without leaks.

The Wiener filter of motor-cortex decoding (Warland et al. 1997; Carmena et al. 2003) predicts a
behavioural variable at time bin ``t`` as a linear function of the firing of every unit in bins
``t - history_bins .. t + future_bins``: a ridge regression on :func:`history_design_matrix`.

How the model is fitted, and why
--------------------------------
* **Closed form, all ridge strengths at once.** Features are centred (the intercept is not
  penalised) and, by default, scaled to unit variance on the training set only, so one ridge
  strength means the same on every data set. The scatter matrix ``C = Xs.T @ Xs`` of the
  standardised design is diagonalised once, ``C = V diag(s) V.T``; then for every ``alpha`` the
  coefficients are ``V diag(1 / (s + alpha)) V.T Xs.T y``, a matrix product instead of a new solve.
  Directions with ``s`` at rounding level (collinear or constant features) get a zero
  coefficient, so ``alpha = 0`` gives the minimum-norm least-squares solution.
* **Nested cross-validation.** :func:`cross_validate_decoder` scores contiguous test blocks (see
  :func:`blocked_kfold`) and chooses the ridge strength of each outer fold by an inner blocked
  K-fold on that fold's training samples only, so the reported score is not the best of many
  tries on the test data.
* **Sufficient statistics.** Every fit needs only ``n``, the sums of ``x`` and ``y`` and the
  products ``x x^T`` and ``x y^T`` over its training rows. They are computed once for the whole
  recording; a fold's statistics are the total minus those of the rows it leaves out (the test
  block and its gaps), so the K + K*K fits of a nested K-fold cost little more than one pass
  over the design matrix plus one eigendecomposition each.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .cross_validation import _blocked_folds, blocked_kfold
from .scores import pearson_r, r2_score, rmse
from .windows import history_design_matrix

__all__ = ["WienerFilter", "CrossValidationResult", "cross_validate_decoder", "DEFAULT_ALPHAS"]

#: ridge strengths tried when none are given (on standardised features)
DEFAULT_ALPHAS = np.logspace(-3, 3, 13)
DEFAULT_ALPHAS.setflags(write=False)

_EPS = np.finfo(np.float64).eps
# a feature whose variance on a training set is below this fraction of its mean square over the
# rows that went into the statistics is constant there (rounding noise of the downdated sums)
_CONSTANT_RTOL = 1e-10


# --------------------------------------------------------------------------------------------------
# the numerical core: sufficient statistics -> eigendecomposition -> coefficients for many alphas


@dataclass
class _Moments:
    """Sums over a set of rows of (already shifted) features ``z`` and targets ``y``."""

    n: int
    sum_z: np.ndarray   # (p,)
    zz: np.ndarray      # (p, p)  sum of z z^T
    sum_y: np.ndarray   # (k,)
    zy: np.ndarray      # (p, k)  sum of z y^T
    magnitude: np.ndarray  # (p,) sum of z**2 over every row that entered these sums: error scale

    @classmethod
    def of(cls, z: np.ndarray, y: np.ndarray) -> "_Moments":
        zz = z.T @ z
        return cls(n=z.shape[0], sum_z=z.sum(axis=0), zz=zz, sum_y=y.sum(axis=0), zy=z.T @ y,
                   magnitude=np.diag(zz).copy())

    def __sub__(self, other: "_Moments") -> "_Moments":
        # rounding errors of both sums remain in the difference, hence magnitudes add
        return _Moments(n=self.n - other.n, sum_z=self.sum_z - other.sum_z, zz=self.zz - other.zz,
                        sum_y=self.sum_y - other.sum_y, zy=self.zy - other.zy,
                        magnitude=self.magnitude + other.magnitude)


def _moments_of_rows(z: np.ndarray, y: np.ndarray, parent: _Moments, parent_rows: np.ndarray,
                     keep: np.ndarray) -> _Moments:
    """Moments of ``parent_rows[keep]``, by downdating ``parent`` when that touches fewer rows."""
    n_keep = int(keep.sum())
    if n_keep >= parent_rows.shape[0] - n_keep:
        dropped = parent_rows[~keep]
        return parent - _Moments.of(z[dropped], y[dropped])
    kept = parent_rows[keep]
    return _Moments.of(z[kept], y[kept])


@dataclass
class _RidgePath:
    """A training set's ridge solutions for any alpha, from one eigendecomposition."""

    z_mean: np.ndarray    # (p,)
    y_mean: np.ndarray    # (k,)
    scale: np.ndarray     # (p,) standard deviations (1 for constant features or no scaling)
    eigvals: np.ndarray   # (p,) of the standardised scatter matrix, 0 at rounding level
    eigvecs: np.ndarray   # (p, p)
    projected: np.ndarray  # (p, k) eigvecs.T @ Xs.T @ y_centred

    @classmethod
    def fit(cls, m: _Moments, *, standardize: bool) -> "_RidgePath":
        n = m.n
        z_mean = m.sum_z / n
        y_mean = m.sum_y / n
        scatter = m.zz - n * np.outer(z_mean, z_mean)
        cross = m.zy - n * np.outer(z_mean, y_mean)
        variance_sum = np.diag(scatter).copy()
        constant = variance_sum <= _CONSTANT_RTOL * m.magnitude
        scale = np.ones_like(z_mean)
        if standardize:
            scale[~constant] = np.sqrt(variance_sum[~constant] / n)
        # a constant feature carries no information in this training set: its coefficient is 0
        scatter[constant, :] = 0.0
        scatter[:, constant] = 0.0
        cross[constant, :] = 0.0
        scatter /= np.outer(scale, scale)
        cross /= scale[:, np.newaxis]
        eigvals, eigvecs = np.linalg.eigh(scatter)
        rank_tol = scatter.shape[0] * _EPS * max(float(eigvals[-1]) if eigvals.size else 0.0, 0.0)
        eigvals[eigvals <= rank_tol] = 0.0
        return cls(z_mean=z_mean, y_mean=y_mean, scale=scale, eigvals=eigvals, eigvecs=eigvecs,
                   projected=eigvecs.T @ cross)

    def _filter(self, alpha: float) -> np.ndarray:
        keep = self.eigvals > 0
        factors = np.zeros_like(self.eigvals)
        factors[keep] = 1.0 / (self.eigvals[keep] + alpha)
        return factors

    def coefficients(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (p, k) and intercept (k,) in the units of the (shifted) inputs."""
        standardised = self.eigvecs @ (self.projected * self._filter(alpha)[:, np.newaxis])
        coef = standardised / self.scale[:, np.newaxis]
        return coef, self.y_mean - self.z_mean @ coef

    def predict_many(self, z: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        """Predictions for ``z`` (n, p) under every alpha: shape (n_alphas, n, k)."""
        p, k = self.projected.shape
        factors = np.stack([self._filter(a) for a in alphas], axis=1)       # (p, a)
        weights = factors[:, :, np.newaxis] * self.projected[:, np.newaxis]  # (p, a, k)
        # coefficients of every alpha and output in input units: (p, a * k); cheaper than
        # rotating the test rows into the eigenbasis when n_alphas * n_outputs < p
        coef = (self.eigvecs @ weights.reshape(p, -1)) / self.scale[:, np.newaxis]
        flat = (z - self.z_mean) @ coef
        return flat.reshape(z.shape[0], len(alphas), k).transpose(1, 0, 2) + self.y_mean


# --------------------------------------------------------------------------------------------------
# input checks


def _as_2d_real(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, np.newaxis]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty, shape {a.shape}")
    if not np.isfinite(a).all():
        row, col = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name} holds NaN or infinite values (first at sample {row}, column {col})")
    return a


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def _check_alphas(alphas) -> np.ndarray:
    if alphas is None:
        return DEFAULT_ALPHAS.copy()
    a = np.asarray(alphas)
    if a.ndim == 0:
        a = a[np.newaxis]
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence, got shape {a.shape}")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"alphas must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not (np.isfinite(a).all() and (a >= 0).all()):
        raise ValueError(f"alphas must be finite and >= 0, got {a.tolist()}")
    return a


# --------------------------------------------------------------------------------------------------
# the estimator


class WienerFilter(RegressorMixin, BaseEstimator):
    """Ridge regression with an unpenalised intercept, solved in closed form for several outputs.

    Apply it to a lagged design matrix (:func:`history_design_matrix`) to get a Wiener filter
    decoder. Follows scikit-learn's estimator conventions (``get_params``, ``clone``, pipelines).

    Parameters
    ----------
    alpha : float, default 1.0
        Ridge strength, >= 0, on the standardised features when ``standardize`` is True (then it
        is comparable across data sets: ``alpha / n_samples`` is the shrinkage relative to unit
        feature variance). 0 gives the minimum-norm least-squares fit.
    standardize : bool, default True
        Scale every feature to unit variance on the training data before the penalty is applied
        (the fitted coefficients are reported in the original units either way). Constant
        features get coefficient 0.

    Attributes
    ----------
    coef_ : ndarray, shape (n_outputs, n_features), or (n_features,) when fitted on 1-D ``y``
        Weights in the units of ``X``.
    intercept_ : ndarray, shape (n_outputs,), or float when fitted on 1-D ``y``
    mean_ : ndarray, shape (n_features,)
        Training mean of each feature.
    scale_ : ndarray, shape (n_features,)
        Training standard deviation used for scaling (1 where not scaled or constant).
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 3.0
    >>> model = WienerFilter(alpha=1e-6).fit(X, y)
    >>> model.coef_.round(4), round(float(model.intercept_), 4)
    (array([ 1. , -2. ,  0.5]), 3.0)
    >>> round(model.score(X, y), 6)
    1.0
    """

    def __init__(self, *, alpha: float = 1.0, standardize: bool = True) -> None:
        self.alpha = alpha
        self.standardize = standardize

    def fit(self, X, y) -> "WienerFilter":
        """Fit on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_outputs).

        Input is checked by scikit-learn's ``validate_data``: a ValueError names NaN/infinite
        values, empty input or a mismatch in ``n_samples``; also raised for a bad ``alpha``.
        Returns ``self``.
        """
        alpha = _check_alpha(self.alpha)
        X, Y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        one_output = Y.ndim == 1
        if one_output:
            Y = Y[:, np.newaxis]
        mean = X.mean(axis=0)
        y_mean = Y.mean(axis=0)
        path = _RidgePath.fit(_Moments.of(X - mean, Y - y_mean), standardize=bool(self.standardize))
        coef, intercept = path.coefficients(alpha)
        self.mean_ = mean
        self.scale_ = path.scale
        if one_output:
            self.coef_ = coef[:, 0]
            self.intercept_ = float(intercept[0] + y_mean[0] - mean @ coef[:, 0])
        else:
            self.coef_ = coef.T
            self.intercept_ = intercept + y_mean - mean @ coef
        return self

    def predict(self, X) -> np.ndarray:
        """Predict targets for ``X`` (n_samples, n_features); 1-D if fitted on 1-D ``y``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def score(self, X, y, sample_weight=None) -> float:
        """Mean over outputs of :func:`r2_score` (NaN if an output of ``y`` is constant)."""
        if sample_weight is not None:
            raise ValueError("WienerFilter.score does not support sample_weight")
        return float(np.mean(r2_score(y, self.predict(X))))


# --------------------------------------------------------------------------------------------------
# nested, blocked cross-validation


@dataclass(frozen=True)
class CrossValidationResult:
    """Out-of-fold evaluation of a decoder. Arrays are float64; outputs are target columns.

    Attributes
    ----------
    r2, pearson_r, rmse : ndarray, shape (n_outputs,)
        Scores of the pooled out-of-fold predictions over every tested sample (see
        :mod:`.scores`; NaN for a constant target).
    fold_alphas : ndarray, shape (n_folds,)
        The ridge strength chosen by the inner cross-validation of each outer fold.
    predictions : ndarray, shape (n_samples, n_outputs)
        Out-of-fold predictions; NaN where a sample is in no test block, i.e. the first
        ``history_bins`` and the last ``future_bins`` samples, whose window leaves the recording.
    fold_r2 : ndarray, shape (n_folds,)
        R² on each outer test block, averaged over outputs.
    alphas : ndarray, shape (n_alphas,)
        The ridge strengths that were tried.
    inner_r2 : ndarray, shape (n_folds, n_alphas)
        Mean inner-fold R² of each alpha in each outer fold (NaN when only one alpha was given,
        as there was nothing to choose).
    gap : int
        Samples dropped on each side of every test block (inner and outer).
    """

    r2: np.ndarray
    pearson_r: np.ndarray
    rmse: np.ndarray
    fold_alphas: np.ndarray
    predictions: np.ndarray
    fold_r2: np.ndarray
    alphas: np.ndarray
    inner_r2: np.ndarray
    gap: int


def _mean_r2_per_alpha(y: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """R² of (a, n, k) predictions of (n, k) targets, averaged over non-constant outputs: (a,)."""
    sse = ((predictions - y) ** 2).sum(axis=1)                  # (a, k)
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)              # (k,)
    informative = np.ptp(y, axis=0) > 0
    if not informative.any():
        return np.full(predictions.shape[0], np.nan)
    return (1.0 - sse[:, informative] / sst[informative]).mean(axis=1)


def _nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN, NaN (without a warning) where every value is NaN."""
    counts = np.sum(~np.isnan(values), axis=axis)
    sums = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def cross_validate_decoder(features, targets, *, history_bins: int, future_bins: int = 0, n_folds: int = 5,
                           gap: int | None = None, alphas=None,
                           on_fold: Callable[[int, int, float], None] | None = None) -> CrossValidationResult:
    """Cross-validate a Wiener filter decoder with blocked folds and a nested choice of ridge strength.

    Parameters
    ----------
    features : array_like, shape (n_samples,) or (n_samples, n_features)
        Time along the first axis, e.g. binned spike counts from :func:`bin_spike_trains`; finite.
    targets : array_like, shape (n_samples,) or (n_samples, n_outputs)
        What to decode, aligned with ``features`` sample by sample; finite.
    history_bins, future_bins : int
        The window of every prediction, bins ``t - history_bins .. t + future_bins`` (see
        :func:`history_design_matrix`); >= 0.
    n_folds : int, default 5
        Outer folds: contiguous test blocks over the samples whose window is complete; also the
        number of inner folds used to choose ``alpha``. At least 2.
    gap : int, optional
        Samples dropped from the training set on each side of every test block (outer and
        inner). Defaults to, and is raised to at least, ``history_bins + future_bins``, the
        smallest gap at which no training window overlaps a test window. Raise it further when
        the targets are autocorrelated over longer times than the window.
    alphas : array_like of float, optional
        Ridge strengths (on standardised features, >= 0) to choose from; default
        ``np.logspace(-3, 3, 13)``. With one value there is no inner cross-validation.
    on_fold : callable, optional
        ``on_fold(fold_index, n_folds, fold_r2)`` after each outer fold (``fold_r2``: mean R² over
        outputs on that fold's test block), e.g. to report progress. An exception it raises stops
        the computation and propagates, which is how a caller cancels.

    Returns
    -------
    CrossValidationResult
        Scores per output, the chosen alphas, and the out-of-fold predictions.

    Raises
    ------
    ValueError
        Bad shapes, NaN/infinite values, parameters out of range, or too few samples for the
        folds and gaps asked for.

    Notes
    -----
    In each outer fold, features are standardised and centred on that fold's training samples
    only; the ridge strength with the best mean R² over the inner folds (averaged over outputs;
    the largest on ties) is refitted on the whole outer training set and predicts the test block.
    Cost: one pass over the design matrix to form its scatter matrix, plus one eigendecomposition
    of a (p, p) matrix per fit, p = n_features * (history_bins + 1 + future_bins), and
    ``1 + n_folds`` fits per outer fold.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(600, 4))
    >>> y = 2.0 * x[:, 0] - np.roll(x[:, 1], 1) + 0.1 * rng.normal(size=600)  # uses one past bin
    >>> result = cross_validate_decoder(x, y, history_bins=1, n_folds=3)
    >>> result.predictions.shape, bool(np.isnan(result.predictions[0, 0]))
    ((600, 1), True)
    >>> bool(result.r2[0] > 0.99)
    True
    """
    features = _as_2d_real(features, "features")
    targets_arr = np.asarray(targets)
    if targets_arr.ndim not in (1, 2):
        raise ValueError(f"targets must be 1-D or 2-D (n_samples[, n_outputs]), got shape {targets_arr.shape}")
    targets_arr = _as_2d_real(targets_arr, "targets").astype(np.float64, copy=False)
    n_samples = features.shape[0]
    if targets_arr.shape[0] != n_samples:
        raise ValueError(f"features and targets must have the same number of samples, got features "
                         f"{features.shape} and targets {np.shape(targets)}")
    alphas = _check_alphas(alphas)
    if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    n_folds = int(n_folds)
    if on_fold is not None and not callable(on_fold):
        raise ValueError(f"on_fold must be callable, got {on_fold!r}")

    # shift by the recording's means before the sums, so the downdated sums do not cancel
    # catastrophically for features far from 0; any constant shift leaves every fit unchanged
    feature_shift = features.mean(axis=0, dtype=np.float64)
    z_all, valid = history_design_matrix(features.astype(np.float64) - feature_shift,
                                         history_bins=history_bins, future_bins=future_bins)
    window = int(history_bins) + int(future_bins)
    if gap is None:
        gap = window
    elif isinstance(gap, bool) or not isinstance(gap, numbers.Integral) or gap < 0:
        raise ValueError(f"gap must be an integer >= 0 or None, got {gap!r}")
    gap = max(int(gap), window)

    first, stop = int(history_bins), n_samples - int(future_bins)
    z = z_all[first:stop]                       # a view: the valid rows
    y_shift = targets_arr[first:stop].mean(axis=0)
    y = targets_arr[first:stop] - y_shift
    n_valid = z.shape[0]
    if n_valid < n_folds:
        raise ValueError(f"{n_valid} samples have a complete window, fewer than n_folds={n_folds}")
    outer = blocked_kfold(n_valid, n_folds=n_folds, gap=gap)

    total = _Moments.of(z, y)
    all_rows = np.arange(n_valid)
    predictions = np.full(targets_arr.shape, np.nan)
    fold_alphas = np.empty(n_folds)
    fold_r2 = np.empty(n_folds)
    inner_r2 = np.full((n_folds, alphas.size), np.nan)
    # ties go to the larger alpha (the simpler model): search in descending alpha order
    descending = np.argsort(-alphas, kind="stable")

    for fold, (train, test) in enumerate(outer):
        keep = np.zeros(n_valid, dtype=bool)
        keep[train] = True
        train_moments = _moments_of_rows(z, y, total, all_rows, keep)
        if alphas.size == 1:
            alpha = float(alphas[0])
        else:
            try:
                inner = _blocked_folds(train, n_folds=n_folds, gap=gap)
            except ValueError as err:
                raise ValueError(f"outer fold {fold} has {train.size} training samples, too few for an inner "
                                 f"{n_folds}-fold cross-validation with gap={gap}: {err}") from None
            scores = np.empty((len(inner), alphas.size))
            for j, (inner_train, inner_test) in enumerate(inner):
                inner_keep = np.zeros(train.size, dtype=bool)
                inner_keep[inner_train] = True
                path = _RidgePath.fit(_moments_of_rows(z, y, train_moments, train, inner_keep), standardize=True)
                rows = train[inner_test]
                scores[j] = _mean_r2_per_alpha(y[rows], path.predict_many(z[rows], alphas))
            inner_r2[fold] = _nan_mean(scores, axis=0)
            if np.isnan(inner_r2[fold]).all():
                alpha = float(alphas.max())  # constant targets: nothing to choose, be conservative
            else:
                ordered = inner_r2[fold][descending]
                alpha = float(alphas[descending[np.nanargmax(ordered)]])
        path = _RidgePath.fit(train_moments, standardize=True)
        test_prediction = path.predict_many(z[test], np.array([alpha]))[0]
        predictions[first + test] = test_prediction + y_shift
        fold_alphas[fold] = alpha
        fold_r2[fold] = _nan_mean(r2_score(y[test], test_prediction), axis=0)
        if on_fold is not None:
            on_fold(fold, n_folds, float(fold_r2[fold]))

    tested = predictions[first:stop]
    truth = targets_arr[first:stop]
    return CrossValidationResult(r2=r2_score(truth, tested), pearson_r=pearson_r(truth, tested),
                                 rmse=rmse(truth, tested), fold_alphas=fold_alphas, predictions=predictions,
                                 fold_r2=fold_r2, alphas=alphas, inner_r2=inner_r2, gap=gap)
