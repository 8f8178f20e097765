"""The segmentation service's request checks, volume readers and blockwise stages, without servers.

Requests: every bad value is an INVALID_ARGUMENT that is also a ValueError and names its field.
Volumes: .npy, TIFF (memory-mapped and page by page) and HDF5 read lazily and equal the array.
Stages: block by block equals the core on the whole volume (classical boundaries, scores,
segment tables), small segments merge as the core's ``remove_small_fragments`` merges them, a
block that keeps failing fails naming itself, and bad input is not retried.
"""

from __future__ import annotations

import contextlib
import doctest

import grpc
import h5py
import numpy as np
import pytest
import tifffile
from scipy import ndimage

from neuromesh.segmentation.v1 import segmentation_pb2 as S
from services.common.errors import Cancelled, InvalidArgument, NeuroMeshError, Unavailable
from services.common import volumes
from services.segmentation import pipeline, plots, requests
from services.segmentation.core import (BlockFailedError, agglomerate, plan_blocks, region_adjacency_graph,
                                        remove_small_fragments, segment_table, segmentation_scores,
                                        synthetic_em_volume)
from services.segmentation.core.training import normalize_intensity
from services.segmentation.requests import RequestError
from services.segmentation.servicer import block_failure


@pytest.mark.parametrize("module", [requests, volumes, pipeline, plots], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --- requests -----------------------------------------------------------------------------------


def field_of(call) -> str:
    with pytest.raises(RequestError) as info:
        call()
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, InvalidArgument)
    assert err.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    return err.field


def test_segment_defaults():
    options = requests.segment_options(S.SegmentRequest())
    assert options.block_shape == (64, 256, 256) and options.halo == (8, 16, 16)
    assert options.thresholds == (0.5,) and options.voxel_size == (1.0, 1.0, 1.0)
    assert (options.boundary_threshold, options.min_seed_distance, options.affinity_reduction) == (0.5, 2, "min")
    # the default halo is clipped to a small block
    assert requests.segment_options(S.SegmentRequest(block_shape=[4, 8, 8])).halo == (4, 8, 8)
    # 0 is a real value of the optional fields
    ws = S.WatershedOptions(min_seed_distance=0, boundary_threshold=0.3,
                            affinity_reduction=S.AFFINITY_REDUCTION_MEAN)
    options = requests.segment_options(S.SegmentRequest(watershed=ws))
    assert (options.min_seed_distance, options.boundary_threshold, options.affinity_reduction) == (0, 0.3, "mean")
    # stitching is on and the seed depth uncapped unless asked otherwise; a cap of 0 is a real value
    assert options.stitch and options.max_seed_depth is None
    options = requests.segment_options(S.SegmentRequest(no_stitching=True,
                                                        watershed=S.WatershedOptions(max_seed_depth=0.0)))
    assert not options.stitch and options.max_seed_depth == 0.0


def test_a_capped_seed_depth_needs_the_halo_along_split_axes_only():
    request = S.SegmentRequest(block_shape=[8, 32, 32], halo=[2, 8, 8], voxel_size_nm=[4, 2, 2],
                               watershed=S.WatershedOptions(max_seed_depth=12.0, min_seed_distance=2))
    options = requests.segment_options(request)
    # along y and x the cap is 6 voxels of 2 nm: 6 + 2 = 8 <= halo 8
    requests.check_seed_depth_halo(options, (8, 64, 64))            # z is one block: its halo does not matter
    with pytest.raises(requests.RequestError) as info:                # z split: needs 3 + 2 = 5 > 2
        requests.check_seed_depth_halo(options, (16, 64, 64))
    assert info.value.field == "watershed.max_seed_depth" and "at least 5 voxels along z" in info.value.message
    requests.check_seed_depth_halo(requests.segment_options(S.SegmentRequest(halo=[0, 0, 0])), (512, 512, 512))


