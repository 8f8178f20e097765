"""The job runner: claims runnable steps and runs them through a :class:`StepExecutor`.

One :class:`JobRunner` per gateway process, with its own owner id. Its loop

1. claims runnable steps, at most ``concurrency`` at a time (:mod:`gateway.jobs.claims`);
2. for each, resolves the inputs (artifacts of the job, outputs of upstream steps), asks the
   executor for the service's version and computes the cache key (:mod:`gateway.jobs.cache`);
3. completes the step from the cache when its key has outputs ("reused"), or else runs it,
   renewing the lease and writing progress while it runs (the heartbeat);
4. retries UNAVAILABLE and DEADLINE_EXCEEDED with backoff (:mod:`gateway.jobs.retry`), fails the
   step on anything else with the service's message (the job then fails, and its steps that
   had not started are skipped);
5. records the outputs and the cache entry; the store marks the job succeeded after its last step.

A cancelled job's running steps see their cancel event set (at the next heartbeat, or at once
when the cancel went through :meth:`JobRunner.cancel_job` of the same process); the executor
stops its call and the step ends cancelled. A runner that stops (``stop()``, SIGTERM in the
worker) stops claiming, lets running steps finish for ``drain_s``, then cancels the rest and
gives them back as pending, so another replica takes them at once instead of after the lease.

The database is reached through blocking SQLAlchemy calls, run in the runner's own thread pool
so that the event loop (shared with the HTTP layer later) never waits on the database.

Example
-------
>>> import asyncio, hashlib, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> from gateway.jobs.database import Database
>>> from gateway.jobs.spec import parse_job_spec
>>> from gateway.jobs.store import JobStore
>>> class Executor:
...     async def service_version(self, service):
...         return "1.0.0"
...     async def execute(self, step, resolved_inputs, progress, cancel_event):
...         digest = hashlib.sha256(repr((step.step_id, sorted(resolved_inputs))).encode()).hexdigest()
...         return {"out": {"key": f"jobs/{step.job_id}/{step.step_id}", "sha256": digest}}
>>> db = Database(f"sqlite:///{tmp.name}/jobs.db"); db.create_all()
>>> store = JobStore(db)
>>> job = store.submit(parse_job_spec({"tenant": "lab-a", "steps": [
...     {"id": "a", "service": "reduction", "method": "FitPCA"},
...     {"id": "b", "service": "reduction", "method": "Project",
...      "inputs": {"model": {"step": "a", "output": "out"}}}]})).job
>>> runner = JobRunner(store, Executor(), owner_id="doc-runner", poll_interval_s=0.05)
>>> asyncio.run(runner.run_until_finished([job.id], timeout_s=30))[job.id].value
'succeeded'
>>> runner.stats.executions, runner.stats.reused
(2, 0)
>>> runner.close(); db.close(); tmp.cleanup()
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.exc import DBAPIError

from gateway.jobs.cache import input_digests, step_cache_key
from gateway.jobs.errors import IllegalTransition, JobNotFound, LeaseLost, StepError
from gateway.jobs.executor import StepExecutor, StepInvocation, validate_outputs
from gateway.jobs.metrics import GatewayMetrics
from gateway.jobs.records import ClaimedStep, JobRecord, StepOutcome
from gateway.jobs.retry import RetryPolicy
from gateway.jobs.spec import ArtifactInput, ArtifactRef
from gateway.jobs.states import JobState
from gateway.jobs.store import JobStore

logger = logging.getLogger(__name__)

CancelReason = Literal["job_cancelled", "shutdown", "lease_lost"]


def default_owner_id() -> str:
    """``<host>-<pid>-<random>``: unique per runner, and says where it ran when read in the table."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunnerStats:
    """What this runner did since it was made (for logs and tests; Prometheus has the same as metrics)."""

    claimed: int = 0
    executions: int = 0
    """Calls of the executor (retries count again; cache hits do not call it)."""
    succeeded: int = 0
    reused: int = 0
    """Steps completed from the cache without calling the executor."""
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lease_lost: int = 0


class _Cancelled(Exception):
    """The execution stopped because its cancel event was set."""


