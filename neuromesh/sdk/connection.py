"""Channels to the services and the call loop: deadlines, retries with backoff, cancellation, errors.

One :class:`ServiceConnection` per service holds a gRPC channel (plaintext, or TLS with optional
client certificates) and makes every call of that service through two functions:

* :func:`call_unary` for unary RPCs, and :func:`call_stream` for the long, server-streaming ones
  (progress events, then the result);
* each call gets a deadline (:class:`Deadlines`: a default per kind of call, or the method's
  ``timeout=``), and a bearer token when the client has one;
* failures are retried by :class:`RetryPolicy`: UNAVAILABLE always (the service was restarting,
  a replica went away; NeuroMesh outputs are content-addressed, so sending a request again is
  safe and returns the stored result if the first run finished), DEADLINE_EXCEEDED only for
  unary calls (each attempt gets the full deadline again; a stream's deadline covers the whole
  run, so re-running it would only exceed it again), nothing else: INVALID_ARGUMENT and the rest
  would fail the same way twice;
* Ctrl-C (``KeyboardInterrupt``) or any exception raised while waiting (a progress callback's,
  too) cancels the gRPC call, which cancels the server's work at its next progress checkpoint,
  and is re-raised. The call itself runs in a worker thread and the caller waits on a queue, so
  the interrupt never lands inside grpc's own locking code (where it can leave the channel's
  lock held and hang the process);
* a failure that is not retried becomes the SDK's :mod:`~neuromesh.sdk.errors` exception.

The retries are this module's loop rather than gRPC's service-config ``retryPolicy`` because
the latter shares one deadline across all attempts (a DEADLINE_EXCEEDED can never be retried
there) and commits a stream after its first message, while here each attempt gets its own
deadline and the loop is unit-tested without a server.

Example
-------
>>> policy = RetryPolicy(max_attempts=4, initial_backoff_s=0.5, multiplier=2.0, jitter=0.0)
>>> [policy.backoff_s(retry) for retry in (1, 2, 3)]
[0.5, 1.0, 2.0]
>>> policy.retryable(grpc.StatusCode.UNAVAILABLE, unary=False)
True
>>> policy.retryable(grpc.StatusCode.INVALID_ARGUMENT, unary=True)
False
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import grpc

from neuromesh import __version__

from .errors import Internal, InvalidArgument, from_rpc_error

__all__ = ["Deadlines", "RetryPolicy", "ServiceConnection", "TlsConfig", "call_stream", "call_unary",
           "channel_credentials"]

logger = logging.getLogger("neuromesh.sdk")

#: The caller's thread waits for the next event of a call in slices this long, so that a Ctrl-C
#: delivered to another thread is acted on within it
WAIT_SLICE_S = 0.1

#: Largest answer accepted. Answers carry artifact refs, never bulk data, so the default 4 MiB
#: would do; the headroom is for results listing thousands of refs (checkpoints, traces).
MAX_RECEIVE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class RetryPolicy:
    """Which failed calls are sent again, how often, and how long to wait in between.

    Parameters
    ----------
    max_attempts : int, default 5
        Calls made at most, the first included; 1 turns retries off.
    initial_backoff_s : float, default 0.5
        Wait before the first retry; each later wait is ``multiplier`` times longer, at most
        ``max_backoff_s``.
    multiplier : float, default 2.0
    max_backoff_s : float, default 10.0
    jitter : float, default 0.2
        Each wait is scaled by a random factor in ``[1 - jitter, 1 + jitter]``, so that many
        clients cut off by one restart do not come back in lockstep.
    retry_deadline_exceeded : bool, default True
        Retry unary calls that ran past their deadline (every NeuroMesh call is idempotent:
        outputs are content-addressed). Streams are never retried on their deadline.

    Examples
    --------
    >>> RetryPolicy(max_attempts=1).retryable(grpc.StatusCode.UNAVAILABLE, unary=True)
    True
    >>> RetryPolicy().retryable(grpc.StatusCode.DEADLINE_EXCEEDED, unary=False)
    False
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 10.0
    jitter: float = 0.2
    retry_deadline_exceeded: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidArgument(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}",
                                  field="max_attempts")
        for name in ("initial_backoff_s", "max_backoff_s"):
            if not getattr(self, name) >= 0:
                raise InvalidArgument(f"{name} must be >= 0, got {getattr(self, name)!r}", field=name)
        if not self.multiplier >= 1:
            raise InvalidArgument(f"multiplier must be >= 1, got {self.multiplier!r}", field="multiplier")
        if not 0 <= self.jitter < 1:
            raise InvalidArgument(f"jitter must be in [0, 1), got {self.jitter!r}", field="jitter")

    def retryable(self, code: grpc.StatusCode, *, unary: bool) -> bool:
        """Whether a call that failed with ``code`` is worth sending again.

        Examples
        --------
        >>> RetryPolicy().retryable(grpc.StatusCode.DEADLINE_EXCEEDED, unary=True)
        True
        """
        if code == grpc.StatusCode.UNAVAILABLE:
            return True
        return unary and self.retry_deadline_exceeded and code == grpc.StatusCode.DEADLINE_EXCEEDED

    def backoff_s(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        Examples
        --------
        >>> RetryPolicy(initial_backoff_s=1.0, max_backoff_s=3.0, jitter=0.0).backoff_s(5)
        3.0
        """
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        if not self.jitter:
            return base
        return base * (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)


@dataclass(frozen=True)
class Deadlines:
    """Default deadlines in seconds, per kind of call; each method's ``timeout=`` overrides them.

    Parameters
    ----------
    unary_s : float, default 600
        Unary analyses (BinRecording, Predict, Transform, Score, AnalyzeGraph, ...): they load,
        compute and store, and may wait for a compute slot on a busy service.
    stream_s : float, default 86400
        Long, streaming calls (Train, Fit, Simulate, Segment, ...): a day, as the gateway's.
    info_s : float, default 10
        Service information and health checks.

    Examples
    --------
    >>> Deadlines(unary_s=30).unary_s, Deadlines().stream_s
    (30, 86400.0)
    """

    unary_s: float = 600.0
    stream_s: float = 86400.0
    info_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("unary_s", "stream_s", "info_s"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"{name} must be > 0 seconds, got {getattr(self, name)!r}", field=name)


@dataclass(frozen=True)
class TlsConfig:
    """TLS of the channels: the CA to trust and, for mutual TLS, this client's certificate.

    Each value is PEM bytes or the path of a PEM file; ``None`` for ``root_certificates``
    trusts the system's CAs (gRPC's bundled roots).

    Parameters
    ----------
    root_certificates : bytes or path, optional
    private_key, certificate_chain : bytes or path, optional
        Both or neither: the client's key and certificate for mutual TLS.
    server_name : str, optional
        Host name to check the server's certificate against, when it differs from the
        endpoint's host (a test CA, an IP endpoint).

    Examples
    --------
    >>> TlsConfig(root_certificates=b"-----BEGIN CERTIFICATE-----...").server_name is None
    True
    """

    root_certificates: bytes | str | Path | None = None
    private_key: bytes | str | Path | None = None
    certificate_chain: bytes | str | Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.private_key is None) != (self.certificate_chain is None):
            raise InvalidArgument("private_key and certificate_chain go together (mutual TLS): give both or "
                                  "neither", field="private_key")


def _pem(value: bytes | str | Path | None, name: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {name} from {path}: {exc.strerror}", field=name) from None


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """``grpc.ssl_channel_credentials`` of a :class:`TlsConfig`, PEM files read.

    Examples
    --------
    >>> isinstance(channel_credentials(TlsConfig()), grpc.ChannelCredentials)
    True
    """
    return grpc.ssl_channel_credentials(root_certificates=_pem(tls.root_certificates, "root_certificates"),
                                        private_key=_pem(tls.private_key, "private_key"),
                                        certificate_chain=_pem(tls.certificate_chain, "certificate_chain"))


class StreamObserver(Protocol):
    """What :func:`call_stream` tells about a stream: progress events, retries, the end."""

    def progress(self, event: Any) -> None: ...

    def retrying(self, attempt: int, code: grpc.StatusCode, wait_s: float) -> None: ...

    def close(self, outcome: str) -> None: ...


class _Silent:
    def progress(self, event: Any) -> None:
        pass

    def retrying(self, attempt: int, code: grpc.StatusCode, wait_s: float) -> None:
        pass

    def close(self, outcome: str) -> None:
        pass


class _CallHandle:
    """The call of one attempt, cancellable from the caller's thread even before it exists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._call: Any = None
        self._cancelled = False

    def attach(self, call: Any) -> None:
        with self._lock:
            self._call = call
            cancelled = self._cancelled
        if cancelled:   # the caller gave up while the call was being started
            call.cancel()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()


