"""The Grafana dashboards (deploy/grafana/dashboards/*.json) and their provisioning.

- every dashboard parses, has a unique uid and title, panels with unique ids that do not overlap
  on the 24-column grid, and queries on the provisioned Prometheus data source only;
- every template variable a query uses is defined;
- every PromQL expression parses (``promtool check rules`` on the expressions written as
  recording rules: Prometheus's own parser) and names only metrics that exist: families the
  services and the gateway declare (their /metrics ``# TYPE`` lines), the recording rules' own
  names, and the series Prometheus adds per target. Declared families come from the servicers
  and the gateway's metrics declared here, and, in the integration test, from a live scrape of
  every service and of a gateway started as processes;
- the gateway dashboard shows what operators watch: jobs by state, submissions and finishes,
  step duration percentiles, the reuse ratio, retries, the queue, HTTP requests and latency.

Each check has a test that feeds it a broken dashboard.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from neuromesh.stack.health import grpc_health_status
from neuromesh.stack.processes import ManagedProcess, free_port
from services.common.registry import discover_services
from test_deploy_files import (SCRAPE_SERIES, declared_families, exported_metric_names, promql_metric_names,
                               promtool, recorded_metric_names)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
SERVICES = discover_services()
EXPECTED = {"overview", "simulation", "segmentation", "connectomics", "gateway"}


def load_dashboards() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def provisioned_uid() -> str:
    (source,) = YAML(typ="safe", pure=True).load(DATASOURCES.read_text())["datasources"]
    assert source["type"] == "prometheus"
    return source["uid"]


def query_panels(dashboard: dict) -> list[dict]:
    """Panels that query (rows only group); the panels of collapsed rows included."""
    panels = []
    for panel in dashboard.get("panels", []):
        panels += [panel] if panel.get("type") != "row" else panel.get("panels", [])
    return panels


def expressions(dashboard: dict) -> list[str]:
    """The PromQL of every query: panel targets, and the selector inside a variable's
    ``label_values(selector, label)`` (a Grafana function around PromQL, not PromQL itself)."""
    exprs = [t["expr"] for p in query_panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
        assert match, f"variable {variable['name']}: only label_values(selector, label) queries are checked"
        exprs.append(match.group(1))
    return exprs


# ---------------------------------------------------------------------------- structure

def dashboard_problems(dashboard: dict, datasource_uid: str) -> list[str]:
    problems = []
    title = dashboard.get("title", "?")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", dashboard.get("uid", "")):
        problems.append(f"{title}: uid {dashboard.get('uid')!r} (Grafana allows 40 characters; keep it a slug)")
    ids = [p.get("id") for p in dashboard.get("panels", [])] + \
          [p.get("id") for p in dashboard.get("panels", []) for p in p.get("panels", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"{title}: panel ids {ids} are not unique")
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard.get("panels", []):
        grid = panel.get("gridPos", {})
        if not {"x", "y", "w", "h"} <= set(grid) or grid["x"] < 0 or grid["x"] + grid["w"] > 24:
            problems.append(f"{title}: panel {panel.get('title')!r} has gridPos {grid}")
            continue
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"{title}: {panel.get('title')!r} overlaps {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = panel.get("title")
            else:
                continue
            break
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    for panel in query_panels(dashboard):
        where = f"{title} / {panel.get('title')!r}"
        if panel.get("datasource") != {"type": "prometheus", "uid": datasource_uid}:
            problems.append(f"{where}: data source {panel.get('datasource')}, not the provisioned one")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        if len({t.get("refId") for t in targets}) != len(targets):
            problems.append(f"{where}: refIds repeat")
        for target in targets:
            if target.get("datasource", panel.get("datasource")) != panel.get("datasource"):
                problems.append(f"{where}: a query on another data source")
            if not target.get("expr", "").strip():
                problems.append(f"{where}: an empty query")
            used = set(re.findall(r"\$\{?(\w+)", target.get("expr", ""))) - {"__rate_interval", "__interval",
                                                                              "__range"}
            if used - variables:
                problems.append(f"{where}: variables {sorted(used - variables)} are not defined")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and variable.get("datasource") != {"type": "prometheus",
                                                                                 "uid": datasource_uid}:
            problems.append(f"{title}: variable {variable['name']} queries another data source")
    return problems


def test_the_dashboards_are_there_with_unique_uids_and_titles():
    dashboards = load_dashboards()
    assert set(dashboards) == EXPECTED
    uids = [d["uid"] for d in dashboards.values()]
    titles = [d["title"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_structure(name):
    dashboard = load_dashboards()[name]
    assert query_panels(dashboard), f"{name} has no panel"
    assert dashboard_problems(dashboard, provisioned_uid()) == []


def test_structure_check_rejects_broken_dashboards():
    good = load_dashboards()["overview"]
    uid = provisioned_uid()
    broken = copy.deepcopy(good)
    panels = query_panels(broken)
    panels[0]["datasource"] = {"type": "prometheus", "uid": "some-other-prometheus"}
    panels[1]["gridPos"] = dict(panels[2]["gridPos"])
    panels[2]["targets"][0]["expr"] = 'rate(x{job=~"$service"}[5m])'
    broken["uid"] = "NeuroMesh overview"
    problems = " ".join(dashboard_problems(broken, uid))
    for expected in ("some-other-prometheus", "overlaps", "$service"[1:], "uid"):
        assert expected in problems, f"{expected!r} not reported in: {problems}"


# ---------------------------------------------------------------------------- PromQL

def as_rules_file(exprs: list[str]) -> str:
    """The expressions as recording rules, with Grafana's interval variables read as durations."""
    rules = [{"record": f"dashboard:expression_{i}", "expr": re.sub(r"\$\{?__\w+\}?", "5m", expr)}
             for i, expr in enumerate(exprs)]
    return json.dumps({"groups": [{"name": "dashboards", "rules": rules}]})   # JSON is YAML


