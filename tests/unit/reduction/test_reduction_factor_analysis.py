"""Factor analysis by EM: recovery of a known model, agreement with scikit-learn and with the
Gaussian densities and conditionals computed directly, monotone EM, saving, dtypes, the
covariance pass, progress/cancellation and input checks."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import threadpoolctl
import torch
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.decomposition import FactorAnalysis as SklearnFactorAnalysis

from services.reduction.core import factor_analysis
from services.reduction.core.base import REDUCERS, load_model, save_model
from services.reduction.core.factor_analysis import CovarianceAccumulator, FactorAnalysis

N_NEURONS, N_FACTORS, N_SAMPLES = 30, 3, 20_000


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch and one BLAS thread: the machine is shared, and the matrices are small."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def truth():
    """A factor-analysis population: loadings N(0, 1), noise variances U(0.2, 1.5) (each neuron its
    own), means U(2, 10) so that centring matters, and 20k samples from it."""
    rng = np.random.default_rng(0)
    L = rng.normal(size=(N_NEURONS, N_FACTORS))
    psi = rng.uniform(0.2, 1.5, N_NEURONS)
    mu = rng.uniform(2.0, 10.0, N_NEURONS)
    X = rng.normal(size=(N_SAMPLES, N_FACTORS)) @ L.T + rng.normal(size=(N_SAMPLES, N_NEURONS)) * np.sqrt(psi) + mu
    return {"L": L, "psi": psi, "mu": mu, "C": L @ L.T + np.diag(psi), "X": X}


@pytest.fixture(scope="module")
def fa64(truth):
    """Run to convergence in float64 (1000 iterations reach the float64 fixed point here: the
    covariance then moves by less than 1e-13 per iteration)."""
    return FactorAnalysis(N_FACTORS, dtype="float64", tol=0, max_iter=1000, device="cpu").fit(truth["X"])


@pytest.fixture(scope="module")
def fa32(truth):
    """The defaults (float32, tol 1e-10)."""
    return FactorAnalysis(N_FACTORS, device="cpu").fit(truth["X"])


def small_data(seed=1, n=500, p=6, k=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, k)) @ rng.normal(size=(k, p)) + rng.normal(size=(n, p)) + 1.0


# ------------------------------------------------------------------------------------------------
# recovery of the generating model


@pytest.mark.parametrize("which", ["fa64", "fa32"])
def test_recovers_the_covariance_the_subspace_and_the_noise(truth, which, request):
    fa = request.getfixturevalue(which)
    C = fa.get_covariance()
    # sampling error of a 30-neuron covariance from 20k samples is about 1.5% in Frobenius norm
    assert np.linalg.norm(C - truth["C"]) / np.linalg.norm(truth["C"]) < 0.025
    # the loadings are identified up to rotation: compare the subspaces they span
    assert np.max(subspace_angles(fa.components_.T.astype(np.float64), truth["L"])) < 0.02   # radians
    np.testing.assert_allclose(fa.noise_variance_, truth["psi"], rtol=0.06)
    # float32 rounds the activity itself (relative 6e-8) before the float64 sums
    np.testing.assert_allclose(fa.mean_, truth["X"].mean(axis=0), rtol=1e-12 if which == "fa64" else 1e-7)
    assert fa.components_.shape == (N_FACTORS, N_NEURONS)
    assert fa.components_.dtype == np.dtype(fa.dtype) and fa.noise_variance_.dtype == np.dtype(fa.dtype)


def test_final_loglikelihood_matches_scikit_learn_at_convergence(truth, fa64):
    X = truth["X"]
    reference = SklearnFactorAnalysis(n_components=N_FACTORS, tol=1e-9, max_iter=10_000, random_state=0).fit(X)
    ours = fa64.score(X)
    # both reach the same maximum (-44.1104 nats per sample here): measured agreement ~2e-11
    assert ours == pytest.approx(reference.score(X), rel=1e-8)
    np.testing.assert_allclose(fa64.get_covariance(), reference.get_covariance(), rtol=1e-4, atol=1e-5)
    # loglike_ is scikit-learn's (a total) per sample, and its last entry is score(X)
    assert fa64.loglike_[-1] == pytest.approx(ours, rel=1e-12)
    assert reference.loglike_[-1] / len(X) == pytest.approx(ours, rel=1e-8)


def test_score_is_the_multivariate_normal_log_density(truth, fa64):
    X = truth["X"][:500]
    expected = multivariate_normal(mean=fa64.mean_, cov=fa64.get_covariance()).logpdf(X)
    np.testing.assert_allclose(fa64.score_samples(X), expected, rtol=1e-11)
    assert fa64.score(X) == pytest.approx(expected.mean(), rel=1e-12)
    assert fa64.score_samples(X).dtype == np.float64


def test_loglikelihood_never_decreases_over_the_iterations(truth):
    # a random start leaves many iterations of visible progress to check
    X = truth["X"]
    for dtype in ("float64", "float32"):
        fa = FactorAnalysis(N_FACTORS, init="random", seed=3, dtype=dtype, tol=0, max_iter=400, device="cpu").fit(X)
        assert fa.n_iter_ == 400 and fa.loglike_.shape == (400,)
        steps = np.diff(fa.loglike_)
        # the EM runs in float64 for both dtypes (see the module docstring): only float64
        # rounding of a -44 log-likelihood (1e-14) may show as a step down once converged
        assert steps.min() >= -1e-12 * abs(fa.loglike_[-1]), dtype
        assert fa.loglike_[-1] - fa.loglike_[0] > 1.0     # it did climb


def test_pca_and_random_starts_reach_the_same_canonical_loadings(truth, fa64):
    fa = FactorAnalysis(N_FACTORS, init="random", seed=7, dtype="float64", tol=0, max_iter=1000,
                        device="cpu").fit(truth["X"])
    np.testing.assert_allclose(fa.components_, fa64.components_, atol=1e-9)
    np.testing.assert_allclose(fa.noise_variance_, fa64.noise_variance_, rtol=1e-9)
    # the orientation: L^T Psi^-1 L is diagonal and decreasing; each factor's biggest loading > 0
    L = fa64.components_.T
    G = L.T @ (L / fa64.noise_variance_[:, None])
    np.testing.assert_allclose(G - np.diag(np.diag(G)), 0.0, atol=1e-8 * np.abs(G).max())
    assert np.all(np.diff(np.diag(G)) < 0)
    assert np.all(L[np.argmax(np.abs(L), axis=0), np.arange(N_FACTORS)] > 0)


def test_tol_stops_early_and_tol_zero_runs_every_iteration(truth):
    X = truth["X"][:2000]
    loose = FactorAnalysis(N_FACTORS, tol=1e-3, dtype="float64").fit(X)
    exact = FactorAnalysis(N_FACTORS, tol=0, max_iter=7, dtype="float64").fit(X)
    assert exact.n_iter_ == 7
    assert loose.n_iter_ < 7
    # the stopping rule: the last relative change is at most tol, the one before it is not
    change = np.abs(np.diff(loose.loglike_)) / np.abs(loose.loglike_[:-1])
    assert change[-1] <= 1e-3 and np.all(change[:-1] > 1e-3)


# ------------------------------------------------------------------------------------------------
# posterior means, reconstruction, held-out neurons


def test_transform_and_reconstruct_are_the_gaussian_posterior_mean(truth, fa64):
    X = truth["X"][:300]
    L, C, mu = fa64.components_.T, fa64.get_covariance(), fa64.mean_
    expected = np.linalg.solve(C, (X - mu).T).T @ L            # L^T C^-1 (x - mu), rows
    np.testing.assert_allclose(fa64.transform(X), expected, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fa64.reconstruct(X), mu + expected @ L.T, rtol=1e-9)
    fresh = clone(fa64).set_params(max_iter=50)
    np.testing.assert_allclose(fresh.fit_transform(X), fresh.transform(X))


def test_heldout_posterior_and_prediction_are_the_gaussian_conditional(truth, fa64):
    rng = np.random.default_rng(4)
    order = rng.permutation(N_NEURONS)
    heldin, heldout = order[:20], order[20:]
    X_in = truth["X"][:200][:, heldin]
    L, C, mu = fa64.components_.T, fa64.get_covariance(), fa64.mean_
    D = X_in - mu[heldin]
    Cin_inv_D = np.linalg.solve(C[np.ix_(heldin, heldin)], D.T)
    z = (L[heldin].T @ Cin_inv_D).T                              # E[z | x_in]
    x_out = mu[heldout] + (C[np.ix_(heldout, heldin)] @ Cin_inv_D).T    # E[x_out | x_in]
    np.testing.assert_allclose(fa64.posterior_heldout(X_in, heldin), z, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fa64.predict_heldout(X_in, heldin, heldout), x_out, rtol=1e-9)
    # a boolean mask selects the same neurons, in increasing order
    mask = np.zeros(N_NEURONS, dtype=bool)
    mask[heldin] = True
    np.testing.assert_allclose(fa64.posterior_heldout(truth["X"][:200][:, mask], mask),
                               fa64.posterior_heldout(truth["X"][:200][:, np.sort(heldin)], np.sort(heldin)))
    # co-smoothing is far better than predicting the mean
    X_out = truth["X"][:200][:, heldout]
    assert np.mean((x_out - X_out) ** 2) < 0.6 * np.mean((mu[heldout] - X_out) ** 2)


@pytest.mark.parametrize("call, message", [
    (lambda fa, X: fa.posterior_heldout(X[:, :3], [0, 1, 30]), "outside 0..29"),
    (lambda fa, X: fa.posterior_heldout(X[:, :3], [0, 1, 1]), "repeats neuron 1"),
    (lambda fa, X: fa.posterior_heldout(X[:, :3], [0, 1]), "must have 2 columns"),
    (lambda fa, X: fa.posterior_heldout(X[:, :3], []), "selects no neuron"),
    (lambda fa, X: fa.posterior_heldout(X[:, :3], [0.0, 1.0, 2.0]), "neuron indices"),
    (lambda fa, X: fa.posterior_heldout(X[:, :3], np.ones(5, dtype=bool)), r"shape \(30,\)"),
    (lambda fa, X: fa.predict_heldout(X[:, :3], [0, 1, 2], [-1]), "outside"),
    (lambda fa, X: fa.transform(X[:, :29]), "must have 30 columns"),
])
def test_heldout_and_transform_refuse_bad_indices_and_shapes(truth, fa64, call, message):
    with pytest.raises(ValueError, match=message):
        call(fa64, truth["X"][:10])


# ------------------------------------------------------------------------------------------------
# saving, dtypes, the registry


def test_save_load_round_trip(truth, fa32):
    again = load_model(save_model(fa32, metadata={"session": "s1"}))
    assert type(again) is FactorAnalysis and again.get_params() == fa32.get_params()
    for name in FactorAnalysis.state_attributes:
        np.testing.assert_array_equal(getattr(again, name), getattr(fa32, name))
    assert again.components_.dtype == np.float32 and isinstance(again.n_iter_, int)
    X = truth["X"][:100]
    np.testing.assert_array_equal(again.transform(X), fa32.transform(X))
    assert again.score(X) == fa32.score(X)


def test_float32_and_float64_agree(truth, fa32, fa64):
    same = FactorAnalysis(N_FACTORS, tol=0, max_iter=1000, device="cpu").fit(truth["X"])   # float32
    # they differ only by the float32 pass over the data (the EM is float64 in both)
    np.testing.assert_allclose(same.get_covariance(), fa64.get_covariance(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(same.components_, fa64.components_, atol=1e-5)
    X = truth["X"][:1000]
    assert same.score(X) == pytest.approx(fa64.score(X), rel=1e-6)
    np.testing.assert_allclose(same.transform(X), fa64.transform(X), atol=1e-4)
    # the default stopping rule (tol 1e-10) lands well within sampling error of the maximum
    np.testing.assert_allclose(fa32.get_covariance(), fa64.get_covariance(), atol=0.01)
    assert fa32.score(truth["X"]) == pytest.approx(fa64.score(truth["X"]), rel=1e-7)
    assert fa32.transform(X).dtype == np.float32 and fa64.transform(X).dtype == np.float64
    # the float32 log-likelihood of the EM and a float64-accumulated score(X) agree
    assert fa32.loglike_[-1] == pytest.approx(fa32.score(truth["X"]), rel=1e-5)


def test_registered_and_clonable():
    assert REDUCERS["factor_analysis"] is FactorAnalysis
    fa = FactorAnalysis(4, tol=1e-3, dtype="float64")
    assert clone(fa).get_params() == fa.get_params()


# ------------------------------------------------------------------------------------------------
# the covariance pass and fitting from statistics


def test_covariance_accumulator_is_accurate_in_float32_far_from_zero():
    # mean 1000, sd ~1: the raw sum x x^T / n - m m^T would lose ~6 of float32's 7 digits
    rng = np.random.default_rng(5)
    X = (1000.0 + rng.normal(size=(30_000, 5)) @ rng.normal(size=(5, 5))).astype(np.float32)
    acc = CovarianceAccumulator(5, dtype="float32", device="cpu")
    for start in range(0, len(X), 7000):
        acc.update(X[start:start + 7000])
    X64 = X.astype(np.float64)
    assert acc.n_samples == 30_000
    np.testing.assert_allclose(acc.mean(), X64.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(acc.covariance(), np.cov(X64.T, bias=True), rtol=1e-5, atol=1e-5)
    assert acc.constant_neurons().size == 0


def test_fit_covariance_equals_fit(truth, fa64):
    X = truth["X"]
    fa = FactorAnalysis(N_FACTORS, dtype="float64", tol=0, max_iter=1000, device="cpu")
    fa.fit_covariance(np.cov(X.T, bias=True), X.mean(axis=0), len(X))
    np.testing.assert_allclose(fa.components_, fa64.components_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fa.loglike_[-1], fa64.loglike_[-1], rtol=1e-12)


@pytest.mark.parametrize("args, message", [
    ((np.eye(3)[:2], np.zeros(3), 10), "square"),
    ((np.eye(3), np.zeros(2), 10), r"shape \(3,\)"),
    ((np.diag([1.0, 0.0, 1.0]), np.zeros(3), 10), "neuron 1 has variance 0.0;"),
    ((np.eye(3), np.zeros(3), 1), "n_samples must be an integer >= 2"),
    ((np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), np.zeros(3), 10), "not symmetric"),
    ((np.full((3, 3), np.nan), np.zeros(3), 10), "finite"),
])
def test_fit_covariance_refuses_bad_statistics(args, message):
    with pytest.raises(ValueError, match=message):
        FactorAnalysis(1).fit_covariance(*args)


# ------------------------------------------------------------------------------------------------
# progress, cancellation, input checks


def test_report_is_called_with_the_loglikelihood_and_can_cancel():
    X = small_data()
    calls = []
    fa = FactorAnalysis(2, tol=0, max_iter=5, dtype="float64").fit(X, report=lambda f, m: calls.append((f, m)))
    em = [c for c in calls if c[1].startswith("EM")]
    assert len(em) == 5 and calls[0][1] == "covariance: 500/500 rows"
    assert [f for f, _ in calls] == sorted(f for f, _ in calls) and calls[-1][0] == pytest.approx(1.0)
    assert f"{fa.loglike_[-1]:.7g}" in em[-1][1]

    class Cancelled(Exception):
        pass

    def cancel_at_third(fraction, message):
        if message.startswith("EM iteration 3"):
            raise Cancelled

    fresh = FactorAnalysis(2, tol=0, max_iter=50)
    with pytest.raises(Cancelled):
        fresh.fit(X, report=cancel_at_third)
    assert not hasattr(fresh, "components_")      # nothing half-fitted is left behind
    with pytest.raises(Cancelled):
        fa.fit(X, report=cancel_at_third)
    assert fa.n_iter_ == 5                         # a fitted model keeps its previous fit


@pytest.mark.parametrize("X, params, message", [
    (small_data(p=4), {"n_components": 5}, "n_components=5 exceeds the number of neurons, 4"),
    (np.where(np.arange(6) == 2, np.nan, small_data()), {}, r"NaN or infinite values \(first at index \(0, 2\)\)"),
    (np.column_stack([small_data(p=3), np.full(500, 4.0)]), {}, "neuron 3 is constant"),
    (small_data()[:, :, None], {}, "rank 3"),
    (small_data()[:1], {}, "1 samples, fewer than the 2"),
    (small_data(), {"n_components": 0}, "n_components must be an integer >= 1"),
    (small_data(), {"dtype": "float16"}, "dtype must be one of"),
    (small_data(), {"min_noise_variance": 1.0}, r"min_noise_variance must be a number in \[0, 1\)"),
    (small_data(), {"init": "svd"}, "init must be one of"),
    (small_data(), {"tol": -1.0}, "tol must be a finite number >= 0"),
    (small_data(), {"max_iter": 0}, "max_iter must be an integer >= 1"),
    (small_data(), {"device": "tpu"}, "device must be one of"),
])
def test_bad_input_is_refused_with_a_message_naming_it(X, params, message):
    with pytest.raises(ValueError, match=message):
        FactorAnalysis(**{"n_components": 2, **params}).fit(X)


def test_unfitted_model_says_so():
    with pytest.raises(ValueError, match="not fitted"):
        FactorAnalysis().transform(small_data())


def test_noise_floor_holds_in_a_heywood_case():
    # neuron 0 is an exact copy of the factor: its ML noise variance is 0 (EM only creeps
    # towards such a boundary, so the floor here is high enough to be reached quickly)
    rng = np.random.default_rng(6)
    z = rng.normal(size=(2000, 1))
    X = np.column_stack([z[:, 0], z @ [[1.0, -1.0, 0.5]] + rng.normal(size=(2000, 3))])
    fa = FactorAnalysis(1, min_noise_variance=0.05, dtype="float64").fit(X)
    assert fa.noise_variance_[0] == pytest.approx(0.05 * X[:, 0].var(), rel=1e-9)
    assert np.all(fa.noise_variance_[1:] > 0.05 * X[:, 1:].var(axis=0))
    assert np.all(np.isfinite(fa.transform(X))) and np.all(np.diff(fa.loglike_) > -1e-9)


def test_docstring_examples():
    result = doctest.testmod(factor_analysis, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
