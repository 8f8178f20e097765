"""The SDK's errors: one exception class per gRPC status, carrying the service's ``ErrorDetail``.

Every failed call, whether it failed in a service (a gRPC status with an ``ErrorDetail`` in the
``grpc-status-details-bin`` trailer), in the object store (an upload or a download) or in the
SDK's own checks of the arguments before anything is sent, raises a :class:`NeuroMeshError`
subclass. The gRPC objects (``_MultiThreadedRendezvous``, ``_InactiveRpcError``) never reach the
caller: their code, message and detail are copied into the exception and the exception chain is
cut, so a traceback ends with a line such as::

    neuromesh.sdk.errors.InvalidArgument: duration_ms must be > 0 (field duration_ms; reason
    INVALID_ARGUMENT; simulation.Simulate)

The classes also derive from the standard exception a scientific-Python user would catch for the
same failure: :class:`InvalidArgument` is a ``ValueError``, :class:`NotFound` a ``LookupError``,
:class:`Unavailable` a ``ConnectionError``, :class:`DeadlineExceeded` a ``TimeoutError``,
:class:`PermissionDenied` and :class:`Unauthenticated` ``PermissionError``.

Example
-------
>>> err = InvalidArgument("duration_ms must be > 0", field="duration_ms", service="simulation",
...                       method="Simulate")
>>> print(err)
duration_ms must be > 0 (field duration_ms; simulation.Simulate)
>>> isinstance(err, ValueError), err.code.name
(True, 'INVALID_ARGUMENT')
>>> error_class(grpc.StatusCode.UNAVAILABLE).__name__
'Unavailable'
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import grpc
from google.rpc import status_pb2

from neuromesh.common.v1 import error_pb2

__all__ = [
    "Aborted", "AlreadyExists", "Cancelled", "DataLoss", "DeadlineExceeded", "FailedPrecondition", "Internal",
    "InvalidArgument", "NeuroMeshError", "NotFound", "OutOfRange", "PermissionDenied", "ResourceExhausted",
    "Unauthenticated", "Unavailable", "Unimplemented", "error_class", "from_rpc_error", "from_store_error",
]

#: The trailer in which the server runtime sends a google.rpc.Status with an ErrorDetail
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class NeuroMeshError(Exception):
    """Base of every error the SDK raises.

    Attributes
    ----------
    message : str
        What went wrong, in the service's words (or the SDK's).
    code : grpc.StatusCode
        The gRPC status of the failure (the class fixes it; INTERNAL for the base class).
    reason : str
        Stable machine-readable reason in UPPER_SNAKE_CASE from the service's ``ErrorDetail``
        (``"ARTIFACT_NOT_FOUND"``, ``"SHAPE_MISMATCH"``, ...); empty when the service sent none.
    field : str
        The request field at fault as a dotted path (``"network.populations[1].size"``); empty
        when none. For the SDK's own checks it is the keyword argument's name.
    metadata : dict of str to str
        Extra facts the service attached (expected and actual shape, bucket and key, ...).
    service, method : str
        Which call failed (``"simulation"``, ``"Simulate"``); empty for store and argument errors.
    attempts : int
        Calls made, retries included.

    Examples
    --------
    >>> try:
    ...     raise NotFound("no model at s3://neuromesh/m.npz", reason="ARTIFACT_NOT_FOUND")
    ... except NeuroMeshError as err:
    ...     print(type(err).__name__, err.reason)
    NotFound ARTIFACT_NOT_FOUND
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, reason: str = "", field: str = "", metadata: Mapping[str, Any] | None = None,
                 service: str = "", method: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.field = field
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.service = service
        self.method = method
        self.attempts = attempts

    def __str__(self) -> str:
        facts = []
        if self.field:
            facts.append(f"field {self.field}")
        # the reason adds nothing when it only repeats the status code the class already names
        if self.reason and self.reason != self.code.name:
            facts.append(f"reason {self.reason}")
        if self.service or self.method:
            facts.append(".".join(p for p in (self.service, self.method) if p))
        if self.attempts > 1:
            facts.append(f"after {self.attempts} attempts")
        return f"{self.message} ({'; '.join(facts)})" if facts else self.message

    def __reduce__(self):
        # keyword-only attributes survive pickling (multiprocessing, joblib) this way
        return (_rebuild, (type(self), self.message, self.reason, self.field, self.metadata, self.service,
                           self.method, self.attempts))


def _rebuild(cls, message, reason, field, metadata, service, method, attempts):
    return cls(message, reason=reason, field=field, metadata=metadata, service=service, method=method,
               attempts=attempts)


