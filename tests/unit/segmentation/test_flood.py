"""The bucket-queue flood against scikit-image's watershed on the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import watershed

from services.segmentation.core.metrics import segmentation_scores
from services.segmentation.core.synthetic import synthetic_em_volume
from services.segmentation.core.watershed import flood_watershed, quantize_boundaries, seeded_watershed


@pytest.mark.parametrize("shape, connectivity", [((30, 40, 50), 1), ((30, 40, 50), 2), ((30, 40, 50), 3),
                                                 ((200, 300), 1), ((200, 300), 2)])
@pytest.mark.parametrize("with_mask", [False, True])
def test_flood_equals_skimage_where_no_level_ties(shape, connectivity, with_mask):
    # every voxel a distinct level, so the flood order is fully determined: the partitions must
    # be identical voxel for voxel, not merely similar
    rng = np.random.default_rng(connectivity)
    n = int(np.prod(shape))
    levels = rng.permutation(n).reshape(shape)
    markers = np.zeros(shape, np.int32)
    markers.flat[rng.choice(n, 40, replace=False)] = np.arange(1, 41)
    mask = rng.random(shape) > 0.2 if with_mask else None
    expected = watershed(levels, markers, mask=mask, connectivity=connectivity)
    got = flood_watershed(levels, markers, mask=mask, connectivity=connectivity, n_levels=n)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, expected)


def test_flood_by_hand():
    # two basins meet at the ridge (level 5): it is reached from both sides at the same time and
    # goes to the basin whose queue reached it first; FIFO within a level, seeds in raster order
    levels = np.array([[0, 1, 5, 2, 0]])
    assert flood_watershed(levels, np.array([[1, 0, 0, 0, 2]]), connectivity=1).tolist() == [[1, 1, 1, 2, 2]]
    # a voxel below the level being flooded is taken next, as from a heap: the lower path wins
    levels = np.array([[0, 9, 9, 9],
                       [9, 9, 1, 9],
                       [9, 9, 9, 0]])
    markers = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]])
    np.testing.assert_array_equal(flood_watershed(levels, markers, connectivity=2),
                                  watershed(levels, markers, connectivity=2))
    # unreachable voxels (cut off by the mask) stay 0; voxels outside the mask are 0
    mask = np.array([[True, True, False, True, True]])
    assert flood_watershed(np.zeros((1, 5), int), np.array([[1, 0, 0, 0, 0]]), mask=mask).tolist() == \
        [[1, 1, 0, 0, 0]]


def test_seeded_watershed_bucket_matches_skimage_on_synthetic_em():
    # quantised to 256 levels the flood meets ties the float map does not have; the partitions
    # then differ only on a few boundary voxels, which the scores show
    raw, truth = synthetic_em_volume((24, 48, 48), n_neurites=8, seed=3)
    boundaries = 1.0 - ndimage.gaussian_filter(raw.astype(np.float32) / 255.0, 1.0)
    boundaries = (boundaries - boundaries.min()) / (boundaries.max() - boundaries.min())
    options = dict(min_seed_distance=3, threshold=0.5)
    fast = seeded_watershed(boundaries, method="bucket", **options)
    reference = seeded_watershed(boundaries, method="skimage", **options)
    assert fast.max() == reference.max()                           # the same seeds
    agreement = segmentation_scores(fast, reference)          # no 0: every voxel counts
    assert agreement.adapted_rand_error < 0.02
    # at 65,536 levels this map has no ties left that matter: the same partition, voxel for voxel
    fine = seeded_watershed(boundaries, method="bucket", levels=65536, **options)
    np.testing.assert_array_equal(fine, reference)


def test_quantize_boundaries():
    np.testing.assert_array_equal(quantize_boundaries(np.array([0.0, 0.25, 0.5, 1.0]), levels=5), [0, 1, 2, 4])
    # outside [0, 1]: the data's range
    np.testing.assert_array_equal(quantize_boundaries(np.array([-2.0, 0.0, 2.0]), levels=3), [0, 1, 2])
    np.testing.assert_array_equal(quantize_boundaries(np.array([0.2, 0.4]), levels=3, value_range=(0.0, 0.4)),
                                  [1, 2])
    with pytest.raises(ValueError, match="levels must be an integer in 2 .. 65536"):
        quantize_boundaries(np.zeros(3), levels=1)
    with pytest.raises(ValueError, match="value_range"):
        quantize_boundaries(np.zeros(3), value_range=(1.0, 0.0))


@pytest.mark.parametrize("call, message", [
    (lambda: flood_watershed(np.zeros((4,), int), np.zeros((4,), int)), "2-D or 3-D"),
    (lambda: flood_watershed(np.zeros((4, 4), int), np.zeros((4, 5), int)), "one shape"),
    (lambda: flood_watershed(np.zeros((4, 4)), np.zeros((4, 4), int)), "levels must be integers"),
    (lambda: flood_watershed(np.full((4, 4), -1), np.zeros((4, 4), int)), "levels must be integers"),
    (lambda: flood_watershed(np.zeros((4, 4), int), np.full((4, 4), -1)), "markers must be integers"),
    (lambda: flood_watershed(np.zeros((4, 4), int), np.zeros((4, 4), int), connectivity=3), "connectivity"),
    (lambda: flood_watershed(np.zeros((4, 4), int), np.zeros((4, 4), int), mask=np.ones((3, 4), bool)), "mask"),
    (lambda: seeded_watershed(np.zeros((4, 4, 4)), method="heap"), "method must be one of"),
    (lambda: seeded_watershed(np.zeros((4, 4, 4)), levels=70000), "levels must be an integer"),
])
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_max_seed_depth_makes_one_seed_of_a_deep_plateau():
    # two 9 x 9 squares joined by a neck 5 wide: the distance transform peaks at 5 in each
    # square and is 3 in the neck, two seeds; capped at depth 2 the squares and the neck are one
    # plateau, so one seed, one fragment
    boundaries = np.ones((1, 11, 31))
    boundaries[0, 1:10, 1:10] = boundaries[0, 1:10, 21:30] = boundaries[0, 3:8, 10:21] = 0.0
    two = seeded_watershed(boundaries, min_seed_distance=3, per_section=True, threshold=0.5)
    assert np.unique(two[two > 0]).size > 1
    one = seeded_watershed(boundaries, min_seed_distance=3, per_section=True, threshold=0.5, max_seed_depth=2)
    assert np.unique(one).tolist() == [1]
    with pytest.raises(ValueError, match="max_seed_depth must be a positive number"):
        seeded_watershed(boundaries, max_seed_depth=0)


@pytest.mark.parametrize("shape, sampling", [((20, 30, 40), None), ((20, 30, 40), (2.0, 1.0, 0.5)),
                                             ((50, 60), None), ((50, 60), (3.0, 1.0)), ((1, 30, 40), None)])
def test_distance_transform_equals_scipy(shape, sampling):
    from services.segmentation.core.watershed import _distance_transform

    rng = np.random.default_rng(len(shape))
    for density in (0.3, 0.05, 0.001):
        foreground = rng.random(shape) > density
        foreground.flat[0] = False                              # at least one background voxel
        np.testing.assert_array_equal(_distance_transform(foreground, sampling),
                                      ndimage.distance_transform_edt(foreground, sampling=sampling))
    everything = np.ones(shape, bool)                            # no background: scipy's convention
    np.testing.assert_array_equal(_distance_transform(everything, sampling),
                                  ndimage.distance_transform_edt(everything, sampling=sampling))
