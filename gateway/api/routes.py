"""The routes of the HTTP API, version 1 (``/v1``), and the operational ones (health, metrics).

=====================================  ======================================================================
``POST /v1/uploads``                   create an upload: a presigned PUT URL for the bytes (201)
``GET /v1/uploads/{id}``               an upload's state
``POST /v1/uploads/{id}:complete``     verify the bytes (sha256) and store them as the artifact (201)
``GET /v1/artifacts``                  list your artifacts (``prefix``, ``limit``, ``cursor``)
``GET /v1/artifacts/{key}``            an artifact's metadata and a presigned download URL
``POST /v1/jobs``                      submit a job (202 + ``Location``; 200 for an idempotent repeat)
``GET /v1/jobs``                       list jobs (``state``, ``created_after``, ``created_before``, ``limit``, ``cursor``)
``GET /v1/jobs/{id}``                  a job: state, per-step progress, outputs with download URLs
``POST /v1/jobs/{id}:cancel``          cancel a job (202 while its running steps stop; 200 when it has ended)
``GET /v1/jobs/{id}/events``           the job's progress as server-sent events, until it ends
``GET /v1/pipelines``                  the named pipelines: description, params schema, inputs
``GET /v1/pipelines/{name}``           one of them
``POST /v1/pipelines/{name}/jobs``     a job from a pipeline's params and inputs (as ``POST /v1/jobs``)
``GET /healthz``, ``GET /readyz``      liveness; readiness (database, object store, runner)
``GET /metrics``                       Prometheus metrics
=====================================  ======================================================================

Every ``/v1`` route needs ``Authorization: Bearer <token>`` (401 without); what another tenant
owns is 404, like what does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool

from gateway.api import events as job_events
from gateway.api.models import (Artifact, ArtifactKey, ArtifactList, ErrorResponse, Health, JobList, JobRequest,
                                JobView, PipelineInfo, PipelineJobRequest, PipelineList, Upload, UploadCompletion,
                                UploadRequest)
from gateway.api.submission import build_job_spec
from gateway.api.views import artifact_view, job_summary, job_view, upload_view
from gateway.artifacts.keys import validate_user_key
from gateway.jobs.states import JobState
from services.common.errors import InvalidArgument, NeuroMeshError, NotFound

bearer = HTTPBearer(auto_error=False, description="a tenant's token: Authorization: Bearer <token>")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid request (the message names the field)"},
    401: {"model": ErrorResponse, "description": "no valid bearer token"},
    404: {"model": ErrorResponse, "description": "not found (or another tenant's)"},
    413: {"model": ErrorResponse, "description": "request body or upload too large"},
}


def gateway_of(request: Request):
    return request.app.state.gateway


def tenant_of(request: Request, _credentials: Annotated[Any, Depends(bearer)] = None) -> str:
    """The caller's tenant, from its bearer token (401 otherwise).

    :class:`~gateway.api.middleware.AuthMiddleware` has authenticated the request already (before
    its body was read); this dependency hands the tenant to the route and documents the scheme.
    """
    tenant = getattr(request.state, "tenant", None)
    if tenant is None:
        tenant = gateway_of(request).tokens.authenticate(request.headers.get("authorization"))
    return tenant


Tenant = Annotated[str, Depends(tenant_of)]
JobId = Annotated[str, Path(max_length=64, description="the job's id (a UUID)")]
UploadId = Annotated[str, Path(max_length=64, description="the upload's id (a UUID)")]

api = APIRouter(prefix="/v1", responses=ERRORS)
system = APIRouter()


# ------------------------------------------------------------------ artifacts

@api.post("/uploads", status_code=201, response_model=Upload, tags=["artifacts"],
          responses={409: {"model": ErrorResponse, "description": "the key is taken"}})
async def create_upload(body: UploadRequest, request: Request, tenant: Tenant) -> Any:
    """Create an upload: PUT the bytes (one request, up to 5 GiB) to the answer's ``url``, then complete it.

    ``kind="array"`` takes a NumPy ``.npy`` file and stores it as a Zarr v3 array (the form the
    services read arrays in); ``kind="object"`` stores the bytes as they are.
    """
    gw = gateway_of(request)
    ticket = await run_in_threadpool(gw.artifacts.create_upload, tenant, body.key, kind=body.kind,
                                     media_type=body.media_type, size_bytes=body.size_bytes, sha256=body.sha256)
    return upload_view(ticket.upload, gw.artifacts, url=ticket.url, headers=ticket.headers)


@api.get("/uploads/{upload_id}", response_model=Upload, tags=["artifacts"])
async def get_upload(upload_id: UploadId, request: Request, tenant: Tenant) -> Any:
    """An upload's state (``pending`` until completed)."""
    gw = gateway_of(request)
    record = await run_in_threadpool(gw.uploads.get, tenant, upload_id)
    return await run_in_threadpool(upload_view, record, gw.artifacts)


