"""The job store on SQLite and on PostgreSQL: submit, idempotency, tenants, listing, claims, leases, ends."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import pytest

from gateway.jobs.database import Database
from gateway.jobs.errors import IdempotencyConflict, IllegalTransition, JobNotFound, LeaseLost
from gateway.jobs.spec import ArtifactRef, parse_job_spec
from gateway.jobs.states import JobState, StepState

SHA = "ab" * 32
pytestmark = pytest.mark.timeout(60)


def step(step_id, *uses, **params):
    inputs = {f"in_{i}": {"step": up, "output": "out"} for i, up in enumerate(uses)}
    if not uses:
        inputs = {"data": {"artifact": {"key": "uploads/data.npy", "sha256": SHA}}}
    return {"id": step_id, "service": "reduction", "method": "FitPCA", "params": params, "inputs": inputs}


def spec(*steps, tenant="lab-a", key=None):
    return parse_job_spec({"tenant": tenant, "idempotency_key": key, "steps": list(steps)})


def out(name: str) -> dict[str, ArtifactRef]:
    return {"out": ArtifactRef(key=f"results/{name}", sha256=hashlib.sha256(name.encode()).hexdigest())}


def claim_ids(store, owner="gw-1", limit=100, **kw):
    return sorted(c.step_id for c in store.claim_steps(owner, limit=limit, lease_s=30, **kw))


def test_submit_stores_pending_steps_in_topological_order(store):
    job = store.submit(spec(step("c", "b"), step("b", "a"), step("a"))).job
    assert job.state == JobState.PENDING
    assert [s.step_id for s in job.steps] == ["a", "b", "c"]
    assert all(s.state == StepState.PENDING and s.attempts == 0 for s in job.steps)
    assert job.step("c").depends_on == ("b",)
    assert job.step_counts == {StepState.PENDING: 3}
    assert job.spec.step("a").inputs["data"].artifact.sha256 == SHA


def test_same_key_twice_returns_the_first_job(store, database):
    first = store.submit(spec(step("a"), key="run-1"))
    again = store.submit(spec(step("a"), key="run-1"))
    assert first.created and not again.created and again.job.id == first.job.id
    other_tenant = store.submit(spec(step("a"), key="run-1", tenant="lab-b"))
    assert other_tenant.created and other_tenant.job.id != first.job.id
    assert store.submit(spec(step("a"))).created and store.submit(spec(step("a"))).created  # no key: no dedup
    with pytest.raises(IdempotencyConflict, match="run-1"):
        store.submit(spec(step("a", n=2), key="run-1"))
    with database.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 4


def test_racing_submissions_with_one_key_create_one_job(store, database):
    results, barrier = [], threading.Barrier(6)

    def submit():
        barrier.wait()
        results.append(store.submit(spec(step("a"), step("b", "a"), key="race")))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.job.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with database.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM job_steps").scalar() == 2


def test_tenants_cannot_see_or_cancel_each_others_jobs(store):
    job = store.submit(spec(step("a"), tenant="lab-a")).job
    with pytest.raises(JobNotFound):
        store.get_job("lab-b", job.id)
    with pytest.raises(JobNotFound):
        store.cancel_job("lab-b", job.id)
    with pytest.raises(JobNotFound):
        store.get_job("lab-a", "not-a-uuid")
    assert store.list_jobs("lab-b").jobs == []
    assert store.get_job("lab-a", job.id).state == JobState.PENDING  # untouched by lab-b's cancel


def test_list_filters_and_pages_with_a_cursor(store):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [store.submit(spec(step("a"), key=f"k{i}"), now=t0 + timedelta(minutes=i)).job.id for i in range(7)]
    store.submit(spec(step("a"), tenant="lab-b"))
    store.cancel_job("lab-a", ids[3])

    seen, cursor = [], None
    while True:
        page = store.list_jobs("lab-a", limit=3, cursor=cursor)
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))                        # newest first, each once
    assert [j.id for j in store.list_jobs("lab-a", states=[JobState.CANCELLED]).jobs] == [ids[3]]
    window = store.list_jobs("lab-a", created_after=t0 + timedelta(minutes=2), created_before=t0 + timedelta(minutes=5))
    assert [j.id for j in window.jobs] == [ids[4], ids[3], ids[2]]
    assert window.jobs[0].steps == () and window.jobs[0].step_counts == {StepState.PENDING: 1}
    with pytest.raises(ValueError, match="cursor"):
        store.list_jobs("lab-a", cursor="garbage")
    with pytest.raises(ValueError, match="limit"):
        store.list_jobs("lab-a", limit=0)


def test_claims_follow_dependencies(store):
    job = store.submit(spec(step("a"), step("b"), step("c", "a", "b"))).job
    assert claim_ids(store) == ["a", "b"]
    assert claim_ids(store) == []                             # c waits for a and b; a, b are leased
    assert store.get_job("lab-a", job.id).state == JobState.RUNNING
    store.complete_step("gw-1", job.id, "a", outputs=out("a"), cache_key=None, service_version=None)
    assert claim_ids(store) == []
    store.complete_step("gw-1", job.id, "b", outputs=out("b"), cache_key=None, service_version=None)
    assert store.count_runnable() == 1
    assert claim_ids(store) == ["c"]
    outcome = store.complete_step("gw-1", job.id, "c", outputs=out("c"), cache_key="c" * 64, service_version="1")
    assert outcome.job_state == JobState.SUCCEEDED and outcome.job_finished_now
    done = store.get_job("lab-a", job.id)
    assert done.state == JobState.SUCCEEDED and done.finished_at is not None
    assert done.step("c").outputs == out("c") and done.step("c").attempts == 1
    assert store.upstream_outputs(job.id, "c") == {"a": out("a"), "b": out("b")}


def test_claim_limit_and_concurrent_claimers_take_disjoint_steps(store):
    job = store.submit(spec(*(step(f"s{i:02d}") for i in range(40)))).job
    assert len(claim_ids(store, "gw-0", limit=5)) == 5
    taken: dict[str, list[str]] = {}
    barrier = threading.Barrier(6)

    def claimer(owner):
        barrier.wait()
        mine = []
        while batch := store.claim_steps(owner, limit=3, lease_s=30):
            mine += [c.step_id for c in batch]
        taken[owner] = mine

    threads = [threading.Thread(target=claimer, args=(f"gw-{i + 1}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [s for mine in taken.values() for s in mine]
    assert len(everything) == len(set(everything)) == 35
    rows = store.get_job("lab-a", job.id).steps
    assert all(s.state == StepState.RUNNING and s.attempts == 1 for s in rows)
    assert {s.step_id: s.lease_owner for s in rows if s.lease_owner != "gw-0"} == \
        {s: owner for owner, mine in taken.items() for s in mine}


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_locked_out(store):
    t0 = datetime.now(timezone.utc)
    job = store.submit(spec(step("a"), step("b"))).job
    assert claim_ids(store, "gw-1", now=t0) == ["a", "b"]
    store.complete_step("gw-1", job.id, "b", outputs=out("b"), cache_key=None, service_version=None, now=t0)
    store.renew_lease("gw-1", job.id, "a", lease_s=30, now=t0 + timedelta(seconds=10))
    assert claim_ids(store, "gw-2", now=t0 + timedelta(seconds=35)) == []    # renewed until t0 + 40 s
    claimed = store.claim_steps("gw-2", limit=10, lease_s=30, now=t0 + timedelta(seconds=41))
    assert [(c.step_id, c.attempt, c.reclaimed) for c in claimed] == [("a", 2, True)]  # b succeeded: never again
    with pytest.raises(LeaseLost, match="no longer leased to gw-1"):
        store.renew_lease("gw-1", job.id, "a", lease_s=30)
    with pytest.raises(LeaseLost):
        store.complete_step("gw-1", job.id, "a", outputs=out("stale"), cache_key=None, service_version=None)
    store.complete_step("gw-2", job.id, "a", outputs=out("a"), cache_key=None, service_version=None)
    done = store.get_job("lab-a", job.id)
    assert done.state == JobState.SUCCEEDED and done.step("a").outputs == out("a")


def test_illegal_transitions_are_refused(store):
    job = store.submit(spec(step("a"), step("b", "a"))).job
    with pytest.raises(IllegalTransition, match="is pending; it cannot become succeeded"):
        store.complete_step("gw-1", job.id, "a", outputs=out("a"), cache_key=None, service_version=None)
    claim_ids(store)
    store.complete_step("gw-1", job.id, "a", outputs=out("a"), cache_key=None, service_version=None)
    with pytest.raises(IllegalTransition, match="is succeeded; it cannot become failed"):
        store.fail_step("gw-1", job.id, "a", code="INTERNAL", message="late")


def test_progress_and_retries_are_recorded(store):
    job = store.submit(spec(step("a"))).job
    claim_ids(store)
    assert store.renew_lease("gw-1", job.id, "a", lease_s=30, progress=(1.7, "fold 6/5")) is False
    assert store.record_retry("gw-1", job.id, "a", code="UNAVAILABLE", message="restarting", lease_s=30) == 2
    s = store.get_job("lab-a", job.id).step("a")
    assert (s.progress, s.progress_message, s.attempts, s.error_code) == (1.0, "fold 6/5", 2, "UNAVAILABLE")


def test_a_failed_step_fails_the_job_and_skips_what_has_not_started(store):
    job = store.submit(spec(step("a"), step("side"), step("b", "a"), step("c", "b"), step("other"))).job
    assert claim_ids(store, limit=2) == ["a", "side"]
    outcome = store.fail_step("gw-1", job.id, "a", code="INVALID_ARGUMENT", message="n_components must be > 0")
    assert outcome.job_state == JobState.FAILED
    failed = store.get_job("lab-a", job.id)
    assert failed.state == JobState.FAILED and failed.error_code == "INVALID_ARGUMENT"
    assert failed.error_message == "step 'a' failed: n_components must be > 0"
    assert failed.step("a").error_message == "n_components must be > 0"
    assert {s.step_id: s.state for s in failed.steps} == {
        "a": StepState.FAILED, "side": StepState.RUNNING, "b": StepState.SKIPPED, "c": StepState.SKIPPED,
        "other": StepState.SKIPPED}
    assert "needs outputs of step 'a'" in failed.step("c").error_message
    assert "the job failed at step 'a'" in failed.step("other").error_message
    assert claim_ids(store) == []
    # The step already running goes on; its result is kept and cached, the job stays failed.
    store.complete_step("gw-1", job.id, "side", outputs=out("side"), cache_key="d" * 64, service_version="1")
    assert store.get_job("lab-a", job.id).state == JobState.FAILED
    assert store.cached_outputs("d" * 64).outputs == out("side")


def test_cancel_stops_pending_steps_and_flags_running_ones(store):
    job = store.submit(spec(step("a"), step("b"), step("c", "a"))).job
    assert claim_ids(store, limit=1) == ["a"]
    cancelling = store.cancel_job("lab-a", job.id)
    assert cancelling.state == JobState.CANCELLING
    assert {s.step_id: s.state for s in cancelling.steps} == {
        "a": StepState.RUNNING, "b": StepState.CANCELLED, "c": StepState.CANCELLED}
    assert cancelling.step("a").cancel_requested
    assert claim_ids(store) == []
    assert store.renew_lease("gw-1", job.id, "a", lease_s=30) is True      # the runner's cue to stop
    assert store.cancel_job("lab-a", job.id).state == JobState.CANCELLING  # a second cancel changes nothing
    outcome = store.cancel_step("gw-1", job.id, "a")
    assert outcome.job_state == JobState.CANCELLED and outcome.job_finished_now
    assert store.get_job("lab-a", job.id).step("a").state == StepState.CANCELLED


def test_cancel_with_nothing_running_ends_at_once_and_finished_jobs_stay_finished(store):
    job = store.submit(spec(step("a"))).job
    assert store.cancel_job("lab-a", job.id).state == JobState.CANCELLED
    done = store.submit(spec(step("a"), key="done")).job
    claim_ids(store)
    store.complete_step("gw-1", done.id, "a", outputs=out("a"), cache_key=None, service_version=None)
    assert store.cancel_job("lab-a", done.id).state == JobState.SUCCEEDED


def test_a_dead_runners_step_in_a_cancelling_job_is_reaped(store):
    t0 = datetime.now(timezone.utc)
    job = store.submit(spec(step("a"))).job
    store.claim_steps("gw-dead", limit=1, lease_s=5, now=t0)
    store.cancel_job("lab-a", job.id, now=t0)
    assert store.reap_abandoned(now=t0 + timedelta(seconds=2)) == 0         # lease still valid
    assert store.reap_abandoned(now=t0 + timedelta(seconds=6)) == 1
    reaped = store.get_job("lab-a", job.id)
    assert reaped.state == JobState.CANCELLED and reaped.step("a").state == StepState.CANCELLED


def test_release_gives_a_step_back_uncounted(store):
    job = store.submit(spec(step("a"))).job
    claim_ids(store)
    store.release_step("gw-1", job.id, "a")
    s = store.get_job("lab-a", job.id).step("a")
    assert (s.state, s.attempts, s.lease_owner) == (StepState.PENDING, 0, None)
    assert claim_ids(store, "gw-2") == ["a"]


def test_cache_entries_are_kept_once_and_counts_are_reported(store):
    job = store.submit(spec(step("a"), step("b"))).job
    claim_ids(store)
    store.complete_step("gw-1", job.id, "a", outputs=out("first"), cache_key="e" * 64, service_version="1.0")
    store.complete_step("gw-1", job.id, "b", outputs=out("second"), cache_key="e" * 64, service_version="1.0")
    entry = store.cached_outputs("e" * 64)
    assert entry.outputs == out("first") and entry.service_version == "1.0" and entry.method == "FitPCA"
    assert store.cached_outputs("f" * 64) is None
    counts = store.count_jobs_by_state()
    assert counts[JobState.SUCCEEDED] == 1 and counts[JobState.PENDING] == 0 and set(counts) == set(JobState)


def test_sqlite_store_is_configured_for_several_processes(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    with database.read() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "foreign_keys",
                                                                            "busy_timeout")}
    database.close()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}


def test_in_memory_sqlite_and_other_databases_are_refused():
    with pytest.raises(ValueError, match="file"):
        Database("sqlite://")
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        Database("mysql+pymysql://u@h/db")
