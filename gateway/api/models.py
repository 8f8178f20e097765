"""The JSON of the HTTP API: request bodies and answers, as pydantic models (they make the OpenAPI document).

Example
-------
>>> JobRequest.model_validate({"steps": [{"id": "sim", "service": "simulation", "method": "Simulate",
...                                        "params": {"duration_ms": 500}}]}).steps[0].method
'Simulate'
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag

from gateway.jobs.spec import FIELD_PATH_PATTERN, MAX_FIELD_PATH_LENGTH, METHOD_PATTERN, NAME_PATTERN, SHA256_PATTERN
from gateway.jobs.states import JobState, StepState

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
FieldPath = Annotated[str, Field(pattern=FIELD_PATH_PATTERN, max_length=MAX_FIELD_PATH_LENGTH)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
UserKey = Annotated[str, Field(min_length=1, max_length=512, description="a key in your namespace, e.g. "
                                                                         "'sessions/s1/counts'")]


class ErrorInfo(BaseModel):
    reason: str = Field(description="stable machine-readable reason, e.g. JOB_NOT_FOUND")
    message: str = Field(description="what went wrong, for people")
    field: str = Field("", description="the request field at fault, as a dotted path; empty when none")


class ErrorResponse(BaseModel):
    error: ErrorInfo


# ------------------------------------------------------------------ artifacts

class UploadRequest(BaseModel):
    """An upload to create: the key the artifact will have, and what it is."""

    model_config = ConfigDict(extra="forbid")
    key: UserKey
    kind: Literal["object", "array"] = Field(
        "object", description="'object': stored as uploaded (NWB, TIFF, JSON, ...); 'array': a NumPy .npy file, "
                              "stored as a Zarr v3 array (the form services read arrays in)")
    media_type: str | None = Field(None, max_length=200, description="of an object (default "
                                                                     "application/octet-stream)")
    size_bytes: int | None = Field(None, ge=0, description="if given, the upload must have exactly this size")
    sha256: Sha256 | None = Field(None, description="if given, the uploaded bytes must have this digest")


class UploadCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: Sha256 | None = Field(None, description="the digest of the uploaded bytes, checked if given")


class Artifact(BaseModel):
    """A stored artifact: where it is and what it holds."""

    key: str = Field(description="your key (tenant-relative); for job outputs the key in the bucket")
    uri: str = Field(description="s3://bucket/key")
    sha256: str = Field(description="of the content (arrays: of their C-order data)")
    media_type: str
    size_bytes: int = Field(description="stored bytes (arrays: of the uncompressed data)")
    shape: list[int] | None = None
    dtype: str | None = None
    etag: str | None = None
    download_url: str | None = Field(None, description="presigned GET of a single object; arrays have none "
                                                       "(open them with zarr)")
    download_expires_at: datetime | None = None


class Upload(BaseModel):
    """An upload: PUT the bytes to ``url`` before ``expires_at``, then complete it."""

    upload_id: str
    key: str
    kind: Literal["object", "array"]
    media_type: str
    state: Literal["pending", "completing", "completed", "failed", "expired"]
    method: Literal["PUT"] = "PUT"
    url: str | None = Field(None, description="presigned URL of a single PUT (given when the upload is created)")
    headers: dict[str, str] = Field(default_factory=dict, description="headers to send with the PUT")
    expires_at: datetime
    created_at: datetime
    artifact: Artifact | None = Field(None, description="the stored artifact, once completed")
    error: str | None = None
    complete_url: str = Field(description="POST here once the bytes are uploaded")


class ArtifactListEntry(BaseModel):
    key: str
    kind: Literal["object", "array"]
    size_bytes: int = Field(description="stored bytes (arrays: all their objects)")
    last_modified: datetime | None = None


class ArtifactList(BaseModel):
    artifacts: list[ArtifactListEntry]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


# ------------------------------------------------------------------ jobs

class ArtifactKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: UserKey
    sha256: Sha256 | None = Field(None, description="if given, the stored artifact must have this digest")


class ArtifactInputRequest(BaseModel):
    """An input that is one of your artifacts."""

    model_config = ConfigDict(extra="forbid")
    artifact: ArtifactKey


class StepOutputInputRequest(BaseModel):
    """An input that is an output of another step of the job."""

    model_config = ConfigDict(extra="forbid")
    step: Name
    output: FieldPath = Field(description="the output's path in that step's result, e.g. 'binned_counts'")


def _input_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "artifact" if "artifact" in value else "step" if "step" in value else None
    return "artifact" if isinstance(value, ArtifactInputRequest) else "step" \
        if isinstance(value, StepOutputInputRequest) else None


StepInputRequest = Annotated[
    Union[Annotated[ArtifactInputRequest, Tag("artifact")], Annotated[StepOutputInputRequest, Tag("step")]],
    Discriminator(_input_kind, custom_error_type="invalid_step_input",
                  custom_error_message='an input is {"artifact": {"key": ...}} or {"step": <step id>, "output": <path>}'),
]


class StepRequest(BaseModel):
    """One step: a call of ``method`` of ``service`` (an RPC of ``neuromesh.<service>.v1.<Service>Service``)."""

    model_config = ConfigDict(extra="forbid")
    id: Name
    service: Name = Field(description="e.g. 'simulation'")
    method: str = Field(pattern=METHOD_PATTERN, max_length=128, description="e.g. 'Simulate'")
    params: dict[str, JsonValue] = Field(default_factory=dict, description="the request message in proto JSON, "
                                                                           "without artifact references")
    inputs: dict[FieldPath, StepInputRequest] = Field(
        default_factory=dict, description="request field path (e.g. 'activity', 'raw.ref') -> an artifact or "
                                          "another step's output")


class JobRequest(BaseModel):
    """A job to run: a DAG of steps (a step runs once the steps whose outputs it uses have succeeded)."""

    model_config = ConfigDict(extra="forbid")
    steps: list[StepRequest] = Field(min_length=1)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                        description="as the Idempotency-Key header")


class Failure(BaseModel):
    code: str = Field(description="gRPC status code name, e.g. INVALID_ARGUMENT")
    message: str


class JobOutput(Artifact):
    pass


class StepView(BaseModel):
    id: str
    service: str
    method: str
    state: StepState
    depends_on: list[str]
    attempts: int
    progress: float | None = Field(None, description="fraction done, 0 to 1")
    progress_message: str | None = None
    reused: bool = Field(description="completed from the step cache, without calling the service")
    error: Failure | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)


class JobLinks(BaseModel):
    self: str
    events: str
    cancel: str


class JobSummary(BaseModel):
    id: str
    state: JobState
    progress: float = Field(description="fraction of the job's work done, 0 to 1")
    idempotency_key: str | None = None
    error: Failure | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    step_counts: dict[str, int]
    services: list[str] = Field(default_factory=list, description="services its steps call")
    links: JobLinks


class JobView(JobSummary):
    steps: list[StepView]


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------ pipelines

class PipelineInputInfo(BaseModel):
    name: str
    description: str
    required: bool
    kind: Literal["array", "object"]


class PipelineInfo(BaseModel):
    """A named pipeline: a template of jobs (see ``gateway.pipelines``)."""

    name: str
    description: str
    params_schema: dict[str, Any] = Field(description="JSON schema of its params")
    inputs: list[PipelineInputInfo]


class PipelineList(BaseModel):
    pipelines: list[PipelineInfo]


class PipelineJobRequest(BaseModel):
    """A job made from a named pipeline: its params, and its named inputs as your artifact keys."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    inputs: dict[Annotated[str, Field(max_length=63)], Union[UserKey, ArtifactKey]] = Field(
        default_factory=dict, description="input name -> a key in your namespace, or {\"key\", \"sha256\"}")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                        description="as the Idempotency-Key header")
