"""What a job is: pydantic models of a job specification, its steps and their inputs.

A job is a directed acyclic graph of steps. Each step calls one method of one service with JSON
parameters and named inputs; an input is either an artifact already in the object store (with
its content digest) or an output of another step of the same job. Validation refuses, with one
message naming every problem: duplicate step ids, references to steps that do not exist, a step
using an output of itself or a cycle (named ``a -> b -> a``), an empty job, more steps than the
limit. A :class:`JobSpec` that exists is therefore a valid DAG.

Example
-------
>>> spec = parse_job_spec({
...     "tenant": "lab-a",
...     "idempotency_key": "session-12-pca",
...     "steps": [
...         {"id": "plot", "service": "reduction", "method": "PlotTrajectories",
...          "inputs": {"model": {"step": "pca", "output": "model"}}},
...         {"id": "pca", "service": "reduction", "method": "FitPCA", "params": {"n_components": 8},
...          "inputs": {"counts": {"artifact": {"key": "uploads/counts.zarr", "sha256": 64 * "a"}}}},
...     ]})
>>> [step.id for step in spec.topological_order()]
['pca', 'plot']
>>> parse_job_spec({"tenant": "lab-a", "steps": [
...     {"id": "a", "service": "reduction", "method": "FitPCA", "inputs": {"x": {"step": "b", "output": "y"}}},
...     {"id": "b", "service": "reduction", "method": "FitPCA", "inputs": {"x": {"step": "a", "output": "y"}}}]})
Traceback (most recent call last):
...
gateway.jobs.errors.JobSpecError: invalid job: steps: steps form a cycle (each feeds the next): a -> b -> a
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from gateway.jobs import dag
from gateway.jobs.digests import canonical_json, sha256_of_json
from gateway.jobs.errors import JobSpecError

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
"""Step ids and service names: lowercase, start with a letter, <= 63 chars."""
FIELD_PATH_PATTERN = r"^[a-z][a-z0-9_-]{0,62}(\.([a-z][a-z0-9_-]{0,62}|[0-9]{1,6}))*$"
"""Input and output names: a name, or a dotted path of a message field as the gRPC executor uses them
(``"raw.ref"``, ``"segmentations.0.labels"``: field names, and indices into repeated fields)."""
MAX_FIELD_PATH_LENGTH = 255
METHOD_PATTERN = r"^[A-Z][A-Za-z0-9]{0,127}$"
"""gRPC method names, as in the protos: ``FitPCA``, ``Simulate``."""
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"

MAX_STEPS_PER_JOB = 1000
"""Default limit on steps in a job; ``parse_job_spec(..., max_steps=n)`` sets another."""
MAX_PARAMS_BYTES = 64 * 1024
"""Parameters are small JSON; bulk data goes to the object store and is passed by reference."""

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
FieldPath = Annotated[str, Field(pattern=FIELD_PATH_PATTERN, max_length=MAX_FIELD_PATH_LENGTH)]


class ArtifactRef(BaseModel):
    """A reference to an artifact in the object store, with the SHA-256 of its content.

    The digest, not the key, is what identifies the content for the cache: the same bytes
    uploaded under two keys hit the same cache entry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=SHA256_PATTERN, description="hex SHA-256 of the artifact's content")
    bucket: str | None = Field(None, min_length=3, max_length=63)
    etag: str | None = None
    media_type: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    size: int | None = Field(None, ge=0, description="bytes")