@api.post("/uploads/{upload_id}:complete", status_code=201, response_model=Upload, tags=["artifacts"],
          responses={409: {"model": ErrorResponse, "description": "nothing uploaded yet, or the upload failed"}})
async def complete_upload(upload_id: UploadId, request: Request, tenant: Tenant,
                          body: UploadCompletion | None = None) -> Any:
    """Verify what was PUT (its sha256 is computed, and checked against the one given) and store it."""
    gw = gateway_of(request)
    record = await run_in_threadpool(gw.artifacts.complete_upload, tenant, upload_id,
                                     sha256=body.sha256 if body else None)
    return await run_in_threadpool(upload_view, record, gw.artifacts)


@api.get("/artifacts", response_model=ArtifactList, tags=["artifacts"])
async def list_artifacts(request: Request, tenant: Tenant,
                         prefix: Annotated[str, Query(max_length=512, description="keys starting with this")] = "",
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                         cursor: Annotated[str | None, Query(max_length=1024)] = None) -> Any:
    """Your artifacts whose key starts with ``prefix``, sorted by key; an array counts as one."""
    gw = gateway_of(request)
    entries, next_cursor = await run_in_threadpool(gw.artifacts.list, tenant, prefix, limit=limit, cursor=cursor)
    return {"artifacts": [vars(e) for e in entries], "next_cursor": next_cursor}


@api.get("/artifacts/{key:path}", response_model=Artifact, tags=["artifacts"])
async def get_artifact(key: Annotated[str, Path(max_length=512)], request: Request, tenant: Tenant) -> Any:
    """An artifact's metadata (sha256, media type, size, shape, dtype) and, for a single object, a
    presigned download URL."""
    gw = gateway_of(request)
    validate_user_key(key)
    ref = await run_in_threadpool(gw.artifacts.stat, tenant, key)
    return await run_in_threadpool(artifact_view, ref, gw.artifacts, tenant=tenant)


# ------------------------------------------------------------------ jobs

IdempotencyKey = Annotated[str | None, Header(max_length=255, pattern=r"^[\x21-\x7e]+$",
                                             description="resubmitting with the same key returns the same job")]


async def _submit(body: JobRequest, request: Request, response: Response, tenant: str, header_key: str | None,
                  body_key: str | None) -> Any:
    gw = gateway_of(request)
    if header_key and body_key and header_key != body_key:
        raise InvalidArgument("the Idempotency-Key header and the body's idempotency_key differ",
                              field="idempotency_key")
    key = header_key or body_key

    def submit():
        spec = build_job_spec(body, tenant=tenant, idempotency_key=key, methods=gw.methods,
                              resolve=lambda k, sha, field: gw.artifacts.resolve_input(tenant, k, sha, field=field),
                              max_steps=gw.job_settings.max_steps_per_job)
        submission = gw.jobs.submit(spec)
        if submission.created:
            # At once, from this thread: the runner claims while the answer is being built.
            gw.wake_runner(submitted=True)
        return submission, job_view(submission.job, gw.artifacts)

    submission, view = await run_in_threadpool(submit)
    if submission.created:
        gw.metrics.job_submitted()
    else:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{submission.job.id}"
    return view


