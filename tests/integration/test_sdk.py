"""The Python SDK against real services: five service processes, a real S3 server, gRPC.

Every analysis goes in as lab software has it (NumPy arrays, a TIFF stack and NIfTI files on
disk, a CSV-able table) and comes back through the SDK's results, checked against a known
answer: a simulated tuning dataset whose velocity the decoder must recover, NumPy's own PCA of the
same counts, spike arrays consistent with their binned counts, a segmentation scored against the
synthetic volume's truth, contacts counted here face by face, and the phantom's known bundles.
Then the failure paths: bad input raises the SDK's ``InvalidArgument`` naming the field, and a
SIGINT (what Ctrl-C sends) during a long simulation cancels it on the server, as its /metrics
shows, leaving the service free for the next call.
"""

from __future__ import annotations

import gzip
import signal
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import nibabel
import numpy as np
import pytest
import tifffile
from prometheus_client.parser import text_string_to_metric_families

from neuromesh.client import (Client, InvalidArgument, NotFound, ProgressEvent, RetryPolicy, SegmentResult,
                              vogels_abbott)
from neuromesh.sdk.artifacts import array_key, array_sha256, file_sha256, input_key
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.registry import discover_services
from services.connectomics.core.phantom import diffusion_phantom
from services.decoding.core import simulate_reaching_session
from services.segmentation.core import segmentation_scores, synthetic_em_volume

pytestmark = pytest.mark.integration

SERVICES = ("decoding", "reduction", "simulation", "segmentation", "connectomics")
VOXEL_NM = (8.0, 8.0, 8.0)


@pytest.fixture(scope="module")
def services(s3_server, module_bucket, tmp_path_factory):
    specs = {spec.name: spec for spec in discover_services()}
    logs = tmp_path_factory.mktemp("sdk-services")
    processes = {name: ServiceProcess(specs[name], s3_server, module_bucket, logs / f"{name}.log")
                 for name in SERVICES}
    # start all five before waiting for any: their imports (torch, dipy) then overlap
    for process in processes.values():
        process.process.start()
    try:
        for process in processes.values():
            process.process.wait_healthy(
                lambda p=process: grpc_health_status(p.address, p.spec.health_service) == "SERVING",
                timeout_s=120, interval_s=0.2)
        yield processes
    finally:
        # stopped together: each drains for up to NEUROMESH_DRAIN_GRACE_S
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda p: p.stop(), processes.values()))


@pytest.fixture(scope="module")
def client(services, s3_server, module_bucket):
    with Client({name: p.address for name, p in services.items()}, s3_endpoint=s3_server.endpoint,
                s3_access_key=s3_server.access_key, s3_secret_key=s3_server.secret_key, bucket=module_bucket,
                progress=False, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.1)) as client:
        yield client


def scrape(process) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def handled(process, method: str, code: str) -> float:
    service = process.spec.health_service
    return next((v for k, v in scrape(process).items() if k.startswith("grpc_server_handled_total{")
                 and f"grpc_code={code}," in k and f"grpc_method={method}," in k and f"grpc_service={service}," in k),
                0.0)


# --- decoding and reduction from NumPy arrays -----------------------------------------------------


@pytest.fixture(scope="module")
def session():
    """Two minutes of 40 cosine-tuned Poisson units driven by a known 2-D hand velocity."""
    return simulate_reaching_session(n_units=40, duration_s=120.0, seed=5)


@pytest.fixture(scope="module")
def binned(client, session):
    return client.decoding.bin_recording(session.spike_times, session.unit_ids, n_units=40, bin_width_s=0.05,
                                         stop_s=120.0)


def test_numpy_uploads_are_content_addressed_and_reused(client, session, binned):
    times = client.artifacts.upload_array(session.spike_times)
    assert times.key == array_key(array_sha256(session.spike_times), "float64", session.spike_times.shape)
    assert times.sha256 == array_sha256(session.spike_times)   # the digest in the key is the store's
    skipped = client.artifacts.stats.skipped
    again = client.artifacts.upload_array(session.spike_times.copy(order="F"))
    assert again == times and client.artifacts.stats.skipped == skipped + 1
    counts = binned.array("counts")
    assert counts.shape == (2400, 40) and binned.n_bins == 2400 and binned.n_units == 40
    assert counts.sum() == np.count_nonzero(session.spike_times < 120.0)
    np.testing.assert_array_equal(counts, session.binned_counts())


