"""The gateway's local operations on arrays in a real S3 store, against answers known by construction.

StackCounts: trial k is input runs.k, with its label; the flat samples are the trials one after
another. EpochTrials: trials cut at known starts or by a known trial index. SumMatrices: the sum,
the shared labels, and refusals of shards that do not belong together. Then the executor that
runs them: content-addressed outputs reused, progress, cancel, the size guard, and a job of local
steps through the real JobRunner on an SQLite job store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import numpy as np
import pytest

from gateway.jobs.database import Database
from gateway.jobs.errors import StepError
from gateway.jobs.executor import StepInvocation
from gateway.jobs.runner import JobRunner
from gateway.jobs.spec import ArtifactRef as SpecRef
from gateway.jobs.spec import StepSpec, parse_job_spec
from gateway.jobs.states import JobState
from gateway.jobs.store import JobStore
from gateway.pipelines import LOCAL_OPERATIONS, CompositeStepExecutor, run_operation
from gateway.pipelines.local import LOCAL_OPERATIONS_VERSION, output_prefix
from services.common.errors import Cancelled, FailedPrecondition, InvalidArgument, ResourceExhausted

pytestmark = pytest.mark.timeout(120)
PNG = b"\x89PNG\r\n\x1a\n"


def put(store, name, array) -> SpecRef:
    """An array stored under a fresh key, as the job engine refers to it."""
    ref = store.put_array(f"inputs/{uuid.uuid4().hex[:12]}/{name}", np.asarray(array))
    return SpecRef(key=ref.key, sha256=ref.sha256)


def run(store, method, params, inputs, **kwargs):
    return run_operation(LOCAL_OPERATIONS[method], store, params, inputs, **kwargs)


def read(store, ref):
    return store.get_array(ref.key)


# ------------------------------------------------------------------------------ StackCounts


def test_stack_counts_orders_trials_as_the_runs_and_labels_them(store):
    rng = np.random.default_rng(0)
    runs = [rng.poisson(2.0, size=(12, 5)).astype(np.float32) for _ in range(6)]
    labels = [0, 1, 0, 1, 0, 1]
    inputs = {f"runs.{k}": put(store, f"run{k}", r) for k, r in enumerate(runs)}
    out = run(store, "StackCounts", {"conditions": labels, "condition_names": ["weak", "strong"], "bin_s": 0.01,
                                     "skip_bins": 2}, inputs)
    activity = read(store, out["activity"])
    assert activity.shape == (6, 10, 5) and activity.dtype == np.float32
    for k in range(6):
        np.testing.assert_array_equal(activity[k], runs[k][2:])
    assert read(store, out["conditions"]).tolist() == labels
    samples = read(store, out["samples"])
    np.testing.assert_array_equal(samples, np.concatenate([r[2:] for r in runs]))
    assert read(store, out["sample_trials"]).tolist() == [k for k in range(6) for _ in range(10)]
    assert read(store, out["sample_conditions"]).tolist() == [c for c in labels for _ in range(10)]
    np.testing.assert_allclose(read(store, out["sample_times"])[:10], (2 + np.arange(10) + 0.5) * 0.01)
    assert store.get_bytes(out["figure"].key)[:8] == PNG and out["figure"].media_type == "image/png"
    report = store.get_json(out["report"].key)
    assert report["summary"]["shape"] == [6, 10, 5] and report["params"]["skip_bins"] == 2
    assert all(len(ref.sha256) == 64 for ref in out.values())
    assert out["activity"].key.startswith("derived/gateway/StackCounts/")


def test_stack_counts_index_order_is_numeric_not_lexical(store):
    runs = [np.full((3, 2), k, dtype=np.float32) for k in range(11)]
    inputs = {f"runs.{k}": put(store, f"run{k}", r) for k, r in enumerate(runs)}
    out = run(store, "StackCounts", {"conditions": [k % 2 for k in range(11)], "bin_s": 0.01}, inputs)
    assert read(store, out["activity"])[:, 0, 0].tolist() == list(range(11))    # runs.10 comes last


def test_stack_counts_keeps_the_columns_asked_for_in_their_order(store):
    runs = [np.arange(20, dtype=np.float32).reshape(4, 5) + 100 * k for k in range(2)]
    inputs = {f"runs.{k}": put(store, f"run{k}", r) for k, r in enumerate(runs)}
    out = run(store, "StackCounts", {"conditions": [0, 1], "bin_s": 0.025, "columns": [4, 1],
                                     "quantity": "rates_hz"}, inputs)
    activity = read(store, out["activity"])
    np.testing.assert_array_equal(activity[1], runs[1][:, [4, 1]])
    with pytest.raises(InvalidArgument, match="past the 5 of the runs"):
        run(store, "StackCounts", {"conditions": [0, 1], "bin_s": 0.025, "columns": [5]}, inputs)
    with pytest.raises(InvalidArgument, match="distinct indices"):
        LOCAL_OPERATIONS["StackCounts"].check_step({"conditions": [0], "bin_s": 1, "columns": [1, 1]}, ["runs.0"])


def test_stack_counts_refuses_runs_of_different_shapes_naming_them(store):
    inputs = {"runs.0": put(store, "a", np.zeros((10, 4))), "runs.1": put(store, "b", np.zeros((9, 4)))}
    with pytest.raises(InvalidArgument, match=r"runs.0 \(10, 4\), runs.1 \(9, 4\)"):
        run(store, "StackCounts", {"conditions": [0, 1], "bin_s": 0.01}, inputs)


def test_stack_counts_needs_one_label_per_run():
    with pytest.raises(InvalidArgument, match="2 condition labels for 3 runs") as info:
        LOCAL_OPERATIONS["StackCounts"].check_step({"conditions": [0, 1], "bin_s": 0.01},
                                                   ["runs.0", "runs.1", "runs.2"])
    assert info.value.field == "params.conditions"


# ------------------------------------------------------------------------------ EpochTrials


def test_epoch_trials_by_start_times_cuts_known_windows_and_drops_what_does_not_fit(store):
    bin_s, n_bins = 0.05, 100                       # 5 s of bins
    counts = np.arange(n_bins * 3, dtype=np.float32).reshape(n_bins, 3)
    centres = (np.arange(n_bins) + 0.5) * bin_s
    starts = np.array([0.0, 1.0, 2.5, 4.6])          # the last trial runs past the end
    conditions = np.array([3, 7, 3, 7])
    out = run(store, "EpochTrials", {"trial_duration_s": 0.5},
              {"counts": put(store, "counts", counts), "bin_centres": put(store, "centres", centres),
               "trial_starts": put(store, "starts", starts), "trial_conditions": put(store, "conds", conditions)})
    activity = read(store, out["activity"])
    assert activity.shape == (3, 10, 3)
    for trial, first in enumerate([0, 20, 50]):
        np.testing.assert_array_equal(activity[trial], counts[first:first + 10])
    assert read(store, out["conditions"]).tolist() == [3, 7, 3]
    assert read(store, out["sample_conditions"]).tolist() == [3] * 10 + [7] * 10 + [3] * 10
    report = store.get_json(out["report"].key)
    assert report["summary"]["trials_kept"] == [0, 1, 2] and report["summary"]["trials_dropped"] == 1


def test_epoch_trials_by_trial_index_takes_the_shortest_trial_and_its_conditions(store):
    trial_index = np.array([-1, 0, 0, 0, 0, -1, 1, 1, 1, 2, 2, 2, 2, -1])
    condition = np.where(trial_index >= 0, np.array([0, 1, 0])[trial_index], -1)
    counts = np.arange(14 * 2, dtype=np.float32).reshape(14, 2)
    centres = (np.arange(14) + 0.5) * 0.1
    out = run(store, "EpochTrials", {},
              {"counts": put(store, "counts", counts), "bin_centres": put(store, "centres", centres),
               "trial_index": put(store, "index", trial_index), "condition": put(store, "cond", condition)})
    activity = read(store, out["activity"])
    assert activity.shape == (3, 3, 2)
    np.testing.assert_array_equal(activity[1], counts[6:9])
    np.testing.assert_array_equal(activity[2], counts[9:12])
    assert read(store, out["conditions"]).tolist() == [0, 1, 0]
    np.testing.assert_allclose(read(store, out["sample_times"])[:3], [0.05, 0.15, 0.25])


def test_epoch_trials_wants_one_kind_of_trial_information():
    operation = LOCAL_OPERATIONS["EpochTrials"]
    with pytest.raises(InvalidArgument, match="either trial_index"):
        operation.check_step({}, ["counts", "bin_centres"])
    with pytest.raises(InvalidArgument, match="trial_conditions goes with trial_starts"):
        operation.check_step({}, ["counts", "bin_centres", "trial_index", "trial_conditions"])
    with pytest.raises(InvalidArgument, match="needs input counts"):
        operation.check_step({}, ["bin_centres", "trial_starts"])


# ------------------------------------------------------------------------------ SumMatrices


def test_sum_matrices_adds_the_shards_and_keeps_their_labels(store):
    rng = np.random.default_rng(1)
    shards = [rng.integers(0, 20, size=(7, 7)).astype(np.float64) for _ in range(3)]
    shards = [s + s.T for s in shards]
    labels = np.arange(1, 8, dtype=np.int64)
    inputs = {f"matrices.{k}": put(store, f"m{k}", s) for k, s in enumerate(shards)}
    inputs.update({f"labels.{k}": put(store, f"l{k}", labels) for k in range(3)})
    out = run(store, "SumMatrices", {"title": "three shards"}, inputs)
    total = read(store, out["sum"])
    assert total.dtype == np.float64
    np.testing.assert_array_equal(total, shards[0] + shards[1] + shards[2])
    assert read(store, out["labels"]).tolist() == list(range(1, 8))
    assert store.get_bytes(out["figure"].key)[:8] == PNG
    assert store.get_json(out["report"].key)["summary"]["total"] == float(sum(s.sum() for s in shards))


def test_sum_matrices_refuses_shards_of_other_regions(store):
    inputs = {"matrices.0": put(store, "a", np.eye(3)), "matrices.1": put(store, "b", np.eye(3)),
              "labels.0": put(store, "la", np.array([1, 2, 3])), "labels.1": put(store, "lb", np.array([1, 2, 4]))}
    with pytest.raises(InvalidArgument, match="labels.1 differs from labels.0"):
        run(store, "SumMatrices", {}, inputs)


def test_sum_matrices_checks_the_normalisation_against_the_shards_reports(store):
    count, volume = put(store, "count", np.eye(2)), put(store, "volume", 0.5 * np.eye(2))
    report_ref = store.put_json(f"inputs/{uuid.uuid4().hex[:8]}/report.json", {"result": {"matrices": [
        {"normalization": "count", "matrix": {"key": count.key, "sha256": count.sha256}},
        {"normalization": "volume", "matrix": {"key": volume.key, "sha256": volume.sha256}}]}})
    report = SpecRef(key=report_ref.key, sha256=report_ref.sha256)
    out = run(store, "SumMatrices", {"normalization": "volume", "figure": False},
              {"matrices.0": volume, "reports.0": report})
    np.testing.assert_array_equal(read(store, out["sum"]), 0.5 * np.eye(2))
    assert "figure" not in out
    with pytest.raises(FailedPrecondition, match="matrices.0 is not the 'volume' matrix of reports.0"):
        run(store, "SumMatrices", {"normalization": "volume"}, {"matrices.0": count, "reports.0": report})
    with pytest.raises(InvalidArgument, match="give reports.0"):
        LOCAL_OPERATIONS["SumMatrices"].check_step({"normalization": "count"}, ["matrices.0"])


def test_a_matrix_read_against_a_stale_digest_is_data_loss(store):
    good = put(store, "m", np.eye(2))
    with pytest.raises(Exception) as info:
        run(store, "SumMatrices", {}, {"matrices.0": SpecRef(key=good.key, sha256="f" * 64)})
    assert type(info.value).__name__ == "DataLoss"


# ------------------------------------------------------------------------------ running them


def test_the_same_work_returns_the_stored_outputs_without_computing(store):
    inputs = {"matrices.0": put(store, "a", np.ones((2, 2))), "matrices.1": put(store, "b", np.ones((2, 2)))}
    first = run(store, "SumMatrices", {}, inputs)
    assert first["sum"].key.startswith(output_prefix("SumMatrices", LOCAL_OPERATIONS["SumMatrices"].parse_params({}),
                                                     {p: r.sha256 for p, r in inputs.items()}))
    calls = []
    counting = dataclasses.replace(LOCAL_OPERATIONS["SumMatrices"], run=lambda *args: calls.append(args))
    again = run_operation(counting, store, {"figure": True}, inputs)      # the defaults, spelt out
    assert again == first and calls == []


def test_gathers_larger_than_the_limit_are_refused_before_reading(store):
    inputs = {"runs.0": put(store, "big", np.zeros((100, 100), np.float32))}        # 40 kB
    with pytest.raises(ResourceExhausted, match="more than 10000 bytes"):
        run(store, "StackCounts", {"conditions": [0], "bin_s": 0.01}, inputs, max_input_bytes=10_000)


def test_a_cancelled_operation_stops_at_its_next_read(store):
    inputs = {"runs.0": put(store, "r", np.zeros((4, 2)))}
    with pytest.raises(Cancelled):
        run(store, "StackCounts", {"conditions": [0], "bin_s": 0.01}, inputs, cancelled=lambda: True)


def invocation(step: dict) -> StepInvocation:
    return StepInvocation(job_id=uuid.uuid4(), tenant="lab-a", step=StepSpec.model_validate(step), attempt=1)


def test_the_composite_executor_runs_gateway_steps_and_delegates_the_rest(store):
    class Delegate:  # records what it is handed: the routing is what is tested here
        def __init__(self):
            self.executed = []

        async def service_version(self, service):
            return "0.1.0"

        async def execute(self, step, resolved_inputs, progress, cancel_event):
            self.executed.append(step.step_id)
            return {}

    delegate = Delegate()
    executor = CompositeStepExecutor(delegate, store)
    ref = put(store, "m", np.eye(3))
    local = invocation({"id": "sum", "service": "gateway", "method": "SumMatrices",
                        "inputs": {"matrices.0": {"artifact": ref.model_dump(exclude_none=True)}}})
    remote = invocation({"id": "fit", "service": "reduction", "method": "Fit"})
    seen = []

    async def go():
        outputs = await executor.execute(local, {"matrices.0": ref}, lambda f, m: seen.append(f), asyncio.Event())
        await executor.execute(remote, {}, lambda f, m: None, asyncio.Event())
        versions = (await executor.service_version("gateway"), await executor.service_version("reduction"))
        await asyncio.sleep(0)                      # progress is delivered on the loop
        return outputs, versions

    outputs, versions = asyncio.run(go())
    assert versions == (LOCAL_OPERATIONS_VERSION, "0.1.0")
    assert delegate.executed == ["fit"] and executor.local_executions == 1
    np.testing.assert_array_equal(store.get_array(outputs["sum"].key), np.eye(3))
    assert seen and seen[-1] == 1.0

    bad = invocation({"id": "sum", "service": "gateway", "method": "SumMatrices",
                      "inputs": {"matrices.0": {"artifact": ref.model_dump(exclude_none=True)}}})
    missing = SpecRef(key="inputs/nothing-here", sha256="0" * 64)
    with pytest.raises(StepError) as info:
        asyncio.run(executor.execute(bad, {"matrices.0": missing}, lambda f, m: None, asyncio.Event()))
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(StepError) as info:
        asyncio.run(executor.execute(invocation({"id": "x", "service": "gateway", "method": "Nope"}), {},
                                     lambda f, m: None, asyncio.Event()))
    assert info.value.code == "INVALID_ARGUMENT" and "SumMatrices" in info.value.message


def test_a_job_of_local_steps_runs_through_the_job_runner_and_is_reused_the_second_time(store, tmp_path):
    """Runs of a (tiny) sweep stacked, and two shards summed: real runner, real SQLite job store."""
    runs = [np.full((5, 3), k, dtype=np.float32) for k in range(4)]
    refs = [put(store, f"run{k}", r) for k, r in enumerate(runs)]
    steps = [{"id": "stack", "service": "gateway", "method": "StackCounts",
              "params": {"conditions": [0, 1, 0, 1], "bin_s": 0.02},
              "inputs": {f"runs.{k}": {"artifact": r.model_dump(exclude_none=True)} for k, r in enumerate(refs)}},
             {"id": "sum", "service": "gateway", "method": "SumMatrices", "params": {"figure": False},
              "inputs": {"matrices.0": {"step": "stack", "output": "samples"},
                         "matrices.1": {"step": "stack", "output": "samples"}}}]
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    db.create_all()
    jobs = JobStore(db)
    try:
        stats = []
        for _ in range(2):
            job = jobs.submit(parse_job_spec({"tenant": "lab-a", "steps": steps})).job
            runner = JobRunner(jobs, CompositeStepExecutor(None, store), poll_interval_s=0.05)
            states = asyncio.run(runner.run_until_finished([job.id], timeout_s=60))
            runner.close()
            assert states[job.id] == JobState.SUCCEEDED
            stats.append((runner.stats.executions, runner.stats.reused))
        assert stats == [(2, 0), (0, 2)]
        record = jobs.get_job("lab-a", job.id)
        total = store.get_array(record.step("sum").outputs["sum"].key)
        np.testing.assert_array_equal(total, 2 * np.concatenate(runs))
    finally:
        db.close()
