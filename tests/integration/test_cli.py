"""The ``neuromesh`` command line against a real local stack (``neuromesh up`` in a fixture).

Each command runs as a subprocess, as a user's shell runs it, and is checked by its stdout, its
stderr and its exit code: uploads of .npy and TIFF files, a named pipeline run on local files
(uploaded under the hood) whose segmentation is scored here against the synthetic volume's
truth, downloads of a figure and of a label array, job listing, a failed job (exit 1 with the
service's message), cancellation by ``jobs cancel`` and by Ctrl-C (SIGINT) on a followed job
(shown by the simulation service's metrics), and the usage, not-found and unreachable exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tifffile
from prometheus_client.parser import text_string_to_metric_families

from services.segmentation.core import adapted_rand_error, synthetic_em_volume
from test_local_stack import REPO, free_offset, neuromesh

pytestmark = pytest.mark.integration
PNG = b"\x89PNG\r\n\x1a\n"
#: An hour of biological time of a 4,000-neuron network: minutes of wall time, so only a cancel ends it
LONG_SIMULATION = {"steps": [{"id": "sim", "service": "simulation", "method": "Simulate", "params": {
    "duration_ms": 3_600_000, "network": {"vogels_abbott": {"kind": "VOGELS_ABBOTT_KIND_COBA", "n_neurons": 4000},
                                          "seed": 5}}}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A running local stack: the environment that points ``neuromesh`` at it, and its ports' offset."""
    root = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROMESH_")}
    env["NEUROMESH_STATE_DIR"] = str(root / "state")
    offset = free_offset()
    up = neuromesh("up", "--port-offset", str(offset), env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    yield {"env": env, "offset": offset, "root": root}
    neuromesh("down", env=env)


def cli(stack, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    run = neuromesh(*args, env=stack["env"], timeout=timeout)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def simulation_metrics(stack) -> dict[str, float]:
    port = 9153 + stack["offset"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "neuromesh_simulation_runs_in_progress":
                out["in_progress"] = sample.value
            if sample.name == "grpc_server_handled_total" and sample.labels.get("grpc_method") == "Simulate":
                out[sample.labels["grpc_code"]] = sample.value
    return out


def wait_until_idle(stack, timeout_s: float = 30.0) -> None:
    """The service stops a cancelled run after its current chunk of steps (~0.1 s of wall time)."""
    deadline = time.monotonic() + timeout_s
    while simulation_metrics(stack).get("in_progress", 0.0) != 0:
        assert time.monotonic() < deadline, "the simulation went on after it was cancelled"
        time.sleep(0.1)


def test_upload_run_download_and_list(stack, tmp_path):
    raw, truth = synthetic_em_volume((24, 48, 48), n_neurites=8, seed=3)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "truth.npy", truth)
    tifffile.imwrite(tmp_path / "raw.tif", raw)

    # upload: a .npy and a TIFF both become arrays with the digest of their data
    first = cli(stack, "upload", str(tmp_path / "raw.npy"), "em/raw", "--json")
    assert first.returncode == 0, first.stderr
    stored = json.loads(first.stdout)
    assert stored["key"] == "em/raw" and stored["shape"] == [24, 48, 48] and stored["dtype"] == "float32"
    tiff = json.loads(cli(stack, "upload", str(tmp_path / "raw.tif"), "em/raw-tiff", "--json").stdout)
    assert tiff["sha256"] == stored["sha256"]
    # the same file again to the same key: reused; another file to a taken key: refused, nothing changed
    again = cli(stack, "upload", str(tmp_path / "raw.npy"), "em/raw")
    assert again.returncode == 0 and "not uploaded again" in again.stderr
    taken = cli(stack, "upload", str(tmp_path / "truth.npy"), "em/raw")
    assert taken.returncode == 2 and "is taken" in taken.stderr and "usage:" not in taken.stderr
    assert json.loads(cli(stack, "download", "em/raw", "-o", str(tmp_path / "back.npy"), "--json").stdout)["sha256"] \
        == stored["sha256"]
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), raw)

    # run: one input by key, one a local file uploaded under the hood; --json prints the ended job
    run = cli(stack, "run", "em-to-connectome", "--input", "raw=em/raw", "--input",
              f"ground_truth={tmp_path / 'truth.npy'}", "--param", "voxel_size_nm=[8, 8, 8]",
              "--param", "thresholds=[0.3, 0.5]", "--param", "threshold=0.5", "--param", "min_segment_size=20",
              "--json")
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["state"] == "succeeded" and [s["id"] for s in job["steps"]] == ["segment", "contacts"]
    assert "segment" in run.stderr and "succeeded" in run.stderr  # progress lines went to stderr

    # download: the figure (a PNG with the recorded digest) and the labels (an array, as .npy)
    figure = cli(stack, "download", "--job", job["id"], "segment/figure", "-o", str(tmp_path / "figure.png"))
    assert figure.returncode == 0, figure.stderr
    assert (tmp_path / "figure.png").read_bytes()[:8] == PNG
    labels_run = cli(stack, "download", "--job", job["id"], "segment/segmentations.1.labels", "-o", str(tmp_path))
    assert labels_run.returncode == 0, labels_run.stderr
    labels = np.load(tmp_path / "labels-1.npy")
    assert labels.shape == truth.shape and labels.dtype == np.uint64
    assert adapted_rand_error(labels, truth)[0] < 0.3
    contacts = next(s for s in job["steps"] if s["id"] == "contacts")
    assert contacts["outputs"]["heatmap"]["media_type"] == "image/png"

    # jobs list / show: the job is there with its state; show --json is the gateway's document
    listing = json.loads(cli(stack, "jobs", "list", "--json").stdout)
    assert job["id"] in [j["id"] for j in listing["jobs"]]
    text = cli(stack, "jobs", "list", "--state", "succeeded").stdout
    assert job["id"] in text and "succeeded" in text
    shown = json.loads(cli(stack, "jobs", "show", job["id"], "--json").stdout)
    assert shown["id"] == job["id"] and shown["state"] == "succeeded"
    assert "segment/figure" in cli(stack, "jobs", "show", job["id"]).stdout

    # the same run again: the file is not uploaded again and every step is reused from the cache
    rerun = cli(stack, "run", "em-to-connectome", "--input", "raw=em/raw", "--input",
                f"ground_truth={tmp_path / 'truth.npy'}", "--param", "voxel_size_nm=[8, 8, 8]",
                "--param", "thresholds=[0.3, 0.5]", "--param", "threshold=0.5", "--param", "min_segment_size=20",
                "--json", "--quiet")
    assert rerun.returncode == 0 and "not uploaded again" in rerun.stderr
    assert all(s["reused"] for s in json.loads(rerun.stdout)["steps"])


