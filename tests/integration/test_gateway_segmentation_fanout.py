"""em-to-connectome spread over two segmentation replicas: blocks fanned out, gathered, and moved off a dead replica.

Real processes (SeaweedFS, two segmentation replicas, one connectomics), the job runner driving
the pipeline's job through the gateway's gRPC executor, a job store on an SQLite file. A
synthetic EM volume of 2 x 2 x 2 blocks is segmented two ways by the same pipeline:

- as one ``Segment`` step (``fan_out_blocks`` above the block count);
- fanned out (``fan_out_blocks`` below it): four ``SegmentBlocks`` steps of two blocks for the
  boundaries, four for the fragments, spread over both replicas, then ``MergeSegmentBlocks``.

The segmentations are the same (up to relabelling; here even bit for bit), the contact graphs
too, and each replica's ``/metrics`` shows block calls it served. Then a replica is killed
(SIGKILL) while it runs a block call of a fan-out: the call moves to the other replica at once (no
retry with backoff), the rest of the blocks go there, and the job still succeeds with the same
segmentation.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.calls.endpoints import EndpointRegistry
from gateway.calls.executor import GrpcStepExecutor
from gateway.calls.methods import MethodTable
from gateway.jobs.database import Database
from gateway.jobs.runner import JobRunner
from gateway.jobs.states import JobState
from gateway.jobs.store import JobStore
from gateway.pipelines import PIPELINES, CompositeStepExecutor, GatewayMethodTable
from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from runtime_support.processes import ServiceProcess
from services.common.settings import Settings
from services.common.store import ArtifactStore
from test_gateway_support import calls, client, gateway_process, service_replicas, started, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SHAPE = (32, 96, 96)
TILING = {"block_shape": [16, 48, 48], "halo": [4, 8, 8]}          # 2 x 2 x 2 = 8 blocks
PARAMS = {**TILING, "voxel_size_nm": [8, 8, 8], "thresholds": [0.5], "min_segment_size": 20,
          "min_contact_faces": 2, "measures": ["degree", "strength"]}
ONE_CALL = {**PARAMS, "fan_out_blocks": 1000}
FANNED = {**PARAMS, "fan_out_blocks": 4, "blocks_per_step": 2}


@pytest.fixture(scope="module")
def services(s3_server, module_bucket, tmp_path_factory) -> dict[str, list[ServiceProcess]]:
    with service_replicas(s3_server, module_bucket, {"segmentation": 2, "connectomics": 1},
                          tmp_path_factory.mktemp("fanout-services")) as started:
        yield started


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('fanout-jobs') / 'jobs.db'}")
    db.create_all()
    yield JobStore(db)
    db.close()


@pytest.fixture(scope="module")
def volume(store):
    from services.segmentation.core import synthetic_em_volume

    raw, truth = synthetic_em_volume(SHAPE, n_neurites=12, seed=5)
    return {"raw": store.put_array("em/fanout/raw", raw), "ground_truth": store.put_array("em/fanout/truth", truth)}


def run_job(jobs: JobStore, store: ArtifactStore, services, spec):
    """Run one job to its end with a fresh runner over every replica; its record."""
    job_id = jobs.submit(spec).job.id

    async def go():
        table = MethodTable.from_generated()
        targets = {name: [p.address for p in group] for name, group in services.items()}
        registry = EndpointRegistry.from_targets(targets, {s: table.services[s].full_name for s in targets},
                                                 health_interval_s=0.5)
        registry.start()
        executor = CompositeStepExecutor(GrpcStepExecutor(table, registry, store, call_timeout_s=300), store)
        runner = JobRunner(jobs, executor, concurrency=4, poll_interval_s=0.05, progress_interval_s=0.2)
        try:
            await runner.run_until_finished([job_id], timeout_s=400)
        finally:
            runner.close()
            await executor.close()

    asyncio.run(go())
    record = jobs.get_job("lab-a", job_id)
    failed = {s.step_id: f"{s.error_code}: {s.error_message}" for s in record.steps if s.error_code}
    assert record.state == JobState.SUCCEEDED, failed
    return record


def output(store: ArtifactStore, record, step_id: str, name: str):
    ref = record.step(step_id).outputs[name]
    ref = ArtifactRef(key=ref.key, sha256=ref.sha256)
    return store.get_array(ref) if name.endswith("labels") else store.get_json(ref)


def same_up_to_relabelling(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a label of ``a`` is always the same label of ``b`` and the other way round."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def failovers() -> float:
    """Calls the gateway's executor (in this process) moved from a replica that failed UNAVAILABLE to another."""
    return REGISTRY.get_sample_value("neuromesh_gateway_call_failovers_total", {"service": "segmentation"}) or 0.0


def handled(process: ServiceProcess) -> float:
    """Block calls ``process`` has answered (whatever their status)."""
    return sum(calls(process, "SegmentBlocks")["SegmentBlocks"].values())


