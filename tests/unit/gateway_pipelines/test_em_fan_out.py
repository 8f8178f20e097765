"""em-to-connectome's fan-out: which volumes are split, into which steps, wired how.

The jobs are checked as submission checks them (the services' contracts by reflection), so a
wrong field path or output name fails here, not when the job runs.
"""

from __future__ import annotations

import pytest

from gateway.api.models import JobRequest
from gateway.api.submission import build_job_spec
from gateway.calls.methods import MethodTable
from gateway.pipelines import PIPELINES, GatewayMethodTable, check_steps
from gateway.pipelines.em_to_connectome import n_blocks

SHA = "0" * 64
TILING = {"block_shape": [16, 32, 32], "halo": [4, 8, 8]}


@pytest.fixture(scope="module")
def methods() -> GatewayMethodTable:
    return GatewayMethodTable(MethodTable.from_generated())


def ref(key: str, shape=None) -> dict:
    return {"key": key, "sha256": SHA, **({"shape": list(shape)} if shape else {})}


def job(methods, params, inputs, shapes=None):
    steps = PIPELINES["em-to-connectome"].steps(params, inputs, shapes=shapes)
    check_steps(steps, methods)
    spec = build_job_spec(JobRequest.model_validate({"steps": steps}), tenant="lab-a", idempotency_key=None,
                          methods=methods, resolve=None)
    return spec, {s.id: s for s in spec.steps}


def upstream(step) -> dict[str, tuple[str, str]]:
    return {path: (v.step, v.output) for path, v in step.inputs.items() if hasattr(v, "step")}


def test_block_counts_follow_the_tiling():
    assert n_blocks((32, 64, 64), (16, 32, 32)) == 8
    assert n_blocks((33, 64, 65), (16, 32, 32)) == 3 * 2 * 3          # partial blocks count
    assert n_blocks((64, 256, 256), None) == 1 and n_blocks((65, 256, 257), None) == 4   # the service's default


def test_a_volume_of_more_blocks_than_the_threshold_is_fanned_out_in_groups(methods):
    params = {**TILING, "fan_out_blocks": 4, "blocks_per_step": 3, "thresholds": [0.4, 0.6], "threshold": 0.6,
              "min_segment_size": 10}
    spec, by_id = job(methods, params, {"raw": ref("em/raw", (32, 64, 64)), "ground_truth": ref("em/truth"),
                                        "model": ref("models/unet.pt")})
    groups = {"0": [0, 1, 2], "1": [3, 4, 5], "2": [6, 7]}              # 8 blocks, 3 a step, the last smaller
    deps = spec.dependencies()
    for g, indices in groups.items():
        boundaries, fragments = by_id[f"boundaries-{g}"], by_id[f"fragments-{g}"]
        assert boundaries.method == fragments.method == "SegmentBlocks"
        assert boundaries.params["stage"] == "SEGMENT_BLOCKS_STAGE_BOUNDARIES"
        assert fragments.params["stage"] == "SEGMENT_BLOCKS_STAGE_FRAGMENTS"
        assert boundaries.params["block_indices"] == fragments.params["block_indices"] == indices
        assert deps[f"boundaries-{g}"] == []
        assert sorted(deps[f"fragments-{g}"]) == ["boundaries-0", "boundaries-1", "boundaries-2"]
        # the block stages take neither thresholds nor ground truth: the step cache keeps them
        assert "thresholds" not in boundaries.params["segment"] and "min_segment_size" not in fragments.params["segment"]
        assert sorted(p for p in boundaries.inputs) == ["segment.model", "segment.raw.ref"]
        # every block's boundaries, from the step and position that computed it
        wired = upstream(fragments)
        assert wired == {f"block_boundaries.{k}": (f"boundaries-{k // 3}", f"boundaries.{k % 3}") for k in range(8)}
    merge = by_id["segment"]
    assert merge.method == "MergeSegmentBlocks" and merge.params["segment"]["thresholds"] == [0.4, 0.6]
    assert merge.params["segment"]["min_segment_size"] == 10 and merge.params["segment"]["block_shape"] == [16, 32, 32]
    wired = upstream(merge)
    assert {p: wired[p] for p in ("block_boundaries.7", "block_fragments.0", "block_fragments.7")} == {
        "block_boundaries.7": ("boundaries-2", "boundaries.1"), "block_fragments.0": ("fragments-0", "fragments.0"),
        "block_fragments.7": ("fragments-2", "fragments.1")}
    # and every block's stitching labels, from the FRAGMENTS step that computed the block
    assert {p: wired[p] for p in ("block_stitching.0", "block_stitching.7")} == {
        "block_stitching.0": ("fragments-0", "stitching.0"), "block_stitching.7": ("fragments-2", "stitching.1")}
    assert len(wired) == 24 and {"segment.raw.ref", "segment.model", "segment.ground_truth.ref"} <= set(merge.inputs)
    assert upstream(by_id["contacts"]) == {"segmentation.ref": ("segment", "segmentations.1.labels")}


@pytest.mark.parametrize("inputs, shapes", [
    ({"raw": ref("em/raw", (32, 64, 64))}, None),            # 8 blocks, not more than 8
    ({"raw": ref("em/raw")}, None),                          # shape unknown (a key, or a TIFF object): one call
    ({"raw": ref("em/raw")}, {"raw": [16, 32, 32]}),        # one block
])
def test_a_volume_of_few_blocks_or_of_unknown_shape_is_one_segment_step(methods, inputs, shapes):
    spec, by_id = job(methods, {**TILING, "fan_out_blocks": 8}, inputs, shapes)
    assert [s.id for s in spec.topological_order()] == ["segment", "contacts"]
    assert by_id["segment"].method == "Segment"


def test_shapes_given_by_the_caller_decide(methods):
    spec, _ = job(methods, {**TILING, "fan_out_blocks": 1, "blocks_per_step": 8}, {"raw": ref("em/raw")},
                  {"raw": [32, 64, 64]})
    assert [s.id for s in spec.topological_order()] == ["boundaries-0", "fragments-0", "segment", "contacts"]