def test_a_large_file_goes_up_in_parts_and_once(client, tmp_path):
    path = tmp_path / "session.nwb"
    path.write_bytes(np.random.default_rng(0).bytes(40 * 2**20))   # 40 MiB: three 16 MiB parts
    uploaded = client.artifacts.stats.uploaded
    ref = client.artifacts.upload_file(path)
    assert ref.key == input_key(file_sha256(path)) and ref.size_bytes == 40 * 2**20
    assert ref.etag.endswith("-3")             # S3's ETag of a multipart upload: <md5 of part md5s>-<parts>
    assert client.artifacts.upload_file(path) == ref and client.artifacts.stats.uploaded == uploaded + 1
    back = client.artifacts.get_file(ref, tmp_path / "back.nwb")
    assert file_sha256(back) == ref.sha256


def test_decoding_recovers_the_known_velocity_through_the_sdk(client, session, binned):
    events: list[ProgressEvent] = []
    trained = client.decoding.train(binned, session.velocity, decoder="wiener", history_bins=5, n_shuffles=1,
                                    on_progress=events.append)
    assert trained.scores.r2.shape == (2,) and trained.scores.r2.min() > 0.8
    assert trained.shuffled_scores.max() < 0.2
    assert events and all(e.service == "decoding" and e.method == "Train" and 0 <= e.fraction <= 1 for e in events)
    assert trained.predictions.shape == (2400, 2)
    assert trained.figure_png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert trained.json()["result"]["scores"]["r2"] == pytest.approx(list(trained.scores.r2))   # the stored report
    predicted = client.decoding.predict(trained, binned).array("predictions")
    assert predicted.shape == (2400, 2)
    valid = ~np.isnan(predicted).any(axis=1)
    assert np.corrcoef(predicted[valid, 0], session.velocity[valid, 0])[0, 1] > 0.9


def test_pca_equals_numpy_on_the_same_counts(client, binned):
    fit = client.reduction.fit(binned, method="pca", params={"n_components": 3})
    counts = binned.array("counts").astype(np.float64)
    singular = np.linalg.svd(counts - counts.mean(axis=0), compute_uv=False)
    ratio = singular**2 / np.sum(singular**2)
    np.testing.assert_allclose(fit.scores.explained_variance_ratio, ratio[:3], rtol=1e-4)
    latents = np.asarray(fit.latents)
    assert latents.shape == (2400, 3)
    assert np.all(np.diff(latents.var(axis=0)) < 0)   # components in order of variance
    again = client.reduction.transform(fit, binned).array("latents")
    np.testing.assert_allclose(again, latents, rtol=1e-4, atol=1e-4)


# --- simulation -----------------------------------------------------------------------------------


def test_simulation_returns_spike_arrays_consistent_with_their_counts(client):
    run = client.simulation.simulate(vogels_abbott("cuba", n_neurons=500, seed=2), duration_ms=200.0, bin_ms=10.0)
    times, ids = run.spikes()
    assert times.dtype == np.float64 and ids.dtype == np.int64
    assert len(times) == len(ids) == run.n_spikes > 0
    assert np.all(np.diff(times) >= 0) and times.min() >= 0 and times.max() < 200.0
    assert ids.min() >= 0 and ids.max() < 500 == run.n_neurons
    counts = run.counts()
    assert counts.shape == (20, 500)
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(ids, minlength=500))
    exc_times, exc_ids = run.spikes("exc")
    assert len(exc_times) == run.population("exc").spikes and exc_ids.max() < run.population("exc").size
    # a simulation stands for its binned counts as the input of the reduction service
    assert client.reduction.fit(run, method="pca", params={"n_components": 2}).latents.shape == (20, 2)


# --- a TIFF stack segmented, then its contact graph ----------------------------------------------


@pytest.fixture(scope="module")
def em_volume():
    return synthetic_em_volume((32, 32, 32), n_neurites=6, seed=1)


@pytest.fixture(scope="module")
def segmented(client, em_volume, tmp_path_factory) -> tuple[SegmentResult, str]:
    raw, truth = em_volume
    path = tmp_path_factory.mktemp("em") / "raw.tif"
    tifffile.imwrite(path, raw)                     # one page per z section
    stages = set()
    result = client.segmentation.segment(path, ground_truth=truth, voxel_size_nm=VOXEL_NM, thresholds=[0.5],
                                         min_segment_size=20, on_progress=lambda e: stages.add(e.stage))
    assert {"watershed", "agglomerate", "store"} <= stages
    return result, str(path)


