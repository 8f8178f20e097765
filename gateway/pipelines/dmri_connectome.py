"""``dmri-connectome``: a diffusion-MRI connectome tracked in shards across replicas, summed, then analysed.

Tracking is the cost of a diffusion connectome, and it splits: ``DiffusionConnectome`` tracks
every ``shard_count``-th seed from ``shard_index``. One step per shard lets the job runner spread
the shards over the connectomics replicas (the fan-out). Every normalisation of the matrix is a
sum over streamlines (see :mod:`gateway.pipelines.matrices`), so the local ``SumMatrices`` steps
add the shards' ``count``, ``volume`` and ``length`` matrices into the whole brain's (the
fan-in): with deterministic tracking the summed counts equal one unsharded run exactly, the
other two up to floating-point rounding. Nothing is recomputed from streamlines; each shard
keeps its own streamlines (TRK/TCK), FA map and figures.

DAG::

    track-0 ... track-{S-1} (connectomics.DiffusionConnectome, shard k of S; no graph measures)
        \\ matrices.<n>.matrix, region_labels, report
         sum-count, sum-volume, sum-length (gateway.SumMatrices)
                           \\ sum of `normalization`
                            analyze (connectomics.AnalyzeGraph: graph measures of the whole matrix)

Each ``sum-*`` step checks that the shards share their region labels and, through each shard's
report, that the matrix it adds is the normalisation it is named after (the matrices of a result
are a repeated field addressed by index: 0 count, 1 volume, 2 length).

Figures: each shard's ``heatmap`` and ``fa_figure``, and each sum's ``figure`` (heatmap of the
whole matrix). AnalyzeGraph's outputs are tables (node measures CSV, rich club) and GraphML.

Example
-------
>>> ref = lambda key: {"key": key, "sha256": 64 * "0"}
>>> spec = DMRI_CONNECTOME.build({"shards": 2, "model": "csa"},
...                              {name: ref(f"scan/{name}") for name in ("dwi", "bvals", "bvecs", "parcellation")},
...                              tenant="lab-a")
>>> [s.id for s in spec.topological_order()]
['track-0', 'track-1', 'sum-count', 'sum-volume', 'sum-length', 'analyze']
>>> spec.step("track-1").params["shard_index"], spec.step("track-1").params["shard_count"]
(1, 2)
>>> sorted(spec.step("sum-count").inputs)
['labels.0', 'labels.1', 'matrices.0', 'matrices.1', 'reports.0', 'reports.1']
>>> spec.step("analyze").inputs["matrix"].step
'sum-volume'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.pipelines.base import (Pipeline, PipelineInput, check_measures, measures_options, output, step)
from gateway.pipelines.local import LOCAL_SERVICE

NORMALIZATIONS = ("count", "volume", "length")
"""In the order DiffusionConnectome lists them in ``matrices`` (checked by SumMatrices against the reports)."""
MAX_SHARDS = 256


class DmriConnectomeParams(BaseModel):
    """Parameters of ``dmri-connectome``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shards: int = Field(2, ge=1, le=MAX_SHARDS, description="tracking steps, each tracking every shards-th seed")
    model: Literal["csd", "csa", "dti"] = Field("csd", description="fibre model")
    tracking: Literal["deterministic", "probabilistic"] = Field(
        "deterministic", description="deterministic shards sum exactly to an unsharded run")
    seeds_per_voxel: int = Field(1, ge=1, le=10, description="seeds per voxel along each axis (n^3 per voxel)")
    seed_fa_threshold: float | None = Field(None, ge=0, lt=1, description="seeds where FA exceeds it (unset 0.3)")
    stop_fa_threshold: float | None = Field(None, ge=0, lt=1, description="tracking stops below it (unset 0.2)")
    step_size_mm: float = Field(0.0, ge=0, le=100, description="step length (0: half the smallest voxel side)")
    max_angle_deg: float = Field(0.0, ge=0, le=90, description="largest turn per step (0: 30 degrees)")
    min_length_mm: float = Field(0.0, ge=0, description="shorter streamlines are dropped")
    max_length_mm: float = Field(0.0, ge=0, description="tracking stops at this length (0: 250 mm)")
    processes_per_shard: int = Field(1, ge=1, le=64, description="tracking processes inside each shard's call")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of probabilistic tracking and random graphs")
    normalization: Literal["count", "volume", "length"] = Field(
        "volume", description="the summed matrix whose graph measures are computed (the service's own choice is "
                              "volume: counts by sqrt of region volumes)")
    measures: list[str] = Field([], description="graph measures (empty: the service's default)")
    n_random: int = Field(0, ge=0, le=1000, description="random graphs of the normalised measures (0: 20)")

    @field_validator("measures")
    @classmethod
    def _measures(cls, value: list[str]) -> list[str]:
        return check_measures(value)

    @model_validator(mode="after")
    def _lengths(self) -> "DmriConnectomeParams":
        if self.max_length_mm and self.min_length_mm > self.max_length_mm:
            raise ValueError(f"min_length_mm ({self.min_length_mm}) exceeds max_length_mm ({self.max_length_mm})")
        return self


