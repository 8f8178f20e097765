"""Reading and checking diffusion inputs; brain mask; DTI, CSD and CSA on the phantom."""

from __future__ import annotations

import doctest
import gzip

import nibabel as nib
import numpy as np
import pytest
from dipy.data import default_sphere
from dipy.direction import peak_directions
from dipy.reconst.shm import sh_to_sf

from services.connectomics.core import diffusion
from services.connectomics.core.diffusion import (brain_mask, check_affine, check_dwi, check_mask, check_parcellation,
                                                  default_sh_order, estimate_response, fit_csa, fit_csd, fit_dti,
                                                  make_gradient_table, read_bvals, read_bvecs, read_nifti,
                                                  tracking_support)
from services.connectomics.core.phantom import FIBRE_EVALS, diffusion_phantom


def test_docstring_examples():
    result = doctest.testmod(diffusion, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.fixture(scope="module")
def ph():
    return diffusion_phantom(size=20, n_directions=45, snr=30, seed=0)


@pytest.fixture(scope="module")
def gtab(ph):
    return make_gradient_table(ph.bvals, ph.bvecs)


# ------------------------------------------------------------------------------------------------
# reading


def _nifti_bytes(data, affine, *, compress=False, cls=nib.Nifti1Image):
    raw = cls(data, affine).to_bytes()
    return gzip.compress(raw) if compress else raw


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cls", [nib.Nifti1Image, nib.Nifti2Image])
def test_read_nifti_bytes_and_paths(tmp_path, compress, cls):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    affine = np.array([[0, -2.0, 0, 10], [2.0, 0, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]])
    raw = _nifti_bytes(data, affine, compress=compress, cls=cls)
    got, got_affine = read_nifti(raw, name="dwi.nii")
    np.testing.assert_array_equal(got, data)
    assert got.dtype == np.int16
    np.testing.assert_allclose(got_affine, affine)
    path = tmp_path / ("dwi.nii.gz" if compress else "dwi.nii")
    path.write_bytes(raw)
    got, _ = read_nifti(path, dtype=np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, data)


def test_read_nifti_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="dwi.nii.gz is not a NIfTI"):
        read_nifti(b"x" * 400, name="dwi.nii.gz")
    with pytest.raises(ValueError, match="parc.nii.*shorter than a NIfTI header"):
        read_nifti(b"short", name="parc.nii")
    with pytest.raises(ValueError, match="mask.nii.gz is not a valid gzip"):
        read_nifti(b"\x1f\x8b" + b"\x00" * 50, name="mask.nii.gz")
    whole = _nifti_bytes(np.ones((8, 8, 8, 4), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="cut.nii: the image data cannot be read"):
        read_nifti(whole[:600], name="cut.nii")
    with pytest.raises(ValueError, match="missing.nii: cannot be read"):
        read_nifti(tmp_path / "missing.nii", name="missing.nii")


def test_read_bvals_and_bvecs_layouts():
    assert read_bvals(b"0 1000 2000\n").tolist() == [0, 1000, 2000]
    assert read_bvals(b"0\n1000\n2000\n").tolist() == [0, 1000, 2000]
    fsl = b"0 1 0 0\n0 0 1 0\n0 0 0 1\n"                 # 3 lines: x, y, z of each of 4 volumes
    np.testing.assert_array_equal(read_bvecs(fsl), [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    rows = b"0 0 0\n1 0 0\n0 1 0\n0 0 1\n"
    assert read_bvecs(rows).shape == (4, 3)
    nan = read_bvecs(b"nan nan nan\n1 0 0\n")
    assert np.isnan(nan[0]).all()


@pytest.mark.parametrize("reader, text, message", [
    (read_bvals, b"0 1000 abc\n", r"run1.txt: line 1 has 'abc'"),
    (read_bvals, b"0 1000\n0 1000\n", r"run1.txt: b-values must be one line or one column"),
    (read_bvals, b"0 -5\n", r"run1.txt: b-values must be finite and >= 0"),
    (read_bvals, b"\n# only a comment\n", r"run1.txt holds no numbers"),
    (read_bvecs, b"1 0\n0 1\n", r"run1.txt: gradient directions must be 3 lines"),
    (read_bvecs, b"1 0 0\n0 1\n", r"run1.txt: the lines hold different counts"),
    (read_bvecs, b"\xff\xfe\x00", r"run1.txt is not a text file"),
])
def test_malformed_text_files_name_the_file(reader, text, message):
    with pytest.raises(ValueError, match=message):
        reader(text, name="run1.txt")


def test_dipy_small_files_read():
    from dipy.data import get_fnames
    nii, bval, bvec = get_fnames(name="small_64D")
    dwi, affine = read_nifti(nii, dtype=np.float32)
    dwi, bvals, bvecs = check_dwi(dwi, read_bvals(bval), read_bvecs(bvec))   # NaN vector at b = 0 accepted
    assert dwi.shape == (10, 10, 10, 65) and bvecs.shape == (65, 3) and not np.isnan(bvecs).any()
    check_affine(affine)


# ------------------------------------------------------------------------------------------------
# checks


def _table(n=7):
    bvals = np.r_[0.0, np.full(n - 1, 1000.0)]
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n - 1, 3))
    return bvals, np.r_[np.zeros((1, 3)), vecs / np.linalg.norm(vecs, axis=1, keepdims=True)]


def test_check_dwi_accepts_fsl_layout_and_returns_float32():
    bvals, bvecs = _table()
    dwi, b, v = check_dwi(np.ones((2, 3, 4, 7), np.int16), bvals, bvecs.T)
    assert dwi.dtype == np.float32 and v.shape == (7, 3) and np.array_equal(v, bvecs)


@pytest.mark.parametrize("change, message", [
    (lambda d, b, v: (d[..., 0], b, v), r"the DWI must be 4-D \(x, y, z, volumes\), got 3-D"),
    (lambda d, b, v: (d, b[:-1], v), r"bvals has 6 values but the DWI has 7 volumes"),
    (lambda d, b, v: (d[..., :5], b[:5], v[:5]), r"has 4 diffusion-weighted volumes; a tensor needs at least 6"),
    (lambda d, b, v: (d, b, v[:, :2]), r"bvecs must have shape \(7, 3\) or \(3, 7\) for 7 volumes, got \(7, 2\)"),
    (lambda d, b, v: (d, b, v * np.r_[1, 1, 0.5, 1, 1, 1, 1][:, None]),
     r"bvecs must be unit vectors where b > 50: volume 2 has norm 0.5"),
    (lambda d, b, v: (d, b, np.where(np.arange(7)[:, None] == 3, np.nan, v)),
     r"bvecs are not finite at volume\(s\) \[3\]"),
    (lambda d, b, v: (np.where(np.arange(7) == 2, np.nan, d), b, v), r"the DWI contains 24 NaN values"),
    (lambda d, b, v: (np.full_like(d, np.inf), b, v), r"infinite"),
    (lambda d, b, v: (d, np.full(7, 1000.0), np.r_[[[1.0, 0, 0]], v[1:]]), r"no b = 0 volume"),
    (lambda d, b, v: (d, b * -1, v), r"bvals must be finite and >= 0"),
])
def test_check_dwi_errors(change, message):
    bvals, bvecs = _table()
    dwi = np.ones((2, 3, 4, 7), np.float32)
    with pytest.raises(ValueError, match=message):
        check_dwi(*change(dwi, bvals, bvecs))


@pytest.mark.parametrize("affine, message", [
    (np.eye(3), r"must be 4 x 4"),
    (np.where(np.eye(4) == 1, np.nan, 0), r"non-finite"),
    (np.diag([1.0, 1.0, 1.0, 2.0]), r"last row must be 0 0 0 1"),
    (np.array([[1.0, 2, 0, 0], [2, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), r"singular"),
])
def test_check_affine_errors(affine, message):
    with pytest.raises(ValueError, match=message):
        check_affine(affine)


def test_check_parcellation():
    shape = (3, 4, 5)
    labels = np.zeros(shape, np.uint16)
    labels[0, 0, 0], labels[2, 3, 4] = 3, 500
    assert check_parcellation(labels, shape).dtype == np.int64
    assert check_parcellation(labels.astype(np.float32), shape).tolist() == labels.tolist()
    with pytest.raises(ValueError, match=r"the parcellation has shape \(3, 4, 6\) but the DWI's spatial shape is "
                                         r"\(3, 4, 5\)"):
        check_parcellation(np.zeros((3, 4, 6), int), shape)
    with pytest.raises(ValueError, match=r"must hold integer labels, got fractional values such as 2.5"):
        check_parcellation(np.where(labels == 3, 2.5, labels.astype(float)), shape)
    with pytest.raises(ValueError, match=r"negative labels"):
        check_parcellation(np.where(labels == 3, -1, labels.astype(np.int32)), shape)
    with pytest.raises(ValueError, match=r"no region"):
        check_parcellation(np.zeros(shape, int), shape)
    with pytest.raises(ValueError, match=r"non-finite"):
        check_parcellation(np.full(shape, np.nan), shape)
    with pytest.raises(ValueError, match=r"integer labels, got dtype"):
        check_parcellation(np.full(shape, "a"), shape)


def test_check_mask():
    assert check_mask(np.ones((2, 2, 2), np.uint8), (2, 2, 2)).dtype == bool
    with pytest.raises(ValueError, match=r"the mask is empty"):
        check_mask(np.zeros((2, 2, 2), bool), (2, 2, 2))
    with pytest.raises(ValueError, match=r"the mask has shape \(2, 2\) but the DWI's spatial shape is \(2, 2, 2\)"):
        check_mask(np.ones((2, 2), bool), (2, 2, 2))
    with pytest.raises(ValueError, match=r"boolean"):
        check_mask(np.full((2, 2, 2), 0.5), (2, 2, 2))


def test_default_sh_order(gtab):
    assert default_sh_order(gtab) == 8                         # 45 directions
    bvals, bvecs = _table(30)
    assert default_sh_order(make_gradient_table(bvals, bvecs)) == 6


# ------------------------------------------------------------------------------------------------
# mask and models


def test_brain_mask_finds_the_brain(ph, gtab):
    mask = brain_mask(ph.dwi, gtab)
    # the air shell is left out, and little of the brain (median filtering erodes its edges)
    assert not mask[~ph.mask].any()
    assert np.count_nonzero(mask) > 0.85 * np.count_nonzero(ph.mask)


def test_dti_maps(ph, gtab):
    dti = fit_dti(ph.dwi, gtab, mask=ph.mask)
    assert dti.fa.dtype == np.float32 and dti.fa.min() >= 0 and dti.fa.max() <= 1
    assert not dti.fa[~ph.mask].any() and not dti.md[~ph.mask].any()
    core = ph.fibre_fraction[..., 2] > 0.99
    grey = ph.mask & (ph.fibre_fraction.sum(-1) == 0)
    assert 0.7 < np.median(dti.fa[core]) < 0.9 and np.median(dti.fa[grey]) < 0.15
    # MD of the fibre tensor is the mean of its eigenvalues, in mm^2/s
    assert np.median(dti.md[core]) == pytest.approx(np.mean(FIBRE_EVALS), rel=0.1)
    assert np.median(dti.md[grey]) == pytest.approx(0.8e-3, rel=0.1)


def _peaks(coeff, order):
    sf = sh_to_sf(coeff, default_sphere, sh_order_max=order)
    directions, _, _ = peak_directions(sf, default_sphere, relative_peak_threshold=0.3, min_separation_angle=25)
    return directions


def _angle(u, v):
    return np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v))))))


