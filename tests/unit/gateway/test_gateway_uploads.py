"""The uploads table on both backends: tenant scoping, one completion at a time, failures, expiry; job progress."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from gateway.artifacts.uploads import STALE_COMPLETION_S, UploadNotFound, UploadStore
from gateway.jobs.spec import ArtifactRef, parse_job_spec
from services.common.errors import FailedPrecondition

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def uploads(database):
    return UploadStore(database)


def new(uploads, tenant="lab-a", **fields):
    values = dict(key=f"tenants/{tenant}/x-{uuid.uuid4().hex[:6]}", staging_key=f"_staging/uploads/{uuid.uuid4()}",
                  kind="object", media_type="application/json", declared_sha256=None, declared_size=None,
                  expires_in_s=600, now=T0)
    values.update(fields)
    return uploads.create(tenant, **values)


def test_uploads_belong_to_their_tenant(uploads):
    row = new(uploads, declared_size=5 * 2**40)                       # sizes beyond 32 bits
    assert uploads.get("lab-a", row.id).declared_size == 5 * 2**40
    for tenant, upload_id in (("lab-b", row.id), ("lab-a", uuid.uuid4()), ("lab-a", "not-a-uuid")):
        with pytest.raises(UploadNotFound):
            uploads.get(tenant, upload_id)
        with pytest.raises(UploadNotFound):
            uploads.claim(tenant, upload_id)
    assert uploads.get("lab-a", row.id).state == "pending"


def test_one_completion_at_a_time_and_a_stale_one_can_be_taken_over(uploads):
    row = new(uploads)
    assert uploads.claim("lab-a", row.id, now=T0).state == "completing"
    with pytest.raises(FailedPrecondition, match="being completed by another request"):
        uploads.claim("lab-a", row.id, now=T0 + timedelta(seconds=1))
    # the first completion died: after the stale delay another may claim it (updated_at is the claim's time)
    later = datetime.now(timezone.utc) + timedelta(seconds=STALE_COMPLETION_S + 1)
    assert uploads.claim("lab-a", row.id, now=later).state == "completing"
    done = uploads.finish("lab-a", row.id, artifact={"key": row.key, "sha256": "0" * 64})
    assert done.state == "completed" and done.artifact["key"] == row.key
    assert uploads.claim("lab-a", row.id).state == "completed"        # completing again answers the same


def test_a_released_upload_is_pending_again_and_a_failed_one_stays_failed(uploads):
    row = new(uploads)
    uploads.claim("lab-a", row.id)
    uploads.release("lab-a", row.id)
    assert uploads.get("lab-a", row.id).state == "pending"
    uploads.claim("lab-a", row.id)
    failed = uploads.finish("lab-a", row.id, error="the uploaded bytes have sha256 ab..., not the announced cd...")
    assert failed.state == "failed" and "sha256" in failed.error_message
    with pytest.raises(FailedPrecondition, match="is failed: the uploaded bytes") as err:
        uploads.claim("lab-a", row.id)
    assert err.value.reason == "UPLOAD_FAILED"


def test_expired_pending_uploads_are_swept_once(uploads):
    old, fresh, done = new(uploads, expires_in_s=60), new(uploads, expires_in_s=3600), new(uploads, expires_in_s=60)
    uploads.claim("lab-a", done.id)
    uploads.finish("lab-a", done.id, artifact={"key": done.key})
    at = T0 + timedelta(minutes=5)
    assert [r.id for r in uploads.expired(now=at)] == [old.id]
    assert uploads.mark_expired(old.id, now=at) and not uploads.mark_expired(old.id, now=at)
    assert uploads.expired(now=at) == [] and uploads.get("lab-a", old.id).state == "expired"
    assert uploads.get("lab-a", fresh.id).state == "pending" and uploads.count() == 3


def test_job_progress_counts_succeeded_steps_whole_and_running_ones_by_their_progress(store):
    spec = parse_job_spec({"tenant": "lab-a", "steps": [
        {"id": s, "service": "simulation", "method": "Simulate"} for s in ("a", "b", "c", "d")]})
    job = store.submit(spec).job
    claimed = {c.step_id: c for c in store.claim_steps("gw", limit=2, lease_s=30)}
    assert set(claimed) == {"a", "b"}
    store.complete_step("gw", job.id, "a", outputs={"out": ArtifactRef(key="k", sha256="0" * 64)}, cache_key=None,
                        service_version=None)
    store.renew_lease("gw", job.id, "b", lease_s=30, progress=(0.5, "halfway"))
    assert store.job_progress([job.id]) == {job.id: pytest.approx((1 + 0.5) / 4)}
    assert store.job_progress([]) == {}
