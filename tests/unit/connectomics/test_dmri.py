"""The whole pipeline: known connections of the phantom, dipy's small_64D end to end, bad inputs."""

from __future__ import annotations

import doctest
import glob
import os

import numpy as np
import pytest

from services.connectomics.core import diffusion, dmri
from services.connectomics.core.dmri import dmri_connectome
from services.connectomics.core.phantom import diffusion_phantom
from services.connectomics.core.tractography import TrackingTooLargeError, load_tractogram


def test_docstring_examples():
    result = doctest.testmod(dmri, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.fixture(scope="module")
def ph():
    return diffusion_phantom(size=20, n_directions=45, snr=30, seed=0)


def _run(ph, **kwargs):
    return dmri_connectome(ph.dwi, ph.bvals, ph.bvecs, ph.affine, ph.parcellation, **kwargs)


def _check_ground_truth(result, ph, *, true_min, false_fraction):
    count = result.matrices["count"]
    labels = result.labels.tolist()
    assert labels == [1, 2, 3, 4, 5, 6, 7]
    connecting = int(np.triu(count).sum())
    assert connecting == result.n_connecting
    for i, a in enumerate(labels):
        for j, b in enumerate(labels[i:], start=i):
            if (a, b) in ph.connected_pairs:
                assert count[i, j] >= true_min, ((a, b), count)
            else:
                assert count[i, j] <= false_fraction * connecting, ((a, b), count)
    assert count[labels.index(7)].sum() == 0           # the decoy region is reached by nothing


@pytest.mark.parametrize("model, tracking", [("csd", "deterministic"), ("csd", "probabilistic"),
                                             ("csa", "deterministic"), ("csa", "probabilistic")])
def test_phantom_connections_are_found(ph, model, tracking):
    """Every bundle's two regions are joined, through the crossing too; no other pair is, to 2 %."""
    result = _run(ph, model=model, tracking=tracking, min_length_mm=10)
    _check_ground_truth(result, ph, true_min=40, false_fraction=0.02)
    assert result.model == model and result.tracking == tracking and result.n_processes == 1
    assert result.n_kept == len(result.streamlines) == result.n_connecting + result.n_unassigned
    assert result.n_tracked == result.n_kept + result.n_too_short + result.n_too_long
    # streamlines of bundles 1 and 2 pass through the crossing at the centre of the grid
    centre = np.zeros(3)
    through = [np.min(np.linalg.norm(s - centre, axis=1)) < 4 for s in result.streamlines
               if abs(s[0, 2] - s[-1, 2]) < 4 and np.linalg.norm(s[0] - s[-1]) > 20]
    assert sum(through) >= 80
    if model == "csd":
        (l1, l2, l3), s0 = result.response
        assert l1 == pytest.approx(1.7e-3, rel=0.15) and l2 == pytest.approx(0.3e-3, rel=0.25)


def test_the_crossing_defeats_the_tensor(ph):
    """Control: DTI, which cannot represent two fibre directions, loses a bundle at the crossing."""
    dti = _run(ph, model="dti", tracking="deterministic", min_length_mm=10).matrices["count"]
    csd = _run(ph, model="csa", tracking="deterministic", min_length_mm=10).matrices["count"]
    crossing = [(0, 1), (2, 3)]
    assert min(dti[p] for p in crossing) < 0.5 * min(csd[p] for p in crossing)
    assert dti[4, 5] >= 40                              # bundle 3, which crosses nothing, is fine


def test_pipeline_does_not_depend_on_the_process_count(ph):
    kwargs = dict(model="csa", tracking="probabilistic", min_length_mm=10, seed=5, batch_size=60)
    one = _run(ph, n_processes=1, **kwargs)
    two = _run(ph, n_processes=2, **kwargs)
    assert (one.n_processes, two.n_processes) == (1, 2)
    np.testing.assert_array_equal(one.streamlines._data, two.streamlines._data)
    for name in one.matrices:
        np.testing.assert_array_equal(one.matrices[name], two.matrices[name])


def test_deterministic_shards_sum_to_the_whole(ph):
    """Seeds shared out over three calls (three replicas, say): their count matrices add up exactly."""
    kwargs = dict(model="csa", tracking="deterministic", min_length_mm=10, seed=2)
    whole = _run(ph, **kwargs)
    shards = [_run(ph, shard=(i, 3), **kwargs) for i in range(3)]
    assert sum(s.n_seeds for s in shards) == whole.n_seeds
    np.testing.assert_array_equal(sum(s.matrices["count"] for s in shards), whole.matrices["count"])
    with pytest.raises(ValueError, match="below the shard count"):
        _run(ph, shard=(3, 3), **kwargs)


def _workers():
    """Live child processes of this one, multiprocessing's shared resource tracker aside."""
    me, out = os.getpid(), []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(stat.replace("stat", "cmdline"), "rb") as fh:
                command = fh.read()
        except OSError:
            continue
        # the pool's workers are multiprocessing's; the session's S3 server is a child too
        if int(fields[1]) == me and fields[0] != "Z" and b"multiprocessing" in command \
                and b"resource_tracker" not in command:
            out.append(command)
    return out


class Stop(Exception):
    pass


def test_cancelling_or_a_failing_fit_leaves_no_worker(ph, monkeypatch):
    """The pool starts before the model fit: it must go whatever ends the call."""
    def progress(done, total):
        if done:
            raise Stop()
    with pytest.raises(Stop):
        _run(ph, model="csa", n_processes=2, batch_size=20, progress=progress)
    assert _workers() == []

    def broken_fit(*args, **kwargs):
        raise RuntimeError("fit failed")
    monkeypatch.setattr(diffusion, "fit_csa", broken_fit)
    with pytest.raises(RuntimeError, match="fit failed"):
        _run(ph, model="csa", n_processes=2, batch_size=20)
    assert _workers() == []


def test_normalisations_and_volumes(ph):
    result = _run(ph, model="csa", min_length_mm=10)
    count = result.matrices["count"]
    voxel_mm3 = 8.0
    np.testing.assert_array_equal(result.region_volumes_voxels,
                                  [np.count_nonzero(ph.parcellation == k) for k in range(1, 8)])
    np.testing.assert_allclose(result.region_volumes_mm3, result.region_volumes_voxels * voxel_mm3)
    v = result.region_volumes_mm3
    np.testing.assert_allclose(result.matrices["volume"], count / np.sqrt(np.outer(v, v)))
    # the bundles are ~26 mm between their regions: 1/length weights ~ count / 26
    np.testing.assert_allclose(result.matrices["length"][0, 1], count[0, 1] / result.mean_length_mm[0, 1],
                               rtol=0.05)
    assert 20 < result.mean_length_mm[0, 1] < 36
    for matrix in result.matrices.values():
        np.testing.assert_array_equal(matrix, matrix.T)
    assert result.fa.shape == ph.mask.shape and result.md.dtype == np.float32
    assert set(result.seconds) == {"mask", "dti", "model", "tracking", "tracking_cpu", "connectivity"}
    assert 0 < result.seconds["tracking_cpu"] <= 1.5 * result.seconds["tracking"]
    assert result.parameters["pmf_threshold"] == 0.5 and result.parameters["mask_given"] is False


def test_small_64d_end_to_end(tmp_path):
    """dipy's small_64D (10 x 10 x 10 voxels of brain, 64 directions at b = 1000): every stage runs.

    The block is all brain, which leaves Otsu's threshold nothing to separate but CSF from tissue,
    so it is embedded in 3 voxels of background (noise of a few units, as around a head) for the
    masking to have a brain to find.
    """
    from dipy.data import get_fnames
    nii, bval, bvec = get_fnames(name="small_64D")
    block, block_affine = diffusion.read_nifti(nii, dtype=np.float32)
    bvals, bvecs = diffusion.read_bvals(bval), diffusion.read_bvecs(bvec)
    pad = 3
    rng = np.random.default_rng(0)
    dwi = np.abs(rng.normal(0, 5, tuple(s + 2 * pad for s in block.shape[:3]) + block.shape[3:])).astype(np.float32)
    inner = (slice(pad, -pad),) * 3
    dwi[inner] = block
    shift = np.eye(4)
    shift[:3, 3] = -pad
    affine = block_affine @ shift                   # the block's voxels keep their world positions
    index = np.indices(block.shape[:3])
    parcellation = np.zeros(dwi.shape[:3], int)
    parcellation[inner] = 1 + (index[0] >= 5) + 2 * (index[1] >= 5) + 4 * (index[2] >= 5)     # 8 octants
    for model, tracking in (("csa", "probabilistic"), ("csd", "deterministic")):
        result = dmri_connectome(dwi, bvals, bvecs, affine, parcellation, model=model, tracking=tracking,
                                 min_length_mm=4)
        # masking: median_otsu keeps most of the block and none of the background
        in_block = np.zeros(dwi.shape[:3], bool)
        in_block[inner] = True
        assert not result.mask[~in_block].any() and result.mask[in_block].mean() > 0.6
        fa, md = result.fa[result.mask], result.md[result.mask]
        assert fa.min() >= 0 and fa.max() <= 1 and 0.1 < np.median(fa) < 0.6
        assert np.percentile(md, 1) > 0 and 0.5e-3 < np.median(md) < 2e-3 and np.percentile(md, 99) < 4e-3
        assert result.sh_order_max == 8 and result.n_seeds == result.seed_mask.sum() > 100
        assert result.n_kept > 100 and result.n_connecting > 100
        assert result.labels.tolist() == list(range(1, 9))
        count = result.matrices["count"]
        assert np.triu(count).sum() == result.n_connecting
        # the tractogram goes through TRK and TCK unchanged (world mm, float32)
        for fmt in ("trk", "tck"):
            path = tmp_path / f"{model}.{fmt}"
            result.save_streamlines(format=fmt, path=path)
            back = load_tractogram(path)
            np.testing.assert_array_equal(back._lengths, result.streamlines._lengths)
            np.testing.assert_allclose(back._data, result.streamlines._data, atol=1e-4)
            np.testing.assert_allclose(load_tractogram(result.save_streamlines(format=fmt))._data,
                                       result.streamlines._data, atol=1e-4)
        # the streamlines lie in the brain block, in world coordinates
        voxel = (result.streamlines._data - block_affine[:3, 3]) @ np.linalg.inv(block_affine[:3, :3]).T
        assert voxel.min() > -1 and voxel.max() < 10
    assert result.response is not None


# ------------------------------------------------------------------------------------------------
# bad inputs: each raises ValueError naming the problem


@pytest.fixture(scope="module")
def tiny():
    return diffusion_phantom(size=16, n_directions=12, snr=30, seed=0)


def _bad(tiny, **changes):
    args = dict(dwi=tiny.dwi, bvals=tiny.bvals, bvecs=tiny.bvecs, affine=tiny.affine, parcellation=tiny.parcellation)
    kwargs = dict(mask=tiny.mask, model="dti")
    for key, value in changes.items():
        (args if key in args else kwargs)[key] = value
    return dmri_connectome(**args, **kwargs)


@pytest.mark.parametrize("change, message", [
    (lambda t: dict(dwi=t.dwi[..., 0]), r"the DWI must be 4-D"),
    (lambda t: dict(bvals=t.bvals[:-1]), r"bvals has 12 values but the DWI has 13 volumes"),
    (lambda t: dict(bvecs=t.bvecs[:, :2]), r"bvecs must have shape \(13, 3\) or \(3, 13\)"),
    (lambda t: dict(bvecs=t.bvecs * 1.2), r"bvecs must be unit vectors where b > 50: volume 1 has norm 1.2"),
    (lambda t: dict(parcellation=t.parcellation[:, :, :-1]),
     r"the parcellation has shape \(16, 16, 15\) but the DWI's spatial shape is \(16, 16, 16\)"),
    (lambda t: dict(parcellation=t.parcellation + 0.25), r"integer labels, got fractional values such as 0.25"),
    (lambda t: dict(affine=np.where(np.eye(4) == 1, np.inf, 0)), r"non-finite"),
    (lambda t: dict(affine=np.diag([2.0, 2.0, 0.0, 1.0])), r"the affine is singular"),
    (lambda t: dict(affine=np.array([[2.0, 1, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])), r"shear"),
    (lambda t: dict(dwi=np.where(np.arange(13) == 4, np.nan, t.dwi)), r"the DWI contains 4096 NaN values"),
    (lambda t: dict(mask=np.zeros(t.mask.shape, bool)), r"the mask is empty"),
    (lambda t: dict(fa_threshold=0.99), r"no seeds: no voxel of the brain mask has FA > 0.99"),
    (lambda t: dict(seed_mask=~t.mask), r"no seeds: the seed mask does not overlap"),
    (lambda t: dict(model="dsi"), r"model must be one of"),
    (lambda t: dict(tracking="eudx"), r"tracking must be one of"),
    (lambda t: dict(seeds_per_voxel=0), r"seeds_per_voxel"),
    (lambda t: dict(max_angle_deg=120), r"max_angle_deg"),
    (lambda t: dict(sh_order_max=5), r"sh_order_max must be an even integer"),
])
def test_bad_inputs(tiny, change, message):
    with pytest.raises(ValueError, match=message):
        _bad(tiny, **change(tiny))


def test_empty_brain_mask_from_median_otsu(tiny):
    with pytest.raises(ValueError, match="brain mask .* is empty"):
        _bad(tiny, dwi=np.zeros_like(tiny.dwi), mask=None)


def test_size_guard_before_the_model_is_fitted(tiny, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("the model was fitted before the size guard")
    monkeypatch.setattr(diffusion, "fit_csd", no_fit)
    with pytest.raises(TrackingTooLargeError, match=r"above the limit of 1e\+06 \(max_steps\)"):
        _bad(tiny, model="csd", seeds_per_voxel=50, max_steps=10 ** 6)
    with pytest.raises(TrackingTooLargeError, match=r"max_memory_bytes"):
        _bad(tiny, model="csd", max_memory_bytes=10 ** 6)
