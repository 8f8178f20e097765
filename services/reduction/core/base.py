"""The one interface every dimensionality-reduction method follows.

Every method is a scikit-learn estimator (``get_params``, ``clone``) with

* ``fit(X, *, report=None)``: ``X`` is population activity, shape ``(n_samples, n_neurons)``
  (time bins, possibly of many trials stacked) for the **static** methods (PCA, factor
  analysis, VAE, t-SNE), or ``(n_trials, n_time, n_neurons)`` for the **sequential** ones
  (the dynamics model), whose class sets ``input_ndim = 3``. ``report(fraction_done,
  message)``, if given, is called by iterative methods as they go; an exception it raises
  stops the fit (this is how a cancelled RPC stops work).
* ``transform(X)``: latents, ``(n_samples, n_components)`` or ``(n_trials, n_time,
  n_components)``.
* ``reconstruct(X)`` (where the model has one): the denoised activity or firing rates that
  the model predicts from ``X``, shaped like ``X``; used for explained variance and
  forward prediction.
* ``get_model_state`` / ``from_model_state`` (from :class:`services.common.models.StatefulModel`):
  fitted models are stored with :func:`save_model` as pickle-free ``.npz`` files.

Methods register under a short name with :func:`register_reducer`; the service finds them in
:data:`REDUCERS`.

Example
-------
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(50, 4))
>>> check_activity(X).shape
(50, 4)
>>> check_activity(np.zeros((0, 4)))
Traceback (most recent call last):
...
ValueError: activity is empty, shape (0, 4)
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from services.common.models import ModelRegistry, StatefulModel

__all__ = ["Reducer", "REDUCERS", "register_reducer", "save_model", "load_model", "load_model_with_metadata",
           "check_activity", "all_finite", "Report"]

#: progress callback of ``fit``: ``report(fraction_done, message)``; raising stops the fit
Report = Callable[[float, str], None]

#: method name -> class
REDUCERS = ModelRegistry("reducer", name_attribute="reducer_name")
register_reducer = REDUCERS.register


def all_finite(X: np.ndarray) -> bool:
    """True when no value of ``X`` is NaN or infinite, in one pass and without a temporary.

    The float64 sum of finite values is finite unless it overflows (float32 data cannot: 3.4e38
    per value); only then are the values checked one by one. ``np.isfinite(X).all()`` would
    allocate a boolean array as large as ``X`` (a quarter of the data for float32).

    >>> all_finite(np.ones((3, 2))), all_finite(np.array([1.0, np.nan]))
    (True, False)
    """
    if np.isfinite(np.add.reduce(X, axis=None, dtype=np.float64)):
        return True
    return bool(np.isfinite(X).all())


def check_activity(X, *, ndim: int = 2, name: str = "activity", min_samples: int = 1) -> np.ndarray:
    """``X`` as finite floating-point activity of rank ``ndim``, or ValueError naming the problem.

    Integer counts become float64; float32 stays float32 (methods that compute in float32 keep
    the memory of their input).
    """
    X = np.asarray(X)
    shape = "(n_samples, n_neurons)" if ndim == 2 else "(n_trials, n_time, n_neurons)"
    if X.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape}, got an array of rank {X.ndim} with shape {X.shape}")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if 0 in X.shape:
        raise ValueError(f"{name} is empty, shape {X.shape}")
    if not all_finite(X):
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    n_samples = X.shape[0] if ndim == 2 else X.shape[0] * X.shape[1]
    if n_samples < min_samples:
        raise ValueError(f"{name} has {n_samples} samples, fewer than the {min_samples} this method needs")
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)


class Reducer(StatefulModel, BaseEstimator):
    """Base class of every reduction method; the contract is in this module's docstring."""

    #: 2 for (n_samples, n_neurons) input, 3 for (n_trials, n_time, n_neurons)
    input_ndim: ClassVar[int] = 2
    #: set by :func:`register_reducer`
    reducer_name: ClassVar[str] = ""

    def fit(self, X, *, report: Report | None = None) -> "Reducer":  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_transform(self, X, *, report: Report | None = None) -> np.ndarray:
        return self.fit(X, report=report).transform(X)


def save_model(reducer: Reducer, *, metadata: dict[str, Any] | None = None) -> bytes:
    """A fitted reducer as ``.npz`` bytes (see :mod:`services.common.models`)."""
    return REDUCERS.save(reducer, metadata=metadata)


def load_model(data: bytes) -> Reducer:
    """The reducer saved by :func:`save_model`; ValueError if the bytes are not such a model."""
    return REDUCERS.load(data)[0]


def load_model_with_metadata(data: bytes) -> tuple[Reducer, dict[str, Any]]:
    return REDUCERS.load(data)
