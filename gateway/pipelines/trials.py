"""Gathering trials: a sweep's runs stacked, or a recording cut into trials, as reduction and decoding want them.

Two local operations make the same outputs from different sources:

- ``StackCounts`` (the fan-in of a simulation sweep): the ``binned_counts`` of several runs,
  ``(n_bins, n_neurons)`` each, become one ``(n_trials, n_time, n_neurons)`` array, trial ``k``
  being input ``runs.k``, with the condition label of each run from ``params.conditions``
  (``params.columns`` keeps some columns only: the cortical populations of ``population_rates``).
- ``EpochTrials`` (a recording with trials): the ``counts`` of ``BinRecording`` are cut into
  trials of equal length, found either from the recording's trial structure (``trial_index`` per
  bin, and the ``condition`` per bin, as BinRecording gives them for an NWB file) or from trial
  start times (``trial_starts`` with ``trial_conditions``, for spike arrays).

Their outputs:

=====================  ==========================================================================
``activity``           float32 ``(n_trials, n_time, n_neurons)``: reduction ``Fit``'s ``activity``
``conditions``         int64 ``(n_trials,)``: ``Fit``'s ``conditions`` (when conditions are known)
``samples``            float32 ``(n_trials * n_time, n_neurons)``: the trials one after another,
                       decoding ``Train``'s ``features``
``sample_conditions``  int64 ``(n_trials * n_time,)``: the condition of each sample, ``targets``
``sample_trials``      int64 ``(n_trials * n_time,)``: the trial of each sample, ``trial_index``
                       (so cross-validation keeps trials whole)
``sample_times``       float64 ``(n_trials * n_time,)``: bin centre in seconds from the trial's
                       start, ``time_in_trial`` (time-resolved decoding)
``figure``             PNG: the population's mean rate over the trial, per condition
``report``             JSON: params, inputs, outputs, and which trials were kept
=====================  ==========================================================================

Example
-------
>>> runs = [np.full((4, 2), k, dtype=np.float32) for k in range(3)]
>>> activity = stack_runs(runs, skip_bins=1)
>>> activity.shape, activity[2, 0].tolist()
((3, 3, 2), [2.0, 2.0])
>>> samples = trial_samples(activity, np.array([0, 1, 0]), bin_s=0.01, skip_bins=1)
>>> samples["sample_trials"].tolist()
[0, 0, 0, 1, 1, 1, 2, 2, 2]
>>> samples["sample_conditions"].tolist()
[0, 0, 0, 1, 1, 1, 0, 0, 0]
>>> samples["sample_times"][:3].round(3).tolist()
[0.015, 0.025, 0.035]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.pipelines.local import InputSlot, LocalOperation, OperationContext, png_of
from neuromesh.common.v1.artifact_pb2 import ArtifactRef

__all__ = ["EPOCH_TRIALS", "STACK_COUNTS", "epoch_by_starts", "epoch_by_trial_index", "stack_runs",
           "trial_samples"]

TRIAL_OUTPUTS = {
    "activity": "float32 (n_trials, n_time, n_neurons): reduction Fit's activity",
    "conditions": "int64 (n_trials,): the condition of each trial (when conditions are known)",
    "samples": "float32 (n_trials * n_time, n_neurons): the trials one after another (decoding features)",
    "sample_conditions": "int64 (n_trials * n_time,): the condition of each sample (decoding targets)",
    "sample_trials": "int64 (n_trials * n_time,): the trial of each sample (decoding trial_index)",
    "sample_times": "float64 (n_trials * n_time,): seconds from the trial's start (decoding time_in_trial)",
    "figure": "PNG: the mean rate over the trial per condition",
    "report": "JSON: params, inputs, outputs, trials kept",
}


# ------------------------------------------------------------------------------ plain functions


def stack_runs(runs: Sequence[np.ndarray], *, skip_bins: int = 0) -> np.ndarray:
    """Runs of ``(n_bins, n_neurons)`` counts as one float32 ``(n_runs, n_bins - skip_bins, n_neurons)`` array.

    Raises
    ------
    ValueError
        No runs, a run that is not 2-D, runs of different shapes (named), or ``skip_bins`` that
        leaves no bin.
    """
    if not runs:
        raise ValueError("there are no runs to stack")
    shapes = [np.shape(r) for r in runs]
    for k, shape in enumerate(shapes):
        if len(shape) != 2:
            raise ValueError(f"runs.{k} has shape {shape}; counts are (n_bins, n_neurons)")
    if len(set(shapes)) > 1:
        listed = ", ".join(f"runs.{k} {s}" for k, s in enumerate(shapes))
        raise ValueError(f"runs must have one shape to be stacked as trials, got {listed}")
    n_bins = shapes[0][0]
    if not 0 <= skip_bins < n_bins:
        raise ValueError(f"skip_bins={skip_bins} leaves no bin of the {n_bins} of each run")
    return np.stack([np.asarray(r, dtype=np.float32)[skip_bins:] for r in runs])


def trial_samples(activity: np.ndarray, conditions: np.ndarray | None, *, bin_s: float,
                  skip_bins: int = 0) -> dict[str, np.ndarray]:
    """The trials of ``activity`` one after another, with each sample's trial, time and condition.

    ``sample_times`` are bin centres from the start of the trial: ``(skip_bins + j + 0.5) * bin_s``.
    """
    n_trials, n_time, n_neurons = activity.shape
    out = {"samples": np.ascontiguousarray(activity.reshape(n_trials * n_time, n_neurons), dtype=np.float32),
           "sample_trials": np.repeat(np.arange(n_trials, dtype=np.int64), n_time),
           "sample_times": np.tile((skip_bins + np.arange(n_time) + 0.5) * float(bin_s), n_trials)}
    if conditions is not None:
        out["sample_conditions"] = np.repeat(np.asarray(conditions, dtype=np.int64), n_time)
    return out


def _bin_width(bin_centres: np.ndarray) -> float:
    centres = np.asarray(bin_centres, dtype=np.float64)
    if centres.ndim != 1 or centres.size < 2:
        raise ValueError(f"bin_centres must be 1-D with at least 2 bins, got shape {centres.shape}")
    steps = np.diff(centres)
    width = float(np.median(steps))
    if not width > 0 or np.max(np.abs(steps - width)) > 1e-6 * width:
        raise ValueError("bin_centres are not regularly spaced")
    return width


def epoch_by_starts(counts: np.ndarray, bin_centres: np.ndarray, trial_starts: np.ndarray, *,
                    trial_duration_s: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Cut ``counts`` into trials that start at ``trial_starts`` (seconds).

    A trial holds the bins whose centres lie in ``[start, start + duration)``; ``duration`` is
    ``trial_duration_s``, or else the shortest time between consecutive starts (trials that
    follow each other). Trials that do not fit in the binned span are left out.

    Returns
    -------
    activity : float32 (n_kept, n_time, n_neurons)
    kept : int64 (n_kept,), the indices of the trials kept, into ``trial_starts``
    bin_s : float, the bin width
    """
    counts = np.asarray(counts)
    centres = np.asarray(bin_centres, dtype=np.float64)
    starts = np.asarray(trial_starts, dtype=np.float64)
    if counts.ndim != 2 or centres.shape != (counts.shape[0],):
        raise ValueError(f"counts {counts.shape} and bin_centres {centres.shape} must be (n_bins, n_units) and "
                         "(n_bins,)")
    if starts.ndim != 1 or starts.size == 0 or not np.all(np.isfinite(starts)):
        raise ValueError(f"trial_starts must be a non-empty 1-D array of finite seconds, got shape {starts.shape}")
    width = _bin_width(centres)
    if trial_duration_s is None:
        gaps = np.diff(np.sort(starts))
        if gaps.size == 0 or not gaps.min() > 0:
            raise ValueError("give trial_duration_s: with one trial, or two starting together, the trial length "
                             "cannot be told from the starts")
        trial_duration_s = float(gaps.min())
    n_time = int(math.floor(trial_duration_s / width + 1e-6))
    if n_time < 1:
        raise ValueError(f"a trial of {trial_duration_s} s is shorter than one bin of {width} s")
    # first bin whose centre is at or after the start (a small tolerance for rounding of the centres)
    first = np.searchsorted(centres, starts - 1e-6 * width, side="left")
    # a trial must lie wholly inside the binned span: not before its first bin, not past its last
    inside = starts >= centres[0] - 0.5 * width - 1e-6 * width
    kept = np.flatnonzero(inside & (first + n_time <= counts.shape[0]))
    if kept.size == 0:
        raise ValueError(f"no trial of {n_time} bins fits in the {counts.shape[0]} bins of the recording")
    activity = np.stack([counts[f:f + n_time] for f in first[kept]]).astype(np.float32)
    return activity, kept.astype(np.int64), width