def test_csd_response_and_crossing(ph, gtab):
    dti = fit_dti(ph.dwi, gtab, mask=ph.mask)
    (evals, s0), n = estimate_response(ph.dwi, gtab, fa=dti.fa, mask=ph.mask)
    assert n >= 50 and s0 == pytest.approx(100, rel=0.05)
    np.testing.assert_allclose(evals, FIBRE_EVALS, rtol=0.15)
    centre = np.zeros(ph.mask.shape, bool)
    centre[9:11, 9:11, 9:11] = True               # the crossing of bundles 1 (x) and 2 (y)
    sh = fit_csd(ph.dwi, gtab, mask=centre, fa=dti.fa, response_mask=ph.mask)
    assert sh.sh_order_max == 8 and sh.shcoeff.shape == (20, 20, 20, 45) and not sh.shcoeff[~centre].any()
    for voxel in np.argwhere(centre):
        peaks = _peaks(sh.shcoeff[tuple(voxel)], 8)
        assert len(peaks) >= 2
        assert min(_angle(p, [1, 0, 0]) for p in peaks) < 15 and min(_angle(p, [0, 1, 0]) for p in peaks) < 15


def test_csa_follows_the_bundle(ph, gtab):
    core = ph.fibre_fraction[..., 2] > 0.99
    sh = fit_csa(ph.dwi, gtab, mask=core, sh_order_max=6)
    assert sh.model == "csa" and sh.shcoeff.shape[-1] == 28
    for voxel in np.argwhere(core)[::7]:
        assert _angle(_peaks(sh.shcoeff[tuple(voxel)], 6)[0], [0, 0, 1]) < 15