def test_classical_sigma_is_one_physical_width():
    options = requests.segment_options(S.SegmentRequest(voxel_size_nm=[40, 4, 4], classical=S.ClassicalBoundaries()))
    assert options.classical_sigma_voxels() == (0.1, 1.0, 1.0)
    options = requests.segment_options(S.SegmentRequest(voxel_size_nm=[40, 4, 4],
                                                        classical=S.ClassicalBoundaries(sigma_nm=8)))
    assert options.classical_sigma_voxels() == (0.2, 2.0, 2.0)


@pytest.mark.parametrize("fields, field", [
    ({"block_shape": [4, 32]}, "block_shape"),
    ({"block_shape": [0, 32, 32]}, "block_shape"),
    ({"halo": [1, 2, -1]}, "halo"),
    ({"block_shape": [4, 32, 32], "halo": [8, 8, 8]}, "halo"),
    ({"thresholds": [0.5, 1.5]}, "thresholds"),
    ({"thresholds": [0.5, 0.5]}, "thresholds"),
    ({"thresholds": [float("nan")]}, "thresholds"),
    ({"voxel_size_nm": [8, 8]}, "voxel_size_nm"),
    ({"voxel_size_nm": [8, 0, 8]}, "voxel_size_nm"),
    ({"min_segment_size": -1}, "min_segment_size"),
    ({"watershed": S.WatershedOptions(boundary_threshold=0.0)}, "watershed.boundary_threshold"),
    ({"watershed": S.WatershedOptions(min_seed_distance=-1)}, "watershed.min_seed_distance"),
    ({"watershed": S.WatershedOptions(max_seed_depth=-0.5)}, "watershed.max_seed_depth"),
    ({"watershed": S.WatershedOptions(max_seed_depth=float("inf"))}, "watershed.max_seed_depth"),
    ({"classical": S.ClassicalBoundaries(sigma_nm=-1)}, "classical.sigma_nm"),
    ({"patch_shape": [8, 8]}, "patch_shape"),
])
def test_bad_segment_requests_name_the_field(fields, field):
    assert field_of(lambda: requests.segment_options(S.SegmentRequest(**fields))) == field


def test_train_options_defaults_and_the_unet():
    options = requests.train_options(S.TrainBoundaryModelRequest())
    assert (options.iterations, options.batch_size, options.learning_rate) == (2000, 2, 1e-3)
    assert options.patch_shape is None and options.checkpoint_every is None and options.augment
    assert options.config.levels == 3 and options.config.target == "affinities"
    config = requests.unet_config(S.UNetConfig(levels=3, base_channels=4, anisotropic=True,
                                               target=S.BOUNDARY_TARGET_BOUNDARIES, norm=S.NORMALIZATION_INSTANCE,
                                               upsampling=S.UPSAMPLING_TRILINEAR))
    assert (config.anisotropic_levels, config.target, config.norm, config.upsampling) == (
        1, "boundaries", "instance", "trilinear")
    message = requests.unet_config_message(config)
    assert requests.unet_config(message) == config and message.anisotropic_levels == 1


@pytest.mark.parametrize("fields, field", [
    ({"network": S.UNetConfig(levels=1)}, "network"),
    ({"network": S.UNetConfig(anisotropic_levels=2)}, "network"),
    ({"iterations": -5}, "iterations"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"patch_shape": [8, 30, 32]}, "patch_shape"),       # not a multiple of the pooling factor 4
    ({"seed": -1}, "seed"),
])
def test_bad_train_requests_name_the_field(fields, field):
    assert field_of(lambda: requests.train_options(S.TrainBoundaryModelRequest(**fields))) == field


def test_boxes():
    shape = (32, 64, 64)
    assert requests.box_slices(S.Box(), shape, "r") == (slice(0, 32), slice(0, 64), slice(0, 64))
    assert requests.box_slices(S.Box(y_start=8, y_stop=16), shape, "r")[1] == slice(8, 16)
    for box in (S.Box(z_start=32), S.Box(z_start=10, z_stop=5), S.Box(x_stop=65), S.Box(y_start=-1)):
        assert field_of(lambda box=box: requests.box_slices(box, shape, "validation_region")) == "validation_region"


