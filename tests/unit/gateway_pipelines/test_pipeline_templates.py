"""Each named pipeline's job for given parameters: its steps, their dependencies, and field paths
that the services' contracts accept (the method table built by reflection over the generated
descriptors, plus the gateway's local operations), checked both by the pipelines' own
``check_steps`` and by the gateway's job submission. Then the refusals of bad params and inputs.
"""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pytest

from gateway.api.models import JobRequest
from gateway.api.submission import build_job_spec
from gateway.calls.methods import MethodTable
from gateway.jobs.errors import JobSpecError
from gateway.pipelines import PIPELINES, GatewayMethodTable, PipelineError, check_steps
from gateway.pipelines.simulate_and_analyse import COLUMN_POPULATIONS
from services.common.errors import InvalidArgument

SHA = "0" * 64


@pytest.fixture(scope="module")
def methods() -> GatewayMethodTable:
    return GatewayMethodTable(MethodTable.from_generated())


def ref(key: str) -> dict:
    return {"key": key, "sha256": SHA}


def checked(name: str, methods, params=None, inputs=None):
    """The pipeline's job, checked as submission checks it; returns (spec, steps by id)."""
    steps = PIPELINES[name].steps(params, inputs)
    check_steps(steps, methods)
    spec = build_job_spec(JobRequest.model_validate({"steps": steps}), tenant="lab-a", idempotency_key=None,
                          methods=methods, resolve=None)
    return spec, {s.id: s for s in spec.steps}


def upstream(step) -> dict[str, tuple[str, str]]:
    return {path: (v.step, v.output) for path, v in step.inputs.items() if hasattr(v, "step")}


def artifacts(step) -> dict[str, str]:
    return {path: v.artifact.key for path, v in step.inputs.items() if hasattr(v, "artifact")}


def problems_of(exc_info) -> dict[str, str]:
    return dict(exc_info.value.problems)


# ------------------------------------------------------------------------------ recording-analysis


SPIKES = {"spike_times": ref("s1/times"), "unit_ids": ref("s1/units")}
BEHAVIOUR = {"behaviour_values": ref("s1/velocity"), "behaviour_timestamps": ref("s1/stamps")}
TRIALS = {"trial_starts": ref("s1/starts"), "trial_conditions": ref("s1/targets")}


def test_recording_analysis_with_spikes_behaviour_and_trials(methods):
    spec, by_id = checked("recording-analysis", methods, {"bin_width_s": 0.02, "n_components": 6, "n_units": 40},
                          {**SPIKES, **BEHAVIOUR, **TRIALS})
    assert spec.dependencies() == {"bin": [], "epoch": ["bin"], "decode-behaviour": ["bin"], "reduce": ["epoch"],
                                   "decode-condition": ["epoch"]}
    assert artifacts(by_id["bin"]) == {"spikes.times": "s1/times", "spikes.unit_ids": "s1/units",
                                       "behaviour.values": "s1/velocity", "behaviour.timestamps": "s1/stamps"}
    assert by_id["bin"].params == {"bin_width_s": 0.02, "start_s": 0.0, "stop_s": 0.0, "spikes": {"n_units": 40}}
    assert by_id["epoch"].service == "gateway" and by_id["epoch"].method == "EpochTrials"
    assert upstream(by_id["epoch"]) == {"counts": ("bin", "counts"), "bin_centres": ("bin", "bin_centres")}
    assert artifacts(by_id["epoch"]) == {"trial_starts": "s1/starts", "trial_conditions": "s1/targets"}
    assert upstream(by_id["reduce"]) == {"activity": ("epoch", "activity"), "conditions": ("epoch", "conditions")}
    assert by_id["reduce"].params["preprocessing"]["trial_average"] is True
    assert by_id["reduce"].params["method"] == {"name": "pca", "params": {"n_components": 6}}
    assert upstream(by_id["decode-behaviour"]) == {"features": ("bin", "counts"), "targets": ("bin", "behaviour")}
    assert by_id["decode-behaviour"].params["decoder"] == {"name": "wiener", "history_bins": 5}
    assert upstream(by_id["decode-condition"]) == {"features": ("epoch", "samples"),
                                                   "targets": ("epoch", "sample_conditions"),
                                                   "trial_index": ("epoch", "sample_trials")}
    assert by_id["decode-condition"].params["decoder"] == {"name": "logistic", "history_bins": 0}