def test_a_tiff_stack_path_is_uploaded_and_segmented(client, segmented, em_volume):
    result, path = segmented
    raw, truth = em_volume
    assert result.report.json()["request"]["raw"]["ref"]["key"] == input_key(file_sha256(path))
    labels = result.labels()
    assert labels.shape == raw.shape and labels.dtype == np.uint64
    entry = result.segmentation(0.5)
    assert entry.n_segments == len(np.unique(labels[labels > 0]))
    assert entry.scores.cremi_score == pytest.approx(segmentation_scores(labels, truth).cremi_score)
    # far better than calling the whole volume one neuron, and few merges
    assert entry.scores.cremi_score < 0.5 * segmentation_scores(np.ones_like(labels), truth).cremi_score
    assert entry.scores.rand_precision > 0.9
    table = entry.table("segment_table", as_frame=False)
    assert table["voxel_count"].sum() == np.count_nonzero(labels)


def test_blocks_segmented_in_two_groups_and_merged_equal_one_segment_call(client, segmented, em_volume):
    result, path = segmented
    _, truth = em_volume
    tiling = dict(voxel_size_nm=VOXEL_NM, block_shape=(16, 16, 32), halo=(4, 4, 4))
    whole = client.segmentation.segment(path, thresholds=[0.5], min_segment_size=20, **tiling)
    groups = [[0, 2], [1, 3]]
    first = [client.segmentation.segment_blocks(path, stage="boundaries", block_indices=g, **tiling) for g in groups]
    assert first[0].n_blocks == 4 and list(first[0].block_indices) == [0, 2]
    boundaries = [None] * 4
    for part in first:
        for index, artifact in zip(part.block_indices, part.boundaries):
            boundaries[int(index)] = artifact
    second = [client.segmentation.segment_blocks(path, stage="fragments", block_indices=g,
                                                 block_boundaries=boundaries, **tiling) for g in groups]
    fragments, stitching = [None] * 4, [None] * 4
    for part in second:
        for index, artifact, labels in zip(part.block_indices, part.fragments, part.stitching):
            fragments[int(index)], stitching[int(index)] = artifact, labels
    merged = client.segmentation.merge_segment_blocks(path, block_boundaries=boundaries, block_fragments=fragments,
                                                      block_stitching=stitching, thresholds=[0.5],
                                                      min_segment_size=20, ground_truth=truth, **tiling)
    np.testing.assert_array_equal(merged.labels(), whole.labels())
    assert merged.segmentation(0.5).scores.adapted_rand_error < 0.3
    with pytest.raises(InvalidArgument) as err:
        client.segmentation.segment_blocks(path, stage="fragments", block_indices=[0], **tiling)
    assert err.value.field == "block_boundaries"
    with pytest.raises(InvalidArgument) as err:
        client.segmentation.segment_blocks(path, stage="boundaries", block_indices=[9], **tiling)
    assert "block_indices" in err.value.field


def test_contact_graph_of_the_segmentation_counts_shared_faces(client, segmented):
    result, _ = segmented
    labels = result.labels().astype(np.int64)
    graph = client.connectomics.contact_graph(result, voxel_size_nm=VOXEL_NM, measures=["degree"])
    faces: dict[tuple[int, int], int] = {}
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)[1:].ravel()
        b = np.moveaxis(labels, axis, 0)[:-1].ravel()
        touching = (a != b) & (a > 0) & (b > 0)
        for u, v in zip(np.minimum(a, b)[touching], np.maximum(a, b)[touching]):
            faces[(int(u), int(v))] = faces.get((int(u), int(v)), 0) + 1
    edges = graph.edges(as_frame=False)
    found = {(int(s), int(t)): int(f) for s, t, f in zip(edges["source"], edges["target"], edges["faces"])}
    assert found == faces and graph.n_edges == len(faces)
    np.testing.assert_allclose(edges["area_nm2"], edges["faces"] * 64.0)
    assert graph.figure_png()[:4] == b"\x89PNG"


# --- NIfTI files on disk ----------------------------------------------------------------------------