def test_a_failed_job_exits_1_with_the_service_message(stack, tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((40, 40), np.float32))
    run = cli(stack, "run", "em-to-connectome", "--input", f"raw={tmp_path / 'flat.npy'}", "--quiet")
    assert run.returncode == 1
    assert "INVALID_ARGUMENT" in run.stderr and "raw must be a 3-D volume" in run.stderr
    assert "failed" in run.stdout


def test_jobs_cancel_stops_the_simulation_on_the_server(stack, tmp_path):
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps(LONG_SIMULATION))
    before = simulation_metrics(stack).get("CANCELLED", 0.0)
    submitted = cli(stack, "jobs", "submit", str(spec), "--detach")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    deadline = time.monotonic() + 60
    while simulation_metrics(stack).get("in_progress", 0.0) < 1:
        assert time.monotonic() < deadline, "the simulation never started"
        time.sleep(0.2)
    cancel = cli(stack, "jobs", "cancel", job_id, "--wait", "--json")
    assert cancel.returncode == 0, cancel.stderr
    assert json.loads(cancel.stdout)["state"] == "cancelled"
    wait_until_idle(stack)
    assert simulation_metrics(stack)["CANCELLED"] == before + 1
    watch = cli(stack, "jobs", "watch", job_id, "--quiet")
    assert watch.returncode == 1 and "cancelled" in watch.stderr