def test_recording_analysis_of_spikes_alone_is_binning_and_pca(methods):
    spec, by_id = checked("recording-analysis", methods, {}, SPIKES)
    assert spec.dependencies() == {"bin": [], "reduce": ["bin"]}
    assert upstream(by_id["reduce"]) == {"activity": ("bin", "counts")}
    assert by_id["reduce"].params["preprocessing"]["trial_average"] is False


def test_recording_analysis_of_an_nwb_file_uses_its_series_and_trials(methods):
    spec, by_id = checked("recording-analysis", methods,
                          {"behaviour_series": "hand", "trial_condition_column": "target", "time_resolved": True,
                           "condition_decoder": "mlp_classifier"}, {"nwb_file": ref("s2/session.nwb")})
    assert artifacts(by_id["bin"]) == {"nwb_file": "s2/session.nwb"}
    assert by_id["bin"].params["behaviour_series"] == "hand"
    assert by_id["bin"].params["trial_condition_column"] == "target"
    assert upstream(by_id["epoch"]) == {"counts": ("bin", "counts"), "bin_centres": ("bin", "bin_centres"),
                                        "trial_index": ("bin", "trial_index"), "condition": ("bin", "condition")}
    assert upstream(by_id["decode-condition"])["time_in_trial"] == ("epoch", "sample_times")
    assert {"decode-behaviour", "decode-condition"} <= set(by_id)


def test_recording_analysis_of_nwb_trials_without_conditions_reduces_trials_only(methods):
    spec, by_id = checked("recording-analysis", methods, {"use_trials": True, "trial_duration_s": 1.5},
                          {"nwb_file": ref("s2/session.nwb")})
    assert spec.dependencies() == {"bin": [], "epoch": ["bin"], "reduce": ["epoch"]}
    assert by_id["epoch"].params["trial_duration_s"] == 1.5
    assert "condition" not in by_id["epoch"].inputs and "conditions" not in by_id["reduce"].inputs
    assert by_id["reduce"].params["preprocessing"]["trial_average"] is False


def test_recording_analysis_with_trials_turned_off_ignores_them(methods):
    spec, _ = checked("recording-analysis", methods, {"use_trials": False}, {**SPIKES, **TRIALS})
    assert sorted(spec.dependencies()) == ["bin", "reduce"]


@pytest.mark.parametrize("params, inputs, field, words", [
    ({}, {}, "inputs", "give spike arrays"),
    ({}, {**SPIKES, "nwb_file": ref("x.nwb")}, "inputs.nwb_file", "not both"),
    ({}, {"spike_times": ref("t")}, "inputs.unit_ids", "go together"),
    ({}, {**SPIKES, "behaviour_values": ref("v")}, "inputs.behaviour_timestamps", "go together"),
    ({}, {**SPIKES, "trial_conditions": ref("c")}, "inputs.trial_conditions", "need trial_starts"),
    ({}, {"nwb_file": ref("x.nwb"), "trial_starts": ref("s")}, "inputs.trial_starts", "own trials table"),
    ({"behaviour_series": "hand"}, SPIKES, "params.behaviour_series", "NWB file"),
    ({"use_trials": True}, SPIKES, "params.use_trials", "trial_starts"),
    ({}, {**SPIKES, "lfp": ref("l")}, "inputs.lfp", "takes no input 'lfp'"),
    ({"bin_width_s": 0}, SPIKES, "params.bin_width_s", "greater than 0"),
    ({"start_s": 5, "stop_s": 2}, SPIKES, "params", "must exceed start_s"),
    ({"behaviour_decoder": "logistic"}, SPIKES, "params.behaviour_decoder", "'wiener'"),
    ({"n_folds": 1}, SPIKES, "params.n_folds", "greater than or equal to 2"),
    ({"colour": "red"}, SPIKES, "params.colour", "Extra inputs are not permitted"),
])
def test_recording_analysis_refuses_what_does_not_make_a_job(params, inputs, field, words):
    with pytest.raises(PipelineError) as info:
        PIPELINES["recording-analysis"].steps(params, inputs)
    assert words in problems_of(info)[field]
    assert isinstance(info.value, JobSpecError) and isinstance(info.value, InvalidArgument)


