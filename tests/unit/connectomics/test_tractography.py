"""Seeding, the size guard, parallel tracking (same streamlines for any process count, progress,
cancelling), the length filter, direction fields and TRK/TCK files."""

from __future__ import annotations

import doctest
import glob
import multiprocessing
import os
import time

import numpy as np
import pytest
from dipy.tracking.streamline import Streamlines

from services.connectomics.core import tractography
from services.connectomics.core.connectivity import connectivity_matrices, streamline_lengths
from services.connectomics.core.diffusion import fit_csa, fit_dti, make_gradient_table, tracking_support
from services.connectomics.core.phantom import diffusion_phantom
from services.connectomics.core.tractography import (DirectionField, TrackingPool, TrackingTooLargeError,
                                                     check_tracking_size,
                                                     direction_field_from_sh, direction_field_from_tensor,
                                                     estimate_tracking, load_tractogram, save_tractogram,
                                                     seeds_from_mask, track)


def test_docstring_examples():
    result = doctest.testmod(tractography, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


class Setup:
    """The phantom with its FA, CSA field and seeds, built once for the module."""

    def __init__(self):
        self.ph = diffusion_phantom(size=20, n_directions=45, snr=30, seed=0)
        ph = self.ph
        self.gtab = make_gradient_table(ph.bvals, ph.bvecs)
        self.dti = fit_dti(ph.dwi, self.gtab, mask=ph.mask)
        self.fa = self.dti.fa.astype(np.float64)
        self.seed_mask = ph.mask & (self.fa > 0.2)
        self.support = tracking_support((self.fa >= 0.2) | self.seed_mask, ph.mask)
        self.csa = fit_csa(ph.dwi, self.gtab, mask=self.support, sh_order_max=6)
        self.field = direction_field_from_sh(self.csa.shcoeff, mask=self.support, subtract_minimum=True)
        self.seeds = seeds_from_mask(self.seed_mask, ph.affine, seeds_per_voxel=1, seed=0)


@pytest.fixture(scope="module")
def setup():
    return Setup()


def _pairs(streamlines, ph):
    count = connectivity_matrices(streamlines, ph.affine, ph.parcellation, normalisations=("count",))
    return count.labels, count.matrices["count"]


def _children():
    """Live processes whose parent is this one (the pool's workers would be among them)."""
    me, out = os.getpid(), []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            with open(stat.replace("stat", "cmdline"), "rb") as fh:
                out.append(fh.read().replace(b"\0", b" ").decode())
    return out


def _workers():
    """The pool's worker processes: spawned by multiprocessing (not the session's S3 server or other
    fixtures' children), without multiprocessing's shared resource tracker."""
    return [c for c in _children() if "multiprocessing" in c and "resource_tracker" not in c]


# ------------------------------------------------------------------------------------------------
# seeds and the guard


def test_seeds_fill_their_voxels_reproducibly():
    mask = np.zeros((4, 5, 6), bool)
    mask[1, 2, 3] = mask[3, 0, 5] = True
    affine = np.array([[0, 2.0, 0, -3], [-2.0, 0, 0, 7], [0, 0, 2.5, 1], [0, 0, 0, 1]])
    seeds = seeds_from_mask(mask, affine, seeds_per_voxel=50, seed=7)
    assert seeds.shape == (100, 3)
    voxels = (seeds - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    assert np.all(np.abs(voxels[:50] - [1, 2, 3]) <= 0.5) and np.all(np.abs(voxels[50:] - [3, 0, 5]) <= 0.5)
    assert voxels[:50].std(axis=0).min() > 0.2                          # spread through the voxel
    np.testing.assert_array_equal(seeds, seeds_from_mask(mask, affine, seeds_per_voxel=50, seed=7))
    assert not np.array_equal(seeds, seeds_from_mask(mask, affine, seeds_per_voxel=50, seed=8))
    with pytest.raises(ValueError, match="seeds_per_voxel"):
        seeds_from_mask(mask, affine, seeds_per_voxel=0)


def test_size_guard():
    estimate = estimate_tracking(10_000, direction_bytes=2 ** 30, stopping_bytes=8 * 10 ** 6, step_size_mm=0.5,
                                 max_length_mm=250, n_processes=2)
    assert estimate.max_points == 2 * 501 + 1 and estimate.steps == 10_000 * 1003
    assert estimate.memory_bytes == 2 ** 30 + 3 * 8 * 10 ** 6 + 12 * estimate.steps
    check_tracking_size(estimate)                                 # within the defaults
    with pytest.raises(TrackingTooLargeError, match=r"up to 1e\+07 steps, above the limit of 1e\+06 \(max_steps\)") as err:
        check_tracking_size(estimate, max_steps=10 ** 6)
    assert (err.value.limit_name, err.value.value, err.value.limit) == ("max_steps", estimate.steps, 10 ** 6)
    assert err.value.estimate is estimate
    with pytest.raises(TrackingTooLargeError, match=r"needs up to 1\.13 GiB, above the limit of 1\.00 GiB"):
        check_tracking_size(estimate, max_memory_bytes=2 ** 30)
    assert issubclass(TrackingTooLargeError, ValueError)


def test_track_refuses_too_large_before_tracking(setup):
    with pytest.raises(TrackingTooLargeError, match="max_steps"):
        track(setup.field, setup.fa, setup.seeds, setup.ph.affine, max_steps=1000)
    # the limit is a keyword: raising it lets the same request run
    result = track(setup.field, setup.fa, setup.seeds[:5], setup.ph.affine, max_steps=10 ** 5)
    assert result.n_seeds == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="eudx"), "method must be one of"),
    (dict(max_angle_deg=0), r"max_angle_deg must be in \(0, 90\]"),
    (dict(step_size_mm=-1), "step_size_mm"),
    (dict(min_length_mm=50, max_length_mm=20), r"max_length_mm \(20\) must be at least min_length_mm \(50\)"),
    (dict(n_processes=0), "n_processes"),
    (dict(start_method="fork"), "start_method must be 'spawn' or 'forkserver'"),
    (dict(pmf_threshold=1.0), "pmf_threshold"),
])
def test_track_argument_errors(setup, kwargs, message):
    with pytest.raises(ValueError, match=message):
        track(setup.field, setup.fa, setup.seeds, setup.ph.affine, **kwargs)