def test_ctrl_c_on_a_followed_job_cancels_it(stack, tmp_path):
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps(LONG_SIMULATION))
    before = simulation_metrics(stack).get("CANCELLED", 0.0)
    follower = subprocess.Popen([sys.executable, "-m", "neuromesh", "jobs", "submit", str(spec)], cwd=REPO,
                                env=stack["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while simulation_metrics(stack).get("in_progress", 0.0) < 1:
            assert time.monotonic() < deadline and follower.poll() is None, "the simulation never started"
            time.sleep(0.2)
        follower.send_signal(signal.SIGINT)          # what a terminal's Ctrl-C sends
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    job_id = next(line.split()[1] for line in err.splitlines() if line.startswith("job "))
    state = json.loads(cli(stack, "jobs", "show", job_id, "--json").stdout)["state"]
    assert state in ("cancelling", "cancelled")
    wait_until_idle(stack)
    assert simulation_metrics(stack)["CANCELLED"] == before + 1


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required: COMMAND"),
    (("run",), "the following arguments are required: pipeline"),
    (("run", "em-to-connectome", "--param", "oops"), "--param 'oops' is not NAME=VALUE"),
    (("run", "em-to-connectome", "--input", "brain=x"), "has no input 'brain'"),
    (("run", "em-to-connectome"), "needs --input for raw"),
    (("upload", "/no/such/file.npy"), "no file /no/such/file.npy"),
    (("download", "--job", "00000000-0000-0000-0000-000000000000", "no-slash"), "STEP/OUTPUT"),
    (("jobs", "list", "--limit", "many"), "invalid int value"),
    (("jobs", "frobnicate"), "invalid choice"),
])
def test_bad_arguments_give_usage_and_exit_2(stack, args, message):
    run = cli(stack, *args)
    assert run.returncode == 2, run.stderr
    assert "usage: neuromesh" in run.stderr and message in run.stderr


def test_refusals_of_the_gateway_have_their_exit_codes(stack, tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((8, 8, 8), np.float32))
    invalid = cli(stack, "run", "em-to-connectome", "--input", f"raw={tmp_path / 'cube.npy'}",
                  "--param", "thresholds=[2]")
    assert invalid.returncode == 2 and "thresholds must lie in [0, 1]" in invalid.stderr
    unknown = cli(stack, "run", "em-to-connectome", "--input", "raw=em/none")
    assert unknown.returncode == 3 and "ARTIFACT_NOT_FOUND" in unknown.stderr and "em/none" in unknown.stderr
    missing_job = cli(stack, "jobs", "show", "00000000-0000-0000-0000-000000000000")
    assert missing_job.returncode == 3 and "JOB_NOT_FOUND" in missing_job.stderr
    missing_pipeline = cli(stack, "pipelines", "no-such-pipeline")
    assert missing_pipeline.returncode == 3 and "em-to-connectome" in missing_pipeline.stderr
    assert cli(stack, "download", "no/such/key").returncode == 3

    wrong = tmp_path / "token"
    wrong.write_text("not-the-token\n")
    gateway = f"http://127.0.0.1:{8080 + stack['offset']}"
    refused = cli(stack, "jobs", "list", "--gateway", gateway, "--token-file", str(wrong))
    assert refused.returncode == 4 and "401" not in refused.stdout and refused.stderr.strip()
    nobody = cli(stack, "jobs", "list", "--gateway", "http://127.0.0.1:9", "--token-file", str(wrong))
    assert nobody.returncode == 4 and "no gateway" in nobody.stderr
    no_token = cli(stack, "jobs", "list", "--gateway", gateway)
    assert no_token.returncode == 2 and "no token" in no_token.stderr
    # the dev token by file works the same as the local default
    token_file = Path(stack["env"]["NEUROMESH_STATE_DIR"]) / "gateway-token"
    by_file = cli(stack, "jobs", "list", "--gateway", gateway, "--token-file", str(token_file), "--json")
    assert by_file.returncode == 0 and "jobs" in json.loads(by_file.stdout)


def test_the_sdk_runs_a_pipeline_on_arrays_and_follows_it(stack):
    from neuromesh.client import GatewayClient

    raw, truth = synthetic_em_volume((16, 40, 40), n_neurites=6, seed=8)
    gw = GatewayClient.local(stack["env"]["NEUROMESH_STATE_DIR"])
    submitted = gw.run_pipeline("em-to-connectome", inputs={"raw": raw, "ground_truth": truth},
                                params={"thresholds": [0.5], "min_segment_size": 10})
    seen = []
    job = gw.follow(submitted["id"], show=False, on_step=seen.append)
    assert job.succeeded, job.failure
    assert {s["id"] for s in seen} == {"segment", "contacts"}
    report = json.loads(gw.download(job.output("segment/report").as_json()))
    assert report["result"]["segmentations"][0]["scores"]["adaptedRandError"] < 0.3
    # the arrays are stored under their content: staging them again uploads nothing
    reused = []
    keys = [gw.stage_input(a, kind="array", on_reuse=reused.append) for a in (raw, truth)]
    assert reused == keys and all(k.startswith("uploads/") for k in keys) and keys[0] != keys[1]
    assert gw.artifact(keys[0])["shape"] == [16, 40, 40]
    with pytest.raises(ValueError, match="for an array input"):
        gw.stage_input(__file__, kind="array")
