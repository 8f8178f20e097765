"""From a submitted job (HTTP JSON) to a :class:`~gateway.jobs.spec.JobSpec`: checked, then resolved.

Everything that can be known before a step runs is checked at submission, and a job with any
problem is refused with 400 naming each one (``steps[1].inputs.activity: ...``):

1. the DAG (ids, references to steps, cycles, the step limit), with placeholder digests, before
   anything is read from the store;
2. each step against the method table: the service and method exist, ``params`` is the request
   message in proto JSON without artifact references, each input's field path ends at an
   ArtifactRef of the request, and each step-output input names an ArtifactRef path of the
   upstream method's result;
3. each artifact input exists in the tenant's namespace (its key is validated and prefixed with
   ``tenants/<tenant>/``) and has a sha256 (equal to the one given, if any); the stored digest goes
   into the spec, so the cache key is made of content digests.

Example
-------
>>> request = JobRequest.model_validate({"steps": [
...     {"id": "sim", "service": "simulation", "method": "Simulate", "params": {"duration_ms": 100}},
...     {"id": "pca", "service": "reduction", "method": "Fit", "params": {"method": {"name": "pca"}},
...      "inputs": {"activity": {"step": "sim", "output": "binned_counts"}}}]})
>>> spec = build_job_spec(request, tenant="lab-a", idempotency_key=None, methods=MethodTable.from_generated(),
...                       resolve=None)
>>> [s.id for s in spec.topological_order()]
['sim', 'pca']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.api.models import ArtifactInputRequest, JobRequest
from gateway.calls.methods import MethodTable
from gateway.jobs.errors import JobSpecError
from gateway.jobs.spec import ArtifactRef, JobSpec, parse_job_spec
from services.common.errors import InvalidArgument, NeuroMeshError

Resolver = Callable[[str, "str | None", str], ArtifactRef]
"""``resolve(key, sha256, field)``: the stored reference of the tenant's artifact ``key``."""
PLACEHOLDER_SHA256 = "0" * 64
MAX_ARTIFACT_INPUTS = 1000


def _output_pattern(path: str) -> str:
    return ".".join("0" if part.isdigit() else part for part in path.split("."))


def build_job_spec(request: JobRequest, *, tenant: str, idempotency_key: str | None, methods: MethodTable,
                   resolve: Resolver | None, max_steps: int = 1000) -> JobSpec:
    """The job's spec, every problem refused with :class:`JobSpecError` (400); artifacts resolved by ``resolve``.

    ``resolve=None`` skips step 3 (placeholders stay): for checks without a store.
    """
    if len(request.steps) > max_steps:
        raise JobSpecError([("steps", f"a job has at most {max_steps} steps; this one has {len(request.steps)}")])

    def raw_steps(refs: dict[tuple[int, str], ArtifactRef] | None) -> list[dict[str, Any]]:
        out = []
        for i, step in enumerate(request.steps):
            inputs: dict[str, Any] = {}
            for path, value in step.inputs.items():
                if isinstance(value, ArtifactInputRequest):
                    ref = refs[(i, path)] if refs is not None else ArtifactRef(
                        key=value.artifact.key, sha256=value.artifact.sha256 or PLACEHOLDER_SHA256)
                    inputs[path] = {"artifact": ref.model_dump(mode="json", exclude_none=True)}
                else:
                    inputs[path] = {"step": value.step, "output": value.output}
            out.append({"id": step.id, "service": step.service, "method": step.method, "params": step.params,
                        "inputs": inputs})
        return out

    def job(steps: list[dict[str, Any]]) -> JobSpec:
        data: dict[str, Any] = {"tenant": tenant, "steps": steps}
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        return parse_job_spec(data, max_steps=max_steps)

    # 1. the graph, cheaply
    preliminary = job(raw_steps(None))

    # 2. each step against the contracts
    problems: list[tuple[str, str]] = []
    by_id = {s.id: s for s in request.steps}
    for i, step in enumerate(request.steps):
        try:
            methods.check_step(step.service, step.method, step.params, list(step.inputs))
        except NeuroMeshError as exc:
            problems.append((f"steps[{i}].{exc.field}" if exc.field else f"steps[{i}]", exc.message))
            continue
        for path, value in step.inputs.items():
            if isinstance(value, ArtifactInputRequest):
                continue
            upstream = by_id[value.step]
            try:
                produced = methods.method(upstream.service, upstream.method).output_paths()
            except InvalidArgument:
                continue  # reported at the upstream step
            if _output_pattern(value.output) not in produced:
                problems.append((f"steps[{i}].inputs.{path}", f"step {value.step!r} ({upstream.service}."
                                 f"{upstream.method}) has no output {value.output!r}; its outputs: "
                                 f"{', '.join(produced) or 'none'}"))
    if problems:
        raise JobSpecError(problems)
    if resolve is None:
        return preliminary

    # 3. artifacts, from the tenant's namespace
    refs: dict[tuple[int, str], ArtifactRef] = {}
    seen: dict[tuple[str, str | None], ArtifactRef] = {}
    for i, step in enumerate(request.steps):
        for path, value in step.inputs.items():
            if not isinstance(value, ArtifactInputRequest):
                continue
            wanted = (value.artifact.key, value.artifact.sha256)
            if wanted not in seen:
                if len(seen) >= MAX_ARTIFACT_INPUTS:
                    raise JobSpecError([("steps", f"a job uses at most {MAX_ARTIFACT_INPUTS} distinct artifacts")])
                seen[wanted] = resolve(value.artifact.key, value.artifact.sha256,
                                       f"steps[{i}].inputs.{path}.artifact.key")
            refs[(i, path)] = seen[wanted]
    return job(raw_steps(refs))