def test_track_input_errors(setup):
    with pytest.raises(ValueError, match="no seeds"):
        track(setup.field, setup.fa, np.zeros((0, 3)), setup.ph.affine)
    with pytest.raises(ValueError, match=r"seeds must be an \(n, 3\) array"):
        track(setup.field, setup.fa, np.zeros((4, 2)), setup.ph.affine)
    with pytest.raises(ValueError, match="stopping map has shape"):
        track(setup.field, setup.fa[1:], setup.seeds, setup.ph.affine)


# ------------------------------------------------------------------------------------------------
# tracking


@pytest.mark.parametrize("method", ["deterministic", "probabilistic"])
def test_tracking_connects_the_bundles(setup, method):
    ph = setup.ph
    result = track(setup.field, setup.fa, setup.seeds, ph.affine, method=method, pmf_threshold=0.5,
                   min_length_mm=10, max_length_mm=200)
    labels, count = _pairs(result.streamlines, ph)
    connecting = np.triu(count).sum()
    for a, b in ph.connected_pairs:
        assert count[a - 1, b - 1] >= 40, (a, b, count)
    for i in range(len(labels)):
        for j in range(i, len(labels)):
            if (labels[i], labels[j]) not in ph.connected_pairs:
                assert count[i, j] <= 0.02 * connecting, (labels[i], labels[j], count)
    assert result.n_tracked == len(result.streamlines) + result.n_too_short + result.n_too_long
    assert result.streamlines._data.dtype == np.float32


def test_length_filter(setup):
    result = track(setup.field, setup.fa, setup.seeds, setup.ph.affine, min_length_mm=20, max_length_mm=30)
    lengths = streamline_lengths(result.streamlines)
    assert len(lengths) > 20 and lengths.min() >= 20 and lengths.max() <= 30
    assert result.n_too_short > 0 and result.n_too_long > 0
    every = track(setup.field, setup.fa, setup.seeds, setup.ph.affine, min_length_mm=0, max_length_mm=1000)
    all_lengths = streamline_lengths(every.streamlines)
    assert every.n_tracked == result.n_tracked
    assert len(result.streamlines) == np.count_nonzero((all_lengths >= 20) & (all_lengths <= 30))


