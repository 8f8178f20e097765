"""The project's Prometheus configuration and rules in a real Prometheus, scraping real services.

Debian's ``/usr/bin/prometheus`` runs as a process on a free loopback port with a scrape config
made from ``deploy/prometheus/prometheus.yml``: the same jobs and rules, with the simulation and
segmentation targets pointed at service processes started here (against a real S3 server), and
every interval shortened to a second. After a small simulation and a small classical
segmentation through gRPC, Prometheus's HTTP API must show what the dashboards and autoscalers
rely on: positive synaptic-event and voxel rates from the recording rules and from ``rate()``,
latency percentiles of the calls, and every rule evaluating without error.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest
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


@pytest.fixture(scope="module")
def prometheus(services, tmp_path_factory):
    server = Prometheus({name: p.metrics_port for name, p in services.items()},
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


def test_every_rule_evaluates_without_error(traffic, prometheus):
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
