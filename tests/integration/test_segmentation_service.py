"""The segmentation service through a real service process, a real S3 server and gRPC.

Synthetic EM volumes with known neurons (the core's ``synthetic_em_volume``) are uploaded in the
formats labs have: a Zarr array, a .npy file, a TIFF stack, an HDF5 dataset. A tiny U-Net is
trained through the server (progress streamed, checkpoints stored), a held-out volume is
segmented with it block by block (8 blocks) and scored against its ground truth, and the
classical mode segments without any training. The service runs with
``NEUROMESH_MAX_INPUT_BYTES`` at 800 kB, below the 1 MiB of one uint64 label volume: every volume
is read and written block by block, and a training region larger than that is refused. Every
stored output is checked against the core run here on the same arrays.
"""

from __future__ import annotations

import io
import re
import time
import urllib.request

import grpc
import h5py
import numpy as np
import pytest
import tifffile
import zarr
from grpc_status import rpc_status

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.errors import error_detail_from_status
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.common.zarr_minio import MinioZarrStore
from services.segmentation import SERVICE, pipeline
from services.segmentation.core import plan_blocks, segment_table, segmentation_scores, synthetic_em_volume
from services.segmentation.core.training import load_checkpoint

pytestmark = pytest.mark.integration

S = segmentation_pb2
MAX_INPUT_BYTES = 800_000     # a (32, 64, 64) uint64 volume is 1048576 bytes; its 24 first sections fit
SHAPE = (32, 64, 64)
BLOCKS = dict(block_shape=[16, 32, 32], halo=[4, 8, 8])     # 2 x 2 x 2 = 8 blocks


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket,
                             tmp_path_factory.mktemp("segmentation") / "service.log",
                             max_input_bytes=str(MAX_INPUT_BYTES), compute_threads="1")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield segmentation_pb2_grpc.SegmentationServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def volumes(store, tmp_path_factory):
    """A training volume (raw as Zarr, labels as .npy) and a held-out one (raw as TIFF, truth as HDF5)."""
    raw, labels = synthetic_em_volume(SHAPE, n_neurites=10, seed=1)
    test_raw, test_truth = synthetic_em_volume(SHAPE, n_neurites=10, seed=2)
    folder = tmp_path_factory.mktemp("volumes")
    tifffile.imwrite(folder / "test.tif", test_raw, compression="zlib")   # read one page (z section) at a time
    with h5py.File(folder / "test.h5", "w") as f:
        f.create_dataset("volumes/labels/neuron_ids", data=test_truth, chunks=(8, 32, 32), compression="gzip")
    return {
        "raw": raw, "labels": labels, "test_raw": test_raw, "test_truth": test_truth,
        "raw_ref": store.put_array("inputs/train/raw", raw, chunks=(8, 32, 32)),
        "labels_ref": store.put_bytes("inputs/train/labels.npy", npy_bytes(labels)),
        "test_raw_ref": store.put_file("inputs/test/raw.tif", folder / "test.tif", media_type="image/tiff"),
        "test_truth_ref": store.put_file("inputs/test/truth.h5", folder / "test.h5", media_type="application/x-hdf5"),
    }


def volume(ref, dataset: str = "") -> S.Volume:
    return S.Volume(ref=ArtifactRef(key=ref.key), dataset=dataset)


def stream(call) -> tuple[list, object]:
    events = list(call)
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


def status_of(err: grpc.RpcError):
    status = rpc_status.from_call(err)
    return err.code(), err.details(), error_detail_from_status(status) if status else None


def metric_values(service, name: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf'^{name}\{{stage="(\w+)"\}} (\S+)$', text, re.M)}


def open_zarr(store: ArtifactStore, ref):
    return zarr.open_array(MinioZarrStore(store.client, store.bucket, ref.key, read_only=True), mode="r",
                           zarr_format=3)


