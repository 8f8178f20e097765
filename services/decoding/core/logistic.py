"""Classifying a discrete variable (condition, target, stimulus) from a window of activity.

:class:`LogisticDecoder` is multinomial (softmax) logistic regression with an L2 penalty on the
flattened, standardised window, and :func:`accuracy_score`, :func:`balanced_accuracy` and
:func:`confusion_matrix` score its predictions.

The model
---------
Features are centred and scaled to unit variance on the training data (constant features are
left unscaled, and get weight 0 as the penalty leaves nothing to fit them with). For ``K > 2``
classes ``p(y = c | x) = softmax(x W^T + b)_c``; for two classes the single logit
``x w + b`` of the second class, ``p = 1 / (1 + exp(-(x w + b)))``. The weights minimise the
negative log-likelihood plus ``||W||^2 / (2 C)`` (scikit-learn's ``LogisticRegression``, L-BFGS);
the fitted arrays, not the scikit-learn object, are the decoder's state, so a saved model
is plain arrays.

Example
-------
>>> rng = np.random.default_rng(0)
>>> labels = rng.choice([3, 7, 9], size=600)
>>> means = {3: [2.0, 0.0], 7: [0.0, 2.0], 9: [-2.0, -2.0]}
>>> x = np.array([means[c] for c in labels]) + rng.normal(size=(600, 2))
>>> X = x[:, np.newaxis, :]                        # windows with history_bins=0
>>> model = LogisticDecoder().fit(X[:400], labels[:400])
>>> model.classes_.tolist(), model.predict_proba(X[400:]).shape
([3, 7, 9], (200, 3))
>>> accuracy_score(labels[400:], model.predict(X[400:])) > 0.9
True
>>> confusion_matrix([3, 3, 7, 9], [3, 7, 7, 9], classes=[3, 7, 9])
array([[1, 1, 0],
       [0, 1, 0],
       [0, 0, 1]])
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .base import Decoder, Report, check_targets, check_windows, register_decoder

__all__ = ["LogisticDecoder", "accuracy_score", "balanced_accuracy", "confusion_matrix"]


def _labels(y, name: str) -> np.ndarray:
    try:
        return check_targets(y, task="classification")
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _label_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    return y_true, y_pred


def accuracy_score(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true one.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_samples,)
        Class labels, same length, not empty.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Non-integer or empty labels, or different lengths.

    Examples
    --------
    >>> accuracy_score([1, 2, 2, 3], [1, 2, 3, 3])
    0.75
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, classes=None) -> np.ndarray:
    """Counts of (true, predicted) label pairs: rows are true classes, columns predicted ones.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_samples,)
        Class labels, same length, not empty.
    classes : array_like of int, optional
        The classes, in the order of the rows and columns; distinct. Default: the sorted union
        of the labels in ``y_true`` and ``y_pred``.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        ``matrix[i, j]`` counts samples of true class ``classes[i]`` predicted as ``classes[j]``;
        it sums to ``n_samples``.

    Raises
    ------
    ValueError
        Bad labels (as for :func:`accuracy_score`); ``classes`` with repeats, or missing a
        label that occurs.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    array([[1, 1],
           [1, 2]])
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    if classes is None:
        classes = np.union1d(y_true, y_pred)
    else:
        classes = _labels(classes, "classes")
        if np.unique(classes).size != classes.size:
            raise ValueError(f"classes must be distinct, got {classes.tolist()}")
        unknown = np.setdiff1d(np.union1d(y_true, y_pred), classes)
        if unknown.size:
            raise ValueError(f"labels {unknown.tolist()} occur but are not in classes {classes.tolist()}")
    order = np.argsort(classes, kind="stable")
    # position of every label in `classes`, by binary search in the sorted classes
    true_index = order[np.searchsorted(classes[order], y_true)]
    pred_index = order[np.searchsorted(classes[order], y_pred)]
    k = classes.size
    return np.bincount(true_index * k + pred_index, minlength=k * k).reshape(k, k).astype(np.int64)


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean over the classes present in ``y_true`` of the fraction of their samples predicted right.

    Chance level is ``1 / n_classes`` whatever the class frequencies, unlike plain accuracy,
    which a classifier can raise by always predicting the most frequent class.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0])   # plain accuracy would be 0.75
    0.5
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