def test_every_problem_of_params_and_inputs_is_named_at_once():
    with pytest.raises(PipelineError) as info:
        PIPELINES["dmri-connectome"].steps({"shards": 0, "model": "tensor"}, {"dwi": "scan/dwi.nii.gz"})
    assert set(problems_of(info)) == {"params.shards", "params.model", "inputs.bvals", "inputs.bvecs",
                                      "inputs.parcellation"}


# ------------------------------------------------------------------------------ simulate-and-analyse


def test_simulate_and_analyse_fans_out_one_simulation_per_run_and_condition(methods):
    params = {"conditions": [{"name": "quiet", "stimulus_rate_hz": 0}, {"name": "4 Hz", "stimulus_rate_hz": 20,
                                                                         "stimulus_frequency_hz": 4},
                             {"name": "8 Hz", "stimulus_rate_hz": 20, "stimulus_frequency_hz": 8}],
              "runs_per_condition": 2, "seed": 10, "scale": 0.03, "duration_ms": 400, "bin_ms": 5, "skip_bins": 4,
              "dt_ms": 0.1, "psp_mv": 0.2}
    spec, by_id = checked("simulate-and-analyse", methods, params)
    sims = [f"simulate-r{r}-c{c}" for r in range(2) for c in range(3)]
    assert [s.id for s in spec.steps] == sims + ["stack", "stack-rates", "reduce", "decode"]
    assert spec.dependencies()["stack"] == sims and spec.dependencies()["stack-rates"] == sims
    assert spec.dependencies()["reduce"] == ["stack"] and spec.dependencies()["decode"] == ["stack-rates"]
    first = by_id["simulate-r1-c2"].params
    assert first["network"] == {"seed": 11, "dt_ms": 0.1, "cortical_column": {
        "scale": 0.03, "stimulus_rate_hz": 20, "stimulus_frequency_hz": 8, "psp_mv": 0.2}}
    assert first["duration_ms"] == 400 and first["bin_ms"] == 5
    assert first["count_populations"] == [p for p in COLUMN_POPULATIONS if p != "thalamus"]
    stack = by_id["stack"]
    assert upstream(stack) == {f"runs.{k}": (sim, "binned_counts") for k, sim in enumerate(sims)}
    assert stack.params == {"conditions": [0, 1, 2, 0, 1, 2], "condition_names": ["quiet", "4 Hz", "8 Hz"],
                            "bin_s": 0.005, "skip_bins": 4}
    rates = by_id["stack-rates"]
    assert upstream(rates) == {f"runs.{k}": (sim, "population_rates") for k, sim in enumerate(sims)}
    assert rates.params == {**stack.params, "columns": list(range(9)), "quantity": "rates_hz"}
    assert upstream(by_id["reduce"]) == {"activity": ("stack", "activity"), "conditions": ("stack", "conditions")}
    assert upstream(by_id["decode"]) == {"features": ("stack-rates", "samples"),
                                         "targets": ("stack-rates", "sample_conditions"),
                                         "trial_index": ("stack-rates", "sample_trials")}
    assert by_id["decode"].params["n_folds"] == 2      # whole runs per fold: min(runs, 5), at least 2


def test_simulate_and_analyse_decodes_the_counted_populations_rates(methods):
    _, by_id = checked("simulate-and-analyse", methods, {"count_populations": ["L6_exc", "L4_exc"]})
    assert by_id["stack-rates"].params["columns"] == [7, 3]
    assert by_id["simulate-r0-c0"].params["count_populations"] == ["L6_exc", "L4_exc"]