def _next_item(items: queue.SimpleQueue) -> tuple[str, Any]:
    # SimpleQueue.get is C code: a signal interrupts it without leaving a lock half taken (a Python
    # threading.Condition can be, when KeyboardInterrupt lands inside its wait). The timeout lets
    # the interpreter run a pending SIGINT handler even when the signal went to another thread.
    while True:
        try:
            return items.get(timeout=WAIT_SLICE_S)
        except queue.Empty:
            continue


def _attempt(start: Callable[[], Any], *, stream: bool, observer: StreamObserver, name: str) -> tuple[str, Any]:
    """One attempt of a call: ``("ok", answer)`` or ``("error", grpc.RpcError)``.

    The call is started and waited on in a worker thread; the calling thread waits on a queue.
    This keeps ``KeyboardInterrupt`` out of grpc's own Python code: raised while grpc's thread
    holds the channel's locks it can leave one held for ever, hanging the cancel and every later
    call on the channel. Here Ctrl-C interrupts only the queue wait; the call is then cancelled
    (the service stops its work) and the interrupt propagates. Any exception of the observer
    (the progress callback's) cancels the call the same way.
    """
    items: queue.SimpleQueue = queue.SimpleQueue()
    handle = _CallHandle()

    def work() -> None:
        try:
            call = start()
            handle.attach(call)
            if stream:
                for response in call:
                    items.put(("event", response))
                items.put(("ok", None))
            else:
                items.put(("ok", call.result()))
        except grpc.RpcError as err:
            items.put(("error", err))
        except BaseException as exc:  # a cancelled future, a bug: handed to the caller's thread
            items.put(("crash", exc))

    threading.Thread(target=work, name=f"neuromesh-{name}", daemon=True).start()
    result = None
    try:
        while True:
            kind, value = _next_item(items)
            if kind == "event":
                which = value.WhichOneof("event")
                if which == "progress":
                    observer.progress(value.progress)
                elif which is not None:
                    result = getattr(value, which)
            elif kind == "ok":
                return "ok", result if stream else value
            elif kind == "error":
                return "error", value
            else:
                raise value
    except BaseException:
        handle.cancel()
        raise


