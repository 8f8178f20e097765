"""Lagged (history window) design matrices for linear decoders.

A decoder of the target at time bin ``t`` sees the features of bins ``t - history_bins .. t +
future_bins``. Near the edges of the recording that window runs off the data; those samples are
marked invalid instead of being padded with zeros, which would pretend the neurons were silent.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["history_design_matrix"]


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def history_design_matrix(features, *, history_bins: int, future_bins: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack lagged copies of the features into one row per time bin.

    Parameters
    ----------
    features : array_like, shape (n_samples,) or (n_samples, n_features)
        Time along the first axis (e.g. binned spike counts); finite. 1-D means one feature.
    history_bins : int
        Past bins in the window, >= 0 (the current bin is always included).
    future_bins : int, default 0
        Future bins in the window, >= 0 (0 for a causal decoder).

    Returns
    -------
    X : ndarray, shape (n_samples, n_lags * n_features)
        ``n_lags = history_bins + 1 + future_bins``. Columns are grouped by lag, oldest first:
        ``X[t, j * n_features + f] = features[t - history_bins + j, f]``. Rows whose window does not
        fit in the recording are NaN. Floating features keep their dtype (float32 counts stay
        float32); others become float64.
    valid : ndarray of bool, shape (n_samples,)
        True where the whole window lies inside the recording, i.e. for
        ``history_bins <= t < n_samples - future_bins``.

    Raises
    ------
    ValueError
        ``features`` is not 1-D/2-D, is empty, holds NaN or infinite values; a bin count is
        negative or not an integer; the window is longer than the recording.

    Notes
    -----
    The valid rows are written with one copy from a strided view of ``features``
    (``sliding_window_view``), so the only allocation is the result itself.

    Examples
    --------
    >>> f = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0]])
    >>> X, valid = history_design_matrix(f, history_bins=1)
    >>> X
    array([[nan, nan, nan, nan],
           [ 0., 10.,  1., 11.],
           [ 1., 11.,  2., 12.],
           [ 2., 12.,  3., 13.]])
    >>> valid
    array([False,  True,  True,  True])
    """
    features = np.asarray(features)
    if features.ndim == 1:
        features = features[:, np.newaxis]
    if features.ndim != 2:
        raise ValueError(f"features must be 1-D or 2-D (n_samples[, n_features]), got shape {features.shape}")
    if features.dtype == bool or not np.issubdtype(features.dtype, np.number) or np.iscomplexobj(features):
        raise ValueError(f"features must hold real numbers, got dtype {features.dtype}")
    n_samples, n_features = features.shape
    if n_samples == 0 or n_features == 0:
        raise ValueError(f"features are empty, shape {features.shape}")
    if not np.isfinite(features).all():
        row, col = np.argwhere(~np.isfinite(features))[0]
        raise ValueError(f"features hold NaN or infinite values (first at sample {row}, feature {col})")
    history_bins = _check_count(history_bins, "history_bins")
    future_bins = _check_count(future_bins, "future_bins")
    n_lags = history_bins + 1 + future_bins
    if n_lags > n_samples:
        raise ValueError(f"the window of {n_lags} bins (history_bins={history_bins} + 1 + "
                         f"future_bins={future_bins}) is longer than the recording ({n_samples} samples)")

    dtype = features.dtype if np.issubdtype(features.dtype, np.floating) else np.float64
    X = np.empty((n_samples, n_lags * n_features), dtype=dtype)
    X[:history_bins] = np.nan
    X[n_samples - future_bins:] = np.nan
    # windows[i, f, j] = features[i + j, f]: the window of sample t = i + history_bins
    windows = sliding_window_view(features, n_lags, axis=0)
    valid_rows = X[history_bins:n_samples - future_bins].reshape(-1, n_lags, n_features)
    valid_rows[...] = windows.transpose(0, 2, 1)
    valid = np.zeros(n_samples, dtype=bool)
    valid[history_bins:n_samples - future_bins] = True
    return X, valid
