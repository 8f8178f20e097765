"""The deployment files, checked without a container engine (none runs on the build machines).

- docker-compose.yml validates against the Compose Specification JSON schema (vendored by
  ``check-jsonschema``), and every service of :func:`discover_services` is in it with its
  ports, healthcheck and dependencies, and in prometheus.yml as a scrape target;
- prometheus.yml and the rules pass ``promtool check`` (Debian package ``prometheus``), and the
  alerting rules fire on synthetic series (``promtool test rules``);
- the Dockerfile is multi-stage, pinned, non-root, health-checked, and takes torch from the CPU
  index;
- the healthcheck CLI the images run exits 0 only for SERVING.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
# ruamel.yaml comes with check-jsonschema (the dev extra) and reads YAML 1.2, as compose does.
from ruamel.yaml import YAML

from services.common import healthcheck
from services.common.registry import ServiceSpec, discover_services

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERFILE_CUDA = ROOT / "deploy" / "docker" / "Dockerfile.cuda"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_K8S = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"

OBJECT_STORE = "minio"
BUCKET_JOB = "create-bucket"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SERVICES = discover_services()


def load_yaml(path: Path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def venv_tool(name: str) -> str:
    """An executable installed beside this interpreter (the project's virtual environment)."""
    tool = Path(sys.executable).parent / name
    if not tool.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable}: run `pip install -e '.[dev]'`")
    return str(tool)


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not on PATH: install the Debian package `prometheus` "
                    "(apt-get install -y prometheus), which ships it")
    return tool


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def prometheus_config() -> dict:
    return load_yaml(PROMETHEUS)


def test_registry_has_services():
    # Guards the parametrised tests below from passing vacuously.
    assert SERVICES, "discover_services() found no service"


# ---------------------------------------------------------------------------- docker-compose.yml

def validate_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_validates_against_the_compose_specification():
    result = validate_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path):
    # The validator really validates: a misspelt key and a wrong depends_on condition fail.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text()
                      .replace("restart: unless-stopped", "restat: unless-stopped", 1)
                      .replace("condition: service_healthy", "condition: healthy", 1))
    result = validate_compose(broken)
    assert result.returncode != 0
    assert "restat" in result.stdout + result.stderr


def test_compose_has_no_version_key_and_named_volumes(compose):
    assert "version" not in compose, "the Compose Specification dropped `version:`"
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "$")):
                assert source in declared, f"{name} mounts volume {source!r}, not declared under volumes:"
            elif source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_compose_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image or service.get("build"), f"service {name} has neither image nor build"
        if image:
            reference = image.split("@")[0]
            tag = reference.rsplit(":", 1)[1] if ":" in reference.rsplit("/", 1)[-1] else None
            assert tag or "@sha256:" in image, f"service {name}: image {image} has no tag"
            assert tag != "latest", f"service {name}: image {image} uses the moving tag `latest`"
        if service.get("build"):
            dockerfile = ROOT / service["build"].get("context", ".") / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"service {name} builds from {dockerfile}, which does not exist"


def test_env_example_lists_every_variable_compose_uses():
    text = COMPOSE.read_text()
    # ${VAR}, ${VAR:-default}, ${VAR:?error}; `$${...}` is a literal `$` for the container's shell.
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    defined = {line.split("=", 1)[0].strip() for line in ENV_EXAMPLE.read_text().splitlines()
               if "=" in line and not line.lstrip().startswith("#")}
    assert used, "compose substitutes no variable: the test lost its subject"
    assert used <= defined, f".env.example lacks {sorted(used - defined)}"
    assert "cp .env.example .env" in ENV_EXAMPLE.read_text()


def test_object_store_is_healthchecked_and_its_bucket_created_once(compose):
    services = compose["services"]
    minio = services[OBJECT_STORE]
    assert minio.get("healthcheck", {}).get("test"), "minio has no healthcheck"
    assert any(str(v).endswith(":/data") for v in minio.get("volumes", [])), "minio keeps no data volume"
    bucket_job = services[BUCKET_JOB]
    assert bucket_job["image"].startswith("minio/mc:")
    assert bucket_job["depends_on"][OBJECT_STORE]["condition"] == "service_healthy"
    assert "mb --ignore-existing" in " ".join(map(str, bucket_job.get("command", [])))
    assert bucket_job.get("restart") in ("no", None), "a one-shot job must not restart"


def test_prometheus_service_mounts_config_and_rules(compose):
    prometheus = compose["services"]["prometheus"]
    mounts = [str(v) for v in prometheus["volumes"]]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    assert any(m.startswith("prometheus-data:") for m in mounts)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_postgres_job_store_is_pinned_health_checked_and_keeps_its_data(compose):
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", postgres["image"]), "pin a minor release of PostgreSQL"
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    env = environment(postgres)
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert env[name].startswith(f"${{{name}"), f"{name} should come from .env"
    # no default password: compose refuses to start without one in .env
    assert ":?" in env["POSTGRES_PASSWORD"]
    # published on loopback only
    assert all(str(p).startswith("127.0.0.1:") for p in postgres.get("ports", []))


