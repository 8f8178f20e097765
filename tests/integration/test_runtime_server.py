"""The shared service runtime against real servers on loopback: health, reflection, error mapping,
metrics, cancellation, and the drain of a real service process on SIGTERM."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from neuromesh.common.v1 import service_info_pb2, service_info_pb2_grpc
from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from neuromesh.stack.processes import ManagedProcess, free_port
from runtime_support.servicer import (CRASH_WIDTH, INVALID_WIDTH, NOT_FOUND_WIDTH, SECRET, SERVICE_FULL_NAME,
                                      SLOW_WIDTH, RuntimeTestServicer)
from services.common.errors import error_detail_from_status
from services.common.server import RunningServer, ServerStartError, ServiceDefinition, start_server
from services.common.settings import load_settings

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


class BackgroundServer:
    """A server started with ``start_server`` on an event loop in a thread, for sync clients."""

    def __init__(self, service: ServiceDefinition, **settings: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grpc-server-loop", daemon=True)
        self.thread.start()
        self.settings = load_settings(grpc_port=0, metrics_port=0, **settings)
        self.running: RunningServer = self.run(start_server(service, self.settings))
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.running.grpc_port}")

    def run(self, coroutine, timeout_s: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.channel.close()
        self.run(self.running.drain_and_stop(grace_s=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def decoding_definition(servicer) -> ServiceDefinition:
    return ServiceDefinition(name="decoding-test", servicer=servicer,
                             add_to_server=decoding_pb2_grpc.add_DecodingServiceServicer_to_server,
                             service_full_name=SERVICE_FULL_NAME, version="7.1.2")


@pytest.fixture(scope="module")
def servicer() -> RuntimeTestServicer:
    return RuntimeTestServicer()


@pytest.fixture(scope="module")
def server(servicer):
    background = BackgroundServer(decoding_definition(servicer))
    yield background
    background.stop()


@pytest.fixture
def decoding(server) -> decoding_pb2_grpc.DecodingServiceStub:
    return decoding_pb2_grpc.DecodingServiceStub(server.channel)


def scrape(metrics_port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics`` as {(sample name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def call_labels(method: str, grpc_type: str) -> dict[str, str]:
    return {"grpc_service": SERVICE_FULL_NAME, "grpc_method": method, "grpc_type": grpc_type}


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def bin_request(width: float) -> decoding_pb2.BinRecordingRequest:
    return decoding_pb2.BinRecordingRequest(bin_width_s=width, start_s=0.0, stop_s=10.0)


# --- health and reflection


@pytest.mark.parametrize("health_service", ["", "neuromesh.decoding.v1.DecodingService"])
def test_health_is_serving_for_the_server_and_the_service(server, health_service):
    reply = health_pb2_grpc.HealthStub(server.channel).Check(
        health_pb2.HealthCheckRequest(service=health_service), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service_health_and_reflection(server):
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                             timeout=5))
    names = {s.name for s in replies[0].list_services_response.service}
    assert names == {"neuromesh.decoding.v1.DecodingService", "grpc.health.v1.Health",
                     "grpc.reflection.v1alpha.ServerReflection", "neuromesh.common.v1.ServiceInfoService"}


def test_service_info_names_the_service_and_its_version(server):
    reply = service_info_pb2_grpc.ServiceInfoServiceStub(server.channel).GetServiceInfo(
        service_info_pb2.GetServiceInfoRequest(), timeout=5)
    assert (reply.name, reply.service, reply.version) == ("decoding-test", SERVICE_FULL_NAME, "7.1.2")
    assert reply.package_version == importlib.metadata.version("neuromesh")


# --- errors


def test_a_successful_call_answers(decoding):
    assert decoding.BinRecording(bin_request(0.5), timeout=5).n_bins == 20


def test_not_found_carries_message_and_error_detail(decoding):
    with pytest.raises(grpc.RpcError) as raised:
        decoding.BinRecording(bin_request(NOT_FOUND_WIDTH), timeout=5)
    err = raised.value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "artifact s3://neuromesh/spikes.zarr does not exist"
    status = rpc_status.from_call(err)
    assert status is not None and status.message == err.details()
    detail = error_detail_from_status(status)
    assert detail.reason == "ARTIFACT_NOT_FOUND"
    assert dict(detail.metadata) == {"key": "spikes.zarr"}


def test_value_error_is_invalid_argument_with_its_message(decoding):
    with pytest.raises(grpc.RpcError) as raised:
        decoding.BinRecording(bin_request(INVALID_WIDTH), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "bin_width_s must be > 0, got -1.0"
    assert error_detail_from_status(rpc_status.from_call(raised.value)).reason == "INVALID_ARGUMENT"


def test_unexpected_error_is_internal_and_its_trace_stays_in_the_log(decoding, caplog):
    with pytest.raises(grpc.RpcError) as raised:
        decoding.BinRecording(bin_request(CRASH_WIDTH), timeout=5)
    err = raised.value
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "internal error (RuntimeError); the service log has the details"
    for text in (err.details(), str(err.debug_error_string()), rpc_status.from_call(err).SerializeToString()):
        text = text.decode(errors="replace") if isinstance(text, bytes) else text
        assert "Traceback" not in text and SECRET not in text and "servicer.py" not in text
    # The server side logged the full story.
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert logged and SECRET in str(logged[0].exc_info[1]) and logged[0].grpc_code == "INTERNAL"


def test_error_in_the_middle_of_a_stream_follows_the_messages_sent(decoding):
    call = decoding.Train(decoding_pb2.TrainRequest(n_folds=3, decoder=decoding_pb2.DecoderSpec(future_bins=-1)), timeout=5)
    received = []
    with pytest.raises(grpc.RpcError) as raised:
        for reply in call:
            received.append(reply)
    assert [r.WhichOneof("event") for r in received] == ["progress"]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "future_bins must be >= 0, got -1"


def test_a_method_the_servicer_leaves_out_is_unimplemented():
    bare = BackgroundServer(decoding_definition(decoding_pb2_grpc.DecodingServiceServicer()))
    try:
        stub = decoding_pb2_grpc.DecodingServiceStub(bare.channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.BinRecording(bin_request(1.0), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        samples = scrape(bare.running.metrics_port)
        assert sample(samples, "grpc_server_handled_total", **call_labels("BinRecording", "UNARY"),
                      grpc_code="UNIMPLEMENTED") >= 1
    finally:
        bare.stop()


# --- metrics


def test_metrics_count_calls_by_method_and_final_code(server, decoding):
    before = scrape(server.running.metrics_port)
    for _ in range(3):
        decoding.BinRecording(bin_request(0.5), timeout=5)
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            decoding.BinRecording(bin_request(NOT_FOUND_WIDTH), timeout=5)
    replies = list(decoding.Train(decoding_pb2.TrainRequest(n_folds=4), timeout=5))
    assert len(replies) == 5
    after = scrape(server.running.metrics_port)

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    unary, stream = call_labels("BinRecording", "UNARY"), call_labels("Train", "SERVER_STREAM")
    assert delta("grpc_server_started_total", **unary) == 5
    assert delta("grpc_server_handled_total", **unary, grpc_code="OK") == 3
    assert delta("grpc_server_handled_total", **unary, grpc_code="NOT_FOUND") == 2
    assert delta("grpc_server_handling_seconds_count", **unary) == 5
    assert delta("grpc_server_handling_seconds_bucket", **unary, le="+Inf") == 5
    assert delta("grpc_server_started_total", **stream) == 1
    assert delta("grpc_server_handled_total", **stream, grpc_code="OK") == 1
    assert delta("grpc_server_handling_seconds_count", **stream) == 1
    assert delta("grpc_server_msg_sent_total", **stream) == 5
    assert delta("grpc_server_msg_received_total", **stream) == 1
    assert delta("grpc_server_msg_received_total", **unary) == 5
    assert delta("grpc_server_msg_sent_total", **unary) == 3  # the failed calls answered no message
    # The health and reflection services are measured like any other.
    assert any(name == "grpc_server_started_total" and ("grpc_service", "grpc.health.v1.Health") in labels
               for name, labels in after)


def test_client_cancel_stops_the_stream_and_counts_cancelled(server, servicer, decoding):
    labels = call_labels("Train", "SERVER_STREAM")
    before = sample(scrape(server.running.metrics_port), "grpc_server_handled_total", **labels,
                    grpc_code="CANCELLED")
    call = decoding.Train(decoding_pb2.TrainRequest(n_folds=50, decoder=decoding_pb2.DecoderSpec(history_bins=1000)), timeout=30)
    assert next(call).progress.stage == "fold"
    call.cancel()
    assert servicer.stream_cancelled.wait(5), "the handler did not see CancelledError"
    assert wait_until(lambda: sample(scrape(server.running.metrics_port), "grpc_server_handled_total",
                                     **labels, grpc_code="CANCELLED") == before + 1)


def test_deadline_stops_the_call_and_counts_deadline_exceeded(server, servicer, decoding):
    labels = call_labels("BinRecording", "UNARY")
    before = sample(scrape(server.running.metrics_port), "grpc_server_handled_total", **labels,
                    grpc_code="DEADLINE_EXCEEDED")
    with pytest.raises(grpc.RpcError) as raised:
        decoding.BinRecording(bin_request(SLOW_WIDTH), timeout=0.3)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert servicer.unary_cancelled.wait(5), "the handler did not see CancelledError"
    assert wait_until(lambda: sample(scrape(server.running.metrics_port), "grpc_server_handled_total",
                                     **labels, grpc_code="DEADLINE_EXCEEDED") == before + 1)


@pytest.mark.parametrize("setting", ["grpc_port", "metrics_port"])
def test_a_taken_port_fails_the_start_naming_the_setting(servicer, setting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"grpc_port": 0, "metrics_port": 0, setting: taken.getsockname()[1]}

        async def start_on_taken_port():
            await start_server(decoding_definition(servicer), load_settings(**ports))

        with pytest.raises(ServerStartError, match=f"NEUROMESH_{setting.upper()}"):
            asyncio.run(start_on_taken_port())


# --- the service as a process


def service_process(log_path: Path, **settings: str) -> ManagedProcess:
    """``python -m runtime_support.serve`` with ``NEUROMESH_<NAME>`` taken from ``settings``, started."""
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "NEUROMESH_GRPC_HOST": "127.0.0.1",
           **{f"NEUROMESH_{name.upper()}": value for name, value in settings.items()}}
    process = ManagedProcess("runtime-test-service", [sys.executable, "-m", "runtime_support.serve"],
                             env=env, log_path=log_path, cwd=REPO)
    process.start()
    return process


def test_sigterm_drains_in_flight_calls_then_exits_zero(tmp_path):
    grpc_port, grace_s = free_port(), 8.0
    process = service_process(tmp_path / "service.log", grpc_port=str(grpc_port), metrics_port="0",
                              drain_grace_s=str(grace_s), log_format="json")
    try:
        address = f"127.0.0.1:{grpc_port}"
        process.wait_healthy(lambda: grpc_health_status(address, SERVICE_FULL_NAME) == "SERVING", timeout_s=15)
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # A watch opened before the drain hears of it; a new Check would be refused then.
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_FULL_NAME), timeout=10)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

            stream = decoding_pb2_grpc.DecodingServiceStub(channel).Train(
                decoding_pb2.TrainRequest(n_folds=4, decoder=decoding_pb2.DecoderSpec(history_bins=300)), timeout=10)
            first = next(stream)  # three more folds, 0.3 s apart, are still to come
            sigterm_at = time.monotonic()
            process.popen.send_signal(signal.SIGTERM)

            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()  # an open watch is an in-flight call too: the drain would wait for it
            rest = list(stream)
            assert stream.code() == grpc.StatusCode.OK
            assert [r.WhichOneof("event") for r in [first, *rest]] == ["progress"] * 4 + ["result"]

        returncode = process.popen.wait(timeout=grace_s + 5)
        stopped_after = time.monotonic() - sigterm_at
    finally:
        process.stop(timeout_s=2)
    log = process.log_tail(20_000)
    assert returncode == 0, log
    assert stopped_after < grace_s, "the drain waited for its whole grace period"
    # Lines that are not JSON come from grpc's C core, which logs on its own.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [r["message"] for r in records] == ["serving", "draining", "stopped"]
    assert records[0]["grpc_port"] == grpc_port and records[0]["metrics_port"] > 0
    assert records[0]["service"] == "decoding-test" and records[1]["signal"] == "SIGTERM"


def test_polled_health_checks_see_not_serving_during_the_drain_notice(tmp_path):
    grpc_port = free_port()
    process = service_process(tmp_path / "service.log", grpc_port=str(grpc_port), metrics_port="0",
                              drain_grace_s="2", drain_notice_s="1.5")
    try:
        address = f"127.0.0.1:{grpc_port}"
        process.wait_healthy(lambda: grpc_health_status(address, SERVICE_FULL_NAME) == "SERVING", timeout_s=15)
        process.popen.send_signal(signal.SIGTERM)
        seen = set()
        deadline = time.monotonic() + 5
        while process.running and time.monotonic() < deadline:
            seen.add(grpc_health_status(address, SERVICE_FULL_NAME, timeout_s=0.5))
            time.sleep(0.05)
        assert process.popen.wait(timeout=10) == 0
    finally:
        process.stop(timeout_s=2)
    assert "NOT_SERVING" in seen, seen


def test_an_invalid_setting_exits_2_naming_the_variable(tmp_path):
    process = service_process(tmp_path / "service.log", grpc_port="abc")
    try:
        returncode = process.popen.wait(timeout=30)
    finally:
        process.stop(timeout_s=2)
    output = process.log_tail()
    assert returncode == 2
    assert "NEUROMESH_GRPC_PORT='abc'" in output
    assert "Traceback" not in output
