"""The call loop: which failures are retried and how long it waits, what a stream hands over, how
Ctrl-C and a failing callback cancel the call on the server, deadlines, TLS and the token.

Fakes stand in for stubs where the loop's logic is tested; an in-process gRPC server (conftest's
scripted simulation service) where the behaviour over a real channel is."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest

from neuromesh.common.v1.progress_pb2 import Progress
from neuromesh.sdk import Client, RetryPolicy, TlsConfig
from neuromesh.sdk.connection import Deadlines, call_stream, call_unary
from neuromesh.sdk.errors import DeadlineExceeded, Internal, InvalidArgument, Unavailable
from neuromesh.simulation.v1 import simulation_pb2 as S
from neuromesh.simulation.v1 import simulation_pb2_grpc
from services.common import errors as service_errors
from sdk_fakes import ENDLESS_MS, FakeRpcError, ScriptedSimulation

NO_JITTER = dict(jitter=0.0, initial_backoff_s=0.5, multiplier=2.0, max_backoff_s=1.5)


class FakeUnary:
    """A unary multicallable failing with ``codes`` in turn, then answering."""

    def __init__(self, *codes):
        self.codes = list(codes)
        self.calls = 0
        self.timeouts = []

    def future(self, request, timeout, metadata):
        self.calls += 1
        self.timeouts.append(timeout)
        code = self.codes.pop(0) if self.codes else None

        class Future:
            def result(self):
                if code is not None:
                    raise FakeRpcError(code, f"scripted {code.name}")
                return f"answer to {request}"

            def cancel(self):
                return False

        return Future()


class FakeStream(list):
    """A stream of responses, optionally failing with ``code`` after them."""

    def __init__(self, responses, code=None):
        super().__init__(responses)
        self.code = code
        self.cancelled = False

    def __iter__(self):
        yield from list.__iter__(self)
        if self.code is not None:
            raise FakeRpcError(self.code, f"scripted {self.code.name}")

    def cancel(self):
        self.cancelled = True
        return True


def progress(fraction):
    return S.SimulateResponse(progress=Progress(fraction_done=fraction, stage="simulate"))


RESULT = S.SimulateResponse(result=S.SimulateResult(n_spikes=7))


# --- the policy -------------------------------------------------------------------------------------


def test_only_unavailable_and_unary_deadlines_are_retryable():
    policy = RetryPolicy()
    retryable = {code for code in grpc.StatusCode if policy.retryable(code, unary=True)}
    assert retryable == {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    assert {code for code in grpc.StatusCode if policy.retryable(code, unary=False)} == {grpc.StatusCode.UNAVAILABLE}
    assert not RetryPolicy(retry_deadline_exceeded=False).retryable(grpc.StatusCode.DEADLINE_EXCEEDED, unary=True)


def test_backoff_grows_geometrically_to_its_cap_with_bounded_jitter():
    assert [RetryPolicy(**NO_JITTER).backoff_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    rng = random.Random(0)
    waits = [RetryPolicy(initial_backoff_s=1.0, jitter=0.2).backoff_s(1, rng) for _ in range(1000)]
    assert 0.8 <= min(waits) < 0.85 and 1.15 < max(waits) <= 1.2


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(multiplier=0.5), dict(jitter=1.0),
                                 dict(initial_backoff_s=-1.0)])
def test_a_nonsensical_policy_is_refused(bad):
    with pytest.raises(InvalidArgument):
        RetryPolicy(**bad)


# --- unary calls ------------------------------------------------------------------------------------


def test_unavailable_is_retried_with_the_policys_backoff():
    invoke, waits = FakeUnary(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE), []
    answer = call_unary(invoke, "ping", timeout=3.0, retry=RetryPolicy(**NO_JITTER), sleep=waits.append)
    assert answer == "answer to ping" and invoke.calls == 3 and waits == [0.5, 1.0]
    assert invoke.timeouts == [3.0, 3.0, 3.0]   # each attempt gets the whole deadline


def test_invalid_argument_is_raised_at_once():
    invoke, waits = FakeUnary(grpc.StatusCode.INVALID_ARGUMENT), []
    with pytest.raises(InvalidArgument) as caught:
        call_unary(invoke, "ping", timeout=3.0, sleep=waits.append, service="decoding", method="Predict")
    assert invoke.calls == 1 and waits == [] and caught.value.attempts == 1
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_unary_deadline_is_retried_and_the_last_failure_raised_after_the_last_attempt():
    invoke, waits = FakeUnary(*[grpc.StatusCode.DEADLINE_EXCEEDED] * 3), []
    with pytest.raises(DeadlineExceeded) as caught:
        call_unary(invoke, "ping", timeout=1.0, retry=RetryPolicy(max_attempts=3, **NO_JITTER), sleep=waits.append)
    assert invoke.calls == 3 and caught.value.attempts == 3 and waits == [0.5, 1.0]


# --- streams ----------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail_at=None):
        self.events, self.retries, self.outcome, self.fail_at = [], [], None, fail_at

    def progress(self, event):
        self.events.append(event.fraction_done)
        if self.fail_at is not None and len(self.events) == self.fail_at:
            raise RuntimeError("stop button")

    def retrying(self, attempt, code, wait_s):
        self.retries.append((attempt, code))

    def close(self, outcome):
        self.outcome = outcome


def test_a_stream_hands_its_progress_to_the_observer_and_returns_its_result():
    recorder = Recorder()
    result = call_stream(lambda request, timeout, metadata: FakeStream([progress(0.5), progress(1.0), RESULT]),
                         S.SimulateRequest(), timeout=10.0, observer=recorder)
    assert result.n_spikes == 7 and recorder.events == [0.5, 1.0] and recorder.outcome == "done"


def test_a_stream_cut_by_unavailable_is_sent_again_but_not_one_past_its_deadline():
    streams = [FakeStream([progress(0.3)], grpc.StatusCode.UNAVAILABLE), FakeStream([progress(0.6), RESULT])]
    recorder, waits = Recorder(), []
    result = call_stream(lambda request, timeout, metadata: streams.pop(0), S.SimulateRequest(), timeout=10.0,
                         observer=recorder, retry=RetryPolicy(**NO_JITTER), sleep=waits.append)
    assert result.n_spikes == 7 and recorder.retries == [(1, grpc.StatusCode.UNAVAILABLE)] and waits == [0.5]
    assert recorder.events == [0.3, 0.6]

    starts = []
    with pytest.raises(DeadlineExceeded):
        call_stream(lambda request, timeout, metadata: starts.append(1) or FakeStream(
            [], grpc.StatusCode.DEADLINE_EXCEEDED), S.SimulateRequest(), timeout=10.0, sleep=waits.append)
    assert starts == [1]


def test_an_exception_of_the_callback_cancels_the_stream_and_propagates():
    stream = FakeStream([progress(0.1), progress(0.2), RESULT])
    recorder = Recorder(fail_at=1)
    with pytest.raises(RuntimeError, match="stop button"):
        call_stream(lambda request, timeout, metadata: stream, S.SimulateRequest(), timeout=10.0, observer=recorder)
    assert stream.cancelled and recorder.outcome == "cancelled"


def test_a_stream_without_a_result_is_an_internal_error():
    with pytest.raises(Internal, match="without a result"):
        call_stream(lambda request, timeout, metadata: FakeStream([progress(1.0)]), S.SimulateRequest(),
                    timeout=10.0, service="simulation", method="Simulate")


# --- over a real channel ------------------------------------------------------------------------------


def client_of(target, **options) -> Client:
    options.setdefault("retry", RetryPolicy(initial_backoff_s=0.01, jitter=0.0))
    return Client({"simulation": target}, progress=False, **options)


def test_retries_over_a_real_channel_stop_at_the_first_answer(scripted):
    servicer, target = scripted
    servicer.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    with client_of(target) as client:
        assert client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=100.0).n_spikes == 100
        assert servicer.calls == 3
        servicer.failures = [grpc.StatusCode.UNAVAILABLE]
        assert client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}}).total_bytes == 1234
        assert servicer.calls == 5


def test_a_servers_invalid_argument_reaches_the_caller_with_its_field_unretried(scripted):
    servicer, target = scripted
    servicer.failures = [service_errors.InvalidArgument("network.dt_ms must be > 0", field="network.dt_ms")]
    with client_of(target) as client, pytest.raises(InvalidArgument) as caught:
        client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=100.0)
    assert caught.value.field == "network.dt_ms" and "field network.dt_ms" in str(caught.value)
    assert servicer.calls == 1


def test_a_refused_port_gives_unavailable_after_the_attempts(scripted):
    _, target = scripted
    with socket_free_port() as port, client_of(f"127.0.0.1:{port}", retry=RetryPolicy(
            max_attempts=3, initial_backoff_s=0.01)) as client, pytest.raises(Unavailable) as caught:
        client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}})
    assert caught.value.attempts == 3 and f"127.0.0.1:{port}" in str(caught.value)


def test_the_deadline_of_a_call_is_its_timeout(scripted):
    servicer, target = scripted
    started = time.perf_counter()
    with client_of(target) as client, pytest.raises(DeadlineExceeded):
        client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=ENDLESS_MS, timeout=0.5)
    assert time.perf_counter() - started < 3 and servicer.calls == 1   # a stream past its deadline is not re-sent


def test_ctrl_c_cancels_the_call_on_the_server_and_reraises(scripted):
    servicer, target = scripted
    main = threading.main_thread().ident

    def press_ctrl_c():
        if servicer.running.wait(10):
            time.sleep(0.05)
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    events = []
    with client_of(target) as client:
        with pytest.raises(KeyboardInterrupt):
            client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=ENDLESS_MS,
                                       on_progress=events.append)
        assert servicer.cancelled.wait(2), "the server did not see the cancellation"
        assert events and events[-1].counters["simulated_ms"] > 0
        # the channel still works
        assert client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=10.0).n_spikes == 10


def test_repeated_ctrl_c_at_random_moments_never_hangs_the_channel(scripted):
    servicer, target = scripted
    main = threading.main_thread().ident
    rng = random.Random(4)
    with client_of(target) as client:
        for _ in range(15):
            servicer.cancelled.clear()
            timer = threading.Timer(rng.uniform(0.02, 0.15), signal.pthread_kill, (main, signal.SIGINT))
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=ENDLESS_MS, timeout=20)
            assert servicer.cancelled.wait(2)
        assert client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}}, timeout=5).fits


def test_the_token_travels_as_bearer_metadata_on_plaintext_channels(scripted):
    servicer, target = scripted
    with client_of(target, token="lab-token") as client:
        client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}})
    assert servicer.metadata[-1]["authorization"] == "Bearer lab-token"
    assert servicer.metadata[-1]["user-agent"].startswith("neuromesh-python-sdk/")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_with_a_private_ca_and_a_token_as_call_credentials(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=neuromesh.test", "-addext",
                    "subjectAltName=DNS:neuromesh.test"], check=True, capture_output=True)
    servicer = ScriptedSimulation()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    simulation_pb2_grpc.add_SimulationServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(),
                                                                               cert.read_bytes())]))
    server.start()
    try:
        tls = TlsConfig(root_certificates=cert, server_name="neuromesh.test")
        with client_of(f"127.0.0.1:{port}", tls=tls, token="lab-token") as client:
            assert client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}}).fits
        assert servicer.metadata[-1]["authorization"] == "Bearer lab-token"
        # without the CA the server's certificate is not trusted: unavailable, not a silent downgrade
        with client_of(f"127.0.0.1:{port}", tls=True, retry=RetryPolicy(max_attempts=1)) as client, \
                pytest.raises(Unavailable):
            client.simulation.estimate_memory({"vogels_abbott": {"kind": "cuba"}}, timeout=5)
    finally:
        server.stop(grace=None)


def test_default_deadlines_per_kind_of_call(scripted):
    _, target = scripted
    with client_of(target, deadlines=Deadlines(unary_s=0.2, stream_s=0.3)) as client:
        with pytest.raises(DeadlineExceeded) as caught:
            client.simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=ENDLESS_MS)
        assert "0.3 s" in caught.value.message
        assert client.simulation.connection.deadlines == Deadlines(unary_s=0.2, stream_s=0.3)


class socket_free_port:
    """A port nothing listens on (bound, then closed)."""

    def __enter__(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc):
        return False