@api.post("/jobs", status_code=202, response_model=JobView, tags=["jobs"],
          responses={200: {"model": JobView, "description": "an idempotent repeat: the job submitted before"},
                     409: {"model": ErrorResponse, "description": "the idempotency key was used for another job"}})
async def submit_job(body: JobRequest, request: Request, response: Response, tenant: Tenant,
                     idempotency_key: IdempotencyKey = None) -> Any:
    """Submit a job: a DAG of steps, each a call of a service's RPC. Checked in full before it is accepted."""
    return await _submit(body, request, response, tenant, idempotency_key, body.idempotency_key)


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


@api.get("/jobs", response_model=JobList, tags=["jobs"])
async def list_jobs(request: Request, tenant: Tenant,
                    state: Annotated[list[JobState] | None, Query(description="only jobs in these states")] = None,
                    created_after: Annotated[datetime | None, Query(description="created at or after (ISO 8601; "
                                                                                "UTC if no zone)")] = None,
                    created_before: Annotated[datetime | None, Query(description="created before")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    cursor: Annotated[str | None, Query(max_length=1024)] = None) -> Any:
    """Your jobs, newest first, a page at a time."""
    gw = gateway_of(request)

    def page():
        try:
            found = gw.jobs.list_jobs(tenant, states=state, created_after=_aware(created_after),
                                      created_before=_aware(created_before), limit=limit, cursor=cursor)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="cursor") from None
        progress = gw.jobs.job_progress([j.id for j in found.jobs])
        return {"jobs": [job_summary(j, progress.get(j.id, 0.0)) for j in found.jobs],
                "next_cursor": found.next_cursor}

    return await run_in_threadpool(page)


@api.get("/jobs/{job_id}", response_model=JobView, tags=["jobs"])
async def get_job(job_id: JobId, request: Request, tenant: Tenant) -> Any:
    """A job: its state, each step's state and progress, and the outputs of finished steps with download URLs."""
    gw = gateway_of(request)
    return await run_in_threadpool(lambda: job_view(gw.jobs.get_job(tenant, job_id), gw.artifacts))


@api.post("/jobs/{job_id}:cancel", status_code=202, response_model=JobView, tags=["jobs"],
          responses={200: {"model": JobView, "description": "the job had already ended, or nothing of it ran"}})
async def cancel_job(job_id: JobId, request: Request, response: Response, tenant: Tenant) -> Any:
    """Cancel a job: pending steps are cancelled, running calls are cancelled at the services.

    The job is ``cancelling`` (202) until its running steps have stopped, then ``cancelled``.
    """
    gw = gateway_of(request)
    record = await gw.runner.cancel_job(tenant, job_id)
    if record.state != JobState.CANCELLING:
        response.status_code = 200
    return await run_in_threadpool(job_view, record, gw.artifacts)


@api.get("/jobs/{job_id}/events", tags=["jobs"], response_class=StreamingResponse,
         responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events until the "
                                                                              "job ends"}})
async def job_event_stream(job_id: JobId, request: Request, tenant: Tenant) -> StreamingResponse:
    """The job's progress as server-sent events: ``job`` (state), ``step`` (a step changed), ``end``."""
    gw = gateway_of(request)

    async def read() -> dict[str, Any]:
        return await run_in_threadpool(lambda: job_view(gw.jobs.get_job(tenant, job_id), gw.artifacts))

    first = await read()  # 404 now, before the stream starts

    async def stream() -> AsyncIterator[str]:
        # Watched from before the first event, so a change made while it is sent is not missed.
        with gw.changes.watch(first["id"]) as changed:
            async for chunk in job_events.job_events(first, read, poll_s=gw.settings.events_poll_s,
                                                     heartbeat_s=gw.settings.events_heartbeat_s,
                                                     closing=gw.closing, changed=changed):
                yield chunk

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------ pipelines

