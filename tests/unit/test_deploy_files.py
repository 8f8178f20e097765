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
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
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


def test_promtool_checks_config():
    result = subprocess.run([promtool(), "check", "config", str(PROMETHEUS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_rules():
    files = [str(p) for p in sorted(RULES_DIR.glob("*.yml"))]
    assert files
    result = subprocess.run([promtool(), "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


PROMTOOL_RULE_TESTS = """
rule_files:
  - {rules}
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
          - exp_labels: {{job: simulation, grpc_service: s, grpc_method: Step, severity: warning}}
            exp_annotations:
              summary: "simulation Step: p99 latency 4.975s"
              description: "Unary calls to s/Step took longer than 2.5 s at the 99th percentile for 15 minutes."
    promql_expr_test:
      - expr: job:grpc_server_server_errors:ratio_rate5m
        eval_time: 25m
        exp_samples:
          - labels: 'job:grpc_server_server_errors:ratio_rate5m{{job="decoding"}}'
            value: 0.2
          - labels: 'job:grpc_server_server_errors:ratio_rate5m{{job="reduction"}}'
            value: 0
"""


def test_promtool_alert_rules_fire_on_synthetic_series(tmp_path):
    rules = RULES_DIR / "grpc.yml"
    tests = tmp_path / "grpc_test.yml"
    tests.write_text(PROMTOOL_RULE_TESTS.format(rules=rules))
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


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


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """The ARG defaults declared before the first FROM, and the instructions of each stage."""
    global_args, stages = {}, []
    for keyword, args in parse_dockerfile(DOCKERFILE.read_text()):
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


def test_dockerfile_is_multi_stage_with_pinned_bases():
    global_args, stages = dockerfile_stages()
    assert len(stages) >= 2, "build and runtime should be separate stages"
    for stage in stages:
        image = base_image(stage[0][1], global_args)
        assert "$" not in image, f"FROM {image}: an ARG without a default"
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"FROM {image} is not pinned to a release"
        assert re.search(r"\d", tag), f"FROM {image}: tag {tag} names no version"
    for keyword, args in parse_dockerfile(DOCKERFILE.read_text()):
        assert not re.search(r":latest\b", args), f"{keyword} {args}: uses the moving tag `latest`"


def test_dockerfile_runtime_stage_is_non_root_health_checked_and_drains():
    _, stages = dockerfile_stages()
    runtime = stages[-1]
    keywords = [k for k, _ in runtime]
    users = [args for k, args in runtime if k == "USER"]
    assert users, "the runtime stage runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"

    healthchecks = [args for k, args in runtime if k == "HEALTHCHECK"]
    assert healthchecks and "services.common.healthcheck" in healthchecks[-1]
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert "EXPOSE" in keywords
    assert keywords.index("USER") < keywords.index("CMD")

    cmd = [args for k, args in runtime if k == "CMD"][-1]
    assert "python -m" in cmd and "services.${NEUROMESH_SERVICE}" in cmd
    assert "exec python" in cmd, "without exec the shell is PID 1 and SIGTERM never reaches Python"
    assert any(k == "ARG" and args.startswith("NEUROMESH_SERVICE") for k, args in runtime)
    assert any(k == "COPY" and args.startswith("--from=") for k, args in runtime), \
        "the runtime stage should take the built environment from the builder"

    # No compilers or pip installs in the image that runs; Debian packages only from a short list
    # of runtime libraries (the OpenMP runtime of the simulation engine).
    runs = " ".join(args for k, args in runtime if k == "RUN")
    for tool in ("build-essential", "gcc", "g++", "pip install"):
        assert tool not in runs, f"the runtime stage runs `{tool}`"
    for installed in re.findall(r"apt-get install ((?:-\S+\s+)*)([^&]+)", runs):
        packages = set(installed[1].replace("\\", " ").split())
        assert packages <= {"libgomp1"}, f"the runtime stage installs {packages - {'libgomp1'}}"


def test_dockerfile_takes_torch_from_the_cpu_index_at_the_project_pin():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml should pin torch exactly"
    pinned = pins[0].split("==")[1].strip()

    _, stages = dockerfile_stages()
    builder = [i for stage in stages[:-1] for i in stage]
    torch_version = next(args.split("=", 1)[1] for k, args in builder
                         if k == "ARG" and args.startswith("TORCH_VERSION="))
    assert torch_version == pinned, f"Dockerfile installs torch {torch_version}, pyproject pins {pinned}"
    torch_installs = [args for k, args in builder if k == "RUN" and "torch==" in args]
    assert torch_installs, "no RUN installs torch explicitly"
    assert all(f"--index-url {TORCH_CPU_INDEX}" in args for args in torch_installs), \
        "torch must come from the PyTorch CPU index (PyPI's build pulls CUDA)"
    # torch installed before the project, so the project's `torch==` pin finds it satisfied.
    runs = [args for k, args in builder if k == "RUN"]
    project_install = next(i for i, args in enumerate(runs) if "pip install /wheels" in args)
    assert runs.index(torch_installs[0]) < project_install


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_existing_sources_that_dockerignore_keeps():
    ignored = {p.rstrip("/") for p in dockerignore_patterns() if not p.startswith("!")}
    for keyword, args in parse_dockerfile(DOCKERFILE.read_text()):
        if keyword != "COPY" or args.startswith("--from="):
            continue
        *sources, _ = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert source.split("/")[0] not in ignored, f"COPY {source}: excluded by .dockerignore"
            if "*" not in source:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    # the project's packages all reach the image
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = " ".join(args for k, args in parse_dockerfile(DOCKERFILE.read_text()) if k == "COPY")
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
