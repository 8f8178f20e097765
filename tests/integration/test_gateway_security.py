"""Tenants, keys and limits against a real gateway process, a real S3 server and its SQLite job store.

What is refused must leave nothing behind: after every refused request the bucket holds the
same objects and the database the same rows as before.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import uuid

import httpx
import numpy as np
import pytest
from minio import Minio

from neuromesh.stack.processes import free_port
from test_gateway_support import TOKENS, gateway_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
MAX_UPLOAD = 64 * 1024


@pytest.fixture(scope="module")
def gateway(s3_server, module_bucket, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gateway-security")
    closed = f"127.0.0.1:{free_port()}"          # no service runs: these tests never need one to answer
    process = gateway_process(directory / "gateway.log", s3_server, module_bucket, f"sqlite:///{directory / 'jobs.db'}",
                              {"simulation": [closed]}, NEUROMESH_GATEWAY_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
                              NEUROMESH_GATEWAY_MAX_ATTEMPTS="1")
    process.start()
    process.db_path = directory / "jobs.db"
    yield process
    process.stop()


@pytest.fixture(scope="module")
def minio(s3_server):
    return Minio(s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key, secure=False)


def http(gateway, tenant: str | None = "lab-a") -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKENS[tenant]}"} if tenant else {}
    return httpx.Client(base_url=gateway.url, headers=headers, timeout=30)


def snapshot(gateway, minio, bucket) -> tuple:
    """Everything a request could have written: every object in the bucket, every row of the database."""
    objects = sorted((o.object_name, o.etag) for o in minio.list_objects(bucket, recursive=True))
    with sqlite3.connect(gateway.db_path) as db:
        rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("jobs", "job_steps", "uploads")}
    return objects, rows


def upload(client: httpx.Client, key: str, data: bytes, **fields) -> httpx.Response:
    created = client.post("/v1/uploads", json={"key": key, **fields})
    assert created.status_code == 201, created.text
    assert httpx.put(created.json()["url"], content=data).status_code == 200
    return client.post(created.json()["complete_url"], json={})


def sim_job(**inputs) -> dict:
    return {"steps": [{"id": "sim", "service": "simulation", "method": "Simulate", "params": {"duration_ms": 100}}]} \
        if not inputs else {"steps": [{"id": "fit", "service": "reduction", "method": "Fit", "inputs": inputs}]}


def test_without_a_valid_token_everything_is_401(gateway):
    for client in (http(gateway, None), httpx.Client(base_url=gateway.url, headers={"Authorization": "Bearer x"})):
        for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", f"/v1/jobs/{uuid.uuid4()}/events"),
                             ("POST", "/v1/uploads"), ("GET", "/v1/artifacts"), ("GET", "/v1/artifacts/a/b")):
            answer = client.request(method, path, json={"steps": []})
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer"), path
    assert http(gateway, None).get("/healthz").status_code == 200


def test_a_tenant_never_sees_what_another_owns(gateway, minio, module_bucket):
    a, b = http(gateway, "lab-a"), http(gateway, "lab-b")
    done = upload(a, "notes/secret.json", b'{"mine": true}', media_type="application/json")
    assert done.status_code == 201, done.text
    pending = a.post("/v1/uploads", json={"key": "notes/later.json"}).json()
    job = a.post("/v1/jobs", json=sim_job()).json()

    for answer in (b.get("/v1/artifacts/notes/secret.json"), b.get(f"/v1/uploads/{pending['upload_id']}"),
                   b.post(f"/v1/uploads/{pending['upload_id']}:complete"), b.get(f"/v1/jobs/{job['id']}"),
                   b.post(f"/v1/jobs/{job['id']}:cancel"), b.get(f"/v1/jobs/{job['id']}/events")):
        assert answer.status_code == 404, answer.text
    assert b.get("/v1/artifacts").json()["artifacts"] == [] and b.get("/v1/jobs").json()["jobs"] == []
    # B naming the same key in a job reads its own namespace, where there is nothing
    uses = b.post("/v1/jobs", json=sim_job(activity={"artifact": {"key": "notes/secret.json"}}))
    assert uses.status_code == 404 and uses.json()["error"]["field"] == "steps[0].inputs.activity.artifact.key"
    # ...and cannot climb out of it
    climbs = b.post("/v1/jobs", json=sim_job(activity={"artifact": {"key": "../lab-a/notes/secret.json"}}))
    assert climbs.status_code == 400 and climbs.json()["error"]["reason"] == "INVALID_KEY"
    # A still has all of it
    assert a.get("/v1/artifacts/notes/secret.json").json()["sha256"] == hashlib.sha256(b'{"mine": true}').hexdigest()
    assert a.get(f"/v1/jobs/{job['id']}").status_code == 200
    assert [x["key"] for x in a.get("/v1/artifacts").json()["artifacts"]] == ["notes/secret.json"]


@pytest.mark.parametrize("key", ["../lab-b/x", "a/../../lab-b/x", "/tenants/lab-b/x", "a//b", "a/./b", ".git/config",
                                 "a\\..\\b", "%2e%2e/x", "x\u202e", "k" * 600, "a/" * 40 + "b", "a\nb"])
def test_bad_keys_are_refused_and_nothing_is_written(gateway, minio, module_bucket, key):
    client = http(gateway)
    before = snapshot(gateway, minio, module_bucket)
    created = client.post("/v1/uploads", json={"key": key, "kind": "object"})
    assert created.status_code == 400 and created.json()["error"]["reason"] in ("INVALID_KEY", "INVALID_ARGUMENT"), \
        created.text
    submitted = client.post("/v1/jobs", json=sim_job(activity={"artifact": {"key": key}}))
    assert submitted.status_code == 400, submitted.text
    assert snapshot(gateway, minio, module_bucket) == before


@pytest.mark.parametrize("path", ["/v1/artifacts/%2e%2e/lab-b/x", "/v1/artifacts/a/%2e%2e/%2e%2e/lab-b/x",
                                  "/v1/artifacts/%2Ftenants%2Flab-b%2Fx", "/v1/artifacts/a%5C..%5Cb"])
def test_encoded_traversal_in_artifact_paths_is_refused(gateway, path):
    answer = http(gateway).get(path)
    assert answer.status_code in (400, 404) and answer.json()["error"]["reason"] in ("INVALID_KEY", "NOT_FOUND",
                                                                                   "ARTIFACT_NOT_FOUND"), answer.text


def test_oversized_bodies_are_413_and_nothing_is_written(gateway, minio, module_bucket):
    client = http(gateway)
    before = snapshot(gateway, minio, module_bucket)
    big_job = {"steps": [{"id": "sim", "service": "simulation", "method": "Simulate",
                          "params": {"network": {"populations": [{"name": f"p{i}", "size": 1}
                                                                 for i in range(60_000)]}}}]}
    body = json.dumps(big_job).encode()
    assert len(body) > 1024 * 1024
    declared = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"]["reason"] == "PAYLOAD_TOO_LARGE"

    def chunked():
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    streamed = client.post("/v1/uploads", content=chunked(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert snapshot(gateway, minio, module_bucket) == before


def test_a_wrong_digest_or_size_fails_the_upload_and_deletes_its_bytes(gateway, minio, module_bucket):
    client = http(gateway)
    objects_before = snapshot(gateway, minio, module_bucket)[0]
    data = b"the real bytes"
    created = client.post("/v1/uploads", json={"key": "checked/blob", "sha256": hashlib.sha256(b"other").hexdigest()})
    assert httpx.put(created.json()["url"], content=data).status_code == 200
    refused = client.post(created.json()["complete_url"])
    assert refused.status_code == 400 and refused.json()["error"]["reason"] == "SHA256_MISMATCH"
    assert client.get(f"/v1/uploads/{created.json()['upload_id']}").json()["state"] == "failed"
    assert client.get("/v1/artifacts/checked/blob").status_code == 404
    too_big = client.post("/v1/uploads", json={"key": "checked/big", "size_bytes": MAX_UPLOAD + 1})
    assert too_big.status_code == 413
    sneaky = upload(client, "checked/big", b"x" * (MAX_UPLOAD + 1))            # announced nothing, sent too much
    assert sneaky.status_code == 413 and sneaky.json()["error"]["reason"] == "UPLOAD_TOO_LARGE"
    assert snapshot(gateway, minio, module_bucket)[0] == objects_before        # staged bytes deleted
    # the key is still free: a correct upload to it works
    assert upload(client, "checked/blob", data).json()["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_uploads_are_stored_as_services_read_them(gateway, minio, module_bucket):
    client = http(gateway)
    report = json.dumps({"trials": 12}).encode()
    stored = upload(client, "meta/report.json", report, media_type="application/json").json()["artifact"]
    head = minio.stat_object(module_bucket, "tenants/lab-a/meta/report.json")
    assert head.metadata["x-amz-meta-sha256"] == hashlib.sha256(report).hexdigest() == stored["sha256"]
    assert head.content_type == "application/json"
    assert httpx.get(stored["download_url"]).content == report
    taken = client.post("/v1/uploads", json={"key": "meta/report.json"})
    assert taken.status_code == 409 and taken.json()["error"]["reason"] == "ARTIFACT_EXISTS"

    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused = upload(client, "meta/objects", pickled.getvalue(), kind="array")
    assert refused.status_code == 400 and refused.json()["error"]["reason"] == "NOT_AN_NPY_FILE"
    assert client.get("/v1/artifacts/meta/objects").status_code == 404
