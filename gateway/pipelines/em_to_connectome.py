"""``em-to-connectome``: segment an EM volume into neurons, then graph which neurons touch.

DAG::

    segment (segmentation.Segment) --segmentations.<i>.labels--> contacts (connectomics.ContactGraph)
                                                                   [--edge_table--> analyze
                                                                    (connectomics.AnalyzeGraph)]

A volume of more than ``fan_out_blocks`` blocks (raw given as a stored array: its shape tells
the tiling) is segmented in pieces instead, ``blocks_per_step`` blocks a step::

    boundaries-<g> (SegmentBlocks, stage BOUNDARIES) --boundaries.<j>--> fragments-<g> (SegmentBlocks,
    stage FRAGMENTS; every block's boundaries) --fragments.<j>, stitching.<j>--> segment
    (MergeSegmentBlocks: stitches the fragments cut by block faces, then agglomerates)

The group steps run at once (up to the runner's step concurrency), each call on the next live
segmentation replica; one that fails UNAVAILABLE moves to another replica at once, which reuses
the blocks the dead one had stored. ``segment`` gathers every block into the same result as
Segment (labels equal to one Segment call's), so ``contacts`` and ``analyze`` do not change.

- ``segment`` finds boundaries (the classical smoothed-intensity map, or a trained checkpoint
  given as the ``model`` input), cuts the volume into watershed fragments, agglomerates them and
  cuts the merge tree at every threshold of ``thresholds`` in one run; with ``ground_truth`` it
  scores every segmentation (VOI, adapted Rand, CREMI).
- ``contacts`` builds the contact graph of the segmentation at ``threshold`` (index ``i`` of
  ``thresholds``): segments as nodes, shared voxel faces and their area as edges, with the graph
  measures (``measures``; empty: the service's default set).
- ``analyze`` (with ``analyze``) computes further measures of the contact graph weighted by
  contact area, e.g. the rich club and small-worldness against degree-preserving random graphs,
  which the service leaves out by default because they cost ``n_random`` graph shuffles.

Figures: ``segment``'s ``figure`` (raw, boundaries and labels of a few sections) and
``contacts``'s ``heatmap`` (contact areas between the largest segments).

Example
-------
>>> raw = {"key": "em/raw", "sha256": 64 * "0"}
>>> spec = EM_TO_CONNECTOME.build({"thresholds": [0.3, 0.5, 0.7], "threshold": 0.5, "analyze": True},
...                               {"raw": raw}, tenant="lab-a")
>>> [s.id for s in spec.topological_order()]
['segment', 'contacts', 'analyze']
>>> spec.step("contacts").inputs["segmentation.ref"].output
'segmentations.1.labels'
>>> big = {**raw, "shape": [64, 128, 128]}            # 2 x 2 x 2 blocks of 32 x 64 x 64
>>> steps = EM_TO_CONNECTOME.steps({"block_shape": [32, 64, 64], "fan_out_blocks": 4, "blocks_per_step": 4},
...                                {"raw": big})
>>> [(s["id"], s["method"]) for s in steps][:3], steps[2]["params"]["block_indices"]
([('boundaries-0', 'SegmentBlocks'), ('boundaries-1', 'SegmentBlocks'), ('fragments-0', 'SegmentBlocks')], [0, 1, 2, 3])
>>> steps[4]["id"], steps[4]["method"], len(steps[4]["inputs"])
('segment', 'MergeSegmentBlocks', 25)
>>> EM_TO_CONNECTOME.steps({"thresholds": [0.3], "threshold": 0.5}, {"raw": raw})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gateway.pipelines.base.PipelineError: invalid job: params: threshold 0.5 is not one of thresholds [0.3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.pipelines.base import (Pipeline, PipelineInput, check_measures, measures_options, output, step)
from services.segmentation.requests import DEFAULT_BLOCK_SHAPE

Triple = tuple[float, float, float]
IntTriple = tuple[int, int, int]


class EmToConnectomeParams(BaseModel):
    """Parameters of ``em-to-connectome``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voxel_size_nm: tuple[float, float, float] | None = Field(None, description="(z, y, x) voxel size in nm "
                                                                               "(unset: 1 nm isotropic)")
    block_shape: tuple[int, int, int] | None = Field(None, description="blocks (z, y, x) of the blockwise "
                                                                       "segmentation and contact counting")
    halo: tuple[int, int, int] | None = Field(None, description="context voxels on each side of a block")
    sigma_nm: float = Field(0.0, ge=0, description="classical boundaries: Gaussian sigma in nm (0: one voxel)")
    bright_membranes: bool = Field(False, description="classical boundaries: membranes are bright")
    patch_shape: tuple[int, int, int] | None = Field(None, description="with a model: inference window (z, y, x)")
    boundary_threshold: float | None = Field(None, gt=0, le=1, description="watershed seeds below this boundary")
    min_seed_distance: int | None = Field(None, ge=0, le=1000, description="voxels between watershed seeds")
    per_section: bool = Field(False, description="watershed each z section in 2-D (anisotropic data)")
    thresholds: list[float] = Field([0.5], min_length=1, max_length=32,
                                    description="agglomeration thresholds, one segmentation each")
    threshold: float | None = Field(None, description="the threshold whose segmentation is graphed (default: the "
                                                      "first of thresholds)")
    min_segment_size: int = Field(0, ge=0, description="segments smaller than this are merged into a neighbour")
    min_contact_faces: int = Field(0, ge=0, description="contacts of fewer voxel faces are left out")
    measures: list[str] = Field([], description="graph measures of the contact graph "
                                                                  "(empty: the service's default set)")
    analyze: bool = Field(False, description="also run AnalyzeGraph on the contact graph")
    analyze_measures: list[str] = Field(["rich_club", "rich_club_normalized", "small_world"],
                                        min_length=1, description="measures of AnalyzeGraph")
    n_random: int = Field(20, ge=1, le=1000, description="random graphs of the normalised measures")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of random graphs and community detection")
    fan_out_blocks: int = Field(8, ge=1, le=100_000, description="a volume of more blocks than this is segmented "
                                "as one step per group of blocks, spread over the segmentation replicas, then "
                                "gathered (needs raw as a stored array, whose shape tells the blocks)")
    blocks_per_step: int = Field(4, ge=1, le=100_000, description="blocks of one fan-out step")

    @field_validator("voxel_size_nm")
    @classmethod
    def _positive_voxels(cls, value: Triple | None) -> Triple | None:
        if value is not None and not all(v > 0 for v in value):
            raise ValueError(f"voxel sizes must be > 0, got {list(value)}")
        return value

    @field_validator("block_shape", "patch_shape")
    @classmethod
    def _positive_shape(cls, value: IntTriple | None) -> IntTriple | None:
        if value is not None and not all(v >= 1 for v in value):
            raise ValueError(f"every length must be >= 1, got {list(value)}")
        return value

    @field_validator("halo")
    @classmethod
    def _non_negative(cls, value: IntTriple | None) -> IntTriple | None:
        if value is not None and not all(v >= 0 for v in value):
            raise ValueError(f"halos must be >= 0, got {list(value)}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[float]) -> list[float]:
        if not all(0 <= t <= 1 for t in value):
            raise ValueError(f"thresholds must lie in [0, 1], got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"thresholds must be distinct, got {value}")
        return value

    @field_validator("measures", "analyze_measures")
    @classmethod
    def _measures(cls, value: list[str]) -> list[str]:
        return check_measures(value)

    @model_validator(mode="after")
    def _chosen_threshold(self) -> "EmToConnectomeParams":
        if self.threshold is not None and self.threshold not in self.thresholds:
            raise ValueError(f"threshold {self.threshold} is not one of thresholds {self.thresholds}")
        return self

    @property
    def threshold_index(self) -> int:
        return 0 if self.threshold is None else self.thresholds.index(self.threshold)


INPUTS = (
    PipelineInput("raw", "EM intensities (z, y, x): a Zarr array, or a .npy/TIFF object", required=True),
    PipelineInput("model", "a boundary checkpoint from TrainBoundaryModel (default: classical boundaries)",
                  kind="object"),
    PipelineInput("ground_truth", "true labels of raw's shape, to score the segmentations"),
)


def n_blocks(shape: Sequence[int], block_shape: Sequence[int] | None) -> int:
    """Blocks of the segmentation's tiling of a ``(z, y, x)`` volume (the service's default block shape
    when unset): the last block along an axis may be smaller.

    >>> n_blocks((32, 64, 64), (16, 32, 32)), n_blocks((32, 64, 64), None)
    (8, 1)
    """
    blocks = tuple(block_shape or DEFAULT_BLOCK_SHAPE)
    return math.prod(-(-int(n) // int(b)) for n, b in zip(shape, blocks))


def _segment_steps(params: EmToConnectomeParams, segment_params: dict[str, Any], segment_inputs: dict[str, Any],
                   count: int) -> list[dict[str, Any]]:
    """The fan-out of ``segment`` over ``count`` blocks: the blocks' boundaries a group per step, then
    their fragments (each group reads every block's boundaries: a block's halo sees its
    neighbours'), then ``segment`` gathers them (MergeSegmentBlocks: the same outputs as Segment)."""
    per = params.blocks_per_step
    groups = [list(range(start, min(start + per, count))) for start in range(0, count, per)]
    # The block stages read neither the thresholds nor the ground truth: left out, so that the step
    # cache reuses the blocks when only those change.
    tiling = {k: v for k, v in segment_params.items() if k not in ("thresholds", "min_segment_size")}
    tiling_inputs = {f"segment.{k}": v for k, v in segment_inputs.items() if k != "ground_truth.ref"}
    boundaries = {k: output(f"boundaries-{g}", f"boundaries.{k - group[0]}")
                  for g, group in enumerate(groups) for k in group}
    fragments = {k: output(f"fragments-{g}", f"fragments.{k - group[0]}") for g, group in enumerate(groups) for k in group}
    # each block's labels where it meets its neighbours: the merge stitches the fragments cut by block faces
    stitching = {k: output(f"fragments-{g}", f"stitching.{k - group[0]}") for g, group in enumerate(groups) for k in group}
    steps = [step(f"boundaries-{g}", "segmentation", "SegmentBlocks",
                  {"segment": tiling, "stage": "SEGMENT_BLOCKS_STAGE_BOUNDARIES", "block_indices": group},
                  tiling_inputs) for g, group in enumerate(groups)]
    steps += [step(f"fragments-{g}", "segmentation", "SegmentBlocks",
                   {"segment": tiling, "stage": "SEGMENT_BLOCKS_STAGE_FRAGMENTS", "block_indices": group},
                   {**tiling_inputs, **{f"block_boundaries.{k}": boundaries[k] for k in range(count)}})
              for g, group in enumerate(groups)]
    steps.append(step("segment", "segmentation", "MergeSegmentBlocks", {"segment": segment_params}, {
        **{f"segment.{k}": v for k, v in segment_inputs.items()},
        **{f"block_boundaries.{k}": boundaries[k] for k in range(count)},
        **{f"block_fragments.{k}": fragments[k] for k in range(count)},
        **{f"block_stitching.{k}": stitching[k] for k in range(count)}}))
    return steps


def _template(params: EmToConnectomeParams, inputs: dict[str, dict[str, Any]],
              shapes: dict[str, tuple[int, ...]]) -> list[dict[str, Any]]:
    segment_params: dict[str, Any] = {"thresholds": list(params.thresholds),
                                      "min_segment_size": params.min_segment_size}
    segment_inputs: dict[str, Any] = {"raw.ref": inputs["raw"]}
    if "model" in inputs:
        segment_inputs["model"] = inputs["model"]
        if params.patch_shape is not None:
            segment_params["patch_shape"] = list(params.patch_shape)
    else:
        # set even when empty: choosing the classical map is setting the oneof's branch
        segment_params["classical"] = {"sigma_nm": params.sigma_nm, "bright_membranes": params.bright_membranes}
    if "ground_truth" in inputs:
        segment_inputs["ground_truth.ref"] = inputs["ground_truth"]
    for name in ("voxel_size_nm", "block_shape", "halo"):
        value = getattr(params, name)
        if value is not None:
            segment_params[name] = list(value)
    watershed: dict[str, Any] = {"per_section": params.per_section}
    if params.boundary_threshold is not None:
        watershed["boundary_threshold"] = params.boundary_threshold
    if params.min_seed_distance is not None:
        watershed["min_seed_distance"] = params.min_seed_distance
    segment_params["watershed"] = watershed
    count = n_blocks(shapes["raw"], params.block_shape) if len(shapes.get("raw", ())) == 3 else 0
    if count > params.fan_out_blocks:
        steps = _segment_steps(params, segment_params, segment_inputs, count)
    else:
        steps = [step("segment", "segmentation", "Segment", segment_params, segment_inputs)]

    contact_params: dict[str, Any] = {"min_contact_faces": params.min_contact_faces,
                                      "measures": measures_options(params.measures, seed=params.seed)}
    for name in ("voxel_size_nm", "block_shape"):
        value = getattr(params, name)
        if value is not None:
            contact_params[name] = list(value)
    steps.append(step("contacts", "connectomics", "ContactGraph", contact_params, {
        "segmentation.ref": output("segment", f"segmentations.{params.threshold_index}.labels")}))
    if params.analyze:
        steps.append(step("analyze", "connectomics", "AnalyzeGraph", {
            "weight_column": "area_nm2",
            "measures": measures_options(params.analyze_measures, seed=params.seed, n_random=params.n_random)},
            {"edge_table": output("contacts", "edge_table")}))
    return steps


EM_TO_CONNECTOME = Pipeline(
    name="em-to-connectome",
    description="Segment neurons in an EM volume (classical boundaries or a trained checkpoint; several "
                "agglomeration thresholds in one run, scored against ground truth when given), then build the "
                "contact graph of the chosen threshold's segmentation with its graph measures.",
    params_model=EmToConnectomeParams, inputs=INPUTS, template=_template, shape_inputs=("raw",))
