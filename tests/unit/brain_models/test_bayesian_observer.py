"""The Bayesian observer: conjugate updates, the probit psychometric curve, and ML recovery of planted parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from services.simulation.core.bayesian_observer import (
    ObserverParameters, choice_log_likelihood, fit_observer, psychometric_curve, sequential_posterior,
    simulate_choices,
)


@pytest.mark.parametrize("seed", range(5))
def test_sequential_posterior_equals_the_closed_form_conjugate_update(seed):
    rng = np.random.default_rng(seed)
    mu0, s0, s = rng.normal(), rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)
    m = rng.normal(rng.normal(0, 2), s, size=(4, int(rng.integers(1, 12))))
    post = sequential_posterior(m, prior_mean=mu0, prior_sd=s0, noise_sd=s)
    k = np.arange(m.shape[1] + 1)
    precision = 1 / s0 ** 2 + k / s ** 2
    sums = np.concatenate([np.zeros((4, 1)), np.cumsum(m, axis=1)], axis=1)
    np.testing.assert_allclose(post.variances, np.broadcast_to(1 / precision, post.variances.shape), rtol=1e-12)
    np.testing.assert_allclose(post.means, (mu0 / s0 ** 2 + sums / s ** 2) / precision, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.predictive_sds ** 2, post.variances + s ** 2, rtol=1e-12)
    # the evidence is the joint Gaussian density of the measurements: mean mu0, covariance s0^2 11' + s^2 I
    n = m.shape[1]
    cov = s0 ** 2 * np.ones((n, n)) + s ** 2 * np.eye(n)
    np.testing.assert_allclose(post.log_evidence, stats.multivariate_normal(np.full(n, mu0), cov).logpdf(m),
                               rtol=1e-10)


def test_posterior_of_one_sequence_has_prior_at_index_zero_and_shrinking_variance():
    post = sequential_posterior([5.0, 5.0, 5.0], prior_mean=0.0, prior_sd=1.0, noise_sd=1.0)
    assert post.means[0] == 0.0 and post.variances[0] == 1.0
    assert np.all(np.diff(post.variances) < 0) and np.all(np.diff(post.means) > 0)
    np.testing.assert_allclose(post.gains, [1 / 2, 1 / 3, 1 / 4])


@pytest.mark.parametrize("n_samples", [1, 4])
def test_psychometric_curve_without_lapses_is_the_analytic_probit(n_samples):
    p = ObserverParameters(prior_mean=1.0, prior_sd=0.7, noise_sd=0.9)
    x, r = np.linspace(-3, 4, 41), 0.5
    w = p.prior_sd ** 2 / (p.prior_sd ** 2 + p.noise_sd ** 2 / n_samples)
    pse = (r - (1 - w) * p.prior_mean) / w
    expected = stats.norm.cdf((x - pse) / (p.noise_sd / math.sqrt(n_samples)))
    np.testing.assert_allclose(psychometric_curve(x, reference=r, parameters=p, n_samples=n_samples), expected,
                               rtol=1e-12, atol=1e-15)
    # the prior mean (1.0) lies above the reference, so it biases answers towards "greater": PSE below r
    assert pse < r


def test_simulated_choice_frequencies_follow_the_psychometric_curve_with_lapses():
    p = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=0.8, lapse=0.1)
    x = np.repeat([-2.0, -0.5, 0.0, 0.7, 3.0], 20000)
    n = np.tile([1, 3], x.size // 2)
    choices = simulate_choices(x, 0.2, parameters=p, n_samples=n, seed=5)
    for value in np.unique(x):
        for count in (1, 3):
            rows = (x == value) & (n == count)
            expected = float(psychometric_curve(value, reference=0.2, parameters=p, n_samples=count))
            assert abs(choices[rows].mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / rows.sum())
    # extreme stimuli are decided only by lapses: half of them go the wrong way
    assert abs((~choices[(x == 3.0)]).mean() - 0.05) < 0.01


def _session(seed, truth, n_trials=2000):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.2, n_trials)
    r = rng.choice([-1.0, 0.0, 1.0, 2.0], n_trials)
    return x, r, simulate_choices(x, r, parameters=truth, seed=seed + 1000)


def test_fit_recovers_planted_parameters_within_their_confidence_intervals():
    truth = ObserverParameters(prior_mean=0.3, prior_sd=0.8, noise_sd=0.6, lapse=0.04)
    x, r, c = _session(7, truth, n_trials=4000)
    fit = fit_observer(x, r, c)
    assert fit.converged and fit.hessian_positive_definite
    assert fit.names == ("prior_mean", "prior_sd", "noise_sd", "lapse")
    assert np.all(fit.ci_lower < truth.as_array()) and np.all(truth.as_array() < fit.ci_upper)
    assert np.all(fit.ci_lower < fit.estimate) and np.all(fit.estimate < fit.ci_upper)
    # the optimum is the optimum: the truth is no more likely than the estimate
    assert choice_log_likelihood(x, r, c, parameters=truth) <= -fit.negative_log_likelihood + 1e-9
    np.testing.assert_allclose(choice_log_likelihood(x, r, c, parameters=fit.parameters),
                               -fit.negative_log_likelihood, rtol=1e-10)


def test_confidence_intervals_cover_the_truth_in_most_sessions_and_errors_match_the_spread():
    truth = ObserverParameters(prior_mean=0.3, prior_sd=0.8, noise_sd=0.6, lapse=0.04)
    fits = [fit_observer(*_session(seed, truth)) for seed in range(30)]
    inside = np.array([(f.ci_lower < truth.as_array()) & (truth.as_array() < f.ci_upper) for f in fits])
    # nominal 95%: 30 sessions, at least 25 inside for every parameter (P(fewer) < 0.02 per parameter)
    assert inside.sum(axis=0).min() >= 25, inside.sum(axis=0)
    estimates = np.array([f.estimate for f in fits])
    errors = np.array([f.standard_error for f in fits]).mean(axis=0)
    np.testing.assert_allclose(estimates.std(axis=0, ddof=1), errors, rtol=0.35)
    assert np.all(np.abs(estimates.mean(axis=0) - truth.as_array()) < 3 * errors / math.sqrt(len(fits)) + 0.01)


def test_fixed_lapse_fit_and_parametric_bootstrap_agree_with_the_wald_errors():
    truth = ObserverParameters(prior_mean=-0.2, prior_sd=1.2, noise_sd=0.5)
    x, r, c = _session(3, truth, n_trials=2500)
    calls = []
    fit = fit_observer(x, r, c, fit_lapse=False, n_bootstrap=40, seed=2, report=lambda f, m: calls.append(f))
    assert fit.names == ("prior_mean", "prior_sd", "noise_sd") and fit.parameters.lapse == 0.0
    assert fit.bootstrap_estimates.shape == (40, 3)
    np.testing.assert_allclose(fit.bootstrap_estimates.std(axis=0, ddof=1), fit.standard_error, rtol=0.4)
    assert np.all(fit.bootstrap_ci_lower < fit.estimate) and np.all(fit.estimate < fit.bootstrap_ci_upper)
    assert calls[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in calls) and calls == sorted(calls)


def test_a_raising_report_cancels_the_fit():
    truth = ObserverParameters(prior_mean=0.0, prior_sd=1.0, noise_sd=0.5)
    x, r, c = _session(0, truth, n_trials=500)

    def cancel(fraction, message):
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        fit_observer(x, r, c, n_bootstrap=5, report=cancel)


@pytest.mark.parametrize("call, message", [
    (lambda: sequential_posterior([], prior_mean=0, prior_sd=1, noise_sd=1), "observations is empty"),
    (lambda: sequential_posterior([1.0, np.nan], prior_mean=0, prior_sd=1, noise_sd=1), "NaN"),
    (lambda: sequential_posterior([1.0], prior_mean=0, prior_sd=0.0, noise_sd=1), "prior_sd"),
    (lambda: sequential_posterior([1.0], prior_mean=0, prior_sd=1, noise_sd=-1), "noise_sd"),
    (lambda: sequential_posterior(np.ones((2, 2, 2)), prior_mean=0, prior_sd=1, noise_sd=1), "rank"),
    (lambda: ObserverParameters(0.0, 1.0, 1.0, lapse=1.0), "lapse"),
    (lambda: simulate_choices([1.0, 2.0], [0.0, 1.0, 2.0], parameters=ObserverParameters(0, 1, 1)), "references"),
    (lambda: simulate_choices([1.0, 2.0], 0.0, parameters=ObserverParameters(0, 1, 1), n_samples=0), "n_samples"),
    (lambda: fit_observer([1.0, 2.0], 0.0, [1, 0, 1]), "choices"),
    (lambda: fit_observer([1.0, 2.0], 0.0, [2, 0]), "choices"),
    (lambda: fit_observer([1.0, 1.0], 0.0, [1, 0]), "two different values"),
    (lambda: fit_observer([1.0, 2.0], 0.0, [1, 0], confidence=1.5), "confidence"),
])
def test_bad_input_raises_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