def promtool_parses(tmp_path: Path, exprs: list[str]) -> subprocess.CompletedProcess:
    path = tmp_path / "dashboard-expressions.yml"
    path.write_text(as_rules_file(exprs))
    return subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_expression_parses(tmp_path):
    exprs = [e for d in load_dashboards().values() for e in expressions(d)]
    assert len(exprs) > 20
    result = promtool_parses(tmp_path, exprs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parse_check_rejects_a_broken_expression(tmp_path):
    result = promtool_parses(tmp_path, ["sum by (job) (rate(grpc_server_handled_total[$__rate_interval])"])
    assert result.returncode != 0


def unknown_metrics(dashboards: dict[str, dict], exported: set[str]) -> dict[str, set[str]]:
    known = exported | recorded_metric_names() | SCRAPE_SERIES
    unknown = {}
    for name, dashboard in dashboards.items():
        for expr in expressions(dashboard):
            missing = promql_metric_names(expr) - known
            if missing:
                unknown.setdefault(name, set()).update(missing)
    return unknown


@pytest.fixture(scope="module")
def declared_names() -> set[str]:
    return declared_families()


def test_every_metric_is_declared_by_a_service_or_recorded(declared_names):
    assert "neuromesh_gateway_runnable_steps" in declared_names, "the gateway's families are not declared"
    dashboards = load_dashboards()
    assert unknown_metrics(dashboards, declared_names) == {}
    # what the dashboards read, raw, is real service metrics (not only recorded series)
    raw = {n for d in dashboards.values() for e in expressions(d) for n in promql_metric_names(e)} & declared_names
    assert {"neuromesh_simulation_synaptic_events_total", "neuromesh_segmentation_blocks_in_progress",
            "neuromesh_segmentation_block_duration_seconds_bucket", "neuromesh_gateway_running_steps",
            "neuromesh_gateway_http_requests_total", "neuromesh_gateway_step_duration_seconds_count"} <= raw


# What the gateway dashboard must show, as the recorded series its panels read.
GATEWAY_PANELS = {
    "jobs by state": "job_state:neuromesh_gateway_jobs:max",
    "submissions per second": "job:neuromesh_gateway_jobs_submitted:rate5m",
    "finishes per second": "job_state:neuromesh_gateway_jobs_finished:rate5m",
    "failed jobs": "job:neuromesh_gateway_jobs_failed:ratio_rate30m",
    "step duration p50": "job_service:neuromesh_gateway_step_duration_seconds:p50_rate5m",
    "step duration p95": "job_service:neuromesh_gateway_step_duration_seconds:p95_rate5m",
    "step duration p99": "job_service:neuromesh_gateway_step_duration_seconds:p99_rate5m",
    "reuse ratio": "job_service:neuromesh_gateway_steps_reused:ratio_rate5m",
    "retries by code": "job_service_code:neuromesh_gateway_step_retries:rate5m",
    "queue depth": "job:neuromesh_gateway_runnable_steps:max",
    "HTTP requests by route and status": "job_method_route_status:neuromesh_gateway_http_requests:rate5m",
    "HTTP latency by route": "job_method_route:neuromesh_gateway_http_request_duration_seconds:p95_rate5m",
}


def missing_gateway_panels(dashboard: dict) -> list[str]:
    """What GATEWAY_PANELS asks for that no panel of ``dashboard`` reads, with the labels it is
    broken down by named in the legend (by service, by code, by route and status)."""
    missing = []
    legends = {}
    for panel in query_panels(dashboard):
        for target in panel.get("targets", []):
            for name in promql_metric_names(target["expr"]):
                legends.setdefault(name, "")
                legends[name] += target.get("legendFormat", "")
    for what, series in GATEWAY_PANELS.items():
        if series not in legends:
            missing.append(what)
            continue
        breakdown = series.split(":")[0].split("_")[1:]     # job_service_code -> service, code
        for label in breakdown:
            if "{{" + label + "}}" not in legends[series]:
                missing.append(f"{what} (by {label})")
    return missing


def test_the_gateway_dashboard_shows_jobs_steps_queue_and_http():
    dashboard = load_dashboards()["gateway"]
    assert set(GATEWAY_PANELS.values()) <= recorded_metric_names()
    assert missing_gateway_panels(dashboard) == []
    broken = copy.deepcopy(dashboard)
    for panel in query_panels(broken):
        panel["targets"] = [t for t in panel["targets"] if "step_retries" not in t["expr"]]
        for target in panel["targets"]:
            target["legendFormat"] = target["legendFormat"].replace("{{route}}", "")
    missing = missing_gateway_panels(broken)
    assert "retries by code" in missing and "HTTP latency by route (by route)" in missing


def test_the_name_check_rejects_a_metric_no_service_exports(declared_names):
    dashboards = copy.deepcopy(load_dashboards())
    query_panels(dashboards["simulation"])[0]["targets"][0]["expr"] = \
        "sum(rate(neuromesh_simulation_synaptic_event_total[5m]))"
    assert unknown_metrics(dashboards, declared_names) == {"simulation": {"neuromesh_simulation_synaptic_event_total"}}


# ---------------------------------------------------------------------------- live services

def gateway_process(folder: Path, s3_server, bucket: str, endpoints: dict[str, str]) -> tuple[ManagedProcess, int]:
    """``python -m gateway`` on a free loopback port: a SQLite job store and a token file in
    ``folder``, the object store of the tests, the given service endpoints."""
    http_port = free_port()
    tokens = folder / "gateway-tokens"
    tokens.write_text(f"dashboards:{hashlib.sha256(secrets.token_hex(16).encode()).hexdigest()}\n")
    env = {"NEUROMESH_GATEWAY_HTTP_HOST": "127.0.0.1", "NEUROMESH_GATEWAY_HTTP_PORT": str(http_port),
           "NEUROMESH_GATEWAY_DATABASE_URL": f"sqlite:///{folder / 'jobs.db'}",
           "NEUROMESH_GATEWAY_ENDPOINTS": json.dumps(endpoints), "NEUROMESH_GATEWAY_TOKENS_FILE": str(tokens),
           "NEUROMESH_S3_ENDPOINT": s3_server.endpoint, "NEUROMESH_S3_ACCESS_KEY": s3_server.access_key,
           "NEUROMESH_S3_SECRET_KEY": s3_server.secret_key, "NEUROMESH_BUCKET": bucket,
           "NEUROMESH_GATEWAY_DRAIN_S": "0", "NEUROMESH_LOG_FORMAT": "text"}
    return ManagedProcess("gateway", [sys.executable, "-m", "gateway"], env=env, log_path=folder / "gateway.log",
                          cwd=ROOT), http_port


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def live_metric_names(s3_server, module_bucket, tmp_path_factory) -> set[str]:
    """The union of the /metrics ``# TYPE`` families of every service and of a gateway in front of
    them, scraped from real processes."""
    logs = tmp_path_factory.mktemp("dashboard-services")
    started, gateway = [], None
    try:
        for spec in SERVICES:   # start them all, then wait: their imports overlap
            grpc_port, metrics_port = free_port(), free_port()
            env = {"NEUROMESH_GRPC_PORT": str(grpc_port), "NEUROMESH_METRICS_PORT": str(metrics_port),
                   "NEUROMESH_S3_ENDPOINT": s3_server.endpoint, "NEUROMESH_S3_ACCESS_KEY": s3_server.access_key,
                   "NEUROMESH_S3_SECRET_KEY": s3_server.secret_key, "NEUROMESH_BUCKET": module_bucket,
                   "NEUROMESH_DRAIN_GRACE_S": "1"}
            process = ManagedProcess(spec.name, [sys.executable, "-m", spec.module], env=env,
                                     log_path=logs / f"{spec.name}.log", cwd=ROOT)
            process.start()
            started.append((spec, process, grpc_port, metrics_port))
        names = set()
        for spec, process, grpc_port, metrics_port in started:
            process.wait_healthy(lambda: grpc_health_status(f"127.0.0.1:{grpc_port}", spec.health_service)
                                 == "SERVING", timeout_s=120, interval_s=0.3)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
                names |= exported_metric_names(reply.read().decode())
        # the gateway serves its metrics on its HTTP port, without a token, once it is ready
        gateway, http_port = gateway_process(logs, s3_server, module_bucket,
                                             {spec.name: f"127.0.0.1:{grpc_port}" for spec, _, grpc_port, _ in started})
        gateway.start()
        gateway.wait_healthy(lambda: http_ok(f"http://127.0.0.1:{http_port}/readyz"), timeout_s=60, interval_s=0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as reply:
            names |= exported_metric_names(reply.read().decode())
        return names
    finally:
        if gateway is not None:
            gateway.stop()
        for _, process, _, _ in started:
            process.stop()


@pytest.mark.integration
def test_every_metric_is_exported_by_the_running_services(live_metric_names, declared_names):
    assert "grpc_server_handling_seconds_bucket" in live_metric_names
    assert "neuromesh_gateway_step_duration_seconds_bucket" in live_metric_names
    assert unknown_metrics(load_dashboards(), live_metric_names) == {}
    # the in-process view the unit tests use is what the processes really serve
    assert {n for n in declared_names if n.startswith(("neuromesh_", "grpc_server_"))} <= live_metric_names
