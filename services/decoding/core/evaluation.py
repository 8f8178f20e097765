"""Cross-validated evaluation of any decoder, done so that it cannot fool you.

* **Blocked folds with a gap.** Test sets are contiguous blocks of time (or whole trials), and
  the ``gap`` samples on each side of a test block never train, so no training window overlaps
  a test window (:func:`blocked_kfold`). Shuffled K-fold on time series reports the smoothness
  of behaviour, not decoding.
* **A shuffled-label control.** The same pipeline with the alignment between neural data and
  labels broken: continuous targets are circularly shifted by a random offset (keeping their
  autocorrelation, which an i.i.d. permutation would destroy and so make the control too
  easy); trial conditions are permuted across trials. A decoder that scores above chance here
  has found structure that is not in the brain.
* **Time-resolved decoding.** With trials, a separate decoder per time-in-trial bin,
  cross-validated across trials (King & Dehaene 2014), gives accuracy as a function of time.

Every fold fits a fresh ``sklearn.base.clone`` of the decoder given, so any decoder of the
:mod:`.base` contract can be evaluated.

Example
-------
>>> from services.decoding.core.base import RidgeDecoder
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(800, 4))
>>> y = x @ [1.0, 0.5, 0.0, -1.0] + 0.1 * rng.normal(size=800)
>>> report = cross_validate(RidgeDecoder(), x, y, history_bins=2, n_folds=4)
>>> report.task, report.predictions.shape, bool(report.r2[0] > 0.95)
('regression', (800, 1), True)
>>> control = shuffled_control(RidgeDecoder(), x, y, history_bins=2, n_folds=4, n_shuffles=2, seed=0)
>>> bool(np.all(control.scores < 0.05))
True
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from .base import Decoder, Report, check_targets, window_tensor
from .cross_validation import blocked_kfold
from .scores import pearson_r, r2_score, rmse

__all__ = ["EvaluationReport", "ShuffleControl", "TimeResolvedResult", "cross_validate", "shuffled_control",
           "time_resolved_decoding", "classification_scores", "regression_scores", "trial_folds"]


@dataclass
class EvaluationReport:
    """Out-of-fold evaluation of one decoder on one data set.

    Attributes
    ----------
    task : {"regression", "classification"}
    predictions : ndarray
        Out-of-fold predictions, float64: (n_samples, n_outputs) for regression, (n_samples,)
        labels for classification; NaN where a sample was never tested (its window leaves the
        recording, or it lies outside every trial when trials define the folds).
    fold_scores : ndarray, shape (n_folds,)
        Mean R² over outputs, or accuracy, on each test block.
    r2, pearson_r, rmse : ndarray, shape (n_outputs,)
        Regression scores of the pooled out-of-fold predictions (empty for classification).
    accuracy, balanced_accuracy, chance : float
        Classification scores (NaN for regression); ``chance`` is the accuracy of always
        guessing the most frequent tested class.
    classes : ndarray of int64
        Class labels, sorted; rows and columns of ``confusion``.
    confusion : ndarray of int64, shape (n_classes, n_classes)
        Counts, rows the true class, columns the predicted one.
    n_tested : int
        Samples that were in some test block.
    """

    task: str
    predictions: np.ndarray
    fold_scores: np.ndarray
    r2: np.ndarray = field(default_factory=lambda: np.empty(0))
    pearson_r: np.ndarray = field(default_factory=lambda: np.empty(0))
    rmse: np.ndarray = field(default_factory=lambda: np.empty(0))
    accuracy: float = float("nan")
    balanced_accuracy: float = float("nan")
    chance: float = float("nan")
    classes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    confusion: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    n_tested: int = 0

    @property
    def score(self) -> float:
        """The headline number: mean R² over outputs, or accuracy."""
        return float(np.nanmean(self.r2)) if self.task == "regression" else self.accuracy


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """R², Pearson r and RMSE per output (see :mod:`.scores`)."""
    return {"r2": r2_score(y_true, y_pred), "pearson_r": pearson_r(y_true, y_pred), "rmse": rmse(y_true, y_pred)}


def classification_scores(y_true, y_pred, *, classes=None) -> dict[str, object]:
    """Accuracy, balanced accuracy, majority-class chance and the confusion matrix.

    >>> s = classification_scores([0, 0, 1, 2], [0, 1, 1, 2])
    >>> s["accuracy"], s["confusion"].tolist()
    (0.75, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"labels must be two non-empty 1-D arrays of one length, got {y_true.shape} "
                         f"and {y_pred.shape}")
    classes = np.unique(np.concatenate([y_true, y_pred])) if classes is None else np.asarray(classes, np.int64)
    index = {int(c): i for i, c in enumerate(classes)}
    confusion = np.zeros((classes.size, classes.size), dtype=np.int64)
    np.add.at(confusion, (np.vectorize(index.__getitem__)(y_true), np.vectorize(index.__getitem__)(y_pred)), 1)
    per_class = confusion.sum(axis=1)
    recalls = np.diag(confusion)[per_class > 0] / per_class[per_class > 0]
    return {"accuracy": float(np.mean(y_true == y_pred)), "balanced_accuracy": float(recalls.mean()),
            "chance": float(per_class.max() / per_class.sum()), "classes": classes, "confusion": confusion}


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def trial_folds(trial_index: np.ndarray, rows: np.ndarray, *, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds of whole trials, in trial order: contiguous groups of trials test together.

    ``rows`` are the candidate sample indices; samples of one trial never straddle train and
    test, so within-trial autocorrelation cannot leak. Returned arrays index ``rows``.

    >>> trials = np.repeat([0, 1, 2, 3], 2)
    >>> [test.tolist() for _, test in trial_folds(trials, np.arange(8), n_folds=2)]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    labels = trial_index[rows]
    trials = np.unique(labels[labels >= 0])
    if trials.size < n_folds:
        raise ValueError(f"{trials.size} trials are fewer than n_folds={n_folds}")
    groups = np.array_split(trials, n_folds)
    folds = []
    for group in groups:
        in_test = np.isin(labels, group)
        folds.append((np.flatnonzero(~in_test & (labels >= 0)), np.flatnonzero(in_test)))
    return folds


def _folds(n_samples: int, valid: np.ndarray, *, n_folds: int, gap: int, trial_index: np.ndarray | None):
    rows = np.flatnonzero(valid)
    if trial_index is not None:
        return rows, trial_folds(trial_index, rows, n_folds=n_folds)
    if rows.size < n_folds:
        raise ValueError(f"{rows.size} samples have a complete window, fewer than n_folds={n_folds}")
    return rows, blocked_kfold(rows.size, n_folds=n_folds, gap=gap)


def cross_validate(decoder: Decoder, features, targets, *, history_bins: int, future_bins: int = 0,
                   n_folds: int = 5, gap: int | None = None, trial_index=None,
                   report: Report | None = None) -> EvaluationReport:
    """Out-of-fold predictions and scores of ``decoder`` under blocked K-fold cross-validation.

    Parameters
    ----------
    decoder : Decoder
        Any decoder of the :mod:`.base` contract; each fold fits a clone of it.
    features : array_like, shape (n_samples,) or (n_samples, n_features)
        Time along the first axis (binned counts, calcium traces, ...); finite.
    targets : array_like
        (n_samples[, n_outputs]) floats for a regressor, (n_samples,) integer labels for a
        classifier; aligned with ``features``.
    history_bins, future_bins : int
        The window of every prediction (see :func:`window_tensor`).
    n_folds : int, default 5
        Contiguous test blocks (or groups of whole trials).
    gap : int, optional
        Samples dropped from training on each side of a test block; raised to at least
        ``history_bins + future_bins`` so no training window overlaps a test window.
    trial_index : array_like of int, shape (n_samples,), optional
        Trial of each sample (-1 outside trials). Folds then hold whole trials, and samples
        outside trials are neither trained nor tested.
    report : callable, optional
        ``report(fraction_done, message)`` as folds finish; raising stops the evaluation.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    ValueError
        Mismatched lengths, NaN, a window longer than the recording, too few samples or trials.
    """
    X, valid = window_tensor(features, history_bins=history_bins, future_bins=future_bins)
    y = check_targets(targets, task=decoder.task, n_samples=X.shape[0])
    n_folds = _check_int(n_folds, "n_folds", 2)
    window = int(history_bins) + int(future_bins)
    gap = window if gap is None else max(_check_int(gap, "gap", 0), window)
    if trial_index is not None:
        trial_index = np.asarray(trial_index)
        if trial_index.shape != (X.shape[0],) or not np.issubdtype(trial_index.dtype, np.integer):
            raise ValueError(f"trial_index must be integers of shape ({X.shape[0]},), got {trial_index.dtype} "
                             f"{trial_index.shape}")
    rows, folds = _folds(X.shape[0], valid, n_folds=n_folds, gap=gap, trial_index=trial_index)
    if decoder.task == "classification" and np.unique(y[rows]).size < 2:
        raise ValueError("the labels hold a single class: there is nothing to decode")

    predictions = np.full((X.shape[0],) if decoder.task == "classification" else y.shape, np.nan)
    fold_scores = np.empty(len(folds))
    for k, (train, test) in enumerate(folds):
        def fold_report(fraction: float, message: str, k=k) -> None:
            if report is not None:
                report((k + min(max(fraction, 0.0), 1.0)) / len(folds), f"fold {k + 1} of {len(folds)}: {message}")

        model = clone(decoder).fit(X[rows[train]], y[rows[train]], report=fold_report)
        predicted = model.predict(X[rows[test]])
        predictions[rows[test]] = predicted
        if decoder.task == "classification":
            fold_scores[k] = float(np.mean(predicted == y[rows[test]]))
        else:
            fold_scores[k] = float(np.nanmean(r2_score(y[rows[test]], predicted)))
        if report is not None:
            name = "accuracy" if decoder.task == "classification" else "R2"
            report((k + 1) / len(folds), f"fold {k + 1} of {len(folds)}: {name} {fold_scores[k]:.3f}")

    tested = np.unique(np.concatenate([rows[test] for _, test in folds]))
    result = EvaluationReport(task=decoder.task, predictions=predictions, fold_scores=fold_scores,
                              n_tested=int(tested.size))
    if decoder.task == "classification":
        scores = classification_scores(y[tested], predictions[tested].astype(np.int64), classes=np.unique(y[rows]))
        result.accuracy, result.balanced_accuracy = scores["accuracy"], scores["balanced_accuracy"]
        result.chance, result.classes, result.confusion = scores["chance"], scores["classes"], scores["confusion"]
    else:
        for name, value in regression_scores(y[tested], predictions[tested]).items():
            setattr(result, name, value)
    return result


@dataclass
class ShuffleControl:
    """Scores of the same evaluation with neural data and labels misaligned on purpose.

    Attributes
    ----------
    scores : ndarray, shape (n_shuffles,)
        Mean R² over outputs, or accuracy, of each shuffled run.
    method : str
        ``"circular_shift"`` (continuous targets, or labels without trials) or
        ``"trial_permutation"`` (trial conditions permuted across trials).
    """

    scores: np.ndarray
    method: str

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))


