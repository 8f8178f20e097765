"""The bootstrap every service uses: a ``grpc.aio`` server with health, reflection, metrics and a
graceful drain on SIGTERM.

A service's ``__main__`` only says how to build its servicer::

    # services/decoding/__main__.py
    from services.common.server import ServiceDefinition, run_service
    from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
    from services.decoding.servicer import DecodingServicer

    def build(settings):
        return ServiceDefinition(
            name="decoding",
            servicer=DecodingServicer(settings),
            add_to_server=decoding_pb2_grpc.add_DecodingServiceServicer_to_server,
            service_full_name=decoding_pb2.DESCRIPTOR.services_by_name["DecodingService"].full_name,
        )

    if __name__ == "__main__":
        run_service(build)

Tests start the same server in-process with :func:`start_server`.

Example
-------
>>> async def serve_briefly(service, settings):                     # doctest: +SKIP
...     running = await start_server(service, settings)
...     print(running.grpc_port, running.metrics_port)
...     await running.drain_and_stop(grace_s=1.0)
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from neuromesh.common.v1 import service_info_pb2, service_info_pb2_grpc

from services.common.logs import configure_logging
from services.common.metrics import (MetricsHTTPServer, MetricsInterceptor, declare_service_series,
                                     start_metrics_http_server)
from services.common.settings import Settings, SettingsError, load_settings

logger = logging.getLogger(__name__)

# grpc sets SO_REUSEPORT on Linux by default, so a second server on a taken port would bind
# without error and the two would share its calls. A taken port must fail at start instead.
# Clients keep one connection per channel and never re-resolve DNS while it lives, so replicas an
# autoscaler adds would get no traffic: closing connections after a few minutes (GOAWAY, then new
# calls reconnect and re-resolve) spreads load onto them. Calls in flight are not cut: the grace
# period after GOAWAY is unbounded by default, which long simulations need.
_SERVER_OPTIONS = (("grpc.so_reuseport", 0), ("grpc.max_connection_age_ms", 5 * 60 * 1000))
SERVICE_INFO_NAME = service_info_pb2.DESCRIPTOR.services_by_name["ServiceInfoService"].full_name


@dataclass
class ServiceDefinition:
    """What the runtime needs to serve one gRPC service.

    Parameters
    ----------
    name : str
        Short name used in logs (``"decoding"``).
    servicer : object
        The instance implementing the generated ``...Servicer`` base class, with async methods.
    add_to_server : callable
        The generated ``add_<Service>Servicer_to_server(servicer, server)``.
    service_full_name : str
        The fully qualified name, as health checks and reflection know it
        (``"neuromesh.decoding.v1.DecodingService"``); take it from the generated descriptor.
    version : str
        The version of the service's algorithms (its ``SERVICE_VERSION``), answered by
        ``neuromesh.common.v1.ServiceInfoService``; clients key cached results on it.
    """

    name: str
    servicer: object
    add_to_server: Callable[[object, grpc.aio.Server], None]
    service_full_name: str
    version: str = "0"


class _ServiceInfo(service_info_pb2_grpc.ServiceInfoServiceServicer):
    """Answers what this process serves and at which version."""

    def __init__(self, service: ServiceDefinition) -> None:
        self._response = service_info_pb2.GetServiceInfoResponse(
            name=service.name, service=service.service_full_name, version=service.version,
            package_version=_package_version())

    async def GetServiceInfo(self, request, context):
        return self._response


def _package_version() -> str:
    try:
        return importlib.metadata.version("neuromesh")
    except importlib.metadata.PackageNotFoundError:     # running from a source tree that is not installed
        return "unknown"


class ServerStartError(RuntimeError):
    """The server could not start, e.g. a port was taken; the message names the setting to change."""


@dataclass
class RunningServer:
    """A started server: its ports, and how to drain and stop it."""

    service: ServiceDefinition
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    grpc_port: int
    metrics_endpoint: MetricsHTTPServer

    @property
    def metrics_port(self) -> int:
        return self.metrics_endpoint.port

    async def drain_and_stop(self, grace_s: float, notice_s: float = 0.0) -> None:
        """Report NOT_SERVING, stop taking calls, let in-flight calls finish for up to ``grace_s``.

        Health goes first so that health watchers (load balancers, client-side health
        checking) hear of the drain; then the server refuses new calls and waits for the
        running ones, cancelling those still running after ``grace_s``. The ``/metrics``
        endpoint stops last, so a final scrape still sees the drained calls.
        """
        await self.health.enter_graceful_shutdown()
        # A Check polled now is still answered (NOT_SERVING) during the notice; after stop() it
        # is refused, which a poller cannot tell from a crash.
        await asyncio.sleep(notice_s)
        await self.server.stop(grace_s)
        # Shutting down the HTTP server blocks for up to its poll interval: not on the loop.
        await asyncio.to_thread(self.metrics_endpoint.close)

    async def wait_for_termination(self) -> None:
        """Return once the server has stopped."""
        await self.server.wait_for_termination()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


async def start_server(service: ServiceDefinition, settings: Settings) -> RunningServer:
    """Start serving ``service`` with health, reflection and metrics, as ``settings`` say.

    The gRPC server listens on ``settings.grpc_host:settings.grpc_port`` and ``/metrics`` on
    ``settings.metrics_port`` of the same host (a port of 0 picks a free one; the result tells
    which). Health reports SERVING both for the whole server (``""``) and for the service.

    Raises
    ------
    ServerStartError
        When a port cannot be bound.

    Example
    -------
    >>> running = await start_server(service, load_settings(grpc_port=0, metrics_port=0))  # doctest: +SKIP
    >>> running.grpc_port                                                                   # doctest: +SKIP
    38411
    """
    server = grpc.aio.server(
        interceptors=[MetricsInterceptor()],
        options=[*_SERVER_OPTIONS,
                 ("grpc.max_receive_message_length", settings.max_message_bytes),
                 ("grpc.max_send_message_length", settings.max_message_bytes)],
    )
    service.add_to_server(service.servicer, server)
    declare_service_series(service.service_full_name)
    service_info_pb2_grpc.add_ServiceInfoServiceServicer_to_server(_ServiceInfo(service), server)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", service.service_full_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (service.service_full_name, SERVICE_INFO_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    address = _host_port(settings.grpc_host, settings.grpc_port)
    try:
        grpc_port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ServerStartError(f"cannot listen for gRPC on {address} ({exc}); "
                               "set NEUROMESH_GRPC_PORT to a free port, or 0 to pick one") from None
    try:
        # Same host as gRPC: loopback on a workstation, 0.0.0.0 in a container, where
        # Prometheus scrapes from outside.
        metrics_endpoint = start_metrics_http_server(settings.metrics_port, settings.grpc_host)
    except OSError as exc:
        raise ServerStartError(f"cannot serve /metrics on {_host_port(settings.grpc_host, settings.metrics_port)}"
                               f" ({exc.strerror or exc}); set NEUROMESH_METRICS_PORT to a free port, "
                               "or 0 to pick one") from None
    try:
        await server.start()
    except BaseException:
        metrics_endpoint.close()
        raise
    return RunningServer(service=service, server=server, health=health_servicer, grpc_port=grpc_port,
                         metrics_endpoint=metrics_endpoint)


async def serve_until_signalled(service: ServiceDefinition, settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain for up to ``settings.drain_grace_s`` and return."""
    running = await start_server(service, settings)
    logger.info("serving", extra={
        "grpc_service": service.service_full_name, "grpc_address": _host_port(settings.grpc_host, running.grpc_port),
        "grpc_port": running.grpc_port, "metrics_port": running.metrics_port, "pid": os.getpid()})

    loop = asyncio.get_running_loop()
    stop_requested: asyncio.Future[signal.Signals] = loop.create_future()

    def request_stop(signum: signal.Signals) -> None:
        if stop_requested.done():
            logger.info("already draining", extra={"signal": signum.name})
        else:
            stop_requested.set_result(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, signum)
    received = await stop_requested

    started = time.monotonic()
    logger.info("draining", extra={"signal": received.name, "grace_s": settings.drain_grace_s})
    await running.drain_and_stop(settings.drain_grace_s, settings.drain_notice_s)
    logger.info("stopped", extra={"drain_s": round(time.monotonic() - started, 3)})


def run_service(build: Callable[[Settings], ServiceDefinition]) -> None:
    """The ``__main__`` of a service: settings, logs, server, drain on SIGTERM; exit 0 when drained.

    Exits with status 2 and a message naming the variable when a setting is invalid, and with
    status 1 when the server cannot start (a port is taken); neither prints a traceback.

    Parameters
    ----------
    build : callable
        Makes the :class:`ServiceDefinition` from the validated settings.
    """
    try:
        settings = load_settings()
    except SettingsError as err:
        print(err, file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    service = build(settings)
    # Again, now that the service's name is known, so every record names it.
    configure_logging(settings.log_level, settings.log_format, service=service.name)
    try:
        asyncio.run(serve_until_signalled(service, settings))
    except ServerStartError as err:
        logger.error("could not start: %s", err)
        raise SystemExit(1) from None
