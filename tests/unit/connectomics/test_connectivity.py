"""Connectivity matrices: hand-computed normalisations, equality with dipy, edge cases, speed."""

from __future__ import annotations

import doctest
import time

import numpy as np
import pytest
from dipy.tracking.streamline import Streamlines, length as dipy_length
from dipy.tracking.utils import connectivity_matrix

from services.connectomics.core import connectivity
from services.connectomics.core.connectivity import (connectivity_matrices, endpoint_labels, region_volumes,
                                                     streamline_lengths)


def test_docstring_examples():
    result = doctest.testmod(connectivity, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.fixture
def hand_example():
    """3 streamlines over 3 regions on a 5 x 1 x 1 grid of 2 mm voxels (centres at x = 0, 2, 4, 6, 8 mm).

    Labels along x: 1 1 2 0 3, so region 1 is 2 voxels (16 mm^3), regions 2 and 3 one voxel (8 mm^3).
    """
    parcellation = np.array([1, 1, 2, 0, 3]).reshape(5, 1, 1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    streamlines = [
        np.array([[0.0, 0, 0], [2, 0, 0], [4, 0, 0]]),     # region 1 -> 2, 4 mm
        np.array([[0.0, 0, 0], [4, 3, 0], [8, 0, 0]]),     # region 1 -> 3, 5 + 5 = 10 mm (middle point off the grid)
        np.array([[4.0, 0, 0], [2, 0, 0]]),                # region 2 -> 1, 2 mm
    ]
    return streamlines, affine, parcellation


def test_hand_example_every_normalisation(hand_example):
    streamlines, affine, parcellation = hand_example
    conn = connectivity_matrices(streamlines, affine, parcellation)
    assert conn.labels.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(conn.matrices["count"], [[0, 2, 1], [2, 0, 0], [1, 0, 0]])
    assert conn.matrices["count"].dtype == np.int64
    np.testing.assert_array_equal(conn.region_volumes_voxels, [2, 1, 1])
    np.testing.assert_allclose(conn.region_volumes_mm3, [16.0, 8.0, 8.0])
    # volume: count / sqrt(V_a V_b) in mm^3
    v12, v13 = 2 / np.sqrt(16 * 8), 1 / np.sqrt(16 * 8)
    np.testing.assert_allclose(conn.matrices["volume"], [[0, v12, v13], [v12, 0, 0], [v13, 0, 0]])
    # length: sum of 1 / length over each pair's streamlines
    np.testing.assert_allclose(conn.matrices["length"], [[0, 1 / 4 + 1 / 2, 1 / 10], [0.75, 0, 0], [0.1, 0, 0]])
    np.testing.assert_allclose(conn.mean_length_mm, [[0, 3.0, 10.0], [3.0, 0, 0], [10.0, 0, 0]])
    assert (conn.n_streamlines, conn.n_used, conn.n_unassigned, conn.n_length_filtered) == (3, 3, 0, 0)


def test_length_filter_and_background(hand_example):
    streamlines, affine, parcellation = hand_example
    streamlines = streamlines + [np.array([[0.0, 0, 0], [6, 0, 0]]),      # ends in background (x = 6)
                                 np.array([[0.0, 0, 0], [40, 0, 0]])]     # ends outside the volume
    conn = connectivity_matrices(streamlines, affine, parcellation, min_length_mm=3, max_length_mm=9,
                                 normalisations=("count",))
    # kept: the 4 mm (1-2) and 6 mm (background) ones; dropped: 10 mm, 2 mm, 40 mm
    np.testing.assert_array_equal(conn.matrices["count"], [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert (conn.n_used, conn.n_unassigned, conn.n_length_filtered) == (1, 1, 3)
    assert set(conn.matrices) == {"count"}
    every = connectivity_matrices(streamlines, affine, parcellation, normalisations=("count",))
    assert every.mean_length_mm is None and (every.n_used, every.n_unassigned) == (3, 2)
    assert endpoint_labels(streamlines, affine, parcellation).tolist() == [[1, 1, 2, 1, 1], [2, 3, 1, 0, 0]]


def test_diagonal_and_labels_order(hand_example):
    _, affine, parcellation = hand_example
    streamlines = [np.array([[0.0, 0, 0], [2, 0, 0]]), np.array([[8.0, 0, 0], [4, 0, 0]])]   # 1 -> 1, 3 -> 2
    conn = connectivity_matrices(streamlines, affine, parcellation, labels=[3, 1, 2])
    assert conn.labels.tolist() == [3, 1, 2]
    np.testing.assert_array_equal(conn.matrices["count"], [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(conn.region_volumes_mm3, [8.0, 16.0, 8.0])
    # a region that is not listed counts as unassigned
    only = connectivity_matrices(streamlines, affine, parcellation, labels=[1, 2])
    assert only.matrices["count"].tolist() == [[1, 0], [0, 0]] and only.n_unassigned == 1


def _random_streamlines(rng, n, shape, affine):
    """Random walks inside a grid (voxel coordinates within [0, shape - 1]), mapped to world mm."""
    counts = rng.integers(2, 60, n)
    starts = rng.uniform(0, np.array(shape) - 1, (n, 3))
    out = []
    for start, count in zip(starts, counts):
        walk = start + np.cumsum(rng.normal(0, 0.7, (count, 3)), axis=0)
        walk = np.clip(walk, 0, np.array(shape) - 1.0001)
        out.append(walk @ affine[:3, :3].T + affine[:3, 3])
    return Streamlines(out)


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("oblique", [False, True])
def test_equals_dipy_connectivity_matrix(oblique):
    rng = np.random.default_rng(1)
    shape = (17, 13, 11)
    parcellation = rng.choice([0, 0, 2, 3, 7, 12, 40], size=shape)       # gaps in the labels, much background
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    if oblique:
        affine[:3, :3] = _rotation(rng) @ affine[:3, :3]
        affine[:3, 3] = [-20.0, 14.0, 3.5]
    streamlines = _random_streamlines(rng, 3000, shape, affine)
    ours = connectivity_matrices(streamlines, affine, parcellation)
    theirs = connectivity_matrix(streamlines, affine, parcellation)
    assert ours.labels.tolist() == [2, 3, 7, 12, 40]
    np.testing.assert_array_equal(ours.matrices["count"], theirs[np.ix_(ours.labels, ours.labels)])
    # dipy's weighted variant with 1/length weights is our length normalisation
    weights = 1.0 / dipy_length(streamlines)
    weighted = connectivity_matrix(streamlines, affine, parcellation, weights=weights)
    np.testing.assert_allclose(ours.matrices["length"], weighted[np.ix_(ours.labels, ours.labels)])
    # everything dipy counted between labelled regions is ours: the rest touched the background
    assert ours.n_used == int(np.triu(theirs[np.ix_(ours.labels, ours.labels)]).sum())
    assert ours.n_used + ours.n_unassigned == len(streamlines)


def test_lengths_match_dipy_and_sliced_sequences():
    rng = np.random.default_rng(2)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    streamlines = _random_streamlines(rng, 500, (10, 10, 10), affine)
    np.testing.assert_allclose(streamline_lengths(streamlines), dipy_length(streamlines))
    np.testing.assert_allclose(streamline_lengths(list(streamlines)), dipy_length(streamlines))
    # a sliced ArraySequence shares the buffer with offsets that skip streamlines
    view = streamlines[::3]
    parcellation = rng.integers(0, 4, (10, 10, 10))
    ours = connectivity_matrices(view, affine, parcellation)
    theirs = connectivity_matrix(Streamlines(list(view)), affine, parcellation)
    np.testing.assert_array_equal(ours.matrices["count"], theirs[np.ix_(ours.labels, ours.labels)])
    assert streamline_lengths([]).shape == (0,)


def test_region_volumes():
    parcellation = np.array([[[0, 1, 1], [5, 5, 5]]])
    voxels, mm3 = region_volumes(parcellation, np.diag([1.0, 2.0, 3.0, 1.0]), [5, 1, 9])
    assert voxels.tolist() == [3, 2, 0] and mm3.tolist() == [18.0, 12.0, 0.0]


def test_empty_tractogram_and_bad_arguments(hand_example):
    _, affine, parcellation = hand_example
    conn = connectivity_matrices([], affine, parcellation)
    assert conn.matrices["count"].shape == (3, 3) and conn.matrices["count"].sum() == 0
    with pytest.raises(ValueError, match="unknown normalisation"):
        connectivity_matrices([], affine, parcellation, normalisations=("count", "fiber_density"))
    with pytest.raises(ValueError, match="3-D integer"):
        connectivity_matrices([], affine, parcellation.astype(float))
    with pytest.raises(ValueError, match="min_length_mm <= max_length_mm"):
        connectivity_matrices([], affine, parcellation, min_length_mm=5, max_length_mm=1)
    with pytest.raises(ValueError, match="3-D points"):
        connectivity_matrices([np.zeros((4, 2))], affine, parcellation)


def test_faster_than_dipy():
    """Binning counts only endpoints; dipy's builds an array of them in a Python loop (~200,000/s)."""
    rng = np.random.default_rng(3)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    streamlines = _random_streamlines(rng, 20000, (30, 30, 30), affine)
    parcellation = rng.integers(0, 90, (30, 30, 30))

    def best(fn):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    ours = best(lambda: connectivity_matrices(streamlines, affine, parcellation, normalisations=("count",)))
    theirs = best(lambda: connectivity_matrix(streamlines, affine, parcellation))
    assert ours < theirs, (ours, theirs)
