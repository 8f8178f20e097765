"""The deployment files, checked without a container engine (none runs on the build machines).

- docker-compose.yml validates against the Compose Specification JSON schema (vendored by
  ``check-jsonschema``), and every service of :func:`discover_services` is in it with its
  ports, healthcheck and dependencies, and in prometheus.yml as a scrape target; so is the
  gateway, whose environment the gateway's own settings classes load;
- prometheus.yml and the rules pass ``promtool check`` (Debian package ``prometheus``), and the
  alerting rules fire on synthetic series (``promtool test rules``);
- the Dockerfile is multi-stage, pinned, non-root, health-checked, and takes torch from the CPU
  index; its gateway target runs ``python -m gateway``, and its HEALTHCHECK command, run against
  a real HTTP server, is healthy for 200 on /healthz only;
- the healthcheck CLI the images run exits 0 only for SERVING.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import make_url
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


# ---------------------------------------------------------------------------- the gateway in compose

def env_example() -> dict[str, str]:
    return {line.split("=", 1)[0].strip(): line.split("=", 1)[1].strip()
            for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.lstrip().startswith("#")}


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}`` and ``$$``.

    >>> interpolate("a${X}b${Y:-y}c${Z:?set Z}$$d", {"X": "1", "Z": "3"})
    'a1byc3$d'
    """
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = variables.get(name)
        if operator in (":-", "-"):
            return value if value not in (None, "") or (operator == "-" and value is not None) else argument
        if operator in (":?", "?") and value in (None, ""):
            raise KeyError(f"{name}: {argument}")
        return value or ""
    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, text)


def gateway_environment(compose: dict) -> dict[str, str]:
    """The gateway container's environment, as compose gives it with the values of .env.example."""
    return {k: interpolate(v, env_example()) for k, v in environment(compose["services"]["gateway"]).items()}


def compose_gateway_problems(compose: dict) -> list[str]:
    """What is wrong with the gateway service of a compose file (empty when nothing is)."""
    services = compose["services"]
    gateway = services.get("gateway")
    if gateway is None:
        return ["docker-compose.yml has no gateway service"]
    problems = []
    build = gateway.get("build") or {}
    if build.get("dockerfile") != "deploy/docker/Dockerfile" or build.get("target") != "gateway":
        problems.append(f"the gateway should build deploy/docker/Dockerfile --target gateway, not {build}")
    if not str(gateway.get("image", "")).startswith("neuromesh/gateway:"):
        problems.append(f"image {gateway.get('image')}")
    if 8080 not in container_ports(gateway):
        problems.append("the gateway does not publish its HTTP port 8080")
    expected = {"postgres": "service_healthy", OBJECT_STORE: "service_healthy",
                BUCKET_JOB: "service_completed_successfully", **{s.name: "service_healthy" for s in SERVICES}}
    depends = gateway.get("depends_on") or {}
    for name, condition in expected.items():
        if (depends.get(name) or {}).get("condition") != condition:
            problems.append(f"the gateway should depend on {name} being {condition}")

    raw, env = environment(gateway), gateway_environment(compose)
    url = make_url(env.get("NEUROMESH_GATEWAY_DATABASE_URL", "sqlite:///none.db"))
    postgres = {k: interpolate(v, env_example()) for k, v in environment(services["postgres"]).items()}
    if (url.get_backend_name(), url.host, url.port) != ("postgresql", "postgres", 5432):
        problems.append(f"the database URL {url} is not the compose PostgreSQL (postgres:5432)")
    if url.password is not None:
        problems.append("the database URL carries a password (libpq's PGPASSWORD takes it, unescaped)")
    if (url.username, url.database) != (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]):
        problems.append(f"the database URL logs in as {url.username} to {url.database}, PostgreSQL is set up "
                        f"for {postgres['POSTGRES_USER']} and {postgres['POSTGRES_DB']}")
    if not raw.get("PGPASSWORD", "").startswith("${POSTGRES_PASSWORD:?"):
        problems.append("PGPASSWORD should be ${POSTGRES_PASSWORD:?...} from .env, with no default")
    try:
        endpoints = json.loads(env.get("NEUROMESH_GATEWAY_ENDPOINTS", ""))
    except ValueError:
        endpoints = None
    wanted = {s.name: f"{s.name}:{s.grpc_port}" for s in SERVICES}
    if endpoints != wanted:
        problems.append(f"NEUROMESH_GATEWAY_ENDPOINTS {endpoints} should be {wanted}")
    if "NEUROMESH_GATEWAY_TOKENS" in env:
        problems.append("tokens come from the mounted file, not from the environment")
    secret_names = [s if isinstance(s, str) else s.get("source") for s in gateway.get("secrets", [])]
    tokens_file = env.get("NEUROMESH_GATEWAY_TOKENS_FILE", "")
    if not (tokens_file.startswith("/run/secrets/") and tokens_file.rsplit("/", 1)[1] in secret_names
            and "file" in (compose.get("secrets") or {}).get(tokens_file.rsplit("/", 1)[1], {})):
        problems.append(f"NEUROMESH_GATEWAY_TOKENS_FILE={tokens_file!r} is not a file secret mounted read-only")
    published = [interpolate(str(p), env_example()).split(":") for p in services[OBJECT_STORE]["ports"]]
    minio_host_port = next(p[-2] for p in published if p[-1] == "9000")
    if env.get("NEUROMESH_GATEWAY_S3_PUBLIC_ENDPOINT") != f"localhost:{minio_host_port}":
        problems.append("presigned URLs should be signed for localhost:<MinIO's published S3 port>")
    grace = float(env.get("NEUROMESH_GATEWAY_GRACEFUL_SHUTDOWN_S", 5)) + float(env.get("NEUROMESH_GATEWAY_DRAIN_S", 10))
    if float(str(gateway.get("stop_grace_period", "10s")).rstrip("s")) <= grace:
        problems.append(f"stop_grace_period {gateway.get('stop_grace_period')} does not cover {grace} s of drain")
    if (gateway.get("healthcheck") or {}).get("test") != ["CMD", *gateway_healthcheck_command()]:
        problems.append("the healthcheck is not the image's (GET /healthz)")
    return problems


