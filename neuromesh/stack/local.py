"""``neuromesh up`` / ``down`` / ``status``: the whole platform as local processes.

``up`` starts the object store (SeaweedFS ``weed mini``, unless ``NEUROMESH_S3_ENDPOINT`` names
an existing S3 server), creates the bucket, starts every registered service
(:func:`services.common.registry.discover_services`), waits until each reports SERVING on the
gRPC health protocol, then starts the gateway (HTTP API, web page and job runner) on port
8080 + the offset, with its job store in ``<state dir>/jobs.db`` (SQLite) and a dev token in
``<state dir>/gateway-token`` (:mod:`neuromesh.stack.gateway`), and waits until its ``/readyz``
answers. It records what it started in ``<state dir>/stack.json``. The processes outlive the
command; ``down`` stops them (the gateway first, so its runner releases running steps; then the
services, which drain; the store last) with SIGTERM. Data lives under ``<state dir>/s3`` and
``<state dir>/jobs.db`` and survives a restart.

Example
-------
>>> stack = LocalStack(Path(".neuromesh"))   # doctest: +SKIP
>>> stack.up(); stack.status()               # doctest: +SKIP
>>> stack.down()                             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.common.registry import ServiceSpec, discover_services
from services.common.settings import Settings, load_settings

from .gateway import DEFAULT_HTTP_PORT, GatewayProcess, ensure_dev_token, gateway_health
from .health import grpc_health_status
from .processes import ManagedProcess, StartError, pid_alive, port_open, terminate_group
from .seaweedfs import SeaweedS3

STATE_FILE = "stack.json"


@dataclass
class Component:
    """One running piece of the stack as recorded in the state file."""

    name: str
    pid: int | None          # None: not started by us (an external S3 server)
    endpoint: str            # host:port clients use
    kind: str                # "s3", "grpc" or "http" (the gateway)
    metrics: str = ""        # host:port of /metrics, for services
    health_service: str = ""
    log: str = ""


@dataclass
class StackState:
    s3_endpoint: str
    bucket: str
    components: list[Component] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "StackState":
        raw = json.loads(text)
        return cls(s3_endpoint=raw["s3_endpoint"], bucket=raw["bucket"],
                   components=[Component(**c) for c in raw["components"]])


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says what to do."""