def test_volume_checks():
    assert requests.check_volume((4, 5, 6), "uint8", "raw") == ((4, 5, 6), np.dtype("uint8"))
    for shape in ((64, 64), (2, 4, 5, 6), (0, 5, 5)):
        assert field_of(lambda shape=shape: requests.check_volume(shape, "float32", "raw")) == "raw"
    assert field_of(lambda: requests.check_volume((4, 5, 6), "bool", "raw")) == "raw"
    assert field_of(lambda: requests.check_volume((4, 5, 6), "float32", "labels", labels=True)) == "labels"
    assert field_of(lambda: requests.check_same_shape((4, 5, 6), (4, 5, 7), "labels")) == "labels"
    block = np.zeros((2, 2, 2), np.float32)
    block[1, 0, 1] = np.nan
    with pytest.raises(RequestError, match=r"NaN .* \(1, 0, 1\)") as info:
        requests.check_finite(block, "raw", "block 3")
    assert info.value.reason == "NON_FINITE_VALUES"


def test_fit_block_halves_until_it_fits():
    assert requests.fit_block((64, 512, 512), (32, 64, 64), 16, 10**9) == (32, 64, 64)
    block = requests.fit_block((64, 512, 512), (100, 1000, 1000), 16, 2**20)
    assert np.prod(block) * 16 <= 2**20 and block[0] <= 64


# --- volumes ------------------------------------------------------------------------------------


@pytest.fixture
def volume():
    return np.random.default_rng(0).random((6, 10, 12)).astype(np.float32)


def read_all(reader) -> np.ndarray:
    return np.asarray(reader[0:reader.shape[0], 0:reader.shape[1], 0:reader.shape[2]])


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_stack_reads_sections_lazily(tmp_path, volume, compression):
    tifffile.imwrite(tmp_path / "v.tif", volume, compression=compression)
    stack = volumes.TiffStack(tmp_path / "v.tif", "raw")
    assert (stack._memmap is None) == (compression is not None)       # compressed: page by page
    assert stack.shape == volume.shape and stack.dtype == np.float32
    np.testing.assert_array_equal(read_all(stack), volume)
    np.testing.assert_array_equal(stack[2:4, 3:7, 5:6], volume[2:4, 3:7, 5:6])
    np.testing.assert_array_equal(stack[..., 1:3], volume[..., 1:3])
    stack.close()


def test_sniffing_formats(tmp_path, volume):
    np.save(tmp_path / "a.npy", volume)
    tifffile.imwrite(tmp_path / "a.tif", volume)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = volume
    (tmp_path / "a.txt").write_text("hello")
    assert [volumes.sniff_format(tmp_path / n) for n in ("a.npy", "a.tif", "a.h5", "a.txt")] == [
        "npy", "tiff", "hdf5", None]


def test_region_reads_inside_its_box(volume):
    region = volumes.Region(volume, (slice(1, 5), slice(2, 10), slice(0, 12)))
    assert region.shape == (4, 8, 12) and region.nbytes == 4 * 8 * 12 * 4
    np.testing.assert_array_equal(region[...], volume[1:5, 2:10])
    np.testing.assert_array_equal(region[1:3, :, 4:6], volume[2:4, 2:10, 4:6])
    inner = volumes.Region(region, (slice(1, 2), slice(0, 8), slice(3, 4)))
    np.testing.assert_array_equal(np.asarray(inner), volume[2:3, 2:10, 3:4])


class _FakeStore:
    """What open_volume needs of the store for a single object: get_file."""

    def __init__(self, path):
        self.path = path

    def get_file(self, ref, path):
        path.write_bytes(self.path.read_bytes())