class ArtifactInput(BaseModel):
    """An input that is an artifact already stored: ``{"artifact": {"key": ..., "sha256": ...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    artifact: ArtifactRef


class StepOutputInput(BaseModel):
    """An input that is an output of another step: ``{"step": "pca", "output": "model"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    step: Name
    output: FieldPath


def _input_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return "artifact" if "artifact" in value else "step" if "step" in value else None
    if isinstance(value, ArtifactInput):
        return "artifact"
    if isinstance(value, StepOutputInput):
        return "step"
    return None


StepInput = Annotated[
    Union[Annotated[ArtifactInput, Tag("artifact")], Annotated[StepOutputInput, Tag("step")]],
    Discriminator(_input_kind, custom_error_type="invalid_step_input",
                  custom_error_message='an input is {"artifact": {"key": ..., "sha256": ...}} '
                                       'or {"step": <step id>, "output": <output name>}'),
]


class StepSpec(BaseModel):
    """One step: a call of ``service``'s ``method`` with ``params`` and named ``inputs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Name
    service: Name = Field(description="the service that runs the step, e.g. 'reduction'")
    method: str = Field(pattern=METHOD_PATTERN, description="the RPC, e.g. 'FitPCA'")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    inputs: dict[FieldPath, StepInput] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params_are_small_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        size = len(canonical_json(params))  # also refuses NaN and infinity
        if size > MAX_PARAMS_BYTES:
            raise ValueError(f"params take {size} bytes of JSON, more than {MAX_PARAMS_BYTES}; "
                             "store bulk data as an artifact and pass it as an input")
        return params

    @property
    def upstream_steps(self) -> list[str]:
        """Ids of the steps whose outputs this step uses, in the order its inputs name them."""
        seen: list[str] = []
        for value in self.inputs.values():
            if isinstance(value, StepOutputInput) and value.step not in seen:
                seen.append(value.step)
        return seen


def _graph_problems(steps: list[StepSpec]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    first_index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in first_index:
            problems.append((f"steps[{i}].id", f"duplicate step id {step.id!r} (also steps[{first_index[step.id]}])"))
        else:
            first_index[step.id] = i
    for i, step in enumerate(steps):
        for name, value in step.inputs.items():
            if not isinstance(value, StepOutputInput):
                continue
            where = f"steps[{i}].inputs.{name}"
            if value.step == step.id:
                problems.append((where, f"step {step.id!r} uses its own output {value.output!r} (a cycle)"))
            elif value.step not in first_index:
                problems.append((where, f"step {step.id!r} uses output {value.output!r} of step {value.step!r}, "
                                        "which is not in the job"))
    if problems:
        return problems
    ids = [s.id for s in steps]
    edges = [(up, s.id) for s in steps for up in s.upstream_steps]
    cycle = dag.find_cycle(ids, edges)
    if cycle:
        problems.append(("steps", f"steps form a cycle (each feeds the next): {' -> '.join(cycle)}"))
    return problems


class JobSpec(BaseModel):
    """A job: the tenant it belongs to, an optional idempotency key, and its steps (a DAG).

    ``JobSpec.model_validate(data)`` raises pydantic's ``ValidationError`` (a ``ValueError``);
    :func:`parse_job_spec` raises :class:`~gateway.jobs.errors.JobSpecError` with every problem.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(pattern=TENANT_PATTERN)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                        description="printable ASCII; a second submission with the same "
                                                    "key returns the first job")
    steps: list[StepSpec]

    @field_validator("steps", mode="before")
    @classmethod
    def _bounded_number_of_steps(cls, steps: Any, info: ValidationInfo) -> Any:
        # Checked before the steps are validated one by one, so a huge job is refused cheaply.
        limit = (info.context or {}).get("max_steps", MAX_STEPS_PER_JOB)
        if isinstance(steps, (list, tuple)):
            if not steps:
                raise ValueError("a job needs at least one step")
            if len(steps) > limit:
                raise ValueError(f"a job has at most {limit} steps; this one has {len(steps)}")
        return steps

    @model_validator(mode="after")
    def _steps_form_a_dag(self) -> "JobSpec":
        problems = _graph_problems(self.steps)
        if problems:
            raise JobSpecError(problems)
        return self

    def step(self, step_id: str) -> StepSpec:
        """The step with id ``step_id`` (``KeyError`` if there is none)."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def dependencies(self) -> dict[str, list[str]]:
        """For each step id, the ids of the steps it uses outputs of."""
        return {s.id: s.upstream_steps for s in self.steps}

    def topological_order(self) -> list[StepSpec]:
        """The steps so that each comes after those it uses; independent steps keep their order."""
        ids = [s.id for s in self.steps]
        edges = [(up, s.id) for s in self.steps for up in s.upstream_steps]
        by_id = {s.id: s for s in self.steps}
        return [by_id[i] for i in dag.topological_order(ids, edges)]

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the steps: equal for equal jobs, whatever their key order."""
        return sha256_of_json([s.model_dump(mode="json") for s in self.steps])


def parse_job_spec(data: Mapping[str, Any] | JobSpec, *, max_steps: int = MAX_STEPS_PER_JOB) -> JobSpec:
    """Validate ``data`` as a job; raise :class:`JobSpecError` naming every problem found.

    Parameters
    ----------
    data : mapping or JobSpec
        The job as decoded JSON (or a JobSpec, validated again against ``max_steps``).
    max_steps : int
        The most steps a job may have.
    """
    if isinstance(data, JobSpec):
        data = data.model_dump(mode="json")
    try:
        return JobSpec.model_validate(data, context={"max_steps": max_steps})
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, JobSpecError):
                problems.extend(cause.problems)
                continue
            loc = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                          for i, p in enumerate(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            problems.append((loc, message))
        raise JobSpecError(problems) from None