def truth_ref(volumes) -> S.Volume:
    return volume(volumes["test_truth_ref"], "volumes/labels/neuron_ids")


# --- training ---------------------------------------------------------------------------------


TRAIN = dict(network=S.UNetConfig(levels=2, base_channels=4), iterations=100, batch_size=1, patch_shape=[8, 32, 32],
             learning_rate=0.01, seed=0, checkpoint_every=50,
             train_region=S.Box(z_stop=24), validation_region=S.Box(z_start=24, y_stop=32, x_stop=32))


@pytest.fixture(scope="module")
def trained(stub, volumes):
    request = S.TrainBoundaryModelRequest(raw=volume(volumes["raw_ref"]), labels=volume(volumes["labels_ref"]),
                                          **TRAIN)
    started = time.monotonic()
    progress, result = stream(stub.TrainBoundaryModel(request, timeout=300))
    return request, progress, result, time.monotonic() - started


def test_train_streams_progress_and_stores_checkpoints(trained, store):
    request, progress, result, _ = trained
    stages = [p.stage for p in progress]
    assert {"load", "train", "checkpoint", "store"} <= set(stages)
    fractions = [p.fraction_done for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95
    assert [c.iteration for c in result.checkpoints] == [50, 100]
    for checkpoint in result.checkpoints:
        stored = store.get_bytes(checkpoint.ref)
        assert load_checkpoint(stored).config.levels == 2
    model = load_checkpoint(store.get_bytes(result.model))
    assert (model.config.levels, model.config.base_channels, model.config.target) == (2, 4, "affinities")
    assert list(result.patch_shape) == [8, 32, 32] and result.device == "cpu"
    assert len(result.validation_losses) == 20 and 1 <= result.best_iteration <= 100
    loss = store.get_array(result.loss_curve)
    assert loss.shape == (100,) and loss[-20:].mean() < loss[:20].mean()      # it learns
    assert store.get_bytes(result.figure)[:4] == b"\x89PNG"
    assert store.get_json(result.report)["result"]["bestIteration"] == result.best_iteration


def test_train_again_returns_the_stored_model(trained, stub):
    request, _, result, took = trained
    started = time.monotonic()
    progress, again = stream(stub.TrainBoundaryModel(request, timeout=60))
    assert not progress and again.model.key == result.model.key
    assert time.monotonic() - started < took


# --- segmentation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def segmented(stub, trained, volumes, service):
    before = metric_values(service, "neuromesh_segmentation_voxels_total")
    request = S.SegmentRequest(raw=volume(volumes["test_raw_ref"]), model=trained[2].model, voxel_size_nm=[8, 8, 8],
                               thresholds=[0.3, 0.5], min_segment_size=20, ground_truth=truth_ref(volumes),
                               watershed=S.WatershedOptions(affinity_reduction=S.AFFINITY_REDUCTION_MEAN), **BLOCKS)
    progress, result = stream(stub.Segment(request, timeout=300))
    return request, progress, result, before


def test_segment_with_the_trained_model_blockwise_and_scored(segmented, store, volumes):
    _, progress, result, _ = segmented
    assert {"predict", "watershed", "graph", "agglomerate", "figure"} <= {p.stage for p in progress}
    fractions = [p.fraction_done for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.n_blocks == 8 and list(result.block_shape) == [16, 32, 32]
    affinities = store.open_array(result.affinities)
    assert affinities.shape == (3, *SHAPE) and affinities.dtype == np.float32
    assert not result.HasField("boundaries") and result.n_fragments > 0
    truth = volumes["test_truth"]
    assert [s.threshold for s in result.segmentations] == [0.3, 0.5]
    for entry in result.segmentations:
        labels = open_zarr(store, entry.labels)                 # a plain zarr reader opens it
        assert labels.dtype == np.uint64 and labels.shape == SHAPE
        assert labels.chunks[0] <= 16                           # chunked, written block by block
        labels = labels[...]
        assert entry.n_segments == len(np.unique(labels[labels > 0]))
        sizes = np.bincount(labels.ravel().astype(np.int64))[1:]
        assert sizes.min() >= 20                                # min_segment_size merged the rest
        # the scores are the core's, on the whole volumes
        expected = segmentation_scores(labels, truth)
        assert entry.scores.voi_split == pytest.approx(expected.voi_split)
        assert entry.scores.voi_merge == pytest.approx(expected.voi_merge)
        assert entry.scores.adapted_rand_error == pytest.approx(expected.adapted_rand_error)
        assert entry.scores.cremi_score == pytest.approx(expected.cremi_score)
        assert entry.scores.n_voxels == int((truth > 0).sum())
        # the segment table is that of the labels
        table = store.get_json(entry.segment_table)
        reference = segment_table(labels, voxel_size=(8.0, 8.0, 8.0))
        for column, values in reference.items():
            np.testing.assert_allclose(table["columns"][column], values, err_msg=column)
    # a trained model segments: better than one segment for everything (CREMI ~1.6 here)
    assert min(e.scores.cremi_score for e in result.segmentations) < 0.8
    assert store.get_bytes(result.figure)[:4] == b"\x89PNG"
    fragments = store.get_array(result.fragments)
    assert fragments.dtype == np.uint64 and len(np.unique(fragments[fragments > 0])) == result.n_fragments


def test_segment_counts_voxels_per_stage(segmented, service):
    *_, before = segmented
    after = metric_values(service, "neuromesh_segmentation_voxels_total")
    n = np.prod(SHAPE)
    assert after["predict"] - before.get("predict", 0) == n
    assert after["watershed"] - before.get("watershed", 0) == n
    assert after["agglomerate"] - before.get("agglomerate", 0) == 2 * n     # two thresholds
    text = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5).read().decode()
    assert re.search(r'^neuromesh_segmentation_block_duration_seconds_count\{stage="predict"\} ([1-9]\d*)', text, re.M)
    assert re.search(r"^neuromesh_segmentation_blocks_in_progress 0\.0$", text, re.M)


def test_segment_again_returns_the_stored_result(segmented, stub):
    request, _, result, _ = segmented
    progress, again = stream(stub.Segment(request, timeout=60))
    assert not progress
    assert [s.labels.sha256 for s in again.segmentations] == [s.labels.sha256 for s in result.segmentations]


def test_classical_mode_needs_no_training(stub, store, volumes):
    progress, result = stream(stub.Segment(S.SegmentRequest(
        raw=volume(volumes["test_raw_ref"]), classical=S.ClassicalBoundaries(), thresholds=[0.5],
        ground_truth=truth_ref(volumes), **BLOCKS), timeout=120))
    assert result.device == "" and not result.HasField("affinities")
    boundaries = store.get_array(result.boundaries)
    assert boundaries.shape == SHAPE and 0 <= boundaries.min() and boundaries.max() <= 1
    # membranes are dark: the classical map is high where the truth changes label
    truth = volumes["test_truth"]
    edge = np.zeros(SHAPE, bool)
    edge[:, :, 1:] |= truth[:, :, 1:] != truth[:, :, :-1]
    assert boundaries[edge].mean() > boundaries[~edge].mean() + 0.1
    (entry,) = result.segmentations
    labels = store.get_array(entry.labels)
    assert entry.scores.cremi_score == pytest.approx(segmentation_scores(labels, truth).cremi_score)
    assert entry.scores.cremi_score < 0.6


def test_score_two_label_volumes(stub, store, volumes):
    truth = volumes["test_truth"]
    merged = (truth > 0).astype(np.uint32)                      # every neuron in one segment
    seg = store.put_array("inputs/score/merged", merged)
    response = stub.Score(S.ScoreRequest(segmentation=volume(seg), ground_truth=truth_ref(volumes)), timeout=60)
    expected = segmentation_scores(merged, truth)
    assert response.scores.voi_split == pytest.approx(expected.voi_split, abs=1e-12)
    assert response.scores.voi_merge == pytest.approx(expected.voi_merge)
    assert response.scores.cremi_score == pytest.approx(expected.cremi_score)


def events_until_error(call) -> tuple[list, grpc.RpcError]:
    events = []
    with pytest.raises(grpc.RpcError) as info:
        for event in call:
            events.append(event.progress)
    return events, info.value


def test_a_failed_call_again_reuses_what_it_had_finalized(stub, store, volumes):
    """Boundaries and fragments are finalized before the labels fail on bad ground truth; the
    same request again takes them from the store (never ALREADY_EXISTS) and fails the same way."""
    bad_truth = volumes["test_truth"].astype(np.int32)
    bad_truth[30, 60, 60] = -1                                  # in the last block
    request = S.SegmentRequest(raw=volume(volumes["test_raw_ref"]), classical=S.ClassicalBoundaries(sigma_nm=2.0),
                               ground_truth=volume(store.put_array("inputs/bad/negative-truth", bad_truth)),
                               **BLOCKS)
    first, error = events_until_error(stub.Segment(request, timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "negative" in error.details()
    assert {"predict", "watershed"} <= {p.stage for p in first}
    again, error = events_until_error(stub.Segment(request, timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and status_of(error)[2].field == "ground_truth"
    assert not {"predict", "watershed"} & {p.stage for p in again}


# --- Segment spread over blocks: SegmentBlocks, then MergeSegmentBlocks ---------------------------

BOUNDARIES, FRAGMENTS = S.SEGMENT_BLOCKS_STAGE_BOUNDARIES, S.SEGMENT_BLOCKS_STAGE_FRAGMENTS


def blocks_of(stub, segment, stage, indices, boundaries=()):
    progress, result = stream(stub.SegmentBlocks(S.SegmentBlocksRequest(
        segment=segment, stage=stage, block_indices=indices, block_boundaries=boundaries), timeout=120))
    assert list(result.block_indices) == list(indices) and result.n_blocks == 8 and result.stage == stage
    return result


def spread_and_merge(stub, segment, groups):
    """SegmentBlocks over ``groups`` of blocks (each stage), then MergeSegmentBlocks: the refs and the result."""
    boundaries, fragments, stitching = {}, {}, {}
    for group in groups:
        result = blocks_of(stub, segment, BOUNDARIES, group)
        assert len(result.boundaries) == len(group) and not result.fragments
        boundaries.update(zip(group, result.boundaries))
    boundary_refs = [boundaries[k] for k in range(8)]
    for group in groups:
        result = blocks_of(stub, segment, FRAGMENTS, group, boundary_refs)
        assert len(result.stitching) == (0 if segment.no_stitching else len(group))
        fragments.update(zip(group, result.fragments))
        stitching.update(zip(group, result.stitching))
    fragment_refs = [fragments[k] for k in range(8)]
    stitching_refs = [stitching[k] for k in range(8)] if stitching else []
    progress, merged = stream(stub.MergeSegmentBlocks(S.MergeSegmentBlocksRequest(
        segment=segment, block_boundaries=boundary_refs, block_fragments=fragment_refs,
        block_stitching=stitching_refs), timeout=120))
    assert {"gather", "graph", "agglomerate", "figure"} <= {p.stage for p in progress}
    return boundary_refs, fragment_refs, stitching_refs, merged


def assert_same_segmentation(store, merged, whole):
    """Bit for bit: the gathered boundaries and fragments, every threshold's labels, tables and scores."""
    for name in ("affinities", "boundaries", "fragments"):
        assert merged.HasField(name) == whole.HasField(name)
        if whole.HasField(name):
            assert np.array_equal(store.get_array(getattr(merged, name)), store.get_array(getattr(whole, name))), name
    assert (merged.n_fragments, merged.n_blocks) == (whole.n_fragments, whole.n_blocks)
    assert len(merged.segmentations) == len(whole.segmentations)
    for a, b in zip(merged.segmentations, whole.segmentations):
        assert a.labels.sha256 == b.labels.sha256 and a.n_segments == b.n_segments
        assert store.get_json(a.segment_table)["columns"] == store.get_json(b.segment_table)["columns"]
        assert a.scores == b.scores


def test_the_trained_model_in_blocks_then_merged_equals_one_segment_call(segmented, stub, store):
    request, _, whole, _ = segmented
    # any grouping, any order within a group: each block is computed the same wherever it runs
    boundary_refs, fragment_refs, stitching_refs, merged = spread_and_merge(stub, request,
                                                                            [[5, 0, 3], [7, 1, 2, 6, 4]])
    assert_same_segmentation(store, merged, whole)
    assert merged.HasField("affinities") and tuple(store.open_array(boundary_refs[0]).shape) == (3, 16, 32, 32)
    # a block's array is its core of the whole once the pieces that the stitching joined are renamed
    blocks = plan_blocks(SHAPE, (16, 32, 32), (4, 8, 8))
    stitching = [store.get_array(ref) for ref in stitching_refs]
    assert [a.shape for a in stitching[:2]] == [(20, 40, 40), (20, 40, 40)]          # the blocks' reads
    renamed = pipeline.stitch_pairs(blocks, lambda i, j, box: stitching[i][pipeline._local(box, blocks[i].halo)],
                                    SHAPE)
    whole_fragments = store.get_array(whole.fragments)
    for k in (0, 6):
        assert np.array_equal(pipeline.rename_fragments(store.get_array(fragment_refs[k]), *renamed),
                              whole_fragments[blocks[k].core])


def test_blocks_done_once_are_reused_and_thresholds_do_not_move_them(stub, store, volumes, service):
    segment = S.SegmentRequest(raw=volume(volumes["test_raw_ref"]), classical=S.ClassicalBoundaries(sigma_nm=1.5),
                               thresholds=[0.4, 0.6], min_segment_size=10, ground_truth=truth_ref(volumes), **BLOCKS)
    _, whole = stream(stub.Segment(segment, timeout=120))
    boundary_refs, fragment_refs, stitching_refs, merged = spread_and_merge(stub, segment,
                                                                            [[0, 1, 2, 3], [4, 5, 6, 7]])
    assert_same_segmentation(store, merged, whole)
    before = metric_values(service, "neuromesh_segmentation_voxels_total")
    other = S.SegmentRequest()
    other.CopyFrom(segment)
    other.thresholds[:] = [0.5]                               # the block stages do not read the thresholds
    again = blocks_of(stub, other, BOUNDARIES, [6, 2])
    assert list(again.boundaries) == [boundary_refs[6], boundary_refs[2]]
    again = blocks_of(stub, other, FRAGMENTS, [3], boundary_refs)
    assert list(again.fragments) == [fragment_refs[3]] and list(again.stitching) == [stitching_refs[3]]
    after = metric_values(service, "neuromesh_segmentation_voxels_total")
    assert after["predict"] == before["predict"] and after["watershed"] == before["watershed"]   # nothing computed
    progress, stored = stream(stub.MergeSegmentBlocks(S.MergeSegmentBlocksRequest(
        segment=segment, block_boundaries=boundary_refs, block_fragments=fragment_refs,
        block_stitching=stitching_refs), timeout=60))
    assert not progress and stored.segmentations[0].labels.sha256 == merged.segmentations[0].labels.sha256


def test_block_calls_refuse_bad_requests_naming_the_field(stub, store, volumes, service):
    segment = S.SegmentRequest(raw=volume(volumes["test_raw_ref"]), classical=S.ClassicalBoundaries(sigma_nm=3.0),
                               **BLOCKS)
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND

    def blocks(**fields):
        fields = {"segment": segment, "stage": BOUNDARIES, "block_indices": [0], **fields}
        return lambda: stub.SegmentBlocks(S.SegmentBlocksRequest(**fields), timeout=60)

    def merge(**fields):
        return lambda: stub.MergeSegmentBlocks(S.MergeSegmentBlocksRequest(**{"segment": segment, **fields}),
                                               timeout=60)

    message = expect_error(blocks(block_indices=[3, 8]), INVALID, "block_indices")
    assert "block_indices[1] = 8" in message and "8 blocks" in message
    assert "twice" in expect_error(blocks(block_indices=[1, 1]), INVALID, "block_indices")
    assert "empty" in expect_error(blocks(block_indices=[]), INVALID, "block_indices")
    expect_error(blocks(stage=S.SEGMENT_BLOCKS_STAGE_UNSPECIFIED), INVALID, "stage")
    small = S.SegmentRequest()
    small.CopyFrom(segment)
    small.block_shape[:], small.halo[:] = [4, 32, 32], [8, 8, 8]
    assert "at least as large as its halo" in expect_error(blocks(segment=small), INVALID, "segment.halo")
    sourceless = S.SegmentRequest(raw=volume(volumes["test_raw_ref"]), **BLOCKS)
    expect_error(blocks(segment=sourceless), INVALID, "segment.boundary_source")
    gone = S.SegmentRequest()
    gone.CopyFrom(segment)
    gone.raw.ref.key = "inputs/none/raw"
    assert "does not exist" in expect_error(blocks(segment=gone), NOT_FOUND, "segment.raw.ref")
    expect_error(blocks(block_boundaries=[ArtifactRef(key="inputs/none/b")]), INVALID, "block_boundaries")

    # FRAGMENTS reads every block's boundaries: one per block, stored, of the block's shape
    real = list(blocks_of(stub, segment, BOUNDARIES, list(range(8))).boundaries)
    assert "has 3 arrays but the tiling has 8" in expect_error(
        blocks(stage=FRAGMENTS, block_boundaries=real[:3]), INVALID, "block_boundaries")
    missing = real[:5] + [ArtifactRef(key="derived/none/block-000005")] + real[6:]
    assert "does not exist" in expect_error(blocks(stage=FRAGMENTS, block_boundaries=missing), NOT_FOUND,
                                            "block_boundaries[5]")
    other_tiling = store.put_array("inputs/bad/block", np.zeros((8, 16, 16), np.float32))
    message = expect_error(blocks(stage=FRAGMENTS, block_boundaries=real[:2] + [other_tiling] + real[3:]), INVALID,
                           "block_boundaries[2]")
    assert "another tiling" in message
    swapped = [real[1], real[0]] + real[2:]                  # blocks 0 and 1 have the same shape: no way to tell
    assert len(blocks_of(stub, segment, FRAGMENTS, [7], swapped).fragments) == 1
    computed = blocks_of(stub, segment, FRAGMENTS, list(range(8)), real)
    fragments, stitching = list(computed.fragments), list(computed.stitching)
    assert "does not exist" in expect_error(
        merge(block_boundaries=real, block_fragments=fragments[:7] + [ArtifactRef(key="derived/none/f")]), NOT_FOUND,
        "block_fragments[7]")
    message = expect_error(merge(block_boundaries=real, block_fragments=real), INVALID, "block_fragments[0]")
    assert "uint64" in message
    expect_error(merge(block_boundaries=real), INVALID, "block_fragments")
    # stitching (the default) needs every block's stitching labels, of the block's read
    assert "no_stitching" in expect_error(merge(block_boundaries=real, block_fragments=fragments), INVALID,
                                          "block_stitching")
    message = expect_error(merge(block_boundaries=real, block_fragments=fragments,
                                 block_stitching=fragments), INVALID, "block_stitching[0]")
    assert "[20, 40, 40]" in message
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"


# --- bad input, and the server keeps serving -------------------------------------------------------


def expect_error(call, code, field):
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if not isinstance(result, S.ScoreResponse):
            list(result)
    got, message, detail = status_of(info.value)
    assert got == code, message
    assert detail is not None and detail.field == field, (detail, message)
    return message


def test_bad_inputs_name_the_field(stub, store, volumes, service):
    flat = store.put_array("inputs/bad/flat", np.zeros((64, 64), np.float32))
    four = store.put_array("inputs/bad/four", np.zeros((2, 8, 16, 16), np.float32))
    nan = volumes["test_raw"].copy()
    nan[20, 40, 40] = np.nan
    nan_ref = store.put_array("inputs/bad/nan", nan)
    short = store.put_bytes("inputs/bad/short-labels.npy", npy_bytes(volumes["labels"][:16]))
    not_model = store.put_bytes("inputs/bad/not-a-model.pt", b"weights? no")
    classical = S.ClassicalBoundaries()
    raw = volume(volumes["test_raw_ref"])

    def segment(**fields):
        if "model" not in fields:
            fields.setdefault("classical", classical)
        return lambda: stub.Segment(S.SegmentRequest(**{"raw": raw, **fields}), timeout=60)

    def train(**fields):
        return lambda: stub.TrainBoundaryModel(S.TrainBoundaryModelRequest(
            **{"raw": volume(volumes["raw_ref"]), "labels": volume(volumes["labels_ref"]), **TRAIN, **fields}),
            timeout=60)

    for bad in (flat, four):
        assert "3-D" in expect_error(segment(raw=volume(bad)), grpc.StatusCode.INVALID_ARGUMENT, "raw")
    assert "NaN" in expect_error(segment(raw=volume(nan_ref), **BLOCKS), grpc.StatusCode.INVALID_ARGUMENT, "raw")
    assert "shape" in expect_error(train(labels=volume(short)), grpc.StatusCode.INVALID_ARGUMENT, "labels")
    expect_error(segment(block_shape=[4, 32, 32], halo=[8, 8, 8]), grpc.StatusCode.INVALID_ARGUMENT, "halo")
    assert ">= 0" in expect_error(segment(watershed=S.WatershedOptions(max_seed_depth=-1.0), **BLOCKS),
                                  grpc.StatusCode.INVALID_ARGUMENT, "watershed.max_seed_depth")
    # a cap that the halo (4 voxels along z) does not cover with the seed distance would give the
    # blocks other seeds than the whole volume
    message = expect_error(segment(watershed=S.WatershedOptions(max_seed_depth=7.0), **BLOCKS),
                           grpc.StatusCode.INVALID_ARGUMENT, "watershed.max_seed_depth")
    assert "halo of at least 9 voxels along z" in message
    missing = ArtifactRef(key="models/none/model.pt")
    assert "does not exist" in expect_error(segment(model=missing), grpc.StatusCode.NOT_FOUND, "model")
    expect_error(segment(model=not_model), grpc.StatusCode.INVALID_ARGUMENT, "model")
    expect_error(segment(ground_truth=volume(volumes["test_truth_ref"], "no/such/dataset")),
                 grpc.StatusCode.NOT_FOUND, "ground_truth.dataset")
    # training reads its regions whole: a region over NEUROMESH_MAX_INPUT_BYTES is refused
    expect_error(train(train_region=S.Box()), grpc.StatusCode.RESOURCE_EXHAUSTED, "train_region")
    expect_error(lambda: stub.Score(S.ScoreRequest(segmentation=volume(nan_ref), ground_truth=truth_ref(volumes)),
                                    timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "segmentation")
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"


def cancelled_trainings(service) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total{") and 'grpc_method="TrainBoundaryModel"' in line
               and 'grpc_code="CANCELLED"' in line)


def test_cancelled_training_stops_at_the_next_report(stub, volumes, service):
    call = stub.TrainBoundaryModel(S.TrainBoundaryModelRequest(
        raw=volume(volumes["raw_ref"]), labels=volume(volumes["labels_ref"]),
        **{**TRAIN, "iterations": 1000, "seed": 7}), timeout=120)
    assert next(call).progress.stage == "load"
    call.cancel()
    # the call ends on the server only once its worker has stopped, at training's first report
    # (iteration 10 of 1000): the whole run would take minutes
    deadline = time.monotonic() + 60
    while cancelled_trainings(service) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cancelled_trainings(service) == 1
    _, result = stream(stub.Segment(S.SegmentRequest(raw=volume(volumes["test_raw_ref"]),
                                                     classical=S.ClassicalBoundaries(sigma_nm=1.5), **BLOCKS),
                                    timeout=60))
    assert result.n_blocks == 8
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"


# --- stitching: the blockwise result matches the whole-volume one ----------------------------------


def test_eight_stitched_blocks_segment_like_one_block_over_the_whole_volume(stub, store, volumes):
    """Synthetic EM cut into 2 x 2 x 2 blocks, neurites crossing every face: stitched (the default)
    the fragments, and so the segments, are those of one block holding the whole volume, up to
    their ids; unstitched, the pieces that the faces cut stay apart."""
    raw = volume(volumes["test_raw_ref"])
    # the seeds' distance transform capped at 4 nm = 4 voxels: halos of 8 >= 4 + min_seed_distance 2 see
    # every seed of the core that the whole volume sees (and the flood that reaches the stitching boxes)
    common = dict(raw=raw, classical=S.ClassicalBoundaries(sigma_nm=1.0), thresholds=[0.5],
                  watershed=S.WatershedOptions(max_seed_depth=4.0, min_seed_distance=2), halo=[8, 16, 16])
    _, whole = stream(stub.Segment(S.SegmentRequest(block_shape=list(SHAPE), **common), timeout=120))
    _, stitched = stream(stub.Segment(S.SegmentRequest(block_shape=[16, 32, 32], **common), timeout=120))
    _, cut = stream(stub.Segment(S.SegmentRequest(block_shape=[16, 32, 32], no_stitching=True, **common),
                                 timeout=120))
    assert (whole.n_blocks, stitched.n_blocks, cut.n_blocks) == (1, 8, 8)

    def one_to_one(a_ref, b_ref) -> bool:
        """Equal up to relabelling: every (a, b) pair of labels is the only one of its a and of its b."""
        a, b = store.get_array(a_ref).ravel(), store.get_array(b_ref).ravel()
        pairs = np.unique(np.stack([a, b], axis=1), axis=0)
        return np.unique(pairs[:, 0]).size == np.unique(pairs[:, 1]).size == len(pairs)

    assert stitched.n_fragments == whole.n_fragments
    assert one_to_one(stitched.fragments, whole.fragments)
    assert one_to_one(stitched.segmentations[0].labels, whole.segmentations[0].labels)
    assert stitched.segmentations[0].n_segments == whole.segmentations[0].n_segments
    # without stitching, the pieces of the fragments that faces cut are more fragments
    assert cut.n_fragments > whole.n_fragments
    assert not one_to_one(cut.fragments, whole.fragments)

    # the same over SegmentBlocks and MergeSegmentBlocks: bit for bit the one call's result
    segment = S.SegmentRequest(block_shape=[16, 32, 32], **common)
    *_, merged = spread_and_merge(stub, segment, [[0, 1, 2, 3, 4, 5, 6, 7]])
    assert_same_segmentation(store, merged, stitched)
    unstitched = S.SegmentRequest(block_shape=[16, 32, 32], no_stitching=True, **common)
    *_, merged_cut = spread_and_merge(stub, unstitched, [[0, 1, 2, 3], [4, 5, 6, 7]])
    assert_same_segmentation(store, merged_cut, cut)
