"""The one interface every decoder follows, and how fitted decoders are saved without pickle.

Every decoder is a scikit-learn estimator (``get_params``, ``set_params``, ``clone``) with

* ``fit(X, y, *, report=None)``: ``X`` is a **window tensor**, shape ``(n_samples, n_lags,
  n_features)``: the features of bins ``t - history_bins .. t + future_bins`` for every sample
  ``t``, oldest first (:func:`window_tensor` makes it from binned features). Linear decoders
  flatten it; recurrent ones read it as a sequence; the Kalman filter reads consecutive rows as
  consecutive time steps. ``y`` is ``(n_samples, n_outputs)`` float for regressors and
  ``(n_samples,)`` integer class labels for classifiers. ``report(fraction_done, message)``,
  if given, is called by iterative decoders as they go; an exception it raises stops the fit
  (this is how a cancelled RPC stops training).
* ``predict(X)``: ``(n_samples, n_outputs)`` for regressors, ``(n_samples,)`` labels for
  classifiers (which also have ``predict_proba``).
* ``score(X, y)``: mean R² over outputs, or accuracy.
* ``get_model_state() -> (params, arrays)`` and ``from_model_state(params, arrays)``: JSON-able
  parameters and named numpy arrays. :func:`save_model` packs them into one ``.npz`` byte
  string read back with ``allow_pickle=False``, so loading a model from the store never runs
  code from it.

Decoders register under a short name with :func:`register_decoder`; the service and
:func:`load_model` find them in :data:`DECODERS`.

Example
-------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(500, 3))
>>> X, valid = window_tensor(x, history_bins=2)
>>> y = (x @ [1.0, -1.0, 0.5])[:, None]
>>> model = RidgeDecoder(alphas=(1e-3,)).fit(X[valid], y[valid])
>>> round(model.score(X[valid], y[valid]), 4)
1.0
>>> again = load_model(save_model(model))
>>> bool(np.allclose(again.predict(X[valid]), model.predict(X[valid])))
True
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from services.common.models import ModelRegistry, StatefulModel

from .cross_validation import _blocked_folds
from .scores import r2_score
from .windows import history_design_matrix

__all__ = ["Decoder", "DECODERS", "register_decoder", "save_model", "load_model",
           "load_model_with_metadata", "window_tensor",
           "check_windows", "check_targets", "RidgeDecoder", "Report"]

#: progress callback of ``fit``: ``report(fraction_done, message)``; raising stops the fit
Report = Callable[[float, str], None]

#: decoder name -> class; :func:`register_decoder` fills it, :func:`save_model` and
#: :func:`load_model` use it to store and rebuild fitted decoders
DECODERS = ModelRegistry("decoder", name_attribute="decoder_name")
register_decoder = DECODERS.register


def window_tensor(features, *, history_bins: int, future_bins: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``features`` for every sample: shape ``(n_samples, n_lags, n_features)``.

    ``windows[t, j] = features[t - history_bins + j]``; rows whose window leaves the recording
    are NaN and ``valid`` is False there (see :func:`history_design_matrix`, of which this is a
    reshaped view).

    >>> w, valid = window_tensor(np.arange(8.0).reshape(4, 2), history_bins=1)
    >>> w.shape, w[1].tolist(), valid.tolist()
    ((4, 2, 2), [[0.0, 1.0], [2.0, 3.0]], [False, True, True, True])
    """
    features = np.asarray(features)
    n_features = 1 if features.ndim == 1 else (features.shape[1] if features.ndim == 2 else 0)
    X, valid = history_design_matrix(features, history_bins=history_bins, future_bins=future_bins)
    return X.reshape(X.shape[0], -1, n_features), valid


