"""``simulate-and-analyse``: a cortical column under several stimuli, then PCA and a condition decoder.

A sweep: the simulation service's ``CorticalColumn`` (Potjans & Diesmann 2014 layers with a
thalamus) is run once per (run, condition), each condition a thalamic stimulus (rate, modulation
frequency, depth). The runs are independent steps, so the job runner spreads them over the
simulation replicas (the fan-out); local steps gather them (the fan-in).

DAG::

    simulate-r0-c0 ... simulate-r{R-1}-c{C-1}          (simulation.Simulate, R x C steps)
        | binned_counts (runs.0 ... runs.{RC-1})       | population_rates
        stack (gateway.StackCounts)                    stack-rates (gateway.StackCounts, the
          --activity, conditions--> reduce               counted populations' columns)
            (reduction.Fit: PCA, trajectories            --samples, sample_conditions,
             per condition)                                sample_trials--> decode (decoding.Train)

- Run ``r`` of every condition uses network seed ``seed + r``: the same network and background
  noise meet each stimulus (a paired design). The seed sets the connectivity too, so the runs
  are different random networks, and cross-validation (folds of whole runs) asks whether the
  condition can be told in a network instance the decoder was not trained on.
- The decoder reads each counted *population's* rate per bin (``population_rates``), not single
  neurons: neuron ``k`` of one random network is not neuron ``k`` of another, so weights on
  single neurons do not carry over between instances (measured on this circuit: about chance
  per neuron, and from the PCA latents, against about 0.95 from the layers' rates at scale
  0.05, no stimulus against 60 Hz). The PCA (``reduce``) does see every neuron.
- Trial ``k = r * C + c`` is run ``r`` of condition ``c``: the trials alternate between the
  conditions, so every cross-validation fold (contiguous trials) holds every condition.
- The counted populations default to the nine cortical ones: counting the thalamus would decode
  the stimulus itself.
- ``skip_bins`` drops the first bins of every run, the onset transient all conditions share.
- At scales much below the default 0.05 the column's rates vary between network instances more
  than a moderate stimulus moves them (few, strong synapses): expect the decoder near chance
  unless the stimuli differ strongly.

Figures: each run's raster (``figure``), ``stack``'s and ``stack-rates``'s mean rate per
condition, ``reduce``'s latents, trajectories per condition and explained variance, ``decode``'s
confusion matrix.

Example
-------
>>> spec = SIMULATE_AND_ANALYSE.build({"conditions": [{"name": "quiet", "stimulus_rate_hz": 0},
...                                                   {"name": "driven", "stimulus_rate_hz": 60}],
...                                    "runs_per_condition": 3, "duration_ms": 300}, {}, tenant="lab-a")
>>> [s.id for s in spec.steps][:3], len(spec.steps)
(['simulate-r0-c0', 'simulate-r0-c1', 'simulate-r1-c0'], 10)
>>> spec.step("stack").params["conditions"]
[0, 1, 0, 1, 0, 1]
>>> spec.step("simulate-r2-c1").params["network"]["seed"], spec.step("decode").params["n_folds"]
(3, 3)
>>> spec.step("decode").inputs["features"].step, spec.step("stack-rates").params["columns"]
('stack-rates', [0, 1, 2, 3, 4, 5, 6, 7, 8])
>>> SIMULATE_AND_ANALYSE.steps({"conditions": [{"stimulus_rate_hz": 5}]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gateway.pipelines.base.PipelineError: invalid job: params.conditions: List should have at least 2 items...
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.pipelines.base import Pipeline, PipelineError, output, step
from gateway.pipelines.local import LOCAL_SERVICE

COLUMN_POPULATIONS = ("L1_inh", "L23_exc", "L23_inh", "L4_exc", "L4_inh", "L5_exc", "L5_inh", "L6_exc", "L6_inh",
                      "thalamus")
"""The populations of ``CorticalColumn``, as its message in simulation.proto lists them."""
CORTICAL_POPULATIONS = COLUMN_POPULATIONS[:-1]
MAX_SIMULATIONS = 500


class StimulusCondition(BaseModel):
    """One stimulus of the sweep: the thalamus's rate and modulation (unset: the circuit's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", max_length=64, description="shown in the figures; default 'condition <k>'")
    stimulus_rate_hz: float | None = Field(None, ge=0, le=1000, description="mean rate of the thalamic neurons")
    stimulus_frequency_hz: float | None = Field(None, ge=0, le=1000, description="modulation frequency")
    stimulus_depth: float | None = Field(None, ge=0, le=1, description="modulation depth")
    background_rate_hz: float | None = Field(None, ge=0, le=1000, description="rate of each background source")