def test_simulate_and_analyse_defaults_are_a_small_two_condition_sweep(methods):
    spec, by_id = checked("simulate-and-analyse", methods)
    assert len(spec.steps) == 2 * 3 + 4
    assert by_id["simulate-r0-c0"].params["network"]["cortical_column"] == {"scale": 0.05, "stimulus_rate_hz": 0.0}
    assert by_id["simulate-r0-c1"].params["network"]["cortical_column"] == {"scale": 0.05, "stimulus_rate_hz": 60.0,
                                                                             "stimulus_depth": 0.0}
    assert by_id["stack"].params["condition_names"] == ["no stimulus", "60 Hz"]


def test_the_column_populations_are_the_simulation_services():
    from services.simulation.core.circuits import COLUMN_SIZES

    assert COLUMN_POPULATIONS == (*COLUMN_SIZES, "thalamus")


@pytest.mark.parametrize("params, field, words", [
    ({"conditions": [{"stimulus_rate_hz": 5}]}, "params.conditions", "at least 2 items"),
    ({"conditions": [{"name": "a"}, {"name": "a"}]}, "params", "condition names must differ"),
    ({"count_populations": ["L4_exc", "L7_exc"]}, "params.count_populations", "unknown populations ['L7_exc']"),
    ({"skip_bins": 50, "duration_ms": 500, "bin_ms": 10}, "params", "leaves none of the 50 bins"),
    ({"count_populations": ["L4_exc", "L4_exc"]}, "params.count_populations", "listed twice"),
    ({"n_folds": 7}, "params", "more than the 6 trials"),
    ({"runs_per_condition": 100, "conditions": [{}] * 6}, "params", "more than 500 simulations"),
    ({"scale": 0}, "params.scale", "greater than 0"),
    ({"bin_ms": 600, "duration_ms": 500}, "params", "longer than a run"),
])
def test_simulate_and_analyse_refuses_bad_parameters(params, field, words):
    with pytest.raises(PipelineError) as info:
        PIPELINES["simulate-and-analyse"].steps(params)
    assert words in problems_of(info)[field]


def test_simulate_and_analyse_takes_no_inputs():
    with pytest.raises(PipelineError) as info:
        PIPELINES["simulate-and-analyse"].steps({}, {"counts": "x"})
    assert "takes no input 'counts'" in problems_of(info)["inputs.counts"]


# ------------------------------------------------------------------------------ em-to-connectome


def test_em_to_connectome_with_classical_boundaries(methods):
    spec, by_id = checked("em-to-connectome", methods,
                          {"voxel_size_nm": [30, 8, 8], "block_shape": [16, 32, 32], "halo": [2, 4, 4],
                           "thresholds": [0.3, 0.5, 0.7], "threshold": 0.7, "min_segment_size": 20,
                           "min_contact_faces": 4, "measures": ["degree", "communities"], "boundary_threshold": 0.4},
                          {"raw": ref("em/raw"), "ground_truth": ref("em/truth")})
    assert spec.dependencies() == {"segment": [], "contacts": ["segment"]}
    segment = by_id["segment"].params
    assert segment["classical"] == {"sigma_nm": 0.0, "bright_membranes": False}
    assert segment["thresholds"] == [0.3, 0.5, 0.7] and segment["voxel_size_nm"] == [30, 8, 8]
    assert segment["watershed"] == {"per_section": False, "boundary_threshold": 0.4}
    assert artifacts(by_id["segment"]) == {"raw.ref": "em/raw", "ground_truth.ref": "em/truth"}
    assert upstream(by_id["contacts"]) == {"segmentation.ref": ("segment", "segmentations.2.labels")}
    assert by_id["contacts"].params["measures"] == {"seed": 0, "measures": ["degree", "communities"]}
    assert by_id["contacts"].params["voxel_size_nm"] == [30, 8, 8]