def test_open_volume_hdf5_needs_its_dataset(tmp_path, volume):
    from neuromesh.common.v1.artifact_pb2 import ArtifactRef
    from services.common.errors import NotFound

    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("volumes/raw", data=volume, chunks=(2, 5, 6))
    store, ref = _FakeStore(tmp_path / "a.h5"), ArtifactRef(bucket="b", key="a.h5", media_type="application/x-hdf5")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with contextlib.ExitStack() as stack:
        data = volumes.open_volume(store, ref, "volumes/raw", "raw", scratch, stack)
        np.testing.assert_array_equal(data[1:3, 2:4, 5:9], volume[1:3, 2:4, 5:9])
        with pytest.raises(RequestError, match="volumes/raw") as info:
            volumes.open_volume(store, ref, "", "raw", scratch, stack)
        assert info.value.field == "raw.dataset"
        with pytest.raises(NotFound) as missing:
            volumes.open_volume(store, ref, "volumes/nope", "raw", scratch, stack)
        assert missing.value.field == "raw.dataset"
        (tmp_path / "a.txt").write_text("no volume")
        with pytest.raises(RequestError, match="neither"):
            volumes.open_volume(_FakeStore(tmp_path / "a.txt"), ref, "", "raw", scratch, stack)


# --- stages ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_em_volume((16, 40, 40), n_neurites=6, seed=3)


def test_classical_boundaries_blockwise_equal_the_whole_volume(synthetic):
    raw, _ = synthetic
    sigma = (0.5, 1.0, 1.0)
    out = np.zeros(raw.shape, np.float32)
    pipeline.classical_boundaries(raw, out, pipeline.smoothing_blocks(raw.shape, (8, 16, 16), sigma),
                                  sigma_voxels=sigma)
    whole = 1.0 - ndimage.gaussian_filter(normalize_intensity(raw), sigma, mode="reflect")
    np.testing.assert_allclose(out, np.clip(whole, 0, 1), atol=1e-6)
    bright = np.zeros(raw.shape, np.float32)
    pipeline.classical_boundaries(raw, bright, plan_blocks(raw.shape, (16, 40, 40)), sigma_voxels=sigma,
                                  bright_membranes=True)
    np.testing.assert_allclose(bright, 1 - out, atol=1e-6)


def test_stages_end_to_end_match_the_core(synthetic):
    raw, truth = synthetic
    blocks = plan_blocks(raw.shape, (8, 20, 20), halo=(2, 4, 4))
    seen: list[tuple[str, int]] = []
    reports: list[float] = []

    def meter(stage):
        return pipeline.StageMeter(stage, len(blocks), report=lambda f, m: reports.append(f),
                                   observe=lambda s, voxels, seconds: seen.append((s, voxels)))

    boundaries = np.zeros(raw.shape, np.float32)
    pipeline.classical_boundaries(raw, boundaries, blocks, sigma_voxels=(1.0, 1.0, 1.0), meter=meter("predict"))
    fragments = np.zeros(raw.shape, np.uint64)
    ids = pipeline.watershed_fragments(boundaries, fragments, blocks, meter=meter("watershed"))
    assert np.array_equal(ids, np.unique(fragments[fragments > 0]))
    counted_ids, sizes = pipeline.fragment_sizes(fragments, blocks)
    assert np.array_equal(counted_ids, ids) and sizes.sum() == np.count_nonzero(fragments)
    graph = pipeline.fragment_graph(fragments, boundaries, blocks)
    whole = region_adjacency_graph(fragments, boundaries)
    assert np.array_equal(graph.u, whole.u) and np.allclose(graph.affinity_sum, whole.affinity_sum)
    tree = agglomerate(None, graph, fragment_ids=ids)
    labels = np.zeros(raw.shape, np.uint64)
    table, contingency = pipeline.write_segmentation(fragments, tree, tree.segment_of(0.5), blocks, labels,
                                                     ground_truth=truth, voxel_size=(8.0, 4.0, 4.0),
                                                     meter=meter("agglomerate"))
    np.testing.assert_array_equal(labels, tree.segmentation(0.5, fragments))
    reference = segment_table(labels, voxel_size=(8.0, 4.0, 4.0))
    for column, values in reference.items():
        np.testing.assert_allclose(table[column], values, err_msg=column)
    scores, expected = pipeline.scores_from_contingency(*contingency), segmentation_scores(labels, truth)
    assert scores.to_dict() == pytest.approx(expected.to_dict())
    assert pipeline.score_volumes(labels, truth, plan_blocks(raw.shape, (5, 13, 40))).to_dict() == pytest.approx(
        expected.to_dict())
    # one measurement per block and stage, of the core's voxels
    n = len(blocks)
    for stage in ("predict", "watershed", "agglomerate"):
        assert sum(v for s, v in seen if s == stage) == raw.size and sum(s == stage for s, _ in seen) == n
    assert max(reports) < 1 and min(reports) == 0