INPUTS = (
    PipelineInput("dwi", "4-D diffusion-weighted volume, NIfTI (.nii or .nii.gz)", required=True, kind="object"),
    PipelineInput("bvals", "FSL b-values text file", required=True, kind="object"),
    PipelineInput("bvecs", "FSL gradient directions text file", required=True, kind="object"),
    PipelineInput("parcellation", "integer region labels on the DWI's grid, NIfTI", required=True, kind="object"),
    PipelineInput("mask", "brain mask, NIfTI (default: median Otsu on the b0 volumes)", kind="object"),
)


def _template(params: DmriConnectomeParams, inputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    track_inputs = {name: inputs[name] for name in ("dwi", "bvals", "bvecs", "parcellation", "mask") if name in inputs}
    base: dict[str, Any] = {
        "model": f"FIBRE_MODEL_{params.model.upper()}", "tracking": f"TRACKING_METHOD_{params.tracking.upper()}",
        "seeds_per_voxel": params.seeds_per_voxel, "step_size_mm": params.step_size_mm,
        "max_angle_deg": params.max_angle_deg, "min_length_mm": params.min_length_mm,
        "max_length_mm": params.max_length_mm, "processes": params.processes_per_shard, "seed": params.seed,
        # measures of a shard would describe a part of the brain: computed once, on the sum
        "measures": {"skip": True}}
    for name in ("seed_fa_threshold", "stop_fa_threshold"):
        value = getattr(params, name)
        if value is not None:
            base[name] = value
    steps = []
    for k in range(params.shards):
        shard = {"shard_index": k, "shard_count": params.shards} if params.shards > 1 else {}
        steps.append(step(f"track-{k}", "connectomics", "DiffusionConnectome", {**base, **shard}, track_inputs))
    for n, normalization in enumerate(NORMALIZATIONS):
        sum_inputs: dict[str, Any] = {}
        for k in range(params.shards):
            sum_inputs[f"matrices.{k}"] = output(f"track-{k}", f"matrices.{n}.matrix")
            sum_inputs[f"labels.{k}"] = output(f"track-{k}", "region_labels")
            sum_inputs[f"reports.{k}"] = output(f"track-{k}", "report")
        steps.append(step(f"sum-{normalization}", LOCAL_SERVICE, "SumMatrices", {
            "normalization": normalization,
            "title": f"{normalization} matrix, {params.shards} shard{'s' if params.shards > 1 else ''}"},
            sum_inputs))
    steps.append(step("analyze", "connectomics", "AnalyzeGraph", {
        "measures": measures_options(params.measures, seed=params.seed, n_random=params.n_random)},
        {"matrix": output(f"sum-{params.normalization}", "sum")}))
    return steps


DMRI_CONNECTOME = Pipeline(
    name="dmri-connectome",
    description="Track a diffusion-MRI connectome in shards of seeds (one DiffusionConnectome step per shard, "
                "spread over the connectomics replicas), sum the shards' count, volume and length matrices, and "
                "compute the graph measures of the whole matrix.",
    params_model=DmriConnectomeParams, inputs=INPUTS, template=_template)
