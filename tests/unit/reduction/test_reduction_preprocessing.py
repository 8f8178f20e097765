"""Smoothing against SciPy, normalisation and trial averaging by hand, reshaping, synthetic data."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import ndimage

from services.reduction.core import preprocessing, synthetic
from services.reduction.core.preprocessing import (gaussian_kernel, gaussian_smooth, soft_normalize, stack_trials,
                                                   trial_average, unstack_trials)
from services.reduction.core.synthetic import low_rank_gaussian, poisson_latent_population


@pytest.mark.parametrize("module", [preprocessing, synthetic])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- smoothing
@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest"])
@pytest.mark.parametrize("sigma", [0.7, 2.5, 6.0])
def test_smoothing_matches_scipy(mode, sigma):
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(120, 4)).astype(float)
    expected = ndimage.gaussian_filter1d(X, sigma, axis=0, mode=mode, truncate=4.0)
    np.testing.assert_allclose(gaussian_smooth(X, sigma_bins=sigma, mode=mode), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gaussian_smooth(X.T, sigma_bins=sigma, axis=1, mode=mode), expected.T,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gaussian_smooth(X[:, 0], sigma_bins=sigma, mode=mode), expected[:, 0],
                               rtol=1e-12, atol=1e-14)


def test_kernel_is_scipys_and_sums_to_one():
    w = gaussian_kernel(2.5)
    assert w.size == 2 * int(4 * 2.5 + 0.5) + 1 == 21
    impulse = np.zeros(41)
    impulse[20] = 1.0
    np.testing.assert_allclose(w, ndimage.gaussian_filter1d(impulse, 2.5, truncate=4.0)[10:31], rtol=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)


def test_signal_shorter_than_the_kernel_matches_scipy():
    x = np.array([1.0, 4.0, 2.0])
    np.testing.assert_allclose(gaussian_smooth(x, sigma_bins=3.0), ndimage.gaussian_filter1d(x, 3.0), rtol=1e-12)


def test_smoothing_preserves_mass_away_from_edges():
    rng = np.random.default_rng(1)
    sigma = 3.0
    X = np.zeros((200, 5))
    X[20:180] = rng.poisson(1.5, size=(160, 5))          # no spikes within 4 sigma (12 bins) of an edge
    for mode in ("constant", "reflect", "nearest"):
        smoothed = gaussian_smooth(X, sigma_bins=sigma, mode=mode)
        np.testing.assert_allclose(smoothed.sum(axis=0), X.sum(axis=0), rtol=1e-12)
    # with spikes at the edges, zero padding loses mass but reflection keeps all of it
    Y = rng.poisson(1.5, size=(200, 5)).astype(float)
    np.testing.assert_allclose(gaussian_smooth(Y, sigma_bins=sigma).sum(axis=0), Y.sum(axis=0), rtol=1e-12)
    assert np.all(gaussian_smooth(Y, sigma_bins=sigma, mode="constant").sum(axis=0) < Y.sum(axis=0))


def test_smoothing_trials_never_leaks_across_trial_boundaries():
    X = np.zeros((3, 30, 2))
    X[0, -1, 0] = 1.0                       # a spike in the last bin of trial 0 ...
    X[2, 0, 1] = 5.0                        # ... and the first bin of trial 2
    smoothed = gaussian_smooth(X, sigma_bins=2.0)
    assert np.all(smoothed[1] == 0.0)       # trial 1, between them, stays silent
    assert np.all(smoothed[0, :, 1] == 0.0) and np.all(smoothed[2, :, 0] == 0.0)
    np.testing.assert_allclose(smoothed, ndimage.gaussian_filter1d(X, 2.0, axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(smoothed.sum(axis=1), X.sum(axis=1), rtol=1e-12)
    # smoothing the stacked trials would leak: this is what 3-D input protects against
    leaky = unstack_trials(gaussian_smooth(stack_trials(X), sigma_bins=2.0), n_trials=3)
    assert leaky[1, 0, 0] > 0.01
    assert gaussian_smooth(X, sigma_bins=2.0, axis=1).shape == X.shape


def test_smoothing_dtypes_and_zero_width():
    X = np.arange(20, dtype=np.int64).reshape(10, 2)
    assert gaussian_smooth(X, sigma_bins=1.0).dtype == np.float64
    assert gaussian_smooth(X.astype(np.float32), sigma_bins=1.0).dtype == np.float32
    np.testing.assert_array_equal(gaussian_smooth(X, sigma_bins=0), X.astype(float))


def test_smoothing_bad_input():
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match="sigma_bins must be a positive finite number, got -1"):
        gaussian_smooth(X, sigma_bins=-1)
    with pytest.raises(ValueError, match="sigma_bins"):
        gaussian_smooth(X, sigma_bins=np.inf)
    with pytest.raises(ValueError, match="smoothed along time \\(axis 1\\), got axis=0"):
        gaussian_smooth(np.ones((2, 10, 3)), sigma_bins=1.0, axis=0)
    with pytest.raises(ValueError, match="axis 2 is out of range for activity of shape \\(10, 2\\)"):
        gaussian_smooth(X, sigma_bins=1.0, axis=2)
    with pytest.raises(ValueError, match="mode must be one of"):
        gaussian_smooth(X, sigma_bins=1.0, mode="wrap")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at index \(3, 1\)\)"):
        gaussian_smooth(bad, sigma_bins=1.0)
    with pytest.raises(ValueError, match="rank 4"):
        gaussian_smooth(np.ones((2, 2, 2, 2)), sigma_bins=1.0)


# --------------------------------------------------------------------------- normalisation
def test_soft_normalize_by_hand_and_reapplied():
    rates = np.array([[0.0, 10.0, 3.0], [20.0, 11.0, 3.0], [10.0, 12.0, 3.0]])
    normalized, scale = soft_normalize(rates, soft=5.0)
    np.testing.assert_allclose(scale, [25.0, 7.0, 5.0])          # ranges 20, 2, 0 plus 5
    np.testing.assert_allclose(normalized, rates / [25.0, 7.0, 5.0])
    new = np.array([[40.0, 9.0, 1.0]])
    np.testing.assert_allclose(new / scale, [[1.6, 9.0 / 7.0, 0.2]])
    # the strongly modulated neuron ends with a range near 1, the weak one far below it
    ranges = np.ptp(normalized, axis=0)
    assert ranges[0] == pytest.approx(0.8) and ranges[1] == pytest.approx(2 / 7)


def test_soft_normalize_trials_takes_the_range_over_trials_and_time():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 50, size=(4, 10, 3))
    normalized, scale = soft_normalize(X, soft=2.0)
    np.testing.assert_allclose(scale, X.reshape(-1, 3).max(axis=0) - X.reshape(-1, 3).min(axis=0) + 2.0)
    assert normalized.shape == X.shape
    _, plain = soft_normalize(X, soft=0.0)
    np.testing.assert_allclose(plain, np.ptp(X.reshape(-1, 3), axis=0))


def test_soft_normalize_bad_input():
    with pytest.raises(ValueError, match="neuron 1 is constant and soft=0"):
        soft_normalize(np.array([[1.0, 2.0], [3.0, 2.0]]), soft=0.0)
    with pytest.raises(ValueError, match="soft must be a non-negative finite number, got -1"):
        soft_normalize(np.ones((3, 2)), soft=-1.0)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        soft_normalize(np.ones(3))


# --------------------------------------------------------------------------- trial averaging
def test_trial_average_against_a_loop():
    rng = np.random.default_rng(3)
    X = rng.poisson(3.0, size=(12, 7, 4))
    conditions = np.array([2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 0, 1])
    psth, labels = trial_average(X, conditions)
    assert labels.tolist() == [0, 1, 2] and psth.shape == (3, 7, 4) and psth.dtype == np.float64
    for c, label in enumerate(labels):
        np.testing.assert_allclose(psth[c], X[conditions == label].mean(axis=0), rtol=1e-14)


def test_trial_average_bad_input():
    with pytest.raises(ValueError, match=r"one label per trial, shape \(4,\), got shape \(3,\)"):
        trial_average(np.ones((4, 2, 1)), [0, 1, 0])
    with pytest.raises(ValueError, match="must be 3-D"):
        trial_average(np.ones((4, 2)), [0, 1, 0, 1])


# --------------------------------------------------------------------------- reshaping
def test_stack_and_unstack_round_trip():
    X = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    S = stack_trials(X)
    assert S.shape == (6, 4) and np.shares_memory(S, X)
    np.testing.assert_array_equal(S[3 + 2], X[1, 2])            # row trial * n_time + t
    np.testing.assert_array_equal(unstack_trials(S, n_trials=2), X)
    np.testing.assert_array_equal(unstack_trials(S, n_time=3), X)
    np.testing.assert_array_equal(unstack_trials(S, n_trials=2, n_time=3), X)


def test_stack_and_unstack_bad_input():
    with pytest.raises(ValueError, match=r"\(n_trials, n_time, n_neurons\), got an array of rank 2"):
        stack_trials(np.ones((3, 2)))
    with pytest.raises(ValueError, match="7 rows cannot be split into n_trials=2"):
        unstack_trials(np.ones((7, 2)), n_trials=2)
    with pytest.raises(ValueError, match="6 rows cannot be split into n_trials=2 trials of n_time=4"):
        unstack_trials(np.ones((6, 2)), n_trials=2, n_time=4)
    with pytest.raises(ValueError, match="give n_trials or n_time"):
        unstack_trials(np.ones((6, 2)))
    with pytest.raises(ValueError, match="n_time must be a positive integer, got 0"):
        unstack_trials(np.ones((6, 2)), n_time=0)


# --------------------------------------------------------------------------- synthetic data
def test_low_rank_gaussian_has_the_documented_covariance():
    data = low_rank_gaussian(n_samples=40000, n_neurons=10, rank=3, noise_std=0.4, seed=3)
    np.testing.assert_allclose(data.loadings.T @ data.loadings, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(data.activity, data.mean + data.latents @ data.loadings.T, atol=0.4 * 6)
    sample = np.cov(data.activity, rowvar=False)
    np.testing.assert_allclose(sample, data.covariance, atol=0.12)
    np.testing.assert_allclose(data.latents.std(axis=0), [3.0, 2.0, 1.0], rtol=0.02)
    assert np.all((data.mean >= 5) & (data.mean <= 15))
    again = low_rank_gaussian(n_samples=40000, n_neurons=10, rank=3, noise_std=0.4, seed=3)
    np.testing.assert_array_equal(again.activity, data.activity)
    with pytest.raises(ValueError, match="rank 11 exceeds n_neurons 10"):
        low_rank_gaussian(n_samples=5, n_neurons=10, rank=11, noise_std=0.1, seed=0)
    with pytest.raises(ValueError, match="noise_std must be a non-negative"):
        low_rank_gaussian(n_samples=5, n_neurons=10, rank=1, noise_std=-0.1, seed=0)
    with pytest.raises(ValueError, match="latent_std must be 2"):
        low_rank_gaussian(n_samples=5, n_neurons=10, rank=2, noise_std=0.1, seed=0, latent_std=[1.0])


def test_poisson_latent_population_follows_its_model():
    pop = poisson_latent_population(n_samples=50000, n_neurons=20, n_latents=2, seed=1, mean_count=0.5)
    np.testing.assert_allclose(pop.rates, np.exp(pop.log_baseline + pop.latents @ pop.loadings.T), rtol=1e-12)
    # the baseline is set so each neuron's mean count is about m_j in [0.25, 0.75]
    assert np.all((pop.counts.mean(axis=0) > 0.15) & (pop.counts.mean(axis=0) < 0.95))
    np.testing.assert_allclose(pop.counts.mean(axis=0), pop.rates.mean(axis=0), rtol=0.05)
    # smooth latents: neighbouring bins are strongly correlated (sigma = 5 bins)
    lag1 = np.corrcoef(pop.latents[:-1, 0], pop.latents[1:, 0])[0, 1]
    assert lag1 > 0.95
