"""The method table: RPCs found by reflection, requests built from params and inputs, outputs named by path."""

from __future__ import annotations

import importlib

import pytest

from gateway.calls.methods import ArtifactRef, MethodInfo, MethodTable
from neuromesh.decoding.v1 import decoding_pb2
from neuromesh.reduction.v1 import reduction_pb2
from neuromesh.segmentation.v1 import segmentation_pb2
from neuromesh.simulation.v1 import simulation_pb2
from services.common.errors import InvalidArgument
from services.common.registry import discover_services

SHA = "ab" * 32


@pytest.fixture(scope="module")
def table():
    return MethodTable.from_generated()


def ref(key):
    return ArtifactRef(key=key, sha256=SHA)


def test_every_rpc_of_every_service_is_in_the_table(table):
    # Every service the platform runs has its generated contract in the table, and every RPC of it
    # is either callable or listed as unsupported with a reason: nothing is dropped silently.
    assert {s.name for s in discover_services()} <= set(table.services)
    for name, entry in table.services.items():
        module = importlib.import_module(f"neuromesh.{name}.v1.{name}_pb2")
        descriptor = module.DESCRIPTOR.services_by_name[entry.full_name.rsplit(".", 1)[1]]
        assert {m.name for m in descriptor.methods} == set(entry.methods) | set(entry.unsupported)
        for method in entry.methods.values():
            assert method.full_name == f"/{descriptor.full_name}/{method.name}"
    assert table.method("simulation", "Simulate").server_streaming
    assert table.method("simulation", "Simulate").result_field == "result"
    assert not table.method("reduction", "Transform").server_streaming
    assert table.method("reduction", "Transform").request_type is reduction_pb2.TransformRequest


@pytest.mark.parametrize("service, method, path", [
    ("reduction", "Fit", "activity"), ("segmentation", "Segment", "raw.ref"),
    ("segmentation", "Score", "segmentation.ref"), ("decoding", "CompareRepresentations", "first.patterns"),
    ("decoding", "BinRecording", "spikes.times"), ("connectomics", "ContactGraph", "segmentation.ref"),
])
def test_input_paths_reach_artifact_refs(table, service, method, path):
    info = table.method(service, method)
    assert path in info.input_paths()
    info.check_input_path(path)


def test_a_request_is_params_plus_inputs_and_a_oneof_branch_is_selected(table):
    info = table.method("decoding", "BinRecording")
    request = info.build_request({"bin_width_s": 0.05, "spikes": {"n_units": 3}},
                                 {"spikes.times": ref("tenants/a/times"), "spikes.unit_ids": ref("tenants/a/ids")})
    assert isinstance(request, decoding_pb2.BinRecordingRequest)
    assert request.WhichOneof("source") == "spikes"
    assert (request.spikes.times.key, request.spikes.unit_ids.key, request.spikes.n_units) == \
        ("tenants/a/times", "tenants/a/ids", 3)
    assert request.bin_width_s == pytest.approx(0.05)
    # camelCase JSON names and enum names are proto JSON too
    sim = table.method("simulation", "Simulate").build_request(
        {"durationMs": 250, "network": {"vogelsAbbott": {"kind": "VOGELS_ABBOTT_KIND_COBA"}}}, {})
    assert sim.duration_ms == 250 and sim.network.vogels_abbott.kind == simulation_pb2.VOGELS_ABBOTT_KIND_COBA


@pytest.mark.parametrize("path, why", [
    ("activty", "has no field 'activty'"),
    ("method", "is a MethodSpec, not an ArtifactRef"),
    ("activity.key", "is an ArtifactRef: the path must end there"),
    ("heldout_neurons", "repeated field"),
    ("preprocessing.smooth_sigma_bins", "is not a message field"),
])
def test_bad_input_paths_are_refused_naming_the_field(table, path, why):
    with pytest.raises(InvalidArgument, match=why) as err:
        table.method("reduction", "Fit").check_input_path(path)
    assert err.value.field == f"inputs.{path}" and "activity, conditions, true_latents" in err.value.message


def test_maps_cannot_be_addressed(table):
    with pytest.raises(InvalidArgument, match="map"):
        table.method("simulation", "Simulate").check_input_path("network.populations.0.initial")


