"""Preparing population activity for reduction: smoothing, normalisation, trial averaging, reshaping.

Activity is ``(n_samples, n_neurons)`` (time bins, rows) or ``(n_trials, n_time, n_neurons)``
(trials of equal length). The static reducers (PCA, factor analysis) take the 2-D form;
:func:`stack_trials` and :func:`unstack_trials` go between the two without copying.

Example
-------
>>> X = np.zeros((2, 5, 1)); X[0, 2, 0] = 1.0          # one spike in the middle of trial 0
>>> smooth = gaussian_smooth(X, sigma_bins=0.5)
>>> smooth[:, :, 0].round(3)
array([[0.   , 0.106, 0.787, 0.106, 0.   ],
       [0.   , 0.   , 0.   , 0.   , 0.   ]])
>>> stack_trials(X).shape, unstack_trials(stack_trials(X), n_trials=2).shape
((10, 1), (2, 5, 1))
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["gaussian_smooth", "gaussian_kernel", "soft_normalize", "trial_average", "stack_trials",
           "unstack_trials"]

#: the kernel is cut where it has fallen below exp(-8) ~ 3e-4 of its peak, as scipy.ndimage does
TRUNCATE_SIGMAS = 4.0

# np.pad modes by the name this module (and scipy.ndimage) gives the edge handling
_PAD_MODES = {"reflect": "symmetric", "constant": "constant", "nearest": "edge"}


def _check_real(X, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {wanted}, got an array of rank {X.ndim} with shape {X.shape}")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if 0 in X.shape:
        raise ValueError(f"{name} is empty, shape {X.shape}")
    if not np.isfinite(X).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    return X


def gaussian_kernel(sigma_bins: float) -> np.ndarray:
    """The normalised Gaussian kernel of standard deviation ``sigma_bins``, truncated at 4 sigma.

    ``w[k] ∝ exp(-(k - r)**2 / (2 sigma**2))`` for ``k = 0 .. 2r`` with radius
    ``r = int(4 sigma + 0.5)``, scaled to sum to 1 (the kernel of ``scipy.ndimage.gaussian_filter1d``).

    >>> w = gaussian_kernel(1.0)
    >>> w.size, float(w.sum()), w[3:6].round(4).tolist()
    (9, 1.0, [0.242, 0.3989, 0.242])
    """
    if isinstance(sigma_bins, bool) or not isinstance(sigma_bins, numbers.Real) or not np.isfinite(sigma_bins) \
            or sigma_bins <= 0:
        raise ValueError(f"sigma_bins must be a positive finite number, got {sigma_bins!r}")
    radius = int(TRUNCATE_SIGMAS * float(sigma_bins) + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / float(sigma_bins)) ** 2)
    return w / w.sum()


def gaussian_smooth(X, *, sigma_bins: float, axis: int | None = None, mode: str = "reflect") -> np.ndarray:
    """Activity smoothed along time by a Gaussian kernel (acausal, truncated at 4 sigma).

    Parameters
    ----------
    X : array_like, shape (n_time,), (n_time, n_neurons) or (n_trials, n_time, n_neurons)
        Activity (counts or rates), finite.
    sigma_bins : float
        Standard deviation of the kernel in bins (for 20 ms bins, ``sigma_bins=2.5`` is 50 ms).
        0 returns the activity unchanged (as floating point).
    axis : int, optional
        The time axis of 1-D or 2-D input, default 0. 3-D input is always smoothed along axis 1,
        separately within each trial, so no activity leaks from one trial into the next; passing
        another axis for it is an error.
    mode : {"reflect", "constant", "nearest"}
        How the signal is extended past its two ends, with scipy.ndimage's meaning: "reflect"
        mirrors it (``d c b a | a b c d | d c b a``; the default, which keeps the level of a rate
        near the edges), "constant" pads zeros (mass leaves through the edges), "nearest" repeats
        the end values.

    Returns
    -------
    smoothed : ndarray, shape of ``X``
        float64, or float32 for float32 input (computed in float64 either way). Away from the
        edges (more than 4 sigma) the kernel sums to one, so the total activity (spike mass) is
        preserved; "reflect" also preserves it overall.

    Raises
    ------
    ValueError
        Wrong rank, empty, non-finite or non-numeric activity; bad ``sigma_bins``, ``axis`` or ``mode``.

    Examples
    --------
    >>> x = np.zeros(9); x[4] = 1.0
    >>> s = gaussian_smooth(x, sigma_bins=1.0)
    >>> float(s.sum()), int(s.argmax())
    (1.0, 4)
    """
    X = _check_real(X, "activity", (1, 2, 3))
    if mode not in _PAD_MODES:
        raise ValueError(f"mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    if X.ndim == 3:
        if axis not in (None, 1, -2):
            raise ValueError(f"(n_trials, n_time, n_neurons) activity is smoothed along time (axis 1), got axis={axis}")
        time_axis = 1
    else:
        time_axis = 0 if axis is None else axis
        if isinstance(time_axis, bool) or not isinstance(time_axis, numbers.Integral) \
                or not -X.ndim <= time_axis < X.ndim:
            raise ValueError(f"axis {axis!r} is out of range for activity of shape {X.shape}")
        time_axis = int(time_axis) % X.ndim
    out_dtype = np.float32 if X.dtype == np.float32 else np.float64
    if isinstance(sigma_bins, numbers.Real) and not isinstance(sigma_bins, bool) and sigma_bins == 0:
        return X.astype(out_dtype, copy=True)
    w = gaussian_kernel(sigma_bins)
    radius = (w.size - 1) // 2
    n_time = X.shape[time_axis]
    pad = [(0, 0)] * X.ndim
    pad[time_axis] = (radius, radius)
    # padding only the time axis keeps trials apart: trial i's padding is made from trial i alone
    padded = np.pad(X.astype(np.float64, copy=False), pad, mode=_PAD_MODES[mode])
    out = np.zeros(X.shape, dtype=np.float64)
    # a direct sum over the taps: exact (no FFT round-off, so zeros stay zeros and rates stay
    # non-negative) and cheap for the kernels used on binned spikes (tens of taps)
    index = [slice(None)] * X.ndim
    for k, weight in enumerate(w):
        index[time_axis] = slice(k, k + n_time)
        out += weight * padded[tuple(index)]
    return out.astype(out_dtype, copy=False)


def soft_normalize(X, *, soft: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Each neuron divided by its response range plus a soft constant (Churchland et al. 2012).

    ``scale[j] = (max_t X[t, j] - min_t X[t, j]) + soft``, the range taken over all samples
    (every time bin of every trial, or of every condition for trial-averaged input), and
    ``normalized = X / scale``. Strongly modulated neurons end with a range near 1, while weak
    ones (range well below ``soft``) are shrunk rather than amplified, so a few low-rate noisy
    neurons cannot dominate a PCA. ``soft`` is in the data's units: Churchland et al. used
    5 spikes/s on firing rates in spikes/s; for counts per bin, scale it by the bin width.
    The mean is not removed (PCA centres the data itself).

    Parameters
    ----------
    X : array_like, shape (n_samples, n_neurons) or (n_trials, n_time, n_neurons)
        Activity, finite.
    soft : float
        Non-negative soft-normalisation constant, default 5.0. 0 gives plain range normalisation,
        which needs every neuron to vary.

    Returns
    -------
    normalized : ndarray of float64, shape of ``X``
    scale : ndarray of float64, shape (n_neurons,)
        The divisor per neuron; store it and apply ``X_new / scale`` to normalise new data the same way.

    Raises
    ------
    ValueError
        Bad activity, negative or non-finite ``soft``, or ``soft = 0`` with a constant neuron
        (its scale would be 0).

    Examples
    --------
    >>> rates = np.array([[0.0, 10.0], [20.0, 11.0], [10.0, 12.0]])   # spikes/s
    >>> normalized, scale = soft_normalize(rates, soft=5.0)
    >>> scale
    array([25.,  7.])
    >>> normalized.round(3)
    array([[0.   , 1.429],
           [0.8  , 1.571],
           [0.4  , 1.714]])
    """
    X = _check_real(X, "activity", (2, 3))
    if isinstance(soft, bool) or not isinstance(soft, numbers.Real) or not np.isfinite(soft) or soft < 0:
        raise ValueError(f"soft must be a non-negative finite number, got {soft!r}")
    flat = X.reshape(-1, X.shape[-1]).astype(np.float64, copy=False)
    scale = (flat.max(axis=0) - flat.min(axis=0)) + float(soft)
    if np.any(scale == 0):
        raise ValueError(f"neuron {int(np.argmax(scale == 0))} is constant and soft=0: its scale would be 0")
    return X.astype(np.float64, copy=False) / scale, scale


