"""The job runner on both store backends: execution order, cache reuse, retries, failure, cancel, leases."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest
from prometheus_client import REGISTRY

from gateway.jobs.errors import StepError
from gateway.jobs.retry import RetryPolicy
from gateway.jobs.runner import JobRunner
from gateway.jobs.spec import ArtifactRef, parse_job_spec
from gateway.jobs.states import JobState, StepState
from services.common.errors import Cancelled

SHA_A, SHA_B = "a" * 64, "b" * 64
pytestmark = pytest.mark.timeout(60)


def artifact_step(step_id, sha=SHA_A, key="uploads/counts.zarr", **params):
    return {"id": step_id, "service": "reduction", "method": "FitPCA", "params": params,
            "inputs": {"counts": {"artifact": {"key": key, "sha256": sha}}}}


def uses(step_id, *upstream, method="Project", **params):
    return {"id": step_id, "service": "reduction", "method": method, "params": params,
            "inputs": {f"from_{u}": {"step": u, "output": "out"} for u in upstream}}


def spec(*steps, tenant="lab-a"):
    return parse_job_spec({"tenant": tenant, "steps": list(steps)})


class ScriptedExecutor:
    """Records every call. ``script[step_id]`` lists what its successive calls do: ``"ok"``, an
    exception to raise, or an async callable ``(step, inputs, progress, cancel_event) -> outputs``.

    Outputs are content-addressed like the services': their digest depends on what was computed
    (method, params, input digests), not on the job, so equal work gives equal digests.
    """

    def __init__(self, script=None, version="1.0.0"):
        self.script = script or {}
        self.version = version
        self.calls: list[tuple[str, str, int]] = []
        self.inputs: dict[str, dict[str, ArtifactRef]] = {}

    async def service_version(self, service):
        return self.version

    async def execute(self, step, resolved_inputs, progress, cancel_event):
        n = sum(1 for _, sid, _ in self.calls if sid == step.step_id)
        self.calls.append((str(step.job_id), step.step_id, step.attempt))
        self.inputs[step.step_id] = dict(resolved_inputs)
        actions = self.script.get(step.step_id, [])
        action = actions[n] if n < len(actions) else "ok"
        if isinstance(action, BaseException):
            raise action
        if callable(action):
            return await action(step, resolved_inputs, progress, cancel_event)
        progress(0.5, "halfway")
        return self.outputs(step, resolved_inputs)

    @staticmethod
    def outputs(step, resolved_inputs):
        content = json.dumps([step.method, step.params, sorted((k, v.sha256) for k, v in resolved_inputs.items())])
        return {"out": {"key": f"jobs/{step.job_id}/{step.step_id}/out.zarr",
                        "sha256": hashlib.sha256(content.encode()).hexdigest()}}

    def calls_of(self, step_id):
        return [c for c in self.calls if c[1] == step_id]


def make_runner(store, executor, **kwargs):
    options = dict(owner_id="test-runner", concurrency=4, lease_s=1.5, poll_interval_s=0.05,
                   progress_interval_s=0.05, cancel_grace_s=0.5, drain_s=0.0, metrics_interval_s=0.2,
                   retry_policy=RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05))
    options.update(kwargs)
    return JobRunner(store, executor, **options)


@pytest.fixture
def runners():
    made = []

    def make(store, executor, **kwargs):
        runner = make_runner(store, executor, **kwargs)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


def run_jobs(runner, *job_ids, timeout_s=30.0):
    return asyncio.run(runner.run_until_finished(list(job_ids), timeout_s=timeout_s))


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_steps_run_after_their_inputs_with_upstream_outputs_resolved(store, runners):
    executor = ScriptedExecutor()
    job = store.submit(spec(uses("join", "left", "right"), uses("left", "root", side=0), uses("right", "root", side=1),
                            artifact_step("root"))).job
    runner = runners(store, executor)
    assert run_jobs(runner, job.id) == {job.id: JobState.SUCCEEDED}
    order = [sid for _, sid, _ in executor.calls]
    assert order[0] == "root" and order[-1] == "join" and sorted(order) == ["join", "left", "right", "root"]
    done = store.get_job("lab-a", job.id)
    assert executor.inputs["root"]["counts"].sha256 == SHA_A
    assert executor.inputs["join"] == {"from_left": done.step("left").outputs["out"],
                                       "from_right": done.step("right").outputs["out"]}
    assert all(s.state == StepState.SUCCEEDED and s.attempts == 1 and s.progress == 1.0 and not s.reused
               for s in done.steps)
    assert runner.stats.executions == 4 and runner.stats.reused == 0


def test_an_identical_second_job_is_completed_from_the_cache(store, runners):
    job_steps = (artifact_step("pca", n_components=8), uses("proj", "pca"), uses("plot", "proj", method="Plot"))
    first = store.submit(spec(*job_steps)).job
    run_jobs(runners(store, ScriptedExecutor()), first.id)

    executor = ScriptedExecutor()
    runner = runners(store, executor)
    reused_before = metric("neuromesh_gateway_steps_reused_total", service="reduction")
    second = store.submit(spec(*job_steps)).job
    assert run_jobs(runner, second.id) == {second.id: JobState.SUCCEEDED}
    assert executor.calls == []
    assert runner.stats.reused == 3 and runner.stats.executions == 0
    assert metric("neuromesh_gateway_steps_reused_total", service="reduction") - reused_before == 3
    again, before = store.get_job("lab-a", second.id), store.get_job("lab-a", first.id)
    assert again.reused_steps == 3
    assert {s.step_id: s.outputs for s in again.steps} == {s.step_id: s.outputs for s in before.steps}
    assert {s.step_id: s.cache_key for s in again.steps} == {s.step_id: s.cache_key for s in before.steps}


def test_the_cache_is_tenant_scoped(store, runners):
    """Another tenant's identical job is computed again: a tenant never gets another's artifact refs."""
    job_steps = (artifact_step("pca", n_components=8), uses("proj", "pca"))
    run_jobs(runners(store, ScriptedExecutor()), store.submit(spec(*job_steps, tenant="lab-a")).job.id)

    other = ScriptedExecutor()
    job_b = store.submit(spec(*job_steps, tenant="lab-b")).job
    assert run_jobs(runners(store, other), job_b.id) == {job_b.id: JobState.SUCCEEDED}
    assert sorted(sid for _, sid, _ in other.calls) == ["pca", "proj"]
    assert store.get_job("lab-b", job_b.id).reused_steps == 0

    same_tenant = ScriptedExecutor()
    again = store.submit(spec(*job_steps, tenant="lab-b")).job
    run_jobs(runners(store, same_tenant), again.id)
    assert same_tenant.calls == [] and store.get_job("lab-b", again.id).reused_steps == 2


def test_a_change_of_params_input_digest_or_version_reruns_what_it_affects(store, runners):
    run_jobs(runners(store, ScriptedExecutor()),
             store.submit(spec(artifact_step("pca", n_components=8), uses("proj", "pca", scale=1))).job.id)

    # Another key for the same content: nothing reruns (the cache key is made of digests).
    moved = ScriptedExecutor()
    run_jobs(runners(store, moved), store.submit(spec(artifact_step("pca", key="elsewhere/copy.zarr", n_components=8),
                                                      uses("proj", "pca", scale=1))).job.id)
    assert moved.calls == []

    # A parameter of the downstream step: only that step reruns.
    downstream = ScriptedExecutor()
    run_jobs(runners(store, downstream),
             store.submit(spec(artifact_step("pca", n_components=8), uses("proj", "pca", scale=2))).job.id)
    assert [sid for _, sid, _ in downstream.calls] == ["proj"]

    # A parameter of the upstream step: it reruns, its output digest changes, so downstream reruns too.
    upstream = ScriptedExecutor()
    run_jobs(runners(store, upstream),
             store.submit(spec(artifact_step("pca", n_components=9), uses("proj", "pca", scale=1))).job.id)
    assert [sid for _, sid, _ in upstream.calls] == ["pca", "proj"]

    # Other input content (digest), or a new service version: everything reruns.
    for executor, sha in [(ScriptedExecutor(), SHA_B), (ScriptedExecutor(version="1.1.0"), SHA_A)]:
        run_jobs(runners(store, executor),
                 store.submit(spec(artifact_step("pca", sha=sha, n_components=8), uses("proj", "pca", scale=1))).job.id)
        assert [sid for _, sid, _ in executor.calls] == ["pca", "proj"]


def test_unavailable_twice_then_success_takes_three_attempts(store, runners):
    unavailable = StepError("UNAVAILABLE", "reduction is restarting")
    executor = ScriptedExecutor({"pca": [unavailable, unavailable, "ok"]})
    retries_before = metric("neuromesh_gateway_step_retries_total", service="reduction", code="UNAVAILABLE")
    durations_before = metric("neuromesh_gateway_step_duration_seconds_count", service="reduction", outcome="retried")
    job = store.submit(spec(artifact_step("pca"), uses("proj", "pca"))).job
    runner = runners(store, executor)
    assert run_jobs(runner, job.id) == {job.id: JobState.SUCCEEDED}
    assert [attempt for _, sid, attempt in executor.calls if sid == "pca"] == [1, 2, 3]
    assert store.get_job("lab-a", job.id).step("pca").attempts == 3
    assert runner.stats.retried == 2
    assert metric("neuromesh_gateway_step_retries_total", service="reduction", code="UNAVAILABLE") - retries_before == 2
    assert metric("neuromesh_gateway_step_duration_seconds_count", service="reduction",
                  outcome="retried") - durations_before == 2


def test_retries_end_after_max_attempts(store, runners):
    executor = ScriptedExecutor({"pca": [StepError("DEADLINE_EXCEEDED", "took longer than 60 s")] * 10})
    job = store.submit(spec(artifact_step("pca"))).job
    assert run_jobs(runners(store, executor, retry_policy=RetryPolicy(max_attempts=3, initial_backoff_s=0.01,
                                                                      max_backoff_s=0.01)), job.id) \
        == {job.id: JobState.FAILED}
    step = store.get_job("lab-a", job.id).step("pca")
    assert len(executor.calls) == 3 and step.attempts == 3
    assert (step.error_code, step.error_message) == ("DEADLINE_EXCEEDED", "took longer than 60 s")


def test_invalid_argument_fails_at_once_with_the_services_message(store, runners):
    executor = ScriptedExecutor({"pca": [StepError("INVALID_ARGUMENT", "n_components=0 must be at least 1")]})
    job = store.submit(spec(artifact_step("pca", n_components=0), uses("proj", "pca"))).job
    runner = runners(store, executor)
    assert run_jobs(runner, job.id) == {job.id: JobState.FAILED}
    failed = store.get_job("lab-a", job.id)
    assert executor.calls_of("pca") == [(str(job.id), "pca", 1)] and executor.calls_of("proj") == []
    assert failed.step("pca").error_code == "INVALID_ARGUMENT"
    assert failed.step("pca").error_message == "n_components=0 must be at least 1"
    assert failed.error_message == "step 'pca' failed: n_components=0 must be at least 1"
    assert failed.step("proj").state == StepState.SKIPPED
    assert runner.stats.failed == 1 and runner.stats.retried == 0


def test_malformed_outputs_and_missing_upstream_outputs_fail_the_step(store, runners):
    async def no_digest(step, inputs, progress, cancel_event):
        return {"out": {"key": "x"}}

    executor = ScriptedExecutor({"bad": [no_digest]})
    bad = store.submit(spec(artifact_step("bad", variant="no digest"))).job
    wrong_name = store.submit(spec(artifact_step("pca"),
                                   {"id": "proj", "service": "reduction", "method": "Project",
                                    "inputs": {"m": {"step": "pca", "output": "model"}}})).job
    run_jobs(runners(store, executor), bad.id, wrong_name.id)
    step = store.get_job("lab-a", bad.id).step("bad")
    assert step.state == StepState.FAILED and step.error_code == "INTERNAL" and "sha256" in step.error_message
    step = store.get_job("lab-a", wrong_name.id).step("proj")
    assert step.error_code == "FAILED_PRECONDITION"
    assert step.error_message == "input 'm': step 'pca' has no output 'model' (its outputs: out)"


@pytest.mark.parametrize("via", ["runner", "store"])
def test_cancel_sets_the_running_executors_cancel_event_and_the_job_ends_cancelled(store, runners, via):
    """Through the runner (same process: at once) or the store only (another replica: at the next heartbeat)."""
    started, saw_cancel = asyncio.Event(), []

    async def long_call(step, inputs, progress, cancel_event):
        started.set()
        await asyncio.wait_for(cancel_event.wait(), 20)
        saw_cancel.append(cancel_event.is_set())
        raise Cancelled("the call was cancelled")

    executor = ScriptedExecutor({"slow": [long_call]})
    job = store.submit(spec(artifact_step("slow"), uses("after", "slow"))).job
    runner = runners(store, executor)

    async def scenario():
        serving = asyncio.create_task(runner.run_until_finished([job.id], timeout_s=20))
        await asyncio.wait_for(started.wait(), 10)
        t0 = time.monotonic()
        if via == "runner":
            await runner.cancel_job("lab-a", job.id)
        else:
            await asyncio.to_thread(store.cancel_job, "lab-a", job.id)
        states = await serving
        return states, time.monotonic() - t0

    states, took = asyncio.run(scenario())
    assert states == {job.id: JobState.CANCELLED}
    assert saw_cancel == [True]
    assert took < 5.0
    cancelled = store.get_job("lab-a", job.id)
    assert [s.state for s in cancelled.steps] == [StepState.CANCELLED, StepState.CANCELLED]
    assert executor.calls_of("after") == []


def test_an_executor_that_ignores_cancel_is_cancelled_after_the_grace(store, runners):
    started, interrupted = asyncio.Event(), []

    async def stubborn(step, inputs, progress, cancel_event):
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            interrupted.append(cancel_event.is_set())
            raise

    job = store.submit(spec(artifact_step("slow"))).job
    runner = runners(store, ScriptedExecutor({"slow": [stubborn]}), cancel_grace_s=0.2)

    async def scenario():
        serving = asyncio.create_task(runner.run_until_finished([job.id], timeout_s=20))
        await asyncio.wait_for(started.wait(), 10)
        await runner.cancel_job("lab-a", job.id)
        return await serving

    assert asyncio.run(scenario()) == {job.id: JobState.CANCELLED}
    assert interrupted == [True]


def test_progress_reaches_the_store_while_the_step_runs(store, runners):
    seen = []

    async def reporting(step, inputs, progress, cancel_event):
        progress(0.25, "fold 1 of 4")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = (await asyncio.to_thread(store.get_job, "lab-a", step.job_id)).step(step.step_id)
            if s.progress == 0.25:
                seen.append((s.progress, s.progress_message))
                break
            await asyncio.sleep(0.02)
        return ScriptedExecutor.outputs(step, inputs)

    job = store.submit(spec(artifact_step("pca"))).job
    run_jobs(runners(store, ScriptedExecutor({"pca": [reporting]})), job.id)
    assert seen == [(0.25, "fold 1 of 4")]
    assert store.get_job("lab-a", job.id).step("pca").progress == 1.0


def test_stop_gives_running_steps_back_and_another_runner_finishes_them(store, runners):
    started = asyncio.Event()

    async def long_call(step, inputs, progress, cancel_event):
        started.set()
        await cancel_event.wait()
        raise Cancelled("stopping")

    job = store.submit(spec(artifact_step("slow"))).job
    first = runners(store, ScriptedExecutor({"slow": [long_call]}), owner_id="first")

    async def scenario():
        serving = asyncio.create_task(first.run())
        await asyncio.wait_for(started.wait(), 10)
        first.stop()
        await asyncio.wait_for(serving, 10)

    asyncio.run(scenario())
    released = store.get_job("lab-a", job.id).step("slow")
    assert (released.state, released.attempts, released.lease_owner) == (StepState.PENDING, 0, None)
    assert first.stats.released == 1
    second = ScriptedExecutor()
    assert run_jobs(runners(store, second, owner_id="second"), job.id) == {job.id: JobState.SUCCEEDED}
    assert len(second.calls) == 1 and store.get_job("lab-a", job.id).step("slow").attempts == 1


def test_a_step_whose_runners_keep_dying_is_given_up(store, runners):
    job = store.submit(spec(artifact_step("crashy"))).job
    for _ in range(3):  # three runners claimed it and died: their leases expired
        assert len(store.claim_steps("dead", limit=1, lease_s=0.001)) == 1
        time.sleep(0.005)
    executor = ScriptedExecutor()
    runner = runners(store, executor, retry_policy=RetryPolicy(max_attempts=3))
    assert run_jobs(runner, job.id) == {job.id: JobState.FAILED}
    step = store.get_job("lab-a", job.id).step("crashy")
    assert executor.calls == [] and step.error_code == "ABORTED" and "started 3 times" in step.error_message


def test_gauges_report_jobs_by_state_and_queue_depth(store, runners):
    jobs = [store.submit(spec(artifact_step(f"s{i}", n_components=i))).job for i in range(3)]
    runner = runners(store, ScriptedExecutor())
    runner.metrics.refresh_from_store(store)
    assert metric("neuromesh_gateway_runnable_steps") == 3
    assert metric("neuromesh_gateway_jobs", state="pending") == 3
    finished_before = metric("neuromesh_gateway_jobs_finished_total", state="succeeded")
    run_jobs(runner, *(j.id for j in jobs))
    runner.metrics.refresh_from_store(store)
    assert metric("neuromesh_gateway_runnable_steps") == 0
    assert metric("neuromesh_gateway_jobs", state="succeeded") == 3
    assert metric("neuromesh_gateway_jobs_finished_total", state="succeeded") - finished_before == 3
