"""Block planning, retries, and a blockwise segmentation equal to the whole-volume one."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from scipy import ndimage

from services.segmentation.core.blockwise import (BlockFailedError, blockwise_fragments,
                                                  blockwise_region_adjacency_graph, blockwise_segmentation,
                                                  join_fragments, match_overlapping_fragments, plan_blocks,
                                                  run_blocks, stitching_boxes)
from services.segmentation.core.metrics import contingency_table, segmentation_scores
from services.segmentation.core.synthetic import (affinities_from_labels, boundary_map_from_labels,
                                                  synthetic_em_volume)
from services.segmentation.core.watershed import agglomerate, region_adjacency_graph, seeded_watershed

SHAPE = (20, 32, 32)
BLOCK = (10, 16, 16)          # 2 x 2 x 2 = 8 blocks
HALO = (3, 4, 4)


def fragment_fn(block):
    """Watershed of channel 0 (boundaries) inside channel 1 (the neuron mask)."""
    return seeded_watershed(block[0], min_seed_distance=2, threshold=0.5, mask=block[1] > 0)


@pytest.fixture(scope="module")
def data():
    _, truth = synthetic_em_volume(SHAPE, n_neurites=8, seed=0)
    boundaries = boundary_map_from_labels(truth)
    volume = np.stack([boundaries, (truth > 0).astype(np.float32)])
    affinities = affinities_from_labels(truth)
    fragments = fragment_fn(volume)
    whole = agglomerate(fragments, region_adjacency_graph(fragments, affinities)).segmentation(0.5)
    return truth, volume, affinities, whole


def one_to_one(a, b):
    a_ids, b_ids, _ = contingency_table(a, b, ignore_ground_truth=())
    return np.unique(a_ids).size == a_ids.size and np.unique(b_ids).size == b_ids.size


def test_plan_blocks_partitions_the_volume_and_clips_halos():
    blocks = plan_blocks((10, 7, 5), (4, 4, 5), halo=(2, 1, 0))
    assert [b.index for b in blocks][:3] == [(0, 0, 0), (0, 1, 0), (1, 0, 0)]
    assert [b.linear_index for b in blocks] == list(range(6))
    hits = np.zeros((10, 7, 5), int)
    for b in blocks:
        hits[b.core] += 1
        for core, halo, n, h in zip(b.core, b.halo, (10, 7, 5), (2, 1, 0)):
            assert halo.start == max(core.start - h, 0) and halo.stop == min(core.stop + h, n)
        read = np.arange(350).reshape(10, 7, 5)[b.halo]
        np.testing.assert_array_equal(read[b.core_in_halo], np.arange(350).reshape(10, 7, 5)[b.core])
    assert np.all(hits == 1)                                 # the cores partition the volume
    assert blocks[-1].shape == (2, 3, 5)                     # the last blocks are what is left
    assert len(plan_blocks((3, 3, 3), (8, 8, 8))) == 1


@pytest.mark.parametrize("args, message", [
    (((10, 10), (4, 4, 4)), "shape"),
    (((10, 10, 10, 10), (4, 4, 4)), "shape"),
    (((10, 10, 10), (4, 4)), "block_shape"),
    (((10, 10, 10), (4, 0, 4)), "block_shape"),
    (((10, 10, 10), (4, 4, 4), (1, -1, 1)), "halo"),
    (((10, 10, 10), (4, 2, 4), (1, 3, 1)), r"block_shape \(4, 2, 4\) is smaller than halo \(1, 3, 1\) along y"),
])
def test_plan_blocks_rejects_bad_shapes_naming_the_field(args, message):
    with pytest.raises(ValueError, match=message):
        plan_blocks(*args)


@pytest.mark.parametrize("block_shape", [BLOCK, (7, 11, 11)])           # 8 and 27 blocks
def test_blockwise_equals_whole_volume_and_ground_truth(data, block_shape):
    truth, volume, affinities, whole = data
    result = blockwise_segmentation(volume, fragment_fn, affinities, block_shape=block_shape, halo=HALO,
                                    threshold=0.5)
    assert len(result.blocks) == (8 if block_shape == BLOCK else 27)
    whole_fragments = fragment_fn(volume)
    cut, _ = blockwise_fragments(volume, fragment_fn, result.blocks)
    n_whole, n_cut, n_stitched = (np.unique(f[f > 0]).size for f in (whole_fragments, cut, result.fragments))
    # block faces cut fragments into many more pieces; stitching joins all but a few of them ...
    assert n_cut > 2 * n_whole
    assert n_stitched <= 1.3 * n_whole
    # ... and never across a membrane: every stitched fragment lies in one neuron
    gt_of_fragment, _, _ = contingency_table(result.fragments, truth)
    assert np.unique(gt_of_fragment).size == gt_of_fragment.size
    # the segmentation equals the whole-volume one up to relabelling, at every cut of the tree
    # between the affinities across membranes (0) and inside neurons (1)
    assert one_to_one(result.segmentation, whole)
    whole_tree = agglomerate(whole_fragments, region_adjacency_graph(whole_fragments, affinities))
    for threshold in (0.01, 0.3, 0.7, 1.0):
        assert one_to_one(result.tree.segmentation(threshold, result.fragments), whole_tree.segmentation(threshold))
    scores = segmentation_scores(result.segmentation, truth)
    assert (scores.voi_split, scores.voi_merge, scores.adapted_rand_error) == (0.0, 0.0, 0.0)
    # other thresholds come from the same tree, block by block
    assert result.tree.n_segments(1.01) == n_stitched


def test_stitching_brings_blockwise_fragments_close_to_the_whole_volume_ones():
    # a noisy boundary map (synthetic EM smoothed), where fragments also split neurons: the
    # stitched blockwise fragments are far closer to the whole-volume fragments than the cut ones
    raw, truth = synthetic_em_volume((32, 64, 64), n_neurites=12, seed=1)
    boundaries = 1.0 - ndimage.gaussian_filter(raw.astype(np.float32) / 255.0, 1.0)
    boundaries = (boundaries - boundaries.min()) / (boundaries.max() - boundaries.min())

    def fragments_of(b):
        return seeded_watershed(b, min_seed_distance=2, threshold=0.5)

    whole = fragments_of(boundaries)
    blocks = plan_blocks(boundaries.shape, (16, 32, 32), (4, 8, 8))
    cut, _ = blockwise_fragments(boundaries, fragments_of, blocks)
    stitched, ids = blockwise_fragments(boundaries, fragments_of, blocks, stitch=True)
    np.testing.assert_array_equal(ids, np.unique(stitched[stitched > 0]))
    n_whole = np.unique(whole).size
    assert np.unique(cut).size > 1.5 * n_whole and np.unique(stitched).size < 1.05 * n_whole
    cut_error = segmentation_scores(cut, whole).adapted_rand_error
    stitched_error = segmentation_scores(stitched, whole).adapted_rand_error
    assert stitched_error < 0.5 * cut_error
    # the stitched pieces are joined, not reshaped: each cut fragment is inside one stitched one
    cut_ids, stitched_ids, _ = contingency_table(cut, stitched, ignore_ground_truth=())
    assert np.unique(cut_ids).size == cut_ids.size


@pytest.mark.parametrize("seed", [1, 2])
def test_capped_seed_depth_makes_blockwise_fragments_the_whole_volume_ones(seed):
    # with the distance transform capped (max_seed_depth) and a halo of at least the cap plus the
    # seed distance, blocks find the whole volume's seeds: on 27 blocks the stitched fragments
    # are the whole-volume fragments but for a few voxels where a flood path left the halo
    raw, _ = synthetic_em_volume((32, 64, 64), n_neurites=12, seed=seed)
    boundaries = 1.0 - ndimage.gaussian_filter(raw.astype(np.float32) / 255.0, 1.0)
    boundaries = (boundaries - boundaries.min()) / (boundaries.max() - boundaries.min())
    blocks = plan_blocks(boundaries.shape, (11, 22, 22), (6, 8, 8))
    assert len(blocks) == 27
    errors = {}
    for cap in (None, 2):
        def fragments_of(b):
            return seeded_watershed(b, min_seed_distance=2, threshold=0.5, max_seed_depth=cap)

        whole = fragments_of(boundaries)
        stitched, _ = blockwise_fragments(boundaries, fragments_of, blocks, stitch=True)
        errors[cap] = segmentation_scores(stitched, whole).adapted_rand_error
        if cap is not None:
            assert abs(np.unique(stitched).size - np.unique(whole).size) <= 2
    assert errors[2] < 0.01 < errors[None]


def test_match_overlapping_fragments_by_hand():
    a = np.array([[1, 1, 1, 1, 2, 2, 0, 0, 3, 3]])
    b = np.array([[7, 7, 7, 8, 8, 8, 9, 9, 9, 5]])
    # 1: 3 of its 4 voxels in 7, all of 7 -> match; 2: both voxels in 8, 8 has 2 of 3 in 2 -> match;
    # 3: half in 9, half in 5 (not more than half) -> none; 0 never matches
    np.testing.assert_array_equal(match_overlapping_fragments(a, b), [[1, 7], [2, 8]])
    np.testing.assert_array_equal(match_overlapping_fragments(a, b, min_overlap=0.7), [[1, 7]])
    assert match_overlapping_fragments(np.zeros((2, 2), int), np.ones((2, 2), int)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"labels_a has shape \(1, 10\) but labels_b has shape \(10,\)"):
        match_overlapping_fragments(a, b.ravel())
    with pytest.raises(ValueError, match="min_overlap must be a number in"):
        match_overlapping_fragments(a, b, min_overlap=0.4)


def test_stitching_joins_a_neuron_cut_by_every_face():
    # one object filling the volume: 8 blocks give 8 pieces, stitched back into one
    volume = np.zeros((8, 8, 8))
    blocks = plan_blocks(volume.shape, (4, 4, 4), (2, 2, 2))

    def one_piece(b):
        return seeded_watershed(b, min_seed_distance=1)

    cut, _ = blockwise_fragments(volume, one_piece, blocks)
    stitched, ids = blockwise_fragments(volume, one_piece, blocks, stitch=True)
    assert np.unique(cut).size == 8
    assert ids.tolist() == [1] and np.all(stitched == 1)
    with pytest.raises(ValueError, match="stitch_overlap must be a number in"):
        blockwise_fragments(volume, one_piece, blocks, stitch=True, stitch_overlap=1.0)
    with pytest.raises(ValueError, match="stitch must be True or False"):
        blockwise_fragments(volume, one_piece, blocks, stitch="yes")


def test_blockwise_graph_equals_the_whole_volume_graph(data):
    _, volume, affinities, _ = data
    fragments, ids = blockwise_fragments(volume, fragment_fn, plan_blocks(SHAPE, BLOCK, HALO))
    np.testing.assert_array_equal(ids, np.unique(fragments[fragments > 0]))
    offsets = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, -3, 0), (2, 0, 5))      # long-range links too
    long_affinities = affinities_from_labels(data[0], offsets)
    for values, offs in ((affinities, None), (volume[0], None), (long_affinities, offsets)):
        kwargs = {} if offs is None else {"offsets": offs}
        whole = region_adjacency_graph(fragments, values, **kwargs)
        by_block = blockwise_region_adjacency_graph(fragments, values, plan_blocks(SHAPE, (7, 9, 11)), **kwargs)
        np.testing.assert_array_equal(whole.u, by_block.u)
        np.testing.assert_array_equal(whole.v, by_block.v)
        np.testing.assert_array_equal(whole.count, by_block.count)
        np.testing.assert_allclose(whole.affinity_sum, by_block.affinity_sum, rtol=1e-12)


def test_zarr_arrays_in_and_out_give_the_same_result(data):
    _, volume, affinities, whole = data
    chunks = (5, 8, 8)
    z_volume = zarr.zeros(volume.shape, chunks=(1,) + chunks, dtype=volume.dtype)
    z_volume[...] = volume
    z_affinities = zarr.zeros(affinities.shape, chunks=(3,) + chunks, dtype=affinities.dtype)
    z_affinities[...] = affinities
    out = zarr.zeros(SHAPE, chunks=chunks, dtype=np.uint64)
    fragments_out = zarr.zeros(SHAPE, chunks=chunks, dtype=np.uint64)
    result = blockwise_segmentation(z_volume, fragment_fn, z_affinities, block_shape=BLOCK, halo=HALO,
                                    threshold=0.5, out=out, fragments_out=fragments_out)
    assert result.segmentation is out and result.fragments is fragments_out
    reference = blockwise_segmentation(volume, fragment_fn, affinities, block_shape=BLOCK, halo=HALO, threshold=0.5)
    np.testing.assert_array_equal(out[...], reference.segmentation)
    assert one_to_one(out[...], whole)


def test_a_block_that_fails_once_is_retried_and_the_result_is_unchanged(data):
    _, volume, affinities, _ = data
    reference = blockwise_segmentation(volume, fragment_fn, affinities, block_shape=BLOCK, halo=HALO, threshold=0.5)
    calls = []

    def flaky(block):
        calls.append(block.shape)
        if len(calls) == 3:                                  # the third block's first attempt
            raise OSError("connection reset by the object store")
        return fragment_fn(block)

    result = blockwise_segmentation(volume, flaky, affinities, block_shape=BLOCK, halo=HALO, threshold=0.5)
    assert len(calls) == 8 + 1                               # every block once, the failed one twice
    np.testing.assert_array_equal(result.fragments, reference.fragments)
    np.testing.assert_array_equal(result.segmentation, reference.segmentation)


def test_a_block_that_keeps_failing_raises_an_error_naming_it():
    blocks = plan_blocks((4, 4, 4), (2, 2, 4))
    attempts, retried = [], []

    def broken(block):
        attempts.append(block.index)
        if block.index == (1, 0, 0):
            raise OSError("disk full")
        return block.index

    with pytest.raises(BlockFailedError, match=r"block \(1, 0, 0\) at z 2:4, y 0:2, x 0:4 failed 3 time") as info:
        run_blocks(blocks, broken, max_attempts=3, on_retry=lambda b, n, e: retried.append((b.index, n)))
    assert info.value.block.index == (1, 0, 0) and info.value.attempts == 3
    assert isinstance(info.value.__cause__, OSError)
    assert attempts == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 0, 0), (1, 0, 0)]   # no block after it is skipped to
    assert retried == [((1, 0, 0), 1), ((1, 0, 0), 2)]


def test_bad_input_is_not_retried(data):
    _, volume, affinities, _ = data
    calls = []

    def wrong_shape(block):
        calls.append(1)
        return np.zeros(block.shape[1:2], np.uint64)

    with pytest.raises(ValueError, match="fragment_fn returned shape"):
        blockwise_fragments(volume, wrong_shape, plan_blocks(SHAPE, BLOCK, HALO))
    assert len(calls) == 1
    with pytest.raises(ValueError, match="out must have shape"):
        blockwise_fragments(volume, fragment_fn, plan_blocks(SHAPE, BLOCK), out=np.zeros((2, 2, 2), np.uint64))
    with pytest.raises(ValueError, match="spatial shape"):
        blockwise_region_adjacency_graph(np.zeros(SHAPE, np.uint64), affinities[:, :5], plan_blocks(SHAPE, BLOCK))
    with pytest.raises(ValueError, match="volume must have axes"):
        blockwise_segmentation(np.zeros((4, 4)), fragment_fn, affinities, block_shape=BLOCK, halo=HALO, threshold=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        run_blocks(plan_blocks(SHAPE, BLOCK), lambda b: None, max_attempts=0)


def test_stitching_pieces_done_apart_equal_blockwise_fragments(data):
    # what a service running blocks on separate replicas does: each block keeps its labels in
    # its stitching boxes; the matches of all boxes, joined, give blockwise_fragments(stitch=True)
    _, volume, _, _ = data
    blocks = plan_blocks(SHAPE, BLOCK, HALO)
    boxes = stitching_boxes(blocks, SHAPE)
    for i, neighbours in boxes.items():
        for j, box in neighbours:
            assert (i, box) in boxes[j]                                  # one box per pair, both ways
    cut, ids = blockwise_fragments(volume, fragment_fn, blocks)
    kept = {}
    for block in blocks:
        labels = fragment_fn(np.asarray(volume[(Ellipsis,) + block.halo]))
        core_labels = labels[block.core_in_halo]
        for j, box in boxes[block.linear_index]:
            local = labels[tuple(slice(b.start - h.start, b.stop - h.start) for b, h in zip(box, block.halo))]
            # the core's numbering, read off the cut volume: the same voxel of the core, same id
            mapping = dict(zip(core_labels.ravel().tolist(), cut[block.core].ravel().tolist()))
            kept[(block.linear_index, j)] = np.vectorize(lambda x: mapping.get(x, 0), otypes=[np.uint64])(local)
    pairs = np.concatenate([match_overlapping_fragments(kept[(i, j)], kept[(j, i)]) for (i, j) in kept if i < j])
    joined = join_fragments(ids, pairs)
    stitched, _ = blockwise_fragments(volume, fragment_fn, blocks, stitch=True)
    np.testing.assert_array_equal(joined[np.searchsorted(ids, cut[cut > 0])], stitched[cut > 0])
    with pytest.raises(ValueError, match="not in fragment_ids"):
        join_fragments([1, 2], [[1, 3]])