def test_probabilistic_depends_on_the_seed_only(setup):
    kwargs = dict(method="probabilistic", min_length_mm=0, batch_size=40)
    seeds = setup.seeds[:200]
    a = track(setup.field, setup.fa, seeds, setup.ph.affine, seed=1, **kwargs).streamlines
    b = track(setup.field, setup.fa, seeds, setup.ph.affine, seed=1, **kwargs).streamlines
    c = track(setup.field, setup.fa, seeds, setup.ph.affine, seed=2, **kwargs).streamlines
    assert np.array_equal(a._data, b._data) and np.array_equal(a._lengths, b._lengths)
    assert not (len(a) == len(c) and np.array_equal(a._data, c._data))


def test_same_streamlines_with_one_and_two_processes(setup):
    seeds = setup.seeds[::2]
    kwargs = dict(method="probabilistic", min_length_mm=5, seed=3, batch_size=30)
    calls = []
    one = track(setup.field, setup.fa, seeds, setup.ph.affine, n_processes=1, **kwargs)
    with TrackingPool(2) as pool:            # started ahead, then used by two jobs in turn
        two = track(setup.field, setup.fa, seeds, setup.ph.affine, pool=pool,
                    progress=lambda done, total: calls.append((done, total)), **kwargs)
        other = track(setup.field, setup.fa, seeds[:90], setup.ph.affine, pool=pool, **{**kwargs, "seed": 4})
    assert pool.closed
    other_one = track(setup.field, setup.fa, seeds[:90], setup.ph.affine, **{**kwargs, "seed": 4})
    np.testing.assert_array_equal(other.streamlines._data, other_one.streamlines._data)
    assert two.n_processes == 2 and one.n_processes == 1 and one.n_batches == two.n_batches > 2
    assert len(one.streamlines) == len(two.streamlines) > 50
    np.testing.assert_array_equal(one.streamlines._lengths, two.streamlines._lengths)
    np.testing.assert_array_equal(one.streamlines._data, two.streamlines._data)
    assert (one.n_tracked, one.n_too_short) == (two.n_tracked, two.n_too_short)
    # progress: first (0, total), then one call per batch, increasing to the total
    assert calls[0] == (0, len(seeds)) and calls[-1] == (len(seeds), len(seeds))
    assert len(calls) == two.n_batches + 1 and all(b[0] > a[0] for a, b in zip(calls, calls[1:]))
    assert _workers() == []
    assert not glob.glob(os.path.join("/dev/shm", "neuromesh-directions-*"))


class Cancelled(Exception):
    pass


def test_raising_from_progress_cancels_and_stops_the_workers(setup):
    seeds = np.repeat(setup.seeds, 20, axis=0)          # far more work than the test waits for
    calls = []

    def progress(done, total):
        calls.append(done)
        if done > 0:
            raise Cancelled("client went away")

    start = time.perf_counter()
    with pytest.raises(Cancelled, match="client went away"):
        track(setup.field, setup.fa, seeds, setup.ph.affine, method="probabilistic", n_processes=2,
              batch_size=100, progress=progress)
    assert len(calls) == 2 and calls[1] < len(seeds)
    assert time.perf_counter() - start < 60
    assert _workers() == [] and multiprocessing.active_children() == []
    assert not glob.glob(os.path.join("/dev/shm", "neuromesh-directions-*"))
    # in the calling process too
    calls.clear()
    with pytest.raises(Cancelled):
        track(setup.field, setup.fa, seeds, setup.ph.affine, n_processes=1, batch_size=100, progress=progress)
    assert calls == [0, 100]


def test_sh_representation_tracks_like_the_pmf(setup):
    sh_field = direction_field_from_sh(setup.csa.shcoeff, mask=setup.support, subtract_minimum=True,
                                       representation="sh")
    assert sh_field.kind == "sh" and sh_field.data.shape[-1] == 28 and setup.field.kind == "pmf"
    pmf = track(setup.field, setup.fa, setup.seeds, setup.ph.affine)
    sh = track(sh_field, setup.fa, setup.seeds, setup.ph.affine)
    _, a = _pairs(pmf.streamlines, setup.ph)
    _, b = _pairs(sh.streamlines, setup.ph)
    # the same model read two ways (interpolated pmf values or interpolated coefficients)
    assert np.abs(a - b).sum() <= 0.05 * a.sum()
    # the auto choice follows the memory limit
    small = direction_field_from_sh(setup.csa.shcoeff, mask=setup.support, pmf_memory_limit=10 ** 6)
    assert small.kind == "sh"


