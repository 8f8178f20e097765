"""The HTTP app in-process (FastAPI's test client, an SQLite job store): auth, tenants, limits, errors, jobs.

No object store and no service runs here: these routes answer from the job store alone, and
the runner is off (``run_jobs=False``), so submitted jobs stay as submitted. The same behaviour
against a real gateway process, S3 server and services is in tests/integration/test_gateway_*.py.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import warnings

import pytest
from prometheus_client import REGISTRY

from gateway.api.app import Gateway, create_app
from gateway.jobs.settings import load_job_settings
from gateway.settings import load_gateway_settings
from neuromesh.stack.processes import free_port
from services.common.settings import load_settings

with warnings.catch_warnings():   # Starlette asks for httpx2 under its test client; it works the same with httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKENS = {"lab-a": "token-of-lab-a", "lab-b": "token-of-lab-b"}
MAX_BODY = 16 * 1024


def auth(tenant):
    return {"Authorization": f"Bearer {TOKENS[tenant]}"}


def sim_step(step_id="sim", duration_ms=100.0):
    return {"id": step_id, "service": "simulation", "method": "Simulate",
            "params": {"duration_ms": duration_ms, "network": {"vogels_abbott": {"kind": "VOGELS_ABBOTT_KIND_CUBA"}}}}


@pytest.fixture
def client(tmp_path):
    closed = f"127.0.0.1:{free_port()}"     # nothing listens: the object store and services are not used here
    gateway = Gateway(load_settings(s3_endpoint=closed),
                      load_job_settings(database_url=f"sqlite:///{tmp_path / 'gateway.db'}"),
                      load_gateway_settings(tokens={t: hashlib.sha256(v.encode()).hexdigest() for t, v in TOKENS.items()},
                                            endpoints={"simulation": [closed]}, max_body_bytes=MAX_BODY),
                      run_jobs=False)
    app = create_app(gateway)

    @app.get("/v1/boom", include_in_schema=False)
    async def boom():
        raise RuntimeError("a secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def submit(client, tenant="lab-a", steps=None, **headers):
    return client.post("/v1/jobs", json={"steps": steps or [sim_step()]}, headers={**auth(tenant), **headers})


def test_every_v1_route_needs_a_token(client):
    doc = client.get("/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "a tenant's token: Authorization: Bearer <token>"}
    job_id = str(uuid.uuid4())
    routes = [(m, p) for p, item in doc["paths"].items() for m in item if p.startswith("/v1/")]
    assert len(routes) >= 10
    for method, path in routes:
        url = path.replace("{job_id}", job_id).replace("{upload_id}", job_id).replace("{key}", "a/b")
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": TOKENS["lab-a"]}):
            # an invalid body must not matter: authentication comes first
            answer = client.request(method.upper(), url, headers=headers, content=b"{not json")
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert set(answer.json()["error"]) == {"reason", "message", "field"}


def test_another_tenants_job_is_not_found_exactly_like_a_missing_one(client):
    created = submit(client, "lab-a")
    assert created.status_code == 202 and created.headers["location"] == f"/v1/jobs/{created.json()['id']}"
    job_id = created.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=auth("lab-a")).json()["state"] == "pending"

    missing = str(uuid.uuid4())
    for make in (lambda i: client.get(f"/v1/jobs/{i}", headers=auth("lab-b")),
                 lambda i: client.post(f"/v1/jobs/{i}:cancel", headers=auth("lab-b")),
                 lambda i: client.get(f"/v1/jobs/{i}/events", headers=auth("lab-b"))):
        theirs, nobodys = make(job_id), make(missing)
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json()["error"]["reason"] == nobodys.json()["error"]["reason"] == "JOB_NOT_FOUND"
        assert theirs.json()["error"]["message"].replace(job_id, "ID") == \
            nobodys.json()["error"]["message"].replace(missing, "ID")
    assert client.get("/v1/jobs", headers=auth("lab-b")).json()["jobs"] == []
    assert client.get(f"/v1/jobs/{job_id}", headers=auth("lab-a")).json()["state"] == "pending"  # B's cancel did nothing
    assert client.get("/v1/jobs/not-a-uuid", headers=auth("lab-a")).status_code == 404


def test_idempotency_key_returns_the_same_job(client):
    first = submit(client, **{"Idempotency-Key": "session-12"})
    again = submit(client, **{"Idempotency-Key": "session-12"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] and again.headers["location"] == first.headers["location"]
    other = submit(client, steps=[sim_step(duration_ms=200.0)], **{"Idempotency-Key": "session-12"})
    assert other.status_code == 409 and other.json()["error"]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    # the key is per tenant: another tenant's same key is its own job
    theirs = submit(client, "lab-b", **{"Idempotency-Key": "session-12"})
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    mismatch = client.post("/v1/jobs", json={"steps": [sim_step()], "idempotency_key": "a"},
                           headers={**auth("lab-a"), "Idempotency-Key": "b"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["field"] == "idempotency_key"
    assert len(client.get("/v1/jobs", headers=auth("lab-a")).json()["jobs"]) == 1


def test_bodies_over_the_limit_are_413_before_they_are_read(client):
    big = b'{"steps": [' + b" " * (MAX_BODY + 10) + b"]}"
    declared = client.post("/v1/jobs", content=big, headers={**auth("lab-a"), "Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"]["reason"] == "PAYLOAD_TOO_LARGE"

    def chunks():                         # no Content-Length: counted as it arrives
        yield b'{"steps": ['
        for _ in range(40):
            yield b" " * 1024
        yield b"]}"

    chunked = client.post("/v1/jobs", content=chunks(), headers={**auth("lab-a"), "Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["reason"] == "PAYLOAD_TOO_LARGE"
    assert client.get("/v1/jobs", headers=auth("lab-a")).json()["jobs"] == []


@pytest.mark.parametrize("body, field, words", [
    ({"steps": []}, "steps", "at least 1"),
    ({"steps": [sim_step()], "tenant": "lab-b"}, "tenant", "Extra inputs"),
    ({"steps": [{**sim_step(), "method": "Simulat"}]}, "steps[0].method", "no method 'Simulat'"),
    ({"steps": [{**sim_step(), "params": {"duration_ms": "long"}}]}, "steps[0].params", "duration_ms"),
    ({"steps": [sim_step("a"), sim_step("a")]}, "steps[1].id", "duplicate step id"),
    ({"steps": [{"id": "fit", "service": "reduction", "method": "Fit",
                 "inputs": {"activity": {"step": "nope", "output": "binned_counts"}}}]}, "steps[0].inputs.activity",
     "not in the job"),
    ({"steps": [sim_step(), {"id": "fit", "service": "reduction", "method": "Fit",
                             "inputs": {"activity": {"step": "sim", "output": "counts"}}}]},
     "steps[1].inputs.activity", "has no output 'counts'"),
    ({"steps": [{"id": "fit", "service": "reduction", "method": "Fit",
                 "inputs": {"activity": {"artifact": {"key": "../lab-b/x"}}}}]}, "steps[0].inputs.activity.artifact.key",
     "invalid key"),
])
def test_invalid_jobs_are_400_naming_the_field(client, body, field, words):
    answer = client.post("/v1/jobs", json=body, headers=auth("lab-a"))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert client.get("/v1/jobs", headers=auth("lab-a")).json()["jobs"] == []


def test_errors_are_json_without_internals(client):
    for answer, status, reason in ((client.get("/nowhere"), 404, "NOT_FOUND"),
                                   (client.delete("/v1/jobs", headers=auth("lab-a")), 405, "METHOD_NOT_ALLOWED"),
                                   (client.post("/v1/jobs", content=b"{oops", headers={**auth("lab-a"),
                                                "Content-Type": "application/json"}), 400, "INVALID_ARGUMENT"),
                                   (client.get("/v1/jobs?limit=0", headers=auth("lab-a")), 400, "INVALID_ARGUMENT"),
                                   (client.get("/v1/jobs?cursor=zzz", headers=auth("lab-a")), 400, "INVALID_ARGUMENT"),
                                   (client.get("/v1/boom", headers=auth("lab-a")), 500, "INTERNAL")):
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["reason"] == reason
        assert "Traceback" not in answer.text and "secret internal detail" not in answer.text


def test_listing_filters_and_pages(client):
    ids = [submit(client, steps=[sim_step(duration_ms=100.0 + i)]).json()["id"] for i in range(5)]
    cancelled = client.post(f"/v1/jobs/{ids[1]}:cancel", headers=auth("lab-a"))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"   # nothing of it ran
    seen, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=auth("lab-a")).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]                                                           # newest first, no repeats
    only = client.get("/v1/jobs", params={"state": "cancelled"}, headers=auth("lab-a")).json()["jobs"]
    assert [j["id"] for j in only] == [ids[1]]
    both = client.get("/v1/jobs", params=[("state", "cancelled"), ("state", "pending")], headers=auth("lab-a"))
    assert len(both.json()["jobs"]) == 5
    future = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    assert client.get("/v1/jobs", params={"created_after": future}, headers=auth("lab-a")).json()["jobs"] == []
    assert len(client.get("/v1/jobs", params={"created_before": future}, headers=auth("lab-a")).json()["jobs"]) == 5
    summary = only[0]
    assert summary["links"] == {"self": f"/v1/jobs/{ids[1]}", "events": f"/v1/jobs/{ids[1]}/events",
                                "cancel": f"/v1/jobs/{ids[1]}:cancel"}
    assert summary["services"] == ["simulation"] and summary["progress"] == 0.0


def test_metrics_count_requests_by_route_and_submissions(client):
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    route = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    refused = {**route, "status": "401"}       # answered before routing, still counted by its route
    before, submitted = sample("neuromesh_gateway_http_requests_total", **route), \
        sample("neuromesh_gateway_jobs_submitted_total")
    refused_before = sample("neuromesh_gateway_http_requests_total", **refused)
    for _ in range(3):
        client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth("lab-a"))
    client.get(f"/v1/jobs/{uuid.uuid4()}")
    submit(client, **{"Idempotency-Key": "once"})
    submit(client, **{"Idempotency-Key": "once"})                      # a repeat is not a new job
    text = client.get("/metrics").text
    assert sample("neuromesh_gateway_http_requests_total", **route) - before == 3
    assert sample("neuromesh_gateway_http_requests_total", **refused) - refused_before == 1
    assert sample("neuromesh_gateway_jobs_submitted_total") - submitted == 1
    assert 'neuromesh_gateway_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/jobs/{job_id}"}' \
        in text
    assert not any(str(i) in text for i in range(10**6, 10**6 + 1))  # no per-request series


def test_pages_and_documents_are_served_without_a_token(client):
    page = client.get("/")
    assert page.status_code == 200 and "token-input" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    for asset in ("/static/app.js", "/static/style.css", "/static/docs.js", "/v1/docs"):
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in page.text.lower() and "https://" not in client.get("/v1/docs").text
    doc = client.get("/v1/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}:cancel", "/v1/jobs/{job_id}/events", "/v1/uploads",
            "/v1/uploads/{upload_id}:complete", "/v1/artifacts", "/v1/artifacts/{key}", "/healthz", "/readyz",
            "/metrics"} <= set(doc["paths"])
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")            # the object store of this test is unreachable on purpose
    assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["object_store"]["ok"] is False


def test_named_pipelines_make_jobs_checked_like_any_other(client):
    listed = client.get("/v1/pipelines", headers=auth("lab-a"))
    assert listed.status_code == 200
    names = [p["name"] for p in listed.json()["pipelines"]]
    assert names == sorted(names) and {"simulate-and-analyse", "em-to-connectome"} <= set(names)
    described = client.get("/v1/pipelines/simulate-and-analyse", headers=auth("lab-a")).json()
    assert "runs_per_condition" in described["params_schema"]["properties"]
    missing = client.get("/v1/pipelines/no-such", headers=auth("lab-a"))
    assert missing.status_code == 404 and missing.json()["error"]["reason"] == "PIPELINE_NOT_FOUND"

    bad = client.post("/v1/pipelines/simulate-and-analyse/jobs", json={"params": {"runs_per_condition": "many"}},
                      headers=auth("lab-a"))
    assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("params.runs_per_condition")
    needs = client.post("/v1/pipelines/em-to-connectome/jobs", json={}, headers=auth("lab-a"))
    assert needs.status_code == 400 and needs.json()["error"]["field"].startswith("inputs.")

    made = client.post("/v1/pipelines/simulate-and-analyse/jobs", json={"params": {"runs_per_condition": 2}},
                       headers={**auth("lab-a"), "Idempotency-Key": "sweep-1"})
    assert made.status_code == 202, made.text
    steps = {s["id"]: s for s in made.json()["steps"]}
    assert sum(s["method"] == "Simulate" for s in steps.values()) == 4
    gathering = [s for s in steps.values() if s["service"] == "gateway"]
    assert gathering and all(s["depends_on"] for s in gathering)          # the fan-in waits for the fan-out
    again = client.post("/v1/pipelines/simulate-and-analyse/jobs", json={"params": {"runs_per_condition": 2}},
                        headers={**auth("lab-a"), "Idempotency-Key": "sweep-1"})
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    assert client.get(made.headers["location"], headers=auth("lab-b")).status_code == 404
