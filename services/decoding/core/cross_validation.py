"""Blocked K-fold splits for time series.

Neighbouring time bins are not independent: a history window spans several bins, and behaviour is
smooth. Shuffled K-fold would put almost-copies of every test sample into the training set and
report an optimistic score. Blocked K-fold tests on contiguous blocks and drops ``gap`` samples on
each side of a test block from the training set, so no training sample's window overlaps a test
sample's window when ``gap >= history_bins + future_bins``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["blocked_kfold"]


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def blocked_kfold(n_samples: int, *, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``range(n_samples)`` into contiguous test blocks with a guard gap around each.

    Parameters
    ----------
    n_samples : int
        Number of samples (time bins), >= 2.
    n_folds : int
        Number of folds, ``2 <= n_folds <= n_samples``. Test blocks have ``n_samples // n_folds``
        or one more samples (the first ``n_samples % n_folds`` blocks are the longer ones).
    gap : int
        Samples dropped from the training set on each side of the test block, >= 0.

    Returns
    -------
    folds : list of (train_idx, test_idx)
        ``n_folds`` pairs of sorted int64 index arrays, in time order. The test blocks partition
        ``range(n_samples)``; every training index is more than ``gap`` samples away from every
        test index of its fold.

    Raises
    ------
    ValueError
        A parameter is not an integer in range, or ``gap`` is so large that a fold keeps no
        training sample.

    Examples
    --------
    >>> for train, test in blocked_kfold(10, n_folds=3, gap=1):
    ...     print(test, train)
    [0 1 2 3] [5 6 7 8 9]
    [4 5 6] [0 1 2 8 9]
    [7 8 9] [0 1 2 3 4 5]
    """
    n_samples = _check_int(n_samples, "n_samples", 2)
    n_folds = _check_int(n_folds, "n_folds", 2)
    gap = _check_int(gap, "gap", 0)
    if n_folds > n_samples:
        raise ValueError(f"n_folds={n_folds} is larger than n_samples={n_samples}")
    return _blocked_folds(np.arange(n_samples), n_folds=n_folds, gap=gap)


def _blocked_folds(positions: np.ndarray, *, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blocked folds over sorted sample ``positions`` that may have holes (an outer training set).

    Test blocks are contiguous runs of ``positions``; the guard gap is measured in positions (real
    time), not in ranks, so a training position is kept only when it is more than ``gap`` away
    from every test position. Returned index arrays index into ``positions``.
    """
    n = positions.shape[0]
    if n_folds > n:
        raise ValueError(f"n_folds={n_folds} is larger than the {n} samples to split")
    sizes = np.full(n_folds, n // n_folds, dtype=np.int64)
    sizes[: n % n_folds] += 1
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    folds = []
    for fold, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        first, last = positions[lo], positions[hi - 1]
        # positions are sorted, so the training set is a prefix and a suffix of them
        before = np.searchsorted(positions, first - gap, side="left")
        after = np.searchsorted(positions, last + gap, side="right")
        train = np.concatenate((np.arange(0, before), np.arange(after, n))).astype(np.int64)
        if train.size == 0:
            raise ValueError(f"gap={gap} leaves fold {fold} (samples {first}..{last}) without training "
                             f"samples; use a smaller gap or more samples")
        folds.append((train, np.arange(lo, hi, dtype=np.int64)))
    return folds
