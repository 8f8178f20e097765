"""Predictive coding: image statistics, inference against the analytic MAP, local learning, Gabor-like fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.simulation.core.predictive_coding import (
    PredictiveCodingNetwork, bar_length_tuning, bar_stimulus, first_layer_fields, fit_gabor, infer_causes,
    natural_images, orientation_selectivity, pink_noise_image, random_network, sample_regions,
    train_predictive_coding, whiten_image,
)


def _spectral_slope(image, low=0.03, high=0.15):
    """Slope of log radially averaged power against log frequency between ``low`` and ``high``."""
    power = np.abs(np.fft.fft2(image)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1]), indexing="ij"))
    bins = np.geomspace(low, high, 12)
    centres, means = [], []
    for a, b in zip(bins[:-1], bins[1:]):
        ring = (f >= a) & (f < b)
        centres.append(math.sqrt(a * b))
        means.append(power[ring].mean())
    return np.polyfit(np.log(centres), np.log(means), 1)[0]


def test_pink_noise_has_a_one_over_f_squared_spectrum_and_whitening_flattens_it():
    image = pink_noise_image((256, 256), seed=3)
    assert _spectral_slope(image) == pytest.approx(-2.0, abs=0.15)
    assert abs(_spectral_slope(whiten_image(image), high=0.2)) < 0.25
    assert _spectral_slope(pink_noise_image((256, 256), exponent=1.0, seed=3)) == pytest.approx(-1.0, abs=0.15)
    np.testing.assert_array_equal(pink_noise_image((32, 32), seed=1), pink_noise_image((32, 32), seed=1))


def test_natural_images_are_bundled_and_regions_are_zero_mean_crops():
    images = natural_images(["camera", "astronaut"])
    assert [im.shape for im in images] == [(512, 512), (512, 512)] and all(0 <= im.min() <= im.max() <= 1
                                                                           for im in images)
    regions = sample_regions(images, shape=(8, 16), n_regions=101, seed=0)
    assert regions.shape == (101, 8, 16)
    np.testing.assert_allclose(regions.mean(axis=(1, 2)), 0, atol=1e-12)


def _map_estimate(net, x):
    """The minimiser of the quadratic energy of a linear, Gaussian-prior network with one module."""
    U1, U2 = net.weights
    s0, s1 = net.noise_sds
    a1, a2 = net.sparsity
    n1, n2 = U1.shape[1], U2.shape[1]
    # E = |x - U1 r1|^2 / 2 s0^2 + |r1 - U2 r2|^2 / 2 s1^2 + a1 |r1|^2 / 2 + a2 |r2|^2 / 2
    A = np.zeros((n1 + n2, n1 + n2))
    A[:n1, :n1] = U1.T @ U1 / s0 ** 2 + np.eye(n1) / s1 ** 2 + a1 * np.eye(n1)
    A[:n1, n1:] = -U2 / s1 ** 2
    A[n1:, :n1] = -U2.T / s1 ** 2
    A[n1:, n1:] = U2.T @ U2 / s1 ** 2 + a2 * np.eye(n2)
    b = np.concatenate([U1.T @ x / s0 ** 2, np.zeros(n2)])
    return np.linalg.solve(A, b)


def test_inference_of_a_linear_gaussian_hierarchy_converges_to_the_analytic_map():
    net = random_network(patch_shape=(4, 4), n_modules=1, layer_sizes=(6, 3), prior="gaussian",
                         noise_sds=(0.5, 0.8), sparsity=(0.3, 0.2), seed=1)
    regions = np.random.default_rng(2).normal(size=(5, 4, 4))
    out = infer_causes(net, regions, n_steps=3000, rate=0.9)
    for k in range(5):
        expected = _map_estimate(net, regions[k].ravel())
        np.testing.assert_allclose(out.causes[0][k, 0], expected[:6], atol=1e-6)
        np.testing.assert_allclose(out.causes[1][k], expected[6:], atol=1e-6)
    assert np.all(np.diff(out.energy) <= 1e-10)
    # the errors are what they say: input minus prediction, causes minus top-down prediction
    np.testing.assert_allclose(out.errors[0][:, 0], regions.reshape(5, -1) - out.causes[0][:, 0] @ net.weights[0].T)
    np.testing.assert_allclose(out.errors[1][:, 0], out.causes[0][:, 0] - out.causes[1] @ net.weights[1].T)


def test_sparse_tanh_inference_descends_the_energy_and_feedback_off_leaves_level_one_unpredicted():
    net = random_network(n_modules=3, layer_sizes=(12, 5), activation="tanh", seed=0)
    regions = sample_regions([pink_noise_image((64, 64))], shape=net.region_shape, n_regions=8)
    out = infer_causes(net, regions, n_steps=50)
    assert np.all(np.diff(out.energy) <= 1e-9) and out.energy[-1] < out.energy[0]
    alone = infer_causes(net, regions, n_steps=50, feedback=False)
    assert len(alone.causes) == 1
    np.testing.assert_array_equal(alone.errors[1], alone.causes[0])


def test_learning_is_the_local_hebbian_rule():
    """One update on one batch equals error-times-cause, then unit-norm fields."""
    regions = sample_regions([whiten_image(pink_noise_image((64, 64), seed=5))], shape=(4, 6), n_regions=40)
    kwargs = dict(patch_shape=(4, 4), n_modules=2, module_offset=2, layer_sizes=(5, 3), n_steps=15, rate=0.5,
                  learning_rate=0.2, seed=9)
    trained = train_predictive_coding(regions, n_batches=1, batch_size=40, **kwargs).network
    start = random_network(patch_shape=(4, 4), n_modules=2, module_offset=2, layer_sizes=(5, 3),
                           seed=np.random.default_rng(9))
    # the batch is the whole (shuffled) set, so its order does not matter for the averaged update
    before = infer_causes(start, regions, n_steps=15, rate=0.5)
    e0, r1 = before.errors[0].reshape(-1, 16), before.causes[0].reshape(-1, 5)
    U1 = start.weights[0] + 0.2 * e0.T @ r1 / len(e0)
    np.testing.assert_allclose(trained.weights[0], U1 / np.linalg.norm(U1, axis=0), rtol=1e-10)
    e1, r2 = before.errors[1].reshape(40, -1), before.causes[1]
    U2 = start.weights[1] + 0.2 * e1.T @ r2 / 40
    np.testing.assert_allclose(trained.weights[1], U2 / np.linalg.norm(U2, axis=0), rtol=1e-10)


@pytest.fixture(scope="module")
def trained():
    images = [whiten_image(image) for image in natural_images(["camera", "astronaut", "coffee"])]
    regions = sample_regions(images, shape=(8, 16), n_regions=10000, seed=0)
    calls = []
    result = train_predictive_coding(regions, seed=0, report=lambda f, m: calls.append(f))
    return result, calls


@pytest.fixture(scope="module")
def trained_on_pink_noise():
    images = [whiten_image(pink_noise_image((512, 512), seed=s)) for s in range(3)]
    return train_predictive_coding(sample_regions(images, shape=(8, 16), n_regions=10000, seed=0), seed=0)


def test_training_lowers_the_prediction_error_of_every_level(trained):
    result, calls = trained
    assert result.prediction_errors.shape == result.relative_errors.shape == (200, 2)
    first, last = result.relative_errors[:10].mean(axis=0), result.relative_errors[-10:].mean(axis=0)
    assert np.all(last < 0.8 * first), (first, last)
    assert last[0] < 0.6 and last[1] < 0.6
    assert calls == sorted(calls) and calls[-1] == 1.0 and len(calls) == 10


def test_trained_first_layer_fields_are_gabor_like_and_oriented_unlike_random_ones(trained, trained_on_pink_noise):
    fields = first_layer_fields(trained[0].network)
    random_fields = first_layer_fields(random_network(seed=1))
    r2, r2_random = np.median(fit_gabor(fields).r2), np.median(fit_gabor(random_fields).r2)
    # measured: about 0.95 trained, 0.25 random
    assert r2 > 0.8 and r2_random < 0.4, (r2, r2_random)
    osi = np.median(orientation_selectivity(fields).osi)
    osi_random = np.median(orientation_selectivity(random_fields).osi)
    osi_pink = np.median(orientation_selectivity(first_layer_fields(trained_on_pink_noise.network)).osi)
    # measured: about 0.45 trained on natural images, 0.2 random or trained on (Gaussian) pink noise: the
    # orientation comes from the edges of natural images, not from their 1/f^2 spectrum
    assert osi > 0.35 and osi_random < 0.25 and osi_pink < osi - 0.1, (osi, osi_random, osi_pink)
    # the fits agree with the grating tuning on the preferred orientation of well-fitted fields
    gabor = fit_gabor(fields)
    tuning = orientation_selectivity(fields)
    good = (gabor.r2 > 0.9) & (tuning.osi > 0.4)
    difference = np.abs(np.angle(np.exp(2j * (gabor.orientation[good] - tuning.preferred_orientation[good])))) / 2
    assert good.sum() >= 5 and np.median(difference) < math.radians(15)


def test_training_is_deterministic_for_a_seed():
    regions = sample_regions([whiten_image(pink_noise_image((64, 64)))], shape=(8, 16), n_regions=300)
    a = train_predictive_coding(regions, n_batches=5, seed=4)
    b = train_predictive_coding(regions, n_batches=5, seed=4)
    for Ua, Ub in zip(a.network.weights, b.network.weights):
        np.testing.assert_array_equal(Ua, Ub)


@pytest.mark.parametrize("theta", [0.0, 0.6, 1.2, 2.5])
def test_gabor_fit_recovers_a_planted_gabor(theta):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:10, 0:10].astype(float)
    u = (xx - 4.3) * math.cos(theta) + (yy - 5.1) * math.sin(theta)
    v = -(xx - 4.3) * math.sin(theta) + (yy - 5.1) * math.cos(theta)
    field = np.exp(-u ** 2 / (2 * 1.4 ** 2) - v ** 2 / (2 * 2.2 ** 2)) * np.cos(2 * math.pi * 0.2 * u + 0.7)
    fit = fit_gabor((field + 0.02 * rng.normal(size=field.shape))[None])
    assert fit.r2[0] > 0.97
    stripes = (theta + math.pi / 2) % math.pi
    assert abs(np.angle(np.exp(2j * (fit.orientation[0] - stripes)))) / 2 < 0.05
    assert fit.frequency[0] == pytest.approx(0.2, abs=0.01)
    np.testing.assert_allclose(fit.center[0], [4.3, 5.1], atol=0.2)
    np.testing.assert_allclose([fit.sigma_across[0], fit.sigma_along[0]], [1.4, 2.2], rtol=0.1)


def test_bar_stimulus_geometry():
    bar = bar_stimulus((21, 21), length=9, width=1, orientation=math.pi / 2)
    assert bar.sum() == pytest.approx(9.0) and np.allclose(bar[:, 10][6:15], 1) and abs(bar[:, 9]).sum() < 1e-12
    diagonal = bar_stimulus((21, 21), length=10, width=2, orientation=math.pi / 4)
    assert diagonal.sum() == pytest.approx(20.0, rel=0.1)
    np.testing.assert_allclose(diagonal, diagonal.T)
    assert bar_stimulus((5, 5), length=0).sum() == 0


def test_bar_length_probe_of_a_trained_unit(trained):
    net = trained[0].network
    gabor = fit_gabor(first_layer_fields(net))
    unit = int(np.argmax(gabor.r2))
    lengths = np.array([0.0, 2, 4, 8, 12, 16])
    out = bar_length_tuning(net, unit=unit, lengths=lengths)
    assert out["error"].shape == out["cause"].shape == out["error_no_feedback"].shape == (6,)
    assert out["orientation"] == pytest.approx(gabor.orientation[unit])
    assert out["cause"][0] == 0 and out["error"][0] == 0
    np.testing.assert_array_equal(out["error_no_feedback"], out["cause_no_feedback"])
    # the polarity is chosen to drive the unit, and a longer bar (inside the field) drives it more
    assert out["cause_no_feedback"][3] > out["cause_no_feedback"][1] > 0
    orthogonal = bar_length_tuning(net, unit=unit, lengths=[8.0], orientation=out["orientation"] + math.pi / 2)
    assert abs(orthogonal["cause_no_feedback"][0]) < 0.5 * out["cause_no_feedback"][3]


def test_a_raising_report_stops_training():
    regions = sample_regions([pink_noise_image((64, 64))], shape=(8, 16), n_regions=300)

    def cancel(fraction, message):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        train_predictive_coding(regions, n_batches=20, batch_size=50, report=cancel)


@pytest.mark.parametrize("call, message", [
    (lambda: pink_noise_image((0, 8)), "shape"),
    (lambda: whiten_image(np.ones((8, 8))), "constant"),
    (lambda: whiten_image(np.full((8, 8), np.nan)), "NaN"),
    (lambda: natural_images(["lena"]), "image names"),
    (lambda: sample_regions([np.zeros((4, 4))], shape=(8, 8), n_regions=2), "smaller"),
    (lambda: train_predictive_coding(np.zeros((10, 8, 8)), n_modules=3), r"regions must have shape \(n, 8, 16\)"),
    (lambda: train_predictive_coding(np.zeros((10, 8, 16)), batch_size=20), "batch_size"),
    (lambda: train_predictive_coding(np.zeros((10, 8, 16)), noise_sds=(1.0, -1.0)), "noise_sds"),
    (lambda: train_predictive_coding(np.zeros((10, 8, 16)), layer_sizes=()), "layer_sizes"),
    (lambda: infer_causes(random_network(), np.zeros((2, 8, 16)), rate=1.5), "rate"),
    (lambda: random_network(activation="relu"), "activation"),
    (lambda: fit_gabor(np.zeros((2, 8, 8))), "constant"),
    (lambda: bar_length_tuning(random_network(), unit=99, lengths=[1.0]), "unit"),
    (lambda: PredictiveCodingNetwork([np.zeros((64, 4)), np.zeros((5, 2))], (8, 8), 3, 4).validate(), "weights"),
])
def test_bad_input_raises_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
