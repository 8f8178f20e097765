"""The gateway end to end over HTTP, on SQLite and on PostgreSQL: real gateway, S3 and service processes.

An array goes up through a presigned URL; a three-step job of real calls (simulation ``Simulate``
-> reduction ``Fit`` PCA of its binned counts -> reduction ``Transform`` of the uploaded array under
that model) is watched through server-sent events and GET until it succeeds; a figure is
downloaded and checked against its digest. A second identical job reuses every step without
calling a service (the services' ``grpc_server_handled_total`` does not move), and an
idempotency key answers the same job again.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request

import httpx
import numpy as np
import pytest

from services.simulation.core import cortical_column
from test_gateway_support import TOKENS, calls, client, database_url, gateway_process, scrape, start_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SEED = {"sqlite": 11, "postgresql": 12}   # each backend's job is computed afresh by the services
SCALE = 0.05                              # a cortical column of 3900 neurons: a few seconds, progress all along


@pytest.fixture(scope="module")
def services(s3_server, module_bucket, tmp_path_factory):
    processes = start_services(s3_server, module_bucket, ["simulation", "reduction"],
                               tmp_path_factory.mktemp("gateway-api-services"))
    yield dict(zip(["simulation", "reduction"], processes))
    for p in processes:
        p.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def gateway(backend, services, s3_server, module_bucket, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"gateway-api-{backend}")
    with database_url(backend, directory, "gateway_api") as url:
        process = gateway_process(directory / "gateway.log", s3_server, module_bucket, url,
                                  {name: [p.address] for name, p in services.items()})
        process.start()
        yield process
        process.stop()


def job_spec(seed: int, key: str) -> dict:
    return {"steps": [
        {"id": "simulate", "service": "simulation", "method": "Simulate",
         "params": {"duration_ms": 2000, "bin_ms": 20, "network": {"cortical_column": {"scale": SCALE}, "seed": seed}}},
        {"id": "pca", "service": "reduction", "method": "Fit",
         "params": {"method": {"name": "pca", "params": {"n_components": 3}}, "seed": seed},
         "inputs": {"activity": {"step": "simulate", "output": "binned_counts"}}},
        {"id": "project", "service": "reduction", "method": "Transform",
         "inputs": {"model": {"step": "pca", "output": "model"},
                    "activity": {"artifact": {"key": key}}}},
    ]}


def upload_through_presigned_url(gateway, key: str, array: np.ndarray) -> dict:
    """The upload protocol by hand: create, one PUT straight to the object store, complete."""
    http = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {TOKENS['lab-a']}"}, timeout=60)
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    created = http.post("/v1/uploads", json={"key": key, "kind": "array", "size_bytes": len(data)})
    assert created.status_code == 201, created.text
    upload = created.json()
    assert upload["state"] == "pending" and upload["method"] == "PUT" and upload["url"].startswith("http://")
    assert "/tenants/" not in upload["url"]              # the bytes land in staging, not under the tenant yet
    early = http.post(upload["complete_url"])
    assert early.status_code == 409 and early.json()["error"]["reason"] == "UPLOAD_EMPTY"
    put = httpx.put(upload["url"], content=data, timeout=60)
    assert put.status_code == 200, put.text
    done = http.post(upload["complete_url"], json={"sha256": hashlib.sha256(data).hexdigest()})
    assert done.status_code == 201, done.text
    assert http.get(f"/v1/uploads/{upload['upload_id']}").json()["state"] == "completed"
    assert http.post(upload["complete_url"]).json()["artifact"] == done.json()["artifact"]   # a retry is harmless
    return done.json()["artifact"]


def test_upload_submit_watch_download_and_reuse(gateway, services, backend):
    lab = client(gateway)
    simulation, reduction = services["simulation"], services["reduction"]
    n_neurons = sum(p.size for p in cortical_column(scale=SCALE, seed=0).populations)   # every one is counted

    # --- an array through the presigned URL; the gateway computes its digest
    activity = np.random.default_rng(SEED[backend]).poisson(0.5, (40, n_neurons)).astype(np.float32)
    key = f"sessions/{backend}/activity"      # one bucket for both backends' gateways: a key each
    artifact = upload_through_presigned_url(gateway, key, activity)
    assert artifact["key"] == key and artifact["media_type"] == "application/vnd.zarr.v3"
    assert artifact["shape"] == [40, n_neurons] and artifact["dtype"] == "float32"
    assert artifact["sha256"] == hashlib.sha256(activity.tobytes()).hexdigest()
    assert artifact["uri"].endswith(f"/tenants/lab-a/{key}") and artifact["download_url"] is None
    assert lab.artifact(key)["sha256"] == artifact["sha256"]
    _, listing, _ = lab.request("GET", f"/v1/artifacts?prefix=sessions/{backend}/")
    assert [(a["key"], a["kind"]) for a in listing["artifacts"]] == [(key, "array")]

    # --- a job of three real calls, watched as events
    before = calls(simulation, "Simulate")["Simulate"].get("OK", 0), calls(reduction, "Fit", "Transform")
    job = lab.submit(job_spec(SEED[backend], key))
    assert job["state"] in ("pending", "running") and [s["id"] for s in job["steps"]] == ["simulate", "pca", "project"]
    events = list(lab.events(job["id"]))
    kinds = [e for e, _ in events]
    assert kinds[0] == "job" and kinds[-1] == "end" and "step" in kinds
    simulated = [d["step"] for e, d in events if e == "step" and d["step"]["id"] == "simulate"]
    running = [s["progress"] for s in simulated if s["state"] == "running" and s["progress"] is not None]
    assert any(0 < p < 1 for p in running), simulated                  # progress while it ran
    assert running == sorted(running)
    assert simulated[-1]["state"] == "succeeded"
    final = events[-1][1]
    assert final["state"] == "succeeded" and final["progress"] == 1.0, (final["error"], [s["error"] for s in final["steps"]])

    # --- the same through GET: every step succeeded with its outputs
    done = lab.job(job["id"])
    assert done["state"] == "succeeded" and all(s["state"] == "succeeded" and not s["reused"] for s in done["steps"])
    steps = {s["id"]: s for s in done["steps"]}
    assert {"binned_counts", "figure", "summary", "report"} <= set(steps["simulate"]["outputs"])
    assert {"model", "latents", "components_figure", "report"} <= set(steps["pca"]["outputs"])
    latents = steps["project"]["outputs"]["latents"]
    assert latents["shape"] == [40, 3] and latents["media_type"] == "application/vnd.zarr.v3"
    assert steps["pca"]["depends_on"] == ["simulate"] and sorted(steps["project"]["depends_on"]) == ["pca"]
    assert calls(simulation, "Simulate")["Simulate"]["OK"] == before[0] + 1
    assert calls(reduction, "Fit", "Transform") == {
        m: {**before[1][m], "OK": before[1][m].get("OK", 0) + 1} for m in ("Fit", "Transform")}

    # --- download an output through its presigned URL: a PNG with the recorded digest
    figure = steps["simulate"]["outputs"]["figure"]
    assert figure["media_type"] == "image/png"
    with urllib.request.urlopen(figure["download_url"], timeout=30) as reply:
        png = reply.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and hashlib.sha256(png).hexdigest() == figure["sha256"]
    assert lab.download(steps["pca"]["outputs"]["report"])[:1] == b"{"

    # --- the same job again: every step from the cache, no service called
    counters = calls(simulation, "Simulate"), calls(reduction, "Fit", "Transform")
    reused_before = scrape(gateway.http_port).get("neuromesh_gateway_steps_reused_total{service=reduction}", 0.0)
    again = lab.submit(job_spec(SEED[backend], key), idempotency_key=f"repeat-{backend}")
    assert again["id"] != job["id"]
    repeated = lab.wait(again["id"], timeout_s=60)
    assert repeated["state"] == "succeeded" and all(s["reused"] for s in repeated["steps"]), repeated
    assert {s["id"]: s["outputs"]["report"]["sha256"] if "report" in s["outputs"] else None
            for s in repeated["steps"]} == {s["id"]: s["outputs"]["report"]["sha256"] if "report" in s["outputs"]
                                             else None for s in done["steps"]}
    assert (calls(simulation, "Simulate"), calls(reduction, "Fit", "Transform")) == counters
    metrics = wait_for(lambda: (m := scrape(gateway.http_port)).get("neuromesh_gateway_jobs{state=succeeded}") == 2
                       and m, 10, "the jobs gauge to count both jobs")
    assert metrics["neuromesh_gateway_steps_reused_total{service=reduction}"] - reused_before == 2
    assert metrics["neuromesh_gateway_runnable_steps"] == 0
    assert "neuromesh_gateway_step_duration_seconds_count{outcome=succeeded,service=simulation}" in metrics
    assert metrics["neuromesh_gateway_http_requests_total{method=POST,route=/v1/jobs,status=202}"] >= 2

    # --- the idempotency key answers the same job, without a new one
    status, same, headers = lab.request("POST", "/v1/jobs", job_spec(SEED[backend], key),
                                        headers={"Idempotency-Key": f"repeat-{backend}"})
    assert status == 200 and same["id"] == again["id"] and headers["location"] == f"/v1/jobs/{again['id']}"
    _, page, _ = lab.request("GET", "/v1/jobs?state=succeeded&limit=100")
    assert sorted(j["id"] for j in page["jobs"]) == sorted([job["id"], again["id"]])
    assert (calls(simulation, "Simulate"), calls(reduction, "Fit", "Transform")) == counters