class SimulateAndAnalyseParams(BaseModel):
    """Parameters of ``simulate-and-analyse``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[StimulusCondition] = Field(
        [StimulusCondition(name="no stimulus", stimulus_rate_hz=0.0),
         StimulusCondition(name="60 Hz", stimulus_rate_hz=60.0, stimulus_depth=0.0)],
        min_length=2, max_length=32, description="the stimuli compared, at least two")
    runs_per_condition: int = Field(3, ge=1, le=100, description="runs of every condition (network seeds)")
    seed: int = Field(1, ge=0, le=2**31 - 1, description="run r has network seed seed + r in every condition")
    scale: float = Field(0.05, gt=0, le=1, description="fraction of the full column's 78,000 neurons")
    duration_ms: float = Field(500.0, gt=0, le=600_000, description="simulated time of each run")
    bin_ms: float = Field(25.0, gt=0, le=10_000, description="width of the count and rate bins")
    dt_ms: float | None = Field(None, gt=0, le=10, description="integration step (unset: the service's 0.1 ms)")
    psp_mv: float | None = Field(None, gt=0, le=10, description="full-scale excitatory PSP (unset: 0.15 mV)")
    count_populations: list[str] = Field(list(CORTICAL_POPULATIONS), min_length=1,
                                         description="populations whose neurons are counted (the decoded activity)")
    skip_bins: int = Field(2, ge=0, description="bins dropped at the start of every run (onset transient)")
    n_components: int = Field(5, ge=1, le=200, description="PCA components")
    smooth_sigma_bins: float = Field(1.0, ge=0, le=1000, description="Gaussian smoothing along time, in bins")
    trial_average: bool = Field(False, description="fit the condition averages instead of the single trials")
    decoder: Literal["logistic", "mlp_classifier"] = Field("logistic", description="classifier of the condition")
    n_folds: int | None = Field(None, ge=2, le=100, description="folds of whole trials; default min(runs, 5), "
                                                                "at least 2")
    n_shuffles: int = Field(2, ge=0, le=1000, description="shuffled-label control runs")

    @field_validator("count_populations")
    @classmethod
    def _known_populations(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in COLUMN_POPULATIONS]
        if unknown:
            raise ValueError(f"unknown populations {unknown}; the column has {', '.join(COLUMN_POPULATIONS)}")
        if len(set(value)) != len(value):
            raise ValueError("a population is listed twice")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> "SimulateAndAnalyseParams":
        names = [c.name for c in self.conditions if c.name]
        if len(set(names)) != len(names):
            raise ValueError("condition names must differ")
        if len(self.conditions) * self.runs_per_condition > MAX_SIMULATIONS:
            raise ValueError(f"{len(self.conditions)} conditions x {self.runs_per_condition} runs is more than "
                             f"{MAX_SIMULATIONS} simulations")
        if self.bin_ms > self.duration_ms:
            raise ValueError(f"bin_ms ({self.bin_ms}) is longer than a run ({self.duration_ms} ms)")
        n_bins = math.floor(self.duration_ms / self.bin_ms + 1e-9)
        if self.skip_bins >= n_bins:
            raise ValueError(f"skip_bins ({self.skip_bins}) leaves none of the {n_bins} bins of a run")
        if self.n_folds is not None and self.n_folds > self.n_trials:
            raise ValueError(f"n_folds ({self.n_folds}) is more than the {self.n_trials} trials")
        return self

    @property
    def n_trials(self) -> int:
        return len(self.conditions) * self.runs_per_condition

    @property
    def folds(self) -> int:
        """Folds of whole runs by default: each fold tests whole network instances."""
        return self.n_folds if self.n_folds is not None else max(2, min(5, self.runs_per_condition))


def _column(params: SimulateAndAnalyseParams, condition: StimulusCondition) -> dict[str, Any]:
    column: dict[str, Any] = {"scale": params.scale}
    for name in ("stimulus_rate_hz", "stimulus_frequency_hz", "stimulus_depth", "background_rate_hz"):
        value = getattr(condition, name)
        if value is not None:
            column[name] = value
    if params.psp_mv is not None:
        column["psp_mv"] = params.psp_mv
    return column


def _template(params: SimulateAndAnalyseParams, inputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if inputs:  # pragma: no cover - the pipeline declares no inputs, so artifact_inputs refuses any
        raise PipelineError([("inputs", "simulate-and-analyse takes no inputs")])
    steps: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    labels: list[int] = []
    for r in range(params.runs_per_condition):
        for c, condition in enumerate(params.conditions):
            network: dict[str, Any] = {"seed": params.seed + r, "cortical_column": _column(params, condition)}
            if params.dt_ms is not None:
                network["dt_ms"] = params.dt_ms
            step_id = f"simulate-r{r}-c{c}"
            steps.append(step(step_id, "simulation", "Simulate", {
                "network": network, "duration_ms": params.duration_ms, "bin_ms": params.bin_ms,
                "count_populations": list(params.count_populations)}))
            runs[f"runs.{len(labels)}"] = output(step_id, "binned_counts")
            labels.append(c)
    names = [c.name or f"condition {k}" for k, c in enumerate(params.conditions)]
    stacking = {"conditions": labels, "condition_names": names, "bin_s": params.bin_ms / 1000.0,
                "skip_bins": params.skip_bins}
    steps.append(step("stack", LOCAL_SERVICE, "StackCounts", stacking, runs))
    # population_rates has a column per population of the circuit, in its order
    columns = [COLUMN_POPULATIONS.index(name) for name in params.count_populations]
    steps.append(step("stack-rates", LOCAL_SERVICE, "StackCounts", {**stacking, "columns": columns,
                                                                     "quantity": "rates_hz"},
                      {path: output(ref["step"], "population_rates") for path, ref in runs.items()}))
    steps.append(step("reduce", "reduction", "Fit", {
        "method": {"name": "pca", "params": {"n_components": params.n_components}},
        "preprocessing": {"smooth_sigma_bins": params.smooth_sigma_bins, "trial_average": params.trial_average},
        "seed": params.seed}, {"activity": output("stack", "activity"), "conditions": output("stack", "conditions")}))
    steps.append(step("decode", "decoding", "Train", {
        "decoder": {"name": params.decoder, "history_bins": 0}, "n_folds": params.folds,
        "n_shuffles": params.n_shuffles, "seed": params.seed},
        {"features": output("stack-rates", "samples"), "targets": output("stack-rates", "sample_conditions"),
         "trial_index": output("stack-rates", "sample_trials")}))
    return steps


SIMULATE_AND_ANALYSE = Pipeline(
    name="simulate-and-analyse",
    description="Simulate a cortical column under several thalamic stimuli (runs x conditions, one step each, "
                "spread over the simulation replicas), stack the runs' binned counts into trials with their "
                "conditions, fit a PCA, and cross-validate a classifier of the condition from the layers' rates.",
    params_model=SimulateAndAnalyseParams, inputs=(), template=_template)
