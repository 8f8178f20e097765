"""The named pipelines end to end: real services, a real S3 server, a job store on an SQLite file.

The services run as processes (``python -m services.<name>``: decoding, reduction, simulation,
segmentation, and two connectomics replicas), the job runner drives each pipeline's job through
the :class:`CompositeStepExecutor` around the gateway's :class:`GrpcStepExecutor`, and the
results are checked against what was put into the data:

- recording-analysis: a centre-out session (cosine-tuned Poisson units, known targets and hand
  velocity): the velocity is decoded, the target is decoded above chance, trials are found;
- simulate-and-analyse: a cortical column without and with a thalamic drive, 2 conditions x 3
  runs: the condition is decoded from the simulated layers' rates above chance;
- em-to-connectome: a synthetic EM volume with known neurites: the segmentation scores well
  against them and the contact graph has a node per segment;
- dmri-connectome: the diffusion phantom tracked in 2 shards, one per connectomics replica: the
  summed matrix equals one unsharded run exactly, and the known bundles are found.

Each pipeline makes figures (PNG in the store), and a second identical submission of each job
is completed from the step cache without a single execution.
"""

from __future__ import annotations

import asyncio
import gzip
import urllib.request

import grpc
import nibabel
import numpy as np
import pytest

from gateway.calls.endpoints import EndpointRegistry
from gateway.calls.executor import GrpcStepExecutor
from gateway.calls.methods import MethodTable
from gateway.jobs.database import Database
from gateway.jobs.runner import JobRunner
from gateway.jobs.states import JobState
from gateway.jobs.store import JobStore
from gateway.pipelines import PIPELINES, CompositeStepExecutor, GatewayMethodTable
from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.connectomics.v1 import connectomics_pb2_grpc
from runtime_support.processes import ServiceProcess
from services.common.settings import Settings
from services.common.store import ArtifactStore
from test_gateway_support import service_replicas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPLICAS = {"decoding": 1, "reduction": 1, "simulation": 1, "segmentation": 1, "connectomics": 2}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def services(s3_server, module_bucket, tmp_path_factory) -> dict[str, list[ServiceProcess]]:
    """Every service, started at once (their imports take seconds each), one thread of compute each."""
    with service_replicas(s3_server, module_bucket, REPLICAS, tmp_path_factory.mktemp("pipeline-services")) as started:
        yield started


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('pipeline-jobs') / 'jobs.db'}")
    db.create_all()
    yield JobStore(db)
    db.close()


@pytest.fixture(scope="module")
def methods() -> GatewayMethodTable:
    return GatewayMethodTable(MethodTable.from_generated())


def run_jobs(jobs: JobStore, store: ArtifactStore, services, specs) -> tuple[list, object]:
    """Submit ``specs``, run them to the end with a fresh runner; (job records, runner stats)."""
    ids = [jobs.submit(spec).job.id for spec in specs]

    async def go():
        table = MethodTable.from_generated()
        targets = {name: [p.address for p in group] for name, group in services.items()}
        registry = EndpointRegistry.from_targets(targets, {s: table.services[s].full_name for s in targets},
                                                 health_interval_s=0.5)
        registry.start()
        executor = CompositeStepExecutor(GrpcStepExecutor(table, registry, store, call_timeout_s=300), store)
        runner = JobRunner(jobs, executor, concurrency=4, poll_interval_s=0.05, progress_interval_s=0.2)
        try:
            await runner.run_until_finished(ids, timeout_s=400)
        finally:
            runner.close()
            await executor.close()
        return runner.stats

    stats = asyncio.run(go())
    records = [jobs.get_job("lab-a", i) for i in ids]
    for record in records:
        failed = {s.step_id: f"{s.error_code}: {s.error_message}" for s in record.steps if s.error_code}
        assert record.state == JobState.SUCCEEDED, failed
    return records, stats


def figures_of(store: ArtifactStore, record) -> dict[str, bytes]:
    """``step.output`` -> PNG bytes of every figure the job made."""
    out = {}
    for s in record.steps:
        for name, ref in (s.outputs or {}).items():
            if ref.media_type == "image/png" or ref.key.endswith(".png"):
                out[f"{s.step_id}.{name}"] = store.get_bytes(ArtifactRef(key=ref.key, sha256=ref.sha256))
    return out


