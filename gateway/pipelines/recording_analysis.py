"""``recording-analysis``: bin a recording, reduce it, decode behaviour and conditions from it.

The everyday analysis of a session: spike trains (two Zarr arrays, spike times in seconds and
unit ids, or an NWB file with a Units table) and the behaviour sampled alongside.

DAG (steps present only when their inputs are)::

    bin (decoding.BinRecording) --counts--------------------------------> reduce (reduction.Fit)
        |  |                                                               (without trials)
        |  +--counts, behaviour--> decode-behaviour (decoding.Train, a regression decoder)
        +--counts, bin_centres[, trial_index, condition]--> epoch (gateway.EpochTrials)
                 epoch --activity, conditions--> reduce (reduction.Fit: trials, condition averages)
                 epoch --samples, sample_conditions, sample_trials--> decode-condition
                                                             (decoding.Train, a classifier)

- ``bin`` puts spikes and behaviour on one time base (``bin_width_s``).
- With trials (``trial_starts`` [+ ``trial_conditions``] for spike arrays; the NWB file's trials
  table with ``trial_condition_column``, or ``use_trials``), ``epoch`` cuts the counts into
  trials of equal length, and ``reduce`` fits the PCA to (trials, time, neurons), drawing
  trajectories per condition and, with ``trial_average``, fitting the condition averages
  (PSTHs). Without trials, ``reduce`` fits the continuous counts.
- With behaviour (``behaviour_values`` + ``behaviour_timestamps``, or ``behaviour_series`` in the
  NWB file), ``decode-behaviour`` cross-validates a regression decoder (Wiener filter by
  default) of the behaviour from the counts.
- With conditions, ``decode-condition`` cross-validates a classifier of the condition from each
  bin's counts, folds holding whole trials (``sample_trials``).

Figures: ``epoch``'s ``figure`` (mean rate per condition), ``reduce``'s ``components_figure``,
``trajectories_figure`` and ``variance_figure``, each decoder's ``figure``.

Example
-------
>>> ref = lambda key: {"key": key, "sha256": 64 * "0"}
>>> spec = RECORDING_ANALYSIS.build(
...     {"bin_width_s": 0.05, "n_components": 4},
...     {"spike_times": ref("s1/times"), "unit_ids": ref("s1/units"),
...      "behaviour_values": ref("s1/velocity"), "behaviour_timestamps": ref("s1/stamps"),
...      "trial_starts": ref("s1/starts"), "trial_conditions": ref("s1/targets")}, tenant="lab-a")
>>> [s.id for s in spec.topological_order()]
['bin', 'epoch', 'decode-behaviour', 'reduce', 'decode-condition']
>>> spec.step("decode-condition").inputs["targets"].output
'sample_conditions'
>>> RECORDING_ANALYSIS.steps({}, {"spike_times": "s1/times"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gateway.pipelines.base.PipelineError: invalid job: inputs.unit_ids: spike_times and unit_ids go together...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.pipelines.base import Pipeline, PipelineError, PipelineInput, output, step
from gateway.pipelines.local import LOCAL_SERVICE

NAME_PATTERN = r"^([A-Za-z_][A-Za-z0-9_ ./-]{0,127})?$"
"""NWB object and column names (empty: none)."""


class RecordingAnalysisParams(BaseModel):
    """Parameters of ``recording-analysis``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- binning
    bin_width_s: float = Field(0.05, gt=0, le=10, description="bin width in seconds")
    start_s: float = Field(0.0, ge=0, description="start of the first bin; with stop_s both 0: the data's span")
    stop_s: float = Field(0.0, ge=0, description="end of the last bin")
    n_units: int = Field(0, ge=0, le=1_000_000, description="spike arrays: number of units (0: largest id + 1)")
    behaviour_series: str = Field("", pattern=NAME_PATTERN,
                                  description="NWB: name of the TimeSeries to decode")
    trial_condition_column: str = Field("", pattern=NAME_PATTERN,
                                        description="NWB: integer column of the trials table giving the condition")
    use_trials: bool | None = Field(None, description="cut the recording into trials; default: when trials are "
                                                      "given (trial_starts, or trial_condition_column for NWB). "
                                                      "True with NWB uses its trials table without conditions")
    trial_duration_s: float | None = Field(None, gt=0, le=86_400,
                                           description="length of every trial; default: the shortest interval "
                                                       "between trial starts (or the shortest NWB trial)")
    condition_names: list[str] = Field([], max_length=1000,
                                       description="names of condition 0, 1, ... for the figures")
    # --- reduction
    reduction_method: Literal["pca", "factor_analysis"] = Field("pca", description="reduction method")
    n_components: int = Field(8, ge=1, le=200, description="latent dimensions")
    smooth_sigma_bins: float = Field(2.0, ge=0, le=1000, description="Gaussian smoothing along time, in bins")
    soft_normalize: float = Field(0.0, ge=0, description="soft normalisation constant (0: none)")
    trial_average: bool = Field(True, description="with conditions: fit the condition averages (PSTHs) of the trials")
    # --- decoding
    behaviour_decoder: Literal["wiener", "wiener_cascade", "kalman", "mlp", "lstm", "gru"] = Field(
        "wiener", description="regression decoder of the behaviour")
    history_bins: int = Field(5, ge=0, le=1000, description="past bins in each behaviour decoder's window")
    condition_decoder: Literal["logistic", "mlp_classifier"] = Field("logistic",
                                                                     description="classifier of the condition")
    time_resolved: bool = Field(False, description="also decode the condition at each time in the trial")
    n_folds: int = Field(5, ge=2, le=100, description="cross-validation folds (whole trials for conditions)")
    n_shuffles: int = Field(1, ge=0, le=1000, description="shuffled-label control runs of each decoder")
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _span(self) -> "RecordingAnalysisParams":
        if (self.start_s or self.stop_s) and self.stop_s <= self.start_s:
            raise ValueError(f"stop_s ({self.stop_s}) must exceed start_s ({self.start_s})")
        return self