def test_gateway_is_in_compose(compose):
    assert compose_gateway_problems(compose) == []


def test_compose_gateway_check_rejects_a_broken_gateway(compose):
    broken = copy.deepcopy(compose)
    gateway = broken["services"]["gateway"]
    del gateway["depends_on"]["segmentation"]
    gateway["depends_on"]["postgres"]["condition"] = "service_started"
    env = gateway["environment"]
    env["NEUROMESH_GATEWAY_DATABASE_URL"] = "postgresql+psycopg://neuromesh:${POSTGRES_PASSWORD}@postgres:5432/neuromesh_jobs"
    env["NEUROMESH_GATEWAY_ENDPOINTS"] = '{"decoding": "localhost:50051"}'
    env["NEUROMESH_GATEWAY_TOKENS"] = '{"lab-a": "a-plain-token"}'
    env["NEUROMESH_GATEWAY_S3_PUBLIC_ENDPOINT"] = "minio:9000"
    gateway["stop_grace_period"] = "5s"
    gateway["healthcheck"] = broken["services"]["decoding"]["healthcheck"]
    problems = " ".join(compose_gateway_problems(broken))
    for expected in ("segmentation", "postgres being service_healthy", "carries a password", "ENDPOINTS",
                     "not from the environment", "localhost", "stop_grace_period", "/healthz"):
        assert expected in problems, f"{expected!r} not reported in: {problems}"
    del broken["services"]["gateway"]
    assert compose_gateway_problems(broken) == ["docker-compose.yml has no gateway service"]


def test_compose_gateway_settings_load_with_the_gateways_own_validation(compose, monkeypatch):
    # What compose hands the container, read by the gateway's own settings classes (the ones
    # `python -m gateway` loads, which stop it with status 2 on a bad value).
    from gateway.jobs.settings import load_job_settings
    from gateway.settings import load_gateway_settings
    from services.common.settings import load_settings

    for name in list(os.environ):
        if name.startswith("NEUROMESH_"):
            monkeypatch.delenv(name)
    for name, value in gateway_environment(compose).items():
        monkeypatch.setenv(name, value)
    common, jobs, gateway = load_settings(), load_job_settings(), load_gateway_settings()
    assert common.s3_endpoint == f"{OBJECT_STORE}:9000" and common.bucket == env_example()["NEUROMESH_BUCKET"]
    assert (gateway.http_host, gateway.http_port) == ("0.0.0.0", 8080)
    assert gateway.endpoints == {s.name: [f"{s.name}:{s.grpc_port}"] for s in SERVICES}
    assert gateway.tokens == {} and str(gateway.tokens_file) == "/run/secrets/gateway-tokens"
    assert gateway.s3_public_endpoint == "localhost:9000" and gateway.s3_public_secure is False
    assert make_url(jobs.database_url).render_as_string(hide_password=False) == \
        "postgresql+psycopg://neuromesh@postgres:5432/neuromesh_jobs"
    assert jobs.drain_s == float(env_example()["NEUROMESH_GATEWAY_DRAIN_S"])


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


def test_gateway_is_scraped_on_its_http_port(prometheus_config, compose):
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    job = jobs["gateway"]
    assert job.get("metrics_path", "/metrics") == "/metrics"      # the gateway serves it on the HTTP port
    (static,) = job["static_configs"]
    port = environment(compose["services"]["gateway"])["NEUROMESH_GATEWAY_HTTP_PORT"]
    assert static["targets"] == [f"gateway:{port}"]
    assert int(port) in container_ports(compose["services"]["gateway"])
    # The gateway's series have a `service` label of their own (the service a step called): a
    # target label of that name would push theirs to exported_service, and the rules by service
    # would see only "gateway". The same in the Kubernetes configuration.
    assert "service" not in static.get("labels", {})
    k8s_job = next(j for j in load_yaml(PROMETHEUS_K8S)["scrape_configs"] if j["job_name"] == "gateway")
    assert not [r for r in k8s_job.get("relabel_configs", []) if r.get("target_label") == "service"]