def _pipeline(name: str):
    from gateway.pipelines import PIPELINES

    found = PIPELINES.get(name)
    if found is None:
        raise NotFound(f"no pipeline {name!r}; the pipelines: {', '.join(sorted(PIPELINES))}",
                       reason="PIPELINE_NOT_FOUND", field="name")
    return found


@api.get("/pipelines", response_model=PipelineList, tags=["pipelines"])
async def list_pipelines(tenant: Tenant) -> Any:
    """The named pipelines: templates that make a whole job from a few params and inputs."""
    from gateway.pipelines import PIPELINES

    return {"pipelines": [PIPELINES[name].describe() for name in sorted(PIPELINES)]}


@api.get("/pipelines/{name}", response_model=PipelineInfo, tags=["pipelines"])
async def get_pipeline(name: Annotated[str, Path(max_length=63)], tenant: Tenant) -> Any:
    """One pipeline: its description, the JSON schema of its params, its inputs."""
    return _pipeline(name).describe()


@api.post("/pipelines/{name}/jobs", status_code=202, response_model=JobView, tags=["pipelines"],
          responses={200: {"model": JobView, "description": "an idempotent repeat: the job submitted before"},
                     409: {"model": ErrorResponse, "description": "the idempotency key was used for another job"}})
async def submit_pipeline_job(name: Annotated[str, Path(max_length=63)], body: PipelineJobRequest, request: Request,
                              response: Response, tenant: Tenant, idempotency_key: IdempotencyKey = None) -> Any:
    """A job from a pipeline: its steps are made from ``params`` and ``inputs``, then submitted and checked
    exactly as ``POST /v1/jobs``."""
    pipeline = _pipeline(name)
    inputs = {k: v.model_dump(exclude_none=True) if isinstance(v, ArtifactKey) else v for k, v in body.inputs.items()}
    gw = gateway_of(request)

    def shapes() -> dict[str, list[int]]:
        # What the pipeline's layout depends on (e.g. the blocks of a volume): read from the store.
        # An input that cannot be read here is left out; submission names the problem below.
        found = {}
        for input_name in pipeline.shape_inputs:
            value = inputs.get(input_name)
            key = value.get("key") if isinstance(value, dict) else value
            if not isinstance(key, str):
                continue
            try:
                validate_user_key(key)
                ref = gw.artifacts.stat(tenant, key)
            except NeuroMeshError:
                continue
            if ref.shape:
                found[input_name] = list(ref.shape)
        return found

    steps = await run_in_threadpool(lambda: pipeline.steps(body.params, inputs, shapes=shapes()))
    try:
        job = JobRequest.model_validate({"steps": steps})
    except ValueError as exc:  # the template made something the API would refuse: the template is wrong
        raise InvalidArgument(f"pipeline {name!r} made steps the API refuses: {exc}", field="params") from None
    return await _submit(job, request, response, tenant, idempotency_key, body.idempotency_key)


# ------------------------------------------------------------------ operations

@system.get("/healthz", response_model=Health, tags=["operations"])
async def healthz() -> Any:
    """The process answers (liveness)."""
    return {"status": "ok", "checks": {}}


@system.get("/readyz", response_model=Health, tags=["operations"],
            responses={503: {"model": Health, "description": "not ready: a check failed"}})
async def readyz(request: Request) -> Any:
    """Ready for traffic: the job database and the object store answer, and the job runner runs."""
    gw = gateway_of(request)
    checks = await gw.readiness()
    ready = all(c.get("ok") for c in checks.values() if isinstance(c, dict) and "ok" in c)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@system.get("/metrics", tags=["operations"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics() -> Response:
    """Prometheus metrics: jobs by state, queue depth, step durations by service, HTTP requests."""
    return Response(await asyncio.to_thread(generate_latest, REGISTRY), media_type=CONTENT_TYPE_LATEST)
