"""Prometheus metrics of every service: the standard ``grpc_server_*`` family and domain counters.

The :class:`MetricsInterceptor` wraps each RPC handler of a ``grpc.aio`` server. For every call it

- counts it started, then handled with its real final status code, and times it;
- counts the messages it receives and sends (a unary request or response counts one, as in
  go-grpc-prometheus);
- turns an exception raised by the handler into a gRPC status with
  :func:`~services.common.errors.as_neuromesh_error`: code, message and an ``ErrorDetail`` in
  the ``grpc-status-details-bin`` trailer; a stack trace is logged, never sent to the client;
- lets ``asyncio.CancelledError`` (the client cancelled, or its deadline passed) go through, so
  the computation stops, and counts it as CANCELLED (DEADLINE_EXCEEDED when the deadline passed).

The metric names and labels are those of go-grpc-prometheus / grpc-ecosystem, so the usual
dashboards and alerts work unchanged. They are defined once, at import, on the process's
default registry: several servers in one process (as in tests) share them instead of
registering them twice. Services add their own counters, such as ``neuromesh_segmented_voxels_total``, with
:func:`neuromesh_counter`.

Example
-------
>>> examples = neuromesh_counter("docstring_examples", "Examples run from this docstring.")
>>> examples.inc()
>>> server = grpc.aio.server(interceptors=[MetricsInterceptor()])   # doctest: +SKIP
>>> endpoint = start_metrics_http_server(0)                        # doctest: +SKIP
>>> endpoint.port                                                  # doctest: +SKIP
40123
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, NoReturn

import grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from services.common.errors import NeuroMeshError, as_neuromesh_error, to_rpc_status

logger = logging.getLogger(__name__)

METRIC_PREFIX = "neuromesh_"

# Long analyses stream for minutes, so the buckets reach an hour beyond the library defaults.
HANDLING_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                            120.0, 300.0, 600.0, 1800.0, 3600.0)

_CALL_LABELS = ("grpc_type", "grpc_service", "grpc_method")

SERVER_STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _CALL_LABELS)
SERVER_HANDLED = Counter("grpc_server_handled_total", "RPCs completed on the server, by status code.",
                         (*_CALL_LABELS, "grpc_code"))
SERVER_HANDLING_SECONDS = Histogram("grpc_server_handling_seconds",
                                    "Time from the start of an RPC to its status, in seconds.",
                                    _CALL_LABELS, buckets=HANDLING_SECONDS_BUCKETS)
SERVER_MSG_SENT = Counter("grpc_server_msg_sent_total", "Messages sent by the server.", _CALL_LABELS)
SERVER_MSG_RECEIVED = Counter("grpc_server_msg_received_total", "Messages received by the server.", _CALL_LABELS)

# Status codes of failures that are the service's fault; their stack trace is logged at ERROR.
_SERVER_FAULT_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                                 grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})

# Per-call identifiers make a time series per call, which Prometheus cannot hold (DESIGN.md).
_FORBIDDEN_LABELS = frozenset({"job", "job_id", "user", "user_id", "request_id", "trace_id"})
_domain_metrics: dict[str, Counter | Gauge | Histogram] = {}
_domain_metrics_lock = threading.Lock()


def _domain_metric(kind: type[Counter] | type[Gauge] | type[Histogram], name: str, documentation: str,
                   labelnames: Iterable[str], **options: Any) -> Any:
    full_name = name if name.startswith(METRIC_PREFIX) else METRIC_PREFIX + name
    if kind is Counter:
        full_name = full_name.removesuffix("_total")  # prometheus-client appends it to counters
    labelnames = tuple(labelnames)
    forbidden = _FORBIDDEN_LABELS.intersection(labelnames)
    if forbidden:
        raise ValueError(f"metric {full_name}: labels {sorted(forbidden)} would make one time series per "
                         "job or caller; count per job in the job store instead")
    with _domain_metrics_lock:
        # A service module may be imported, or a servicer built, more than once in a process
        # (tests): hand back the metric declared before instead of registering it twice.
        existing = _domain_metrics.get(full_name)
        if existing is not None:
            if type(existing) is not kind or tuple(existing._labelnames) != labelnames:
                raise ValueError(f"metric {full_name} is already declared as a {type(existing).__name__} "
                                 f"with labels {existing._labelnames}")
            return existing
        metric = kind(full_name, documentation, labelnames, **options)
        _domain_metrics[full_name] = metric
        return metric


def neuromesh_counter(name: str, documentation: str, labelnames: Iterable[str] = ()) -> Counter:
    """A counter ``neuromesh_<name>_total`` on the default registry, declared once per process.

    Parameters
    ----------
    name : str
        In base units (``"segmented_voxels"``); the ``neuromesh_`` prefix and the ``_total``
        suffix are added when missing.
    documentation : str
        The HELP text: what is counted, in which unit.
    labelnames : iterable of str
        Label names with few values (a model family, a stage), never per job or user.

    Example
    -------
    >>> events = neuromesh_counter("example_events", "Spikes delivered to synapses.", ["model"])
    >>> events.labels(model="lif").inc(1e6)
    >>> neuromesh_counter("example_events", "Spikes delivered to synapses.", ["model"]) is events
    True
    """
    return _domain_metric(Counter, name, documentation, labelnames)


def neuromesh_histogram(name: str, documentation: str, labelnames: Iterable[str] = (),
                        buckets: Iterable[float] = Histogram.DEFAULT_BUCKETS) -> Histogram:
    """A histogram ``neuromesh_<name>`` (name it in base units: ``..._seconds``, ``..._bytes``).

    Declared once per process, like :func:`neuromesh_counter`.

    Example
    -------
    >>> fit = neuromesh_histogram("example_fit_seconds", "Time to fit one fold.", buckets=(0.1, 1, 10))
    >>> fit.observe(0.4)
    """
    return _domain_metric(Histogram, name, documentation, labelnames, buckets=tuple(buckets))


def neuromesh_gauge(name: str, documentation: str, labelnames: Iterable[str] = ()) -> Gauge:
    """A gauge ``neuromesh_<name>``: a value that goes up and down (runs in progress, queue depth).

    Declared once per process, like :func:`neuromesh_counter`.

    Example
    -------
    >>> running = neuromesh_gauge("example_runs_in_progress", "Runs being computed right now.")
    >>> with running.track_inprogress():
    ...     pass
    """
    return _domain_metric(Gauge, name, documentation, labelnames)


@dataclass
class MetricsHTTPServer:
    """The ``/metrics`` endpoint: the port it listens on, and how to stop it."""

    port: int
    _shutdown: Callable[[], None]

    def close(self) -> None:
        """Stop listening and release the port."""
        self._shutdown()


def start_metrics_http_server(port: int, host: str = "0.0.0.0",
                              registry: CollectorRegistry = REGISTRY) -> MetricsHTTPServer:
    """Serve ``registry`` in the Prometheus text format at ``http://host:port/metrics`` from a thread.

    Parameters
    ----------
    port : int
        The port; 0 lets the operating system pick a free one, reported in the result.
    host : str
        The address to bind; Prometheus must reach it, so deployments use ``0.0.0.0``.

    Example
    -------
    >>> endpoint = start_metrics_http_server(0, "127.0.0.1")
    >>> endpoint.port > 0
    True
    >>> endpoint.close()
    """
    # prometheus-client >= 0.17 returns the WSGI server, which knows the port it bound, so a
    # port of 0 needs no probing (and no race with another process for a probed port).
    httpd, thread = start_http_server(port, addr=host, registry=registry)

    def shutdown() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return MetricsHTTPServer(port=httpd.server_port, _shutdown=shutdown)


def _split_method(full_method: str) -> tuple[str, str]:
    """``"/pkg.Service/Method"`` -> ``("pkg.Service", "Method")``."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