INPUTS = (
    PipelineInput("spike_times", "spike times in seconds, float (n_spikes,); with unit_ids"),
    PipelineInput("unit_ids", "unit id of each spike, integer (n_spikes,); with spike_times"),
    PipelineInput("nwb_file", "an NWB file with a Units table (instead of spike arrays)", kind="object"),
    PipelineInput("behaviour_values", "behaviour samples (n_samples[, n_channels]); with behaviour_timestamps"),
    PipelineInput("behaviour_timestamps", "behaviour sample times in seconds (n_samples,)"),
    PipelineInput("trial_starts", "spike arrays: trial start times in seconds (n_trials,)"),
    PipelineInput("trial_conditions", "spike arrays: condition label of each trial, integer (n_trials,)"),
)


def _template(params: RecordingAnalysisParams, inputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    problems: list[tuple[str, str]] = []
    has = inputs.__contains__
    arrays = has("spike_times") or has("unit_ids")
    if arrays and has("nwb_file"):
        problems.append(("inputs.nwb_file", "give spike arrays (spike_times, unit_ids) or an nwb_file, not both"))
    elif not arrays and not has("nwb_file"):
        problems.append(("inputs", "give spike arrays (spike_times and unit_ids) or an nwb_file"))
    if has("spike_times") != has("unit_ids"):
        problems.append(("inputs.unit_ids" if has("spike_times") else "inputs.spike_times",
                         "spike_times and unit_ids go together"))
    if has("behaviour_values") != has("behaviour_timestamps"):
        problems.append(("inputs.behaviour_timestamps" if has("behaviour_values") else "inputs.behaviour_values",
                         "behaviour_values and behaviour_timestamps go together"))
    if has("nwb_file") and (has("trial_starts") or has("trial_conditions")):
        problems.append(("inputs.trial_starts", "an NWB file brings its own trials table; trial_starts and "
                                                "trial_conditions are for spike arrays"))
    if has("trial_conditions") and not has("trial_starts"):
        problems.append(("inputs.trial_conditions", "trial_conditions need trial_starts"))
    if arrays and (params.behaviour_series or params.trial_condition_column):
        problems.append(("params.behaviour_series" if params.behaviour_series else "params.trial_condition_column",
                         "behaviour_series and trial_condition_column name parts of an NWB file"))
    if arrays and params.use_trials and not has("trial_starts"):
        problems.append(("params.use_trials", "with spike arrays, trials come from trial_starts"))
    if params.behaviour_series and has("behaviour_values"):
        problems.append(("params.behaviour_series", "give the behaviour as arrays or as an NWB series, not both"))
    if problems:
        raise PipelineError(problems)

    nwb = has("nwb_file")
    trials = params.use_trials if params.use_trials is not None else (
        has("trial_starts") or (nwb and bool(params.trial_condition_column)))
    conditions = trials and (has("trial_conditions") or (nwb and bool(params.trial_condition_column)))
    behaviour = has("behaviour_values") or (nwb and bool(params.behaviour_series))

    bin_params: dict[str, Any] = {"bin_width_s": params.bin_width_s, "start_s": params.start_s,
                                  "stop_s": params.stop_s}
    bin_inputs: dict[str, Any] = {}
    if nwb:
        bin_inputs["nwb_file"] = inputs["nwb_file"]
        if params.behaviour_series:
            bin_params["behaviour_series"] = params.behaviour_series
        if params.trial_condition_column and trials:
            bin_params["trial_condition_column"] = params.trial_condition_column
    else:
        bin_inputs["spikes.times"] = inputs["spike_times"]
        bin_inputs["spikes.unit_ids"] = inputs["unit_ids"]
        if params.n_units:
            bin_params["spikes"] = {"n_units": params.n_units}
    if has("behaviour_values"):
        bin_inputs["behaviour.values"] = inputs["behaviour_values"]
        bin_inputs["behaviour.timestamps"] = inputs["behaviour_timestamps"]
    steps = [step("bin", "decoding", "BinRecording", bin_params, bin_inputs)]

    if trials:
        epoch_inputs = {"counts": output("bin", "counts"), "bin_centres": output("bin", "bin_centres")}
        if nwb:
            epoch_inputs["trial_index"] = output("bin", "trial_index")
            if conditions:
                epoch_inputs["condition"] = output("bin", "condition")
        else:
            epoch_inputs["trial_starts"] = inputs["trial_starts"]
            if conditions:
                epoch_inputs["trial_conditions"] = inputs["trial_conditions"]
        epoch_params: dict[str, Any] = {"condition_names": list(params.condition_names)}
        if params.trial_duration_s is not None:
            epoch_params["trial_duration_s"] = params.trial_duration_s
        steps.append(step("epoch", LOCAL_SERVICE, "EpochTrials", epoch_params, epoch_inputs))

    if behaviour:
        steps.append(step("decode-behaviour", "decoding", "Train", {
            "decoder": {"name": params.behaviour_decoder, "history_bins": params.history_bins},
            "n_folds": params.n_folds, "n_shuffles": params.n_shuffles, "seed": params.seed},
            {"features": output("bin", "counts"), "targets": output("bin", "behaviour")}))

    fit_params: dict[str, Any] = {
        "method": {"name": params.reduction_method, "params": {"n_components": params.n_components}},
        "preprocessing": {"smooth_sigma_bins": params.smooth_sigma_bins, "soft_normalize": params.soft_normalize,
                          "trial_average": bool(conditions and params.trial_average)},
        "seed": params.seed}
    if trials:
        fit_inputs = {"activity": output("epoch", "activity")}
        if conditions:
            fit_inputs["conditions"] = output("epoch", "conditions")
    else:
        fit_inputs = {"activity": output("bin", "counts")}
    steps.append(step("reduce", "reduction", "Fit", fit_params, fit_inputs))

    if conditions:
        train_inputs = {"features": output("epoch", "samples"), "targets": output("epoch", "sample_conditions"),
                        "trial_index": output("epoch", "sample_trials")}
        if params.time_resolved:
            train_inputs["time_in_trial"] = output("epoch", "sample_times")
        # history 0: each bin is classified alone; a window would reach into the previous trial
        # of the stacked samples, which may sit in another fold
        steps.append(step("decode-condition", "decoding", "Train", {
            "decoder": {"name": params.condition_decoder, "history_bins": 0},
            "n_folds": params.n_folds, "n_shuffles": params.n_shuffles, "seed": params.seed}, train_inputs))
    return steps


RECORDING_ANALYSIS = Pipeline(
    name="recording-analysis",
    description="Bin spike trains (arrays or NWB) with the behaviour, cut them into trials when trials are given, "
                "fit a PCA (trajectories and condition averages per condition), and cross-validate decoders of "
                "the behaviour and of the condition; with their figures.",
    params_model=RecordingAnalysisParams, inputs=INPUTS, template=_template)
