"""Where a service's replicas are, which of them are alive, and which one the next call goes to.

A service has one or more **targets** (``NEUROMESH_GATEWAY_ENDPOINTS``):

- several ``host:port`` targets: one ``grpc.aio`` channel each. A call goes to the next healthy
  replica in turn (round robin). When it fails UNAVAILABLE, that replica is marked down and the
  executor re-issues the call on the next live one at once, so the work of a dead replica moves
  to a live one without waiting for the retry backoff. A replica marked down comes back when its
  health check answers SERVING again.
- one ``dns:///name:port`` target (a Kubernetes headless service): one channel whose resolver
  follows the name's addresses and balances calls round-robin over them
  (``loadBalancingConfig: round_robin``); gRPC itself leaves a dead address, and the executor
  tries the channel again on UNAVAILABLE.

Health is the standard ``grpc.health.v1`` ``Check`` for the service's full name, every
``health_interval_s`` per target, with a one-second deadline. Whether a replica is alive is
only a preference: when every replica looks down, calls still go to them in turn (health
checks lag, and a call is the best probe there is).

Example
-------
>>> pool = EndpointPool("simulation", "neuromesh.simulation.v1.SimulationService",
...                     ["127.0.0.1:50053", "127.0.0.1:50153"])                     # doctest: +SKIP
>>> endpoint = pool.pick(exclude=set())                                             # doctest: +SKIP
>>> endpoint.target                                                                 # doctest: +SKIP
'127.0.0.1:50053'
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

logger = logging.getLogger(__name__)

_ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
#: A channel that failed to connect waits before it tries again, and fails calls at once meanwhile.
#: gRPC's default backoff grows to two minutes, so a replica that restarted would stay unreachable
#: long after it is back; capped at two seconds, it is found again within a health interval.
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 250), ("grpc.min_reconnect_backoff_ms", 250),
                     ("grpc.max_reconnect_backoff_ms", 2000))


@dataclass(eq=False)
class Endpoint:
    """One target of a service and what is known of its health.

    The channel is made on first use, inside the event loop that will use it (a ``grpc.aio``
    channel belongs to one loop), so a pool can be built before the loop runs.
    """

    target: str
    options: tuple[tuple[str, object], ...] = ()
    healthy: bool | None = None
    """True: SERVING at the last check; False: a check or a call failed since; None: not checked yet."""
    changed_at: float = field(default_factory=time.monotonic)
    last_error: str = ""
    _channel: grpc.aio.Channel | None = field(default=None, repr=False)

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=list(self.options))
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    @property
    def balanced(self) -> bool:
        """Whether the channel itself balances over several addresses (a ``dns:///`` target)."""
        return self.target.startswith("dns:///")

    def mark(self, healthy: bool, error: str = "") -> None:
        if healthy != self.healthy:
            self.changed_at = time.monotonic()
            if self.healthy is not None or not healthy:
                logger.info("replica %s", "serving" if healthy else "down",
                            extra={"target": self.target, "error": error})
        self.healthy = healthy
        if error:
            self.last_error = error


class EndpointPool:
    """The replicas of one service: channels, health checks, and the choice of the next one.

    Parameters
    ----------
    service : str
        Short name (``"segmentation"``), for messages.
    health_service : str
        The name the service reports its health under: its full proto name.
    targets : sequence of str
        ``host:port`` targets, or one ``dns:///`` target.
    channel_options : sequence of (str, object)
        Extra options of every channel (message sizes).
    """

    def __init__(self, service: str, health_service: str, targets: Sequence[str], *,
                 channel_options: Sequence[tuple[str, object]] = ()) -> None:
        if not targets:
            raise ValueError(f"service {service!r} has no targets")
        self.service = service
        self.health_service = health_service
        options = list(RECONNECT_OPTIONS) + list(channel_options)
        self.endpoints: list[Endpoint] = []
        for target in targets:
            opts = options + ([("grpc.service_config", _ROUND_ROBIN)] if target.startswith("dns:///") else [])
            self.endpoints.append(Endpoint(target, tuple(opts)))
        self._next = 0

    @property
    def targets(self) -> list[str]:
        return [e.target for e in self.endpoints]

    def pick(self, exclude: set[Endpoint]) -> Endpoint | None:
        """The next replica to call, not one of ``exclude`` (those a call already failed on).

        Round robin over the healthy ones, then those not checked yet, then the rest; None when
        every replica is excluded.
        """
        candidates = [e for e in self.endpoints if e not in exclude]
        if not candidates:
            return None
        for wanted in (True, None, False):
            group = [e for e in candidates if e.healthy is wanted]
            if group:
                choice = group[self._next % len(group)]
                self._next += 1
                return choice
        return None  # pragma: no cover - the three groups cover every candidate

    async def check(self, endpoint: Endpoint, timeout_s: float = 1.0) -> bool:
        """Ask ``endpoint`` for the service's health; record and return whether it is SERVING."""
        try:
            reply = await health_pb2_grpc.HealthStub(endpoint.channel).Check(
                health_pb2.HealthCheckRequest(service=self.health_service), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            endpoint.mark(False, f"health check: {exc.code().name}: {exc.details()}")
            return False
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        endpoint.mark(serving, "" if serving else
                      f"health check: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
        return serving

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(e) for e in self.endpoints))

    async def close(self) -> None:
        await asyncio.gather(*(e.close() for e in self.endpoints), return_exceptions=True)


class EndpointRegistry:
    """The pools of every service, and the loop that keeps their health current.

    Example
    -------
    >>> registry = EndpointRegistry.from_targets({"reduction": ["127.0.0.1:50052"]},
    ...                                          {"reduction": "neuromesh.reduction.v1.ReductionService"})  # doctest: +SKIP
    >>> registry.pool("reduction").targets                                                       # doctest: +SKIP
    ['127.0.0.1:50052']
    """

    def __init__(self, pools: Mapping[str, EndpointPool], *, health_interval_s: float = 2.0) -> None:
        self.pools = dict(pools)
        self.health_interval_s = health_interval_s
        self._task: asyncio.Task | None = None

    @classmethod
    def from_targets(cls, targets: Mapping[str, Sequence[str]], health_services: Mapping[str, str], *,
                     health_interval_s: float = 2.0,
                     channel_options: Sequence[tuple[str, object]] = ()) -> "EndpointRegistry":
        pools = {service: EndpointPool(service, health_services[service], list(t), channel_options=channel_options)
                 for service, t in targets.items() if service in health_services}
        return cls(pools, health_interval_s=health_interval_s)

    def pool(self, service: str) -> EndpointPool | None:
        return self.pools.get(service)

    def start(self) -> None:
        """Start checking every replica's health in the background (on the running loop); idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._check_forever(), name="endpoint health checks")

    async def _check_forever(self) -> None:
        while True:
            try:
                await asyncio.gather(*(pool.check_all() for pool in self.pools.values()))
            except Exception:  # a check must never end the loop
                logger.exception("health checks failed")
            await asyncio.sleep(self.health_interval_s)

    def snapshot(self) -> dict[str, list[dict[str, object]]]:
        """Service -> each target's known health, for ``/readyz``."""
        return {service: [{"target": e.target, "healthy": e.healthy, **({"error": e.last_error}
                                                                         if e.healthy is False else {})}
                          for e in pool.endpoints] for service, pool in self.pools.items()}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*(pool.close() for pool in self.pools.values()), return_exceptions=True)
