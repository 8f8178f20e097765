"""The gateway's durable job engine: jobs as DAGs of service calls, stored in SQL, run by leases.

Where things are:

=====================  ===========================================================================
``spec``               what a job is: pydantic models, DAG validation, topological order
``dag``                graph algorithms (cycle finding, topological order, downstream steps)
``states``             job and step states and the transitions allowed between them
``schema``             the tables (jobs, job_steps, job_step_dependencies, step_cache)
``database``           :class:`Database`: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL
``store``              :class:`JobStore`: submit, get, list, cancel; claim, renew, complete, fail
``claims``             how a step is claimed: runnable steps, leases, SKIP LOCKED
``cache``              step cache keys from content digests, and the cache table
``retry``              the job retry policy: UNAVAILABLE and DEADLINE_EXCEEDED, backoff with jitter
``executor``           the :class:`StepExecutor` protocol that the gRPC executor implements
``runner``             :class:`JobRunner`: the asyncio loop that claims and runs steps
``metrics``            ``neuromesh_gateway_*`` Prometheus metrics
``settings``           ``NEUROMESH_GATEWAY_*`` settings
``worker``             ``python -m gateway.jobs.worker``: a process that only runs jobs
``scratch``            throwaway PostgreSQL databases for tests
=====================  ===========================================================================
"""

from gateway.jobs.cache import CachedOutputs, step_cache_key
from gateway.jobs.database import Database
from gateway.jobs.errors import (IdempotencyConflict, IllegalTransition, JobNotFound, JobSpecError, LeaseLost,
                                 StepError)
from gateway.jobs.executor import ProgressCallback, StepExecutor, StepInvocation
from gateway.jobs.metrics import GatewayMetrics
from gateway.jobs.records import ClaimedStep, JobPage, JobRecord, StepOutcome, StepRecord, Submission
from gateway.jobs.retry import RETRYABLE_CODES, RetryPolicy
from gateway.jobs.runner import JobRunner, RunnerStats
from gateway.jobs.settings import JobSettings, load_job_settings
from gateway.jobs.spec import ArtifactInput, ArtifactRef, JobSpec, StepOutputInput, StepSpec, parse_job_spec
from gateway.jobs.states import JobState, StepState
from gateway.jobs.store import JobStore

__all__ = [
    "ArtifactInput", "ArtifactRef", "CachedOutputs", "ClaimedStep", "Database", "GatewayMetrics",
    "IdempotencyConflict", "IllegalTransition", "JobNotFound", "JobPage", "JobRecord", "JobRunner", "JobSettings",
    "JobSpec", "JobSpecError", "JobState", "JobStore", "LeaseLost", "ProgressCallback", "RETRYABLE_CODES",
    "RetryPolicy", "RunnerStats", "StepError", "StepExecutor", "StepInvocation", "StepOutcome", "StepOutputInput",
    "StepRecord", "StepSpec", "StepState", "Submission", "load_job_settings", "parse_job_spec", "step_cache_key",
]
