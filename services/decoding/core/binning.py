"""Spike trains to a (time bin x unit) count matrix.

Bins are half-open, ``[start_s + k * bin_width_s, start_s + (k + 1) * bin_width_s)``, for
``k = 0 .. n_bins - 1``. Only whole bins are kept: ``n_bins = floor((stop_s - start_s) /
bin_width_s)``, so a partial last bin is dropped and spikes after the last whole bin are ignored.

Decimal times are rarely exact in binary floating point: ``0.3 / 0.1`` is ``2.9999999999999996``.
Bin edges and ``n_bins`` are therefore computed with a tolerance of a few units in the last place
of the largest time involved (about 1e-13 s for a five-minute recording): a spike that lies on an
edge as written in decimal falls in the bin that starts there, and ``stop_s = 0.3`` with
``bin_width_s = 0.1`` gives three bins, not two. The tolerance is orders of magnitude below any
acquisition system's sampling period, so it never moves a spike that is really inside a bin.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["bin_spike_trains"]

# tolerance of the bin arithmetic, in units of the float64 machine epsilon times the largest time
# magnitude (see the module docstring); large enough for the rounding of (t - start) / width
_EDGE_ULPS = 16


def _check_time(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _bin_tolerance(start_s: float, stop_s: float, bin_width_s: float) -> float:
    """Tolerance, in bins, of ``(t - start_s) / bin_width_s`` for times within the window."""
    scale = max(abs(start_s), abs(stop_s)) / bin_width_s + 1.0
    return _EDGE_ULPS * np.finfo(np.float64).eps * scale


def count_bins(*, bin_width_s: float, start_s: float, stop_s: float) -> int:
    """Number of whole bins of ``bin_width_s`` in ``[start_s, stop_s)``, tolerant of rounding.

    Parameters
    ----------
    bin_width_s : float
        Bin width in seconds, finite and > 0.
    start_s, stop_s : float
        Window in seconds, finite.

    Returns
    -------
    n_bins : int
        ``floor((stop_s - start_s) / bin_width_s)``, with the rounding of decimal times forgiven;
        0 when the window is shorter than one bin or empty.

    Raises
    ------
    ValueError
        A non-finite value or ``bin_width_s <= 0``.

    Examples
    --------
    >>> count_bins(bin_width_s=0.1, start_s=0.0, stop_s=0.3)
    3
    >>> count_bins(bin_width_s=0.05, start_s=0.0, stop_s=1.01)
    20
    """
    bin_width_s = _check_time(bin_width_s, "bin_width_s")
    start_s = _check_time(start_s, "start_s")
    stop_s = _check_time(stop_s, "stop_s")
    if bin_width_s <= 0:
        raise ValueError(f"bin_width_s must be > 0, got {bin_width_s}")
    if stop_s <= start_s:
        return 0
    exact = (stop_s - start_s) / bin_width_s
    return int(np.floor(exact + _bin_tolerance(start_s, stop_s, bin_width_s)))


def _unit_ids_as_int(unit_ids: np.ndarray) -> np.ndarray:
    """Unit ids as int64; integral floats (ids that went through float storage) are accepted."""
    if unit_ids.dtype == bool or not np.issubdtype(unit_ids.dtype, np.number) or np.iscomplexobj(unit_ids):
        raise ValueError(f"unit_ids must be non-negative integers, got dtype {unit_ids.dtype}")
    if np.issubdtype(unit_ids.dtype, np.integer):
        if unit_ids.size and np.issubdtype(unit_ids.dtype, np.unsignedinteger) \
                and unit_ids.max() > np.iinfo(np.int64).max:
            raise ValueError(f"unit id {unit_ids.max()} is too large")
        ids = unit_ids.astype(np.int64, copy=False)
    else:
        bad = ~np.isfinite(unit_ids) | (unit_ids != np.round(unit_ids))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"unit_ids must be integers, got {unit_ids[i]} at index {i}")
        if unit_ids.size and np.abs(unit_ids).max() > 2.0**53:
            raise ValueError("unit ids above 2**53 are not exactly representable as floats")
        ids = unit_ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        i = int(np.argmin(ids))
        raise ValueError(f"unit_ids must be >= 0, got {ids[i]} at index {i}")
    return ids


def bin_spike_trains(spike_times, unit_ids, *, bin_width_s: float, start_s: float, stop_s: float,
                     n_units: int | None = None) -> np.ndarray:
    """Count the spikes of each unit in consecutive time bins.

    Parameters
    ----------
    spike_times : array_like of float, shape (n_spikes,)
        Spike times in seconds, finite, in any order.
    unit_ids : array_like of int, shape (n_spikes,)
        Unit of each spike, integers >= 0 (integral floats are accepted).
    bin_width_s : float
        Bin width in seconds, > 0.
    start_s, stop_s : float
        The window: the first bin starts at ``start_s``; only whole bins up to ``stop_s`` are made
        (``n_bins = floor((stop_s - start_s) / bin_width_s)``, tolerant of decimal rounding, see
        the module docstring). Spikes outside ``[start_s, start_s + n_bins * bin_width_s)`` are
        ignored.
    n_units : int, optional
        Number of columns, one per unit id ``0 .. n_units - 1``; ids without spikes give zero
        columns. By default the largest id + 1 (0 when there are no spikes at all).

    Returns
    -------
    counts : ndarray of float32, shape (n_bins, n_units)
        ``counts[k, u]`` is the number of spikes of unit ``u`` in bin ``k``. float32 holds counts
        exactly up to 2**24 per bin and feeds the decoders without a conversion.

    Raises
    ------
    ValueError
        ``spike_times`` and ``unit_ids`` are not 1-D or differ in length; a time is NaN or
        infinite; an id is negative or not an integer; ``n_units`` is smaller than an id present;
        ``bin_width_s <= 0``; the window holds no whole bin.

    Notes
    -----
    Runs in O(n_spikes + n_bins * n_units) with one ``np.bincount`` over the flattened
    (bin, unit) index; memory peaks at about 12 bytes per output cell.

    Examples
    --------
    >>> times = np.array([0.01, 0.02, 0.12, 0.25, 0.31])
    >>> units = np.array([0, 1, 1, 0, 1])
    >>> bin_spike_trains(times, units, bin_width_s=0.1, start_s=0.0, stop_s=0.3)
    array([[1., 1.],
           [0., 1.],
           [1., 0.]], dtype=float32)
    """
    spike_times = np.asarray(spike_times)
    unit_ids = np.asarray(unit_ids)
    if spike_times.ndim != 1 or unit_ids.ndim != 1:
        raise ValueError(f"spike_times and unit_ids must be 1-D, got shapes {spike_times.shape} "
                         f"and {unit_ids.shape}")
    if spike_times.shape != unit_ids.shape:
        raise ValueError(f"spike_times and unit_ids must have the same length, got {spike_times.shape[0]} "
                         f"and {unit_ids.shape[0]}")
    if spike_times.dtype == bool or not np.issubdtype(spike_times.dtype, np.number) \
            or np.iscomplexobj(spike_times):
        raise ValueError(f"spike_times must be real numbers, got dtype {spike_times.dtype}")
    times = spike_times.astype(np.float64, copy=False)
    if not np.isfinite(times).all():
        i = int(np.flatnonzero(~np.isfinite(times))[0])
        raise ValueError(f"spike_times must be finite, got {times[i]} at index {i}")
    ids = _unit_ids_as_int(unit_ids)

    n_bins = count_bins(bin_width_s=bin_width_s, start_s=start_s, stop_s=stop_s)
    bin_width_s, start_s, stop_s = float(bin_width_s), float(start_s), float(stop_s)
    if n_bins == 0:
        raise ValueError(f"the window [start_s={start_s}, stop_s={stop_s}) holds no whole bin of "
                         f"bin_width_s={bin_width_s}")

    max_id = int(ids.max()) if ids.size else -1
    if n_units is None:
        n_units = max_id + 1
    else:
        if isinstance(n_units, bool) or not isinstance(n_units, numbers.Integral) or n_units < 0:
            raise ValueError(f"n_units must be an integer >= 0 or None, got {n_units!r}")
        n_units = int(n_units)
        if max_id >= n_units:
            raise ValueError(f"n_units={n_units} is smaller than the largest unit id + 1 ({max_id + 1})")

    # bin index of every spike; the tolerance puts a spike on a decimal edge into the bin it opens
    position = (times - start_s) / bin_width_s
    position += _bin_tolerance(start_s, stop_s, bin_width_s)
    np.floor(position, out=position)
    inside = (position >= 0) & (position < n_bins)
    flat = position[inside].astype(np.int64)
    flat *= n_units
    flat += ids[inside]
    counts = np.bincount(flat, minlength=n_bins * n_units)
    return counts.astype(np.float32).reshape(n_bins, n_units)
