"""One error hierarchy for every service, mapped to the most specific gRPC status and HTTP code.

Service code raises these (or ``ValueError``/``TypeError`` from the transport-free core, taken as
bad input); the server runtime turns them into a status with a readable message and an
``ErrorDetail`` in the ``grpc-status-details-bin`` trailer, and the gateway into an HTTP answer.
Anything else is an internal error: logged with its stack trace, answered without it.

Example
-------
>>> err = NotFound("artifact s3://neuromesh/x.json does not exist", reason="ARTIFACT_NOT_FOUND",
...                metadata={"bucket": "neuromesh", "key": "x.json"})
>>> err.grpc_code.name, err.http_status
('NOT_FOUND', 404)
>>> to_rpc_status(err).message
'artifact s3://neuromesh/x.json does not exist'
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2

from neuromesh.common.v1 import error_pb2


class NeuroMeshError(Exception):
    """Base of all errors a service answers with. Subclasses fix the status code."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    http_status: ClassVar[int] = 500
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, field: str = "",
                 metadata: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.field = field
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}

    def detail(self) -> error_pb2.ErrorDetail:
        return error_pb2.ErrorDetail(reason=self.reason, message=self.message, field=self.field,
                                     metadata=self.metadata)


class InvalidArgument(NeuroMeshError):
    """The request itself is wrong: bad shape, NaN, out-of-range parameter, wrong dtype."""
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    default_reason = "INVALID_ARGUMENT"


class RequestError(InvalidArgument, ValueError):
    """Bad input in a request: INVALID_ARGUMENT naming ``field``, and a ``ValueError`` so the
    blockwise runners and retry policies see it as not worth retrying."""

    def __init__(self, message: str, *, field: str, reason: str | None = None, metadata=None) -> None:
        super().__init__(message, field=field, reason=reason, metadata=metadata)


class NotFound(NeuroMeshError):
    """A named thing (artifact, bucket, job, model) does not exist."""
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    default_reason = "NOT_FOUND"


class AlreadyExists(NeuroMeshError):
    """Creating something that exists; artifacts are never overwritten."""
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(NeuroMeshError):
    """The request is well-formed but the system is not in a state to run it."""
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409
    default_reason = "FAILED_PRECONDITION"


class ResourceExhausted(NeuroMeshError):
    """The request asks for more than the limits allow (size, memory, graph too large)."""
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(NeuroMeshError):
    """A dependency (object store, another service) cannot be reached; worth retrying."""
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    default_reason = "UNAVAILABLE"


class DataLoss(NeuroMeshError):
    """Stored data is truncated or corrupt (size or digest mismatch)."""
    grpc_code = grpc.StatusCode.DATA_LOSS
    http_status = 500
    default_reason = "DATA_LOSS"


class Cancelled(NeuroMeshError):
    """The caller cancelled the call."""
    grpc_code = grpc.StatusCode.CANCELLED
    http_status = 499
    default_reason = "CANCELLED"


def as_neuromesh_error(exc: BaseException) -> NeuroMeshError:
    """Classify any exception: ours as is, ``ValueError``/``TypeError`` as bad input, the rest internal.

    The core packages follow the scikit-image convention of raising ``ValueError`` that names the
    problem for bad input, so those messages reach the caller. An unexpected exception's text
    may reveal internals, so only its type is named.
    """
    if isinstance(exc, NeuroMeshError):
        return exc
    if isinstance(exc, (ValueError, TypeError)):
        return InvalidArgument(str(exc) or type(exc).__name__)
    if isinstance(exc, MemoryError):
        return ResourceExhausted("the request needs more memory than this service has")
    return NeuroMeshError(f"internal error ({type(exc).__name__}); the service log has the details")


def to_rpc_status(err: NeuroMeshError) -> status_pb2.Status:
    """The google.rpc.Status for ``err``: code, message and an ``ErrorDetail``."""
    detail = any_pb2.Any()
    detail.Pack(err.detail())
    return status_pb2.Status(code=getattr(code_pb2, err.grpc_code.name), message=err.message, details=[detail])


def error_detail_from_status(status: status_pb2.Status) -> error_pb2.ErrorDetail | None:
    """The ``ErrorDetail`` packed in a google.rpc.Status, if any (client side)."""
    for any_detail in status.details:
        if any_detail.Is(error_pb2.ErrorDetail.DESCRIPTOR):
            detail = error_pb2.ErrorDetail()
            any_detail.Unpack(detail)
            return detail
    return None