def test_em_to_connectome_with_a_model_and_graph_analysis(methods):
    spec, by_id = checked("em-to-connectome", methods, {"analyze": True, "patch_shape": [16, 32, 32], "seed": 3},
                          {"raw": ref("em/raw"), "model": ref("models/unet.pt")})
    assert spec.dependencies() == {"segment": [], "contacts": ["segment"], "analyze": ["contacts"]}
    assert "classical" not in by_id["segment"].params and artifacts(by_id["segment"])["model"] == "models/unet.pt"
    assert by_id["segment"].params["patch_shape"] == [16, 32, 32]
    assert upstream(by_id["contacts"]) == {"segmentation.ref": ("segment", "segmentations.0.labels")}
    assert upstream(by_id["analyze"]) == {"edge_table": ("contacts", "edge_table")}
    assert by_id["analyze"].params == {"weight_column": "area_nm2", "measures": {
        "seed": 3, "measures": ["rich_club", "rich_club_normalized", "small_world"], "n_random": 20}}


@pytest.mark.parametrize("params, field, words", [
    ({"thresholds": [0.3], "threshold": 0.5}, "params", "not one of thresholds"),
    ({"thresholds": [0.3, 1.5]}, "params.thresholds", "in [0, 1]"),
    ({"thresholds": [0.3, 0.3]}, "params.thresholds", "distinct"),
    ({"measures": ["degree", "centrality"]}, "params.measures", "unknown graph measures ['centrality']"),
    ({"voxel_size_nm": [8, 0, 8]}, "params.voxel_size_nm", "must be > 0"),
    ({"voxel_size_nm": [8, 8]}, "params.voxel_size_nm.2", "Field required"),
    ({"block_shape": [0, 32, 32]}, "params.block_shape", ">= 1"),
])
def test_em_to_connectome_refuses_bad_parameters(params, field, words):
    with pytest.raises(PipelineError) as info:
        PIPELINES["em-to-connectome"].steps(params, {"raw": "em/raw"})
    assert words in problems_of(info)[field]


# ------------------------------------------------------------------------------ dmri-connectome


DMRI = {name: ref(f"scan/{name}") for name in ("dwi", "bvals", "bvecs", "parcellation")}


def test_dmri_connectome_shards_the_tracking_and_sums_every_normalisation(methods):
    spec, by_id = checked("dmri-connectome", methods, {"shards": 3, "model": "csa", "min_length_mm": 10,
                                                       "normalization": "count", "measures": ["degree"]},
                          {**DMRI, "mask": ref("scan/mask")})
    tracks = ["track-0", "track-1", "track-2"]
    assert spec.dependencies() == {**{t: [] for t in tracks}, "sum-count": tracks, "sum-volume": tracks,
                                   "sum-length": tracks, "analyze": ["sum-count"]}
    for k, track in enumerate(tracks):
        params = by_id[track].params
        assert (params["shard_index"], params["shard_count"]) == (k, 3)
        assert params["model"] == "FIBRE_MODEL_CSA" and params["tracking"] == "TRACKING_METHOD_DETERMINISTIC"
        assert params["measures"] == {"skip": True} and params["min_length_mm"] == 10
        assert artifacts(by_id[track]) == {**{n: f"scan/{n}" for n in DMRI}, "mask": "scan/mask"}
    for n, normalization in enumerate(("count", "volume", "length")):
        step = by_id[f"sum-{normalization}"]
        assert step.service == "gateway" and step.params["normalization"] == normalization
        assert upstream(step) == {**{f"matrices.{k}": (t, f"matrices.{n}.matrix") for k, t in enumerate(tracks)},
                                  **{f"labels.{k}": (t, "region_labels") for k, t in enumerate(tracks)},
                                  **{f"reports.{k}": (t, "report") for k, t in enumerate(tracks)}}
    assert upstream(by_id["analyze"]) == {"matrix": ("sum-count", "sum")}
    assert by_id["analyze"].params["measures"] == {"seed": 0, "measures": ["degree"]}


def test_dmri_connectome_in_one_shard_tracks_every_seed(methods):
    _, by_id = checked("dmri-connectome", methods, {"shards": 1}, DMRI)
    assert "shard_count" not in by_id["track-0"].params and "track-1" not in by_id
    assert upstream(by_id["sum-volume"])["matrices.0"] == ("track-0", "matrices.1.matrix")