class InvalidArgument(NeuroMeshError, ValueError):
    """The request is wrong: a bad shape, a NaN, a parameter out of range, an unknown name.

    Raised by the services (INVALID_ARGUMENT) and by the SDK's own checks of keyword arguments,
    before anything is uploaded or sent. ``field`` names the culprit.

    Examples
    --------
    >>> err = InvalidArgument("bin_width_s must be > 0, got 0.0", field="bin_width_s")
    >>> str(err)
    'bin_width_s must be > 0, got 0.0 (field bin_width_s)'
    """

    code = grpc.StatusCode.INVALID_ARGUMENT


class OutOfRange(InvalidArgument):
    """A value past the end of something (OUT_OF_RANGE), e.g. a box outside the volume.

    Examples
    --------
    >>> issubclass(OutOfRange, InvalidArgument)
    True
    """

    code = grpc.StatusCode.OUT_OF_RANGE


class NotFound(NeuroMeshError, LookupError):
    """A named thing does not exist: an artifact, a bucket, a model (NOT_FOUND).

    Examples
    --------
    >>> isinstance(NotFound("gone"), LookupError)
    True
    """

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(NeuroMeshError):
    """Something was to be created that exists; artifacts are never overwritten (ALREADY_EXISTS).

    Examples
    --------
    >>> AlreadyExists("taken").code.name
    'ALREADY_EXISTS'
    """

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(NeuroMeshError):
    """The request is well formed but cannot run now: an unfinished array, no endpoint configured.

    Examples
    --------
    >>> FailedPrecondition("no endpoint", reason="NO_ENDPOINT").reason
    'NO_ENDPOINT'
    """

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(NeuroMeshError):
    """The request asks for more than the service allows: memory, input size, graph size.

    Examples
    --------
    >>> ResourceExhausted("network needs 90 GiB").code.name
    'RESOURCE_EXHAUSTED'
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(NeuroMeshError, ConnectionError):
    """A service or the object store cannot be reached (UNAVAILABLE); retried before it is raised.

    Examples
    --------
    >>> isinstance(Unavailable("down"), ConnectionError)
    True
    """

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(NeuroMeshError, TimeoutError):
    """The call did not finish within its deadline (DEADLINE_EXCEEDED); pass a larger ``timeout=``.

    Examples
    --------
    >>> isinstance(DeadlineExceeded("too slow"), TimeoutError)
    True
    """

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(NeuroMeshError):
    """The call was cancelled (CANCELLED) by something other than this process's Ctrl-C, which
    re-raises ``KeyboardInterrupt`` instead: a server shutting down, a proxy.

    Examples
    --------
    >>> Cancelled("the server is stopping").code.name
    'CANCELLED'
    """

    code = grpc.StatusCode.CANCELLED


class DataLoss(NeuroMeshError):
    """Stored data is truncated or corrupt, or changed behind a ref (DATA_LOSS).

    Examples
    --------
    >>> DataLoss("sha256 differs").code.name
    'DATA_LOSS'
    """

    code = grpc.StatusCode.DATA_LOSS


class PermissionDenied(NeuroMeshError, PermissionError):
    """The caller may not do this (PERMISSION_DENIED).

    Examples
    --------
    >>> isinstance(PermissionDenied("no"), PermissionError)
    True
    """

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(NeuroMeshError, PermissionError):
    """No valid credentials were sent (UNAUTHENTICATED): check the client's ``token``.

    Examples
    --------
    >>> Unauthenticated("bad token").code.name
    'UNAUTHENTICATED'
    """

    code = grpc.StatusCode.UNAUTHENTICATED


class Unimplemented(NeuroMeshError, NotImplementedError):
    """The server does not have this method (UNIMPLEMENTED): an older service version, or the wrong
    endpoint for this service.

    Examples
    --------
    >>> isinstance(Unimplemented("no such method"), NotImplementedError)
    True
    """

    code = grpc.StatusCode.UNIMPLEMENTED


class Aborted(NeuroMeshError):
    """The operation was aborted by a concurrency conflict (ABORTED).

    Examples
    --------
    >>> Aborted("conflict").code.name
    'ABORTED'
    """

    code = grpc.StatusCode.ABORTED


class Internal(NeuroMeshError):
    """The service failed in a way that is not the request's fault (INTERNAL or UNKNOWN); its log has
    the details.

    Examples
    --------
    >>> Internal("internal error (KeyError)").code.name
    'INTERNAL'
    """

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[NeuroMeshError]] = {
    cls.code: cls for cls in (InvalidArgument, OutOfRange, NotFound, AlreadyExists, FailedPrecondition,
                              ResourceExhausted, Unavailable, DeadlineExceeded, Cancelled, DataLoss, PermissionDenied,
                              Unauthenticated, Unimplemented, Aborted, Internal)}
_BY_CODE[grpc.StatusCode.UNKNOWN] = Internal


def error_class(code: grpc.StatusCode) -> type[NeuroMeshError]:
    """The exception class of a gRPC status code (``Internal`` for codes without their own).

    Examples
    --------
    >>> error_class(grpc.StatusCode.NOT_FOUND).__name__, error_class(grpc.StatusCode.UNKNOWN).__name__
    ('NotFound', 'Internal')
    """
    return _BY_CODE.get(code, Internal)


def _error_detail(call: Any) -> error_pb2.ErrorDetail | None:
    """The ErrorDetail packed in the call's ``grpc-status-details-bin`` trailer, if any.

    Read directly rather than with ``grpc_status.rpc_status.from_call``, which raises when the
    status message and the trailer's differ (a proxy may rewrite one); the detail is what matters.
    """
    try:
        trailers = call.trailing_metadata() or ()
    except Exception:  # a call that never started has no trailers
        return None
    for key, value in trailers:
        if key != STATUS_DETAILS_KEY:
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:
            return None
        for packed in status.details:
            if packed.Is(error_pb2.ErrorDetail.DESCRIPTOR):
                detail = error_pb2.ErrorDetail()
                packed.Unpack(detail)
                return detail
    return None


def from_rpc_error(err: grpc.RpcError, *, service: str = "", method: str = "", target: str = "",
                   timeout: float | None = None, attempts: int = 1) -> NeuroMeshError:
    """The SDK exception for a failed gRPC call, with the service's ``ErrorDetail`` when it sent one.

    Parameters
    ----------
    err : grpc.RpcError
        What grpc raised (it is also a ``grpc.Call``: code, details, trailing metadata).
    service, method : str
        The call, for the message (``"simulation"``, ``"Simulate"``).
    target : str
        The endpoint called, named when the service could not be reached.
    timeout : float, optional
        The call's deadline in seconds, named when it was exceeded.
    attempts : int
        Calls made, retries included.

    Examples
    --------
    >>> class Failed(grpc.RpcError, grpc.Call):      # what grpc raises, reduced to what is read
    ...     def code(self): return grpc.StatusCode.UNAVAILABLE
    ...     def details(self): return "failed to connect to all addresses"
    ...     def trailing_metadata(self): return ()
    >>> err = from_rpc_error(Failed(), service="decoding", method="Train", target="127.0.0.1:50051")
    >>> type(err).__name__, err.message
    ('Unavailable', 'the decoding service at 127.0.0.1:50051 cannot be reached (failed to connect to all addresses); is it running? `neuromesh up` starts the local stack')
    """
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = (err.details() if callable(getattr(err, "details", None)) else "") or ""
    detail = _error_detail(err)
    message = (detail.message if detail is not None and detail.message else details) or code.name.lower()
    where = f"the {service} service at {target}" if service and target else f"the service at {target or '?'}"
    if detail is None and code == grpc.StatusCode.UNAVAILABLE:
        message = (f"{where} cannot be reached ({details}); is it running? `neuromesh up` starts the local stack")
    elif detail is None and code == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
        message = f"no answer within the deadline of {timeout:g} s; pass a larger timeout= ({details})"
    elif detail is None and code == grpc.StatusCode.UNIMPLEMENTED:
        message = f"{where} does not implement {method or 'this method'} ({details}); is it the right endpoint?"
    cls = error_class(code)
    return cls(message, reason=detail.reason if detail is not None else "", field=detail.field if detail else "",
               metadata=dict(detail.metadata) if detail is not None else {}, service=service, method=method,
               attempts=attempts)


def from_store_error(exc: BaseException) -> NeuroMeshError:
    """The SDK exception for an error of the artifact store (``services.common.errors``).

    The store raises the services' own hierarchy (it is shared code); the SDK raises its own, so
    a user catches one ``NotFound`` whether a service or the store did not find an artifact.

    Examples
    --------
    >>> from services.common import errors as service_errors
    >>> err = from_store_error(service_errors.NotFound("no object at s3://b/k", reason="ARTIFACT_NOT_FOUND"))
    >>> type(err).__name__, err.reason
    ('NotFound', 'ARTIFACT_NOT_FOUND')
    """
    code = getattr(exc, "grpc_code", grpc.StatusCode.INTERNAL)
    return error_class(code)(getattr(exc, "message", str(exc)), reason=getattr(exc, "reason", ""),
                             field=getattr(exc, "field", ""), metadata=getattr(exc, "metadata", None))
