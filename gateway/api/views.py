"""Jobs, steps and artifacts as the API shows them (the JSON of :mod:`gateway.api.models`).

Outputs carry a presigned download URL when they are single objects (figures, JSON reports,
models); arrays are many objects and are opened with zarr at their ``uri``.

Example
-------
>>> job_links("0d4b2d1c-0000-4000-8000-000000000000")["events"]
'/v1/jobs/0d4b2d1c-0000-4000-8000-000000000000/events'
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from google.protobuf import json_format

from gateway.artifacts.keys import user_key
from gateway.artifacts.service import ArtifactService, ref_to_dict
from gateway.artifacts.uploads import UploadRecord
from gateway.jobs.records import JobRecord, StepRecord
from gateway.jobs.spec import ArtifactInput, ArtifactRef
from gateway.jobs.states import StepState
from neuromesh.common.v1.artifact_pb2 import ArtifactRef as ProtoRef


def job_links(job_id: UUID | str) -> dict[str, str]:
    return {"self": f"/v1/jobs/{job_id}", "events": f"/v1/jobs/{job_id}/events", "cancel": f"/v1/jobs/{job_id}:cancel"}


def _error(code: str | None, message: str | None) -> dict[str, str] | None:
    return {"code": code, "message": message or ""} if code else None


def artifact_view(ref: ProtoRef | ArtifactRef, artifacts: ArtifactService, *, tenant: str | None = None,
                  with_url: bool = True) -> dict[str, Any]:
    """An artifact reference as the API shows it; ``tenant`` given: its key relative to the tenant."""
    if isinstance(ref, ArtifactRef):
        bucket, key, sha, media, size = ref.bucket or artifacts.bucket, ref.key, ref.sha256, ref.media_type, ref.size
        shape, dtype, etag = (list(ref.shape) if ref.shape else None), ref.dtype, ref.etag
    else:
        raw = ref_to_dict(ref)
        bucket, key, sha, media = ref.bucket or artifacts.bucket, ref.key, ref.sha256, ref.media_type
        size, shape, dtype, etag = raw.get("size_bytes"), raw.get("shape"), ref.dtype or None, ref.etag or None
    shown = (user_key(tenant, key) if tenant else None) or key
    view: dict[str, Any] = {"key": shown, "uri": f"s3://{bucket}/{key}", "sha256": sha,
                            "media_type": media or "application/octet-stream", "size_bytes": int(size or 0),
                            "shape": shape, "dtype": dtype, "etag": etag}
    if with_url:
        url, expires = artifacts.download_url(ref)
        view.update(download_url=url, download_expires_at=expires)
    return view


def _step_view(step: StepRecord, tenant: str, artifacts: ArtifactService, with_urls: bool) -> dict[str, Any]:
    outputs = {}
    for name, ref in (step.outputs or {}).items():
        outputs[name] = artifact_view(ref, artifacts, with_url=with_urls)
    inputs: dict[str, Any] = {}
    for path, value in step.spec.inputs.items():
        if isinstance(value, ArtifactInput):
            inputs[path] = {"artifact": {"key": user_key(tenant, value.artifact.key) or value.artifact.key,
                                         "sha256": value.artifact.sha256}}
        else:
            inputs[path] = {"step": value.step, "output": value.output}
    progress = 1.0 if step.state == StepState.SUCCEEDED else step.progress
    return {"id": step.step_id, "service": step.service, "method": step.method, "state": step.state.value,
            "depends_on": list(step.depends_on), "attempts": step.attempts, "progress": progress,
            "progress_message": step.progress_message, "reused": step.reused,
            "error": _error(step.error_code, step.error_message) if step.state != StepState.SUCCEEDED else None,
            "started_at": step.started_at, "finished_at": step.finished_at, "outputs": outputs,
            "params": step.spec.params, "inputs": inputs}


def job_summary(job: JobRecord, progress: float) -> dict[str, Any]:
    return {"id": str(job.id), "state": job.state.value, "progress": round(progress, 6),
            "idempotency_key": job.idempotency_key, "error": _error(job.error_code, job.error_message),
            "created_at": job.created_at, "updated_at": job.updated_at, "finished_at": job.finished_at,
            "step_counts": {s.value: n for s, n in job.step_counts.items()},
            "services": sorted({s.service for s in job.spec.steps}), "links": job_links(job.id)}


def job_progress(job: JobRecord) -> float:
    """Succeeded steps count 1, running ones their progress, the rest 0; averaged over the steps."""
    if not job.steps:
        return 0.0
    done = sum(1.0 if s.state == StepState.SUCCEEDED else (s.progress or 0.0) if s.state == StepState.RUNNING
               else 0.0 for s in job.steps)
    return min(1.0, done / len(job.steps))


def job_view(job: JobRecord, artifacts: ArtifactService, *, with_urls: bool = True) -> dict[str, Any]:
    return {**job_summary(job, job_progress(job)), "steps": [_step_view(s, job.tenant, artifacts, with_urls)
                                                                for s in job.steps]}


def upload_view(record: UploadRecord, artifacts: ArtifactService, *, url: str | None = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    artifact = None
    if record.artifact:
        ref = json_format.ParseDict(record.artifact, ProtoRef())
        artifact = artifact_view(ref, artifacts, tenant=record.tenant)
    return {"upload_id": str(record.id), "key": user_key(record.tenant, record.key) or record.key,
            "kind": record.kind, "media_type": record.media_type, "state": record.state, "method": "PUT",
            "url": url, "headers": headers or {}, "expires_at": record.expires_at, "created_at": record.created_at,
            "artifact": artifact, "error": record.error_message,
            "complete_url": f"/v1/uploads/{record.id}:complete"}