class _CallObserver:
    """The metrics of one call, and the turning of its exception into a status."""

    def __init__(self, grpc_type: str, full_method: str) -> None:
        self.full_method = full_method
        service, method = _split_method(full_method)
        self.labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": method}
        self.started = time.perf_counter()
        self.done = False
        SERVER_STARTED.labels(**self.labels).inc()

    def message_sent(self) -> None:
        SERVER_MSG_SENT.labels(**self.labels).inc()

    def message_received(self) -> None:
        SERVER_MSG_RECEIVED.labels(**self.labels).inc()

    def succeeded(self, context: grpc.aio.ServicerContext) -> None:
        # A handler may also set a code and return (the grpc idiom ``context.set_code``).
        self._finish(context.code() or grpc.StatusCode.OK)

    async def failed(self, context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
        """Record how the call ended and re-raise; any other exception aborts with its mapped status."""
        if isinstance(exc, asyncio.CancelledError):
            self._finish(_cancellation_code(context))
            raise exc  # so that whatever the handler was awaiting stops too
        if isinstance(exc, GeneratorExit):
            # The server stopped taking a stream's messages: the call was cancelled while a
            # message was being sent, and the stream is being closed.
            self._finish(grpc.StatusCode.CANCELLED)
            raise exc
        if isinstance(exc, grpc.aio.AbortError):
            # The handler aborted with a status of its own choosing; it is sent already.
            self._finish(context.code() or grpc.StatusCode.UNKNOWN)
            raise exc
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: the process is ending
            raise exc
        code, message, trailing_metadata = self._status_for(context, exc)
        self._log_failure(exc, code)
        self._finish(code)
        await context.abort(code, message, trailing_metadata)

    @staticmethod
    def _status_for(context: grpc.aio.ServicerContext,
                    exc: Exception) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
        preset = context.code()
        if not isinstance(exc, NeuroMeshError) and preset not in (None, grpc.StatusCode.OK):
            # The handler chose a status before raising (the generated stub of an unimplemented
            # method sets UNIMPLEMENTED, then raises NotImplementedError): keep its choice.
            return preset, context.details() or preset.name, ()
        status = rpc_status.to_status(to_rpc_status(as_neuromesh_error(exc)))
        return status.code, status.details, status.trailing_metadata

    def _log_failure(self, exc: Exception, code: grpc.StatusCode) -> None:
        fields = {"grpc_method": self.full_method, "grpc_code": code.name, "error_type": type(exc).__name__}
        if isinstance(exc, NeuroMeshError):
            # Raised on purpose, with a message for the caller: the code and reason suffice.
            logger.info("rpc failed: %s", exc.message, extra={**fields, "reason": exc.reason})
        else:
            # Raised by code that did not expect it: the stack trace is the way to the bug.
            level = logging.ERROR if code in _SERVER_FAULT_CODES else logging.WARNING
            logger.log(level, "rpc failed with an unexpected %s", type(exc).__name__, exc_info=exc, extra=fields)

    def _finish(self, code: grpc.StatusCode) -> None:
        if self.done:
            return
        self.done = True
        SERVER_HANDLED.labels(**self.labels, grpc_code=code.name).inc()
        SERVER_HANDLING_SECONDS.labels(**self.labels).observe(time.perf_counter() - self.started)


# The client's timer fires a little before the server's, which starts when the request arrives:
# a cancellation this close to the deadline is the deadline, sent on by the client.
_DEADLINE_SLACK_S = 0.1


def _cancellation_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """CANCELLED, or DEADLINE_EXCEEDED when the call ran out of time (the server cancels it then too)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= _DEADLINE_SLACK_S:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


async def _call(behavior: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext) -> Any:
    """Await an async handler; run a plain one in a worker thread, as grpc.aio itself would."""
    if inspect.iscoroutinefunction(behavior):
        return await behavior(request, context)
    return await asyncio.to_thread(behavior, request, context)


async def _responses(behavior: Callable[..., Any], request: Any,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    """The responses of a streaming handler, whichever grpc.aio style it is written in."""
    if inspect.isasyncgenfunction(behavior):
        async for response in behavior(request, context):
            yield response
        return
    # A coroutine that sends with ``context.write`` returns None (those messages are not
    # counted); a plain function returns an iterator, advanced in a worker thread.
    result = await _call(behavior, request, context)
    if result is None:
        return
    iterator, end = iter(result), object()
    while (response := await asyncio.to_thread(next, iterator, end)) is not end:
        yield response


async def _counted(requests: AsyncIterator[Any], observer: _CallObserver) -> AsyncIterator[Any]:
    async for request in requests:
        observer.message_received()
        yield request


def _observed_unary_response(behavior: Callable[..., Any], full_method: str, grpc_type: str):
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        observer = _CallObserver(grpc_type, full_method)
        if grpc_type == "CLIENT_STREAM":
            request = _counted(request, observer)
        else:
            observer.message_received()
        try:
            response = await _call(behavior, request, context)
        except BaseException as exc:  # noqa: BLE001 - `failed` re-raises or aborts
            await observer.failed(context, exc)
        observer.message_sent()
        observer.succeeded(context)
        return response
    return handle


def _observed_stream_response(behavior: Callable[..., Any], full_method: str, grpc_type: str):
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        observer = _CallObserver(grpc_type, full_method)
        if grpc_type == "BIDI_STREAM":
            request = _counted(request, observer)
        else:
            observer.message_received()
        try:
            # An exception between two messages is handled like one before the first: the
            # client gets the messages sent so far, then the mapped status.
            async for response in _responses(behavior, request, context):
                observer.message_sent()
                yield response
        except BaseException as exc:  # noqa: BLE001 - `failed` re-raises or aborts
            await observer.failed(context, exc)
        observer.succeeded(context)
    return handle


def grpc_type_of(method) -> str:
    """The ``grpc_type`` label of a method descriptor (UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI_STREAM)."""
    if method.client_streaming and method.server_streaming:
        return "BIDI_STREAM"
    if method.client_streaming:
        return "CLIENT_STREAM"
    return "SERVER_STREAM" if method.server_streaming else "UNARY"


def declare_service_series(service_full_name: str) -> int:
    """Create the ``grpc_server_*`` series of every method of a service at 0, before any call.

    A labelled series otherwise appears with its first call, already at 1, and ``rate()`` sees no
    increase until the second: the first simulation of a fresh replica would be invisible to its
    dashboards and autoscalers. Returns how many methods were declared.

    >>> from neuromesh.common.v1 import service_info_pb2
    >>> declare_service_series("neuromesh.common.v1.ServiceInfoService")
    1
    """
    from google.protobuf import descriptor_pool

    service = descriptor_pool.Default().FindServiceByName(service_full_name)
    for method in service.methods:
        labels = dict(grpc_type=grpc_type_of(method), grpc_service=service_full_name, grpc_method=method.name)
        SERVER_STARTED.labels(**labels)
        SERVER_HANDLED.labels(**labels, grpc_code="OK")
        SERVER_HANDLING_SECONDS.labels(**labels)
        SERVER_MSG_SENT.labels(**labels)
        SERVER_MSG_RECEIVED.labels(**labels)
    return len(service.methods)


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every RPC handler of a ``grpc.aio`` server to measure it and answer its errors.

    Measuring and error answering live together because the metrics must count the status
    the client really gets, which is only known once the handler's exception is mapped.
    Handlers should be async; a plain function is run in a worker thread for a unary request,
    as grpc.aio does (that covers the generated stubs of methods a servicer leaves out).

    Example
    -------
    >>> server = grpc.aio.server(interceptors=[MetricsInterceptor()])   # doctest: +SKIP
    """

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None
        method = handler_call_details.method
        codecs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                _observed_stream_response(handler.stream_stream, method, "BIDI_STREAM"), **codecs)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                _observed_unary_response(handler.stream_unary, method, "CLIENT_STREAM"), **codecs)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                _observed_stream_response(handler.unary_stream, method, "SERVER_STREAM"), **codecs)
        return grpc.unary_unary_rpc_method_handler(
            _observed_unary_response(handler.unary_unary, method, "UNARY"), **codecs)
