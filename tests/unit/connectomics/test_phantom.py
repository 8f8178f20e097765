"""The diffusion phantom: geometry, ground truth, signal model, noise."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from dipy.core.gradients import gradient_table
from dipy.reconst.dti import TensorModel
from dipy.sims.voxel import multi_tensor

from services.connectomics.core import phantom
from services.connectomics.core.phantom import FIBRE_EVALS, GREY_EVALS, S0, diffusion_phantom


def test_docstring_examples():
    result = doctest.testmod(phantom, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.fixture(scope="module")
def clean():
    return diffusion_phantom(size=20, n_directions=30, snr=None)


def test_shapes_and_ground_truth(clean):
    ph = clean
    assert ph.dwi.shape == (20, 20, 20, 31) and ph.dwi.dtype == np.float32
    assert ph.bvals.tolist() == [0.0] + [2000.0] * 30
    np.testing.assert_allclose(np.linalg.norm(ph.bvecs[1:], axis=1), 1.0)
    assert ph.connected_pairs == frozenset({(1, 2), (3, 4), (5, 6)})
    assert sorted(np.unique(ph.parcellation).tolist()) == [0, 1, 2, 3, 4, 5, 6, 7]
    # 2 mm voxels, grid centre at the world origin
    np.testing.assert_allclose(ph.affine @ [9.5, 9.5, 9.5, 1], [0, 0, 0, 1])
    # air shell of 2 voxels outside the mask; regions only inside the brain
    assert ph.mask.sum() == 16 ** 3 and not ph.mask[:2].any() and not ph.mask[-2:].any()
    assert not (ph.parcellation[~ph.mask]).any()
    assert ph.dwi[~ph.mask].max() == 0.0                      # no noise: air has no signal


def test_bundles_join_their_regions_and_cross(clean):
    ph = clean
    fractions = ph.fibre_fraction
    for b, bundle in enumerate(ph.bundles):
        start, end = np.round(bundle.start).astype(int), np.round(bundle.end).astype(int)
        assert ph.parcellation[tuple(start)] == bundle.regions[0]
        assert ph.parcellation[tuple(end)] == bundle.regions[1]
        assert fractions[tuple(start) + (b,)] > 0 and fractions[tuple(end) + (b,)] > 0
        # fibres run the whole way between the two regions along the bundle's axis
        axis = int(np.argmax(np.abs(bundle.direction)))
        line = [tuple(np.where(np.arange(3) == axis, t, np.round(bundle.start).astype(int))) for t in
                range(start[axis], end[axis] + 1)]
        # (in the crossing the voxel's fibres are shared between two bundles)
        assert all(fractions[p].sum() > 0.9 and fractions[p + (b,)] > 0.4 for p in line[1:-1])
    # bundles 1 and 2 share voxels at the centre (the crossing), bundle 3 touches neither
    assert np.count_nonzero((fractions[..., 0] > 0.3) & (fractions[..., 1] > 0.3)) >= 8
    assert not np.any((fractions[..., 2] > 0) & (fractions[..., :2].sum(-1) > 0))
    assert fractions.sum(-1).max() <= 1.0 + 1e-6
    # the decoy region holds no fibre
    assert fractions[ph.parcellation == 7].sum() == 0


def test_signal_is_dipys_multi_tensor(clean):
    ph = clean
    gtab = gradient_table(ph.bvals, bvecs=ph.bvecs)
    centre = (10, 10, 10)    # bundles 1 (x) and 2 (y) cross here
    f = ph.fibre_fraction[centre]
    grey = 1 - f.sum()
    expected, _ = multi_tensor(gtab, np.array([FIBRE_EVALS, FIBRE_EVALS, GREY_EVALS]), S0=S0,
                               angles=[(90, 0), (90, 90), (0, 0)],
                               fractions=[100 * f[0], 100 * f[1], 100 * grey], snr=None)
    np.testing.assert_allclose(ph.dwi[centre], expected, rtol=1e-5)
    assert f[0] > 0.3 and f[1] > 0.3
    grey_voxel = tuple(np.argwhere(ph.mask & (ph.fibre_fraction.sum(-1) == 0))[0])
    expected, _ = multi_tensor(gtab, np.array([GREY_EVALS]), S0=S0, angles=[(0, 0)], fractions=[100], snr=None)
    np.testing.assert_allclose(ph.dwi[grey_voxel], expected, rtol=1e-5)


def test_tensor_of_the_fibres(clean):
    ph = clean
    gtab = gradient_table(ph.bvals, bvecs=ph.bvecs)
    fit = TensorModel(gtab).fit(ph.dwi, mask=ph.mask)
    core = ph.fibre_fraction[..., 2] > 0.99
    evals = np.array(FIBRE_EVALS)
    fa_expected = np.sqrt(0.5 * ((evals[0] - evals[1]) ** 2 + (evals[1] - evals[2]) ** 2 + (evals[2] - evals[0]) ** 2)
                          / np.sum(evals ** 2))
    np.testing.assert_allclose(fit.fa[core], fa_expected, atol=1e-3)
    # bundle 3 runs along k (superior): the principal eigenvector
    assert np.all(np.abs(fit.evecs[core][:, :, 0] @ [0, 0, 1]) > 0.999)
    grey = ph.mask & (ph.fibre_fraction.sum(-1) == 0)
    np.testing.assert_allclose(fit.fa[grey], 0, atol=1e-3)
    np.testing.assert_allclose(fit.md[grey], GREY_EVALS[0], rtol=1e-3)


def test_rician_noise_is_seeded():
    a = diffusion_phantom(size=16, n_directions=12, snr=20, seed=3)
    b = diffusion_phantom(size=16, n_directions=12, snr=20, seed=3)
    c = diffusion_phantom(size=16, n_directions=12, snr=20, seed=4)
    clean = diffusion_phantom(size=16, n_directions=12, snr=None, seed=3)
    np.testing.assert_array_equal(a.dwi, b.dwi)
    assert not np.array_equal(a.dwi, c.dwi)
    # in air the signal is the magnitude of complex Gaussian noise: Rayleigh, mean sigma sqrt(pi / 2)
    sigma = S0 / 20
    air = a.dwi[~a.mask]
    assert abs(air.mean() - sigma * np.sqrt(np.pi / 2)) < 0.03 * sigma
    assert a.dwi.min() >= 0
    # at high signal the noise is nearly Gaussian with standard deviation sigma
    b0 = a.dwi[..., 0][a.mask] - clean.dwi[..., 0][a.mask]
    assert abs(b0.std() - sigma) < 0.05 * sigma


def test_two_bundles_and_argument_checks():
    ph = diffusion_phantom(size=16, n_bundles=2, n_directions=10, snr=None)
    assert ph.connected_pairs == frozenset({(1, 2), (3, 4)}) and ph.fibre_fraction.shape[-1] == 2
    assert sorted(np.unique(ph.parcellation).tolist()) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="do not fit"):
        diffusion_phantom(size=12)
    with pytest.raises(ValueError, match="n_bundles"):
        diffusion_phantom(size=16, n_bundles=4)
    with pytest.raises(ValueError, match="snr"):
        diffusion_phantom(size=16, snr=-1)
    with pytest.raises(ValueError, match="size must be an integer"):
        diffusion_phantom(size=16.5)