def report(store: ArtifactStore, record, step_id: str) -> dict:
    ref = record.step(step_id).outputs["report"]
    return store.get_json(ArtifactRef(key=ref.key, sha256=ref.sha256))


def array(store: ArtifactStore, record, step_id: str, name: str) -> np.ndarray:
    ref = record.step(step_id).outputs[name]
    return store.get_array(ArtifactRef(key=ref.key, sha256=ref.sha256))


def again_reuses_everything(jobs, store, services, spec) -> None:
    """A second identical submission (no idempotency key: a new job) runs nothing."""
    (record,), stats = run_jobs(jobs, store, services, [spec])
    assert stats.executions == 0 and stats.reused == len(spec.steps)
    assert all(s.reused for s in record.steps)


# ------------------------------------------------------------------------------ recording-analysis


def test_recording_analysis_decodes_velocity_and_targets_of_a_centre_out_session(services, store, jobs, methods):
    from services.decoding.core.synthetic import simulate_center_out_session

    # Reach out only (no target hold, no return): the units are tuned to the velocity, so a return
    # would look like a reach to the opposite target, and holds carry no target information.
    session = simulate_center_out_session(n_units=40, n_targets=4, n_trials_per_target=10, hold_s=0.3, reach_s=0.6,
                                          target_hold_s=0.0, return_s=0.0, seed=5)
    duration = float(session.trial_start_s[-1] + (session.trial_start_s[1] - session.trial_start_s[0]))
    inputs = {"spike_times": store.put_array("rec/spike_times", session.spike_times),
              "unit_ids": store.put_array("rec/unit_ids", session.unit_ids),
              "behaviour_values": store.put_array("rec/velocity", session.velocity),
              "behaviour_timestamps": store.put_array("rec/stamps", session.bin_centres_s),
              "trial_starts": store.put_array("rec/trial_starts", session.trial_start_s),
              "trial_conditions": store.put_array("rec/targets", session.trial_target)}
    params = {"bin_width_s": session.bin_width_s, "start_s": 0.0, "stop_s": duration, "n_units": 40,
              "n_components": 4, "history_bins": 5, "n_folds": 4, "n_shuffles": 1,
              "condition_names": ["east", "north", "west", "south"]}
    spec = PIPELINES["recording-analysis"].build(params, inputs, tenant="lab-a", methods=methods)
    (record,), stats = run_jobs(jobs, store, services, [spec])
    assert stats.executions == len(spec.steps) == 5

    activity = array(store, record, "epoch", "activity")
    assert activity.shape == (40, 18, 40)                       # 0.9 s trials of 50 ms bins
    np.testing.assert_array_equal(activity.reshape(-1, 40), session.counts[:40 * 18])
    assert array(store, record, "epoch", "conditions").tolist() == session.trial_target.tolist()

    behaviour = report(store, record, "decode-behaviour")["result"]
    assert min(behaviour["scores"]["r2"]) > 0.5 and max(behaviour["shuffledScores"]) < 0.1
    condition = report(store, record, "decode-condition")["result"]["scores"]
    assert condition["chance"] == pytest.approx(0.25)
    assert condition["accuracy"] > condition["chance"] + 0.2
    fit = report(store, record, "reduce")["result"]
    assert len(fit["scores"]["explainedVarianceRatio"]) == 4
    assert array(store, record, "reduce", "latents").shape == (4, 18, 4)     # the four targets' averages

    figures = figures_of(store, record)
    assert {"epoch.figure", "reduce.components_figure", "reduce.trajectories_figure", "reduce.variance_figure",
            "decode-behaviour.figure", "decode-condition.figure"} <= set(figures)
    assert all(data[:8] == PNG for data in figures.values())
    again_reuses_everything(jobs, store, services, spec)


# ------------------------------------------------------------------------------ simulate-and-analyse


