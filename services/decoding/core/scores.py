"""Goodness of fit of decoded signals, one value per output (column).

All three scores take ``y_true`` and ``y_pred`` of the same shape, ``(n_samples,)`` or
``(n_samples, n_outputs)``, and return a float64 array of shape ``(n_outputs,)`` (``(1,)`` for
1-D input), so a caller never has to special-case the number of outputs.

Constant columns are reported, not hidden: where every value of a ``y_true`` column is equal,
R² is undefined (its denominator SST is 0) and comes back as NaN; Pearson's r is NaN where
either column is constant. scikit-learn instead returns R² = 1.0 for a perfect and 0.0 for an
imperfect prediction of a constant target, which reads like a real score.

Example
-------
>>> import numpy as np
>>> y = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
>>> r2_score(y, y + [[0.1, 0.0]])
array([0.985,   nan])
>>> rmse(y, y + [[0.1, 0.0]])
array([0.1, 0. ])
"""

from __future__ import annotations

import numpy as np

__all__ = ["r2_score", "pearson_r", "rmse"]


def _as_columns(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of score inputs and return them as 2-D float64 arrays."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D (n_samples[, n_outputs]), got shape {y.shape}")
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or np.iscomplexobj(y):
            raise ValueError(f"{name} must hold real numbers, got dtype {y.dtype}")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty (0 samples)")
    y_true = y_true.astype(np.float64, copy=False).reshape(y_true.shape[0], -1)
    y_pred = y_pred.astype(np.float64, copy=False).reshape(y_pred.shape[0], -1)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isfinite(y).all():
            row, col = np.argwhere(~np.isfinite(y))[0]
            raise ValueError(f"{name} holds NaN or infinite values (first at sample {row}, output {col})")
    return y_true, y_pred


def r2_score(y_true, y_pred) -> np.ndarray:
    """Coefficient of determination per output, ``1 - SSE / SST``.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n_samples,) or (n_samples, n_outputs)
        Measured and predicted values; finite, same shape, at least one sample.

    Returns
    -------
    r2 : ndarray of float64, shape (n_outputs,)
        ``1 - sum((y_true - y_pred)**2) / sum((y_true - mean(y_true))**2)`` per column. It is 1 for
        a perfect prediction, 0 for predicting the mean, and negative (unbounded) for worse.
        NaN for a column of ``y_true`` whose values are all equal (SST = 0: undefined).

    Raises
    ------
    ValueError
        Shapes differ or are not 1-D/2-D, no samples, NaN or infinite values.

    Examples
    --------
    >>> r2_score([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    array([0.8])
    >>> r2_score([2.0, 2.0], [2.0, 2.0])   # constant target: undefined
    array([nan])
    """
    y_true, y_pred = _as_columns(y_true, y_pred)
    sse = np.sum((y_true - y_pred) ** 2, axis=0)
    sst = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    constant = np.ptp(y_true, axis=0) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    r2[constant] = np.nan
    return r2


def pearson_r(y_true, y_pred) -> np.ndarray:
    """Pearson correlation coefficient per output.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n_samples,) or (n_samples, n_outputs)
        Finite, same shape, at least one sample.

    Returns
    -------
    r : ndarray of float64, shape (n_outputs,)
        Correlation in [-1, 1] per column; NaN where either column is constant (this includes a
        single sample).

    Raises
    ------
    ValueError
        Shapes differ or are not 1-D/2-D, no samples, NaN or infinite values.

    Examples
    --------
    >>> pearson_r([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]).round(4)
    array([0.9934])
    """
    y_true, y_pred = _as_columns(y_true, y_pred)
    a = y_true - y_true.mean(axis=0)
    b = y_pred - y_pred.mean(axis=0)
    constant = (np.ptp(y_true, axis=0) == 0) | (np.ptp(y_pred, axis=0) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # scale each column by its largest magnitude first, so squares cannot overflow
        a = a / np.abs(a).max(axis=0)
        b = b / np.abs(b).max(axis=0)
        r = np.sum(a * b, axis=0) / np.sqrt(np.sum(a * a, axis=0) * np.sum(b * b, axis=0))
    r[constant] = np.nan
    return np.clip(r, -1.0, 1.0)


def rmse(y_true, y_pred) -> np.ndarray:
    """Root-mean-square error per output, in the units of the targets.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n_samples,) or (n_samples, n_outputs)
        Finite, same shape, at least one sample.

    Returns
    -------
    rmse : ndarray of float64, shape (n_outputs,)
        ``sqrt(mean((y_true - y_pred)**2))`` per column.

    Raises
    ------
    ValueError
        Shapes differ or are not 1-D/2-D, no samples, NaN or infinite values.

    Examples
    --------
    >>> rmse([0.0, 0.0], [3.0, -3.0])
    array([3.])
    """
    y_true, y_pred = _as_columns(y_true, y_pred)
    return np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))