def test_merge_small_segments_follows_the_core_policy():
    rng = np.random.default_rng(4)
    labels = np.zeros((6, 20, 20), np.uint64)
    seeds = rng.integers(0, 6 * 20 * 20, size=60)
    labels.ravel()[seeds] = np.arange(1, 61)
    _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    labels = labels[tuple(nearest)]                              # 60 Voronoi cells of varied size
    labels[0, 0, 0] = 99                                         # a one-voxel segment
    ids, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse.ravel())
    graph = region_adjacency_graph(labels)
    identity = np.arange(1, ids.size + 1, dtype=np.uint64)      # every fragment its own segment
    for min_size in (1, 20, 45, 80):
        merged = pipeline.merge_small_segments(identity, sizes, graph, ids.astype(np.uint64), min_size)
        ours = merged[np.searchsorted(ids, labels)]
        core = remove_small_fragments(labels, min_size)
        # the same partition (ids may differ: ours are renumbered 1..n)
        pairs = np.unique(np.stack([ours.ravel(), core.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1])), min_size
        assert np.bincount(ours.ravel().astype(np.int64))[1:].min() >= min_size
        assert set(np.unique(ours)) == set(range(1, int(ours.max()) + 1))


def test_isolated_small_segments_become_background():
    labels = np.zeros((1, 1, 10), np.uint64)
    labels[..., :3], labels[..., 5:6], labels[..., 7:] = 1, 2, 3
    ids = np.array([1, 2, 3], np.uint64)
    merged = pipeline.merge_small_segments(np.array([1, 2, 3], np.uint64), [3, 1, 3], region_adjacency_graph(labels),
                                           ids, 2)
    assert merged.tolist() == [1, 0, 2]


def test_a_block_that_keeps_failing_names_itself():
    raw = np.full((4, 8, 8), 0.5, np.float32)
    blocks = plan_blocks(raw.shape, (2, 8, 8))
    calls = []

    class Flaky:
        shape, dtype = raw.shape, raw.dtype

        def __getitem__(self, selection):
            calls.append(selection)
            if selection[0].start >= 2:                          # the second block always fails
                raise Unavailable("object store away")
            return raw[selection]

    out = np.zeros(raw.shape, np.float32)
    with pytest.raises(BlockFailedError) as info:
        pipeline.classical_boundaries(Flaky(), out, blocks, sigma_voxels=(1, 1, 1))
    assert len(calls) == 1 + pipeline.MAX_ATTEMPTS
    error = block_failure(info.value)
    assert isinstance(error, Unavailable) and error.grpc_code == grpc.StatusCode.UNAVAILABLE
    assert "block (1, 0, 0) at z 2:4, y 0:8, x 0:8 failed 3 time(s)" in error.message
    assert error.reason == "BLOCK_FAILED" and error.metadata["block"] == "(1, 0, 0)"
    # anything else is internal, still named; a cancellation stays one
    generic = block_failure(_chained(blocks[0], RuntimeError("boom")))
    assert type(generic) is NeuroMeshError and generic.grpc_code == grpc.StatusCode.INTERNAL
    assert "block (0, 0, 0)" in generic.message and "RuntimeError: boom" in generic.message
    cancelled = Cancelled("the call was cancelled by the client")
    assert block_failure(_chained(blocks[0], cancelled)) is cancelled


def _chained(block, cause) -> BlockFailedError:
    try:
        raise BlockFailedError(block, 3, cause) from cause
    except BlockFailedError as exc:
        return exc