def _code(err: grpc.RpcError) -> grpc.StatusCode:
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def call_unary(invoke: Callable[..., Any], request: Any, *, timeout: float, metadata: Sequence[tuple[str, str]] = (),
               retry: RetryPolicy = RetryPolicy(), service: str = "", method: str = "", target: str = "",
               sleep: Callable[[float], None] = time.sleep) -> Any:
    """Make a unary call with retries; the answer, or the SDK's exception.

    Parameters
    ----------
    invoke : callable
        A unary-unary multicallable of a stub (``stub.Predict``): called as
        ``invoke.future(request, timeout=..., metadata=...)`` (the future form, so that Ctrl-C
        can cancel the call).
    request : protobuf message
    timeout : float
        Deadline of each attempt, seconds.
    metadata : sequence of (str, str)
        Sent with every attempt (the bearer token on plaintext channels).
    retry : RetryPolicy
    service, method, target : str
        For the error messages.
    sleep : callable
        Waits between attempts (tests pass a recorder).

    Raises
    ------
    NeuroMeshError
        The subclass of the last attempt's status code.
    KeyboardInterrupt
        Ctrl-C while waiting: the call is cancelled first.

    Examples
    --------
    >>> class Answer:                                  # a stub method, reduced to what is used
    ...     def future(self, request, timeout, metadata):
    ...         class Done:
    ...             def result(self): return f"answer to {request}"
    ...             def cancel(self): return False
    ...         return Done()
    >>> call_unary(Answer(), "ping", timeout=1.0)
    'answer to ping'
    """
    attempt = 0
    while True:
        attempt += 1
        kind, value = _attempt(lambda: invoke.future(request, timeout=timeout, metadata=tuple(metadata)),
                               stream=False, observer=_Silent(), name=f"{service}.{method}")
        if kind == "ok":
            return value
        code = _code(value)
        if attempt < retry.max_attempts and retry.retryable(code, unary=True):
            wait = retry.backoff_s(attempt)
            logger.info("%s.%s failed with %s; retry %d of %d in %.2f s", service, method, code.name, attempt,
                        retry.max_attempts - 1, wait)
            sleep(wait)
            continue
        raise from_rpc_error(value, service=service, method=method, target=target, timeout=timeout,
                             attempts=attempt) from None