def epoch_by_trial_index(counts: np.ndarray, trial_index: np.ndarray, *, bin_s: float,
                         trial_duration_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``counts`` into trials by the trial of each bin (``-1`` outside trials).

    Each trial's bins must be contiguous. Every trial is cut to ``n_time`` bins from its first:
    ``trial_duration_s / bin_s``, or else the shortest trial's length; shorter trials are left out.

    Returns
    -------
    activity : float32 (n_kept, n_time, n_neurons)
    trial_ids : int64 (n_kept,), the trial numbers kept
    first_bins : int64 (n_kept,), each kept trial's first bin
    """
    counts = np.asarray(counts)
    index = np.asarray(trial_index)
    if counts.ndim != 2 or index.shape != (counts.shape[0],) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"counts {counts.shape} and trial_index {index.dtype} {index.shape} must be "
                         "(n_bins, n_units) and integers (n_bins,)")
    ids = np.unique(index[index >= 0])
    if ids.size == 0:
        raise ValueError("trial_index marks no bin as inside a trial")
    firsts, lengths = [], []
    for t in ids:
        where = np.flatnonzero(index == t)
        if where[-1] - where[0] + 1 != where.size:
            raise ValueError(f"the bins of trial {int(t)} are not contiguous")
        firsts.append(int(where[0]))
        lengths.append(int(where.size))
    lengths_arr = np.asarray(lengths)
    n_time = int(math.floor(trial_duration_s / bin_s + 1e-6)) if trial_duration_s is not None else int(
        lengths_arr.min())
    if n_time < 1:
        raise ValueError(f"a trial of {trial_duration_s} s is shorter than one bin of {bin_s} s")
    keep = lengths_arr >= n_time
    if not keep.any():
        raise ValueError(f"no trial is {n_time} bins long (the longest has {lengths_arr.max()})")
    first_bins = np.asarray(firsts, dtype=np.int64)[keep]
    activity = np.stack([counts[f:f + n_time] for f in first_bins]).astype(np.float32)
    return activity, ids[keep].astype(np.int64), first_bins


def _integer_labels(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ValueError(f"{name} must be integer labels")
    elif values.dtype.kind not in "iub":
        raise ValueError(f"{name} must be integer labels, got {values.dtype}")
    return values.astype(np.int64)


def rate_figure(activity: np.ndarray, conditions: np.ndarray | None, *, bin_s: float, skip_bins: int,
                names: Sequence[str], title: str, rates: bool = False) -> bytes:
    """PNG: mean rate over columns against time in the trial, one line per condition, +- s.e.m. over trials.

    ``activity`` holds counts per bin (divided by ``bin_s`` into Hz), or rates in Hz with ``rates``.
    """
    from services.common.figures import new_figure  # matplotlib only when a figure is drawn

    fig = new_figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    times = (skip_bins + np.arange(activity.shape[1]) + 0.5) * bin_s
    per_trial = activity.mean(axis=2) / (1.0 if rates else bin_s)     # (trials, time): mean rate in Hz
    labels = np.zeros(activity.shape[0], dtype=np.int64) if conditions is None else conditions
    for label in np.unique(labels):
        rows = per_trial[labels == label]
        mean = rows.mean(axis=0)
        sem = rows.std(axis=0, ddof=1) / np.sqrt(rows.shape[0]) if rows.shape[0] > 1 else np.zeros_like(mean)
        name = names[label] if conditions is not None and 0 <= label < len(names) else (
            f"condition {label}" if conditions is not None else "all trials")
        ax.plot(times, mean, label=f"{name} ({rows.shape[0]} trials)")
        ax.fill_between(times, mean - sem, mean + sem, alpha=0.25)
    ax.set_xlabel("time in trial (s)")
    ax.set_ylabel("mean rate per column (Hz)" if rates else "mean rate per neuron (Hz)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return png_of(fig)


def _store_trials(context: OperationContext, activity: np.ndarray, conditions: np.ndarray | None, *, bin_s: float,
                  skip_bins: int, names: Sequence[str], title: str, rates: bool = False) -> dict[str, ArtifactRef]:
    context.report(0.6, "storing the trials")
    out = {"activity": context.write_array("activity", activity)}
    if conditions is not None:
        out["conditions"] = context.write_array("conditions", conditions.astype(np.int64))
    for name, array in trial_samples(activity, conditions, bin_s=bin_s, skip_bins=skip_bins).items():
        out[name] = context.write_array(name, array)
    context.report(0.9, "drawing the figure")
    out["figure"] = context.write_png("rates.png", rate_figure(activity, conditions, bin_s=bin_s, skip_bins=skip_bins,
                                                               names=names, title=title, rates=rates))
    context.summary.update({"shape": list(activity.shape), "bin_s": bin_s,
                            "conditions": None if conditions is None else conditions.tolist(),
                            "condition_names": list(names)})
    context.report(1.0, "stored")
    return out


# ------------------------------------------------------------------------------ StackCounts


class StackCountsParams(BaseModel):
    """Params of ``gateway.StackCounts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[int] = Field(min_length=1, max_length=10_000,
                                  description="condition label of each run, in the order of the inputs runs.0, "
                                              "runs.1, ...")
    condition_names: list[str] = Field([], max_length=1000,
                                       description="name of condition label 0, 1, ... (figure legend, report)")
    bin_s: float = Field(gt=0, le=3600, description="bin width of the counts in seconds (for sample_times)")
    skip_bins: int = Field(0, ge=0, le=10_000_000, description="bins dropped at the start of every run (an "
                                                                "onset transient the conditions share)")
    columns: list[int] | None = Field(None, min_length=1, max_length=1_000_000,
                                      description="columns kept, in this order (e.g. some populations of "
                                                  "Simulate's population_rates); unset: all")
    quantity: Literal["counts", "rates_hz"] = Field("counts", description="what the runs hold: spike counts per "
                                                                          "bin, or rates in Hz (for the figure)")

    @field_validator("columns")
    @classmethod
    def _distinct_columns(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (min(value) < 0 or len(set(value)) != len(value)):
            raise ValueError("columns must be distinct indices >= 0")
        return value


def _check_stack(params: StackCountsParams, counts: Mapping[str, int]) -> list[tuple[str, str]]:
    if len(params.conditions) != counts["runs"]:
        return [("params.conditions", f"{len(params.conditions)} condition labels for {counts['runs']} runs: "
                                      "give one label per input runs.<k>")]
    return []


def _run_stack(context: OperationContext, params: StackCountsParams) -> dict[str, ArtifactRef]:
    runs = context.repeated("runs")
    arrays = []
    for k, (path, ref) in enumerate(runs):
        arrays.append(context.read_array(path, ref))
        context.report(0.5 * (k + 1) / len(runs), f"read {k + 1} of {len(runs)} runs")
    activity = stack_runs(arrays, skip_bins=params.skip_bins)
    if params.columns is not None:
        if max(params.columns) >= activity.shape[2]:
            raise ValueError(f"columns {params.columns} name a column past the {activity.shape[2]} of the runs")
        activity = np.ascontiguousarray(activity[:, :, params.columns])
    conditions = np.asarray(params.conditions, dtype=np.int64)
    return _store_trials(context, activity, conditions, bin_s=params.bin_s, skip_bins=params.skip_bins,
                         names=params.condition_names, rates=params.quantity == "rates_hz",
                         title=f"{len(runs)} runs, {len(np.unique(conditions))} conditions")


STACK_COUNTS = LocalOperation(
    method="StackCounts",
    summary="Stack the binned counts of several runs (a simulation sweep) into (trials, time, neurons) with "
            "the condition of each run.",
    params_model=StackCountsParams,
    inputs={"runs": InputSlot("binned counts (n_bins, n_neurons) of one run, e.g. Simulate's binned_counts",
                              repeated=True, required=True)},
    outputs=TRIAL_OUTPUTS, run=_run_stack, check=_check_stack)


# ------------------------------------------------------------------------------ EpochTrials


class EpochTrialsParams(BaseModel):
    """Params of ``gateway.EpochTrials``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial_duration_s: float | None = Field(None, gt=0, le=86_400,
                                           description="length of every trial; default: the shortest time "
                                                       "between trial starts, or the shortest trial")
    condition_names: list[str] = Field([], max_length=1000,
                                       description="name of condition label 0, 1, ... (figure legend, report)")


def _check_epoch(params: EpochTrialsParams, counts: Mapping[str, int]) -> list[tuple[str, str]]:
    by_index, by_starts = counts["trial_index"] > 0, counts["trial_starts"] > 0
    if by_index == by_starts:
        return [("inputs", "give either trial_index (the trial of each bin, with condition per bin) or "
                           "trial_starts (seconds, with trial_conditions per trial), not both nor neither")]
    if counts["condition"] and not by_index:
        return [("inputs.condition", "condition (per bin) goes with trial_index; with trial_starts give "
                                     "trial_conditions (per trial)")]
    if counts["trial_conditions"] and not by_starts:
        return [("inputs.trial_conditions", "trial_conditions goes with trial_starts")]
    return []


def _run_epoch(context: OperationContext, params: EpochTrialsParams) -> dict[str, ArtifactRef]:
    counts = context.read_array("counts")
    centres = context.read_array("bin_centres")
    context.report(0.3, "read the recording")
    bin_s = _bin_width(centres)
    conditions = None
    if context.single("trial_starts") is not None:
        starts = context.read_array("trial_starts")
        activity, kept, bin_s = epoch_by_starts(counts, centres, starts, trial_duration_s=params.trial_duration_s)
        if context.single("trial_conditions") is not None:
            labels = _integer_labels(context.read_array("trial_conditions"), "trial_conditions")
            if labels.shape != starts.shape:
                raise ValueError(f"trial_conditions {labels.shape} must have one label per trial start {starts.shape}")
            conditions = labels[kept]
        context.summary["trials_kept"] = kept.tolist()
        context.summary["trials_dropped"] = int(starts.size - kept.size)
    else:
        index = context.read_array("trial_index")
        activity, trial_ids, first_bins = epoch_by_trial_index(counts, index, bin_s=bin_s,
                                                               trial_duration_s=params.trial_duration_s)
        if context.single("condition") is not None:
            per_bin = _integer_labels(context.read_array("condition"), "condition")
            if per_bin.shape != index.shape:
                raise ValueError(f"condition {per_bin.shape} must have one label per bin {index.shape}")
            conditions = per_bin[first_bins]
        context.summary["trials_kept"] = trial_ids.tolist()
        context.summary["trials_dropped"] = int(np.unique(index[index >= 0]).size - trial_ids.size)
    # the first bin of a trial starts at the trial's start (within a bin), so times are from 0
    return _store_trials(context, activity, conditions, bin_s=bin_s, skip_bins=0, names=params.condition_names,
                         title=f"{activity.shape[0]} trials of {activity.shape[1]} bins")


EPOCH_TRIALS = LocalOperation(
    method="EpochTrials",
    summary="Cut binned counts into trials of equal length (by the trial of each bin, or by trial start times), "
            "with the condition of each trial.",
    params_model=EpochTrialsParams,
    inputs={"counts": InputSlot("counts (n_bins, n_units), BinRecording's counts", required=True),
            "bin_centres": InputSlot("bin centres in seconds (n_bins,), BinRecording's bin_centres", required=True),
            "trial_index": InputSlot("trial of each bin, -1 outside (n_bins,), BinRecording's trial_index"),
            "condition": InputSlot("condition of each bin (n_bins,), BinRecording's condition"),
            "trial_starts": InputSlot("trial start times in seconds (n_trials,)"),
            "trial_conditions": InputSlot("condition label of each trial (n_trials,)")},
    outputs=TRIAL_OUTPUTS, run=_run_epoch, check=_check_epoch)
