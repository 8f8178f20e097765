"""The synthetic EM generator, and perfect boundary maps and affinities of label volumes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label as connected_components

from services.segmentation.core.synthetic import (affinities_from_labels, boundary_map_from_labels,
                                                  synthetic_em_volume)
from services.segmentation.core.watershed import affinities_to_boundaries

SHAPE = (16, 28, 28)


@pytest.fixture(scope="module")
def volume():
    return synthetic_em_volume(SHAPE, n_neurites=6, seed=3)


def test_same_seed_same_volume_other_seed_other_volume(volume):
    raw, labels = volume
    again = synthetic_em_volume(SHAPE, n_neurites=6, seed=3)
    np.testing.assert_array_equal(raw, again.raw)
    np.testing.assert_array_equal(labels, again.labels)
    other = synthetic_em_volume(SHAPE, n_neurites=6, seed=4)
    assert not np.array_equal(labels, other.labels)


def test_types_ranges_and_uint8(volume):
    raw, labels = volume
    assert raw.shape == labels.shape == SHAPE
    assert raw.dtype == np.float32 and labels.dtype == np.uint64
    assert 0.0 <= raw.min() and raw.max() <= 1.0
    ids = np.unique(labels)
    assert ids[ids > 0].tolist() == list(range(1, int(labels.max()) + 1))      # numbered 1 .. n
    assert int(labels.max()) >= 4
    raw8, labels8 = synthetic_em_volume(SHAPE, n_neurites=6, seed=3, dtype="uint8")
    assert raw8.dtype == np.uint8
    np.testing.assert_array_equal(labels8, labels)
    np.testing.assert_allclose(raw8 / 255.0, raw, atol=0.5 / 255 + 1e-6)


def test_neurons_are_dense_connected_and_thick(volume):
    _, labels = volume
    # densely packed: only a small fraction is extracellular space (label 0)
    assert (labels == 0).mean() < 0.04
    # each label one 6-connected piece
    for label in range(1, int(labels.max()) + 1):
        assert connected_components(labels == label, connectivity=1).max() == 1
    # every neuron voxel lies in the 3x3x3 neighbourhood of a voxel whose whole neighbourhood shares its label
    interior = ndimage.maximum_filter(labels, size=3, mode="nearest") == ndimage.minimum_filter(
        labels, size=3, mode="nearest")
    covered = ndimage.binary_dilation(interior & (labels > 0), structure=np.ones((3, 3, 3), bool))
    assert covered[labels > 0].all()


def test_dense_option_labels_every_voxel():
    _, labels = synthetic_em_volume((12, 20, 20), n_neurites=4, seed=1, extracellular=False)
    assert labels.min() >= 1


def test_membranes_are_dark_and_blur_and_noise_act(volume):
    raw, labels = volume
    edge = boundary_map_from_labels(labels, connectivity=1).astype(bool) | (labels == 0)
    assert raw[edge].mean() < raw[~edge].mean() - 0.25
    sharp, _ = synthetic_em_volume(SHAPE, n_neurites=6, seed=3, blur_sigma=0.0, noise_std=0.0)
    assert np.allclose(sharp[edge], 0.15)              # the membrane grey level, exactly, without blur or noise
    thick, _ = synthetic_em_volume(SHAPE, n_neurites=6, seed=3, blur_sigma=0.0, noise_std=0.0, membrane_width=4)
    assert np.count_nonzero(np.isclose(thick, 0.15)) > np.count_nonzero(np.isclose(sharp, 0.15))
    anisotropic, _ = synthetic_em_volume(SHAPE, n_neurites=6, seed=3, blur_sigma=(0.5, 2.0, 2.0))
    assert anisotropic.shape == SHAPE


@pytest.mark.parametrize("kwargs, name", [
    (dict(shape=(16, 16)), "shape"),
    (dict(shape=(2, 16, 16)), "shape"),
    (dict(shape=(8, 8, 8, 8)), "shape"),
    (dict(n_neurites=0), "n_neurites"),
    (dict(noise_std=float("nan")), "noise_std"),
    (dict(membrane_width=0.5), "membrane_width"),
    (dict(blur_sigma=(1.0, 1.0)), "blur_sigma"),
    (dict(radius_range=(5.0, 2.0)), "radius_range"),
    (dict(dtype="int16"), "dtype"),
])
def test_bad_options_raise_value_error_naming_them(kwargs, name):
    kwargs = {"shape": (8, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=name):
        synthetic_em_volume(**kwargs)


def test_boundary_map_marks_both_sides_and_not_the_volume_faces():
    labels = np.ones((3, 5, 5), np.uint32)
    labels[:, :, 3:] = 2
    faces = boundary_map_from_labels(labels, connectivity=1)
    assert faces.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(faces[1, 2]), [2, 3])       # one voxel each side
    assert faces[:, :, [0, 1, 4]].sum() == 0                                   # volume faces are not boundaries
    # a single voxel of another label: the 26-neighbourhood marks its whole 3x3x3 cube, the 6 only its faces
    dot = np.zeros((5, 5, 5), np.uint8)
    dot[2, 2, 2] = 1
    assert boundary_map_from_labels(dot).sum() == 27
    assert boundary_map_from_labels(dot, connectivity=1).sum() == 7
    with pytest.raises(ValueError, match=r"labels must be a 3-D.*\(5, 5\)"):
        boundary_map_from_labels(np.zeros((5, 5), int))
    with pytest.raises(ValueError, match="connectivity"):
        boundary_map_from_labels(dot, connectivity=2)


def test_affinity_convention_by_brute_force():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=(3, 4, 5))
    offsets = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, -2, 0), (2, 0, 3))
    affs = affinities_from_labels(labels, offsets)
    assert affs.shape == (5, 3, 4, 5) and affs.dtype == np.float32
    for c, offset in enumerate(offsets):
        for p in np.ndindex(labels.shape):
            q = tuple(np.subtract(p, offset))                 # aff[c, p] links p with p - offsets[c]
            inside = all(0 <= qi < n for qi, n in zip(q, labels.shape))
            expected = inside and labels[p] == labels[q] and labels[p] != 0
            assert affs[(c,) + p] == float(expected), (c, p)


def test_boundaries_from_perfect_affinities_are_the_six_neighbour_boundary_map(volume):
    _, labels = volume
    dense = labels + 1                                       # no background: 0 has affinity 0 to itself
    np.testing.assert_array_equal(affinities_to_boundaries(affinities_from_labels(dense)),
                                  boundary_map_from_labels(dense, connectivity=1))


def test_affinities_reject_bad_offsets_and_shapes():
    labels = np.ones((2, 2, 2), int)
    with pytest.raises(ValueError, match="offsets"):
        affinities_from_labels(labels, offsets=((1, 0),))
    with pytest.raises(ValueError, match="offsets"):
        affinities_from_labels(labels, offsets=((0, 0, 0),))
    with pytest.raises(ValueError, match=r"labels must be a 3-D.*\(2, 2, 2, 2\)"):
        affinities_from_labels(np.ones((2, 2, 2, 2), int))
    with pytest.raises(ValueError, match="integer"):
        affinities_from_labels(np.ones((2, 2, 2)))