@pytest.mark.parametrize("config", [PROMETHEUS, PROMETHEUS_K8S], ids=lambda p: p.name)
def test_promtool_checks_config(config):
    result = subprocess.run([promtool(), "check", "config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rule files found" in result.stdout, "the config should load grpc.yml, throughput.yml and gateway.yml"


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
    prometheus_client's ``<family>_created`` gauges (creation times of labelled children) are left
    out: they appear only once a child exists, after a first call in that process, so they would
    make comparisons depend on test order, and no dashboard or rule reads them.
    """
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        if kind == "gauge" and name.endswith("_created"):
            continue
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


def declared_families() -> set[str]:
    """The families the services and the gateway declare, as their /metrics list them: the
    servicers imported and the gateway's metrics declared here, in this process
    (tests/unit/test_grafana_dashboards.py compares with live processes)."""
    import importlib

    from prometheus_client import REGISTRY, generate_latest

    from gateway.jobs.metrics import GatewayMetrics

    for spec in SERVICES:
        importlib.import_module(f"{spec.module}.servicer")
    GatewayMetrics()   # declares the neuromesh_gateway_* families (once per process)
    return exported_metric_names(generate_latest(REGISTRY).decode())


@pytest.fixture(scope="module")
def declared_metric_names() -> set[str]:
    return declared_families()


def test_promql_metric_names_finds_metrics_only():
    expr = """
      histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{grpc_type=~"(?i)unary", le!="x_y"}[$__rate_interval])))
        / ignoring (grpc_code) group_left
      sum without (instance) (b_total offset 5m) > 1e3 and on (job) c:d:rate5m == bool 0 or vector(0)
    """
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c:d:rate5m"}


def test_rules_read_only_metrics_the_services_export(declared_metric_names):
    assert {"grpc_server_handled_total", "neuromesh_simulation_synaptic_events_total",
            "neuromesh_segmentation_voxels_total", "neuromesh_gateway_step_duration_seconds_bucket",
            "neuromesh_gateway_runnable_steps", "neuromesh_gateway_http_requests_total"} <= declared_metric_names
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
  - {gateway}
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


# The gateway's rules (rules/gateway.yml), appended to the tests above (no str.format here: the
# braces are PromQL's). Label values as gateway/jobs/metrics.py spells them.
GATEWAY_RULE_TESTS = """\
  # Two replicas of the gateway (instances a and b) sharing one job store: the store-wide gauges
  # agree (max, not sum), the counters add up. 25% of the finished jobs fail; a second gateway
  # whose every job fails has finished only 3 in 30 minutes and does not alert.
  - interval: 1m
    input_series:
      - series: 'up{job="gateway",instance="a"}'
        values: '1x60'
      - series: 'up{job="gateway",instance="b"}'
        values: '1x60'
      - series: 'neuromesh_gateway_jobs_submitted_total{job="gateway",instance="a"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_jobs_submitted_total{job="gateway",instance="b"}'
        values: '0+30x60'
      - series: 'neuromesh_gateway_jobs_finished_total{job="gateway",instance="a",state="succeeded"}'
        values: '0+45x60'
      - series: 'neuromesh_gateway_jobs_finished_total{job="gateway",instance="b",state="failed"}'
        values: '0+15x60'
      - series: 'neuromesh_gateway_jobs_finished_total{job="gateway-few",instance="a",state="failed"}'
        values: '0+0.1x60'
      - series: 'neuromesh_gateway_jobs{job="gateway",instance="a",state="running"}'
        values: '3x60'
      - series: 'neuromesh_gateway_jobs{job="gateway",instance="b",state="running"}'
        values: '3x60'
      - series: 'neuromesh_gateway_running_steps{job="gateway",instance="a"}'
        values: '4x60'
      - series: 'neuromesh_gateway_running_steps{job="gateway",instance="b"}'
        values: '2x60'
      # a queue of 25 that does not shrink fires; one of 200 worked down by 2 a minute does not
      - series: 'neuromesh_gateway_runnable_steps{job="gateway",instance="a"}'
        values: '25x60'
      - series: 'neuromesh_gateway_runnable_steps{job="gateway",instance="b"}'
        values: '25x60'
      - series: 'neuromesh_gateway_runnable_steps{job="gateway-sweep",instance="a"}'
        values: '200-2x60'
      # simulation steps: half take 30-60 s, half 60-120 s, one a second, on instance a; a quarter
      # of a step a second comes from the cache
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="simulation",outcome="succeeded",le="30"}'
        values: '0x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="simulation",outcome="succeeded",le="60"}'
        values: '0+30x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="simulation",outcome="succeeded",le="120"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="simulation",outcome="succeeded",le="+Inf"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_step_duration_seconds_count{job="gateway",instance="a",service="simulation",outcome="succeeded"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_steps_reused_total{job="gateway",instance="b",service="simulation"}'
        values: '0+15x60'
      # segmentation steps take 30-60 minutes (slow), and are retried after UNAVAILABLE; nothing
      # of segmentation comes from the cache
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="segmentation",outcome="succeeded",le="1800"}'
        values: '0x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="segmentation",outcome="succeeded",le="3600"}'
        values: '0+6x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="segmentation",outcome="succeeded",le="+Inf"}'
        values: '0+6x60'
      - series: 'neuromesh_gateway_step_duration_seconds_count{job="gateway",instance="a",service="segmentation",outcome="succeeded"}'
        values: '0+6x60'
      - series: 'neuromesh_gateway_step_duration_seconds_count{job="gateway",instance="a",service="segmentation",outcome="retried"}'
        values: '0+3x60'
      - series: 'neuromesh_gateway_step_retries_total{job="gateway",instance="a",service="segmentation",code="UNAVAILABLE"}'
        values: '0+3x60'
      - series: 'neuromesh_gateway_call_failovers_total{job="gateway",instance="b",service="segmentation"}'
        values: '0+3x60'
      # decoding steps as slow, but cancelled: not "slow steps"
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="decoding",outcome="cancelled",le="1800"}'
        values: '0x60'
      - series: 'neuromesh_gateway_step_duration_seconds_bucket{job="gateway",instance="a",service="decoding",outcome="cancelled",le="+Inf"}'
        values: '0+6x60'
      # HTTP: 10% of POST /v1/jobs answered 500; the readiness probe's 503s are not API requests
      - series: 'neuromesh_gateway_http_requests_total{job="gateway",instance="a",method="POST",route="/v1/jobs",status="202"}'
        values: '0+54x60'
      - series: 'neuromesh_gateway_http_requests_total{job="gateway",instance="a",method="POST",route="/v1/jobs",status="500"}'
        values: '0+6x60'
      - series: 'neuromesh_gateway_http_requests_total{job="gateway",instance="a",method="GET",route="/readyz",status="503"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_http_request_duration_seconds_bucket{job="gateway",instance="a",method="POST",route="/v1/jobs",le="0.1"}'
        values: '0+30x60'
      - series: 'neuromesh_gateway_http_request_duration_seconds_bucket{job="gateway",instance="a",method="POST",route="/v1/jobs",le="0.25"}'
        values: '0+60x60'
      - series: 'neuromesh_gateway_http_request_duration_seconds_bucket{job="gateway",instance="a",method="POST",route="/v1/jobs",le="+Inf"}'
        values: '0+60x60'
    promql_expr_test:
      - expr: job:neuromesh_gateway_jobs_submitted:rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_jobs_submitted:rate5m{job="gateway"}'
            value: 1.5
      - expr: job_state:neuromesh_gateway_jobs_finished:rate5m{job="gateway"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_state:neuromesh_gateway_jobs_finished:rate5m{job="gateway",state="succeeded"}'
            value: 0.75
          - labels: 'job_state:neuromesh_gateway_jobs_finished:rate5m{job="gateway",state="failed"}'
            value: 0.25
      - expr: job:neuromesh_gateway_jobs_failed:ratio_rate30m
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_jobs_failed:ratio_rate30m{job="gateway"}'
            value: 0.25
          - labels: 'job:neuromesh_gateway_jobs_failed:ratio_rate30m{job="gateway-few"}'
            value: 1
      - expr: job_state:neuromesh_gateway_jobs:max
        eval_time: 45m
        exp_samples:
          - labels: 'job_state:neuromesh_gateway_jobs:max{job="gateway",state="running"}'
            value: 3
      - expr: job:neuromesh_gateway_runnable_steps:max{job="gateway"}
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_runnable_steps:max{job="gateway"}'
            value: 25
      - expr: job:neuromesh_gateway_running_steps:sum
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_running_steps:sum{job="gateway"}'
            value: 6
      - expr: job_service_outcome:neuromesh_gateway_step_executions:rate5m{service="segmentation"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_service_outcome:neuromesh_gateway_step_executions:rate5m{job="gateway",service="segmentation",outcome="succeeded"}'
            value: 0.1
          - labels: 'job_service_outcome:neuromesh_gateway_step_executions:rate5m{job="gateway",service="segmentation",outcome="retried"}'
            value: 0.05
      - expr: job_service:neuromesh_gateway_step_duration_seconds:p50_rate5m{service="simulation"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_step_duration_seconds:p50_rate5m{job="gateway",service="simulation"}'
            value: 60
      - expr: job_service:neuromesh_gateway_step_duration_seconds:p95_rate5m{service="simulation"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_step_duration_seconds:p95_rate5m{job="gateway",service="simulation"}'
            value: 114
      - expr: job_service:neuromesh_gateway_step_duration_seconds:p99_rate5m{service="simulation"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_step_duration_seconds:p99_rate5m{job="gateway",service="simulation"}'
            value: 118.8
      - expr: job_service:neuromesh_gateway_steps_completed:rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_steps_completed:rate5m{job="gateway",service="simulation"}'
            value: 1.25
          - labels: 'job_service:neuromesh_gateway_steps_completed:rate5m{job="gateway",service="segmentation"}'
            value: 0.1
      - expr: job_service:neuromesh_gateway_steps_reused:ratio_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_steps_reused:ratio_rate5m{job="gateway",service="simulation"}'
            value: 0.2
          - labels: 'job_service:neuromesh_gateway_steps_reused:ratio_rate5m{job="gateway",service="segmentation"}'
            value: 0
      - expr: job:neuromesh_gateway_steps_reused:ratio_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_steps_reused:ratio_rate5m{job="gateway"}'
            value: 0.18518518518518517
      - expr: job_service_code:neuromesh_gateway_step_retries:rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_service_code:neuromesh_gateway_step_retries:rate5m{job="gateway",service="segmentation",code="UNAVAILABLE"}'
            value: 0.05
      - expr: job_service:neuromesh_gateway_call_failovers:rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_service:neuromesh_gateway_call_failovers:rate5m{job="gateway",service="segmentation"}'
            value: 0.05
      - expr: job_method_route_status:neuromesh_gateway_http_requests:rate5m{route="/v1/jobs"}
        eval_time: 45m
        exp_samples:
          - labels: 'job_method_route_status:neuromesh_gateway_http_requests:rate5m{job="gateway",method="POST",route="/v1/jobs",status="202"}'
            value: 0.9
          - labels: 'job_method_route_status:neuromesh_gateway_http_requests:rate5m{job="gateway",method="POST",route="/v1/jobs",status="500"}'
            value: 0.1
      - expr: job:neuromesh_gateway_http_server_errors:ratio_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job:neuromesh_gateway_http_server_errors:ratio_rate5m{job="gateway"}'
            value: 0.1
      - expr: job_method_route:neuromesh_gateway_http_request_duration_seconds:p50_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_method_route:neuromesh_gateway_http_request_duration_seconds:p50_rate5m{job="gateway",method="POST",route="/v1/jobs"}'
            value: 0.1
      - expr: job_method_route:neuromesh_gateway_http_request_duration_seconds:p95_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_method_route:neuromesh_gateway_http_request_duration_seconds:p95_rate5m{job="gateway",method="POST",route="/v1/jobs"}'
            value: 0.235
      - expr: job_method_route:neuromesh_gateway_http_request_duration_seconds:p99_rate5m
        eval_time: 45m
        exp_samples:
          - labels: 'job_method_route:neuromesh_gateway_http_request_duration_seconds:p99_rate5m{job="gateway",method="POST",route="/v1/jobs"}'
            value: 0.247
    alert_rule_test:
      - eval_time: 45m
        alertname: NeuroMeshGatewayDown
        exp_alerts: []
      - eval_time: 45m
        alertname: NeuroMeshGatewayJobsFailing
        exp_alerts:
          - exp_labels: {job: gateway, severity: warning}
            exp_annotations:
              summary: "gateway: 25% of finished jobs failed"
              description: "More than 20% of the jobs that finished in the last 30 minutes (5 or more) failed: a service fails their steps, or their retries ran out. Each failed job names its step and status code (GET /v1/jobs/{id})."
      - eval_time: 45m
        alertname: NeuroMeshGatewaySlowSteps
        exp_alerts:
          - exp_labels: {job: gateway, service: segmentation, severity: warning}
            exp_annotations:
              summary: "gateway: segmentation steps take 58m 30s at the 95th percentile"
              description: "One segmentation step execution in twenty took longer than 30 minutes over the last hour: the service is saturated (calls queue behind its compute slots) or the jobs grew. Check its calls in flight and scale it."
      - eval_time: 45m
        alertname: NeuroMeshGatewayQueueBacklog
        exp_alerts:
          - exp_labels: {job: gateway, severity: warning}
            exp_annotations:
              summary: "gateway: 25 steps waiting to run, not shrinking for 30 minutes"
              description: "More than 20 steps could run and the queue has not shrunk for 30 minutes: add gateway replicas or raise NEUROMESH_GATEWAY_STEP_CONCURRENCY if the services have room, or scale the services the steps wait on."
      - eval_time: 45m
        alertname: NeuroMeshGatewayHttpServerErrors
        exp_alerts:
          - exp_labels: {job: gateway, severity: warning}
            exp_annotations:
              summary: "gateway: 10% of API requests answered 5xx"
              description: "More than 5% of the gateway's API requests failed on the server side over 10 minutes: the job store or the object store is away, or the gateway has a fault (its log names it)."
      # steps end all the time here: nothing is stalled
      - eval_time: 45m
        alertname: NeuroMeshGatewayJobsStalled
        exp_alerts: []

  # Every replica stops answering at minute 3: the gateway is down 2 minutes later.
  - interval: 1m
    input_series:
      - series: 'up{job="gateway",instance="a"}'
        values: '1 1 1 0 0 0 0 0 0 0'
      - series: 'up{job="gateway",instance="b"}'
        values: '1 1 1 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 4m
        alertname: NeuroMeshGatewayDown
        exp_alerts: []
      - eval_time: 6m
        alertname: NeuroMeshGatewayDown
        exp_alerts:
          - exp_labels: {job: gateway, severity: critical}
            exp_annotations:
              summary: "No gateway replica answers"
              description: "Prometheus has scraped no gateway replica for 2 minutes: the HTTP API is down and no job step runs. Submitted jobs wait in the job store and resume when a gateway is back."

  # One replica of two down: NeuroMeshServiceDown names it, the gateway as a whole is up. With
  # no gateway target at all (Kubernetes: no ready pod in DNS), the gateway is down too.
  - interval: 1m
    input_series:
      - series: 'up{job="gateway",instance="10.0.0.5:8080"}'
        values: '1x10'
      - series: 'up{job="gateway",instance="10.0.0.6:8080"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 8m
        alertname: NeuroMeshGatewayDown
        exp_alerts: []
      - eval_time: 8m
        alertname: NeuroMeshServiceDown
        exp_alerts:
          - exp_labels: {job: gateway, instance: "10.0.0.6:8080", severity: critical}
            exp_annotations:
              summary: "gateway is not answering /metrics on 10.0.0.6:8080"
              description: "Prometheus could not scrape 10.0.0.6:8080 for 2 minutes: the service is down, restarting or unreachable."
  - interval: 1m
    input_series:
      - series: 'up{job="decoding",instance="decoding:9151"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 1m
        alertname: NeuroMeshGatewayDown
        exp_alerts: []
      - eval_time: 5m
        alertname: NeuroMeshGatewayDown
        exp_alerts:
          - exp_labels: {job: gateway, severity: critical}
            exp_annotations:
              summary: "No gateway replica answers"
              description: "Prometheus has scraped no gateway replica for 2 minutes: the HTTP API is down and no job step runs. Submitted jobs wait in the job store and resume when a gateway is back."

  # Stalled jobs: two jobs run on `gateway`, whose steps ended every minute for an hour and then
  # no more; `gateway-cached` completes its steps from the cache; `gateway-idle` runs nothing.
  - interval: 1m
    input_series:
      - series: 'neuromesh_gateway_jobs{job="gateway",instance="a",state="running"}'
        values: '2x210'
      - series: 'neuromesh_gateway_step_duration_seconds_count{job="gateway",instance="a",service="simulation",outcome="succeeded"}'
        values: '0+1x60 60x150'
      - series: 'neuromesh_gateway_jobs{job="gateway-cached",instance="a",state="running"}'
        values: '1x210'
      - series: 'neuromesh_gateway_steps_reused_total{job="gateway-cached",instance="a",service="simulation"}'
        values: '0+1x210'
      - series: 'neuromesh_gateway_jobs{job="gateway-idle",instance="a",state="running"}'
        values: '0x210'
    alert_rule_test:
      - eval_time: 150m
        alertname: NeuroMeshGatewayJobsStalled
        exp_alerts: []
      - eval_time: 200m
        alertname: NeuroMeshGatewayJobsStalled
        exp_alerts:
          - exp_labels: {job: gateway, severity: warning}
            exp_annotations:
              summary: "gateway: jobs running but no step finished for 2 hours"
              description: "2 jobs are running and no step execution of any gateway replica has ended for 2 hours: a service call hangs, or the runners hold leases without progress."
"""


def run_rule_tests(tmp_path: Path, text: str, rules_dir: Path = RULES_DIR) -> subprocess.CompletedProcess:
    tests = tmp_path / "rules_test.yml"
    tests.write_text(text.format(grpc=rules_dir / "grpc.yml", throughput=rules_dir / "throughput.yml",
                                 gateway=rules_dir / "gateway.yml") + GATEWAY_RULE_TESTS)
    return subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)


def test_promtool_alert_rules_fire_on_synthetic_series(tmp_path):
    assert {p.name for p in RULES_DIR.glob("*.yml")} == {"grpc.yml", "throughput.yml", "gateway.yml"}, \
        "a new rules file needs its series here"
    result = run_rule_tests(tmp_path, PROMTOOL_RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    # every recording rule and alert of the gateway is exercised by name
    for group in load_yaml(RULES_DIR / "gateway.yml")["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            assert re.search(rf"(expr|alertname): {re.escape(name)}\b", GATEWAY_RULE_TESTS), f"{name} is not tested"


def test_promtool_rule_tests_fail_on_a_wrong_rule(tmp_path):
    # The unit tests test: a throughput rule that forgets to sum over replicas is caught.
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "grpc.yml").write_text((RULES_DIR / "grpc.yml").read_text())
    (broken / "throughput.yml").write_text((RULES_DIR / "throughput.yml").read_text().replace(
        "sum by (job) (rate(neuromesh_simulation_synaptic_events_total[5m]))",
        "max by (job) (rate(neuromesh_simulation_synaptic_events_total[5m]))"))
    (broken / "gateway.yml").write_text((RULES_DIR / "gateway.yml").read_text())
    result = run_rule_tests(tmp_path, PROMTOOL_RULE_TESTS, broken)
    assert result.returncode != 0 and "synaptic_events" in result.stdout + result.stderr


@pytest.mark.parametrize("wrong, right, reported", [
    # the queue depth is store-wide, the same on every replica: summing it doubles it
    ("max by (job) (neuromesh_gateway_runnable_steps)", "sum by (job) (neuromesh_gateway_runnable_steps)",
     "runnable_steps"),
    # without the `or ... * 0` a service none of whose steps came from the cache has no ratio
    ("            or\n              job_service:neuromesh_gateway_steps_completed:rate5m * 0\n", "",
     "steps_reused:ratio_rate5m"),
    # probes' 503s counted as API errors
    ('{status=~"5..", route!~"/healthz|/readyz|/metrics"}', '{status=~"5.."}', "http_server_errors"),
], ids=["sum-of-a-store-wide-gauge", "missing-zero", "probes-counted"])
def test_promtool_rule_tests_fail_on_a_wrong_gateway_rule(tmp_path, wrong, right, reported):
    broken = tmp_path / "rules"
    broken.mkdir()
    for name in ("grpc.yml", "throughput.yml"):
        (broken / name).write_text((RULES_DIR / name).read_text())
    text = (RULES_DIR / "gateway.yml").read_text()
    assert wrong in text
    (broken / "gateway.yml").write_text(text.replace(wrong, right, 1))
    result = run_rule_tests(tmp_path, PROMTOOL_RULE_TESTS, broken)
    assert result.returncode != 0 and reported in result.stdout + result.stderr


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
    """The ARG defaults declared before the first FROM, and the instructions of each stage (its
    FROM first)."""
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


def stage_name(stage: list[tuple[str, str]]) -> str:
    """A stage's name (``FROM image AS name``), or "" for an unnamed one."""
    words = stage[0][1].split()
    return words[2].lower() if len(words) == 3 and words[1].lower() == "as" else ""


def stage_chain(path: Path, target: str | None = None) -> list[list[tuple[str, str]]]:
    """The stages a build target is made of, the one FROM an image first, the target last: a stage
    ``FROM runtime AS gateway`` starts from everything the stage ``runtime`` did. The default
    target, as for ``docker build`` without ``--target``, is the last stage."""
    _, stages = dockerfile_stages(path)
    named = {stage_name(s): s for s in stages if stage_name(s)}
    stage = stages[-1] if target is None else named[target]
    chain = [stage]
    while stage[0][1].split()[0].lower() in named:
        stage = named[stage[0][1].split()[0].lower()]
        chain.insert(0, stage)
    return chain


def target_instructions(path: Path, target: str | None = None) -> list[tuple[str, str]]:
    return [i for stage in stage_chain(path, target) for i in stage]


def stage_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The ENV a stage's instructions set (``ENV A=1 B=2``; values without spaces)."""
    env = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in args.split() if "=" in item)
    return env


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_with_pinned_bases(path):
    global_args, stages = dockerfile_stages(path)
    assert len(stages) >= 2, "build and runtime should be separate stages"
    names = {stage_name(s) for s in stages}
    # every stage starts from the one pinned image, directly or through another stage
    bases = {base_image(chain[0][0][1], global_args)
             for chain in (stage_chain(path, stage_name(s) or None) for s in stages)}
    assert len(bases) == 1, f"builder and runtime differ ({bases}): the venv would not find its interpreter"
    for image in bases:
        assert image.lower() not in names
        assert "$" not in image, f"FROM {image}: an ARG without a default"
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"FROM {image} is not pinned to a release"
        assert re.search(r"\d", tag), f"FROM {image}: tag {tag} names no version"
    for keyword, args in parse_dockerfile(path.read_text()):
        assert not re.search(r":latest\b", args), f"{keyword} {args}: uses the moving tag `latest`"


def exec_form(args: str) -> list[str] | None:
    """The argument list of an exec-form CMD (``["python", "-m", "x"]``); None for the shell form."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def healthcheck_command(instructions: list[tuple[str, str]]) -> list[str] | None:
    """The command of the last HEALTHCHECK (``HEALTHCHECK --interval=... CMD [...]``), exec form."""
    checks = [args for k, args in instructions if k == "HEALTHCHECK"]
    if not checks or " CMD " not in f" {checks[-1]}":
        return None
    return exec_form(f" {checks[-1]}".split(" CMD ", 1)[1])


def runtime_problems(path: Path, target: str | None = None, process: str = "service") -> list[str]:
    """How a build target breaks the image conventions (empty when it keeps them). ``process`` is
    what it runs: "service" (an analysis service chosen by NEUROMESH_SERVICE) or "gateway"."""
    runtime, problems = target_instructions(path, target), []
    keywords = [k for k, _ in runtime]
    users = [args for k, args in runtime if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage runs as root")
    elif "CMD" in keywords and len(keywords) - 1 - keywords[::-1].index("USER") > \
            len(keywords) - 1 - keywords[::-1].index("CMD"):
        problems.append("USER comes after CMD")
    health = healthcheck_command(runtime)
    if ("STOPSIGNAL", "SIGTERM") not in runtime:
        problems.append("no STOPSIGNAL SIGTERM")
    exposed = [port for k, args in runtime if k == "EXPOSE" for port in args.split()]
    if not exposed:
        problems.append("no EXPOSE")
    cmds = [args for k, args in runtime if k == "CMD"]
    if process == "service":
        if health is None or "services.common.healthcheck" not in " ".join(health):
            problems.append("no gRPC HEALTHCHECK")
        if not cmds or "python -m" not in cmds[-1] or "services.${NEUROMESH_SERVICE}" not in cmds[-1]:
            problems.append("CMD does not start services.${NEUROMESH_SERVICE}")
        elif "exec python" not in cmds[-1]:
            problems.append("without exec the shell is PID 1 and SIGTERM never reaches Python")
        if not any(k == "ARG" and args.startswith("NEUROMESH_SERVICE") for k, args in runtime):
            problems.append("no NEUROMESH_SERVICE build argument")
    else:
        env = stage_env(runtime)
        if health is None or "/healthz" not in " ".join(health) or "NEUROMESH_GATEWAY_HTTP_PORT" not in " ".join(health):
            problems.append("no HTTP HEALTHCHECK on /healthz at NEUROMESH_GATEWAY_HTTP_PORT")
        if not cmds or exec_form(cmds[-1]) != ["python", "-m", "gateway"]:
            problems.append("CMD is not the exec form of `python -m gateway` (PID 1 must get SIGTERM)")
        if env.get("NEUROMESH_GATEWAY_HTTP_HOST") != "0.0.0.0":
            problems.append("the gateway binds loopback: nothing outside the container reaches it")
        if env.get("NEUROMESH_GATEWAY_HTTP_PORT") not in exposed:
            problems.append(f"EXPOSE {exposed} lacks NEUROMESH_GATEWAY_HTTP_PORT={env.get('NEUROMESH_GATEWAY_HTTP_PORT')}")
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
    # the default target (the last stage) is an analysis service in both files
    assert runtime_problems(path) == []


def test_dockerfile_runtime_check_rejects_a_root_image_with_a_compiler(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root")
                      .replace("--no-install-recommends libgomp1", "--no-install-recommends libgomp1 gcc"))
    RUNTIME_PACKAGES[broken] = RUNTIME_PACKAGES[DOCKERFILE]
    problems = " ".join(runtime_problems(broken))
    assert "root" in problems and "gcc" in problems
    # ... which the gateway, built on the same runtime stage, inherits
    problems = " ".join(runtime_problems(broken, "gateway", "gateway"))
    assert "root" in problems and "gcc" in problems


def test_dockerfile_gateway_target_shares_the_runtime_and_runs_the_gateway():
    # One Dockerfile, two targets over the same runtime stage; the default is a service.
    assert stage_name(dockerfile_stages(DOCKERFILE)[1][-1]) == "service"
    gateway_chain = [stage_name(s) for s in stage_chain(DOCKERFILE, "gateway")]
    assert gateway_chain == ["runtime", "gateway"]
    assert [stage_name(s) for s in stage_chain(DOCKERFILE)] == ["runtime", "service"]
    assert runtime_problems(DOCKERFILE, "gateway", "gateway") == []
    # the gateway stage adds no packages and no build argument: one image for every deployment
    gateway_stage = stage_chain(DOCKERFILE, "gateway")[-1]
    assert not [k for k, _ in gateway_stage if k in ("RUN", "ARG", "COPY")]
    # the builder puts the web page beside the installed gateway package and checks the app
    # finds it where it looks (gateway.api.app.WEB_DIR): the wheel carries no package data
    builder_runs = [args for k, args in builder_instructions(DOCKERFILE) if k == "RUN"]
    assert any("gateway/web/." in args and "app.WEB_DIR / 'static'" in args for args in builder_runs)


def test_dockerfile_gateway_check_rejects_a_grpc_healthcheck_and_a_shell_cmd(tmp_path):
    text = DOCKERFILE.read_text()
    gateway_part = text[text.index("FROM runtime AS gateway"):text.index("FROM runtime AS service")]
    broken_part = (gateway_part.replace('CMD ["python", "-m", "gateway"]', "CMD python -m gateway")
                   .replace("NEUROMESH_GATEWAY_HTTP_HOST=0.0.0.0", "NEUROMESH_GATEWAY_HTTP_HOST=127.0.0.1")
                   .replace("EXPOSE 8080", "EXPOSE 8000"))
    broken_part = re.sub(r"HEALTHCHECK [^\n]*\\\n[^\n]*\n",
                         'HEALTHCHECK CMD ["python", "-m", "services.common.healthcheck"]\n', broken_part)
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(gateway_part, broken_part))
    RUNTIME_PACKAGES[broken] = RUNTIME_PACKAGES[DOCKERFILE]
    problems = " ".join(runtime_problems(broken, "gateway", "gateway"))
    for expected in ("/healthz", "exec form", "loopback", "EXPOSE"):
        assert expected in problems, f"{expected!r} not reported in: {problems}"


def gateway_healthcheck_command() -> list[str]:
    command = healthcheck_command(target_instructions(DOCKERFILE, "gateway"))
    assert command and command[0] == "python", command
    return command


@pytest.fixture
def healthz_server():
    """A real HTTP server on a free loopback port whose GET /healthz answers ``status["code"]``."""
    status = {"code": 200, "paths": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status["paths"].append(self.path)
            code = status["code"] if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, status
    server.shutdown()
    server.server_close()


def run_gateway_healthcheck(port: int) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command as the container runs it (NEUROMESH_GATEWAY_HTTP_PORT set)."""
    command = gateway_healthcheck_command()
    env = {**os.environ, "NEUROMESH_GATEWAY_HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=30, env=env)


def test_gateway_healthcheck_exit_status_follows_healthz(healthz_server):
    server, status = healthz_server
    port = server.server_address[1]
    assert run_gateway_healthcheck(port).returncode == 0
    assert status["paths"] == ["/healthz"]
    status["code"] = 503
    result = run_gateway_healthcheck(port)
    assert result.returncode == 1, result.stdout + result.stderr
    server.shutdown()
    server.server_close()
    started = time.monotonic()
    assert run_gateway_healthcheck(port).returncode == 1      # nothing answers
    assert time.monotonic() - started < 10


def pinned_torch() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml should pin torch exactly"
    return pins[0].split("==")[1].strip()


def builder_instructions(path: Path) -> list[tuple[str, str]]:
    _, stages = dockerfile_stages(path)
    return [i for stage in stages if stage_name(stage) == "builder" for i in stage]


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
    for required in (".git", ".venv", "**/__pycache__", ".pytest_cache", ".neuromesh", "bench/results", ".env",
                     "gateway-tokens"):
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
