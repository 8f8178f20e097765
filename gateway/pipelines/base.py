"""What a named pipeline is: a template that turns validated parameters and named inputs into a job.

A :class:`Pipeline` has

- a ``name`` (``"dmri-connectome"``) and a ``description``;
- ``params_model``: a pydantic model of its parameters, with defaults and bounds;
  :meth:`Pipeline.parse_params` validates (every problem named as ``params.<field>``) and
  :meth:`Pipeline.params_schema` gives the JSON schema (for the OpenAPI document);
- ``inputs``: the named artifacts it takes (:class:`PipelineInput`: required or not, array or
  single object);
- a ``template(params, inputs)`` that makes the steps.

and three ways to use it:

- :meth:`Pipeline.steps` -> the steps of a job, as JSON: exactly what ``POST /v1/jobs`` takes as
  ``steps`` (artifact inputs are ``{"artifact": {"key": ..., "sha256": ...}}`` with the keys as
  given, tenant-relative over HTTP; ``sha256`` only when given);
- :meth:`Pipeline.build` -> a validated :class:`~gateway.jobs.spec.JobSpec` for a tenant, when
  every input is a full reference (key and sha256), e.g. from ``ArtifactStore.put_array``;
- :meth:`Pipeline.describe` -> name, description, params schema and inputs as JSON.

Problems with params or inputs raise :class:`PipelineError`, a
:class:`~gateway.jobs.errors.JobSpecError` (so INVALID_ARGUMENT, HTTP 400) carrying every problem
as ``(field, message)``.

Example
-------
>>> from pydantic import BaseModel
>>> class Params(BaseModel):
...     n_components: int = 3
>>> def template(params, inputs):
...     return [{"id": "pca", "service": "reduction", "method": "Fit",
...              "params": {"method": {"name": "pca", "params": {"n_components": params.n_components}}},
...              "inputs": {"activity": inputs["counts"]}}]
>>> pca = Pipeline("pca", "PCA of counts", Params, (PipelineInput("counts", "counts", required=True),), template)
>>> pca.steps({"n_components": 5}, {"counts": "sessions/s1/counts"})[0]["inputs"]
{'activity': {'artifact': {'key': 'sessions/s1/counts'}}}
>>> pca.steps({"n_components": "many"}, {})
Traceback (most recent call last):
...
gateway.pipelines.base.PipelineError: invalid job: params.n_components: Input should be a valid integer, unable to parse string as an integer; inputs.counts: pca needs input 'counts' (counts)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from gateway.jobs.errors import JobSpecError
from gateway.jobs.spec import JobSpec, parse_job_spec
from services.common.errors import InvalidArgument

InputValue = Any
"""An input as callers give it: a key string, ``{"key": ..., "sha256": ...}``, or any object with
``key`` and ``sha256`` attributes (a proto or job-engine ``ArtifactRef``)."""


class PipelineError(JobSpecError):
    """Params or inputs that do not make a job, each problem as ``(field, message)``."""


@dataclass(frozen=True)
class PipelineInput:
    """One named input of a pipeline."""

    name: str
    description: str
    required: bool = False
    kind: Literal["array", "object"] = "array"
    """``array``: a Zarr array in the store; ``object``: one object (a file: NWB, NIfTI, text)."""


Template = Callable[[Any, dict[str, dict[str, Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Pipeline:
    """A named template of jobs over the DAG engine (see the module docstring)."""

    name: str
    description: str
    params_model: type[BaseModel]
    inputs: tuple[PipelineInput, ...]
    template: Template = field(repr=False)
    """``template(params, inputs)``: the steps, given the parsed params and the inputs that were given
    (name -> ``{"artifact": {...}}``); raises :class:`PipelineError` for combinations that do not fit.
    With ``shape_inputs``, ``template(params, inputs, shapes)``."""
    shape_inputs: tuple[str, ...] = ()
    """Inputs whose array shape the template reads (``shapes``: name -> shape, for those whose shape is
    known: a stored array's). A job's layout may depend on it, e.g. how many blocks a volume has."""

    def parse_params(self, params: Mapping[str, Any] | BaseModel | None = None) -> BaseModel:
        """The parameters, defaults filled in; :class:`PipelineError` naming every bad one."""
        if isinstance(params, self.params_model):
            return params
        try:
            return self.params_model.model_validate(dict(params or {}))
        except ValidationError as exc:
            raise PipelineError(_problems(exc, "params")) from None

    def params_schema(self) -> dict[str, Any]:
        """JSON schema of the parameters (pydantic's, for the OpenAPI document)."""
        return self.params_model.model_json_schema()

    def artifact_inputs(self, inputs: Mapping[str, InputValue] | None) -> dict[str, dict[str, Any]]:
        """Name -> ``{"artifact": {"key": ..., ["sha256": ...]}}``; :class:`PipelineError` for unknown,
        missing or malformed inputs."""
        known = {i.name: i for i in self.inputs}
        problems: list[tuple[str, str]] = []
        out: dict[str, dict[str, Any]] = {}
        for name, value in (inputs or {}).items():
            if name not in known:
                problems.append((f"inputs.{name}", f"{self.name} takes no input {name!r}; its inputs: "
                                                   f"{', '.join(known)}"))
                continue
            ref = _as_key(value)
            if ref is None:
                problems.append((f"inputs.{name}", 'an input is a key, or {"key": ..., "sha256": ...}'))
                continue
            out[name] = {"artifact": ref}
        for name, spec in known.items():
            if spec.required and name not in (inputs or {}):
                problems.append((f"inputs.{name}", f"{self.name} needs input {name!r} ({spec.description})"))
        if problems:
            raise PipelineError(problems)
        return out

    def steps(self, params: Mapping[str, Any] | BaseModel | None = None,
              inputs: Mapping[str, InputValue] | None = None, *,
              shapes: Mapping[str, Sequence[int]] | None = None) -> list[dict[str, Any]]:
        """The job's steps as JSON (``POST /v1/jobs``'s ``steps``); every problem in one :class:`PipelineError`.

        ``shapes``: the array shapes of inputs of ``shape_inputs`` (the HTTP route reads them from the
        store); by default taken from inputs that carry one (a stored ``ArtifactRef``, or a dict with
        ``"shape"``).
        """
        problems: list[tuple[str, str]] = []
        parsed = given = None
        try:
            parsed = self.parse_params(params)
        except PipelineError as exc:
            problems.extend(exc.problems)
        try:
            given = self.artifact_inputs(inputs)
        except PipelineError as exc:
            problems.extend(exc.problems)
        if problems:
            raise PipelineError(problems)
        if not self.shape_inputs:
            return self.template(parsed, given)
        known = {name: tuple(int(n) for n in shape) for name, shape in (shapes or {}).items() if shape}
        for name in self.shape_inputs:
            value = (inputs or {}).get(name)
            shape = value.get("shape") if isinstance(value, Mapping) else getattr(value, "shape", None)
            if name not in known and shape:
                known[name] = tuple(int(n) for n in shape)
        return self.template(parsed, given, {k: v for k, v in known.items() if k in self.shape_inputs})

    def build(self, params: Mapping[str, Any] | BaseModel | None = None,
              inputs: Mapping[str, InputValue] | None = None, *, tenant: str,
              idempotency_key: str | None = None, methods: Any = None,
              shapes: Mapping[str, Sequence[int]] | None = None) -> JobSpec:
        """A validated job for ``tenant``. Every input needs its sha256 (the cache keys on content).

        With ``methods`` (a :class:`~gateway.pipelines.local.GatewayMethodTable`), each step is also
        checked against the services' contracts, as job submission does.
        """
        steps = self.steps(params, inputs, shapes=shapes)
        missing = [(f"inputs.{name}", "build() needs the artifact's sha256; give {'key': ..., 'sha256': ...} or a "
                                      "stored ArtifactRef (the HTTP route resolves keys itself)")
                   for name, value in (inputs or {}).items() if not (_as_key(value) or {}).get("sha256")]
        if missing:
            raise PipelineError(missing)
        if methods is not None:
            check_steps(steps, methods)
        data: dict[str, Any] = {"tenant": tenant, "steps": steps}
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        return parse_job_spec(data)

    def describe(self) -> dict[str, Any]:
        """The pipeline as JSON: name, description, params schema and inputs."""
        return {"name": self.name, "description": self.description, "params_schema": self.params_schema(),
                "inputs": [{"name": i.name, "description": i.description, "required": i.required, "kind": i.kind}
                           for i in self.inputs]}


def _as_key(value: InputValue) -> dict[str, Any] | None:
    if isinstance(value, str):
        return {"key": value} if value else None
    if isinstance(value, Mapping):
        key, sha = value.get("key"), value.get("sha256")
    else:
        key, sha = getattr(value, "key", None), getattr(value, "sha256", None)
    if not isinstance(key, str) or not key or (sha is not None and not isinstance(sha, str)):
        return None
    return {"key": key, **({"sha256": sha} if sha else {})}


def _problems(exc: ValidationError, prefix: str) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        out.append((f"{prefix}.{where}" if where else prefix, err["msg"].removeprefix("Value error, ")))
    return out


def _output_pattern(path: str) -> str:
    return ".".join("0" if part.isdigit() else part for part in path.split("."))


def check_steps(steps: Sequence[Mapping[str, Any]], methods: Any) -> None:
    """Check each step against ``methods`` (services and local operations): the method, its params, its
    input paths, and that every step-output input names an output the upstream method can produce.

    Raises :class:`PipelineError` naming each problem as ``steps[i]...``.
    """
    problems: list[tuple[str, str]] = []
    by_id = {s["id"]: s for s in steps}
    for i, step in enumerate(steps):
        inputs = step.get("inputs", {})
        try:
            methods.check_step(step["service"], step["method"], step.get("params", {}), list(inputs))
        except InvalidArgument as exc:
            problems.append((f"steps[{i}].{exc.field}" if exc.field else f"steps[{i}]", exc.message))
            continue
        for path, value in inputs.items():
            if "step" not in value:
                continue
            upstream = by_id.get(value["step"])
            if upstream is None:
                problems.append((f"steps[{i}].inputs.{path}", f"no step {value['step']!r} in the job"))
                continue
            produced = methods.method(upstream["service"], upstream["method"]).output_paths()
            if _output_pattern(value["output"]) not in produced:
                problems.append((f"steps[{i}].inputs.{path}", f"step {value['step']!r} ({upstream['service']}."
                                 f"{upstream['method']}) has no output {value['output']!r}; its outputs: "
                                 f"{', '.join(produced)}"))
    if problems:
        raise PipelineError(problems)


# ------------------------------------------------------------------------------ helpers of the templates


def step(step_id: str, service: str, method: str, params: Mapping[str, Any] | None = None,
         inputs: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One step as JSON."""
    return {"id": step_id, "service": service, "method": method, "params": dict(params or {}),
            "inputs": dict(inputs or {})}


def output(step_id: str, path: str) -> dict[str, str]:
    """An input that is the output ``path`` of step ``step_id``."""
    return {"step": step_id, "output": path}


def measures_options(measures: Sequence[str], *, seed: int, n_random: int | None = None,
                     skip: bool = False) -> dict[str, Any]:
    """``GraphMeasuresOptions`` in proto JSON."""
    if skip:
        return {"skip": True}
    out: dict[str, Any] = {"seed": seed}
    if measures:
        out["measures"] = list(measures)
    if n_random:
        out["n_random"] = n_random
    return out


GRAPH_MEASURES = ("degree", "strength", "clustering", "weighted_clustering", "path_length", "weighted_path_length",
                  "efficiency", "weighted_efficiency", "communities", "rich_club", "rich_club_normalized",
                  "small_world")
"""The measures the connectomics service knows (``GraphMeasuresOptions.measures``)."""


def check_measures(measures: Sequence[str]) -> list[str]:
    unknown = [m for m in measures if m not in GRAPH_MEASURES]
    if unknown:
        raise ValueError(f"unknown graph measures {unknown}; known: {', '.join(GRAPH_MEASURES)}")
    if len(set(measures)) != len(measures):
        raise ValueError("graph measures are listed twice")
    return list(measures)
