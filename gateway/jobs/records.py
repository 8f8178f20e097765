"""What the job store hands out: immutable snapshots of jobs and steps, and claims.

Snapshots are plain frozen dataclasses, not ORM objects bound to a session, so they can cross
threads (the runner calls the store from worker threads) and be turned into HTTP answers without
lazy loads behind the caller's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from gateway.jobs.spec import ArtifactRef, JobSpec, StepSpec
from gateway.jobs.states import JobState, StepState


@dataclass(frozen=True)
class StepRecord:
    """One step of a job as stored."""

    job_id: UUID
    step_id: str
    position: int
    spec: StepSpec
    state: StepState
    attempts: int
    depends_on: tuple[str, ...]
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    outputs: dict[str, ArtifactRef] | None
    error_code: str | None
    error_message: str | None
    progress: float | None
    progress_message: str | None
    cache_key: str | None
    reused: bool
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def method(self) -> str:
        return self.spec.method


@dataclass(frozen=True)
class JobRecord:
    """A job as stored. ``steps`` are in topological order; :meth:`JobStore.list_jobs` leaves them
    out (an empty tuple) and gives ``step_counts`` only."""

    id: UUID
    tenant: str
    idempotency_key: str | None
    state: JobState
    spec: JobSpec
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    step_counts: dict[StepState, int]
    steps: tuple[StepRecord, ...] = ()

    def step(self, step_id: str) -> StepRecord:
        """The step ``step_id`` (``KeyError`` if the record has no such step loaded)."""
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def reused_steps(self) -> int:
        """Steps completed from the cache instead of being run."""
        return sum(1 for s in self.steps if s.reused)


@dataclass(frozen=True)
class Submission:
    """The answer to a submit: the job, and whether this call created it (False: an idempotent repeat)."""

    job: JobRecord
    created: bool


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing; pass ``next_cursor`` to get the next (None: this was the last)."""

    jobs: list[JobRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class ClaimedStep:
    """A step this runner now holds: it is ``running``, leased to ``owner`` until ``lease_expires_at``.

    ``attempt`` counts executions started so far, this one included (1 on a first claim; more
    after retries, or when the step was claimed again after its previous runner died).
    """

    job_id: UUID
    tenant: str
    step: StepSpec
    attempt: int
    owner: str
    lease_expires_at: datetime
    reclaimed: bool = field(default=False)
    """True when the step was running under another runner whose lease had expired."""

    @property
    def step_id(self) -> str:
        return self.step.id


@dataclass(frozen=True)
class StepOutcome:
    """What recording a step's end did to its job: the job's state afterwards."""

    job_state: JobState
    job_finished_now: bool
    """True when this write moved the job into a terminal state (count it once, here)."""