def test_simulate_and_analyse_decodes_the_stimulus_from_a_simulated_column(services, store, jobs, methods):
    # no thalamic input against a constant 60 Hz drive, 2 x 3 runs of 500 ms at the service's
    # default scale (0.05: about 3,900 neurons); much smaller columns vary between network
    # instances more than this stimulus moves them (see the pipeline's docstring)
    params = {"conditions": [{"name": "no stimulus", "stimulus_rate_hz": 0.0},
                             {"name": "60 Hz", "stimulus_rate_hz": 60.0, "stimulus_depth": 0.0}],
              "runs_per_condition": 3, "seed": 7, "scale": 0.05, "duration_ms": 500.0, "bin_ms": 25.0,
              "skip_bins": 2, "n_components": 3, "n_shuffles": 1}
    spec = PIPELINES["simulate-and-analyse"].build(params, {}, tenant="lab-a", methods=methods)
    (record,), stats = run_jobs(jobs, store, services, [spec])
    assert stats.executions == 10

    n_neurons = record.step("simulate-r0-c0").outputs["binned_counts"].shape[1]
    activity = array(store, record, "stack", "activity")
    assert activity.shape == (6, 18, n_neurons)
    np.testing.assert_array_equal(activity[3], array(store, record, "simulate-r1-c1", "binned_counts")[2:])
    assert array(store, record, "stack", "conditions").tolist() == [0, 1, 0, 1, 0, 1]
    rates = array(store, record, "stack-rates", "activity")
    assert rates.shape == (6, 18, 9)                                    # the nine cortical populations
    np.testing.assert_array_equal(rates[5], array(store, record, "simulate-r2-c1", "population_rates")[2:, :9])
    # the drive enters at L4: its rate rises in every network instance
    l4 = rates[:, :, 3].mean(axis=1)
    assert all(l4[k + 1] > l4[k] for k in (0, 2, 4))

    decoded = report(store, record, "decode")["result"]
    assert decoded["scores"]["chance"] == pytest.approx(0.5) and decoded["scores"]["accuracy"] > 0.75
    assert max(decoded["shuffledScores"]) < decoded["scores"]["accuracy"]
    figures = figures_of(store, record)
    assert {"stack.figure", "stack-rates.figure", "reduce.trajectories_figure", "decode.figure",
            "simulate-r2-c1.figure"} <= set(figures)
    assert all(data[:8] == PNG for data in figures.values())
    again_reuses_everything(jobs, store, services, spec)


# ------------------------------------------------------------------------------ em-to-connectome


def test_em_to_connectome_segments_known_neurites_and_graphs_their_contacts(services, store, jobs, methods):
    from services.segmentation.core import synthetic_em_volume

    raw, truth = synthetic_em_volume((24, 48, 48), n_neurites=8, seed=3)
    inputs = {"raw": store.put_array("em/raw", raw), "ground_truth": store.put_array("em/truth", truth)}
    params = {"voxel_size_nm": [8, 8, 8], "thresholds": [0.3, 0.5], "threshold": 0.5, "min_segment_size": 20,
              "min_contact_faces": 2, "measures": ["degree", "strength", "clustering", "communities"],
              "analyze": True, "analyze_measures": ["rich_club", "small_world"], "n_random": 5, "seed": 1}
    spec = PIPELINES["em-to-connectome"].build(params, inputs, tenant="lab-a", methods=methods)
    (record,), stats = run_jobs(jobs, store, services, [spec])
    assert stats.executions == 3

    chosen = report(store, record, "segment")["result"]["segmentations"][1]
    assert chosen["threshold"] == 0.5 and chosen["scores"]["adaptedRandError"] < 0.3
    graph = report(store, record, "contacts")["result"]
    assert int(graph["nNodes"]) == int(chosen["nSegments"]) and int(graph["nEdges"]) > 0
    labels = array(store, record, "segment", "segmentations.1.labels")
    assert int(graph["nNodes"]) == len(np.setdiff1d(np.unique(labels), [0]))
    analysis = report(store, record, "analyze")["result"]["measures"]
    assert int(analysis["nNodes"]) == int(graph["nNodes"]) and "small_world_sigma" in analysis["scalars"]
    figures = figures_of(store, record)
    assert {"segment.figure", "contacts.heatmap"} <= set(figures)
    assert all(data[:8] == PNG for data in figures.values())
    again_reuses_everything(jobs, store, services, spec)


# ------------------------------------------------------------------------------ dmri-connectome


def nifti(volume, affine, *, compress=True) -> bytes:
    data = nibabel.Nifti1Image(np.asarray(volume), np.asarray(affine, float)).to_bytes()
    return gzip.compress(data) if compress else data


