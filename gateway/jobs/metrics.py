"""Prometheus metrics of the job engine, ``neuromesh_gateway_*``, in base units, never labelled by job or user.

=============================================  =========  ===========================================
metric                                         type       labels
=============================================  =========  ===========================================
``neuromesh_gateway_jobs``                     gauge      ``state``: jobs in the store per state
``neuromesh_gateway_runnable_steps``           gauge      steps that could be claimed now (queue depth)
``neuromesh_gateway_running_steps``            gauge      steps this process runs now
``neuromesh_gateway_jobs_submitted_total``     counter    jobs created (idempotent repeats excluded)
``neuromesh_gateway_jobs_finished_total``      counter    ``state``: jobs this process ended
``neuromesh_gateway_step_duration_seconds``    histogram  ``service``, ``outcome``: one execution
``neuromesh_gateway_steps_reused_total``       counter    ``service``: steps completed from the cache
``neuromesh_gateway_step_retries_total``       counter    ``service``, ``code``: executions retried
``neuromesh_gateway_call_failovers_total``     counter    ``service``: calls moved to another replica
``neuromesh_gateway_http_requests_total``      counter    ``method``, ``route``, ``status``
``neuromesh_gateway_http_request_duration_seconds`` hist  ``method``, ``route``: to the last byte
=============================================  =========  ===========================================

HTTP routes are the route templates (``/v1/jobs/{job_id}``), never the paths, so ids do not
make series.

The two store-wide gauges are read from the database, so every replica reports the same value:
aggregate them across replicas with ``max``, not ``sum``. The counters and the histogram count
what each process did, and do sum.

Example
-------
>>> from prometheus_client import REGISTRY
>>> metrics = GatewayMetrics()
>>> before = REGISTRY.get_sample_value("neuromesh_gateway_steps_reused_total", {"service": "doc"}) or 0
>>> metrics.step_reused("doc")
>>> REGISTRY.get_sample_value("neuromesh_gateway_steps_reused_total", {"service": "doc"}) - before
1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.metrics import HANDLING_SECONDS_BUCKETS, neuromesh_counter, neuromesh_gauge, neuromesh_histogram

from gateway.jobs.states import JobState

if TYPE_CHECKING:
    from gateway.jobs.store import JobStore

PREFIX = "gateway_"


class GatewayMetrics:
    """The job engine's metrics on the process's default registry (declared once, shared by instances)."""

    def __init__(self) -> None:
        self.jobs = neuromesh_gauge(PREFIX + "jobs", "Jobs in the job store, by state.", ["state"])
        self.runnable_steps = neuromesh_gauge(PREFIX + "runnable_steps",
                                              "Steps that could be claimed now, across all jobs (queue depth).")
        self.running_steps = neuromesh_gauge(PREFIX + "running_steps", "Steps this gateway process is running.")
        self.jobs_submitted = neuromesh_counter(PREFIX + "jobs_submitted", "Jobs created in the job store.")
        self.jobs_finished = neuromesh_counter(PREFIX + "jobs_finished",
                                               "Jobs this process moved to a final state, by that state.", ["state"])
        self.step_duration = neuromesh_histogram(PREFIX + "step_duration_seconds",
                                                 "Time of one execution of a step, by service and outcome.",
                                                 ["service", "outcome"], buckets=HANDLING_SECONDS_BUCKETS)
        self.steps_reused = neuromesh_counter(PREFIX + "steps_reused",
                                              "Steps completed from the step cache without calling the service.",
                                              ["service"])
        self.step_retries = neuromesh_counter(PREFIX + "step_retries",
                                              "Step executions that failed with a retryable code and were retried.",
                                              ["service", "code"])

        self.call_failovers = neuromesh_counter(PREFIX + "call_failovers",
                                                "Service calls re-issued on another replica after UNAVAILABLE.",
                                                ["service"])
        self.http_requests = neuromesh_counter(PREFIX + "http_requests", "HTTP requests answered, by route and "
                                               "status code.", ["method", "route", "status"])
        self.http_duration = neuromesh_histogram(PREFIX + "http_request_duration_seconds",
                                                 "Time from an HTTP request to the last byte of its answer.",
                                                 ["method", "route"], buckets=HANDLING_SECONDS_BUCKETS)

    def job_submitted(self) -> None:
        self.jobs_submitted.inc()

    def job_finished(self, state: JobState) -> None:
        self.jobs_finished.labels(state=state.value).inc()

    def step_executed(self, service: str, outcome: str, seconds: float) -> None:
        """One execution ended: ``outcome`` is succeeded, failed, retried or cancelled."""
        self.step_duration.labels(service=service, outcome=outcome).observe(seconds)

    def step_reused(self, service: str) -> None:
        self.steps_reused.labels(service=service).inc()

    def step_retried(self, service: str, code: str) -> None:
        self.step_retries.labels(service=service, code=code).inc()

    def call_failover(self, service: str) -> None:
        self.call_failovers.labels(service=service).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    def refresh_from_store(self, store: "JobStore") -> None:
        """Read the store-wide gauges (jobs by state, queue depth) from the database."""
        for state, n in store.count_jobs_by_state().items():
            self.jobs.labels(state=state.value).set(n)
        self.runnable_steps.set(store.count_runnable())