def test_shared_field_lives_in_a_file_until_closed(setup):
    field = direction_field_from_sh(setup.csa.shcoeff, mask=setup.support, subtract_minimum=True, shared=True)
    try:
        assert os.path.exists(field.path) and isinstance(field.data, np.memmap)
        np.testing.assert_array_equal(field.data, setup.field.data)
        assert np.load(field.path, mmap_mode="r").shape == field.data.shape
    finally:
        field.close()
    assert not os.path.exists(field.path)


def test_tensor_field_points_along_the_principal_axis(setup):
    field = direction_field_from_tensor(setup.dti.fit.evals, setup.dti.fit.evecs, mask=setup.support)
    from dipy.data import default_sphere
    core = setup.ph.fibre_fraction[..., 2] > 0.99
    best = default_sphere.vertices[np.argmax(field.data[core], axis=1)]
    v1 = setup.dti.fit.evecs[core][:, :, 0]
    cos = np.abs(np.sum(best * v1, axis=1))
    assert np.degrees(np.arccos(np.minimum(cos, 1))).max() < 8      # vertices are ~10 degrees apart
    assert field.data.min() >= 0 and not field.data[~setup.support].any()
    sh = direction_field_from_tensor(setup.dti.fit.evals, setup.dti.fit.evecs, mask=setup.support,
                                     representation="sh")
    assert sh.kind == "sh" and sh.data.shape[-1] == 45


def test_direction_field_checks():
    with pytest.raises(ValueError, match="kind must be"):
        DirectionField(kind="peaks", data=np.zeros((2, 2, 2, 3)))
    with pytest.raises(ValueError, match="SH coefficients must be"):
        direction_field_from_sh(np.zeros((2, 2, 2, 7)), mask=np.ones((2, 2, 2), bool))
    with pytest.raises(ValueError, match="representation must be"):
        direction_field_from_sh(np.zeros((2, 2, 2, 15)), mask=np.ones((2, 2, 2), bool), representation="odf")


# ------------------------------------------------------------------------------------------------
# files


@pytest.mark.parametrize("fmt", ["trk", "tck"])
def test_tractogram_round_trip(setup, tmp_path, fmt):
    streamlines = track(setup.field, setup.fa, setup.seeds[:100], setup.ph.affine).streamlines
    affine = setup.ph.affine.copy()
    affine[:3, :3] = affine[:3, :3] @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])   # oblique axes too
    data = save_tractogram(streamlines, affine=affine, shape=setup.ph.mask.shape, format=fmt)
    back = load_tractogram(data)
    assert len(back) == len(streamlines) > 10
    np.testing.assert_allclose(back._data, streamlines._data, atol=1e-4)
    np.testing.assert_array_equal(back._lengths, streamlines._lengths)
    path = tmp_path / f"t.{fmt}"
    assert save_tractogram(list(streamlines), affine=affine, shape=setup.ph.mask.shape, format=fmt,
                           path=path) is None
    np.testing.assert_allclose(load_tractogram(path)._data, streamlines._data, atol=1e-4)
    if fmt == "trk":       # dipy reads the same file in world space
        from dipy.io.streamline import load_tractogram as dipy_load
        sft = dipy_load(str(path), "same", bbox_valid_check=False)
        np.testing.assert_allclose(Streamlines(sft.streamlines)._data, streamlines._data, atol=1e-4)


def test_tractogram_errors():
    with pytest.raises(ValueError, match="tracks.trk is neither a TrackVis .trk nor an MRtrix .tck"):
        load_tractogram(b"not a tractogram at all", name="tracks.trk")
    data = save_tractogram([np.zeros((3, 3))], affine=np.eye(4), shape=(2, 2, 2), format="trk")
    with pytest.raises(ValueError, match="cut.trk: damaged trk file"):
        load_tractogram(data[:1000] + data[1010:], name="cut.trk")
    with pytest.raises(ValueError, match="format must be"):
        save_tractogram([], affine=np.eye(4), shape=(2, 2, 2), format="vtk")