def test_bad_intensities_fail_at_once_naming_raw():
    raw = np.full((4, 8, 8), 0.5, np.float32)
    raw[3, 1, 1] = np.nan
    with pytest.raises(RequestError, match="NaN") as info:
        pipeline.classical_boundaries(raw, np.zeros(raw.shape, np.float32), plan_blocks(raw.shape, (2, 8, 8)),
                                      sigma_voxels=(1, 1, 1))
    assert info.value.field == "raw"
    with pytest.raises(RequestError, match=r"\[0, 1\]") as info:
        pipeline.classical_boundaries(raw * 0 + 3.0, np.zeros(raw.shape, np.float32),
                                      plan_blocks(raw.shape, (2, 8, 8)), sigma_voxels=(1, 1, 1))
    assert info.value.field == "raw"


def test_cancellation_in_a_block_is_a_cancellation():
    raw = np.full((4, 8, 8), 0.5, np.float32)
    blocks = plan_blocks(raw.shape, (2, 8, 8))

    def report(fraction, message):
        if fraction > 0:
            raise Cancelled("the call was cancelled by the client")

    with pytest.raises(BlockFailedError) as info:
        pipeline.classical_boundaries(raw, np.zeros(raw.shape, np.float32), blocks, sigma_voxels=(1, 1, 1),
                                      meter=pipeline.StageMeter("predict", len(blocks), report=report))
    assert isinstance(block_failure(info.value), Cancelled)


def test_merge_contingency_sums_equal_pairs():
    parts = [(np.array([1, 2], np.uint64), np.array([5, 5], np.uint64), np.array([3, 4])),
             (np.array([2, 1], np.uint64), np.array([5, 6], np.uint64), np.array([1, 2]))]
    seg, gt, counts = pipeline.merge_contingency(parts)
    assert seg.tolist() == [1, 1, 2] and gt.tolist() == [5, 6, 5] and counts.tolist() == [3, 2, 5]
    with pytest.raises(RequestError) as info:
        pipeline.scores_from_contingency(*pipeline.merge_contingency([]))
    assert info.value.field == "ground_truth"


@pytest.fixture
def one_torch_thread():
    """The machine is shared: extra torch threads spin-wait (10x slower here)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("target", ["affinities", "boundaries"])
def test_predict_boundaries_block_by_block(synthetic, target, one_torch_thread):
    import torch

    from services.segmentation.core.training import predict_affinities
    from services.segmentation.core.unet import BoundaryUNet

    torch.manual_seed(0)
    model = BoundaryUNet({"levels": 2, "base_channels": 2, "target": target}).eval()
    raw = synthetic.raw[:8, :24, :24]
    channels = 3 if target == "affinities" else 1
    whole = predict_affinities(model, raw, patch_shape=(8, 24, 24))
    out = np.zeros(((3,) if channels == 3 else ()) + raw.shape, np.float32)
    pipeline.predict_boundaries(model, raw, out, plan_blocks(raw.shape, raw.shape), patch_shape=(8, 24, 24))
    np.testing.assert_allclose(out, whole if channels == 3 else whole[0], atol=1e-6)   # one block: the same
    blocked = np.full(out.shape, -1.0, np.float32)
    pipeline.predict_boundaries(model, raw, blocked, plan_blocks(raw.shape, (4, 12, 12), halo=(2, 4, 4)),
                                patch_shape=(4, 12, 12))
    assert blocked.min() >= 0 and blocked.max() <= 1               # every voxel written, probabilities


def test_a_tiff_that_can_only_be_read_whole_is_refused_above_the_limit(tmp_path, volume):
    from services.common.errors import ResourceExhausted

    # one page holding the whole compressed stack: neither memory-mappable nor one page per section
    tifffile.imwrite(tmp_path / "one.tif", volume, compression="zlib", metadata=None, contiguous=False,
                     rowsperstrip=None, photometric="minisblack", planarconfig="separate")
    stack = volumes.TiffStack(tmp_path / "one.tif", "raw")
    assert stack._pages is None and stack._memmap is None, "the fixture should be one compressed page"
    np.testing.assert_array_equal(stack[1:2, 3:4, 5:9], volume[1:2, 3:4, 5:9])
    with pytest.raises(ResourceExhausted) as info:
        volumes.TiffStack(tmp_path / "one.tif", "raw", max_bytes=1000)
    assert info.value.field == "raw"