def call_stream(invoke: Callable[..., Any], request: Any, *, timeout: float, metadata: Sequence[tuple[str, str]] = (),
                retry: RetryPolicy = RetryPolicy(), observer: StreamObserver | None = None, service: str = "",
                method: str = "", target: str = "", sleep: Callable[[float], None] = time.sleep) -> Any:
    """Make a server-streaming call of the NeuroMesh shape (progress events, then one result).

    Each response is a message with a ``oneof event { Progress progress; ... result; }``: progress
    events go to ``observer.progress`` (in the calling thread), the result is returned once the
    stream ends.

    UNAVAILABLE is retried at any point of the stream: the request is sent again and the service
    starts over (or returns the stored result if the first run finished before the connection
    was lost); ``observer.retrying`` is told. Other codes are raised at once.

    A ``KeyboardInterrupt`` while waiting for the next event, or any exception the observer
    raises, cancels the call (the service stops its work at its next progress checkpoint and
    answers CANCELLED) and propagates unchanged.

    Parameters
    ----------
    invoke : callable
        A unary-stream multicallable of a stub (``stub.Simulate``).
    request : protobuf message
    timeout : float
        Deadline of each attempt, seconds: the whole run.
    metadata, retry, service, method, target, sleep
        As for :func:`call_unary`.
    observer : StreamObserver, optional
        Receives progress events; :class:`neuromesh.sdk.progress.ProgressReporter` draws them.

    Raises
    ------
    NeuroMeshError
        The call failed; or ``Internal`` when the stream ended without a result.

    Examples
    --------
    >>> from neuromesh.common.v1.progress_pb2 import Progress
    >>> from neuromesh.simulation.v1 import simulation_pb2 as S
    >>> def fake_simulate(request, timeout, metadata):    # a stub method, reduced to what is used
    ...     class Stream(list):
    ...         def cancel(self): return True
    ...     return Stream([S.SimulateResponse(progress=Progress(fraction_done=0.5, stage="simulate")),
    ...                    S.SimulateResponse(result=S.SimulateResult(n_spikes=42))])
    >>> call_stream(fake_simulate, S.SimulateRequest(), timeout=10.0).n_spikes
    42
    """
    observer = observer or _Silent()
    attempt = 0
    outcome = "failed"
    try:
        while True:
            attempt += 1
            try:
                kind, value = _attempt(lambda: invoke(request, timeout=timeout, metadata=tuple(metadata)),
                                       stream=True, observer=observer, name=f"{service}.{method}")
            except BaseException:
                outcome = "cancelled"
                raise
            if kind == "ok":
                if value is None:
                    raise Internal(f"{service}.{method} ended its stream without a result", service=service,
                                   method=method, attempts=attempt)
                outcome = "done"
                return value
            code = _code(value)
            if attempt < retry.max_attempts and retry.retryable(code, unary=False):
                wait = retry.backoff_s(attempt)
                logger.warning("%s.%s stream failed with %s; sending it again (retry %d of %d) in %.2f s",
                               service, method, code.name, attempt, retry.max_attempts - 1, wait)
                observer.retrying(attempt, code, wait)
                sleep(wait)
                continue
            raise from_rpc_error(value, service=service, method=method, target=target, timeout=timeout,
                                 attempts=attempt) from None
    finally:
        observer.close(outcome)


