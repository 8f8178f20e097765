"""Block planning, retries, and a blockwise segmentation equal to the whole-volume one."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from services.segmentation.core.blockwise import (BlockFailedError, blockwise_fragments,
                                                  blockwise_region_adjacency_graph, blockwise_segmentation,
                                                  plan_blocks, run_blocks)
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


def test_blockwise_equals_whole_volume_and_ground_truth(data):
    truth, volume, affinities, whole = data
    result = blockwise_segmentation(volume, fragment_fn, affinities, block_shape=BLOCK, halo=HALO, threshold=0.5)
    assert len(result.blocks) == 8
    # fragments cut at block faces are many more than those of the whole volume, yet the cut agrees
    assert np.unique(result.fragments).size > np.unique(fragment_fn(volume)).size
    assert one_to_one(result.segmentation, whole)
    scores = segmentation_scores(result.segmentation, truth)
    assert (scores.voi_split, scores.voi_merge, scores.adapted_rand_error) == (0.0, 0.0, 0.0)
    # other thresholds come from the same tree, block by block
    assert result.tree.n_segments(1.01) == np.unique(result.fragments[result.fragments > 0]).size


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
