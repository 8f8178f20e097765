"""The seam between the job engine and the services: what runs one step.

:class:`StepExecutor` is a protocol; the gRPC implementation (one channel per service, the
streaming call of ``step.method``, progress events forwarded, cancel by cancelling the call)
plugs in here later, and tests plug in executors that record their calls. The runner gives an
executor everything it needs and nothing of the database:

- a :class:`StepInvocation`: which step of which job of which tenant, and the attempt number;
- the resolved inputs: input name -> :class:`~gateway.jobs.spec.ArtifactRef` (artifacts given
  in the job, and outputs of upstream steps);
- a progress callback ``progress(fraction, message)`` (cheap, synchronous: the runner writes
  the latest value to the database at most once per progress interval);
- a cancel event: set when the job is cancelled (or the runner shuts down or lost its lease).
  The executor should then stop its call promptly and raise; one that ignores it is cancelled
  as an asyncio task after the runner's grace period.

It answers with the step's outputs: output name -> artifact reference with its ``sha256``
(a dict or an ``ArtifactRef``), or raises :class:`~gateway.jobs.errors.StepError` with the gRPC
status code of the failure (see :mod:`gateway.jobs.retry` for which codes are retried).

Example
-------
>>> import asyncio, hashlib
>>> class EchoExecutor:
...     async def service_version(self, service):
...         return "1.0.0"
...     async def execute(self, step, resolved_inputs, progress, cancel_event):
...         progress(1.0, "done")
...         digest = hashlib.sha256(step.step_id.encode()).hexdigest()
...         return {"out": {"key": f"jobs/{step.job_id}/{step.step_id}/out.json", "sha256": digest}}
>>> isinstance(EchoExecutor(), StepExecutor)
True
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable
from uuid import UUID

from pydantic import ValidationError

from gateway.jobs.errors import StepError
from gateway.jobs.spec import FIELD_PATH_PATTERN, MAX_FIELD_PATH_LENGTH, ArtifactRef, StepSpec

ProgressCallback = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``: report how far the step is."""

_OUTPUT_NAME = re.compile(FIELD_PATH_PATTERN)


@dataclass(frozen=True)
class StepInvocation:
    """One execution of a step, as an executor sees it."""

    job_id: UUID
    tenant: str
    step: StepSpec
    attempt: int
    """1 for the first execution, 2 for the first retry, ..."""

    @property
    def step_id(self) -> str:
        return self.step.id

    @property
    def service(self) -> str:
        return self.step.service

    @property
    def method(self) -> str:
        return self.step.method

    @property
    def params(self) -> dict[str, Any]:
        return self.step.params


@runtime_checkable
class StepExecutor(Protocol):
    """Runs steps on the services. Implementations must be safe to call concurrently."""

    async def service_version(self, service: str) -> str:
        """The version of the service that would run a step now; part of the step's cache key.

        Raise ``StepError("UNAVAILABLE", ...)`` when the service cannot be asked (retried).
        """
        ...

    async def execute(self, step: StepInvocation, resolved_inputs: Mapping[str, ArtifactRef],
                      progress: ProgressCallback, cancel_event: asyncio.Event) -> Mapping[str, Any]:
        """Run the step; return output name -> artifact reference (with ``sha256``)."""
        ...


def validate_outputs(outputs: Any) -> dict[str, ArtifactRef]:
    """Check what an executor returned; a malformed answer is an INTERNAL step error naming the problem."""
    if not isinstance(outputs, Mapping):
        raise StepError("INTERNAL", f"the executor returned {type(outputs).__name__}, not a mapping of outputs")
    checked: dict[str, ArtifactRef] = {}
    for name, ref in outputs.items():
        if not isinstance(name, str) or not _OUTPUT_NAME.match(name) or len(name) > MAX_FIELD_PATH_LENGTH:
            raise StepError("INTERNAL", f"output name {name!r} does not match {FIELD_PATH_PATTERN} "
                                        f"(at most {MAX_FIELD_PATH_LENGTH} characters)")
        try:
            checked[name] = ref if isinstance(ref, ArtifactRef) else ArtifactRef.model_validate(ref)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
            raise StepError("INTERNAL", f"output {name!r} is not an artifact reference with a sha256: "
                                        f"{problems}") from None
    return checked