def check_windows(X, *, name: str = "X") -> np.ndarray:
    """``X`` as a finite float window tensor (n_samples, n_lags, n_features), or ValueError."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"{name} must be a window tensor of shape (n_samples, n_lags, n_features), "
                         f"got shape {X.shape}")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if 0 in X.shape:
        raise ValueError(f"{name} is empty, shape {X.shape}")
    if not np.isfinite(X).all():
        first = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name} holds NaN or infinite values (first at sample {first[0]}, lag {first[1]}, "
                         f"feature {first[2]})")
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)


def check_targets(y, *, task: str, n_samples: int | None = None) -> np.ndarray:
    """Regression targets as finite float (n, n_outputs); class labels as int (n,); or ValueError."""
    y = np.asarray(y)
    if task == "regression":
        if y.ndim == 1:
            y = y[:, np.newaxis]
        if y.ndim != 2 or y.dtype == bool or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
            raise ValueError(f"regression targets must be real numbers of shape (n_samples[, n_outputs]), "
                             f"got shape {y.shape} and dtype {y.dtype}")
        if 0 in y.shape:
            raise ValueError(f"targets are empty, shape {y.shape}")
        if not np.isfinite(y).all():
            row = int(np.argwhere(~np.isfinite(y))[0][0])
            raise ValueError(f"targets hold NaN or infinite values (first at sample {row})")
        y = y.astype(np.float64, copy=False)
    elif task == "classification":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"class labels must be 1-D (n_samples,), got shape {y.shape}")
        if y.size == 0:
            raise ValueError("class labels are empty")
        if np.issubdtype(y.dtype, np.floating):
            if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
                raise ValueError("class labels must be integers (got non-integer or NaN values)")
            y = y.astype(np.int64)
        elif not np.issubdtype(y.dtype, np.integer) and y.dtype != bool:
            raise ValueError(f"class labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64, copy=False)
    else:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but the targets have {y.shape[0]}")
    return y


class Decoder(StatefulModel, BaseEstimator):
    """Base class of every decoder: the contract is in this module's docstring.

    Subclasses set ``task`` and ``state_attributes`` (the fitted attributes, numpy arrays or
    numbers, that :meth:`get_model_state` saves) and implement ``fit`` and ``predict``; the
    default state methods suit any decoder whose fitted state is such attributes. Decoders
    holding torch modules override :meth:`get_model_state` / :meth:`from_model_state`.
    """

    #: "regression" or "classification"
    task: ClassVar[str] = "regression"
    #: set by :func:`register_decoder`
    decoder_name: ClassVar[str] = ""

    def fit(self, X, y, *, report: Report | None = None) -> "Decoder":  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, X, y) -> float:
        """Mean R² over outputs (regression) or accuracy (classification)."""
        prediction = self.predict(X)
        if self.task == "classification":
            return float(np.mean(prediction == check_targets(y, task="classification")))
        return float(np.nanmean(r2_score(check_targets(y, task="regression"), prediction)))


def save_model(decoder: Decoder, *, metadata: dict[str, Any] | None = None) -> bytes:
    """A fitted decoder as ``.npz`` bytes (see :mod:`services.common.models`).

    ``metadata`` (JSON-able) travels with the model, e.g. the window it was trained with; read
    it back with :func:`load_model_with_metadata`.
    """
    return DECODERS.save(decoder, metadata=metadata)


def load_model(data: bytes) -> Decoder:
    """The decoder saved by :func:`save_model`; ValueError if the bytes are not such a model."""
    return DECODERS.load(data)[0]


def load_model_with_metadata(data: bytes) -> tuple[Decoder, dict[str, Any]]:
    """The decoder saved by :func:`save_model` and the metadata saved with it."""
    return DECODERS.load(data)


# ------------------------------------------------------------------------------------------------
# the Wiener filter in this interface


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@register_decoder("wiener")
class RidgeDecoder(Decoder):
    """Wiener filter: ridge regression on the flattened window, ridge strength by inner blocked CV.

    Parameters
    ----------
    alphas : sequence of float, optional
        Ridge strengths on standardised features to choose from; default
        ``np.logspace(-3, 3, 13)``. With one value there is nothing to choose.
    n_inner_folds : int, default 5
        Contiguous inner folds on the training rows that choose the ridge strength; the gap
        between inner train and test rows is ``n_lags - 1``, so windows never overlap.

    Attributes
    ----------
    coef_ : ndarray, shape (n_lags * n_features, n_outputs)
    intercept_ : ndarray, shape (n_outputs,)
    alpha_ : float
        The chosen ridge strength.
    inner_r2_ : ndarray, shape (n_alphas,)
        Mean inner-fold R² of each candidate.

    Examples
    --------
    See the module docstring.
    """

    state_attributes = ("coef_", "intercept_", "alpha_", "inner_r2_", "n_lags_", "n_features_")

    def __init__(self, *, alphas=None, n_inner_folds: int = 5) -> None:
        self.alphas = alphas
        self.n_inner_folds = n_inner_folds

    def fit(self, X, y, *, report: Report | None = None) -> "RidgeDecoder":
        from .wiener import _check_alphas, _mean_r2_per_alpha, _Moments, _moments_of_rows, _nan_mean, _RidgePath

        X = check_windows(X)
        y = check_targets(y, task="regression", n_samples=X.shape[0])
        alphas = _check_alphas(self.alphas)
        n_inner = _check_count(self.n_inner_folds, "n_inner_folds", 2)
        n, n_lags, n_features = X.shape
        shift = X.reshape(n, -1).mean(axis=0, dtype=np.float64)
        z = X.reshape(n, -1).astype(np.float64) - shift
        y_shift = y.mean(axis=0)
        yc = y - y_shift
        total = _Moments.of(z, yc)
        if alphas.size == 1:
            alpha, self.inner_r2_ = float(alphas[0]), np.full(1, np.nan)
        else:
            rows = np.arange(n)
            scores = []
            for j, (train, test) in enumerate(_blocked_folds(rows, n_folds=n_inner, gap=n_lags - 1)):
                keep = np.zeros(n, dtype=bool)
                keep[train] = True
                path = _RidgePath.fit(_moments_of_rows(z, yc, total, rows, keep), standardize=True)
                scores.append(_mean_r2_per_alpha(yc[test], path.predict_many(z[test], alphas)))
                if report is not None:
                    report((j + 1) / (n_inner + 1), f"inner fold {j + 1} of {n_inner}")
            self.inner_r2_ = _nan_mean(np.array(scores), axis=0)
            if np.isnan(self.inner_r2_).all():
                alpha = float(alphas.max())
            else:  # ties go to the larger alpha, the simpler model
                descending = np.argsort(-alphas, kind="stable")
                alpha = float(alphas[descending[np.nanargmax(self.inner_r2_[descending])]])
        coef, intercept = _RidgePath.fit(total, standardize=True).coefficients(alpha)
        self.coef_ = coef
        self.intercept_ = intercept + y_shift - shift @ coef
        self.alpha_ = alpha
        self.n_lags_, self.n_features_ = n_lags, n_features
        if report is not None:
            report(1.0, f"fitted with alpha {alpha:g}")
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ValueError("RidgeDecoder is not fitted")
        X = check_windows(X)
        if X.shape[1:] != (self.n_lags_, self.n_features_):
            raise ValueError(f"X has windows of shape {X.shape[1:]}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        return X.reshape(X.shape[0], -1) @ self.coef_ + self.intercept_
