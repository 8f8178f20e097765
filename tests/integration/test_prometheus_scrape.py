"""The project's Prometheus configuration and rules in a real Prometheus, scraping real services.

Debian's ``/usr/bin/prometheus`` runs as a process on a free loopback port with a scrape config
made from ``deploy/prometheus/prometheus.yml``: the same jobs and rules, with the simulation,
segmentation and gateway targets pointed at processes started here (against a real S3 server; the
gateway with a SQLite job store), and every interval shortened to a second. After a small
simulation and a small classical segmentation through gRPC, and four jobs through the gateway's
HTTP API (two computed, two answered from its step cache), Prometheus's HTTP API must show what
the dashboards and autoscalers rely on: positive synaptic-event and voxel rates from the
recording rules and from ``rate()``, latency percentiles of the calls, the gateway's jobs and
step rules, and every rule evaluating without error.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from ruamel.yaml import YAML

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc
from neuromesh.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from neuromesh.stack.processes import ManagedProcess, free_port
from runtime_support.processes import ServiceProcess
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.segmentation import SERVICE as SEGMENTATION
from services.segmentation.core import synthetic_em_volume
from services.simulation import SERVICE as SIMULATION

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
POLL_TIMEOUT_S = 60.0


def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("prometheus is not installed: install the Debian package `prometheus` (apt-get install -y prometheus)")
    return binary


def scrape_config_for(targets: dict[str, int], prometheus_port: int) -> dict:
    """deploy/prometheus/prometheus.yml with its service jobs pointed at loopback metrics ports
    (jobs of services not started here are left out: they would only be `up == 0`), the rules
    loaded from the repository, and scrapes and rule evaluations every second."""
    config = YAML(typ="safe", pure=True).load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / pattern) for pattern in config["rule_files"]]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
        elif job["job_name"] in targets:
            (static,) = job["static_configs"]
            static["targets"] = [f"127.0.0.1:{targets[job['job_name']]}"]
        else:
            continue
        jobs.append(job)
    assert {j["job_name"] for j in jobs} == {"prometheus", *targets}, "a service job is missing from prometheus.yml"
    config["scrape_configs"] = jobs
    return config


class Prometheus:
    def __init__(self, config: dict, folder: Path) -> None:
        self.port = free_port()
        config_path = folder / "prometheus.yml"
        config_path.write_text(json.dumps(scrape_config_for(config, self.port)))    # JSON is YAML
        self.process = ManagedProcess("prometheus", [
            prometheus_binary(), f"--config.file={config_path}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            log_path=folder / "prometheus.log")

    def get(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.loads(reply.read())

    def query(self, expr: str) -> list[dict]:
        answer = self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def start(self) -> "Prometheus":
        self.process.start()

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as reply:
                return reply.status == 200
        self.process.wait_healthy(ready, timeout_s=30, interval_s=0.2)
        return self

    def wait_for(self, expr: str, what: str, until=bool, timeout_s: float = POLL_TIMEOUT_S) -> list[dict]:
        """Poll an instant query until ``until(result)`` holds (by default: it returns a sample).

        Rules are evaluated every second, on the samples of the last scrape, so a rate shows a
        call a second or two after it ended, and one stage's voxels before the next stage's.
        """
        deadline, result = time.monotonic() + timeout_s, []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if until(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{what}: `{expr}` gave {result} for {timeout_s:.0f} s; "
                             f"Prometheus's log ends:\n{self.process.log_tail()}")


@pytest.fixture(scope="module")
def services(s3_server, module_bucket, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prometheus-services")
    processes = {spec.name: ServiceProcess(spec, s3_server, module_bucket, folder / f"{spec.name}.log",
                                           compute_threads="1")
                 for spec in (SIMULATION, SEGMENTATION)}
    try:
        for process in processes.values():   # both import at once, then both are waited for
            process.process.start()
        for process in processes.values():
            process.process.wait_healthy(lambda p=process: _serving(p), timeout_s=120, interval_s=0.3)
        yield processes
    finally:
        for process in processes.values():
            process.stop()


def _serving(process: ServiceProcess) -> bool:
    return grpc_health_status(process.address, process.spec.health_service) == "SERVING"


class Gateway:
    """``python -m gateway`` on a free loopback port, with a SQLite job store and a token file in
    ``folder``, calling the given services."""

    def __init__(self, folder: Path, s3_server, bucket: str, services: dict[str, ServiceProcess]) -> None:
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        tokens = folder / "gateway-tokens"
        tokens.write_text(f"prometheus-test:{hashlib.sha256(self.token.encode()).hexdigest()}\n")
        env = {"NEUROMESH_GATEWAY_HTTP_HOST": "127.0.0.1", "NEUROMESH_GATEWAY_HTTP_PORT": str(self.port),
               "NEUROMESH_GATEWAY_DATABASE_URL": f"sqlite:///{folder / 'jobs.db'}",
               "NEUROMESH_GATEWAY_ENDPOINTS": json.dumps({n: p.address for n, p in services.items()}),
               "NEUROMESH_GATEWAY_TOKENS_FILE": str(tokens), "NEUROMESH_GATEWAY_POLL_INTERVAL_S": "0.2",
               "NEUROMESH_GATEWAY_DRAIN_S": "0", "NEUROMESH_S3_ENDPOINT": s3_server.endpoint,
               "NEUROMESH_S3_ACCESS_KEY": s3_server.access_key, "NEUROMESH_S3_SECRET_KEY": s3_server.secret_key,
               "NEUROMESH_BUCKET": bucket, "NEUROMESH_LOG_FORMAT": "text"}
        self.process = ManagedProcess("gateway", [sys.executable, "-m", "gateway"], env=env,
                                      log_path=folder / "gateway.log", cwd=ROOT)

    def start(self) -> "Gateway":
        self.process.start()

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as reply:
                return reply.status == 200
        self.process.wait_healthy(ready, timeout_s=60, interval_s=0.2)
        return self

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())

    def run_job(self, job: dict, timeout_s: float = 120) -> dict:
        status, submitted = self.call("POST", "/v1/jobs", job)
        assert status == 202, submitted
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _, view = self.call("GET", f"/v1/jobs/{submitted['id']}")
            if view["state"] not in ("pending", "running"):
                return view
            time.sleep(0.2)
        raise AssertionError(f"job {submitted['id']} still {view['state']} after {timeout_s} s; the gateway's "
                             f"log ends:\n{self.process.log_tail()}")


@pytest.fixture(scope="module")
def gateway(services, s3_server, module_bucket, tmp_path_factory):
    process = Gateway(tmp_path_factory.mktemp("prometheus-gateway"), s3_server, module_bucket, services).start()
    yield process
    process.process.stop()


@pytest.fixture(scope="module")
def prometheus(services, gateway, tmp_path_factory):
    server = Prometheus({**{name: p.metrics_port for name, p in services.items()}, "gateway": gateway.port},
                        tmp_path_factory.mktemp("prometheus"))
    server.start()
    yield server
    server.process.stop()


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


@pytest.fixture(scope="module")
def traffic(services, prometheus, store):
    """One simulation and one classical segmentation, after Prometheus has scraped both services
    at least once (so every counter has a sample before it grows)."""
    for name in services:
        prometheus.wait_for(f'up{{job="{name}"}} == 1', f"{name} scraped")
    S = simulation_pb2
    network = S.Network(
        populations=[S.Population(name="in", size=200, model=S.NEURON_MODEL_POISSON, params={"rate_hz": 40.0}),
                     S.Population(name="out", size=100)],
        projections=[S.Projection(source="in", target="out", weight=0.5, delay_ms=1.0,
                                  connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=20))],
        seed=3)
    # Each call is made twice (the second is answered from the store): the labelled grpc_server_*
    # series of a method appear with its first call, already at 1, so rate() sees only the calls
    # after the first scrape that found the series.
    with grpc.insecure_channel(services["simulation"].address) as channel:
        stub = simulation_pb2_grpc.SimulationServiceStub(channel)
        for _ in range(2):
            events = list(stub.Simulate(S.SimulateRequest(network=network, duration_ms=500.0), timeout=120))
            time.sleep(1.5)   # a scrape between the two
    simulated = events[-1].result
    assert simulated.synaptic_events > 0

    G = segmentation_pb2
    raw, _ = synthetic_em_volume((16, 32, 32), n_neurites=5, seed=4)
    ref = store.put_array("inputs/prometheus-test/raw", raw, chunks=(8, 32, 32))
    request = G.SegmentRequest(raw=G.Volume(ref=ArtifactRef(key=ref.key)), classical=G.ClassicalBoundaries(),
                               thresholds=[0.5], block_shape=[8, 32, 32], halo=[2, 4, 4])
    with grpc.insecure_channel(services["segmentation"].address) as channel:
        stub = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        for _ in range(2):
            events = list(stub.Segment(request, timeout=120))
            assert events[-1].HasField("result")
            time.sleep(1.5)
    return simulated


def simulate_job(seed: int) -> dict:
    """A one-step job: a small Simulate (the network of `traffic`, another seed), in proto JSON."""
    S = simulation_pb2
    request = S.SimulateRequest(network=S.Network(
        populations=[S.Population(name="in", size=100, model=S.NEURON_MODEL_POISSON, params={"rate_hz": 40.0}),
                     S.Population(name="out", size=50)],
        projections=[S.Projection(source="in", target="out", weight=0.5, delay_ms=1.0,
                                  connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=10))],
        seed=seed), duration_ms=300.0)
    return {"steps": [{"id": "simulate", "service": "simulation", "method": "Simulate",
                       "params": json_format.MessageToDict(request)}]}


@pytest.fixture(scope="module")
def gateway_jobs(gateway, prometheus):
    """Four jobs through the gateway, a scrape apart: two that run a Simulate step, then the same
    two again, whose step the gateway answers from its cache. (Labelled series appear at their
    first increment, so rate() needs a second one: two of each kind.)"""
    prometheus.wait_for('up{job="gateway"} == 1', "gateway scraped")
    views = []
    for seed in (21, 22, 21, 22):
        views.append(gateway.run_job(simulate_job(seed)))
        time.sleep(1.5)
    assert [v["state"] for v in views] == ["succeeded"] * 4, [v.get("error") for v in views]
    assert [v["steps"][0]["reused"] for v in views] == [False, False, True, True]
    return views


def positive(result: list[dict]) -> float:
    return sum(float(sample["value"][1]) for sample in result)


def test_recording_rules_give_positive_synaptic_event_and_voxel_rates(traffic, prometheus):
    events = prometheus.wait_for('job:neuromesh_simulation_synaptic_events:rate5m{job="simulation"} > 0',
                                 "synaptic events per second")
    assert positive(events) > 0
    steps = prometheus.wait_for('job:neuromesh_simulation_neuron_steps:rate5m{job="simulation"} > 0',
                                "neuron-steps per second")
    assert positive(steps) > 0
    # every stage a classical Segment runs: boundaries, fragments, labels at the one threshold
    stages = {"predict", "watershed", "agglomerate"}
    voxels = prometheus.wait_for('job_stage:neuromesh_segmentation_voxels:rate5m{job="segmentation"} > 0',
                                 "voxels per second by stage",
                                 until=lambda result: {s["metric"]["stage"] for s in result} >= stages)
    assert positive(voxels) > 0


def test_raw_rates_agree(traffic, prometheus):
    # what the KEDA triggers and the per-replica panels compute directly
    assert positive(prometheus.wait_for(
        'sum(rate(neuromesh_simulation_synaptic_events_total{job="simulation"}[1m])) > 0', "raw synaptic rate")) > 0
    assert positive(prometheus.wait_for(
        'sum by (stage) (rate(neuromesh_segmentation_voxels_total{job="segmentation"}[1m])) > 0', "raw voxel rate")) > 0


def test_latency_percentiles_and_calls_are_recorded(traffic, prometheus):
    # (NaN, and so filtered out by `> 0`, until a scrape after the call has been evaluated)
    latency = prometheus.wait_for(
        'job_grpc_type_method:grpc_server_handling_seconds:p95_rate5m{job="simulation",grpc_method="Simulate"} > 0',
        "Simulate p95 latency")
    assert latency[0]["metric"]["grpc_type"] == "SERVER_STREAM"
    calls = prometheus.wait_for('job_grpc_method_code:grpc_server_handled:rate5m{grpc_code="OK"} > 0',
                                "calls per second")
    assert {s["metric"]["job"] for s in calls} >= {"simulation", "segmentation"}
    # the calls have finished: nothing in flight, counted as 0 rather than absent
    in_flight = prometheus.wait_for('job_grpc_method:grpc_server_in_flight:sum{grpc_method="Simulate"}',
                                    "Simulate calls in flight")
    assert positive(in_flight) == 0
    assert prometheus.wait_for('job:grpc_server_server_errors:ratio_rate5m{job="simulation"} == 0',
                               "server-error ratio")


def test_gateway_rules_show_jobs_steps_reuse_and_http(gateway_jobs, prometheus):
    assert positive(prometheus.wait_for('job:neuromesh_gateway_jobs_submitted:rate5m{job="gateway"} > 0',
                                        "jobs submitted per second")) > 0
    assert positive(prometheus.wait_for(
        'job_state:neuromesh_gateway_jobs_finished:rate5m{job="gateway", state="succeeded"} > 0',
        "jobs finished per second")) > 0
    # none failed: the ratio is 0, not absent
    assert prometheus.wait_for('job:neuromesh_gateway_jobs_failed:ratio_rate30m{job="gateway"} == 0',
                               "failed-job ratio")
    p95 = prometheus.wait_for(
        'job_service:neuromesh_gateway_step_duration_seconds:p95_rate5m{job="gateway", service="simulation"} > 0',
        "Simulate step p95")
    assert 0 < positive(p95) < 60
    assert prometheus.wait_for(
        'job_service_outcome:neuromesh_gateway_step_executions:rate5m{service="simulation", outcome="succeeded"} > 0',
        "step executions per second")
    # half the completed steps came from the cache (two of four): between 0 and 1 over a window
    reuse = prometheus.wait_for(
        'job_service:neuromesh_gateway_steps_reused:ratio_rate5m{job="gateway", service="simulation"} > 0',
        "step reuse ratio")
    assert 0 < positive(reuse) < 1
    # the store-wide gauges, read from the database every few seconds: every job ended
    assert prometheus.wait_for('job_state:neuromesh_gateway_jobs:max{job="gateway", state="succeeded"} == 4',
                               "jobs by state")
    assert prometheus.wait_for('job:neuromesh_gateway_runnable_steps:max{job="gateway"} == 0', "queue depth")
    # HTTP by route template (never by path: the job ids are not in the labels)
    requests = prometheus.wait_for(
        'job_method_route_status:neuromesh_gateway_http_requests:rate5m{job="gateway", route=~"/v1/jobs.*"} > 0',
        "HTTP requests per second", until=lambda result: {(s["metric"]["method"], s["metric"]["route"])
                                                          for s in result} >= {("POST", "/v1/jobs"),
                                                                               ("GET", "/v1/jobs/{job_id}")})
    assert {s["metric"]["status"] for s in requests} == {"200", "202"}
    assert prometheus.wait_for(
        'job_method_route:neuromesh_gateway_http_request_duration_seconds:p95_rate5m{route="/v1/jobs"} > 0',
        "POST /v1/jobs latency")
    assert prometheus.wait_for('job:neuromesh_gateway_http_server_errors:ratio_rate5m{job="gateway"} == 0',
                               "HTTP 5xx ratio")


def test_every_rule_evaluates_without_error(traffic, gateway_jobs, prometheus):
    prometheus.wait_for('job:neuromesh_simulation_synaptic_events:rate5m > 0', "a first evaluation")
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    declared = {rule.get("record") or rule.get("alert")
                for path in RULES_DIR.glob("*.yml") for group in YAML(typ="safe", pure=True).load(path.read_text())["groups"]
                for rule in group["rules"]}
    assert loaded == declared
    broken = {rule["name"]: rule.get("lastError") for group in groups for rule in group["rules"]
              if rule.get("health") == "err"}
    assert not broken
    # and no alert fires on a healthy stack with one call each
    firing = [a for a in prometheus.get("/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
    assert not firing