def trial_average(X, conditions) -> tuple[np.ndarray, np.ndarray]:
    """Peri-stimulus time histograms: the mean over the trials of each condition.

    Parameters
    ----------
    X : array_like, shape (n_trials, n_time, n_neurons)
        Activity per trial, aligned to the same event and of equal length.
    conditions : array_like, shape (n_trials,)
        Condition label of each trial (integers, strings, ...).

    Returns
    -------
    psth : ndarray of float64, shape (n_conditions, n_time, n_neurons)
        ``psth[c]`` is the mean of ``X`` over the trials whose label is ``labels[c]``.
    labels : ndarray, shape (n_conditions,)
        The distinct labels, sorted (``np.unique``).

    Raises
    ------
    ValueError
        ``X`` not 3-D or not finite, ``conditions`` not one label per trial.

    Examples
    --------
    >>> X = np.arange(8.0).reshape(4, 2, 1)          # 4 trials, 2 bins, 1 neuron
    >>> psth, labels = trial_average(X, ["b", "a", "b", "a"])
    >>> labels.tolist(), psth[:, :, 0].tolist()
    (['a', 'b'], [[4.0, 5.0], [2.0, 3.0]])
    """
    X = _check_real(X, "activity", (3,))
    conditions = np.asarray(conditions)
    if conditions.shape != (X.shape[0],):
        raise ValueError(f"conditions must have one label per trial, shape ({X.shape[0]},), "
                         f"got shape {conditions.shape}")
    labels, index = np.unique(conditions, return_inverse=True)
    counts = np.bincount(index, minlength=labels.size).astype(np.float64)
    sums = np.zeros((labels.size,) + X.shape[1:], dtype=np.float64)
    np.add.at(sums, index, X.astype(np.float64, copy=False))
    return sums / counts[:, None, None], labels