def shuffled_control(decoder: Decoder, features, targets, *, history_bins: int, future_bins: int = 0,
                     n_folds: int = 5, gap: int | None = None, trial_index=None, n_shuffles: int = 5,
                     seed: int | None = None, report: Report | None = None) -> ShuffleControl:
    """Run :func:`cross_validate` on misaligned data ``n_shuffles`` times; see the module notes.

    Circular shifts move the targets by at least a tenth of the recording, so the shift is far
    longer than any window or behavioural autocorrelation of interest. With ``trial_index``,
    each trial's label is replaced by another trial's (a permutation of the per-trial labels)
    for classification; for regression the targets are shifted circularly.
    """
    n_shuffles = _check_int(n_shuffles, "n_shuffles", 1)
    rng = np.random.default_rng(seed)
    y = check_targets(targets, task=decoder.task)
    n = y.shape[0]
    if n < 20:
        raise ValueError(f"{n} samples are too few for a shuffle control")
    permute_trials = trial_index is not None and decoder.task == "classification"
    if permute_trials:
        trial_index = np.asarray(trial_index)
    scores = np.empty(n_shuffles)
    for i in range(n_shuffles):
        if permute_trials:
            trials = np.unique(trial_index[trial_index >= 0])
            first = np.array([np.flatnonzero(trial_index == t)[0] for t in trials])
            labels = dict(zip(trials.tolist(), rng.permutation(y[first]).tolist()))
            shuffled = y.copy()
            inside = trial_index >= 0
            shuffled[inside] = np.vectorize(labels.__getitem__)(trial_index[inside])
        else:
            shuffled = np.roll(y, int(rng.integers(n // 10, n - n // 10 + 1)), axis=0)

        def shuffle_report(fraction: float, message: str, i=i) -> None:
            if report is not None:
                report((i + fraction) / n_shuffles, f"shuffle {i + 1} of {n_shuffles}: {message}")

        scores[i] = cross_validate(decoder, features, shuffled, history_bins=history_bins, future_bins=future_bins,
                                   n_folds=n_folds, gap=gap, trial_index=trial_index, report=shuffle_report).score
    return ShuffleControl(scores=scores, method="trial_permutation" if permute_trials else "circular_shift")


@dataclass
class TimeResolvedResult:
    """Accuracy (or R²) of one decoder per time-in-trial bin, cross-validated across trials.

    Attributes
    ----------
    times_s : ndarray, shape (n_times,)
        Time in trial of each evaluated bin, seconds.
    scores : ndarray, shape (n_times,)
        Out-of-fold accuracy (classification) or mean R² (regression) at that time.
    n_trials : ndarray of int, shape (n_times,)
        Trials that contributed a sample at that time.
    """

    times_s: np.ndarray
    scores: np.ndarray
    n_trials: np.ndarray


def time_resolved_decoding(decoder: Decoder, features, targets, *, trial_index, time_in_trial_s,
                           history_bins: int = 0, future_bins: int = 0, n_folds: int = 5,
                           min_trials: int | None = None, report: Report | None = None) -> TimeResolvedResult:
    """Train and test a separate decoder at every time-in-trial bin (King & Dehaene 2014).

    At each distinct value of ``time_in_trial_s`` (bins are aligned to trial starts, so the
    values repeat from trial to trial), the samples of every trial at that time form a data set
    of one sample per trial; it is cross-validated over trials in ``n_folds`` contiguous groups.
    Times with fewer than ``min_trials`` trials (default ``2 * n_folds``) are skipped.

    >>> from services.decoding.core.base import RidgeDecoder
    >>> rng = np.random.default_rng(1)
    >>> trial = np.repeat(np.arange(40), 5); t = np.tile(np.arange(5) * 0.1, 40)
    >>> y = rng.normal(size=200); x = np.c_[y * (t > 0.25), rng.normal(size=200)]
    >>> res = time_resolved_decoding(RidgeDecoder(), x, y, trial_index=trial, time_in_trial_s=t)
    >>> res.times_s.round(1).tolist(), bool(res.scores[-1] > 0.9 > res.scores[0])
    ([0.0, 0.1, 0.2, 0.3, 0.4], True)
    """
    X, valid = window_tensor(features, history_bins=history_bins, future_bins=future_bins)
    y = check_targets(targets, task=decoder.task, n_samples=X.shape[0])
    trial_index = np.asarray(trial_index)
    times = np.asarray(time_in_trial_s, dtype=np.float64)
    if trial_index.shape != (X.shape[0],) or times.shape != (X.shape[0],):
        raise ValueError(f"trial_index and time_in_trial_s must have shape ({X.shape[0]},), got "
                         f"{trial_index.shape} and {times.shape}")
    n_folds = _check_int(n_folds, "n_folds", 2)
    min_trials = 2 * n_folds if min_trials is None else _check_int(min_trials, "min_trials", n_folds)
    inside = valid & (trial_index >= 0) & np.isfinite(times)
    # bins sit at the same offsets in every trial; rounding to 1 us merges float noise
    keys = np.round(times, 6)
    distinct = np.unique(keys[inside])
    out_times, out_scores, out_trials = [], [], []
    for i, t in enumerate(distinct):
        rows = np.flatnonzero(inside & (keys == t))
        trials = trial_index[rows]
        if np.unique(trials).size < min_trials:
            continue
        folds = trial_folds(trial_index, rows, n_folds=n_folds)
        predicted = np.full((rows.size,) if decoder.task == "classification" else (rows.size, y.shape[1]), np.nan)
        if decoder.task == "classification" and np.unique(y[rows]).size < 2:
            continue
        for train, test in folds:
            model = clone(decoder).fit(X[rows[train]], y[rows[train]])
            predicted[test] = model.predict(X[rows[test]])
        if decoder.task == "classification":
            score = float(np.mean(predicted == y[rows]))
        else:
            score = float(np.nanmean(r2_score(y[rows], predicted)))
        out_times.append(float(t)), out_scores.append(score), out_trials.append(int(np.unique(trials).size))
        if report is not None:
            report((i + 1) / distinct.size, f"time {t:.3f} s: {score:.3f}")
    if not out_times:
        raise ValueError(f"no time in trial has at least {min_trials} trials to cross-validate over")
    return TimeResolvedResult(times_s=np.array(out_times), scores=np.array(out_scores),
                              n_trials=np.array(out_trials, dtype=np.int64))
