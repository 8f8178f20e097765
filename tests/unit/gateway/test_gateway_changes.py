"""News of job changes inside one gateway process: event streams read a job when the runner wrote it.

No timed assertions: each stream polls once an hour, so a stream that ends at all was woken by the
news; the outer ``wait_for`` only keeps a broken build from hanging the suite.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import uuid

from gateway.api.events import job_events
from gateway.jobs.changes import JobChanges
from gateway.jobs.database import Database
from gateway.jobs.runner import JobRunner
from gateway.jobs.spec import parse_job_spec
from gateway.jobs.store import JobStore

HOUR = 3600.0


def test_notify_wakes_the_watchers_of_that_job_only():
    async def run():
        changes, job, other = JobChanges(), uuid.uuid4(), uuid.uuid4()
        with changes.watch(job) as mine, changes.watch(other) as theirs:
            changes.notify(job)
            assert mine.is_set() and not theirs.is_set()
            assert changes.watchers(job) == 1
        assert changes.watchers(job) == 0            # gone after the block: nothing accumulates
        changes.notify(job)                          # nobody watches: a no-op

    asyncio.run(run())


def test_notify_from_another_thread_reaches_the_loop():
    async def run():
        changes, job = JobChanges(), uuid.uuid4()
        with changes.watch(job) as changed:
            threading.Thread(target=changes.notify, args=(job,)).start()
            await asyncio.wait_for(changed.wait(), 60)
            return changed.is_set()

    assert asyncio.run(run())


def test_an_event_stream_reads_the_job_when_told_not_at_its_poll():
    states = iter([{"id": "j", "state": "succeeded", "steps": [{"id": "a", "state": "succeeded"}]}])
    reads = []

    async def read():
        reads.append(1)
        return next(states)

    async def run():
        changed = asyncio.Event()
        first = {"id": "j", "state": "running", "steps": [{"id": "a", "state": "running"}]}
        out = []
        asyncio.get_running_loop().call_later(0.01, changed.set)
        async for chunk in job_events(first, read, poll_s=HOUR, heartbeat_s=HOUR, closing=asyncio.Event(),
                                      changed=changed):
            out.append(chunk)
        return out

    out = asyncio.run(asyncio.wait_for(run(), 60))
    assert [c.split("\n")[1] for c in out] == ["event: job", "event: step", "event: end"]
    assert len(reads) == 1


def test_the_runner_reports_each_job_it_writes_and_skips_upstream_reads_for_root_steps():
    class Executor:
        async def service_version(self, service):
            return "1"

        async def execute(self, step, resolved_inputs, progress, cancel_event):
            return {"out": {"key": f"jobs/{step.job_id}/{step.step_id}", "sha256": uuid.uuid4().hex * 2}}

    class CountingStore(JobStore):
        upstream_reads: list[str] = []

        def upstream_outputs(self, job_id, step_id):
            self.upstream_reads.append(step_id)
            return super().upstream_outputs(job_id, step_id)

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/jobs.db")
        db.create_all()
        store = CountingStore(db)
        job = store.submit(parse_job_spec({"tenant": "t", "steps": [
            {"id": "a", "service": "reduction", "method": "Fit"},
            {"id": "b", "service": "reduction", "method": "Transform",
             "inputs": {"model": {"step": "a", "output": "out"}}}]})).job
        told: list[uuid.UUID] = []
        runner = JobRunner(store, Executor(), owner_id="r", poll_interval_s=HOUR, on_change=told.append)
        final = asyncio.run(runner.run_until_finished([job.id], timeout_s=60))
        runner.close()
        db.close()
    assert final[job.id].value == "succeeded"
    assert set(told) == {job.id}
    assert len(told) >= 4                           # each claim and each end of a; of b
    assert store.upstream_reads == ["b"]            # a reads only uploaded artifacts (none): no look upstream


def test_a_claim_without_the_look_first_claims_the_same():
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/jobs.db")
        db.create_all()
        store = JobStore(db)
        assert store.claim_steps("r", limit=4, lease_s=30) == []
        assert store.claim_steps("r", limit=4, lease_s=30, look_first=False) == []
        job = store.submit(parse_job_spec({"tenant": "t", "steps": [
            {"id": "a", "service": "reduction", "method": "Fit"}]})).job
        claimed = store.claim_steps("r", limit=4, lease_s=30, look_first=False)
        assert [(c.job_id, c.step_id, c.tenant) for c in claimed] == [(job.id, "a", "t")]
        assert store.get_job("t", job.id).state.value == "running"   # same transaction on SQLite
        assert store.claim_steps("r", limit=4, lease_s=30) == []
        db.close()
