"""`neuromesh up/status/down` on a real stack, with the README's end-to-end analysis run on it."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from minio import Minio

from neuromesh.stack.processes import pid_alive, port_open
from services.common.registry import discover_services
from services.connectomics.core.contacts import contact_graph
from services.segmentation.core import synthetic_em_volume

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def neuromesh(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuromesh", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def free_offset() -> int:
    """A port offset at which the stack's default ports are all free (a developer's stack may run)."""
    defaults = [8333, 8080] + [p for s in discover_services() for p in (s.grpc_port, s.metrics_port)]
    rng = random.Random()
    for _ in range(200):
        offset = rng.randrange(1000, 15000)
        if not any(port_open("127.0.0.1", p + offset) for p in defaults):
            return offset
    raise RuntimeError("no free port offset found")


@pytest.fixture
def stack_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROMESH_")}
    env["NEUROMESH_STATE_DIR"] = str(tmp_path / "state")
    yield env
    neuromesh("down", env=env)


def run_example(env: dict) -> tuple[dict[str, float], str]:
    run = subprocess.run([sys.executable, "examples/decode_reaching.py", "--duration-s", "120"], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    r2 = {m[0]: float(m[1]) for m in re.findall(r"cross-validated R2 (v[xy]): (-?[0-9.]+)", run.stdout)}
    # the reduction step: three PCs of the smoothed counts carry the velocity driving the units
    r2["pca"] = float(re.search(r"velocity recovered from 3 PCs: R2 (-?[0-9.]+)", run.stdout).group(1))
    predictions = re.search(r"predictions: (s3://\S+)", run.stdout).group(1)
    return r2, predictions


def test_up_analyse_restart_down(stack_env):
    offset = free_offset()
    up = neuromesh("up", "--port-offset", str(offset), env=stack_env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"127.0.0.1:{8333 + offset}" in up.stdout
    for spec in discover_services():
        assert f"grpc://127.0.0.1:{spec.grpc_port + offset}" in up.stdout
    gateway = f"127.0.0.1:{8080 + offset}"
    token = re.search(rf"^gateway\s+http://{gateway}\s.*token (\S+)", up.stdout, re.M).group(1)
    assert (Path(stack_env["NEUROMESH_STATE_DIR"]) / "gateway-token").read_text().strip() == token

    status = neuromesh("status", "--json", env=stack_env)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert {r["name"] for r in rows} == {"object-store", *(s.name for s in discover_services()), "gateway"}
    assert all(r["health"] == "SERVING" for r in rows)
    assert next(r for r in rows if r["name"] == "gateway")["endpoint"] == gateway
    # the gateway answers the printed token, and only it
    jobs = urllib.request.Request(f"http://{gateway}/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(jobs, timeout=10) as reply:
        assert json.load(reply) == {"jobs": [], "next_cursor": None}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{gateway}/v1/jobs", timeout=10)
    assert refused.value.code == 401

    # The README's main job against this stack: real decoding with a known answer.
    r2, predictions = run_example(stack_env)
    assert set(r2) == {"vx", "vy", "pca"} and min(r2.values()) > 0.5, r2

    # The simulation example: the thalamic stimulus raises layer 4's rate; its counts reduce.
    run = subprocess.run([sys.executable, "examples/simulate_column.py", "--duration-ms", "400"], env=stack_env,
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    quiet, driven = map(float, re.search(r"^L4_exc\s+([0-9.]+)\s+([0-9.]+)$", run.stdout, re.M).groups())
    assert driven > 1.1 * quiet > 0, run.stdout
    assert re.search(r"PCA of the excitatory counts: explained variance ratio 0\.\d+", run.stdout), run.stdout

    # The connectomics example: segment synthetic EM, then graph the contacts of it and of the truth.
    run = subprocess.run([sys.executable, "examples/em_to_connectome.py", "--size", "40"], env=stack_env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    truth_nodes, truth_edges = map(int, re.search(r"^ground truth\s+(\d+) segments,\s+(\d+) contacts", run.stdout,
                                                  re.M).groups())
    _, truth = synthetic_em_volume((40, 40, 40), n_neurites=14, seed=3)       # the example's defaults
    expected = contact_graph(truth)
    assert (truth_nodes, truth_edges) == (expected.n_nodes, int((expected.faces >= 4).sum())), run.stdout
    assert re.search(r"^segmentation\s+\d+ segments,\s+\d+ contacts", run.stdout, re.M), run.stdout
    assert "GraphML: s3://" in run.stdout

    # A second `up` while one runs is refused, not a second set of processes.
    again = neuromesh("up", "--port-offset", str(offset), env=stack_env)
    assert again.returncode == 1 and "already running" in again.stderr

    pids = [int(r["pid"]) for r in rows]
    down = neuromesh("down", env=stack_env)
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert neuromesh("status", env=stack_env).returncode == 1

    # Data survives a restart: the same analysis finds its stored results.
    up = neuromesh("up", "--port-offset", str(offset), env=stack_env)
    assert up.returncode == 0, up.stdout + up.stderr
    client = Minio(f"127.0.0.1:{8333 + offset}", access_key="neuromesh", secret_key="neuromesh-secret", secure=False)
    bucket, _, key = predictions.removeprefix("s3://").partition("/")
    assert client.stat_object(bucket, f"{key}/zarr.json").size > 0
    r2_again, predictions_again = run_example(stack_env)
    assert predictions_again == predictions and r2_again == r2


def test_cli_usage_errors_exit_2(stack_env):
    bad = neuromesh("frobnicate", env=stack_env)
    assert bad.returncode == 2 and "usage:" in bad.stderr
    bad_setting = neuromesh("up", env={**stack_env, "NEUROMESH_GRPC_PORT": "not-a-port"})
    assert bad_setting.returncode == 2 and "NEUROMESH_GRPC_PORT" in bad_setting.stderr
    assert "Traceback" not in bad_setting.stderr


def test_status_without_a_stack_exits_1(stack_env):
    status = neuromesh("status", env=stack_env)
    assert status.returncode == 1 and "no stack" in status.stdout