@register_decoder("logistic")
class LogisticDecoder(Decoder):
    """Multinomial logistic regression with an L2 penalty on the flattened, standardised window.

    See the module docstring for the model.

    Parameters
    ----------
    C : float, default 1.0
        Inverse penalty strength, > 0: the penalty is ``||W||^2 / (2 C)`` on standardised
        features, added to the summed (not averaged) negative log-likelihood.
    max_iter : int, default 1000
        Iterations of L-BFGS, >= 1. If they run out, a ``ConvergenceWarning`` says so.
    tol : float, default 1e-6
        Convergence tolerance of L-BFGS, > 0.

    Attributes
    ----------
    classes_ : ndarray of int64, shape (n_classes,)
        The labels seen in training, sorted.
    coef_ : ndarray, shape (n_classes, n_lags * n_features), or (1, ...) for two classes
        Weights on the standardised features.
    intercept_ : ndarray, shape (n_classes,), or (1,) for two classes
    mean_, scale_ : ndarray, shape (n_lags * n_features,)
        Training mean and standard deviation of each feature (scale 1 where constant).
    n_lags_, n_features_ : int

    Examples
    --------
    See the module docstring.
    """

    task = "classification"
    state_attributes = ("coef_", "intercept_", "classes_", "mean_", "scale_", "n_lags_", "n_features_")

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-6) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self) -> tuple[float, int, float]:
        for name in ("C", "tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        return float(self.C), int(self.max_iter), float(self.tol)

    def fit(self, X, y, *, report: Report | None = None) -> "LogisticDecoder":
        """Fit on windows ``X`` (n_samples, n_lags, n_features) and integer labels ``y`` (n_samples,)."""
        C, max_iter, tol = self._check_params()
        X = check_windows(X)
        y = check_targets(y, task="classification", n_samples=X.shape[0])
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"LogisticDecoder needs at least two classes, the labels are all {classes[0]}")
        n, n_lags, n_features = X.shape
        flat = X.reshape(n, -1).astype(np.float64)
        mean = flat.mean(axis=0)
        scale = flat.std(axis=0)
        # a constant feature stays unscaled (it is 0 after centring) instead of dividing by ~0
        scale[scale <= 1e-12 * np.maximum(np.abs(mean), 1.0)] = 1.0
        model = LogisticRegression(C=C, max_iter=max_iter, tol=tol, solver="lbfgs")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit((flat - mean) / scale, y)
        for warning in caught:   # re-issue as ours, so the caller sees what to change
            if issubclass(warning.category, ConvergenceWarning):
                warnings.warn(f"LogisticDecoder did not converge in max_iter={max_iter} iterations; "
                              f"raise max_iter or lower C", ConvergenceWarning, stacklevel=2)
        self.coef_ = model.coef_.astype(np.float64)
        self.intercept_ = model.intercept_.astype(np.float64)
        self.classes_ = model.classes_.astype(np.int64)
        self.mean_, self.scale_ = mean, scale
        self.n_lags_, self.n_features_ = n_lags, n_features
        if report is not None:
            report(1.0, f"fitted {classes.size} classes in {int(np.max(model.n_iter_))} iterations")
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits: (n_samples, n_classes), or (n_samples,) (of the second class) for two classes."""
        if not hasattr(self, "coef_"):
            raise ValueError("LogisticDecoder is not fitted")
        X = check_windows(X)
        if X.shape[1:] != (self.n_lags_, self.n_features_):
            raise ValueError(f"X has windows of shape {X.shape[1:]}, the decoder was fitted on "
                             f"{(self.n_lags_, self.n_features_)} (n_lags, n_features)")
        z = (X.reshape(X.shape[0], -1).astype(np.float64) - self.mean_) / self.scale_
        logits = z @ self.coef_.T + self.intercept_
        return logits[:, 0] if self.coef_.shape[0] == 1 else logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        logits = self.decision_function(X)
        if logits.ndim == 1:
            # two classes: sigmoid, written to avoid exp overflow for large |logit|
            second = np.exp(-np.logaddexp(0.0, -logits))
            return np.column_stack([1.0 - second, second])
        shifted = logits - logits.max(axis=1, keepdims=True)   # softmax without overflow
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable label of every sample, from ``classes_``: shape (n_samples,)."""
        logits = self.decision_function(X)
        index = (logits > 0).astype(np.intp) if logits.ndim == 1 else np.argmax(logits, axis=1)
        return self.classes_[index]