@pytest.fixture(scope="module")
def one_call(services, store, jobs, volume):
    spec = PIPELINES["em-to-connectome"].build(ONE_CALL, volume, tenant="lab-a",
                                               methods=GatewayMethodTable(MethodTable.from_generated()))
    assert [s.method for s in spec.steps] == ["Segment", "ContactGraph"]
    record = run_job(jobs, store, services, spec)
    return output(store, record, "segment", "segmentations.0.labels"), record


def test_fanned_out_over_two_replicas_equals_one_call(services, store, jobs, volume, one_call):
    labels, single = one_call
    spec = PIPELINES["em-to-connectome"].build(FANNED, volume, tenant="lab-a",
                                               methods=GatewayMethodTable(MethodTable.from_generated()))
    methods = [s.method for s in spec.topological_order()]
    assert methods == ["SegmentBlocks"] * 8 + ["MergeSegmentBlocks", "ContactGraph"]
    replicas = services["segmentation"]
    before = [handled(r) for r in replicas]
    record = run_job(jobs, store, services, spec)
    served = [handled(r) - b for r, b in zip(replicas, before)]
    assert sum(served) == 8 and all(n >= 1 for n in served), served      # both replicas served blocks

    fanned = output(store, record, "segment", "segmentations.0.labels")
    assert fanned.shape == labels.shape and same_up_to_relabelling(fanned, labels)
    assert np.array_equal(fanned, labels)                                # the same algorithm: even the same ids
    assert len(np.unique(fanned)) > 5
    graph, reference = (output(store, r, "contacts", "report")["result"] for r in (record, single))
    assert (graph["nNodes"], graph["nEdges"]) == (reference["nNodes"], reference["nEdges"])


def test_over_http_the_gateway_reads_the_volume_shape_and_fans_out(services, store, volume, one_call, s3_server,
                                                                   module_bucket, tmp_path):
    labels, _ = one_call
    gateway = gateway_process(tmp_path / "gateway.log", s3_server, module_bucket, f"sqlite:///{tmp_path / 'jobs.db'}",
                              {name: [p.address for p in group] for name, group in services.items()})
    gateway.start()
    try:
        lab = client(gateway)
        lab.upload_array("em/raw", store.get_array(volume["raw"]))     # the tenant's own copy, by HTTP
        job = lab.run_pipeline("em-to-connectome", inputs={"raw": "em/raw"}, params=FANNED)
        assert [s["method"] for s in job["steps"]] == ["SegmentBlocks"] * 8 + ["MergeSegmentBlocks", "ContactGraph"]
        done = lab.wait(job["id"], timeout_s=300)
        assert done["state"] == "succeeded", done.get("error")
        segment = next(s for s in done["steps"] if s["id"] == "segment")
        out = segment["outputs"]["segmentations.0.labels"]
        fanned = store.get_array(ArtifactRef(key=out["uri"].split("/", 3)[3], sha256=out["sha256"]))
        assert np.array_equal(fanned, labels)
    finally:
        gateway.stop()


def test_a_replica_killed_mid_fan_out_hands_its_blocks_to_the_other(services, store, jobs, volume):
    # Last in the module: one replica does not survive it. Another sigma: no block is stored yet.
    params = {**FANNED, "sigma_nm": 12.0}
    methods = GatewayMethodTable(MethodTable.from_generated())
    reference = run_job(jobs, store, services, PIPELINES["em-to-connectome"].build(
        {**params, "fan_out_blocks": 1000}, volume, tenant="lab-a", methods=methods))
    labels = output(store, reference, "segment", "segmentations.0.labels")
    spec = PIPELINES["em-to-connectome"].build(params, volume, tenant="lab-a", methods=methods)
    replicas = services["segmentation"]
    begun = [started(r, "SegmentBlocks") for r in replicas]
    ended = [handled(r) for r in replicas]
    moved = failovers()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["record"] = run_job(jobs, store, services, spec)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    try:
        victim = wait_for(lambda: [i for i, r in enumerate(replicas) if started(r, "SegmentBlocks")
                                   > begun[i] + handled(r) - ended[i]], 120, "a replica to be in a block call")[0]
        os.killpg(replicas[victim].process.popen.pid, signal.SIGKILL)
        replicas[victim].process.popen.wait(timeout=30)
    finally:
        runner.join(timeout=500)
    assert not runner.is_alive(), "the job did not end"
    if "error" in outcome:
        raise outcome["error"]
    record = outcome["record"]
    survivor = replicas[1 - victim]
    assert started(survivor, "SegmentBlocks") > begun[1 - victim]      # the rest of the blocks went there
    # The call the victim was in (or the next one sent to it, before a health check saw it dead)
    # failed UNAVAILABLE and was sent to the survivor at once: no step was retried with backoff.
    # (Whether a call was cut is a race of milliseconds with the call's end, so it is shown, not asserted.)
    assert all(s.attempts == 1 for s in record.steps), {s.step_id: s.attempts for s in record.steps}
    print(f"calls moved off the killed replica: {failovers() - moved:g}")
    fanned = output(store, record, "segment", "segmentations.0.labels")
    assert same_up_to_relabelling(fanned, labels) and np.array_equal(fanned, labels)