@dataclass
class ServiceConnection:
    """The channel to one service and the settings its calls are made with.

    Made by :class:`neuromesh.sdk.Client` for each service on first use; the per-service clients
    call :meth:`unary` and :meth:`stream` with a method name of the service's stub.

    Parameters
    ----------
    service : str
        Short name (``"decoding"``).
    target : str
        gRPC target: ``host:port``, or ``dns:///name:port`` for a balanced headless service.
    stub_class : type
        The generated stub (``DecodingServiceStub``).
    tls : TlsConfig, optional
        TLS settings; None is a plaintext channel.
    token : str, optional
        Bearer token. On a TLS channel it travels as gRPC call credentials; on a plaintext one
        (the local stack) as ``authorization`` metadata, since gRPC refuses call credentials
        without TLS.
    deadlines : Deadlines
    retry : RetryPolicy
    options : sequence of (str, value)
        Extra gRPC channel options.

    Examples
    --------
    >>> from neuromesh.simulation.v1 import simulation_pb2_grpc
    >>> conn = ServiceConnection("simulation", "127.0.0.1:50053", simulation_pb2_grpc.SimulationServiceStub)
    >>> conn.metadata
    ()
    >>> conn.close()
    """

    service: str
    target: str
    stub_class: type
    tls: TlsConfig | None = None
    token: str | None = None
    deadlines: Deadlines = field(default_factory=Deadlines)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    options: Sequence[tuple[str, Any]] = ()

    def __post_init__(self) -> None:
        self._channel: grpc.Channel | None = None
        self._stub: Any = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata sent with every call: the bearer token on plaintext channels."""
        if self.token and self.tls is None:
            return (("authorization", f"Bearer {self.token}"),)
        return ()

    def channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [("grpc.primary_user_agent", f"neuromesh-python-sdk/{__version__}"),
                                          ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
        if self.tls is not None and self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return options + list(self.options)

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel, opened on first use (opening does not connect; the first call does)."""
        if self._channel is None:
            if self.tls is None:
                self._channel = grpc.insecure_channel(self.target, options=self.channel_options())
            else:
                credentials = channel_credentials(self.tls)
                if self.token:
                    credentials = grpc.composite_channel_credentials(
                        credentials, grpc.access_token_call_credentials(self.token))
                self._channel = grpc.secure_channel(self.target, credentials, options=self.channel_options())
        return self._channel

    @property
    def stub(self) -> Any:
        if self._stub is None:
            self._stub = self.stub_class(self.channel)
        return self._stub

    def unary(self, method: str, request: Any, *, timeout: float | None = None, stub: Any = None) -> Any:
        """Call unary ``method`` of the stub (or of ``stub``, for a second service on the channel)."""
        invoke = getattr(stub if stub is not None else self.stub, method)
        return call_unary(invoke, request, timeout=_timeout(timeout, self.deadlines.unary_s), metadata=self.metadata,
                          retry=self.retry, service=self.service, method=method, target=self.target)

    def stream(self, method: str, request: Any, *, timeout: float | None = None,
               observer: StreamObserver | None = None) -> Any:
        """Call server-streaming ``method``; its result (the last event)."""
        return call_stream(getattr(self.stub, method), request, timeout=_timeout(timeout, self.deadlines.stream_s),
                           metadata=self.metadata, retry=self.retry, observer=observer, service=self.service,
                           method=method, target=self.target)

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        if self._channel is not None:
            self._channel.close()
            self._channel, self._stub = None, None


def _timeout(timeout: float | None, default: float) -> float:
    if timeout is None:
        return default
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise InvalidArgument(f"timeout must be a number of seconds > 0, got {timeout!r}", field="timeout")
    return float(timeout)


def parse_target(value: str, *, name: str) -> str:
    """Check a gRPC target from settings: ``host:port``, ``[v6]:port`` or ``dns:///host[:port]``.

    Examples
    --------
    >>> parse_target("grpc://127.0.0.1:50051", name="decoding")
    '127.0.0.1:50051'
    >>> parse_target("localhost", name="decoding")
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: endpoint 'localhost' of decoding is not host:port or dns:///host:port (field endpoints.decoding)
    """
    target = value.strip()
    if target.startswith("grpc://"):   # the form `neuromesh up` prints
        target = target[len("grpc://"):]
    host, sep, port = target.rpartition(":")
    ok = target.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) or (sep and host and port.isdigit())
    if not ok:
        raise InvalidArgument(f"endpoint {value!r} of {name} is not host:port or dns:///host:port",
                              field=f"endpoints.{name}")
    return target


def endpoints_map(endpoints: Mapping[str, str]) -> dict[str, str]:
    """Checked copy of a service -> target mapping."""
    return {str(name): parse_target(str(target), name=str(name)) for name, target in endpoints.items()}
