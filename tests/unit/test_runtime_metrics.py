"""The metrics interceptor on handlers called directly, with a stand-in servicer context, and the
domain-metric helpers and the ``/metrics`` endpoint.

Metrics live on the process's registry, so each test uses its own method name and starts at 0.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import grpc
import pytest
from google.rpc import status_pb2
from prometheus_client import REGISTRY

from services.common.errors import NotFound, error_detail_from_status
from services.common.metrics import (MetricsInterceptor, neuromesh_counter, neuromesh_histogram,
                                     start_metrics_http_server)

SERVICE = "neuromesh.test.v1.InterceptorService"


class StandInContext:
    """What the interceptor uses of ``grpc.aio.ServicerContext``; ``abort`` raises like the real one."""

    def __init__(self, time_remaining: float | None = None) -> None:
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._time_remaining = time_remaining
        self.aborted_with: tuple | None = None

    def code(self):
        return self._code

    def details(self):
        return self._details

    def set_code(self, code):
        self._code = code

    def set_details(self, details):
        self._details = details

    def time_remaining(self):
        return self._time_remaining

    async def abort(self, code, details="", trailing_metadata=()):
        self._code, self._details, self.aborted_with = code, details, (code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()


class CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def intercepted(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    async def continuation(_details):
        return handler

    return asyncio.run(MetricsInterceptor().intercept_service(continuation, CallDetails(f"/{SERVICE}/{method}")))


def handled(method: str, grpc_type: str, code: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_handled_total", {
        "grpc_service": SERVICE, "grpc_method": method, "grpc_type": grpc_type, "grpc_code": code}) or 0.0


def counted(name: str, method: str, grpc_type: str) -> float:
    return REGISTRY.get_sample_value(name, {"grpc_service": SERVICE, "grpc_method": method,
                                            "grpc_type": grpc_type}) or 0.0


def run_unary(behavior, method: str, context: StandInContext, request="req"):
    handler = intercepted(grpc.unary_unary_rpc_method_handler(behavior), method)
    return asyncio.run(handler.unary_unary(request, context))


def test_unary_success_is_counted_ok_and_timed():
    async def echo(request, context):
        return request.upper()

    assert run_unary(echo, "Echo", StandInContext()) == "REQ"
    assert handled("Echo", "UNARY", "OK") == 1
    assert counted("grpc_server_started_total", "Echo", "UNARY") == 1
    assert counted("grpc_server_handling_seconds_count", "Echo", "UNARY") == 1
    assert counted("grpc_server_msg_received_total", "Echo", "UNARY") == 1
    assert counted("grpc_server_msg_sent_total", "Echo", "UNARY") == 1


def test_neuromesh_error_aborts_with_its_code_message_and_detail():
    async def missing(request, context):
        raise NotFound("job 7 does not exist", reason="JOB_NOT_FOUND")

    context = StandInContext()
    with pytest.raises(grpc.aio.AbortError):
        run_unary(missing, "Missing", context)
    code, details, trailing = context.aborted_with
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, "job 7 does not exist")
    [(key, value)] = trailing
    assert key == "grpc-status-details-bin"
    assert error_detail_from_status(status_pb2.Status.FromString(value)).reason == "JOB_NOT_FOUND"
    assert handled("Missing", "UNARY", "NOT_FOUND") == 1


def test_a_code_the_handler_set_before_raising_is_kept():
    def unimplemented(request, context):  # the generated stub of a method left out, a plain function
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    context = StandInContext()
    with pytest.raises(grpc.aio.AbortError):
        run_unary(unimplemented, "Unimplemented", context)
    assert context.aborted_with == (grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!", ())
    assert handled("Unimplemented", "UNARY", "UNIMPLEMENTED") == 1


def test_a_code_set_without_raising_is_the_code_counted():
    async def soft_failure(request, context):
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        return "partial"

    assert run_unary(soft_failure, "Soft", StandInContext()) == "partial"
    assert handled("Soft", "UNARY", "FAILED_PRECONDITION") == 1


def test_an_abort_by_the_handler_passes_through_with_its_code():
    async def aborts(request, context):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")

    context = StandInContext()
    with pytest.raises(grpc.aio.AbortError):
        run_unary(aborts, "Aborts", context)
    assert context.aborted_with == (grpc.StatusCode.PERMISSION_DENIED, "no", ())
    assert handled("Aborts", "UNARY", "PERMISSION_DENIED") == 1


@pytest.mark.parametrize(("time_remaining", "code"), [(None, "CANCELLED"), (12.0, "CANCELLED"),
                                                      (0.0, "DEADLINE_EXCEEDED"), (0.02, "DEADLINE_EXCEEDED")])
def test_cancellation_propagates_and_is_counted(time_remaining, code):
    method = f"Slow{code}{time_remaining}"

    async def slow(request, context):
        await asyncio.sleep(60)

    handler = intercepted(grpc.unary_unary_rpc_method_handler(slow), method)

    async def cancel_it():
        task = asyncio.ensure_future(handler.unary_unary("req", StandInContext(time_remaining)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert handled(method, "UNARY", code) == 1


def collect(handler_stream, request, context):
    async def drain():
        return [response async for response in handler_stream(request, context)]
    return asyncio.run(drain())


def test_server_stream_counts_messages_and_maps_a_late_error():
    async def folds(request, context):
        for i in range(3):
            yield i
        raise ValueError("fold 4 has no samples")

    handler = intercepted(grpc.unary_stream_rpc_method_handler(folds), "Folds")
    context = StandInContext()
    received = []

    async def drain():
        async for response in handler.unary_stream("req", context):
            received.append(response)

    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(drain())
    assert received == [0, 1, 2]
    assert context.aborted_with[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "fold 4 has no samples")
    assert counted("grpc_server_msg_sent_total", "Folds", "SERVER_STREAM") == 3
    assert counted("grpc_server_msg_received_total", "Folds", "SERVER_STREAM") == 1
    assert handled("Folds", "SERVER_STREAM", "INVALID_ARGUMENT") == 1


def test_a_stream_closed_by_the_server_midway_counts_cancelled():
    closed = []

    async def endless(request, context):
        try:
            while True:
                yield "tick"
        finally:
            closed.append(True)

    handler = intercepted(grpc.unary_stream_rpc_method_handler(endless), "Endless")

    async def take_two_then_close():
        stream = handler.unary_stream("req", StandInContext())
        assert [await anext(stream), await anext(stream)] == ["tick", "tick"]
        await stream.aclose()

    asyncio.run(take_two_then_close())
    assert closed == [True]
    assert handled("Endless", "SERVER_STREAM", "CANCELLED") == 1


def test_a_plain_generator_handler_streams_from_a_thread():
    def countdown(request, context):
        yield from range(request, 0, -1)

    handler = intercepted(grpc.unary_stream_rpc_method_handler(countdown), "Countdown")
    assert collect(handler.unary_stream, 3, StandInContext()) == [3, 2, 1]
    assert handled("Countdown", "SERVER_STREAM", "OK") == 1


async def requests(*items):
    for item in items:
        yield item


def test_client_and_bidi_streams_count_received_messages():
    async def total(request_iterator, context):
        return sum([x async for x in request_iterator])

    async def doubled(request_iterator, context):
        async for x in request_iterator:
            yield 2 * x

    client = intercepted(grpc.stream_unary_rpc_method_handler(total), "Total")
    assert asyncio.run(client.stream_unary(requests(1, 2, 3), StandInContext())) == 6
    assert counted("grpc_server_msg_received_total", "Total", "CLIENT_STREAM") == 3
    assert counted("grpc_server_msg_sent_total", "Total", "CLIENT_STREAM") == 1
    assert handled("Total", "CLIENT_STREAM", "OK") == 1

    bidi = intercepted(grpc.stream_stream_rpc_method_handler(doubled), "Doubled")
    assert collect(bidi.stream_stream, requests(1, 2), StandInContext()) == [2, 4]
    assert counted("grpc_server_msg_received_total", "Doubled", "BIDI_STREAM") == 2
    assert counted("grpc_server_msg_sent_total", "Doubled", "BIDI_STREAM") == 2


def test_an_unknown_method_is_left_to_grpc():
    async def continuation(_details):
        return None

    assert asyncio.run(MetricsInterceptor().intercept_service(continuation, CallDetails("/x.Y/Z"))) is None


# --- domain metrics and the endpoint


def test_domain_counter_gets_the_prefix_and_is_declared_once():
    counter = neuromesh_counter("unit_test_neuron_steps", "Neuron-steps simulated.", ["model"])
    assert neuromesh_counter("neuromesh_unit_test_neuron_steps", "Neuron-steps simulated.", ["model"]) is counter
    assert neuromesh_counter("unit_test_neuron_steps_total", "Neuron-steps simulated.", ["model"]) is counter
    counter.labels(model="lif").inc(1000)
    assert REGISTRY.get_sample_value("neuromesh_unit_test_neuron_steps_total", {"model": "lif"}) == 1000


def test_domain_metric_redeclared_differently_is_an_error():
    neuromesh_counter("unit_test_blocks", "Blocks.", ["stage"])
    with pytest.raises(ValueError, match="already declared as a Counter"):
        neuromesh_counter("unit_test_blocks", "Blocks.", ["volume"])
    with pytest.raises(ValueError, match="already declared"):
        neuromesh_histogram("unit_test_blocks", "Blocks.", ["stage"])


@pytest.mark.parametrize("label", ["job_id", "user"])
def test_per_job_or_user_labels_are_refused(label):
    with pytest.raises(ValueError, match="one time series per job or caller"):
        neuromesh_counter("unit_test_refused", "Refused.", [label])


def test_domain_histogram_uses_its_buckets():
    fit = neuromesh_histogram("unit_test_fit_seconds", "Fit time.", buckets=(0.1, 1.0))
    fit.observe(0.5)
    assert REGISTRY.get_sample_value("neuromesh_unit_test_fit_seconds_bucket", {"le": "1.0"}) == 1
    assert REGISTRY.get_sample_value("neuromesh_unit_test_fit_seconds_bucket", {"le": "0.1"}) == 0


def test_metrics_endpoint_on_port_zero_reports_its_port_and_releases_it():
    endpoint = start_metrics_http_server(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5) as reply:
            body = reply.read().decode()
        assert "# TYPE grpc_server_handled_total counter" in body
    finally:
        endpoint.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=5).close()


def test_every_method_of_a_service_has_its_series_at_zero_before_any_call():
    from prometheus_client import REGISTRY

    from neuromesh.segmentation.v1 import segmentation_pb2  # registers the descriptor
    from services.common.metrics import declare_service_series

    name = "neuromesh.segmentation.v1.SegmentationService"
    methods = segmentation_pb2.DESCRIPTOR.services_by_name["SegmentationService"].methods
    assert declare_service_series(name) == len(methods) >= 5
    for method, kind in (("Segment", "SERVER_STREAM"), ("Score", "UNARY"), ("TrainBoundaryModel", "SERVER_STREAM"),
                         ("SegmentBlocks", "SERVER_STREAM"), ("MergeSegmentBlocks", "SERVER_STREAM")):
        labels = {"grpc_type": kind, "grpc_service": name, "grpc_method": method}
        assert REGISTRY.get_sample_value("grpc_server_started_total", labels) is not None
        assert REGISTRY.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "OK"}) is not None
