"""What the gateway's integration tests share: real service processes, a real gateway process, metrics.

A module pytest collects, with no tests of its own; the ``test_gateway_*`` modules import it.
Everything runs on loopback: SeaweedFS (the session's ``s3_server``), the services as
``python -m services.<name>``, the gateway as ``python -m gateway``, and PostgreSQL on
127.0.0.1:5432 (a scratch database per module).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from neuromesh.sdk.gateway import GatewayClient
from gateway.jobs.scratch import PostgresUnavailable, scratch_postgres_database
from neuromesh.stack.gateway import GatewayProcess
from neuromesh.stack.health import grpc_health_status
from neuromesh.stack.processes import free_port
from runtime_support.processes import ServiceProcess
from services.common.registry import discover_services

POSTGRES_URL = os.environ.get("NEUROMESH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKENS = {"lab-a": "token-of-lab-a-0123456789", "lab-b": "token-of-lab-b-9876543210"}
SPECS = {spec.name: spec for spec in discover_services()}

#: Fast leases, progress and event polling, so that the tests see takeovers and progress within seconds.
FAST = {"NEUROMESH_GATEWAY_LEASE_S": "2", "NEUROMESH_GATEWAY_POLL_INTERVAL_S": "0.1",
        "NEUROMESH_GATEWAY_PROGRESS_INTERVAL_S": "0.1", "NEUROMESH_GATEWAY_EVENTS_POLL_S": "0.1",
        "NEUROMESH_GATEWAY_INITIAL_BACKOFF_S": "0.2", "NEUROMESH_GATEWAY_MAX_BACKOFF_S": "1",
        "NEUROMESH_GATEWAY_HEALTH_INTERVAL_S": "0.5", "NEUROMESH_GATEWAY_DRAIN_S": "0",
        "NEUROMESH_GATEWAY_CANCEL_GRACE_S": "5", "NEUROMESH_GATEWAY_METRICS_INTERVAL_S": "0.5",
        "NEUROMESH_LOG_FORMAT": "text"}


def token_digests() -> str:
    return json.dumps({t: hashlib.sha256(v.encode()).hexdigest() for t, v in TOKENS.items()})


def start_services(s3_server, bucket: str, names: list[str], log_dir: Path, *, timeout_s: float = 120,
                   **settings: str) -> list[ServiceProcess]:
    """Start the services at once (their imports take seconds each) and wait until all serve;
    ``settings`` are ``NEUROMESH_*`` settings of each (``compute_threads="1"``)."""
    processes = [ServiceProcess(SPECS[name], s3_server, bucket, log_dir / f"{name}-{i}.log", **settings)
                 for i, name in enumerate(names)]
    for p in processes:
        p.process.start()
    try:
        for p in processes:
            p.process.wait_healthy(lambda p=p: grpc_health_status(p.address, p.spec.health_service) == "SERVING",
                                   timeout_s=timeout_s, interval_s=0.2)
    except BaseException:
        for p in processes:
            p.stop()
        raise
    return processes


@contextlib.contextmanager
def service_replicas(s3_server, bucket: str, replicas: dict[str, int], log_dir: Path,
                     **settings: str) -> Iterator[dict[str, list[ServiceProcess]]]:
    """``replicas[name]`` processes of each service, started at once, one thread of compute each;
    stopped on exit. Yields them by service name."""
    names = [name for name, n in replicas.items() for _ in range(n)]
    processes = start_services(s3_server, bucket, names, log_dir, timeout_s=180, compute_threads="1", **settings)
    try:
        yield {name: [p for p in processes if p.spec.name == name] for name in replicas}
    finally:
        for p in processes:
            p.stop()


def gateway_process(log_path: Path, s3_server, bucket: str, database_url: str, endpoints: dict[str, list[str]],
                    **env: str) -> GatewayProcess:
    return GatewayProcess(
        http_port=free_port(), database_url=database_url, endpoints=endpoints, log_path=log_path,
        env={"NEUROMESH_S3_ENDPOINT": s3_server.endpoint, "NEUROMESH_S3_ACCESS_KEY": s3_server.access_key,
             "NEUROMESH_S3_SECRET_KEY": s3_server.secret_key, "NEUROMESH_BUCKET": bucket,
             "NEUROMESH_GATEWAY_TOKENS": token_digests(), **FAST, **env})


def client(gateway: GatewayProcess, tenant: str = "lab-a") -> GatewayClient:
    return GatewayClient(gateway.url, TOKENS[tenant], timeout_s=60)


@contextlib.contextmanager
def database_url(backend: str, directory: Path, name: str) -> Iterator[str]:
    """A fresh job database: an SQLite file, or a scratch PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(POSTGRES_URL, prefix=f"neuromesh_test_{name}"))
        except PostgresUnavailable as exc:
            pytest.fail(f"{exc}\nThe gateway tests need PostgreSQL (CI runs one); start it or point "
                        "NEUROMESH_TEST_POSTGRES_URL at one.", pytrace=False)
        yield url


def scrape(port: int) -> dict[str, float]:
    """Every sample of a /metrics endpoint, by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def started(service: ServiceProcess, method: str) -> float:
    """``grpc_server_started_total`` of one method of ``service``: calls it has begun."""
    prefix = "grpc_server_started_total{"
    return sum(v for k, v in scrape(service.metrics_port).items()
               if k.startswith(prefix) and f"grpc_method={method}," in k
               and f"grpc_service={service.spec.health_service}," in k)


def calls(service: ServiceProcess, *methods: str) -> dict[str, dict[str, float]]:
    """Method -> status code -> calls handled by ``service`` so far."""
    samples = scrape(service.metrics_port)
    out: dict[str, dict[str, float]] = {m: {} for m in methods}
    for key, value in samples.items():
        if not key.startswith("grpc_server_handled_total{") or f"grpc_service={service.spec.health_service}," not in key:
            continue
        labels = dict(part.split("=", 1) for part in key[key.index("{") + 1:-1].split(","))
        if labels["grpc_method"] in out and value:
            out[labels["grpc_method"]][labels["grpc_code"]] = value
    return out


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def slow_simulation(seed: int, duration_ms: float = 2000.0, scale: float = 0.1) -> dict:
    """A Simulate step that takes seconds and streams progress all along (a cortical column)."""
    return {"duration_ms": duration_ms, "bin_ms": 20,
            "network": {"cortical_column": {"scale": scale}, "seed": seed, "record_spikes": {}}}
