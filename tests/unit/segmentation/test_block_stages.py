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


def _cut_neurites():
    """A synthetic volume whose neurites cross the block faces, its boundaries and tiling."""
    raw, _ = synthetic_em_volume(SHAPE, n_neurites=6, seed=0)
    blocks = plan_blocks(SHAPE, BLOCK, HALO)
    boundaries = np.zeros(SHAPE, np.float32)
    P.classical_boundaries(raw, boundaries, P.smoothing_blocks(SHAPE, BLOCK, (1.0, 1.0, 1.0)),
                           sigma_voxels=(1.0, 1.0, 1.0))
    return boundaries, blocks


def test_stitched_fragments_into_a_write_only_output_equal_the_cores_stitching():
    from services.segmentation.core.blockwise import blockwise_fragments
    from services.segmentation.core.watershed import seeded_watershed

    boundaries, blocks = _cut_neurites()
    expected, expected_ids = blockwise_fragments(
        boundaries, lambda b: seeded_watershed(b, min_seed_distance=2, threshold=0.5), blocks, stitch=True)
    unstitched = np.zeros(SHAPE, np.uint64)
    P.watershed_fragments(boundaries, unstitched, blocks)
    assert np.unique(expected).size < np.unique(unstitched).size          # stitching joined something

    class WriteOnly:                      # like the store's ArrayWriter: slice assignment, no reads
        def __init__(self):
            self.data, self.shape = np.zeros(SHAPE, np.uint64), SHAPE

        def __setitem__(self, selection, value):
            self.data[selection] = value

    out = WriteOnly()
    ids = P.stitched_fragments(boundaries, out, blocks, np.zeros(SHAPE, np.uint64))
    np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal(ids, expected_ids)


def test_blocks_stitching_labels_stitched_apart_give_the_one_call_fragments():
    boundaries, blocks = _cut_neurites()
    expected = np.zeros(SHAPE, np.uint64)
    P.stitched_fragments(boundaries, expected, blocks, np.zeros(SHAPE, np.uint64))
    mosaic = P.BlockMosaic(blocks, [boundaries[b.core] for b in blocks], np.float32)
    pieces, stitching = [], []
    for k, block in enumerate(blocks):
        pieces.append(np.zeros(block.shape, np.uint64))
        stitching.append(np.zeros(tuple(s.stop - s.start for s in block.halo), np.uint64))
        P.block_fragments(mosaic, pieces[k], blocks, k, stitching_out=stitching[k])
    ids, joined = P.stitch_pairs(blocks, lambda i, j, box: stitching[i][P._local(box, blocks[i].halo)], SHAPE)
    assert ids.size and np.all(joined <= ids)                             # pieces take the lowest id of a group
    merged = P.rename_fragments(P.BlockMosaic(blocks, pieces, np.uint64)[...], ids, joined)
    np.testing.assert_array_equal(merged, expected)


def test_rename_fragments_renames_only_the_stitched_ids():
    fragments = np.array([[[0, 1, 5, 9, 12]]], np.uint64)
    renamed = P.rename_fragments(fragments, np.array([5, 9], np.uint64), np.array([1, 1], np.uint64))
    assert renamed.tolist() == [[[0, 1, 1, 1, 12]]]