def test_grafana_is_provisioned_from_the_repository(compose):
    grafana = compose["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"])
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    mounts = dict(str(v).rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if str(v).startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    # the dashboard provider reads the folder the dashboards are mounted at
    provider = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/neuromesh.yml")["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()
    # the data source points at the compose Prometheus
    (source,) = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{port}" and source["type"] == "prometheus"
    assert ":?" in environment(grafana)["GF_SECURITY_ADMIN_PASSWORD"], "no default admin password"


def container_ports(service: dict) -> set[int]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:  # "[ip:]host:container[/proto]" or "container"
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_service_is_in_compose(compose, spec: ServiceSpec):
    assert spec.name in compose["services"], f"docker-compose.yml has no service {spec.name}"
    service = compose["services"][spec.name]

    assert {spec.grpc_port, spec.metrics_port} <= container_ports(service), \
        f"{spec.name} must publish gRPC {spec.grpc_port} and metrics {spec.metrics_port}"
    env = environment(service)
    assert env.get("NEUROMESH_GRPC_PORT") == str(spec.grpc_port)
    assert env.get("NEUROMESH_METRICS_PORT") == str(spec.metrics_port)
    assert env.get("NEUROMESH_GRPC_HOST") == "0.0.0.0", "bound to loopback, nothing outside reaches it"
    assert env.get("NEUROMESH_SERVICE") == spec.name
    assert env.get("NEUROMESH_S3_ENDPOINT") == f"{OBJECT_STORE}:9000"

    build = service["build"]
    assert build["dockerfile"] == "deploy/docker/Dockerfile"
    assert build["args"]["NEUROMESH_SERVICE"] == spec.name
    assert str(build["args"]["NEUROMESH_GRPC_PORT"]) == str(spec.grpc_port)
    assert str(build["args"]["NEUROMESH_METRICS_PORT"]) == str(spec.metrics_port)

    test = service.get("healthcheck", {}).get("test", [])
    assert "services.common.healthcheck" in " ".join(test), f"{spec.name} has no gRPC healthcheck"

    depends = service.get("depends_on", {})
    assert depends.get(OBJECT_STORE, {}).get("condition") == "service_healthy"
    assert depends.get(BUCKET_JOB, {}).get("condition") == "service_completed_successfully"


# ---------------------------------------------------------------------------- Prometheus

def rule_files(config: dict) -> list[Path]:
    files = []
    for pattern in config.get("rule_files", []):
        files += sorted(PROMETHEUS.parent.glob(pattern))
    return files


def test_prometheus_config_structure(prometheus_config):
    assert prometheus_config["global"]["scrape_interval"]
    jobs = [job["job_name"] for job in prometheus_config["scrape_configs"]]
    assert len(jobs) == len(set(jobs)), f"duplicate job names in {jobs}"
    files = rule_files(prometheus_config)
    assert files, "rule_files matches no file under deploy/prometheus/"
    assert set(files) == set(RULES_DIR.glob("*.yml")), "a rules file is not loaded by prometheus.yml"
    for path in files:
        groups = load_yaml(path)["groups"]
        assert groups, f"{path.name} has no rule group"
        for group in groups:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert ("record" in rule) != ("alert" in rule), rule
                assert rule["expr"]


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_service_is_scraped(prometheus_config, spec: ServiceSpec):
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    assert spec.name in jobs, f"prometheus.yml has no scrape job {spec.name}"
    job = jobs[spec.name]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert f"{spec.name}:{spec.metrics_port}" in targets


@pytest.mark.parametrize("config", [PROMETHEUS, PROMETHEUS_K8S], ids=lambda p: p.name)
def test_promtool_checks_config(config):
    result = subprocess.run([promtool(), "check", "config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout, "the config should load throughput.yml and grpc.yml"


def test_promtool_check_config_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS.read_text().replace("scrape_interval: 15s", "scrape_intervall: 15s", 1))
    result = subprocess.run([promtool(), "check", "config", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "scrape_intervall" in result.stdout + result.stderr


def test_kubernetes_config_has_the_compose_jobs():
    # The same job names in both, so the rules, dashboards and autoscalers read the same series.
    compose_jobs = {job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]}
    k8s_jobs = {job["job_name"] for job in load_yaml(PROMETHEUS_K8S)["scrape_configs"]}
    assert compose_jobs == k8s_jobs
    assert load_yaml(PROMETHEUS_K8S)["rule_files"] == load_yaml(PROMETHEUS)["rule_files"]


def test_promtool_checks_rules():
    files = [str(p) for p in sorted(RULES_DIR.glob("*.yml"))]
    assert files
    result = subprocess.run([promtool(), "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path):
    broken = tmp_path / "throughput.yml"
    broken.write_text((RULES_DIR / "throughput.yml").read_text().replace("[5m]))", "[5m])", 1))
    result = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


# --- metric names: what the rules (and the dashboards, the autoscalers) read must exist

# Words of PromQL that look like metric names: binary operators and modifiers, the @ modifier's
# start()/end() (followed by "(" anyway), and the literals Inf and NaN.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels, keywords, durations).

    Grafana's interval variables ($__rate_interval, ...) are read as durations. The expression
    is taken apart textually, which PromQL allows for this purpose: strings, label matchers
    ``{...}``, ranges ``[...]`` and the label lists of by/without/on/ignoring/group_x are
    dropped; of what is left, an identifier not followed by "(" is a metric name.

    >>> sorted(promql_metric_names('sum by (job) (rate(a_total{x="b_total"}[5m])) / on (job) c'))
    ['a_total', 'c']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{?__\w+\}?", "5m", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        token, before = match.group(0), text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before in ".$" or token.lower() in PROMQL_KEYWORDS:
            continue  # part of a number or duration (1e3, 5m), a Grafana variable, or a keyword
        if text[match.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(token)
    return names


def exported_metric_names(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition can carry, from its ``# TYPE`` lines.

    The text format declares every registered family even before it has a sample (a labelled
    counter no call has touched yet), so this is what the service exports, not only what it has
    counted so far: a histogram gives ``_bucket``, ``_sum`` and ``_count``, a counter ``_total``.
    """
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        if kind == "counter":
            names |= {name, name.removesuffix("_total") + "_total"}
        elif kind in ("histogram", "gaugehistogram"):
            names |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
        elif kind == "summary":
            names |= {name, name + "_sum", name + "_count"}
        else:
            names.add(name)
    return names


# Series Prometheus adds to every scraped target itself.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added"}


def recorded_metric_names() -> set[str]:
    return {rule["record"] for path in RULES_DIR.glob("*.yml") for group in load_yaml(path)["groups"]
            for rule in group["rules"] if "record" in rule}


@pytest.fixture(scope="module")
def declared_metric_names() -> set[str]:
    """The families the services declare, as their /metrics lists them (servicers imported here;
    tests/unit/test_grafana_dashboards.py compares with live processes)."""
    import importlib

    from prometheus_client import REGISTRY, generate_latest

    for spec in SERVICES:
        importlib.import_module(f"{spec.module}.servicer")
    return exported_metric_names(generate_latest(REGISTRY).decode())


def test_promql_metric_names_finds_metrics_only():
    expr = """
      histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{grpc_type=~"(?i)unary", le!="x_y"}[$__rate_interval])))
        / ignoring (grpc_code) group_left
      sum without (instance) (b_total offset 5m) > 1e3 and on (job) c:d:rate5m == bool 0 or vector(0)
    """
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c:d:rate5m"}


def test_rules_read_only_metrics_the_services_export(declared_metric_names):
    assert {"grpc_server_handled_total", "neuromesh_simulation_synaptic_events_total",
            "neuromesh_segmentation_voxels_total"} <= declared_metric_names
    known = declared_metric_names | recorded_metric_names() | SCRAPE_SERIES
    for path in RULES_DIR.glob("*.yml"):
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                unknown = promql_metric_names(rule["expr"]) - known
                assert not unknown, f"{path.name} {rule.get('record') or rule.get('alert')}: no such metric {unknown}"
    # and the check would notice a misspelt one
    assert promql_metric_names("rate(neuromesh_simulation_synaptic_event_total[5m])") - known


PROMTOOL_RULE_TESTS = """
rule_files:
  - {grpc}
  - {throughput}
evaluation_interval: 1m
tests:
  # Label values as services/common/metrics.py spells them (grpc_type="UNARY", grpc_code="INTERNAL").
  # A service that fails 20% of 10 calls per second through its own fault fires the error-rate
  # alert; one that fails only through its callers (INVALID_ARGUMENT) does not.
  - interval: 1m
    input_series:
      - series: 'grpc_server_handled_total{{job="decoding",grpc_type="UNARY",grpc_service="s",grpc_method="M",grpc_code="OK"}}'
        values: '0+480x30'
      - series: 'grpc_server_handled_total{{job="decoding",grpc_type="UNARY",grpc_service="s",grpc_method="M",grpc_code="INTERNAL"}}'
        values: '0+120x30'
      - series: 'grpc_server_handled_total{{job="reduction",grpc_type="UNARY",grpc_service="s",grpc_method="M",grpc_code="OK"}}'
        values: '0+480x30'
      - series: 'grpc_server_handled_total{{job="reduction",grpc_type="UNARY",grpc_service="s",grpc_method="M",grpc_code="INVALID_ARGUMENT"}}'
        values: '0+120x30'
      # Unary calls that take 2.5-5 s fire the latency alert; a streaming call as slow does not.
      - series: 'grpc_server_handling_seconds_bucket{{job="simulation",grpc_type="UNARY",grpc_service="s",grpc_method="Step",le="2.5"}}'
        values: '0x30'
      - series: 'grpc_server_handling_seconds_bucket{{job="simulation",grpc_type="UNARY",grpc_service="s",grpc_method="Step",le="5"}}'
        values: '0+60x30'
      - series: 'grpc_server_handling_seconds_bucket{{job="simulation",grpc_type="UNARY",grpc_service="s",grpc_method="Step",le="+Inf"}}'
        values: '0+60x30'
      - series: 'grpc_server_handling_seconds_bucket{{job="decoding",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Fit",le="2.5"}}'
        values: '0x30'
      - series: 'grpc_server_handling_seconds_bucket{{job="decoding",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Fit",le="+Inf"}}'
        values: '0+60x30'
      - series: 'up{{job="decoding",instance="decoding:9151"}}'
        values: '1x30'
      - series: 'up{{job="reduction",instance="reduction:9152"}}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: NeuroMeshHighServerErrorRate
        exp_alerts:
          - exp_labels: {{job: decoding, severity: warning}}
            exp_annotations:
              summary: "decoding: 20% of RPCs fail through the server's fault"
              description: "More than 5% of the RPCs of decoding ended UNKNOWN, INTERNAL, DATA_LOSS or UNAVAILABLE over 10 minutes."
      - eval_time: 25m
        alertname: NeuroMeshServiceDown
        exp_alerts:
          - exp_labels: {{job: reduction, instance: "reduction:9152", severity: critical}}
            exp_annotations:
              summary: "reduction is not answering /metrics on reduction:9152"
              description: "Prometheus could not scrape reduction:9152 for 2 minutes: the service is down, restarting or unreachable."
      - eval_time: 25m
        alertname: NeuroMeshSlowUnaryCalls
        exp_alerts:
          - exp_labels: {{job: simulation, grpc_type: UNARY, grpc_service: s, grpc_method: Step, severity: warning}}
            exp_annotations:
              summary: "simulation Step: p99 latency 4.975s"
              description: "Unary calls to s/Step took longer than 2.5 s at the 99th percentile for 15 minutes."
      # 4xx-like codes are the callers' fault: nothing about them fires
      - eval_time: 25m
        alertname: NeuroMeshRequestsRefusedAsTooLarge
        exp_alerts: []
    promql_expr_test:
      - expr: job:grpc_server_server_errors:ratio_rate5m
        eval_time: 25m
        exp_samples:
          - labels: 'job:grpc_server_server_errors:ratio_rate5m{{job="decoding"}}'
            value: 0.2
          - labels: 'job:grpc_server_server_errors:ratio_rate5m{{job="reduction"}}'
            value: 0
      # the ratio by code covers every code, OK included, and sums to 1 per service
      - expr: job_grpc_code:grpc_server_handled:ratio_rate5m{{job="reduction"}}
        eval_time: 25m
        exp_samples:
          - labels: 'job_grpc_code:grpc_server_handled:ratio_rate5m{{job="reduction",grpc_code="OK"}}'
            value: 0.8
          - labels: 'job_grpc_code:grpc_server_handled:ratio_rate5m{{job="reduction",grpc_code="INVALID_ARGUMENT"}}'
            value: 0.2
      # percentiles of every call type, labelled by it: the streaming Fit's calls all took over
      # 2.5 s, the highest finite bound, which histogram_quantile then reports
      - expr: job_grpc_type_method:grpc_server_handling_seconds:p50_rate5m{{grpc_type="SERVER_STREAM"}}
        eval_time: 25m
        exp_samples:
          - labels: 'job_grpc_type_method:grpc_server_handling_seconds:p50_rate5m{{job="decoding",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Fit"}}'
            value: 2.5
      - expr: job_grpc_type_method:grpc_server_handling_seconds:p95_rate5m{{grpc_method="Step"}}
        eval_time: 25m
        exp_samples:
          - labels: 'job_grpc_type_method:grpc_server_handling_seconds:p95_rate5m{{job="simulation",grpc_type="UNARY",grpc_service="s",grpc_method="Step"}}'
            value: 4.875

  # Refused as too large: 20% RESOURCE_EXHAUSTED is not the server's fault, but is worth a note.
  - interval: 1m
    input_series:
      - series: 'grpc_server_handled_total{{job="segmentation",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Segment",grpc_code="OK"}}'
        values: '0+48x30'
      - series: 'grpc_server_handled_total{{job="segmentation",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Segment",grpc_code="RESOURCE_EXHAUSTED"}}'
        values: '0+12x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: NeuroMeshRequestsRefusedAsTooLarge
        exp_alerts:
          - exp_labels: {{job: segmentation, severity: info}}
            exp_annotations:
              summary: "segmentation: 20% of RPCs refused RESOURCE_EXHAUSTED"
              description: "More than 10% of the RPCs of segmentation were refused as too large for 15 minutes: raise NEUROMESH_MAX_INPUT_BYTES and the memory limit, or split the inputs."
      - eval_time: 25m
        alertname: NeuroMeshHighServerErrorRate
        exp_alerts: []

  # A service whose every target disappears (Kubernetes: no ready pod in DNS) has no `up == 0`:
  # connectomics is scraped for 10 minutes, then not at all; decoding stays.
  - interval: 1m
    input_series:
      - series: 'up{{job="connectomics",instance="10.0.0.7:9155"}}'
        values: '1x10'
      - series: 'up{{job="decoding",instance="10.0.0.8:9151"}}'
        values: '1x30'
    alert_rule_test:
      - eval_time: 12m
        alertname: NeuroMeshServiceVanished
        exp_alerts: []
      - eval_time: 22m
        alertname: NeuroMeshServiceVanished
        exp_alerts:
          - exp_labels: {{job: connectomics, severity: critical}}
            exp_annotations:
              summary: "connectomics has no target left to scrape"
              description: "Prometheus scraped connectomics in the last 6 hours and finds no instance of it now: no pod is ready, or its Service selects none."

  # Throughput in base units per second, summed over replicas: two simulation pods deliver 50 and
  # 150 synaptic events a second; segmentation predicts 10 voxels/s and watershed none.
  - interval: 1m
    input_series:
      - series: 'neuromesh_simulation_synaptic_events_total{{job="simulation",instance="a"}}'
        values: '0+3000x30'
      - series: 'neuromesh_simulation_synaptic_events_total{{job="simulation",instance="b"}}'
        values: '0+9000x30'
      - series: 'neuromesh_simulation_neuron_steps_total{{job="simulation",instance="a"}}'
        values: '0+6000x30'
      - series: 'neuromesh_simulation_runs_in_progress{{job="simulation",instance="a"}}'
        values: '1x30'
      - series: 'neuromesh_segmentation_voxels_total{{job="segmentation",instance="a",stage="predict"}}'
        values: '0+600x30'
      - series: 'neuromesh_segmentation_voxels_total{{job="segmentation",instance="a",stage="watershed"}}'
        values: '0x30'
      - series: 'neuromesh_segmentation_block_duration_seconds_bucket{{job="segmentation",instance="a",stage="predict",le="1"}}'
        values: '0x30'
      - series: 'neuromesh_segmentation_block_duration_seconds_bucket{{job="segmentation",instance="a",stage="predict",le="5"}}'
        values: '0+60x30'
      - series: 'neuromesh_segmentation_block_duration_seconds_bucket{{job="segmentation",instance="a",stage="predict",le="+Inf"}}'
        values: '0+60x30'
      - series: 'neuromesh_segmentation_block_duration_seconds_sum{{job="segmentation",instance="a",stage="predict"}}'
        values: '0+120x30'
      - series: 'neuromesh_segmentation_block_duration_seconds_count{{job="segmentation",instance="a",stage="predict"}}'
        values: '0+60x30'
      - series: 'neuromesh_segmentation_blocks_in_progress{{job="segmentation",instance="a"}}'
        values: '1x30'
      - series: 'neuromesh_connectomics_streamlines_total{{job="connectomics",instance="a"}}'
        values: '0+1200x30'
      # stuck: a run in progress whose neuron steps stopped growing; blocks that never finish
      - series: 'neuromesh_simulation_runs_in_progress{{job="simulation-stuck",instance="a"}}'
        values: '1x30'
      - series: 'neuromesh_simulation_neuron_steps_total{{job="simulation-stuck",instance="a"}}'
        values: '500x30'
      - series: 'neuromesh_segmentation_blocks_in_progress{{job="segmentation-stuck",instance="a"}}'
        values: '2x30'
      - series: 'neuromesh_segmentation_voxels_total{{job="segmentation-stuck",instance="a",stage="predict"}}'
        values: '4096x30'
    promql_expr_test:
      - expr: job:neuromesh_simulation_synaptic_events:rate5m{{job="simulation"}}
        eval_time: 20m
        exp_samples:
          - labels: 'job:neuromesh_simulation_synaptic_events:rate5m{{job="simulation"}}'
            value: 200
      - expr: job:neuromesh_simulation_neuron_steps:rate5m{{job="simulation"}}
        eval_time: 20m
        exp_samples:
          - labels: 'job:neuromesh_simulation_neuron_steps:rate5m{{job="simulation"}}'
            value: 100
      - expr: job_stage:neuromesh_segmentation_voxels:rate5m{{job="segmentation"}}
        eval_time: 20m
        exp_samples:
          - labels: 'job_stage:neuromesh_segmentation_voxels:rate5m{{job="segmentation",stage="predict"}}'
            value: 10
          - labels: 'job_stage:neuromesh_segmentation_voxels:rate5m{{job="segmentation",stage="watershed"}}'
            value: 0
      - expr: job_stage:neuromesh_segmentation_block_duration_seconds:mean_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'job_stage:neuromesh_segmentation_block_duration_seconds:mean_rate5m{{job="segmentation",stage="predict"}}'
            value: 2
      - expr: job_stage:neuromesh_segmentation_block_duration_seconds:p95_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'job_stage:neuromesh_segmentation_block_duration_seconds:p95_rate5m{{job="segmentation",stage="predict"}}'
            value: 4.8
      - expr: job:neuromesh_connectomics_streamlines:rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'job:neuromesh_connectomics_streamlines:rate5m{{job="connectomics"}}'
            value: 20
    alert_rule_test:
      - eval_time: 25m
        alertname: NeuroMeshSimulationStalled
        exp_alerts:
          - exp_labels: {{job: simulation-stuck, severity: warning}}
            exp_annotations:
              summary: "simulation-stuck: simulations in progress but no neuron step simulated for 20 minutes"
              description: "simulation-stuck reports runs in progress while neuromesh_simulation_neuron_steps_total has not grown for 20 minutes: a run is stuck."
      - eval_time: 25m
        alertname: NeuroMeshSegmentationStalled
        exp_alerts:
          - exp_labels: {{job: segmentation-stuck, severity: warning}}
            exp_annotations:
              summary: "segmentation-stuck: blocks in progress but no voxel processed for 20 minutes"
              description: "segmentation-stuck reports blocks in progress while neuromesh_segmentation_voxels_total has not grown for 20 minutes: a block is stuck."

  # Calls started and not finished, per method; a method whose first call still runs has no
  # handled series at all and counts too.
  - interval: 1m
    input_series:
      - series: 'grpc_server_started_total{{job="simulation",instance="a",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Simulate"}}'
        values: '5x10'
      - series: 'grpc_server_handled_total{{job="simulation",instance="a",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Simulate",grpc_code="OK"}}'
        values: '2x10'
      - series: 'grpc_server_handled_total{{job="simulation",instance="a",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Simulate",grpc_code="CANCELLED"}}'
        values: '1x10'
      - series: 'grpc_server_started_total{{job="segmentation",instance="a",grpc_type="SERVER_STREAM",grpc_service="s",grpc_method="Segment"}}'
        values: '1x10'
    promql_expr_test:
      - expr: job_grpc_method:grpc_server_in_flight:sum
        eval_time: 5m
        exp_samples:
          - labels: 'job_grpc_method:grpc_server_in_flight:sum{{job="simulation",grpc_service="s",grpc_method="Simulate"}}'
            value: 2
          - labels: 'job_grpc_method:grpc_server_in_flight:sum{{job="segmentation",grpc_service="s",grpc_method="Segment"}}'
            value: 1
"""


def run_rule_tests(tmp_path: Path, text: str, rules_dir: Path = RULES_DIR) -> subprocess.CompletedProcess:
    tests = tmp_path / "rules_test.yml"
    tests.write_text(text.format(grpc=rules_dir / "grpc.yml", throughput=rules_dir / "throughput.yml"))
    return subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)


def test_promtool_alert_rules_fire_on_synthetic_series(tmp_path):
    assert {p.name for p in RULES_DIR.glob("*.yml")} == {"grpc.yml", "throughput.yml"}, \
        "a new rules file needs its series here"
    result = run_rule_tests(tmp_path, PROMTOOL_RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_fail_on_a_wrong_rule(tmp_path):
    # The unit tests test: a throughput rule that forgets to sum over replicas is caught.
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "grpc.yml").write_text((RULES_DIR / "grpc.yml").read_text())
    (broken / "throughput.yml").write_text((RULES_DIR / "throughput.yml").read_text().replace(
        "sum by (job) (rate(neuromesh_simulation_synaptic_events_total[5m]))",
        "max by (job) (rate(neuromesh_simulation_synaptic_events_total[5m]))"))
    result = run_rule_tests(tmp_path, PROMTOOL_RULE_TESTS, broken)
    assert result.returncode != 0 and "synaptic_events" in result.stdout + result.stderr


# ---------------------------------------------------------------------------- Dockerfile

def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines may also sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


# Both images: the CPU one every service runs, and the CUDA variant of simulation and segmentation.
DOCKERFILES = [DOCKERFILE, DOCKERFILE_CUDA]
# Debian/Ubuntu packages a runtime stage may install: runtime libraries, no compilers. The CUDA
# image's base has no Python of its own, so it installs the interpreter its venv was made with.
RUNTIME_PACKAGES = {DOCKERFILE: {"libgomp1"}, DOCKERFILE_CUDA: {"libgomp1", "python3"}}


def dockerfile_stages(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """The ARG defaults declared before the first FROM, and the instructions of each stage."""
    global_args, stages = {}, []
    for keyword, args in parse_dockerfile(path.read_text()):
        if keyword == "FROM":
            stages.append([])
        if not stages:
            if keyword == "ARG" and "=" in args:
                name, value = args.split("=", 1)
                global_args[name] = value.strip('"')
            continue
        stages[-1].append((keyword, args))
    return global_args, stages


def base_image(from_args: str, global_args: dict[str, str]) -> str:
    image = from_args.split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), image)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_with_pinned_bases(path):
    global_args, stages = dockerfile_stages(path)
    assert len(stages) >= 2, "build and runtime should be separate stages"
    bases = {base_image(stage[0][1], global_args) for stage in stages}
    assert len(bases) == 1, f"builder and runtime differ ({bases}): the venv would not find its interpreter"
    for image in bases:
        assert "$" not in image, f"FROM {image}: an ARG without a default"
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"FROM {image} is not pinned to a release"
        assert re.search(r"\d", tag), f"FROM {image}: tag {tag} names no version"
    for keyword, args in parse_dockerfile(path.read_text()):
        assert not re.search(r":latest\b", args), f"{keyword} {args}: uses the moving tag `latest`"


def runtime_problems(path: Path) -> list[str]:
    """How the runtime stage of a Dockerfile breaks the image conventions (empty when it keeps them)."""
    _, stages = dockerfile_stages(path)
    runtime, problems = stages[-1], []
    keywords = [k for k, _ in runtime]
    users = [args for k, args in runtime if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage runs as root")
    elif "CMD" in keywords and keywords.index("USER") > keywords.index("CMD"):
        problems.append("USER comes after CMD")
    healthchecks = [args for k, args in runtime if k == "HEALTHCHECK"]
    if not healthchecks or "services.common.healthcheck" not in healthchecks[-1]:
        problems.append("no gRPC HEALTHCHECK")
    if ("STOPSIGNAL", "SIGTERM") not in runtime:
        problems.append("no STOPSIGNAL SIGTERM")
    if "EXPOSE" not in keywords:
        problems.append("no EXPOSE")
    cmds = [args for k, args in runtime if k == "CMD"]
    if not cmds or "python -m" not in cmds[-1] or "services.${NEUROMESH_SERVICE}" not in cmds[-1]:
        problems.append("CMD does not start services.${NEUROMESH_SERVICE}")
    elif "exec python" not in cmds[-1]:
        problems.append("without exec the shell is PID 1 and SIGTERM never reaches Python")
    if not any(k == "ARG" and args.startswith("NEUROMESH_SERVICE") for k, args in runtime):
        problems.append("no NEUROMESH_SERVICE build argument")
    if not any(k == "COPY" and args.startswith("--from=") for k, args in runtime):
        problems.append("the runtime stage should take the built environment from the builder")
    # No compilers or pip installs in the image that runs; packages only from a short list of
    # runtime libraries.
    runs = " ".join(args for k, args in runtime if k == "RUN")
    for tool in ("build-essential", "gcc", "g++", "pip install", "-dev"):
        if tool in runs:
            problems.append(f"the runtime stage runs `{tool}`")
    for installed in re.findall(r"apt-get install ((?:-\S+\s+)*)([^&]+)", runs):
        extra = set(installed[1].replace("\\", " ").split()) - RUNTIME_PACKAGES[path]
        if extra:
            problems.append(f"the runtime stage installs {extra}")
    return problems


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runtime_stage_is_non_root_health_checked_and_drains(path):
    assert runtime_problems(path) == []


def test_dockerfile_runtime_check_rejects_a_root_image_with_a_compiler(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root")
                      .replace("--no-install-recommends libgomp1", "--no-install-recommends libgomp1 gcc"))
    RUNTIME_PACKAGES[broken] = RUNTIME_PACKAGES[DOCKERFILE]
    problems = " ".join(runtime_problems(broken))
    assert "root" in problems and "gcc" in problems


def pinned_torch() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml should pin torch exactly"
    return pins[0].split("==")[1].strip()


def builder_instructions(path: Path) -> list[tuple[str, str]]:
    _, stages = dockerfile_stages(path)
    return [i for stage in stages[:-1] for i in stage]


def build_arg(path: Path, name: str) -> str:
    return next(args.split("=", 1)[1] for k, args in builder_instructions(path)
                if k == "ARG" and args.startswith(f"{name}="))


def torch_installed_first(path: Path) -> list[str]:
    """The RUN lines installing torch, checked to come before the project's install."""
    builder = builder_instructions(path)
    assert build_arg(path, "TORCH_VERSION") == pinned_torch(), \
        f"{path.name} installs torch {build_arg(path, 'TORCH_VERSION')}, pyproject pins {pinned_torch()}"
    torch_installs = [args for k, args in builder if k == "RUN" and "torch==" in args]
    assert torch_installs, "no RUN installs torch explicitly"
    # torch installed before the project, so the project's `torch==` pin finds it satisfied.
    runs = [args for k, args in builder if k == "RUN"]
    project_install = next(i for i, args in enumerate(runs) if "pip install /wheels" in args)
    assert runs.index(torch_installs[0]) < project_install
    return torch_installs


def test_dockerfile_takes_torch_from_the_cpu_index_at_the_project_pin():
    torch_installs = torch_installed_first(DOCKERFILE)
    assert all(f"--index-url {TORCH_CPU_INDEX}" in args for args in torch_installs), \
        "torch must come from the PyTorch CPU index (PyPI's build pulls CUDA)"


def test_cuda_dockerfile_takes_the_cuda_build_matching_its_base():
    torch_installs = torch_installed_first(DOCKERFILE_CUDA)
    cuda_tag = build_arg(DOCKERFILE_CUDA, "TORCH_CUDA")
    assert re.fullmatch(r"cu\d{3,4}", cuda_tag)
    for args in torch_installs:
        assert "--index-url https://download.pytorch.org/whl/${TORCH_CUDA}" in args
        # the local version exists on the PyTorch index only: the extra index cannot swap builds
        assert '"torch==${TORCH_VERSION}+${TORCH_CUDA}"' in args
    global_args, stages = dockerfile_stages(DOCKERFILE_CUDA)
    image = base_image(stages[0][0][1], global_args)
    assert image.startswith("nvidia/cuda:")
    major_minor = re.match(r"nvidia/cuda:(\d+)\.(\d+)\.", image).groups()
    assert cuda_tag == "cu" + "".join(major_minor), f"torch {cuda_tag} on a CUDA {'.'.join(major_minor)} base"
    # the import check in the builder asserts the CUDA build, not the CPU one
    assert any("torch.version.cuda" in args and "startswith('" + ".".join(major_minor) + "')" in args
               for k, args in builder_instructions(DOCKERFILE_CUDA) if k == "RUN")
    # built for the services that use a GPU, under the tags the Kubernetes gpu component runs
    for name in ("simulation", "segmentation"):
        spec = next(s for s in SERVICES if s.name == name)
        assert (f"--build-arg NEUROMESH_SERVICE={name} --build-arg NEUROMESH_GRPC_PORT={spec.grpc_port} "
                f"--build-arg NEUROMESH_METRICS_PORT={spec.metrics_port} -t neuromesh/{name}:0.1.0-cuda") in \
            " ".join(DOCKERFILE_CUDA.read_text().replace("#", " ").replace("\\", " ").split())


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_existing_sources_that_dockerignore_keeps(path):
    ignored = {p.rstrip("/") for p in dockerignore_patterns() if not p.startswith("!")}
    for keyword, args in parse_dockerfile(path.read_text()):
        if keyword != "COPY" or args.startswith("--from="):
            continue
        *sources, _ = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert source.split("/")[0] not in ignored, f"COPY {source}: excluded by .dockerignore"
            if "*" not in source:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    # the project's packages all reach the image
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = " ".join(args for k, args in parse_dockerfile(path.read_text()) if k == "COPY")
    for pattern in packages["include"]:
        assert re.search(rf"\b{pattern.rstrip('*')}\b", copied), f"package {pattern} is not copied"


def test_dockerignore_keeps_local_state_out_of_the_context():
    patterns = set(dockerignore_patterns())
    for required in (".git", ".venv", "**/__pycache__", ".pytest_cache", ".neuromesh", "bench/results", ".env"):
        assert required in patterns, f".dockerignore should exclude {required}"


# ---------------------------------------------------------------------------- healthcheck CLI

HEALTH_NAME = "neuromesh.decoding.v1.DecodingService"


@pytest.fixture
def health_server():
    """A real gRPC server with the library health servicer on a free loopback port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_healthcheck_unreachable_exits_1_quickly():
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "services.common.healthcheck",
                             "--address", "127.0.0.1:1", "--service", HEALTH_NAME],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNREACHABLE" in result.stdout
    assert time.monotonic() - started < 10


def test_healthcheck_exit_code_follows_serving_status(health_server, capsys):
    servicer, address = health_server
    servicer.set(HEALTH_NAME, health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.main(["--address", address, "--service", HEALTH_NAME]) == 0
    servicer.set(HEALTH_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert healthcheck.main(["--address", address, "--service", HEALTH_NAME]) == 1
    # a name the server does not know answers NOT_FOUND: unhealthy, not an exception
    assert healthcheck.main(["--address", address, "--service", "no.such.Service"]) == 1
    assert "NOT_SERVING" in capsys.readouterr().out


def test_healthcheck_defaults_come_from_the_container_environment(health_server):
    # As in the image: no arguments, NEUROMESH_SERVICE and NEUROMESH_GRPC_PORT set, the server
    # bound to every interface.
    servicer, address = health_server
    spec = next(s for s in SERVICES if s.name == "decoding")
    servicer.set(spec.health_service, health_pb2.HealthCheckResponse.SERVING)
    env = {**os.environ, "NEUROMESH_SERVICE": spec.name, "NEUROMESH_GRPC_HOST": "0.0.0.0",
           "NEUROMESH_GRPC_PORT": address.rsplit(":", 1)[1]}
    result = subprocess.run([sys.executable, "-m", "services.common.healthcheck"],
                            capture_output=True, text=True, timeout=30, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert spec.health_service in result.stdout


def test_healthcheck_default_address_and_service():
    assert healthcheck.default_address({}) == "127.0.0.1:50051"
    assert healthcheck.default_address({"NEUROMESH_GRPC_HOST": "::", "NEUROMESH_GRPC_PORT": "7"}) == "127.0.0.1:7"
    assert healthcheck.default_address({"NEUROMESH_GRPC_HOST": "10.0.0.5"}) == "10.0.0.5:50051"
    assert healthcheck.default_address({"NEUROMESH_GRPC_HOST": "fd00::5"}) == "[fd00::5]:50051"
    assert healthcheck.default_service({}) == ""
    for spec in SERVICES:
        assert healthcheck.default_service({"NEUROMESH_SERVICE": spec.name}) == spec.health_service
    assert healthcheck.main(["--address", "127.0.0.1:1", "--timeout", "0.5"]) == 1