def test_repeated_fields_are_indexed_in_order():
    # No request of today's contracts holds a repeated message with refs; a result type does.
    info = MethodInfo("segmentation", "neuromesh.segmentation.v1.SegmentationService", "Probe",
                      request_type=segmentation_pb2.SegmentResult, response_type=segmentation_pb2.SegmentResult,
                      server_streaming=False)
    assert "segmentations.0.labels" in info.input_paths()
    built = info.build_request({}, {"segmentations.1.labels": ref("two"), "segmentations.0.labels": ref("one")})
    assert [s.labels.key for s in built.segmentations] == ["one", "two"]
    with pytest.raises(InvalidArgument, match="skips elements"):
        info.build_request({}, {"segmentations.2.labels": ref("three")})
    kept = info.build_request({"segmentations": [{"threshold": 0.3}]}, {"segmentations.0.labels": ref("one")})
    assert kept.segmentations[0].threshold == pytest.approx(0.3) and kept.segmentations[0].labels.key == "one"


def test_params_must_not_carry_artifact_refs_or_store_locations(table):
    with pytest.raises(InvalidArgument, match="artifact reference") as err:
        table.method("reduction", "Fit").parse_params({"activity": {"key": "tenants/other/x"}})
    assert err.value.field == "params.activity"
    with pytest.raises(InvalidArgument, match="location in the object store") as err:
        table.method("decoding", "BinRecording").parse_params({"kilosort": {"prefix": "tenants/other/ks"}})
    assert err.value.field == "params.kilosort.prefix"


@pytest.mark.parametrize("params, match", [
    ({"no_such_field": 1}, "no_such_field"),
    ({"duration_ms": "long"}, "duration_ms"),
    ({"network": {"vogels_abbott": {"kind": "NOT_A_KIND"}}}, "NOT_A_KIND"),
])
def test_params_are_checked_against_the_request_message(table, params, match):
    with pytest.raises(InvalidArgument, match=match) as err:
        table.method("simulation", "Simulate").parse_params(params)
    assert err.value.reason == "INVALID_PARAMS"


def test_outputs_are_every_ref_with_a_key_named_by_path(table):
    info = table.method("segmentation", "Segment")
    result = segmentation_pb2.SegmentResult(fragments=ref("f"), figure=ref("fig"))
    result.segmentations.add(threshold=0.2, labels=ref("l0"))
    result.segmentations.add(threshold=0.5, labels=ref("l1"))
    result.segmentations.add(threshold=0.9)                 # no labels stored: not an output
    response = segmentation_pb2.SegmentResponse(result=result)
    assert info.result_of(response) is not None and info.progress_of(response) is None
    outputs = info.outputs(info.result_of(response))
    assert {k: v.key for k, v in outputs.items()} == {"fragments": "f", "figure": "fig", "segmentations.0.labels": "l0",
                                                      "segmentations.1.labels": "l1"}
    assert set(outputs) <= {p.replace(".0.", f".{i}.") for p in info.output_paths() for i in range(3)}
    progress = segmentation_pb2.SegmentResponse()
    progress.progress.fraction_done = 0.25
    assert info.result_of(progress) is None and info.progress_of(progress).fraction_done == 0.25


def test_unknown_services_and_methods_name_what_exists(table):
    with pytest.raises(InvalidArgument, match="unknown service 'reductio'; known: connectomics, decoding"):
        table.method("reductio", "Fit")
    known = ", ".join(sorted(m.name for m in reduction_pb2.DESCRIPTOR.services_by_name["ReductionService"].methods))
    with pytest.raises(InvalidArgument, match=f"has no method 'FitPCA'; its methods: {known}$"):
        table.method("reduction", "FitPCA")


def test_streams_that_do_not_follow_the_progress_result_convention_are_unsupported():
    from gateway.calls.methods import _service_methods

    entry = _service_methods("simulation", simulation_pb2.DESCRIPTOR.services_by_name["SimulationService"])
    assert entry.unsupported == {}
    # A descriptor whose stream carries no Progress: only the convention's streams are steps.
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto(name="odd.proto", package="odd.v1", syntax="proto3")
    proto.message_type.add(name="Req")
    proto.message_type.add(name="Resp").field.add(name="value", number=1, type=9, label=1)
    service = proto.service.add(name="OddService")
    service.method.add(name="Stream", input_type=".odd.v1.Req", output_type=".odd.v1.Resp", server_streaming=True)
    service.method.add(name="Upload", input_type=".odd.v1.Req", output_type=".odd.v1.Resp", client_streaming=True)
    service.method.add(name="Call", input_type=".odd.v1.Req", output_type=".odd.v1.Resp")
    odd = _service_methods("odd", pool.Add(proto).services_by_name["OddService"])
    assert set(odd.methods) == {"Call"} and set(odd.unsupported) == {"Stream", "Upload"}
    assert "Progress" in odd.unsupported["Stream"] and "client" in odd.unsupported["Upload"]
