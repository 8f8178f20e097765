"""Scores of reductions against hand computations, scikit-learn, SciPy and simulated ground truth."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import threadpoolctl
from scipy import stats
from sklearn import metrics
from sklearn.linear_model import LinearRegression

from services.reduction.core import scores
from services.reduction.core.pca import PCA
from services.reduction.core.preprocessing import gaussian_smooth
from services.reduction.core.scores import (RATE_FLOOR, bits_per_spike, co_smoothing_bits_per_spike,
                                            explained_variance_score, forward_prediction_r2, latent_recovery_r2,
                                            poisson_log_likelihood, poisson_readout)
from services.reduction.core.synthetic import low_rank_gaussian, poisson_latent_population


@pytest.fixture(autouse=True, scope="module")
def single_threaded_blas():
    """One BLAS thread: the matrices are small, and on a shared machine extra threads spin-wait."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def population():
    """40 Poisson GLM neurons driven by 3 smooth latents; 30 held in, 10 held out."""
    return poisson_latent_population(n_samples=15000, n_neurons=40, n_latents=3, seed=0, mean_count=0.4, gain=0.7)


def test_docstring_examples():
    result = doctest.testmod(scores, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- explained variance
def test_explained_variance_against_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * [1, 2, 3, 4, 5] + 7
    R = X + rng.normal(size=X.shape)
    result = explained_variance_score(X, R)
    np.testing.assert_allclose(result.per_neuron, metrics.r2_score(X, R, multioutput="raw_values"), rtol=1e-12)
    assert result.total == pytest.approx(metrics.r2_score(X, R, multioutput="variance_weighted"), rel=1e-12)
    stacked = explained_variance_score(X.reshape(4, 50, 5), R.reshape(4, 50, 5))
    assert stacked.total == pytest.approx(result.total, rel=1e-14)


def test_explained_variance_of_pca_reconstruction_is_its_variance_ratio():
    data = low_rank_gaussian(n_samples=1000, n_neurons=12, rank=3, noise_std=0.3, seed=1)
    pca = PCA(n_components=3).fit(data.activity)
    result = explained_variance_score(data.activity, pca.reconstruct(data.activity))
    assert result.total == pytest.approx(pca.explained_variance_ratio_.sum(), rel=1e-10)
    assert explained_variance_score(data.activity, PCA().fit(data.activity).reconstruct(data.activity)).total \
        == pytest.approx(1.0, abs=1e-12)


def test_explained_variance_hand_example_and_constant_neuron():
    X = np.array([[1.0, 0.0, 5.0], [2.0, 2.0, 5.0], [3.0, 4.0, 5.0]])
    R = np.array([[1.0, 1.0, 5.0], [2.0, 2.0, 5.0], [3.0, 3.0, 4.0]])
    result = explained_variance_score(X, R)
    # SSE = (0, 2, 1), SST = (2, 8, 0): the constant neuron is NaN and left out of the pool
    np.testing.assert_allclose(result.per_neuron, [1.0, 0.75, np.nan])
    assert result.total == pytest.approx(1 - 2 / 10)
    assert np.isnan(explained_variance_score(np.ones((3, 2)), np.zeros((3, 2))).total)
    with pytest.raises(ValueError, match=r"same shape, got \(3, 3\) and \(3, 2\)"):
        explained_variance_score(X, R[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        explained_variance_score(X, np.full_like(X, np.nan))


# --------------------------------------------------------------------------- latent recovery
def test_latent_recovery_is_invariant_to_affine_maps():
    rng = np.random.default_rng(2)
    true = rng.normal(size=(500, 3))
    A = rng.normal(size=(3, 3))
    estimated = true @ A + [1.0, -2.0, 3.0]
    result = latent_recovery_r2(estimated, true)
    np.testing.assert_allclose(result.r2, 1.0, atol=1e-12)
    np.testing.assert_allclose(estimated @ result.weights + result.intercept, true, atol=1e-10)
    assert result.mean_r2 == pytest.approx(1.0, abs=1e-12)


def test_latent_recovery_matches_linear_regression_in_and_out_of_sample():
    rng = np.random.default_rng(3)
    true = rng.normal(size=(400, 2))
    estimated = np.column_stack([true[:, 0] + 0.5 * rng.normal(size=400), rng.normal(size=400),
                                 true[:, 1] - true[:, 0] + 0.1 * rng.normal(size=400)])
    in_sample = latent_recovery_r2(estimated, true)
    ref = LinearRegression().fit(estimated, true)
    np.testing.assert_allclose(in_sample.r2, metrics.r2_score(true, ref.predict(estimated),
                                                              multioutput="raw_values"), rtol=1e-10)
    np.testing.assert_allclose(in_sample.weights, ref.coef_.T, rtol=1e-8)
    held_out = latent_recovery_r2(estimated, true, train_fraction=0.75)
    ref = LinearRegression().fit(estimated[:300], true[:300])
    np.testing.assert_allclose(held_out.r2, metrics.r2_score(true[300:], ref.predict(estimated[300:]),
                                                             multioutput="raw_values"), rtol=1e-10)
    # 3-D input splits by trials
    trials = latent_recovery_r2(estimated.reshape(8, 50, 3), true.reshape(8, 50, 2), train_fraction=0.75)
    np.testing.assert_allclose(trials.r2, held_out.r2, rtol=1e-12)


def test_pca_latents_recover_the_true_latents():
    data = low_rank_gaussian(n_samples=3000, n_neurons=30, rank=3, noise_std=0.5, seed=4)
    Z = PCA(n_components=3).fit_transform(data.activity)
    result = latent_recovery_r2(Z, data.latents, train_fraction=0.5)
    # a PCA latent is the true one plus the noise projected on its axis (variance noise_std^2),
    # so R^2 = s^2 / (s^2 + noise_std^2): 0.973, 0.941, 0.8 for latent_std 3, 2, 1
    expected = data.latent_std**2 / (data.latent_std**2 + 0.5**2)
    np.testing.assert_allclose(result.r2, expected, atol=0.02)


def test_latent_recovery_bad_input():
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"same samples .* got shapes \(10, 2\) and \(9, 1\)"):
        latent_recovery_r2(z, np.zeros((9, 1)))
    with pytest.raises(ValueError, match="train_fraction must be a number strictly between 0 and 1, got 1.5"):
        latent_recovery_r2(z, np.zeros((10, 1)), train_fraction=1.5)
    with pytest.raises(ValueError, match="leaves no samples to evaluate on"):
        latent_recovery_r2(z, np.zeros((10, 1)), train_fraction=0.99)
    with pytest.raises(ValueError, match="2 samples to fit on, fewer than the 3 parameters"):
        latent_recovery_r2(z, np.zeros((10, 1)), train_fraction=0.2)


# --------------------------------------------------------------------------- Poisson scores
def test_poisson_log_likelihood_matches_scipy():
    rng = np.random.default_rng(5)
    rates = rng.uniform(0.05, 4.0, size=(300, 6))
    counts = rng.poisson(rates)
    assert poisson_log_likelihood(counts, rates) == pytest.approx(stats.poisson.logpmf(counts, rates).sum(),
                                                                  rel=1e-12)
    # broadcasting a rate per neuron
    mean = rates.mean(axis=0)
    assert poisson_log_likelihood(counts, mean) == pytest.approx(stats.poisson.logpmf(counts, mean).sum(), rel=1e-12)


def test_rates_at_or_below_zero_are_floored():
    counts = np.array([[0, 2]])
    # a zero rate where no spike fell costs nothing; where spikes fell, k log(floor) per bin
    assert poisson_log_likelihood(counts, [[0.0, 1.0]]) == pytest.approx(0.0 - RATE_FLOOR + 2 * 0.0 - 1.0
                                                                         - np.log(2.0), rel=1e-12)
    floored = poisson_log_likelihood(counts, [[1.0, -3.0]])
    assert floored == pytest.approx(-1.0 + 2 * np.log(RATE_FLOOR) - RATE_FLOOR - np.log(2.0), rel=1e-12)
    assert np.isfinite(bits_per_spike(counts, [[1.0, 0.0]]))


def test_bits_per_spike_hand_example():
    counts = np.array([[0, 1], [2, 0], [1, 1]])
    rates = np.array([[0.2, 1.0], [2.0, 0.2], [1.0, 1.0]])
    null = counts.mean(axis=0)                                   # 1.0 and 2/3
    ll = np.sum(counts * np.log(rates) - rates)                  # log k! cancels in the difference
    ll_null = np.sum(counts * np.log(null) - null)
    assert bits_per_spike(counts, rates) == pytest.approx((ll - ll_null) / (5 * np.log(2)), rel=1e-12)
    # = 0.5186 to four places: the value of the docstring example
    assert bits_per_spike(counts, rates) == pytest.approx(0.5186, abs=5e-5)


def test_bits_per_spike_of_null_is_zero_and_of_true_rates_positive(population):
    counts, rates = population.counts, population.rates
    null = np.broadcast_to(counts.mean(axis=0), counts.shape)
    assert bits_per_spike(counts, null) == pytest.approx(0.0, abs=1e-12)
    assert bits_per_spike(counts, rates, null_rates=rates) == pytest.approx(0.0, abs=1e-12)
    true_bps = bits_per_spike(counts, rates)
    assert 0.05 < true_bps < 1.0
    # a worse-than-null prediction is negative
    assert bits_per_spike(counts, rates[::-1]) < 0
    # trials are pooled: 3-D input gives the same number
    assert bits_per_spike(counts.reshape(25, 600, 40), rates.reshape(25, 600, 40)) == pytest.approx(true_bps,
                                                                                                   rel=1e-12)
    # an explicit null (e.g. a training-set mean) is used instead of the evaluated data's mean
    other = bits_per_spike(counts, rates, null_rates=counts[:1000].mean(axis=0) + 0.01)
    assert other != pytest.approx(true_bps)


def test_bits_per_spike_bad_input():
    with pytest.raises(ValueError, match="no spikes"):
        bits_per_spike(np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="non-negative spike counts, found a negative value at index \\(1, 0\\)"):
        bits_per_spike(np.array([[1, 0], [-1, 0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"rates of shape \(3, 2\) do not match counts of shape \(2, 2\)"):
        bits_per_spike(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="rates holds NaN"):
        bits_per_spike(np.ones((2, 2)), np.full((2, 2), np.nan))


# --------------------------------------------------------------------------- co-smoothing
def test_poisson_readout_recovers_the_generating_glm(population):
    z, held_out = population.latents, slice(30, 40)
    rates = poisson_readout(z[:10000], population.counts[:10000, held_out], z[10000:], alpha=0.0)
    true = population.rates[10000:, held_out]
    error = np.abs(np.log(rates) - np.log(true))
    assert error.mean() < 0.03 and error.max() < 0.3
    with pytest.raises(ValueError, match="test_latents have 2 latents, train_latents have 3"):
        poisson_readout(z[:100], population.counts[:100, :2], z[:10, :2])
    with pytest.raises(ValueError, match="alpha must be a non-negative finite number"):
        poisson_readout(z[:100], population.counts[:100, :2], z[:10], alpha=-1.0)


def test_co_smoothing_with_true_latents_approaches_the_true_rates(population):
    z, counts, held_out = population.latents, population.counts, slice(30, 40)
    train, test = slice(0, 10000), slice(10000, None)
    with_true_latents = co_smoothing_bits_per_spike(z[train], counts[train, held_out], z[test], counts[test, held_out])
    ceiling = bits_per_spike(counts[test, held_out], population.rates[test, held_out])
    assert ceiling > 0.1
    assert with_true_latents == pytest.approx(ceiling, abs=0.01)
    # latents of no use score about zero, and never much above it
    noise = np.random.default_rng(12345).normal(size=z.shape)   # not the seed behind the latents
    assert abs(co_smoothing_bits_per_spike(noise[train], counts[train, held_out], noise[test],
                                           counts[test, held_out])) < 0.01
    # PCA of the smoothed held-in neurons: informative but below the true latents
    held_in = gaussian_smooth(counts[:, :30], sigma_bins=4.0)
    pca = PCA(n_components=3).fit(held_in[train])
    Z = pca.transform(held_in)
    with_pca = co_smoothing_bits_per_spike(Z[train], counts[train, held_out], Z[test], counts[test, held_out])
    assert 0.3 * ceiling < with_pca < with_true_latents


def test_co_smoothing_accepts_trials_and_checks_shapes(population):
    z, counts = population.latents[:4000], population.counts[:4000, 30:33]
    flat = co_smoothing_bits_per_spike(z[:3000], counts[:3000], z[3000:], counts[3000:])
    trials = co_smoothing_bits_per_spike(z[:3000].reshape(30, 100, 3), counts[:3000].reshape(30, 100, 3),
                                         z[3000:].reshape(10, 100, 3), counts[3000:].reshape(10, 100, 3))
    assert trials == pytest.approx(flat, rel=1e-9)
    with pytest.raises(ValueError, match="train_heldout_counts have 3 neurons, test_heldout_counts have 2"):
        co_smoothing_bits_per_spike(z[:3000], counts[:3000], z[3000:], counts[3000:, :2])
    with pytest.raises(ValueError, match="test_latents and test_heldout_counts must have the same samples"):
        co_smoothing_bits_per_spike(z[:3000], counts[:3000], z[3000:3500], counts[3000:])


# --------------------------------------------------------------------------- forward prediction
def test_forward_prediction_r2():
    rng = np.random.default_rng(6)
    truth = rng.normal(size=(20, 5, 3))
    predicted = truth + rng.normal(size=truth.shape) * np.linspace(0.1, 1.0, 5)[None, :, None]
    result = forward_prediction_r2(truth, predicted)
    flat_t, flat_p = truth.reshape(-1, 3), predicted.reshape(-1, 3)
    np.testing.assert_allclose(result.r2, metrics.r2_score(flat_t, flat_p, multioutput="raw_values"), rtol=1e-12)
    assert result.mean_r2 == pytest.approx(result.r2.mean())
    expected_steps = [metrics.r2_score(truth[:, k], predicted[:, k], multioutput="variance_weighted")
                      for k in range(5)]
    np.testing.assert_allclose(result.r2_by_step, expected_steps, rtol=1e-12)
    assert np.all(np.diff(result.r2_by_step) < 0)        # noise grows with the horizon
    assert forward_prediction_r2(flat_t, flat_p).r2_by_step is None
    with pytest.raises(ValueError, match="same shape"):
        forward_prediction_r2(truth, predicted[:, :4])
