"""The block-by-block stages of SegmentBlocks / MergeSegmentBlocks, without a server.

Each block's core in an array of its own (:class:`BlockSink`), read back as one volume
(:class:`BlockMosaic`), gives exactly what the whole-volume stages give: the same boundaries,
the same fragments with the same ids (:func:`block_fragments`), whatever order the blocks run in.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.common.errors import RequestError
from services.segmentation import pipeline as P
from services.segmentation.core import plan_blocks, synthetic_em_volume

SHAPE = (20, 40, 36)                 # not a multiple of the block: the last blocks are smaller
BLOCK, HALO = (8, 16, 16), (2, 4, 4)


@pytest.mark.parametrize("indices, words", [
    ([], "empty"),
    ([0, 12], "block_indices[1] = 12 is not a block of the tiling, which has 12 blocks (0 .. 11)"),
    ([-1], "block_indices[0] = -1"),
    ([3, 4, 3], "block_indices[2] = 3 is named twice"),
])
def test_block_indices_are_checked_naming_the_position(indices, words):
    with pytest.raises(RequestError) as info:
        P.check_block_indices(indices, 12)
    assert words in info.value.message and info.value.field == "block_indices"


def test_a_mosaic_reads_like_the_volume_it_was_cut_from():
    rng = np.random.default_rng(0)
    volume = rng.random((3, *SHAPE)).astype(np.float32)          # with a leading channel axis
    blocks = plan_blocks(SHAPE, BLOCK)
    mosaic = P.BlockMosaic(blocks, [volume[(slice(None),) + b.core] for b in blocks], np.float32)
    assert mosaic.shape == volume.shape and mosaic.dtype == np.float32
    for selection in [(Ellipsis,), (slice(None), slice(3, 17), slice(10, 33), slice(0, 36)), (1, 7),
                      (slice(None), 19, slice(15, 17)), (Ellipsis, slice(30, 36))]:
        np.testing.assert_array_equal(mosaic[selection], volume[selection], err_msg=str(selection))
    np.testing.assert_array_equal(np.asarray(mosaic), volume)


def test_a_sink_writes_its_block_only():
    blocks = plan_blocks(SHAPE, BLOCK)
    block = blocks[5]
    own = np.zeros(block.shape, np.uint64)
    sink = P.BlockSink(own, block, SHAPE, id_shift=100)
    sink[block.core] = np.arange(own.size, dtype=np.uint64).reshape(own.shape)
    assert own.flat[0] == 0 and own.flat[1] == 101          # 0 (background) stays 0, ids are shifted
    assert sink.shape == SHAPE
    with pytest.raises(ValueError, match="outside block"):
        sink[blocks[0].core] = 1


def test_blocks_one_at_a_time_give_the_whole_volume_stages_results():
    raw, _ = synthetic_em_volume(SHAPE, n_neurites=6, seed=0)
    blocks = plan_blocks(SHAPE, BLOCK, HALO)
    sigma = (1.0, 1.0, 1.0)
    smoothing = P.smoothing_blocks(SHAPE, BLOCK, sigma)
    assert [b.core for b in smoothing] == [b.core for b in blocks]           # block k is block k in both tilings
    whole = np.zeros(SHAPE, np.float32)
    P.classical_boundaries(raw, whole, smoothing, sigma_voxels=sigma)
    fragments = np.zeros(SHAPE, np.uint64)
    ids = P.watershed_fragments(whole, fragments, blocks)

    assert len(blocks) == 27
    order = np.random.default_rng(2).permutation(len(blocks)).tolist()     # any order: each block alone
    values = [None] * len(blocks)
    for k in order:
        values[k] = np.zeros(blocks[k].shape, np.float32)
        P.classical_boundaries(raw, P.BlockSink(values[k], smoothing[k], SHAPE), [smoothing[k]], sigma_voxels=sigma)
    mosaic = P.BlockMosaic(blocks, values, np.float32)
    np.testing.assert_array_equal(mosaic[...], whole)
    pieces, found = [None] * len(blocks), []
    for k in order:
        pieces[k] = np.zeros(blocks[k].shape, np.uint64)
        found.append(P.block_fragments(mosaic, pieces[k], blocks, k))
    np.testing.assert_array_equal(P.BlockMosaic(blocks, pieces, np.uint64)[...], fragments)
    np.testing.assert_array_equal(np.unique(np.concatenate(found)), ids)
    capacity = P.fragment_capacity(blocks)
    assert capacity == 8 * 16 * 16
    for k, piece in enumerate(pieces):                 # block k's ids are k * capacity + 1, ...
        present = piece[piece > 0]
        assert present.min() > k * capacity and present.max() <= (k + 1) * capacity


def test_affinities_per_block_give_the_whole_volume_fragments():
    rng = np.random.default_rng(1)
    from scipy import ndimage

    affinities = np.stack([ndimage.gaussian_filter(rng.random(SHAPE), 2.0) for _ in range(3)]).astype(np.float32)
    affinities = (affinities - affinities.min()) / (affinities.max() - affinities.min())
    blocks = plan_blocks(SHAPE, BLOCK, HALO)
    whole = np.zeros(SHAPE, np.uint64)
    ids = P.watershed_fragments(affinities, whole, blocks, affinity_reduction="mean", min_seed_distance=1)
    mosaic = P.BlockMosaic(blocks, [affinities[(slice(None),) + b.core] for b in blocks], np.float32)
    pieces = [np.zeros(b.shape, np.uint64) for b in blocks]
    found = [P.block_fragments(mosaic, pieces[k], blocks, k, affinity_reduction="mean", min_seed_distance=1)
             for k in range(len(blocks))]
    np.testing.assert_array_equal(P.BlockMosaic(blocks, pieces, np.uint64)[...], whole)
    np.testing.assert_array_equal(np.unique(np.concatenate(found)), ids)
