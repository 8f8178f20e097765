"""The gRPC step executor: each step of a job is one call of a service's RPC.

:class:`GrpcStepExecutor` implements the job engine's
:class:`~gateway.jobs.executor.StepExecutor`:

- ``service_version(service)`` asks a replica ``neuromesh.common.v1.ServiceInfoService/GetServiceInfo``
  and checks that it is the service it should be; the answer is kept ``service_info_ttl_s``
  seconds (a rolling upgrade shows up within that time). It is part of the step's cache key.
- ``execute(step, inputs, progress, cancel_event)`` builds the request (:mod:`gateway.calls.methods`:
  ``params`` as proto JSON, each input's ArtifactRef set at its field path), calls the method on a
  replica (:mod:`gateway.calls.endpoints`), forwards a streaming method's progress events to the
  runner, and answers every ArtifactRef of the result as an output, with its sha256 (read from
  the store when the service left it empty).

Failures: a call that fails UNAVAILABLE marks its replica down and is re-issued at once on the
next live replica; when none is left the step fails UNAVAILABLE, which the runner retries with
backoff (as DEADLINE_EXCEEDED, the call's deadline). Any other status fails the step with the
service's code and message (:class:`~gateway.jobs.errors.StepError`, with the ``ErrorDetail``
reason and field when the service sent one). When the job is cancelled, the cancel event
cancels the call: the service sees CANCELLED and stops its work.

Example
-------
>>> executor = GrpcStepExecutor(MethodTable.from_generated(), registry, store)      # doctest: +SKIP
>>> await executor.service_version("reduction")                                     # doctest: +SKIP
'reduction-2.1'
>>> runner = JobRunner(job_store, executor, concurrency=8)                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

from gateway.artifacts.service import proto_ref, spec_ref
from gateway.calls.endpoints import Endpoint, EndpointPool, EndpointRegistry
from gateway.calls.methods import ArtifactRef, MethodInfo, MethodTable
from gateway.jobs.errors import StepError
from gateway.jobs.executor import ProgressCallback, StepInvocation
from gateway.jobs.metrics import GatewayMetrics
from gateway.jobs.spec import ArtifactRef as SpecRef
from neuromesh.common.v1 import service_info_pb2
from services.common.errors import NeuroMeshError, error_detail_from_status
from services.common.store import ArtifactStore

logger = logging.getLogger(__name__)

SERVICE_INFO_METHOD = "/neuromesh.common.v1.ServiceInfoService/GetServiceInfo"
SERVICE_INFO_TIMEOUT_S = 5.0
BALANCED_ATTEMPTS = 3
"""Calls of one ``dns:///`` channel per execution: gRPC moves each to another address it resolved."""


