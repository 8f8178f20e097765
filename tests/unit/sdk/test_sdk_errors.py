"""Failed calls become the SDK's exceptions: the status code picks the class, the service's
ErrorDetail (from the grpc-status-details-bin trailer) fills reason, field and metadata, and no
grpc object is left in the exception or its chain."""

from __future__ import annotations

import pickle

import grpc
import pytest
from grpc_status import rpc_status

from neuromesh.sdk import errors
from neuromesh.sdk.errors import (DeadlineExceeded, InvalidArgument, NeuroMeshError, NotFound, Unavailable,
                                  error_class, from_rpc_error, from_store_error)
from services.common import errors as service_errors
from sdk_fakes import FakeRpcError
from services.common.errors import to_rpc_status


def failed_like_the_server(error: service_errors.NeuroMeshError) -> FakeRpcError:
    """The RpcError a client sees when the server runtime answers with ``error``."""
    status = rpc_status.to_status(to_rpc_status(error))
    return FakeRpcError(status.code, status.details, status.trailing_metadata)


def test_invalid_argument_carries_the_field_reason_and_metadata_of_the_server():
    err = from_rpc_error(failed_like_the_server(service_errors.InvalidArgument(
        "duration_ms must be > 0, got 0", field="duration_ms", reason="OUT_OF_RANGE", metadata={"given": 0})),
        service="simulation", method="Simulate", target="127.0.0.1:50053")
    assert type(err) is InvalidArgument and isinstance(err, ValueError)
    assert (err.message, err.field, err.reason, err.metadata) == (
        "duration_ms must be > 0, got 0", "duration_ms", "OUT_OF_RANGE", {"given": "0"})
    assert str(err) == ("duration_ms must be > 0, got 0 (field duration_ms; reason OUT_OF_RANGE; "
                        "simulation.Simulate)")


def test_a_reason_that_only_repeats_the_code_is_not_repeated_in_the_message():
    err = from_rpc_error(failed_like_the_server(service_errors.InvalidArgument("bad", field="network.dt_ms")),
                         service="simulation", method="Simulate")
    assert err.reason == "INVALID_ARGUMENT" and str(err) == "bad (field network.dt_ms; simulation.Simulate)"


@pytest.mark.parametrize("server_error, sdk_class, builtin", [
    (service_errors.NotFound("no model", reason="ARTIFACT_NOT_FOUND"), errors.NotFound, LookupError),
    (service_errors.ResourceExhausted("needs 90 GiB"), errors.ResourceExhausted, NeuroMeshError),
    (service_errors.Unavailable("store away"), errors.Unavailable, ConnectionError),
    (service_errors.DataLoss("sha256 differs"), errors.DataLoss, NeuroMeshError),
    (service_errors.Cancelled("cancelled"), errors.Cancelled, NeuroMeshError),
    (service_errors.FailedPrecondition("incomplete"), errors.FailedPrecondition, NeuroMeshError),
    (service_errors.AlreadyExists("taken"), errors.AlreadyExists, NeuroMeshError),
    (service_errors.NeuroMeshError("internal error (KeyError)"), errors.Internal, NeuroMeshError),
])
def test_each_server_error_becomes_its_sdk_class(server_error, sdk_class, builtin):
    err = from_rpc_error(failed_like_the_server(server_error), service="decoding", method="Train")
    assert type(err) is sdk_class and isinstance(err, builtin) and err.message == server_error.message
    assert err.code == server_error.grpc_code


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
def test_every_status_code_has_a_class_of_that_code(code):
    cls = error_class(code)
    assert issubclass(cls, NeuroMeshError)
    assert cls.code == code or (code == grpc.StatusCode.UNKNOWN and cls is errors.Internal)


def test_unreachable_service_names_the_endpoint_and_says_what_to_do():
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
                         service="segmentation", method="Segment", target="10.0.0.7:50054", attempts=5)
    assert type(err) is Unavailable
    assert "segmentation service at 10.0.0.7:50054 cannot be reached" in str(err)
    assert "neuromesh up" in str(err) and "after 5 attempts" in str(err)


def test_deadline_names_the_timeout_and_the_keyword_to_raise_it():
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
                         service="decoding", method="Predict", timeout=2.5)
    assert type(err) is DeadlineExceeded and isinstance(err, TimeoutError)
    assert "2.5 s" in err.message and "timeout=" in err.message


def test_a_garbled_trailer_falls_back_to_the_status_message():
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "no such thing",
                                      [("grpc-status-details-bin", b"\xff\x00garbage")]))
    assert type(err) is NotFound and err.message == "no such thing" and err.reason == ""


def test_store_errors_become_the_same_classes_as_service_errors():
    err = from_store_error(service_errors.NotFound("artifact s3://b/k does not exist", reason="ARTIFACT_NOT_FOUND",
                                                   metadata={"bucket": "b", "key": "k"}))
    assert type(err) is NotFound and err.reason == "ARTIFACT_NOT_FOUND" and err.metadata["key"] == "k"
    assert type(from_store_error(service_errors.Unavailable("unreachable"))) is Unavailable


def test_errors_survive_pickling_with_their_details():
    # multiprocessing and joblib pickle exceptions raised in workers
    err = InvalidArgument("bad shape", field="features", reason="SHAPE_MISMATCH", metadata={"rows": 3},
                          service="decoding", method="Train", attempts=2)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is InvalidArgument and str(again) == str(err)
    assert (again.field, again.reason, again.metadata, again.attempts) == ("features", "SHAPE_MISMATCH",
                                                                           {"rows": "3"}, 2)