class LocalStack:
    def __init__(self, state_dir: Path, settings: Settings | None = None, *, port_offset: int = 0) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.settings = settings or load_settings()
        # Added to every default port (object store, gRPC, metrics) so that a second stack, say
        # a test's, runs beside a developer's.
        self.port_offset = port_offset

    def port(self, default: int) -> int:
        return default + self.port_offset

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    def read_state(self) -> StackState | None:
        if not self.state_path.exists():
            return None
        return StackState.from_json(self.state_path.read_text())

    def service_env(self, spec: ServiceSpec, s3_endpoint: str) -> dict[str, str]:
        s = self.settings
        return {
            "NEUROMESH_GRPC_HOST": s.grpc_host,
            "NEUROMESH_GRPC_PORT": str(self.port(spec.grpc_port)),
            "NEUROMESH_METRICS_PORT": str(self.port(spec.metrics_port)),
            "NEUROMESH_S3_ENDPOINT": s3_endpoint,
            "NEUROMESH_S3_ACCESS_KEY": s.s3_access_key,
            "NEUROMESH_S3_SECRET_KEY": s.s3_secret_key,
            "NEUROMESH_S3_SECURE": str(s.s3_secure).lower(),
            "NEUROMESH_BUCKET": s.bucket,
        }

    def up(self, timeout_s: float = 120.0, log=print) -> StackState:
        existing = self.read_state()
        if existing and any(c.pid and pid_alive(c.pid) for c in existing.components):
            raise StackError(f"a stack is already running from {self.state_dir} "
                             "(`neuromesh status` shows it, `neuromesh down` stops it)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        s3_endpoint = self.settings.s3_endpoint
        if "NEUROMESH_S3_ENDPOINT" not in os.environ:
            host, _, port = s3_endpoint.rpartition(":")
            s3_endpoint = f"{host}:{self.port(int(port))}"
        state = StackState(s3_endpoint=s3_endpoint, bucket=self.settings.bucket)
        try:
            self._start_object_store(state, logs, timeout_s, log)
            self._ensure_bucket(state)
            for spec in discover_services():
                self._start_service(spec, state, logs, timeout_s, log)
            self._start_gateway(state, logs, timeout_s, log)
        except BaseException:
            self.state_path.write_text(state.to_json())  # so `down` can clean up what did start
            self.down(log=lambda *_: None)
            raise
        self.state_path.write_text(state.to_json())
        return state

    def _start_object_store(self, state: StackState, logs: Path, timeout_s: float, log) -> None:
        if "NEUROMESH_S3_ENDPOINT" in os.environ:
            # An existing MinIO/S3 server is configured: use it, start none.
            host, _, port = state.s3_endpoint.rpartition(":")
            if not port_open(host, int(port)):
                raise StackError(f"NEUROMESH_S3_ENDPOINT={state.s3_endpoint} does not answer")
            state.components.append(Component("object-store", None, state.s3_endpoint, "s3"))
            log(f"object store   s3://{state.bucket} at {state.s3_endpoint} (external)")
            return
        host, _, port = state.s3_endpoint.rpartition(":")
        if port_open(host, int(port)):
            raise StackError(f"port {port} of the object store is taken: stop what listens there or set "
                             "NEUROMESH_S3_ENDPOINT to use it as an existing S3 server")
        server = SeaweedS3(self.state_dir / "s3", access_key=self.settings.s3_access_key,
                           secret_key=self.settings.s3_secret_key, host=host, s3_port=int(port),
                           log_path=logs / "object-store.log",
                           reserved_ports=frozenset([self.port(DEFAULT_HTTP_PORT)] + [
                               self.port(p) for spec in discover_services() for p in (spec.grpc_port, spec.metrics_port)]))
        try:
            server.start(timeout_s=timeout_s)
        finally:
            if server.process and server.process.pid:
                state.components.append(Component("object-store", server.process.pid, server.endpoint, "s3",
                                                  log=str(logs / "object-store.log")))
        log(f"object store   s3://{state.bucket} at http://{server.endpoint} (SeaweedFS, data in {server.data_dir})")

    def _ensure_bucket(self, state: StackState) -> None:
        from minio import Minio

        client = Minio(state.s3_endpoint, access_key=self.settings.s3_access_key,
                       secret_key=self.settings.s3_secret_key, secure=self.settings.s3_secure,
                       region=self.settings.s3_region)
        if not client.bucket_exists(state.bucket):
            client.make_bucket(state.bucket)

    def _start_service(self, spec: ServiceSpec, state: StackState, logs: Path, timeout_s: float, log) -> None:
        host = self.settings.grpc_host
        grpc_port, metrics_port = self.port(spec.grpc_port), self.port(spec.metrics_port)
        for port in (grpc_port, metrics_port):
            if port_open(host, port):
                raise StackError(f"port {port} for the {spec.name} service is taken on {host}")
        log_path = logs / f"{spec.name}.log"
        proc = ManagedProcess(spec.name, [sys.executable, "-m", spec.module],
                              env=self.service_env(spec, state.s3_endpoint), log_path=log_path)
        proc.start()
        address = f"{host}:{grpc_port}"
        state.components.append(Component(spec.name, proc.pid, address, "grpc", f"{host}:{metrics_port}",
                                          spec.health_service, str(log_path)))
        proc.wait_healthy(lambda: grpc_health_status(address, spec.health_service) == "SERVING",
                          timeout_s=timeout_s, interval_s=0.2)
        log(f"{spec.name:<14} grpc://{address}  metrics http://{host}:{metrics_port}/metrics")

    def gateway_env(self, state: StackState, tokens_file: Path) -> dict[str, str]:
        s = self.settings
        return {
            "NEUROMESH_S3_ENDPOINT": state.s3_endpoint,
            "NEUROMESH_S3_ACCESS_KEY": s.s3_access_key,
            "NEUROMESH_S3_SECRET_KEY": s.s3_secret_key,
            "NEUROMESH_S3_SECURE": str(s.s3_secure).lower(),
            "NEUROMESH_BUCKET": s.bucket,
            "NEUROMESH_GATEWAY_TOKENS_FILE": str(tokens_file),
        }

    def _start_gateway(self, state: StackState, logs: Path, timeout_s: float, log) -> None:
        host, port = self.settings.grpc_host, self.port(DEFAULT_HTTP_PORT)
        if port_open(host, port):
            raise StackError(f"port {port} for the gateway is taken on {host}")
        token, tokens_file = ensure_dev_token(self.state_dir)
        endpoints = {c.name: [c.endpoint] for c in state.components if c.kind == "grpc"}
        log_path = logs / "gateway.log"
        gateway = GatewayProcess(http_port=port, host=host, database_url=f"sqlite:///{self.state_dir / 'jobs.db'}",
                                 endpoints=endpoints, env=self.gateway_env(state, tokens_file), log_path=log_path)
        gateway.process.start()
        address = gateway.address
        state.components.append(Component("gateway", gateway.pid, address, "http", address, "", str(log_path)))
        gateway.process.wait_healthy(lambda: gateway_health(address) == "SERVING", timeout_s=timeout_s,
                                     interval_s=0.2)
        log(f"{'gateway':<14} http://{address}  metrics http://{address}/metrics  "
            f"token {token} (in {self.state_dir / 'gateway-token'})")

    def status(self) -> list[dict[str, str]]:
        state = self.read_state()
        if state is None:
            return []
        rows = []
        for c in state.components:
            if c.kind == "grpc":
                health = grpc_health_status(c.endpoint, c.health_service)
            elif c.kind == "http":
                health = gateway_health(c.endpoint)
            else:
                host, _, port = c.endpoint.rpartition(":")
                health = "SERVING" if port_open(host, int(port)) else "UNREACHABLE"
            rows.append({"name": c.name, "endpoint": c.endpoint, "pid": str(c.pid or "-"), "health": health,
                         "metrics": c.metrics, "log": c.log})
        return rows

    def down(self, timeout_s: float = 30.0, log=print) -> None:
        state = self.read_state()
        if state is None:
            log(f"no stack recorded in {self.state_dir}")
            return
        # The gateway first (its runner releases running steps while the services still answer),
        # then the services, so they drain while the store still answers; the store last.
        for c in reversed(state.components):
            if c.pid and pid_alive(c.pid):
                terminate_group(c.pid, timeout_s)
                log(f"stopped {c.name} (pid {c.pid})")
        self.state_path.unlink(missing_ok=True)


def default_state_dir() -> Path:
    return Path(os.environ.get("NEUROMESH_STATE_DIR", ".neuromesh"))


__all__ = ["LocalStack", "StackError", "StartError", "default_state_dir"]
