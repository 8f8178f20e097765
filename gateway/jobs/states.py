"""The states of jobs and steps and the transitions between them: the only place that defines them.

The store enforces these tables *in SQL*: every state change is an ``UPDATE ... WHERE state IN
(<states that may lead here>)``, so a transition is checked and made in one atomic statement, even
with several gateway processes writing; an update that matches no row is an illegal transition
(or a lost lease) and is refused with :class:`~gateway.jobs.errors.IllegalTransition`.

Steps::

    pending --claim--> running --> succeeded | failed | cancelled
       |                 |  ^
       |                 |  +-- running: claimed again after its runner's lease expired
       |                 +----> pending: released by a runner shutting down cleanly
       +--> cancelled (job cancelled) | skipped (the job failed before the step could run)

Jobs::

    pending --> running --> succeeded | failed
       |           |
       +-----------+--> cancelling (running steps are being stopped) --> cancelled
       +-----------+--> cancelled (nothing was running)

Example
-------
>>> StepState.PENDING.may_become(StepState.RUNNING)
True
>>> check_step_transition(StepState.SUCCEEDED, StepState.RUNNING)
Traceback (most recent call last):
...
gateway.jobs.errors.IllegalTransition: step is succeeded; it cannot become running
>>> sorted(s.value for s in step_states_leading_to(StepState.CANCELLED))
['pending', 'running']
"""

from __future__ import annotations

import enum

from gateway.jobs.errors import IllegalTransition


class StepState(str, enum.Enum):
    """Where one step of a job stands."""

    PENDING = "pending"
    """Waiting for its dependencies, or runnable and not claimed yet."""
    RUNNING = "running"
    """Claimed by a runner, whose lease (owner, expiry) is on the row."""
    SUCCEEDED = "succeeded"
    """Its outputs are recorded (computed, or taken from the cache)."""
    FAILED = "failed"
    """Its execution failed with an error that is not retried, or retries ran out."""
    CANCELLED = "cancelled"
    """The job was cancelled before or while it ran."""
    SKIPPED = "skipped"
    """Never run, because another step of the job failed first."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STEP_STATES

    def may_become(self, new: "StepState") -> bool:
        return new in STEP_TRANSITIONS[self]


class JobState(str, enum.Enum):
    """Where a job stands as a whole."""

    PENDING = "pending"
    """Submitted; no step has started."""
    RUNNING = "running"
    """At least one step has been claimed."""
    SUCCEEDED = "succeeded"
    """Every step succeeded."""
    FAILED = "failed"
    """A step failed; steps that had not started were skipped."""
    CANCELLING = "cancelling"
    """Cancel was asked while steps ran; their runners are stopping them."""
    CANCELLED = "cancelled"
    """Cancelled, and nothing of it runs any more."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_JOB_STATES

    @property
    def active(self) -> bool:
        """Whether steps of the job may still be claimed."""
        return self in ACTIVE_JOB_STATES

    def may_become(self, new: "JobState") -> bool:
        return new in JOB_TRANSITIONS[self]


STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    StepState.PENDING: frozenset({StepState.RUNNING, StepState.CANCELLED, StepState.SKIPPED}),
    # running -> running is a claim after the lease expired; running -> pending a clean release.
    StepState.RUNNING: frozenset({StepState.RUNNING, StepState.PENDING, StepState.SUCCEEDED, StepState.FAILED,
                                  StepState.CANCELLED}),
    StepState.SUCCEEDED: frozenset(),
    StepState.FAILED: frozenset(),
    StepState.CANCELLED: frozenset(),
    StepState.SKIPPED: frozenset(),
}

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLING,
                                 JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLING, JobState.CANCELLED}),
    JobState.CANCELLING: frozenset({JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

_TERMINAL_STEP_STATES = frozenset(s for s, nxt in STEP_TRANSITIONS.items() if not nxt)
_TERMINAL_JOB_STATES = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)
ACTIVE_JOB_STATES = frozenset({JobState.PENDING, JobState.RUNNING})


def step_states_leading_to(new: StepState) -> frozenset[StepState]:
    """The states from which a step may move to ``new`` (the ``WHERE state IN (...)`` of its UPDATE)."""
    return frozenset(old for old, nxt in STEP_TRANSITIONS.items() if new in nxt)


def job_states_leading_to(new: JobState) -> frozenset[JobState]:
    """The states from which a job may move to ``new``."""
    return frozenset(old for old, nxt in JOB_TRANSITIONS.items() if new in nxt)


def check_step_transition(current: StepState | str, new: StepState | str, what: str = "step") -> None:
    """Raise :class:`IllegalTransition` unless a step in ``current`` may become ``new``."""
    current, new = StepState(current), StepState(new)
    if not current.may_become(new):
        raise IllegalTransition(what, current.value, new.value)


def check_job_transition(current: JobState | str, new: JobState | str, what: str = "job") -> None:
    """Raise :class:`IllegalTransition` unless a job in ``current`` may become ``new``."""
    current, new = JobState(current), JobState(new)
    if not current.may_become(new):
        raise IllegalTransition(what, current.value, new.value)