def text_rows(rows) -> bytes:
    return ("\n".join(" ".join(f"{v:g}" for v in row) for row in rows) + "\n").encode()


def handled_calls(process: ServiceProcess, method: str) -> float:
    """``grpc_server_handled_total`` of ``method`` on one replica, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line)


def test_dmri_connectome_in_two_shards_over_two_replicas_equals_one_run(services, store, jobs, methods):
    from services.connectomics.core.phantom import diffusion_phantom

    phantom = diffusion_phantom(size=16, n_directions=30, snr=30, seed=0)
    inputs = {"dwi": store.put_bytes("dmri/dwi.nii.gz", nifti(phantom.dwi.astype(np.float32), phantom.affine)),
              "bvals": store.put_bytes("dmri/dwi.bval", text_rows([phantom.bvals])),
              "bvecs": store.put_bytes("dmri/dwi.bvec", text_rows(np.asarray(phantom.bvecs).T)),
              "parcellation": store.put_bytes("dmri/labels.nii", nifti(phantom.parcellation.astype(np.int16),
                                                                       phantom.affine, compress=False))}
    tracking = {"model": "csa", "tracking": "deterministic", "min_length_mm": 10.0, "seed_fa_threshold": 0.2,
                "stop_fa_threshold": 0.2, "step_size_mm": 0.5, "seed": 4}
    spec = PIPELINES["dmri-connectome"].build({**tracking, "shards": 2, "measures": ["degree", "strength",
                                                                                     "communities"]},
                                              inputs, tenant="lab-a", methods=methods)
    replicas = services["connectomics"]
    before = [handled_calls(p, "DiffusionConnectome") for p in replicas]
    (record,), stats = run_jobs(jobs, store, services, [spec])
    assert stats.executions == 6
    after = [handled_calls(p, "DiffusionConnectome") for p in replicas]
    assert [a - b for a, b in zip(after, before)] == [1.0, 1.0]       # one shard on each replica

    # one unsharded run of the same request, straight from the service
    with grpc.insecure_channel(replicas[0].address) as channel:
        events = list(connectomics_pb2_grpc.ConnectomicsServiceStub(channel).DiffusionConnectome(
            C.DiffusionConnectomeRequest(
                **{name: ArtifactRef(key=ref.key) for name, ref in inputs.items()}, model=C.FIBRE_MODEL_CSA,
                tracking=C.TRACKING_METHOD_DETERMINISTIC, min_length_mm=10.0, seed_fa_threshold=0.2,
                stop_fa_threshold=0.2, step_size_mm=0.5, seed=4, measures=C.GraphMeasuresOptions(skip=True)),
            timeout=300))
    whole = events[-1].result
    matrices = {m.normalization: store.get_array(m.matrix) for m in whole.matrices}
    np.testing.assert_array_equal(array(store, record, "sum-count", "sum"), matrices["count"])
    np.testing.assert_allclose(array(store, record, "sum-volume", "sum"), matrices["volume"], rtol=1e-12)
    np.testing.assert_allclose(array(store, record, "sum-length", "sum"), matrices["length"], rtol=1e-12)
    labels = array(store, record, "sum-count", "labels")
    assert labels.tolist() == store.get_array(whole.region_labels).tolist() == [1, 2, 3, 4, 5, 6, 7]
    shard_seeds = [int(report(store, record, f"track-{k}")["result"]["nSeeds"]) for k in range(2)]
    assert sum(shard_seeds) == whole.n_seeds and min(shard_seeds) > 0
    count = matrices["count"]
    for a, b in phantom.connected_pairs:                               # the phantom's bundles are found
        assert count[labels.tolist().index(a), labels.tolist().index(b)] >= 40

    analysis = report(store, record, "analyze")["result"]["measures"]
    assert int(analysis["nNodes"]) == 7 and analysis["scalars"]["n_communities"] >= 3
    figures = figures_of(store, record)
    assert {"sum-count.figure", "sum-volume.figure", "track-0.heatmap", "track-1.fa_figure"} <= set(figures)
    assert all(data[:8] == PNG for data in figures.values())
    again_reuses_everything(jobs, store, services, spec)