def service_targets(methods: MethodTable, configured: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Each service's gRPC targets: as configured, else its default port on 127.0.0.1 (the local stack's)."""
    from services.common.registry import discover_services

    defaults = {spec.name: [f"127.0.0.1:{spec.grpc_port}"] for spec in discover_services()}
    return {service: list(configured.get(service) or defaults[service]) for service in methods.services
            if configured.get(service) or service in defaults}


def step_error_from_rpc(err: grpc.aio.AioRpcError, where: str) -> StepError:
    """The StepError of a failed call: its status code and message, and its ErrorDetail if any."""
    code = err.code().name if err.code() is not None else "UNKNOWN"
    if code == "OK":  # pragma: no cover - a failed call never has OK
        code = "UNKNOWN"
    details: dict[str, str] = {}
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            try:
                detail = error_detail_from_status(status_pb2.Status.FromString(value))
            except Exception:  # a malformed trailer must not hide the status itself
                detail = None
            if detail is not None:
                details = {"reason": detail.reason, **({"field": detail.field} if detail.field else {}),
                           **dict(detail.metadata)}
    message = err.details() or code
    return StepError(code, f"{message} ({where})" if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED") else message,
                     details=details)


class GrpcStepExecutor:
    """Runs job steps as calls of the services' RPCs over gRPC.

    Parameters
    ----------
    methods : MethodTable
        The callable methods (reflection over the generated descriptors).
    endpoints : EndpointRegistry
        Each service's replicas.
    store : ArtifactStore
        The bucket the services write to; output refs without a sha256 are resolved there.
    call_timeout_s : float
        The deadline of one call (DEADLINE_EXCEEDED is retried by the runner).
    service_info_ttl_s : float
        How long a service's reported version is trusted.
    metrics : GatewayMetrics, optional
        Where failovers between replicas are counted.

    Example
    -------
    See the module docstring; in the gateway it is made by :func:`gateway.api.app.create_app`.
    """

    def __init__(self, methods: MethodTable, endpoints: EndpointRegistry, store: ArtifactStore, *,
                 call_timeout_s: float = 24 * 3600.0, service_info_ttl_s: float = 30.0,
                 metrics: GatewayMetrics | None = None) -> None:
        self.methods = methods
        self.endpoints = endpoints
        self.store = store
        self.call_timeout_s = call_timeout_s
        self.service_info_ttl_s = service_info_ttl_s
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self._versions: dict[str, tuple[str, float]] = {}
        self._version_locks: dict[str, asyncio.Lock] = {}

    def _pool(self, service: str) -> EndpointPool:
        self.endpoints.start()   # health checks run wherever the executor does (the gateway, or a worker)
        pool = self.endpoints.pool(service)
        if pool is None:
            raise StepError("FAILED_PRECONDITION", f"the gateway has no endpoint for service {service!r} "
                                                   "(NEUROMESH_GATEWAY_ENDPOINTS)")
        return pool

    # ------------------------------------------------------------------ service version

    async def service_version(self, service: str) -> str:
        cached = self._versions.get(service)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        lock = self._version_locks.setdefault(service, asyncio.Lock())
        async with lock:
            cached = self._versions.get(service)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            version = await self._ask_version(service)
            self._versions[service] = (version, time.monotonic() + self.service_info_ttl_s)
            return version

    async def _ask_version(self, service: str) -> str:
        pool = self._pool(service)
        tried: dict[Endpoint, int] = {}
        last = "no replica was tried"
        while (endpoint := self._next_endpoint(pool, tried)) is not None:
            call = endpoint.channel.unary_unary(
                SERVICE_INFO_METHOD, request_serializer=service_info_pb2.GetServiceInfoRequest.SerializeToString,
                response_deserializer=service_info_pb2.GetServiceInfoResponse.FromString)
            try:
                info = await call(service_info_pb2.GetServiceInfoRequest(), timeout=SERVICE_INFO_TIMEOUT_S)
            except grpc.aio.AioRpcError as err:
                if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    endpoint.mark(False, f"GetServiceInfo: {err.code().name}: {err.details()}")
                    last = f"{endpoint.target}: {err.code().name}: {err.details()}"
                    continue
                raise StepError("FAILED_PRECONDITION", f"{endpoint.target} does not tell its version "
                                                       f"({err.code().name}: {err.details()})") from None
            if info.service != pool.health_service:
                raise StepError("FAILED_PRECONDITION", f"{endpoint.target} serves {info.service or 'an unnamed service'}"
                                                       f", not {pool.health_service}")
            if not info.version:
                raise StepError("FAILED_PRECONDITION", f"{endpoint.target} reports an empty version")
            return info.version
        raise StepError("UNAVAILABLE", f"no replica of {service} answered GetServiceInfo; last: {last}")

    @staticmethod
    def _next_endpoint(pool: EndpointPool, tried: dict[Endpoint, int]) -> Endpoint | None:
        exhausted = {e for e, n in tried.items() if n >= (BALANCED_ATTEMPTS if e.balanced else 1)}
        endpoint = pool.pick(exhausted)
        if endpoint is not None:
            tried[endpoint] = tried.get(endpoint, 0) + 1
        return endpoint

    # ------------------------------------------------------------------ a step

    async def execute(self, step: StepInvocation, resolved_inputs: Mapping[str, SpecRef],
                      progress: ProgressCallback, cancel_event: asyncio.Event) -> dict[str, SpecRef]:
        try:
            method = self.methods.method(step.service, step.method)
            inputs = {path: proto_ref(ref, self.store.bucket) for path, ref in resolved_inputs.items()}
            request = method.build_request(step.params, inputs)
        except NeuroMeshError as exc:  # a spec that passed submission but no longer fits the contract
            raise StepError(exc.grpc_code.name, exc.message) from None
        pool = self._pool(step.service)
        log = {"job_id": str(step.job_id), "step_id": step.step_id, "grpc_method": method.full_name}
        tried: dict[Endpoint, int] = {}
        last = "no replica was tried"
        while True:
            if cancel_event.is_set():
                raise StepError("CANCELLED", "the step was cancelled before its call started")
            endpoint = self._next_endpoint(pool, tried)
            if endpoint is None:
                raise StepError("UNAVAILABLE", f"no replica of {step.service} could take the call; last: {last}")
            try:
                result = await self._call(endpoint, method, request, progress, cancel_event)
                break
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNAVAILABLE and not cancel_event.is_set():
                    endpoint.mark(False, f"{method.name}: {err.details()}")
                    last = f"{endpoint.target}: {err.details()}"
                    self.metrics.call_failover(step.service)
                    logger.warning("call failed UNAVAILABLE on %s; trying another replica", endpoint.target,
                                   extra={**log, "error": err.details()})
                    continue
                raise step_error_from_rpc(err, endpoint.target) from None
        return await self._outputs(method, result)

    async def _call(self, endpoint: Endpoint, method: MethodInfo, request: Message, progress: ProgressCallback,
                    cancel_event: asyncio.Event) -> Message:
        serializer = type(request).SerializeToString
        if method.server_streaming:
            call = endpoint.channel.unary_stream(method.full_name, request_serializer=serializer,
                                                 response_deserializer=method.response_type.FromString)(
                request, timeout=self.call_timeout_s)
        else:
            call = endpoint.channel.unary_unary(method.full_name, request_serializer=serializer,
                                                response_deserializer=method.response_type.FromString)(
                request, timeout=self.call_timeout_s)
        cancelled_by_job = False

        async def cancel_on_event() -> None:
            nonlocal cancelled_by_job
            await cancel_event.wait()
            cancelled_by_job = True
            call.cancel()

        watcher = asyncio.create_task(cancel_on_event())
        try:
            if not method.server_streaming:
                return await call
            result: Message | None = None
            async for response in call:
                event = method.progress_of(response)
                if event is not None:
                    if math.isfinite(event.fraction_done):
                        progress(event.fraction_done, event.message or event.stage)
                    continue
                found = method.result_of(response)
                if found is not None:
                    result = found
            if result is None:
                raise StepError("INTERNAL", f"{method.full_name} on {endpoint.target} ended its stream without a "
                                            "result")
            return result
        except asyncio.CancelledError:
            if cancelled_by_job:
                raise StepError("CANCELLED", f"the job was cancelled; the call on {endpoint.target} was cancelled") \
                    from None
            raise
        finally:
            watcher.cancel()
            if not call.done():
                call.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _outputs(self, method: MethodInfo, result: Message) -> dict[str, SpecRef]:
        outputs: dict[str, SpecRef] = {}
        for name, ref in method.outputs(result).items():
            if not ref.sha256:
                if ref.bucket and ref.bucket != self.store.bucket:
                    raise StepError("INTERNAL", f"output {name!r} is in bucket {ref.bucket!r} without a sha256")
                try:
                    stored = await asyncio.to_thread(self.store.stat, ref.key)
                except NeuroMeshError as exc:
                    raise StepError(exc.grpc_code.name, f"output {name!r}: {exc.message}") from None
                full = ArtifactRef()
                full.CopyFrom(ref)
                full.sha256 = stored.sha256
                if not full.sha256:
                    raise StepError("DATA_LOSS", f"output {name!r} ({ref.key}) has no sha256 in the store either")
                ref = full
            outputs[name] = spec_ref(ref)
        return outputs

    async def close(self) -> None:
        await self.endpoints.close()

    @classmethod
    def from_environment(cls) -> "GrpcStepExecutor":
        """An executor configured by the ``NEUROMESH_*`` environment, as the gateway makes it; for
        ``python -m gateway.jobs.worker`` (:func:`from_environment`)."""
        from gateway.settings import load_gateway_settings
        from services.common.settings import load_settings

        settings, gateway_settings = load_settings(), load_gateway_settings()
        methods = MethodTable.from_generated()
        size = settings.max_message_bytes
        registry = EndpointRegistry.from_targets(
            service_targets(methods, gateway_settings.endpoints),
            {s: m.full_name for s, m in methods.services.items()}, health_interval_s=gateway_settings.health_interval_s,
            channel_options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)])
        return cls(methods, registry, ArtifactStore.from_settings(settings), call_timeout_s=gateway_settings.call_timeout_s,
                   service_info_ttl_s=gateway_settings.service_info_ttl_s)

    def describe(self) -> dict[str, Any]:
        """What this executor knows of each service (for ``/readyz``)."""
        return {"endpoints": self.endpoints.snapshot(),
                "versions": {s: v for s, (v, _) in self._versions.items()}}


def from_environment():
    """The executor the gateway runs steps with, from the ``NEUROMESH_*`` environment: the gRPC executor,
    inside the pipelines' :class:`~gateway.pipelines.executor.CompositeStepExecutor` (the gateway's own
    gathering steps). The default of ``python -m gateway.jobs.worker``."""
    from gateway.pipelines import CompositeStepExecutor  # the pipelines stand on this module

    grpc = GrpcStepExecutor.from_environment()
    return CompositeStepExecutor(grpc, grpc.store)
