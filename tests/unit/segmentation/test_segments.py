"""The segment table against scikit-image's regionprops, whole and block by block."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from skimage.measure import regionprops_table

from services.segmentation.core.blockwise import plan_blocks
from services.segmentation.core.segments import SEGMENT_TABLE_COLUMNS, SegmentTableAccumulator, segment_table


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 7, size=(3, 4, 5))
    labels = np.kron(coarse, np.ones((3, 2, 2), int))[:8, :7, :9]          # blocky, some labels repeat apart
    return (labels * 1000).astype(np.uint64)                                  # ids far from 0 .. n


def test_known_values():
    labels = np.zeros((2, 4, 6), np.uint32)
    labels[1, 1:3, 2:5] = 9                                   # 6 voxels at z 1, y 1..2, x 2..4
    labels[0, 0, 0] = 2
    table = segment_table(labels, voxel_size=(40.0, 4.0, 5.0))
    assert list(table) == list(SEGMENT_TABLE_COLUMNS)
    assert table["id"].tolist() == [2, 9] and table["id"].dtype == np.uint64
    assert table["voxel_count"].tolist() == [1, 6]
    assert [table[f"bbox_{a}0"][1] for a in "zyx"] == [1, 1, 2]
    assert [table[f"bbox_{a}1"][1] for a in "zyx"] == [2, 3, 5]            # exclusive, like slices
    assert [table[f"centroid_{a}"][1] for a in "zyx"] == [1.0, 1.5, 3.0]
    assert [table[f"physical_centroid_{a}"][1] for a in "zyx"] == [40.0, 6.0, 15.0]
    assert table["volume"].tolist() == [800.0, 4800.0]


def test_matches_regionprops(labels):
    table = segment_table(labels)
    reference = regionprops_table(labels.astype(np.int64), properties=("label", "area", "bbox", "centroid"))
    np.testing.assert_array_equal(table["id"], reference["label"])
    np.testing.assert_array_equal(table["voxel_count"], reference["area"])
    for k, column in enumerate(SEGMENT_TABLE_COLUMNS[3:9]):
        np.testing.assert_array_equal(table[column], reference[f"bbox-{k}"])
    for k, axis in enumerate("zyx"):
        np.testing.assert_allclose(table[f"centroid_{axis}"], reference[f"centroid-{k}"])


def test_block_by_block_equals_whole(labels):
    whole = segment_table(labels, voxel_size=(30.0, 8.0, 8.0))
    stored = zarr.zeros(labels.shape, chunks=(4, 4, 4), dtype=labels.dtype)
    stored[...] = labels
    by_block = segment_table(stored, voxel_size=(30.0, 8.0, 8.0), blocks=plan_blocks(labels.shape, (3, 4, 4)))
    for column in SEGMENT_TABLE_COLUMNS:
        np.testing.assert_allclose(by_block[column], whole[column], rtol=1e-12, err_msg=column)
    # the accumulator also takes blocks in any order
    accumulator = SegmentTableAccumulator()
    for block in reversed(plan_blocks(labels.shape, (5, 5, 5))):
        accumulator.add(labels[block.core], offset=tuple(s.start for s in block.core))
    np.testing.assert_array_equal(accumulator.table()["bbox_x1"], whole["bbox_x1"])


def test_empty_volume_gives_an_empty_table():
    table = segment_table(np.zeros((2, 2, 2), np.uint8))
    assert all(len(table[c]) == 0 for c in SEGMENT_TABLE_COLUMNS)


@pytest.mark.parametrize("call, message", [
    (lambda: segment_table(np.zeros((3, 3), int)), r"labels must be a 3-D .*\(3, 3\)"),
    (lambda: segment_table(np.zeros((3, 3, 3))), "integer"),
    (lambda: segment_table(np.zeros((3, 3, 3), int), voxel_size=(1.0, 0.0, 1.0)), "voxel_size"),
    (lambda: segment_table(np.zeros((3, 3, 3), int), voxel_size=(1.0, 1.0)), "voxel_size"),
    (lambda: segment_table(np.zeros((3, 3, 3), int), blocks=plan_blocks((4, 4, 4), (2, 2, 2))), "beyond"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
