"""The errors of the job engine, on top of the common hierarchy of :mod:`services.common.errors`.

Each error a caller can cause subclasses the most specific common error, so the HTTP layer maps
it to a status without knowing the job engine (``JobNotFound`` is a 404, ``JobSpecError`` a 400).
:class:`StepError` is different: it is what a step's execution ended with, carried as the name
of a gRPC status code, so the retry policy can decide on it and the job can report it.

Example
-------
>>> err = StepError("UNAVAILABLE", "reduction service is restarting")
>>> err.code, err.message
('UNAVAILABLE', 'reduction service is restarting')
>>> StepError.from_exception(ValueError("n_components must be positive")).code
'INVALID_ARGUMENT'
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import grpc

from services.common.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NeuroMeshError, NotFound,
                                    as_neuromesh_error)

_STATUS_CODE_NAMES = frozenset(code.name for code in grpc.StatusCode)


class JobSpecError(InvalidArgument, ValueError):
    """A job specification is invalid: unknown step reference, cycle, duplicate id, too many steps.

    It is both an ``InvalidArgument`` (HTTP 400, gRPC INVALID_ARGUMENT) and a ``ValueError``, as
    the core packages' input errors are. ``problems`` lists every problem found, each as
    ``(location, message)``; the message of the error joins them.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = [(str(loc), str(msg)) for loc, msg in problems]
        message = "invalid job: " + "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in self.problems)
        super().__init__(message, reason="INVALID_JOB", field=self.problems[0][0] if self.problems else "")


class JobNotFound(NotFound):
    """No job with this id for this tenant. Another tenant's job is "not found" too, never "forbidden",
    so ids cannot be probed across tenants."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"job {job_id} does not exist", reason="JOB_NOT_FOUND", metadata={"job_id": job_id})


class IdempotencyConflict(AlreadyExists):
    """The tenant already submitted a *different* job under the same idempotency key.

    Handing back the first job here would give the client results of a job it did not ask for.
    """

    def __init__(self, key: str, job_id: object) -> None:
        super().__init__(f"idempotency key {key!r} was used for job {job_id} with a different specification",
                         reason="IDEMPOTENCY_KEY_REUSED", field="idempotency_key",
                         metadata={"job_id": job_id})


class IllegalTransition(FailedPrecondition):
    """A job or step was asked to move to a state its current state does not lead to."""

    def __init__(self, what: str, current: str, wanted: str) -> None:
        super().__init__(f"{what} is {current}; it cannot become {wanted}", reason="ILLEGAL_STATE_TRANSITION",
                         metadata={"current": current, "wanted": wanted})
        self.current = current
        self.wanted = wanted


class LeaseLost(FailedPrecondition):
    """This runner no longer holds the lease of a step (it expired and another runner claimed it).

    The step's result is then no longer this runner's to record: whatever it computed is dropped.
    """

    def __init__(self, what: str, owner: str) -> None:
        super().__init__(f"{what} is no longer leased to {owner}", reason="LEASE_LOST", metadata={"owner": owner})


class StepError(Exception):
    """How one execution of a step failed, as a gRPC status code name and the service's message.

    Executors raise it (the gRPC executor from the call's status); the retry policy retries
    only some codes (:mod:`gateway.jobs.retry`), the rest fail the step with ``message``.

    Parameters
    ----------
    code : str
        A ``grpc.StatusCode`` name: ``"UNAVAILABLE"``, ``"INVALID_ARGUMENT"``, ...
    message : str
        What went wrong, as the service said it; shown to the user.
    details : mapping, optional
        Structured details (the service's ``ErrorDetail`` reason, field, metadata).
    """

    def __init__(self, code: str, message: str, *, details: Mapping[str, str] | None = None) -> None:
        if code not in _STATUS_CODE_NAMES or code == "OK":
            raise ValueError(f"StepError code must name a failing grpc.StatusCode, got {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})

    @classmethod
    def from_exception(cls, exc: BaseException) -> "StepError":
        """Classify anything an executor raised: StepError as is, common errors by their code,
        a timeout as DEADLINE_EXCEEDED, ``ValueError``/``TypeError`` as INVALID_ARGUMENT, the rest
        INTERNAL (named by type only, as the runtime does, since its text may reveal internals)."""
        if isinstance(exc, StepError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return cls("DEADLINE_EXCEEDED", str(exc) or "the step did not finish in time")
        err: NeuroMeshError = as_neuromesh_error(exc)
        details = {"reason": err.reason, **({"field": err.field} if err.field else {}), **err.metadata}
        return cls(err.grpc_code.name, err.message, details=details)
