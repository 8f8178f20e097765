"""How a step is claimed: which steps are runnable, and how one runner takes them safely.

A step is **runnable** when

- it is ``pending`` and every step it depends on has ``succeeded``, or it is ``running`` under a
  lease that has expired (its runner was killed, or lost the database for longer than the lease);
- and its job is ``pending`` or ``running`` (not cancelling, cancelled or failed).

A **claim** moves runnable steps to ``running`` and writes a *lease* on them: the runner's owner
id and an expiry time. The runner renews the lease while it works (a heartbeat, at a third of
the lease). Why leases and not a lock held for the whole run: a step runs for minutes or hours,
and a transaction or connection held that long would pin database resources and still not say
*who* runs the step; a lease is a plain column, visible to every replica, and it ends by itself
when its holder dies. So a gateway killed with SIGKILL mid-job simply stops renewing; once the
expiry passes, its running steps are runnable again and the next claim (by a restarted gateway
or another replica) takes them. Steps that had succeeded are not runnable, so they never rerun;
the step that was cut off runs again (execution is at-least-once per step, which content-
addressed outputs make harmless). Every write a runner makes for a step it holds is conditioned
on ``lease_owner = <its id>``, so a runner that stalled past its lease and wakes up cannot
overwrite the result of the runner that took the step over.

**Several gateway processes** claim at the same time:

- PostgreSQL: the candidates are selected with ``FOR UPDATE SKIP LOCKED``. Each claimer locks
  the rows it picks and *skips* rows another claimer has locked, so concurrent claimers take
  disjoint steps without waiting for each other (plain ``FOR UPDATE`` would queue them behind
  one another; no locking at all would let two of them run the same step). The ``UPDATE`` that
  follows checks the conditions again, in the same transaction.
- SQLite: one writer at a time. The claim is a write transaction begun with ``BEGIN IMMEDIATE``
  (see :mod:`gateway.jobs.database`), whose conditional ``UPDATE ... WHERE state = 'pending' ...``
  cannot interleave with another process's; other processes wait on the busy timeout.

Claims are ordered oldest job first, then by position in the job's topological order.

Clock: lease expiries are written and compared with the gateways' own UTC clocks, which in a
deployment are NTP-synchronised to far better than a lease (30 s by default).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, ColumnElement, and_, exists, func, or_, select, tuple_, update

from gateway.jobs.schema import job_step_dependencies as deps
from gateway.jobs.schema import job_steps as steps
from gateway.jobs.schema import jobs
from gateway.jobs.states import ACTIVE_JOB_STATES, JobState, StepState

_upstream = steps.alias("upstream")
_ACTIVE = [s.value for s in ACTIVE_JOB_STATES]


def _claimable_state(now: datetime) -> ColumnElement[bool]:
    return or_(steps.c.state == StepState.PENDING.value,
               and_(steps.c.state == StepState.RUNNING.value, steps.c.lease_expires_at < now))


def _dependencies_unfinished() -> ColumnElement[bool]:
    """True for a step with at least one dependency that has not succeeded."""
    return exists(
        select(1).select_from(deps.join(_upstream, and_(_upstream.c.job_id == deps.c.job_id,
                                                         _upstream.c.step_id == deps.c.depends_on)))
        .where(deps.c.job_id == steps.c.job_id, deps.c.step_id == steps.c.step_id,
               _upstream.c.state != StepState.SUCCEEDED.value))


def _job_active() -> ColumnElement[bool]:
    # correlate_except: the subquery reads its own jobs row even where the outer query joins jobs.
    return exists(select(1).where(jobs.c.id == steps.c.job_id, jobs.c.state.in_(_ACTIVE)).correlate_except(jobs))


def runnable_condition(now: datetime) -> ColumnElement[bool]:
    """The WHERE clause, on ``job_steps``, of a step that may be claimed at ``now``."""
    return and_(_claimable_state(now), _job_active(), ~_dependencies_unfinished())


def count_runnable(conn: Connection, now: datetime) -> int:
    """How many steps could be claimed now (the queue depth)."""
    return conn.execute(select(func.count()).select_from(steps).where(runnable_condition(now))).scalar_one()


def any_runnable(conn: Connection, now: datetime) -> bool:
    """Whether some step could be claimed now (a read: it takes no lock a writer waits for)."""
    return conn.execute(select(steps.c.job_id).where(runnable_condition(now)).limit(1)).first() is not None


def claim_runnable_steps(conn: Connection, *, owner: str, limit: int, lease_s: float,
                         now: datetime) -> list[dict]:
    """Claim up to ``limit`` runnable steps for ``owner`` inside the caller's write transaction.

    Returns the claimed rows (job id, step id, spec, attempts, previous state, lease expiry, the
    job's tenant) as dicts; the caller commits. The jobs' move from pending to running is left to
    the caller (:meth:`JobStore.claim_steps`): on PostgreSQL a separate, later transaction, so a
    claim locks step rows only and can never wait on a job row that a cancel holds while it waits
    on those same steps; on SQLite, whose writers take turns, the same transaction.
    """
    if limit <= 0:
        return []
    candidates = (
        select(steps.c.job_id, steps.c.step_id, steps.c.state, jobs.c.tenant)
        .select_from(steps.join(jobs, jobs.c.id == steps.c.job_id))
        .where(runnable_condition(now))
        .order_by(jobs.c.created_at, jobs.c.id, steps.c.position)
        .limit(limit))
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(of=steps, skip_locked=True)
    picked = conn.execute(candidates).all()
    if not picked:
        return []
    previous_state = {(r.job_id, r.step_id): r.state for r in picked}
    tenants = {r.job_id: r.tenant for r in picked}
    expires = now + timedelta(seconds=lease_s)
    claimed = conn.execute(
        update(steps)
        .where(tuple_(steps.c.job_id, steps.c.step_id).in_([(r.job_id, r.step_id) for r in picked]),
               # Checked again: on PostgreSQL the rows are locked now, and this sees the latest
               # committed job state (READ COMMITTED takes a new snapshot per statement).
               _claimable_state(now), _job_active())
        .values(state=StepState.RUNNING.value, lease_owner=owner, lease_expires_at=expires,
                attempts=steps.c.attempts + 1, cancel_requested=False, started_at=now, progress=None,
                progress_message=None, updated_at=now)
        .returning(steps.c.job_id, steps.c.step_id, steps.c.spec, steps.c.attempts)
    ).mappings().all()
    return [{**row, "previous_state": previous_state[(row["job_id"], row["step_id"])],
             "tenant": tenants[row["job_id"]], "lease_expires_at": expires} for row in claimed]


def mark_jobs_running(conn: Connection, job_ids: list[UUID], now: datetime) -> None:
    """Move the given jobs from pending to running (the first claim of a job starts it)."""
    if job_ids:
        conn.execute(update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.state == JobState.PENDING.value)
                     .values(state=JobState.RUNNING.value, updated_at=now))
