"""Settings of the job engine, read from ``NEUROMESH_GATEWAY_*`` environment variables.

Same convention as :mod:`services.common.settings` (one ``NEUROMESH_`` prefix for a whole stack,
values validated at start-up); the gateway's job engine has its own section of it.

Example
-------
>>> import os
>>> os.environ["NEUROMESH_GATEWAY_LEASE_S"] = "12"
>>> load_job_settings().lease_s
12.0
>>> del os.environ["NEUROMESH_GATEWAY_LEASE_S"]
>>> load_job_settings(database_url="sqlite:///jobs.db").database_url
'sqlite:///jobs.db'
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.jobs.database import DEFAULT_URL
from gateway.jobs.retry import RetryPolicy
from gateway.jobs.spec import MAX_STEPS_PER_JOB
from services.common.settings import ENV_PREFIX, SettingsError

JOB_ENV_PREFIX = ENV_PREFIX + "GATEWAY_"


class JobSettings(BaseSettings):
    """Job engine settings; each field is read from ``NEUROMESH_GATEWAY_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix=JOB_ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(DEFAULT_URL, description="job store: sqlite:///path.db or postgresql+psycopg://...")
    step_concurrency: int = Field(4, ge=1, le=1024, description="steps one gateway process runs at once")
    lease_s: float = Field(30.0, ge=0.5, le=3600, description="lease of a running step; a killed gateway's "
                           "steps are taken over this long after its last heartbeat")
    poll_interval_s: float = Field(1.0, gt=0, le=60, description="how often idle runners look for work")
    max_attempts: int = Field(5, ge=1, le=100, description="executions of a step in all, retries included")
    initial_backoff_s: float = Field(1.0, ge=0, description="delay before the first retry")
    max_backoff_s: float = Field(60.0, ge=0, description="longest delay between retries")
    progress_interval_s: float = Field(1.0, gt=0, le=60, description="a running step's progress is written at "
                                       "most this often")
    metrics_interval_s: float = Field(5.0, gt=0, le=300, description="how often the store-wide gauges (jobs by "
                                      "state, queue depth) are read from the database")
    cancel_grace_s: float = Field(10.0, ge=0, description="time a step has to stop after a cancel")
    drain_s: float = Field(10.0, ge=0, description="time running steps may finish when the gateway stops")
    max_steps_per_job: int = Field(MAX_STEPS_PER_JOB, ge=1, le=100_000)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, initial_backoff_s=self.initial_backoff_s,
                           max_backoff_s=max(self.max_backoff_s, self.initial_backoff_s))


def load_job_settings(**overrides: object) -> JobSettings:
    """Read and validate the job settings; ``overrides`` win over the environment.

    Raises
    ------
    SettingsError
        naming each bad variable, its value and what was expected.
    """
    try:
        return JobSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"  {JOB_ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
                 for e in exc.errors()]
        raise SettingsError("invalid NeuroMesh gateway job settings:\n" + "\n".join(lines)) from None
