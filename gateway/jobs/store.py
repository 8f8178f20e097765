"""The durable job store: jobs and steps in SQL, shared by every gateway process.

:class:`JobStore` is the only code that writes the job tables. It has two kinds of callers:

- the API side (the HTTP layer): submit a job (idempotently), get and list a tenant's jobs,
  cancel one;
- the runner side (:class:`~gateway.jobs.runner.JobRunner`): claim runnable steps under a lease
  (:mod:`gateway.jobs.claims`), renew the lease and record progress, record retries, and record
  how a step ended: succeeded (with its outputs and a cache entry), failed, or cancelled.

Every state change goes through the transition tables of :mod:`gateway.jobs.states` as a
conditional ``UPDATE``; one that matches nothing is refused with
:class:`~gateway.jobs.errors.IllegalTransition`, or :class:`~gateway.jobs.errors.LeaseLost` when
the step is running under another runner. Writes that end a step, and cancels, first lock the
job's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer anyway): two replicas
finishing the last two steps of a job at the same moment would otherwise each see the other's
step still running, and neither would mark the job succeeded.

All methods are synchronous and thread-safe (each uses its own pooled connection); the runner
calls them from worker threads, the HTTP layer may do the same.

Example
-------
>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> from gateway.jobs.database import Database
>>> from gateway.jobs.spec import parse_job_spec
>>> db = Database(f"sqlite:///{tmp.name}/jobs.db"); db.create_all()
>>> store = JobStore(db)
>>> spec = parse_job_spec({"tenant": "lab-a", "idempotency_key": "k1", "steps": [
...     {"id": "pca", "service": "reduction", "method": "FitPCA",
...      "inputs": {"counts": {"artifact": {"key": "counts.zarr", "sha256": 64 * "0"}}}}]})
>>> first = store.submit(spec)
>>> again = store.submit(spec)
>>> again.created, again.job.id == first.job.id
(False, True)
>>> [c.step_id for c in store.claim_steps("gateway-1", limit=4, lease_s=30)]
['pca']
>>> store.get_job("lab-a", first.job.id).state.value
'running'
>>> store.get_job("lab-b", first.job.id)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gateway.jobs.errors.JobNotFound: job ... does not exist
>>> db.close(); tmp.cleanup()
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.jobs import claims, dag
from gateway.jobs.cache import CachedOutputs, lookup_cached_outputs, remember_outputs
from gateway.jobs.database import Database
from gateway.jobs.errors import IdempotencyConflict, IllegalTransition, JobNotFound, LeaseLost
from gateway.jobs.records import ClaimedStep, JobPage, JobRecord, StepOutcome, StepRecord, Submission
from gateway.jobs.schema import job_step_dependencies as deps
from gateway.jobs.schema import job_steps as steps
from gateway.jobs.schema import jobs
from gateway.jobs.spec import ArtifactRef, JobSpec, StepSpec
from gateway.jobs.states import (ACTIVE_JOB_STATES, JobState, StepState, job_states_leading_to,
                                 step_states_leading_to)

MAX_PAGE_SIZE = 500


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_uuid(job_id: UUID | str) -> UUID | None:
    if isinstance(job_id, UUID):
        return job_id
    try:
        return UUID(str(job_id))
    except ValueError:
        return None


def _encode_cursor(created_at: datetime, job_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError
        return when, UUID(job_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValueError(f"invalid cursor {cursor!r}: pass back the next_cursor of a previous page") from None


def _outputs_json(outputs: Mapping[str, ArtifactRef]) -> dict[str, Any]:
    return {name: ref.model_dump(mode="json", exclude_none=True) for name, ref in outputs.items()}


class JobStore:
    """Jobs and their steps in the database of ``database``.

    Parameters
    ----------
    database : Database
        Where the tables live (created by ``database.create_all()``).

    Example
    -------
    See the module docstring; the runner side in short::

        claims = store.claim_steps("gw-1", limit=4, lease_s=30)
        store.renew_lease("gw-1", c.job_id, c.step_id, lease_s=30, progress=(0.5, "fold 3/6"))
        store.complete_step("gw-1", c.job_id, c.step_id, outputs=..., cache_key=..., service_version=...)
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    # ------------------------------------------------------------------ API side

    def submit(self, spec: JobSpec, *, now: datetime | None = None) -> Submission:
        """Store a new job with all its steps pending, or return the tenant's job with the same key.

        With an idempotency key, a second submission of the same job by the same tenant returns
        the first job (``created=False``) and stores nothing; the same key with a *different* job
        raises :class:`~gateway.jobs.errors.IdempotencyConflict`. Two submissions racing from two
        processes are settled by the unique (tenant, key) constraint: the loser reads the winner's job.
        """
        digest = spec.digest()
        if spec.idempotency_key is not None:
            existing = self._job_by_key(spec.tenant, spec.idempotency_key, digest)
            if existing is not None:
                return Submission(existing, created=False)
        now = now or utcnow()
        job_id = uuid.uuid4()
        order = spec.topological_order()
        try:
            with self.database.write() as conn:
                conn.execute(insert(jobs).values(
                    id=job_id, tenant=spec.tenant, idempotency_key=spec.idempotency_key,
                    state=JobState.PENDING.value, spec=spec.model_dump(mode="json"), spec_sha256=digest,
                    created_at=now, updated_at=now))
                conn.execute(insert(steps), [
                    {"job_id": job_id, "step_id": s.id, "position": i, "service": s.service, "method": s.method,
                     "spec": s.model_dump(mode="json"), "state": StepState.PENDING.value, "attempts": 0,
                     "cancel_requested": False, "reused": False, "updated_at": now}
                    for i, s in enumerate(order)])
                edges = [{"job_id": job_id, "step_id": s.id, "depends_on": up}
                         for s in order for up in s.upstream_steps]
                if edges:
                    conn.execute(insert(deps), edges)
        except IntegrityError:
            if spec.idempotency_key is None:
                raise
            existing = self._job_by_key(spec.tenant, spec.idempotency_key, digest)
            if existing is None:
                raise
            return Submission(existing, created=False)
        return Submission(self.get_job(spec.tenant, job_id), created=True)

    def _job_by_key(self, tenant: str, key: str, digest: str) -> JobRecord | None:
        with self.database.read() as conn:
            row = conn.execute(select(jobs.c.id, jobs.c.spec_sha256)
                               .where(jobs.c.tenant == tenant, jobs.c.idempotency_key == key)).first()
        if row is None:
            return None
        if row.spec_sha256 != digest:
            raise IdempotencyConflict(key, row.id)
        return self.get_job(tenant, row.id)

    def get_job(self, tenant: str, job_id: UUID | str) -> JobRecord:
        """The job with its steps; :class:`JobNotFound` when it does not exist *or belongs to another tenant*."""
        jid = _as_uuid(job_id)
        if jid is None:
            raise JobNotFound(job_id)
        with self.database.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == jid, jobs.c.tenant == tenant)).mappings().first()
            if row is None:
                raise JobNotFound(job_id)
            step_rows = conn.execute(select(steps).where(steps.c.job_id == jid)
                                     .order_by(steps.c.position)).mappings().all()
            edge_rows = conn.execute(select(deps.c.step_id, deps.c.depends_on).where(deps.c.job_id == jid)).all()
        upstream: dict[str, list[str]] = {}
        for e in edge_rows:
            upstream.setdefault(e.step_id, []).append(e.depends_on)
        records = tuple(self._step_record(r, upstream.get(r["step_id"], [])) for r in step_rows)
        counts: dict[StepState, int] = {}
        for r in records:
            counts[r.state] = counts.get(r.state, 0) + 1
        return self._job_record(row, counts, records)

    def list_jobs(self, tenant: str, *, states: Iterable[JobState | str] | None = None,
                  created_after: datetime | None = None, created_before: datetime | None = None,
                  limit: int = 50, cursor: str | None = None) -> JobPage:
        """A page of the tenant's jobs, newest first, without their steps (``step_counts`` only).

        Parameters
        ----------
        states : iterable of JobState, optional
            Only jobs in one of these states.
        created_after, created_before : datetime, optional
            Only jobs created at or after / strictly before these (aware) times.
        limit : int
            Page size, 1 to ``MAX_PAGE_SIZE``.
        cursor : str, optional
            ``next_cursor`` of the previous page: the listing goes on after its last job. Keyset
            pagination (created_at, id), so jobs submitted meanwhile neither repeat nor shift a page.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        query = select(jobs).where(jobs.c.tenant == tenant)
        if states is not None:
            query = query.where(jobs.c.state.in_([JobState(s).value for s in states]))
        if created_after is not None:
            query = query.where(jobs.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(jobs.c.created_at < created_before)
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(or_(jobs.c.created_at < at, and_(jobs.c.created_at == at, jobs.c.id < last_id)))
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self.database.read() as conn:
            rows = conn.execute(query).mappings().all()
            page = rows[:limit]
            counts = self._step_counts(conn, [r["id"] for r in page])
        records = [self._job_record(r, counts.get(r["id"], {})) for r in page]
        next_cursor = _encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
        return JobPage(records, next_cursor)

    def cancel_job(self, tenant: str, job_id: UUID | str, *, now: datetime | None = None) -> JobRecord:
        """Cancel a job: pending steps become cancelled, running ones are flagged for their runners.

        The job becomes ``cancelled`` at once when nothing of it runs, else ``cancelling`` until the
        runners of its running steps have seen the flag (at their next heartbeat) and stopped
        them. Cancelling a job that has already ended changes nothing. Another tenant's job is
        :class:`JobNotFound`.
        """
        jid = _as_uuid(job_id)
        if jid is None:
            raise JobNotFound(job_id)
        now = now or utcnow()
        with self.database.write() as conn:
            state = self._lock_job(conn, jid, tenant=tenant)
            if state is None:
                raise JobNotFound(job_id)
            if not (state.terminal or state == JobState.CANCELLING):
                conn.execute(update(steps).where(steps.c.job_id == jid, steps.c.state == StepState.PENDING.value)
                             .values(state=StepState.CANCELLED.value, error_code="CANCELLED",
                                     error_message="cancelled before it ran", finished_at=now, updated_at=now))
                flagged = conn.execute(
                    update(steps).where(steps.c.job_id == jid, steps.c.state == StepState.RUNNING.value)
                    .values(cancel_requested=True, updated_at=now)).rowcount
                self._set_job_state(conn, jid, JobState.CANCELLING if flagged else JobState.CANCELLED, now,
                                    error_code="CANCELLED", error_message="cancelled by the user")
        return self.get_job(tenant, jid)

    # ------------------------------------------------------------------ runner side

    def claim_steps(self, owner: str, *, limit: int, lease_s: float, look_first: bool = True,
                    now: datetime | None = None) -> list[ClaimedStep]:
        """Claim up to ``limit`` runnable steps for runner ``owner``, leased for ``lease_s`` seconds.

        See :mod:`gateway.jobs.claims` for what is runnable and why this is safe across processes.
        ``look_first=False`` skips SQLite's read-only look for work (when the caller knows a job was
        just submitted); the result is the same either way.
        """
        now = now or utcnow()
        sqlite = not self.database.is_postgresql
        if sqlite and look_first and not self._any_runnable(now):
            # The runner looks after every step that ends and every submission; most looks find
            # nothing. On SQLite a write transaction takes the one write lock of the database, which
            # the API's submissions then wait for: look in a read transaction first (it blocks nobody).
            return []
        with self.database.write() as conn:
            rows = claims.claim_runnable_steps(conn, owner=owner, limit=limit, lease_s=lease_s, now=now)
            job_ids = sorted({r["job_id"] for r in rows})
            if job_ids and sqlite:
                # SQLite: the claim holds the whole database, so no cancel can hold a job row while
                # waiting on these steps (the deadlock that keeps this apart on PostgreSQL, below):
                # the jobs move to running in the same transaction, one commit instead of two.
                claims.mark_jobs_running(conn, job_ids, now)
        if job_ids and not sqlite:
            with self.database.write() as conn:
                claims.mark_jobs_running(conn, job_ids, now)
        return [ClaimedStep(job_id=r["job_id"], tenant=r["tenant"], step=StepSpec.model_validate(r["spec"]),
                            attempt=r["attempts"], owner=owner, lease_expires_at=r["lease_expires_at"],
                            reclaimed=r["previous_state"] == StepState.RUNNING.value) for r in rows]

    def _any_runnable(self, now: datetime) -> bool:
        with self.database.read() as conn:
            return claims.any_runnable(conn, now)

    def renew_lease(self, owner: str, job_id: UUID, step_id: str, *, lease_s: float,
                    progress: tuple[float, str] | None = None, now: datetime | None = None) -> bool:
        """Extend ``owner``'s lease on a running step, recording its progress if given.

        Returns
        -------
        bool
            True when the step's job was cancelled and the runner should stop the step.

        Raises
        ------
        LeaseLost
            The step is no longer running under ``owner``.
        """
        now = now or utcnow()
        values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_s), "updated_at": now}
        if progress is not None:
            fraction, message = progress
            values.update(progress=min(1.0, max(0.0, float(fraction))), progress_message=message[:2000])
        with self.database.write() as conn:
            row = conn.execute(update(steps).where(*self._owned(owner, job_id, step_id)).values(**values)
                               .returning(steps.c.cancel_requested)).first()
            if row is None:
                self._refuse(conn, owner, job_id, step_id, StepState.RUNNING)
        return bool(row.cancel_requested)

    def record_retry(self, owner: str, job_id: UUID, step_id: str, *, code: str, message: str, lease_s: float,
                     now: datetime | None = None) -> int:
        """Record that an execution failed with a retryable error and another starts; return the attempts so far.

        The step stays running under ``owner`` (the lease is extended over the backoff), so no
        other replica takes it meanwhile; the attempt count is in the database, so a runner that
        dies during the backoff leaves it for the next one to respect.
        """
        now = now or utcnow()
        with self.database.write() as conn:
            row = conn.execute(
                update(steps).where(*self._owned(owner, job_id, step_id))
                .values(attempts=steps.c.attempts + 1, error_code=code, error_message=message,
                        lease_expires_at=now + timedelta(seconds=lease_s), updated_at=now)
                .returning(steps.c.attempts)).first()
            if row is None:
                self._refuse(conn, owner, job_id, step_id, StepState.RUNNING)
        return int(row.attempts)

    def upstream_outputs(self, job_id: UUID, step_id: str) -> dict[str, dict[str, ArtifactRef]]:
        """The outputs of the steps ``step_id`` depends on: upstream step id -> output name -> reference."""
        with self.database.read() as conn:
            rows = conn.execute(
                select(steps.c.step_id, steps.c.outputs)
                .join(deps, and_(deps.c.job_id == steps.c.job_id, deps.c.depends_on == steps.c.step_id))
                .where(deps.c.job_id == job_id, deps.c.step_id == step_id)).all()
        return {r.step_id: {k: ArtifactRef.model_validate(v) for k, v in (r.outputs or {}).items()} for r in rows}

    def cached_outputs(self, cache_key: str) -> CachedOutputs | None:
        """The cache entry for ``cache_key``, if any (:mod:`gateway.jobs.cache`)."""
        with self.database.read() as conn:
            return lookup_cached_outputs(conn, cache_key)

    def complete_step(self, owner: str, job_id: UUID, step_id: str, *, outputs: Mapping[str, ArtifactRef],
                      cache_key: str | None, service_version: str | None, reused: bool = False,
                      now: datetime | None = None) -> StepOutcome:
        """Record a step's outputs: the step succeeds, its cache entry is stored (unless it came from
        the cache), and the job succeeds if this was its last step. One transaction."""
        now = now or utcnow()
        with self.database.write() as conn:
            job_state = self._lock_job(conn, job_id)
            row = conn.execute(
                update(steps).where(*self._owned(owner, job_id, step_id, becoming=StepState.SUCCEEDED))
                .values(state=StepState.SUCCEEDED.value, outputs=_outputs_json(outputs), cache_key=cache_key,
                        reused=reused, error_code=None, error_message=None, progress=1.0, lease_owner=None,
                        lease_expires_at=None, finished_at=now, updated_at=now)
                .returning(steps.c.service, steps.c.method)).first()
            if row is None:
                self._refuse(conn, owner, job_id, step_id, StepState.SUCCEEDED)
            if cache_key and service_version and not reused:
                remember_outputs(conn, cache_key=cache_key, service=row.service, method=row.method,
                                 service_version=service_version, outputs=outputs, now=now)
            return self._settle_job(conn, job_id, job_state, now)

    def fail_step(self, owner: str, job_id: UUID, step_id: str, *, code: str, message: str,
                  cache_key: str | None = None, now: datetime | None = None) -> StepOutcome:
        """Record that a step failed: the job fails, and its steps that have not started are skipped.

        Steps that need the failed step's outputs are skipped with a message saying so; the other
        pending steps are skipped because the job as a whole has failed. Steps of the job that are
        running already go on (their outputs are cached, so a corrected job reuses them).
        """
        now = now or utcnow()
        with self.database.write() as conn:
            job_state = self._lock_job(conn, job_id)
            done = conn.execute(
                update(steps).where(*self._owned(owner, job_id, step_id, becoming=StepState.FAILED))
                .values(state=StepState.FAILED.value, error_code=code, error_message=message, cache_key=cache_key,
                        lease_owner=None, lease_expires_at=None, finished_at=now, updated_at=now)).rowcount
            if not done:
                self._refuse(conn, owner, job_id, step_id, StepState.FAILED)
            if job_state is not None and job_state.active:
                self._skip_pending_after_failure(conn, job_id, step_id, now)
                self._set_job_state(conn, job_id, JobState.FAILED, now, error_code=code,
                                    error_message=f"step {step_id!r} failed: {message}")
                return StepOutcome(JobState.FAILED, job_finished_now=True)
            return self._settle_job(conn, job_id, job_state, now)

    def cancel_step(self, owner: str, job_id: UUID, step_id: str, *, message: str = "cancelled while running",
                    now: datetime | None = None) -> StepOutcome:
        """Record that a running step was stopped because its job was cancelled."""
        now = now or utcnow()
        with self.database.write() as conn:
            job_state = self._lock_job(conn, job_id)
            done = conn.execute(
                update(steps).where(*self._owned(owner, job_id, step_id, becoming=StepState.CANCELLED))
                .values(state=StepState.CANCELLED.value, error_code="CANCELLED", error_message=message,
                        lease_owner=None, lease_expires_at=None, finished_at=now, updated_at=now)).rowcount
            if not done:
                self._refuse(conn, owner, job_id, step_id, StepState.CANCELLED)
            if job_state is not None and job_state.active:
                # Only a cancelled job stops steps; a step stopped otherwise still ends its job.
                self._set_job_state(conn, job_id, JobState.CANCELLING, now, error_code="CANCELLED",
                                    error_message=message)
                job_state = JobState.CANCELLING
            return self._settle_job(conn, job_id, job_state, now)

    def release_step(self, owner: str, job_id: UUID, step_id: str, *, now: datetime | None = None) -> None:
        """Give a running step back as pending (a runner shutting down), for another runner to claim now
        rather than after the lease expires. The interrupted attempt is not counted against the step.
        If its job is being cancelled, the step is cancelled instead."""
        now = now or utcnow()
        with self.database.write() as conn:
            job_state = self._lock_job(conn, job_id)
            if job_state is not None and not job_state.active:
                done = conn.execute(
                    update(steps).where(*self._owned(owner, job_id, step_id, becoming=StepState.CANCELLED))
                    .values(state=StepState.CANCELLED.value, error_code="CANCELLED",
                            error_message=f"stopped when its runner shut down; the job is {job_state.value}",
                            lease_owner=None, lease_expires_at=None, finished_at=now, updated_at=now)).rowcount
                if done:
                    self._settle_job(conn, job_id, job_state, now)
                return
            done = conn.execute(
                update(steps).where(*self._owned(owner, job_id, step_id, becoming=StepState.PENDING))
                .values(state=StepState.PENDING.value, lease_owner=None, lease_expires_at=None,
                        attempts=steps.c.attempts - 1, progress=None, progress_message=None, updated_at=now)).rowcount
            if not done:
                self._refuse(conn, owner, job_id, step_id, StepState.PENDING)

    def reap_abandoned(self, *, now: datetime | None = None) -> int:
        """Cancel running steps whose runner died (lease expired) in jobs that can no longer claim
        them (cancelling or failed), and settle those jobs; return how many steps were reaped.

        In an active job such a step is simply claimed again; in a cancelling job nobody would
        ever finish it, and the job would stay cancelling for good.
        """
        now = now or utcnow()
        inactive = [s.value for s in JobState if s not in ACTIVE_JOB_STATES]
        with self.database.write() as conn:
            job_ids = conn.execute(
                select(steps.c.job_id).distinct().join(jobs, jobs.c.id == steps.c.job_id)
                .where(steps.c.state == StepState.RUNNING.value, steps.c.lease_expires_at < now,
                       jobs.c.state.in_(inactive))).scalars().all()
            reaped = 0
            for job_id in job_ids:
                job_state = self._lock_job(conn, job_id)
                reaped += conn.execute(
                    update(steps).where(steps.c.job_id == job_id, steps.c.state == StepState.RUNNING.value,
                                        steps.c.lease_expires_at < now)
                    .values(state=StepState.CANCELLED.value, error_code="CANCELLED",
                            error_message=f"its runner stopped while the job was {job_state.value}",
                            lease_owner=None, lease_expires_at=None, finished_at=now, updated_at=now)).rowcount
                self._settle_job(conn, job_id, job_state, now)
        return reaped

    # ------------------------------------------------------------------ counts (metrics, runner)

    def count_runnable(self, *, now: datetime | None = None) -> int:
        """Steps that could be claimed now, across all jobs: the queue depth."""
        with self.database.read() as conn:
            return claims.count_runnable(conn, now or utcnow())

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zero included)."""
        with self.database.read() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): n for state, n in rows})
        return counts

    def job_progress(self, job_ids: Sequence[UUID]) -> dict[UUID, float]:
        """The fraction of each job's work done, in [0, 1]: succeeded steps count 1, running ones their
        reported progress, the others 0; averaged over the job's steps (for listings and progress bars)."""
        if not job_ids:
            return {}
        done = case((steps.c.state == StepState.SUCCEEDED.value, 1.0),
                    (steps.c.state == StepState.RUNNING.value, func.coalesce(steps.c.progress, 0.0)), else_=0.0)
        with self.database.read() as conn:
            rows = conn.execute(select(steps.c.job_id, func.sum(done), func.count())
                                .where(steps.c.job_id.in_(list(job_ids))).group_by(steps.c.job_id)).all()
        return {job_id: min(1.0, float(total) / n) if n else 0.0 for job_id, total, n in rows}

    def job_states(self, job_ids: Sequence[UUID]) -> dict[UUID, JobState]:
        """The states of the given jobs, whatever their tenant (for the runner, not for callers)."""
        if not job_ids:
            return {}
        with self.database.read() as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(list(job_ids)))).all()
        return {r.id: JobState(r.state) for r in rows}

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _owned(owner: str, job_id: UUID, step_id: str, becoming: StepState | None = None) -> list:
        """WHERE clauses of "this step, running, leased to ``owner``"."""
        if becoming is not None:
            assert StepState.RUNNING in step_states_leading_to(becoming), becoming  # the table says so
        return [steps.c.job_id == job_id, steps.c.step_id == step_id, steps.c.state == StepState.RUNNING.value,
                steps.c.lease_owner == owner]

    @staticmethod
    def _refuse(conn: Connection, owner: str, job_id: UUID, step_id: str, wanted: StepState):
        """Raise the right error for an owner-guarded update of a step that matched no row."""
        row = conn.execute(select(steps.c.state, steps.c.lease_owner)
                           .where(steps.c.job_id == job_id, steps.c.step_id == step_id)).first()
        what = f"step {step_id!r} of job {job_id}"
        if row is None:
            raise JobNotFound(job_id)
        if row.state == StepState.RUNNING.value:
            raise LeaseLost(what, owner)
        raise IllegalTransition(what, row.state, wanted.value)

    @staticmethod
    def _lock_job(conn: Connection, job_id: UUID, *, tenant: str | None = None) -> JobState | None:
        """The job's state, with its row locked until the transaction ends (PostgreSQL; an SQLite
        write transaction holds the whole database already)."""
        query = select(jobs.c.state).where(jobs.c.id == job_id)
        if tenant is not None:
            query = query.where(jobs.c.tenant == tenant)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        state = conn.execute(query).scalar()
        return JobState(state) if state is not None else None

    @staticmethod
    def _set_job_state(conn: Connection, job_id: UUID, new: JobState, now: datetime, *,
                       error_code: str | None = None, error_message: str | None = None) -> None:
        values: dict[str, Any] = {"state": new.value, "updated_at": now}
        if new.terminal:
            values["finished_at"] = now
        if error_code is not None:
            values.update(error_code=error_code, error_message=error_message)
        done = conn.execute(update(jobs).where(jobs.c.id == job_id,
                                               jobs.c.state.in_([s.value for s in job_states_leading_to(new)]))
                            .values(**values)).rowcount
        if not done:
            current = conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
            raise IllegalTransition(f"job {job_id}", str(current), new.value)

    def _settle_job(self, conn: Connection, job_id: UUID, job_state: JobState | None, now: datetime) -> StepOutcome:
        """After a step ended: a job whose steps all succeeded succeeds; a cancelling job with nothing
        running any more is cancelled."""
        if job_state is None:
            raise JobNotFound(job_id)
        counts = dict(conn.execute(select(steps.c.state, func.count()).where(steps.c.job_id == job_id)
                                   .group_by(steps.c.state)).all())
        total = sum(counts.values())
        new: JobState | None = None
        if job_state.active and counts.get(StepState.SUCCEEDED.value, 0) == total:
            new = JobState.SUCCEEDED
        elif job_state == JobState.CANCELLING and not counts.get(StepState.RUNNING.value, 0):
            new = JobState.CANCELLED
        if new is None:
            return StepOutcome(job_state, job_finished_now=False)
        self._set_job_state(conn, job_id, new, now)
        return StepOutcome(new, job_finished_now=True)

    @staticmethod
    def _skip_pending_after_failure(conn: Connection, job_id: UUID, failed_step: str, now: datetime) -> None:
        rows = conn.execute(select(steps.c.step_id).where(steps.c.job_id == job_id)).scalars().all()
        edges = conn.execute(select(deps.c.depends_on, deps.c.step_id).where(deps.c.job_id == job_id)).all()
        needs_failed = dag.downstream_of(list(rows), [tuple(e) for e in edges], failed_step)
        pending = steps.c.state == StepState.PENDING.value
        if needs_failed:
            conn.execute(update(steps).where(steps.c.job_id == job_id, pending, steps.c.step_id.in_(needs_failed))
                         .values(state=StepState.SKIPPED.value, error_code="FAILED_PRECONDITION",
                                 error_message=f"not run: it needs outputs of step {failed_step!r}, which failed",
                                 finished_at=now, updated_at=now))
        conn.execute(update(steps).where(steps.c.job_id == job_id, pending)
                     .values(state=StepState.SKIPPED.value, error_code="ABORTED",
                             error_message=f"not run: the job failed at step {failed_step!r}",
                             finished_at=now, updated_at=now))

    @staticmethod
    def _step_counts(conn: Connection, job_ids: list[UUID]) -> dict[UUID, dict[StepState, int]]:
        if not job_ids:
            return {}
        rows = conn.execute(select(steps.c.job_id, steps.c.state, func.count()).where(steps.c.job_id.in_(job_ids))
                            .group_by(steps.c.job_id, steps.c.state)).all()
        out: dict[UUID, dict[StepState, int]] = {}
        for job_id, state, n in rows:
            out.setdefault(job_id, {})[StepState(state)] = n
        return out

    @staticmethod
    def _step_record(row: Mapping[str, Any], depends_on: list[str]) -> StepRecord:
        outputs = row["outputs"]
        return StepRecord(
            job_id=row["job_id"], step_id=row["step_id"], position=row["position"],
            spec=StepSpec.model_validate(row["spec"]), state=StepState(row["state"]), attempts=row["attempts"],
            depends_on=tuple(depends_on), lease_owner=row["lease_owner"], lease_expires_at=row["lease_expires_at"],
            cancel_requested=bool(row["cancel_requested"]),
            outputs={k: ArtifactRef.model_validate(v) for k, v in outputs.items()} if outputs is not None else None,
            error_code=row["error_code"], error_message=row["error_message"], progress=row["progress"],
            progress_message=row["progress_message"], cache_key=row["cache_key"], reused=bool(row["reused"]),
            started_at=row["started_at"], finished_at=row["finished_at"], updated_at=row["updated_at"])

    @staticmethod
    def _job_record(row: Mapping[str, Any], counts: dict[StepState, int],
                    step_records: tuple[StepRecord, ...] = ()) -> JobRecord:
        return JobRecord(
            id=row["id"], tenant=row["tenant"], idempotency_key=row["idempotency_key"],
            state=JobState(row["state"]), spec=JobSpec.model_validate(row["spec"], context={"max_steps": 10**9}),
            error_code=row["error_code"], error_message=row["error_message"], created_at=row["created_at"],
            updated_at=row["updated_at"], finished_at=row["finished_at"], step_counts=counts, steps=step_records)