def test_no_anisotropic_voxel_for_the_response(gtab):
    flat = diffusion_phantom(size=16, n_directions=45, snr=None)
    flat_dwi = np.broadcast_to(flat.dwi[2, 2, 2], flat.dwi.shape).copy()    # grey matter everywhere
    dti = fit_dti(flat_dwi, gtab, mask=flat.mask)
    with pytest.raises(ValueError, match="no white-matter-like voxel"):
        estimate_response(flat_dwi, gtab, fa=dti.fa, mask=flat.mask)


def test_tracking_support_is_the_one_voxel_dilation():
    core = np.zeros((6, 6, 6), bool)
    core[1, 1, 1] = core[4, 4, 4] = True
    mask = np.ones((6, 6, 6), bool)
    mask[5] = False
    support = tracking_support(core, mask)
    assert support.sum() == 27 + 18                  # the second cube loses its x = 5 face to the mask
    assert support[0, 0, 0] and support[2, 2, 2] and support[3, 3, 3] and not support[2, 2, 3]


@pytest.mark.parametrize("method", ["deterministic", "probabilistic"])
def test_fitting_on_the_tracking_support_changes_no_streamline(ph, gtab, method):
    """The claim of tracking_support: the tracker never reads the model outside it."""
    from services.connectomics.core.tractography import direction_field_from_sh, seeds_from_mask, track
    fa = fit_dti(ph.dwi, gtab, mask=ph.mask).fa.astype(np.float64)
    seed_mask = ph.mask & (fa > 0.3)
    support = tracking_support((fa >= 0.2) | seed_mask, ph.mask)
    assert support.sum() < 0.5 * ph.mask.sum()
    seeds = seeds_from_mask(seed_mask, ph.affine, seed=1)[::3]
    out = []
    for where in (ph.mask, support):
        sh = fit_csa(ph.dwi, gtab, mask=where, sh_order_max=6)
        field = direction_field_from_sh(sh.shcoeff, mask=where, subtract_minimum=True)
        out.append(track(field, fa, seeds, ph.affine, method=method, stopping_threshold=0.2, pmf_threshold=0.5,
                         min_length_mm=0, seed=4).streamlines)
    whole, restricted = out
    assert len(whole) > 50
    np.testing.assert_array_equal(whole._lengths, restricted._lengths)
    np.testing.assert_array_equal(whole._data, restricted._data)
