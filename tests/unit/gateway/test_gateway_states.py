"""Job and step states: the transition tables, and the checks that refuse illegal moves."""

from __future__ import annotations

import pytest

from gateway.jobs.errors import IllegalTransition
from gateway.jobs.states import (JOB_TRANSITIONS, STEP_TRANSITIONS, JobState, StepState, check_job_transition,
                                 check_step_transition, job_states_leading_to, step_states_leading_to)


def test_every_state_has_a_row_and_terminal_states_lead_nowhere():
    assert set(STEP_TRANSITIONS) == set(StepState)
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert {s for s in StepState if s.terminal} == {StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED,
                                                     StepState.SKIPPED}
    assert {s for s in JobState if s.terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


@pytest.mark.parametrize("current,new", [
    (StepState.SUCCEEDED, StepState.RUNNING),   # a finished step is never rerun
    (StepState.FAILED, StepState.PENDING),
    (StepState.PENDING, StepState.SUCCEEDED),    # only a claimed (running) step succeeds
    (StepState.SKIPPED, StepState.RUNNING),
])
def test_illegal_step_transitions_are_refused(current, new):
    assert not current.may_become(new)
    with pytest.raises(IllegalTransition, match=f"is {current.value}; it cannot become {new.value}"):
        check_step_transition(current, new)


def test_legal_transitions_pass():
    check_step_transition("pending", "running")
    check_step_transition("running", "running")  # taken over after a lease expired
    check_job_transition("running", "cancelling")
    check_job_transition("cancelling", "cancelled")
    with pytest.raises(IllegalTransition):
        check_job_transition("cancelling", "succeeded")
    with pytest.raises(IllegalTransition):
        check_job_transition("succeeded", "running")


def test_sources_are_the_inverse_of_the_table():
    assert step_states_leading_to(StepState.SUCCEEDED) == {StepState.RUNNING}
    assert step_states_leading_to(StepState.SKIPPED) == {StepState.PENDING}
    assert job_states_leading_to(JobState.CANCELLED) == {JobState.PENDING, JobState.RUNNING, JobState.CANCELLING}
    assert JobState.PENDING.active and JobState.RUNNING.active and not JobState.CANCELLING.active