@pytest.mark.parametrize("params, field, words", [
    ({"shards": 300}, "params.shards", "less than or equal to 256"),
    ({"min_length_mm": 50, "max_length_mm": 20}, "params", "exceeds max_length_mm"),
    ({"measures": ["pagerank"]}, "params.measures", "unknown graph measures"),
    ({"normalization": "fa"}, "params.normalization", "'count', 'volume' or 'length'"),
])
def test_dmri_connectome_refuses_bad_parameters(params, field, words):
    with pytest.raises(PipelineError) as info:
        PIPELINES["dmri-connectome"].steps(params, DMRI)
    assert words in problems_of(info)[field]


# ------------------------------------------------------------------------------ the interface


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_describes_itself_as_json(name):
    pipeline = PIPELINES[name]
    described = json.loads(json.dumps(pipeline.describe()))
    assert described["name"] == name and described["description"]
    schema = described["params_schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert all("default" in prop or "$ref" in prop or "anyOf" in prop for prop in schema["properties"].values())
    assert [i["name"] for i in described["inputs"]] == [i.name for i in pipeline.inputs]


def test_build_makes_a_job_spec_for_a_tenant_and_needs_digests(methods):
    spec = PIPELINES["em-to-connectome"].build({}, {"raw": ref("em/raw")}, tenant="lab-a",
                                               idempotency_key="em-1", methods=methods)
    assert (spec.tenant, spec.idempotency_key) == ("lab-a", "em-1")
    assert spec.step("segment").inputs["raw.ref"].artifact.sha256 == SHA
    with pytest.raises(PipelineError) as info:
        PIPELINES["em-to-connectome"].build({}, {"raw": "em/raw"}, tenant="lab-a")
    assert "sha256" in problems_of(info)["inputs.raw"]


def test_stored_refs_are_inputs_as_they_are():
    from neuromesh.common.v1.artifact_pb2 import ArtifactRef

    stored = ArtifactRef(bucket="neuromesh", key="em/raw", sha256="a" * 64, media_type="application/vnd.zarr.v3")
    steps = PIPELINES["em-to-connectome"].steps({}, {"raw": stored})
    assert steps[0]["inputs"]["raw.ref"] == {"artifact": {"key": "em/raw", "sha256": "a" * 64}}


def test_the_gateway_method_table_checks_local_steps_as_submission_does(methods):
    with pytest.raises(InvalidArgument, match="no local operation 'Median'"):
        methods.method("gateway", "Median")
    with pytest.raises(InvalidArgument, match="known: connectomics, decoding, gateway"):
        methods.method("imaging", "Register")
    with pytest.raises(InvalidArgument) as info:
        methods.check_step("gateway", "StackCounts", {"conditions": [0], "bin_s": -1}, ["runs.0"])
    assert info.value.field == "params.bin_s"
    with pytest.raises(InvalidArgument) as info:
        methods.check_step("gateway", "StackCounts", {"conditions": [0], "bin_s": 1}, ["runs"])
    assert info.value.field == "inputs.runs" and "runs.0, runs.1" in info.value.message
    # a step that reads an output a local operation does not make is refused at submission
    request = JobRequest.model_validate({"steps": [
        {"id": "stack", "service": "gateway", "method": "StackCounts", "params": {"conditions": [0], "bin_s": 0.01},
         "inputs": {"runs.0": {"artifact": {"key": "r0"}}}},
        {"id": "fit", "service": "reduction", "method": "Fit", "params": {"method": {"name": "pca"}},
         "inputs": {"activity": {"step": "stack", "output": "latents"}}}]})
    with pytest.raises(JobSpecError, match="has no output 'latents'; its outputs: activity"):
        build_job_spec(request, tenant="lab-a", idempotency_key=None, methods=methods, resolve=None)


MODULES = ["gateway.pipelines", "gateway.pipelines.base", "gateway.pipelines.local", "gateway.pipelines.operations",
           "gateway.pipelines.trials", "gateway.pipelines.matrices", "gateway.pipelines.executor",
           "gateway.pipelines.recording_analysis", "gateway.pipelines.simulate_and_analyse",
           "gateway.pipelines.em_to_connectome", "gateway.pipelines.dmri_connectome"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