def test_nifti_paths_give_the_phantoms_known_connections(client, tmp_path):
    phantom = diffusion_phantom(size=16, n_directions=30, snr=30, seed=0)
    nibabel.save(nibabel.Nifti1Image(phantom.dwi.astype(np.float32), phantom.affine), tmp_path / "dwi.nii.gz")
    nibabel.save(nibabel.Nifti1Image(phantom.parcellation.astype(np.int16), phantom.affine), tmp_path / "labels.nii")
    result = client.connectomics.diffusion_connectome(
        tmp_path / "dwi.nii.gz", phantom.bvals, phantom.bvecs, tmp_path / "labels.nii", model="csa",
        tracking="deterministic", seed_fa_threshold=0.2, stop_fa_threshold=0.2, step_size_mm=0.5, min_length_mm=5,
        measures=False)
    labels = result.array("region_labels").tolist()
    count = result.matrix("count")
    for (a, b) in phantom.connected_pairs:
        assert count[labels.index(a), labels.index(b)] > 0, (a, b, count)
    decoy = max(labels)
    assert count[labels.index(decoy)].sum() == 0
    fa = nibabel.Nifti1Image.from_bytes(gzip.decompress(result.fa.bytes()))
    assert fa.shape == phantom.dwi.shape[:3]


# --- failures -----------------------------------------------------------------------------------------


def test_bad_input_raises_the_sdks_invalid_argument_naming_the_field(client, services):
    bad = {"populations": [{"name": "exc", "size": 80}, {"name": "inh", "size": 0}],
           "projections": [{"source": "exc", "target": "inh", "weight": 1.0,
                            "connectivity": {"rule": "fixed_probability", "value": 0.1}}]}
    with pytest.raises(InvalidArgument) as caught:
        client.simulation.simulate(bad, duration_ms=10.0)
    err = caught.value
    assert err.field == "network.populations[1].size" and "field network.populations[1].size" in str(err)
    assert err.service == "simulation" and err.method == "Simulate" and err.attempts == 1   # not retried
    assert err.__cause__ is None and err.__suppress_context__   # no grpc object in the traceback
    assert isinstance(err, ValueError)

    # the SDK's own checks answer before anything is sent
    before = handled(services["simulation"], "Simulate", "INVALID_ARGUMENT")
    with pytest.raises(InvalidArgument, match="field duration_ms"):
        client.simulation.simulate(vogels_abbott("cuba"), duration_ms=0.0)
    assert handled(services["simulation"], "Simulate", "INVALID_ARGUMENT") == before

    with pytest.raises(NotFound) as missing:
        client.reduction.transform(f"s3://{client.bucket}/inputs/no-such-model", np.zeros((10, 4)))
    assert missing.value.reason == "ARTIFACT_NOT_FOUND"


@pytest.mark.timeout(240)
def test_ctrl_c_during_a_long_simulation_cancels_it_on_the_server(client, services):
    service = services["simulation"]
    cancelled_before = handled(service, "Simulate", "CANCELLED")
    running = threading.Event()
    main = threading.main_thread().ident

    def on_progress(event: ProgressEvent) -> None:
        if event.stage == "simulate" and event.counters.get("simulated_ms", 0) > 0:
            running.set()

    def press_ctrl_c() -> None:
        # SIGINT to the main thread while it waits for the call, as a terminal's Ctrl-C
        if running.wait(90):
            signal.pthread_kill(main, signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    started = time.perf_counter()
    # ten minutes of biological time: minutes of wall time, so only the interrupt ends it (the
    # deadline bounds the test should the interrupt be lost)
    with pytest.raises(KeyboardInterrupt):
        client.simulation.simulate(vogels_abbott("coba", n_neurons=4000, seed=3), duration_ms=600_000.0,
                                   on_progress=on_progress, timeout=100)
    interrupted_after = time.perf_counter() - started
    presser.join(5)
    assert running.is_set() and interrupted_after < 95

    # the server saw the cancellation and stopped stepping the engine
    deadline = time.perf_counter() + 5.0
    while scrape(service)["neuromesh_simulation_runs_in_progress"] != 0:
        assert time.perf_counter() < deadline, "the simulation went on after Ctrl-C"
        time.sleep(0.05)
    assert handled(service, "Simulate", "CANCELLED") == cancelled_before + 1

    # and the service is free: a short run answers promptly
    started = time.perf_counter()
    small = client.simulation.simulate(vogels_abbott("cuba", n_neurons=300, seed=9), duration_ms=50.0, timeout=30)
    assert small.n_neurons == 300 and time.perf_counter() - started < 10.0
