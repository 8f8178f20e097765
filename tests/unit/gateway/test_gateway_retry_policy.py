"""The retry policy: only UNAVAILABLE and DEADLINE_EXCEEDED, exponential backoff with bounded jitter."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from gateway.jobs.errors import StepError
from gateway.jobs.retry import RETRYABLE_CODES, RetryPolicy
from services.common.errors import NotFound, Unavailable


def test_only_two_codes_are_retried():
    policy = RetryPolicy(max_attempts=10)
    retried = {code.name for code in grpc.StatusCode if code.name != "OK"
               and policy.should_retry(StepError(code.name, "x"), attempt=1)}
    assert retried == {"UNAVAILABLE", "DEADLINE_EXCEEDED"} == RETRYABLE_CODES


def test_attempts_are_bounded():
    policy = RetryPolicy(max_attempts=3)
    error = StepError("UNAVAILABLE", "down")
    assert [policy.should_retry(error, n) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert not RetryPolicy(max_attempts=1).should_retry(error, 1)


def test_backoff_grows_exponentially_within_jitter_and_is_capped():
    policy = RetryPolicy(initial_backoff_s=0.5, multiplier=2.0, max_backoff_s=3.0, jitter=0.25)
    rng = random.Random(42)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        draws = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert min(draws) >= 0.75 * nominal - 1e-12 and max(draws) <= nominal + 1e-12
        assert max(draws) - min(draws) > 0.1 * nominal       # jittered, not constant
    assert RetryPolicy(jitter=0.0).backoff_s(3) == 4.0


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"multiplier": 0.5}, {"jitter": 1.5},
                                    {"initial_backoff_s": 5.0, "max_backoff_s": 1.0}])
def test_nonsense_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_step_errors_carry_a_real_status_code_name():
    with pytest.raises(ValueError):
        StepError("NOT_A_CODE", "x")
    with pytest.raises(ValueError):
        StepError("OK", "x")


@pytest.mark.parametrize("exc,code", [
    (StepError("ABORTED", "a"), "ABORTED"),
    (Unavailable("store down"), "UNAVAILABLE"),
    (NotFound("no such artifact"), "NOT_FOUND"),
    (ValueError("bad shape (3, 4) vs (4,)"), "INVALID_ARGUMENT"),
    (asyncio.TimeoutError(), "DEADLINE_EXCEEDED"),
    (RuntimeError("secret path /srv/x"), "INTERNAL"),
])
def test_exceptions_are_classified(exc, code):
    error = StepError.from_exception(exc)
    assert error.code == code
    if code == "INTERNAL":
        assert "secret" not in error.message and "RuntimeError" in error.message
    if isinstance(exc, ValueError):
        assert error.message == "bad shape (3, 4) vs (4,)"
