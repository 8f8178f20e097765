"""The job retry policy: which failed executions of a step are tried again, and after how long.

Only two gRPC status codes are retried, as the design guide says:

- ``UNAVAILABLE``: the service could not be reached or is restarting; the same call will
  likely work in a moment, on this replica or another one;
- ``DEADLINE_EXCEEDED``: the call ran out of time, often because the service was overloaded.

Every other code is an answer, not an accident: ``INVALID_ARGUMENT`` or ``FAILED_PRECONDITION``
would fail again identically, ``RESOURCE_EXHAUSTED`` asks for more than the limits allow,
``INTERNAL`` is a bug to fix rather than to hammer. Those fail the step at once with the
service's message.

Between attempts the runner waits an exponentially growing delay with jitter: many steps that
failed together because a service restarted do not all come back at the same instant, which
would knock it over again.

Example
-------
>>> import random
>>> from gateway.jobs.errors import StepError
>>> policy = RetryPolicy(max_attempts=3, initial_backoff_s=1.0, multiplier=2.0, jitter=0.5)
>>> policy.should_retry(StepError("UNAVAILABLE", "connection refused"), attempt=1)
True
>>> policy.should_retry(StepError("UNAVAILABLE", "connection refused"), attempt=3)
False
>>> policy.should_retry(StepError("INVALID_ARGUMENT", "n_components must be > 0"), attempt=1)
False
>>> [round(policy.backoff_s(n, random.Random(0)), 3) for n in (1, 2, 3)]
[0.578, 1.156, 2.311]
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.jobs.errors import StepError

RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""The only gRPC status codes whose failures are retried."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a step is retried.

    Parameters
    ----------
    max_attempts : int
        Executions of a step in all, the first included. Runs cut off because a gateway died
        count too, so a step that kills its runner every time is not tried forever.
    initial_backoff_s : float
        The delay after the first failure.
    multiplier : float
        Growth of the delay per further failure.
    max_backoff_s : float
        The longest delay.
    jitter : float
        The fraction of each delay drawn at random: the delay is uniform in
        ``[(1 - jitter) * d, d]`` for the nominal delay ``d``.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 1.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError(f"need 0 <= initial_backoff_s <= max_backoff_s, got {self.initial_backoff_s} "
                             f"and {self.max_backoff_s}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    @property
    def retryable_codes(self) -> frozenset[str]:
        return RETRYABLE_CODES

    def is_retryable(self, error: StepError) -> bool:
        """Whether failures with this error's code are worth another attempt at all."""
        return error.code in RETRYABLE_CODES

    def should_retry(self, error: StepError, attempt: int) -> bool:
        """Whether to try again after attempt number ``attempt`` (1-based) failed with ``error``."""
        return self.is_retryable(error) and attempt < self.max_attempts

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``attempt`` failed, before the next one."""
        if attempt < 1:
            raise ValueError(f"attempts are numbered from 1, got {attempt}")
        nominal = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        draw = (rng or random).random()
        return nominal * (1.0 - self.jitter * draw)