def stack_trials(X) -> np.ndarray:
    """Trials × time × neurons as rows × neurons: row ``trial * n_time + t`` is ``X[trial, t]``.

    A view when ``X`` is C-contiguous. Inverse: :func:`unstack_trials`.

    >>> stack_trials(np.arange(12).reshape(2, 3, 2))[:, 0].tolist()
    [0, 2, 4, 6, 8, 10]
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"trials must have shape (n_trials, n_time, n_neurons), got an array of rank {X.ndim} "
                         f"with shape {X.shape}")
    return X.reshape(X.shape[0] * X.shape[1], X.shape[2])


def unstack_trials(X, *, n_trials: int | None = None, n_time: int | None = None) -> np.ndarray:
    """Rows × columns back to trials × time × columns; give ``n_trials`` or ``n_time`` (or both).

    The inverse of :func:`stack_trials`; it also reshapes latents, ``(n_trials * n_time,
    n_components)``, into trials.

    >>> Z = np.arange(12).reshape(6, 2)
    >>> unstack_trials(Z, n_time=3).shape, unstack_trials(Z, n_trials=3).shape
    ((2, 3, 2), (3, 2, 2))
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"stacked activity must have shape (n_trials * n_time, n_columns), got an array of rank "
                         f"{X.ndim} with shape {X.shape}")
    n_rows = X.shape[0]
    for name, value in (("n_trials", n_trials), ("n_time", n_time)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_trials is None and n_time is None:
        raise ValueError("give n_trials or n_time")
    if n_trials is None:
        n_trials = n_rows // n_time if n_rows % n_time == 0 else -1
    if n_time is None:
        n_time = n_rows // n_trials if n_rows % n_trials == 0 else -1
    if n_trials < 1 or n_time < 1 or n_trials * n_time != n_rows:
        raise ValueError(f"{n_rows} rows cannot be split into n_trials={n_trials if n_trials > 0 else '?'} "
                         f"trials of n_time={n_time if n_time > 0 else '?'} bins")
    return X.reshape(int(n_trials), int(n_time), X.shape[1])