@dataclass
class _StepRun:
    """The in-memory state of one claimed step while this runner holds it."""

    claim: ClaimedStep
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: CancelReason | None = None
    progress: tuple[float, str] | None = None
    progress_dirty: bool = False
    task: asyncio.Task | None = None

    def request_cancel(self, reason: CancelReason) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.cancel_event.set()

    def report_progress(self, fraction: float, message: str = "") -> None:
        fraction = float(fraction)
        if not math.isfinite(fraction):
            raise ValueError(f"progress must be a finite fraction, got {fraction}")
        self.progress = (min(1.0, max(0.0, fraction)), str(message))
        self.progress_dirty = True

    def take_progress(self) -> tuple[float, str] | None:
        if not self.progress_dirty:
            return None
        self.progress_dirty = False
        return self.progress


@dataclass(frozen=True)
class _Result:
    kind: Literal["succeeded", "failed", "cancelled"]
    outputs: dict[str, ArtifactRef] | None = None
    error: StepError | None = None
    cache_key: str | None = None
    service_version: str | None = None
    reused: bool = False


class JobRunner:
    """Runs the steps of jobs in a :class:`JobStore` through a :class:`StepExecutor`.

    Parameters
    ----------
    store : JobStore
        Where jobs are claimed and results recorded (shared with other runners).
    executor : StepExecutor
        What runs a step (the gRPC executor in the gateway; a recording one in tests).
    owner_id : str, optional
        This runner's name in leases; unique per process (default: host, pid and a random part).
    concurrency : int
        Steps run at once by this runner.
    lease_s : float
        Lease length. A killed runner's steps are taken over this long after its last heartbeat;
        heartbeats come every ``lease_s / 3``, so two missed ones are tolerated.
    poll_interval_s : float
        How often to look for runnable steps when nothing happened locally (steps finishing here
        and :meth:`wake` trigger a look at once).
    retry_policy : RetryPolicy, optional
        Which failures are retried and the backoff (:mod:`gateway.jobs.retry`).
    progress_interval_s : float
        Progress reported by the executor is written at most this often.
    cancel_grace_s : float
        After a cancel event is set, how long the executor may take to stop before its task is cancelled.
    drain_s : float
        On stop, how long running steps may go on before they are cancelled and released.
    metrics : GatewayMetrics, optional
        Prometheus metrics to update (default: the process's gateway metrics).
    metrics_interval_s : float
        How often the store-wide gauges (jobs by state, queue depth) are read from the database.
    rng : random.Random, optional
        Source of the backoff jitter (seed it in tests).
    on_change : callable, optional
        Called with a job's id on the event loop after this runner wrote something of that job
        (a claim, progress, a retry, how a step ended, a cancel): the gateway's
        :class:`~gateway.jobs.changes.JobChanges`, so event streams of the job read it at once
        instead of at their next poll.

    Example
    -------
    In the gateway (FastAPI lifespan)::

        runner = JobRunner(store, GrpcStepExecutor(...), concurrency=8)
        task = asyncio.create_task(runner.run())
        ...                      # after a submit: runner.wake()
        runner.stop(); await task; runner.close()
    """

    def __init__(self, store: JobStore, executor: StepExecutor, *, owner_id: str | None = None,
                 concurrency: int = 4, lease_s: float = 30.0, poll_interval_s: float = 1.0,
                 retry_policy: RetryPolicy | None = None, progress_interval_s: float = 1.0,
                 cancel_grace_s: float = 10.0, drain_s: float = 10.0, metrics: GatewayMetrics | None = None,
                 metrics_interval_s: float = 5.0, rng: random.Random | None = None,
                 on_change: Callable[[UUID], None] | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease_s <= 0 or poll_interval_s <= 0 or progress_interval_s <= 0:
            raise ValueError("lease_s, poll_interval_s and progress_interval_s must be positive")
        self.store = store
        self.executor = executor
        self.owner_id = owner_id or default_owner_id()
        self.concurrency = concurrency
        self.lease_s = float(lease_s)
        self.poll_interval_s = float(poll_interval_s)
        self.retry_policy = retry_policy or RetryPolicy()
        self.progress_interval_s = float(progress_interval_s)
        self.cancel_grace_s = float(cancel_grace_s)
        self.drain_s = float(drain_s)
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self.metrics_interval_s = float(metrics_interval_s)
        self.rng = rng or random.Random()
        self.on_change = on_change
        self.stats = RunnerStats()
        self._runs: dict[tuple[UUID, str], _StepRun] = {}
        # Database calls block; they get threads of their own: one per running step's heartbeat
        # or result, plus the claim loop, plus a few for API-side calls made through the runner.
        self._pool = ThreadPoolExecutor(max_workers=2 * concurrency + 4, thread_name_prefix="job-store")
        self._wakeup: asyncio.Event | None = None
        self._work_expected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False

    # ------------------------------------------------------------------ control

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Claim and run steps until :meth:`stop` is called or ``stop_event`` is set; then drain."""
        await self._serve(None, stop_event)

    async def run_until_finished(self, job_ids: Iterable[UUID], *, timeout_s: float | None = None,
                                 stop_event: asyncio.Event | None = None) -> dict[UUID, JobState]:
        """Run (steps of any job) until every job of ``job_ids`` has ended; return their final states.

        Raises ``TimeoutError`` after ``timeout_s`` and :class:`JobNotFound` for an unknown id.
        """
        ids = list(job_ids)
        final: dict[UUID, JobState] = {}

        async def finished() -> bool:
            states = await self._call(self.store.job_states, ids)
            missing = [i for i in ids if i not in states]
            if missing:
                raise JobNotFound(missing[0])
            final.update(states)
            return not self._runs and all(s.terminal for s in states.values())

        async with asyncio.timeout(timeout_s):
            await self._serve(finished, stop_event)
        return final

    def stop(self) -> None:
        """Ask :meth:`run` to stop claiming, drain and return. Safe from other threads and signal handlers."""
        self._stop_requested = True
        self.wake()

    def wake(self, *, submitted: bool = False) -> None:
        """Look for runnable steps now (call after a submit in this process). Safe from any thread.

        ``submitted=True``: a job was just stored, so the next claim will find work and goes
        straight to the claim without a look first (see :meth:`JobStore.claim_steps`).
        """
        if submitted:
            self._work_expected = True
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        try:
            if asyncio.get_running_loop() is loop:
                wakeup.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(wakeup.set)

    async def cancel_job(self, tenant: str, job_id: UUID | str) -> JobRecord:
        """Cancel a job in the store, and stop its steps running here at once (not at the next heartbeat)."""
        record = await self._call(self.store.cancel_job, tenant, job_id)
        for (jid, _), run in list(self._runs.items()):
            if jid == record.id:
                run.request_cancel("job_cancelled")
        self._changed(record.id)
        return record

    def _changed(self, job_id: UUID) -> None:
        if self.on_change is not None:
            try:
                self.on_change(job_id)
            except Exception:  # news of a change is a courtesy; it must never fail a step
                logger.exception("on_change failed", extra={"job_id": str(job_id)})

    def close(self) -> None:
        """Release the runner's threads (after :meth:`run` has returned)."""
        self._pool.shutdown(wait=True)

    @property
    def running_steps(self) -> list[tuple[UUID, str]]:
        """(job id, step id) of the steps this runner holds now."""
        return list(self._runs)

    # ------------------------------------------------------------------ the loop

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args, **kwargs))

    async def _serve(self, finished: Callable[[], Awaitable[bool]] | None,
                     stop_event: asyncio.Event | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stop_requested = False
        stop_watch = asyncio.create_task(self._watch_stop(stop_event)) if stop_event is not None else None
        next_reap = next_metrics = 0.0
        try:
            while not self._stop_requested:
                if finished is not None and await finished():
                    return
                # Cleared before claiming: a wake-up that arrives during the claim is kept.
                self._wakeup.clear()
                now = time.monotonic()
                if now >= next_reap:
                    next_reap = now + self.lease_s
                    await self._quietly(self.store.reap_abandoned, "reap abandoned steps")
                free = self.concurrency - len(self._runs)
                if free > 0:
                    look_first, self._work_expected = not self._work_expected, False
                    claimed = await self._quietly(self.store.claim_steps, "claim steps", self.owner_id,
                                                  limit=free, lease_s=self.lease_s, look_first=look_first) or []
                    for claim in claimed:
                        self._start(claim)
                    for job_id in {c.job_id for c in claimed}:
                        self._changed(job_id)
                if now >= next_metrics:
                    next_metrics = now + self.metrics_interval_s
                    await self._quietly(self.metrics.refresh_from_store, "refresh metrics", self.store)
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_interval_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            if stop_watch is not None:
                stop_watch.cancel()
            await self._drain()

    async def _watch_stop(self, stop_event: asyncio.Event) -> None:
        await stop_event.wait()
        self.stop()

    async def _quietly(self, fn: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
        """A store call of the loop; a database outage is logged and the loop goes on."""
        try:
            return await self._call(fn, *args, **kwargs)
        except DBAPIError as exc:
            logger.warning("job store unavailable (%s): %s", what, exc.orig, extra={"owner": self.owner_id})
            return None

    def _start(self, claim: ClaimedStep) -> None:
        run = _StepRun(claim)
        key = (claim.job_id, claim.step_id)
        self._runs[key] = run
        self.stats.claimed += 1
        self.metrics.running_steps.set(len(self._runs))
        if claim.reclaimed:
            logger.info("took over step %s of job %s after its runner's lease expired (attempt %d)",
                        claim.step_id, claim.job_id, claim.attempt,
                        extra={"job_id": str(claim.job_id), "step_id": claim.step_id, "owner": self.owner_id})
        run.task = asyncio.create_task(self._run_step(run), name=f"step {claim.job_id}/{claim.step_id}")

        def forget(_task: asyncio.Task) -> None:
            self._runs.pop(key, None)
            self.metrics.running_steps.set(len(self._runs))
            if self._wakeup is not None:
                self._wakeup.set()  # a slot is free, and downstream steps may be runnable now

        run.task.add_done_callback(forget)

    async def _drain(self) -> None:
        """Stop: let running steps finish for ``drain_s``, then cancel them and give them back."""
        runs = list(self._runs.values())
        if not runs:
            return
        tasks = [r.task for r in runs if r.task is not None]
        _, pending = await asyncio.wait(tasks, timeout=self.drain_s)
        for run in runs:
            if run.task in pending:
                run.request_cancel("shutdown")
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.cancel_grace_s + 5.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ one step

    async def _run_step(self, run: _StepRun) -> None:
        claim = run.claim
        log_fields = {"job_id": str(claim.job_id), "step_id": claim.step_id, "owner": self.owner_id}
        try:
            if claim.attempt > self.retry_policy.max_attempts:
                # Only runs that never reported back get here: each claim counts an attempt.
                error = StepError("ABORTED", f"the step was started {claim.attempt - 1} times without finishing "
                                             "(its runner stopped or lost its lease each time); giving up")
                await self._record(run, _Result("failed", error=error))
                return
            heartbeat = asyncio.create_task(self._heartbeat(run))
            try:
                result = await self._execute(run)
            finally:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
            await self._record(run, result)
        except asyncio.CancelledError:
            # Cancelled by _drain after the grace: give the step back so it runs elsewhere now.
            await self._write_quietly(run, self.store.release_step, self.owner_id, claim.job_id, claim.step_id)
            self.stats.released += 1
            raise
        except LeaseLost:
            self.stats.lease_lost += 1
            logger.warning("lost the lease of the step; another runner has it", extra=log_fields)
        except DBAPIError as exc:
            # Not the step's fault: leave it running under a lease that nobody renews now, so it
            # is claimed again (by any runner) once the store is back and the lease has expired.
            logger.warning("job store unavailable while running the step: %s", exc.orig, extra=log_fields)
        except Exception:
            logger.exception("step runner crashed", extra=log_fields)
            error = StepError("INTERNAL", "the gateway failed while running the step; its log has the details")
            await self._write_quietly(run, self.store.fail_step, self.owner_id, claim.job_id, claim.step_id,
                                      code=error.code, message=error.message)

    async def _execute(self, run: _StepRun) -> _Result:
        """Resolve inputs, then (with retries) look up the cache or run the executor."""
        claim = run.claim
        step = claim.step
        # A step that reads only uploaded artifacts (the first of a job, every step of a one-step job)
        # needs no look at its upstream steps: a database round trip saved per such step.
        upstream = await self._call(self.store.upstream_outputs, claim.job_id, step.id) \
            if any(not isinstance(v, ArtifactInput) for v in step.inputs.values()) else {}
        resolved: dict[str, ArtifactRef] = {}
        for name, value in step.inputs.items():
            if isinstance(value, ArtifactInput):
                resolved[name] = value.artifact
                continue
            produced = upstream.get(value.step) or {}
            if value.output not in produced:
                return _Result("failed", error=StepError(
                    "FAILED_PRECONDITION", f"input {name!r}: step {value.step!r} has no output {value.output!r} "
                                           f"(its outputs: {', '.join(sorted(produced)) or 'none'})"))
            resolved[name] = produced[value.output]

        attempt = claim.attempt
        cache_key: str | None = None
        version: str | None = None
        while True:
            if run.cancel_event.is_set():
                return _Result("cancelled", cache_key=cache_key)
            started = time.perf_counter()
            executed = False
            try:
                version = await self._until_cancelled(run, self.executor.service_version(step.service))
                cache_key = step_cache_key(tenant=claim.tenant, service=step.service, method=step.method,
                                           service_version=version, params=step.params,
                                           input_digests=input_digests(resolved))
                cached = await self._call(self.store.cached_outputs, cache_key)
                if cached is not None:
                    return _Result("succeeded", outputs=cached.outputs, cache_key=cache_key,
                                   service_version=version, reused=True)
                invocation = StepInvocation(job_id=claim.job_id, tenant=claim.tenant, step=step, attempt=attempt)
                executed = True
                self.stats.executions += 1
                outputs = validate_outputs(await self._invoke(run, invocation, resolved))
                self.metrics.step_executed(step.service, "succeeded", time.perf_counter() - started)
                return _Result("succeeded", outputs=outputs, cache_key=cache_key, service_version=version)
            except DBAPIError:
                raise  # the job store, not the step, failed: see _run_step
            except _Cancelled:
                if executed:
                    self.metrics.step_executed(step.service, "cancelled", time.perf_counter() - started)
                return _Result("cancelled", cache_key=cache_key)
            except Exception as exc:  # what the executor raised: classified, maybe retried
                if run.cancel_event.is_set():
                    return _Result("cancelled", cache_key=cache_key)
                error = StepError.from_exception(exc)
                retry = self.retry_policy.should_retry(error, attempt)
                if executed:
                    self.metrics.step_executed(step.service, "retried" if retry else "failed",
                                               time.perf_counter() - started)
                if not isinstance(exc, (StepError, ValueError, TypeError)) and error.code == "INTERNAL":
                    logger.error("executor raised %s", type(exc).__name__, exc_info=exc,
                                 extra={"job_id": str(claim.job_id), "step_id": step.id})
                if not retry:
                    return _Result("failed", error=error, cache_key=cache_key)
                delay = self.retry_policy.backoff_s(attempt, self.rng)
                attempt = await self._call(self.store.record_retry, self.owner_id, claim.job_id, step.id,
                                           code=error.code, message=error.message, lease_s=self.lease_s + delay)
                self.stats.retried += 1
                self._changed(claim.job_id)
                self.metrics.step_retried(step.service, error.code)
                logger.info("step failed with %s, attempt %d in %.1f s: %s", error.code, attempt, delay,
                            error.message, extra={"job_id": str(claim.job_id), "step_id": step.id})
                try:
                    await asyncio.wait_for(run.cancel_event.wait(), delay)
                    return _Result("cancelled", cache_key=cache_key)
                except asyncio.TimeoutError:
                    pass

    async def _until_cancelled(self, run: _StepRun, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` unless the step's cancel event comes first (then raise _Cancelled)."""
        work = asyncio.ensure_future(awaitable)
        stopper = asyncio.create_task(run.cancel_event.wait())
        try:
            done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                return work.result()
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise _Cancelled
        finally:
            stopper.cancel()
            if not work.done():
                work.cancel()

    async def _invoke(self, run: _StepRun, invocation: StepInvocation,
                      resolved: dict[str, ArtifactRef]) -> Any:
        """Call the executor; on cancel, give it ``cancel_grace_s`` to stop by itself, then cancel its task."""
        work = asyncio.create_task(self.executor.execute(invocation, resolved, run.report_progress,
                                                         run.cancel_event))
        stopper = asyncio.create_task(run.cancel_event.wait())
        try:
            done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                done, _ = await asyncio.wait({work}, timeout=self.cancel_grace_s)
                if work not in done:
                    logger.warning("executor ignored the cancel event for %.0f s; cancelling its task",
                                   self.cancel_grace_s, extra={"job_id": str(invocation.job_id),
                                                               "step_id": invocation.step_id})
                    work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                if work.cancelled() or work.exception() is not None:
                    raise _Cancelled
                # It finished with outputs as the cancel came: they are valid, keep them.
            return work.result()
        finally:
            stopper.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)

    async def _heartbeat(self, run: _StepRun) -> None:
        """Renew the lease every ``lease_s / 3`` and write new progress every ``progress_interval_s``;
        watch for the job's cancel flag and for a lost lease."""
        claim = run.claim
        renew_every = self.lease_s / 3.0
        tick = min(renew_every, self.progress_interval_s)
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            progress = run.take_progress()
            if progress is None and time.monotonic() - last_renewal < renew_every - 1e-3:
                continue
            try:
                cancel = await self._call(self.store.renew_lease, self.owner_id, claim.job_id, claim.step_id,
                                          lease_s=self.lease_s, progress=progress)
            except LeaseLost:
                run.request_cancel("lease_lost")
                return
            except DBAPIError as exc:
                # Keep trying: the lease runs on, and LeaseLost says so if another runner took it.
                logger.warning("could not renew the lease: %s", exc.orig,
                               extra={"job_id": str(claim.job_id), "step_id": claim.step_id})
                if progress is not None and not run.progress_dirty:
                    run.progress_dirty = True
                continue
            last_renewal = time.monotonic()
            if progress is not None:
                self._changed(claim.job_id)
            if cancel:
                run.request_cancel("job_cancelled")

    async def _record(self, run: _StepRun, result: _Result) -> None:
        """Write how the step ended (retrying the write through a short database outage)."""
        claim = run.claim
        service = claim.step.service
        outcome: StepOutcome | None = None
        if result.kind == "succeeded":
            assert result.outputs is not None
            outcome = await self._write(run, self.store.complete_step, self.owner_id, claim.job_id, claim.step_id,
                                        outputs=result.outputs, cache_key=result.cache_key,
                                        service_version=result.service_version, reused=result.reused)
            self.stats.succeeded += 1
            if result.reused:
                self.stats.reused += 1
                self.metrics.step_reused(service)
        elif result.kind == "failed":
            assert result.error is not None
            outcome = await self._write(run, self.store.fail_step, self.owner_id, claim.job_id, claim.step_id,
                                        code=result.error.code, message=result.error.message,
                                        cache_key=result.cache_key)
            self.stats.failed += 1
        elif run.cancel_reason == "lease_lost":
            raise LeaseLost(f"step {claim.step_id!r} of job {claim.job_id}", self.owner_id)
        elif run.cancel_reason == "shutdown":
            await self._write(run, self.store.release_step, self.owner_id, claim.job_id, claim.step_id)
            self.stats.released += 1
        else:
            outcome = await self._write(run, self.store.cancel_step, self.owner_id, claim.job_id, claim.step_id)
            self.stats.cancelled += 1
        self._changed(claim.job_id)
        if outcome is not None and outcome.job_finished_now:
            self.metrics.job_finished(outcome.job_state)

    async def _write(self, run: _StepRun, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        delay = 0.2
        for attempt in range(6):
            try:
                return await self._call(fn, *args, **kwargs)
            except DBAPIError as exc:
                if attempt == 5:
                    raise
                logger.warning("job store write failed, again in %.1f s: %s", delay, exc.orig,
                               extra={"job_id": str(run.claim.job_id), "step_id": run.claim.step_id})
                await asyncio.sleep(delay)
                delay *= 2

    async def _write_quietly(self, run: _StepRun, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A last-resort write; if it fails too, the lease expiry hands the step to another runner."""
        try:
            await self._write(run, fn, *args, **kwargs)
        except (LeaseLost, IllegalTransition, DBAPIError) as exc:
            logger.warning("could not record the end of the step: %s", exc,
                           extra={"job_id": str(run.claim.job_id), "step_id": run.claim.step_id})
