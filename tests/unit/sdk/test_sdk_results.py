"""Results: fields as scientific-Python values, artifacts read only on demand, field paths, results as
the inputs of further calls."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.decoding.v1 import decoding_pb2 as D
from neuromesh.reduction.v1 import reduction_pb2 as R
from neuromesh.sdk import connectomics, decoding, reduction, segmentation, simulation
from neuromesh.sdk.errors import InvalidArgument, NotFound
from neuromesh.sdk.results import Artifact, Result, Section
from neuromesh.segmentation.v1 import segmentation_pb2 as SEG
from neuromesh.simulation.v1 import simulation_pb2 as S

ZARR = "application/vnd.zarr.v3"


def stored_array(store, key, array):
    ref = store.put_array(key, array)
    store.puts.clear()
    return ref


def test_fields_come_as_numpy_dicts_names_and_none(artifacts):
    message = SEG.SegmentResult(block_shape=[64, 256, 256], n_blocks=8, device="cpu",
                                segmentations=[SEG.ThresholdSegmentation(threshold=0.5, n_segments=3)])
    result = segmentation.SegmentResult(message, artifacts, service="segmentation", method="Segment")
    assert isinstance(result.block_shape, np.ndarray) and result.block_shape.tolist() == [64, 256, 256]
    assert result.n_blocks == 8 and result.device == "cpu" and result.call == "segmentation.Segment"
    assert result.segmentations[0].scores is None          # unset sub-message
    assert result.affinities is None and result.figure is None
    assert isinstance(result.segmentations[0], segmentation.ThresholdSegmentation)
    trained = segmentation.BoundaryModel(SEG.TrainBoundaryModelResult(
        network=SEG.UNetConfig(target=SEG.BOUNDARY_TARGET_AFFINITIES)), artifacts)
    assert trained.network.target == "BOUNDARY_TARGET_AFFINITIES"
    memory = simulation.MemoryEstimate(S.EstimateMemoryResponse(breakdown_bytes={"neurons": 10}), artifacts)
    assert memory.breakdown_bytes == {"neurons": 10}
    column = Section(S.CorticalColumn(stimulus_rate_hz=20.0), artifacts)
    assert column.stimulus_rate_hz == 20.0 and column.psp_mv is None   # proto3 optional, unset


def test_artifacts_download_only_when_asked_and_work_with_numpy(artifacts, store):
    latents = np.arange(12, dtype=np.float32).reshape(4, 3)
    ref = stored_array(store, "derived/fit/latents", latents)
    result = reduction.FitResult(R.FitResult(latents=ref), artifacts)
    artifact = result.latents
    assert isinstance(artifact, Artifact) and artifact.shape == (4, 3) and artifact.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(artifact), latents)
    np.testing.assert_array_equal(result.array("latents", np.s_[1:3]), latents[1:3])
    assert artifact.uri == "s3://neuromesh/derived/fit/latents"


def test_field_paths_reach_nested_artifacts_and_say_what_is_missing(artifacts, store):
    labels = stored_array(store, "derived/seg/labels", np.ones((2, 2, 2), np.uint64))
    message = SEG.SegmentResult(segmentations=[SEG.ThresholdSegmentation(threshold=0.5, labels=labels)])
    result = segmentation.SegmentResult(message, artifacts)
    assert result.array("segmentations[0].labels").dtype == np.uint64
    assert sorted(result.refs()) == ["segmentations[0].labels"]
    with pytest.raises(InvalidArgument, match=r"has 1 entries; 'segmentations\[3\].labels'"):
        result.artifact("segmentations[3].labels")
    with pytest.raises(NotFound, match="unset"):
        result.artifact("fragments")
    with pytest.raises(InvalidArgument, match="no field 'labelz'"):
        result.artifact("segmentations[0].labelz")
    with pytest.raises(NotFound, match="no figure"):
        result.figure_png()


def test_the_main_figure_and_any_png_by_name(artifacts, store):
    png = store.put_bytes("derived/fit/components.png", b"\x89PNG fake", media_type="image/png")
    other = store.put_bytes("derived/fit/trajectories.png", b"\x89PNG other", media_type="image/png")
    result = reduction.FitResult(R.FitResult(components_figure=png, trajectories_figure=other), artifacts)
    assert result.figure_png() == b"\x89PNG fake"
    assert result.figure_png("trajectories_figure") == b"\x89PNG other"
    assert result.components_figure._repr_png_() == b"\x89PNG fake"   # Jupyter shows it as the image


def test_a_result_stands_for_its_main_artifact_as_an_input(artifacts, store):
    counts = stored_array(store, "derived/bin/counts", np.zeros((5, 2), np.float32))
    binned = decoding.BinnedRecording(D.BinRecordingResponse(counts=counts), artifacts)
    assert artifacts.array_input(binned, field="activity").key == "derived/bin/counts"
    run = simulation.SimulationResult(S.SimulateResult(binned_counts=counts), artifacts)
    assert artifacts.array_input(run, field="activity").key == "derived/bin/counts"
    graph = connectomics.GraphAnalysis(C.AnalyzeGraphResponse(), artifacts)
    with pytest.raises(InvalidArgument, match="does not stand for one artifact"):
        artifacts.array_input(graph, field="matrix")
    two = segmentation.SegmentResult(SEG.SegmentResult(segmentations=[
        SEG.ThresholdSegmentation(threshold=0.3, labels=counts), SEG.ThresholdSegmentation(threshold=0.5,
                                                                                            labels=counts)]), artifacts)
    with pytest.raises(InvalidArgument, match="several segmentations"):
        artifacts.volume_input(two, field="segmentation")
    assert artifacts.volume_input(two.segmentation(0.5), field="segmentation").key == counts.key


def test_spikes_of_one_population_count_from_zero(artifacts, store):
    times = stored_array(store, "sim/t", np.array([1.0, 2.0, 3.0, 4.0]))
    ids = stored_array(store, "sim/i", np.array([0, 5, 7, 2], np.int64))
    run = simulation.SimulationResult(S.SimulateResult(spike_times=times, spike_ids=ids, populations=[
        S.PopulationSummary(name="exc", offset=0, size=4, recorded=True),
        S.PopulationSummary(name="inh", offset=4, size=4, recorded=True)]), artifacts)
    t, i = run.spikes("inh")
    assert t.tolist() == [2.0, 3.0] and i.tolist() == [1, 3]
    with pytest.raises(InvalidArgument, match="no population 'thalamus'"):
        run.population("thalamus")


def test_to_dict_and_repr_read_well():
    result = Result(D.TrainResult(scores=D.EvaluationScores(r2=[0.9, 0.8]), shuffled_scores=[0.01],
                                  model=ArtifactRef(bucket="b", key="derived/m.npz", media_type="application/x-npz")),
                    None, service="decoding", method="Train")
    assert result.to_dict() == {"model": "s3://b/derived/m.npz", "scores": {"r2": [0.9, 0.8]},
                                "shuffled_scores": [0.01]}
    assert repr(result) == "Result(artifacts: model)"


#: The answer of each RPC and the class that wraps it
ANSWERS = {
    decoding.BinnedRecording: D.BinRecordingResponse, decoding.TrainResult: D.TrainResult,
    decoding.PredictResult: D.PredictResponse, decoding.EvaluateResult: D.EvaluateResponse,
    decoding.RepresentationComparison: D.CompareRepresentationsResponse, reduction.FitResult: R.FitResult,
    reduction.TransformResult: R.TransformResponse, reduction.ReductionScoreResult: R.ScoreResponse,
    simulation.SimulationResult: S.SimulateResult, simulation.MemoryEstimate: S.EstimateMemoryResponse,
    segmentation.BoundaryModel: SEG.TrainBoundaryModelResult, segmentation.SegmentResult: SEG.SegmentResult,
    segmentation.SegmentBlocksResult: SEG.SegmentBlocksResult,
    segmentation.SegmentationScoreResult: SEG.ScoreResponse,
    connectomics.DiffusionConnectomeResult: C.DiffusionConnectomeResult,
    connectomics.ContactGraphResult: C.ContactGraphResult,
    connectomics.SimulatedConnectomeResult: C.SimulatedConnectomeResponse,
    connectomics.GraphAnalysis: C.AnalyzeGraphResponse,
    simulation.BayesianObserverResult: S.BayesianObserverResponse,
    simulation.PredictiveCodingResult: S.TrainPredictiveCodingResult, reduction.CircuitInference: R.InferCircuitResult,
    reduction.FixedPointSearch: R.FindFixedPointsResult, reduction.LearningRuleComparison: R.CompareLearningRulesResult,
}


def _nested(descriptor, seen):
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name not in seen:
            seen.add(field.message_type.full_name)
            yield field.message_type
            yield from _nested(field.message_type, seen)


def test_no_field_of_any_answer_is_hidden_by_a_method_of_its_wrapper():
    # fields are attributes: a field named like a method of its wrapper (array, table, ...) would be unreachable
    from neuromesh.sdk.results import SECTION_TYPES

    clashes = set()
    for cls, message in ANSWERS.items():
        clashes |= {(cls.__name__, f.name) for f in message.DESCRIPTOR.fields if f.name in dir(cls)}
        for nested in _nested(message.DESCRIPTOR, set()):
            wrapper = SECTION_TYPES.get(nested.full_name, Section)
            clashes |= {(nested.name, f.name) for f in nested.fields if f.name in dir(wrapper)}
    assert clashes == set()


def test_every_answer_has_its_result_class():
    services = {D.DESCRIPTOR.services_by_name["DecodingService"], R.DESCRIPTOR.services_by_name["ReductionService"],
                S.DESCRIPTOR.services_by_name["SimulationService"],
                SEG.DESCRIPTOR.services_by_name["SegmentationService"],
                C.DESCRIPTOR.services_by_name["ConnectomicsService"]}
    answers = set()
    for service in services:
        for method in service.methods:
            output = method.output_type
            # a stream's answer is the result inside its oneof event
            answers.add(output.fields_by_name["result"].message_type.full_name if method.server_streaming
                        else output.full_name)
    assert answers == {m.DESCRIPTOR.full_name for m in ANSWERS.values()}


def test_every_rpc_has_its_method(artifacts):
    from neuromesh.sdk import Client

    client = Client(artifacts=artifacts)
    for service in (client.decoding, client.reduction, client.simulation, client.segmentation, client.connectomics):
        proto = {D: "DecodingService", R: "ReductionService", S: "SimulationService", SEG: "SegmentationService",
                 C: "ConnectomicsService"}
        module = next(m for m in proto if service.proto_service.endswith(proto[m]))
        for method in module.DESCRIPTOR.services_by_name[proto[module]].methods:
            snake = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in method.name).lstrip("_")
            assert callable(getattr(service, snake, None)), f"{service.name} has no {snake} for {method.name}"
