"""Representational similarity analysis against SciPy, brute-force definitions and known answers."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from services.decoding.core import rsa
from services.decoding.core.rsa import (compare_rdms, rdm_permutation_test, rdm_to_vector,
                                        representational_dissimilarity, shrinkage_covariance,
                                        vector_to_rdm)


def test_docstring_examples():
    result = doctest.testmod(rsa, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------------------------
# brute-force references, written from the definitions


def crossnobis_loops(patterns, noise_cov=None):
    """mean over partitions m != n of (p_i^m - p_j^m)' inv(S) (p_i^n - p_j^n) / n_channels."""
    n_partitions, n_conditions, n_channels = patterns.shape
    precision = np.eye(n_channels) if noise_cov is None else np.linalg.inv(noise_cov)
    rdm = np.zeros((n_conditions, n_conditions))
    for i, j in itertools.combinations(range(n_conditions), 2):
        products = [(patterns[m, i] - patterns[m, j]) @ precision @ (patterns[n, i] - patterns[n, j])
                    for m in range(n_partitions) for n in range(n_partitions) if m != n]
        rdm[i, j] = rdm[j, i] = np.mean(products) / n_channels
    return rdm


def tau_a_loops(x, y):
    n = len(x)
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            score += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])   # ties give 0: neither
    return score / (n * (n - 1) / 2)


def tied_pairs(x):
    _, counts = np.unique(x, return_counts=True)
    return int(np.sum(counts * (counts - 1) // 2))


def random_rdm(rng, n_conditions, *, levels=None):
    """A random RDM; with ``levels``, integer dissimilarities 1..levels, so with many ties."""
    n = n_conditions * (n_conditions - 1) // 2
    vec = rng.integers(1, levels + 1, size=n).astype(float) if levels else rng.random(n)
    return squareform(vec)


# --------------------------------------------------------------------------------------------------
# dissimilarities


def test_correlation_and_euclidean_match_scipy_pdist():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 40)) + 3.0
    for metric, kwargs, reference in [("correlation", {}, "correlation"), ("euclidean", {}, "euclidean"),
                                      ("euclidean", {"squared": True}, "sqeuclidean")]:
        rdm = representational_dissimilarity(x, metric=metric, **kwargs)
        np.testing.assert_allclose(rdm, squareform(pdist(x, metric=reference)), rtol=1e-10, atol=1e-13)
        assert rdm.shape == (12, 12) and rdm.dtype == np.float64
        assert np.array_equal(rdm, rdm.T) and np.all(np.diag(rdm) == 0.0)


def test_correlation_distance_known_values_and_invariances():
    p = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [1.0, -1.0, -1.0, 1.0]])
    rdm = representational_dissimilarity(p)
    assert rdm[0, 1] == pytest.approx(0.0, abs=1e-15)     # same pattern, scaled
    assert rdm[0, 2] == pytest.approx(2.0)                 # reversed: r = -1
    assert rdm[0, 3] == pytest.approx(1.0)                 # orthogonal after centring: r = 0
    # the correlation distance ignores each condition's mean and gain
    rescaled = p * np.array([[2.0], [0.1], [5.0], [1.0]]) + np.array([[7.0], [-3.0], [0.0], [100.0]])
    np.testing.assert_allclose(representational_dissimilarity(rescaled), rdm, atol=1e-13)


def test_euclidean_is_accurate_for_nearly_identical_patterns():
    # a large common response and tiny differences: the Gram identity would lose them entirely
    rng = np.random.default_rng(1)
    base = 1e4 + rng.normal(size=50)
    x = np.stack([base, base + 1e-9, base + 2e-9 * np.arange(50) / 50])
    rdm = representational_dissimilarity(x, metric="euclidean")
    expected = [[np.linalg.norm(a - b) for b in x] for a in x]
    np.testing.assert_allclose(rdm, expected, rtol=1e-5)
    assert rdm[0, 1] == pytest.approx(1e-9 * np.sqrt(50), rel=1e-3)


def test_euclidean_does_not_overflow():
    x = np.array([[1e200, 0.0], [-1e200, 0.0], [0.0, 0.0]])
    rdm = representational_dissimilarity(x, metric="euclidean")
    assert rdm[0, 1] == pytest.approx(2e200) and rdm[0, 2] == pytest.approx(1e200)


def test_crossnobis_matches_its_definition():
    rng = np.random.default_rng(2)
    patterns = rng.normal(size=(4, 6, 5)) + rng.normal(size=(1, 6, 5))
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + 0.5 * np.eye(5)
    np.testing.assert_allclose(representational_dissimilarity(patterns, metric="crossnobis", noise_cov=cov),
                               crossnobis_loops(patterns, cov), rtol=1e-10, atol=1e-13)
    identity = representational_dissimilarity(patterns, metric="crossnobis")
    np.testing.assert_allclose(identity, crossnobis_loops(patterns), rtol=1e-10, atol=1e-13)
    # S = identity is the default; S = c I divides every distance by c
    np.testing.assert_allclose(representational_dissimilarity(patterns, metric="crossnobis",
                                                               noise_cov=np.eye(5)), identity, rtol=1e-12)
    np.testing.assert_allclose(representational_dissimilarity(patterns, metric="crossnobis",
                                                               noise_cov=4.0 * np.eye(5)), identity / 4.0,
                               rtol=1e-12, atol=1e-15)
    rdm = representational_dissimilarity(patterns, metric="crossnobis", noise_cov=cov)
    assert np.array_equal(rdm, rdm.T) and np.all(np.diag(rdm) == 0.0)


def test_crossnobis_survives_a_large_common_response():
    rng = np.random.default_rng(3)
    patterns = rng.normal(size=(3, 5, 8))
    shifted = patterns + 1e7      # a baseline shared by all conditions: no effect on differences
    np.testing.assert_allclose(representational_dissimilarity(shifted, metric="crossnobis"),
                               crossnobis_loops(patterns), rtol=1e-6, atol=1e-8)


def test_crossnobis_of_noise_is_unbiased_while_squared_euclidean_is_not():
    # identical conditions: all differences are noise (sd 1 per channel and partition)
    rng = np.random.default_rng(4)
    n_partitions, n_conditions, n_channels, n_repeats = 4, 10, 40, 40
    cross, plain = [], []
    for _ in range(n_repeats):
        noise = rng.normal(size=(n_partitions, n_conditions, n_channels))
        cross.append(rdm_to_vector(representational_dissimilarity(noise, metric="crossnobis")))
        sq = representational_dissimilarity(noise.mean(axis=0), metric="euclidean", squared=True)
        plain.append(rdm_to_vector(sq) / n_channels)
    cross, plain = np.concatenate(cross), np.concatenate(plain)
    # crossnobis: mean 0 within a few standard errors, and individual distances of both signs.
    # (Distances sharing a condition are correlated; the repeats are independent, so the standard
    # error is taken over the repeat means.)
    repeat_means = cross.reshape(n_repeats, -1).mean(axis=1)
    standard_error = repeat_means.std(ddof=1) / np.sqrt(n_repeats)
    assert abs(cross.mean()) < 4 * standard_error
    assert abs(cross.mean()) < 0.025          # vs. the bias of 0.5 below
    assert 0.3 < np.mean(cross < 0) < 0.7
    # squared Euclidean distance of the partition means: bias 2 sigma**2 / M = 0.5 per channel
    assert plain.min() > 0
    assert plain.mean() == pytest.approx(2.0 / n_partitions, rel=0.03)


def test_crossnobis_expectation_is_the_true_mahalanobis_distance():
    # correlated noise: the expectation is delta' inv(S) delta / n_channels, not ||delta||**2 / n
    rng = np.random.default_rng(5)
    n_channels = 6
    a = rng.normal(size=(n_channels, n_channels))
    cov = a @ a.T / n_channels + 0.3 * np.eye(n_channels)
    chol = np.linalg.cholesky(cov)
    true = rng.normal(size=(4, n_channels))
    expected = np.array([[(p - q) @ np.linalg.solve(cov, p - q) for q in true] for p in true]) / n_channels
    n_repeats = 2000
    noise = rng.normal(size=(n_repeats, 3, 4, n_channels)) @ chol.T
    total = np.zeros((4, 4))
    for r in range(n_repeats):
        total += representational_dissimilarity(true + noise[r], metric="crossnobis", noise_cov=cov)
    np.testing.assert_allclose(total / n_repeats, expected, rtol=0.05, atol=0.02)
    plain = np.array([[np.sum((p - q) ** 2) for q in true] for p in true]) / n_channels
    assert np.max(np.abs(plain - expected)) > 0.5     # the test can tell the two apart


def test_crossnobis_with_residuals_uses_the_shrunk_covariance():
    rng = np.random.default_rng(6)
    patterns = rng.normal(size=(3, 5, 4))
    residuals = rng.normal(size=(30, 4)) @ rng.normal(size=(4, 4))
    got = representational_dissimilarity(patterns, metric="crossnobis", residuals=residuals)
    cov, lam = shrinkage_covariance(residuals)
    assert 0 < lam < 1
    np.testing.assert_allclose(got, crossnobis_loops(patterns, cov), rtol=1e-10, atol=1e-13)
    unshrunk = representational_dissimilarity(patterns, metric="crossnobis", residuals=residuals, shrinkage=0.0)
    np.testing.assert_allclose(unshrunk, crossnobis_loops(patterns, np.cov(residuals.T, bias=True)),
                               rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------------------------------
# shrinkage covariance


def ledoit_wolf_diagonal_loops(x):
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    numerator = denominator = 0.0
    for i in range(p):
        for j in range(p):
            if i != j:
                w = xc[:, i] * xc[:, j]
                numerator += np.sum((w - s[i, j]) ** 2) / n**2     # estimated Var(s_ij)
                denominator += s[i, j] ** 2
    lam = min(1.0, max(0.0, numerator / denominator))
    return (1 - lam) * s + lam * np.diag(np.diag(s)), lam


@pytest.mark.parametrize("n_samples", [5, 40, 400])
def test_shrinkage_matches_brute_force_ledoit_wolf_for_a_diagonal_target(n_samples):
    rng = np.random.default_rng(n_samples)
    x = rng.normal(size=(n_samples, 7)) @ rng.normal(size=(7, 7)) + 2.0
    cov, lam = shrinkage_covariance(x)
    expected_cov, expected_lam = ledoit_wolf_diagonal_loops(x)
    assert lam == pytest.approx(expected_lam, rel=1e-10)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-10)
    np.testing.assert_allclose(np.diag(cov), np.var(x, axis=0), rtol=1e-12)   # variances kept


def test_shrinkage_intensity_follows_the_sample_size():
    rng = np.random.default_rng(7)
    mix = rng.normal(size=(10, 10))
    few = shrinkage_covariance(rng.normal(size=(8, 10)) @ mix)      # fewer samples than channels
    many = shrinkage_covariance(rng.normal(size=(20000, 10)) @ mix)
    assert few[1] > 0.1 and many[1] < 0.01
    np.linalg.cholesky(few[0])            # positive definite although S itself is singular
    assert np.linalg.matrix_rank(np.cov((rng.normal(size=(8, 10)) @ mix).T, bias=True)) < 10
    np.testing.assert_allclose(many[0], mix.T @ mix, rtol=0.1, atol=0.1 * np.abs(mix.T @ mix).max())
    # fixed intensities: 0 is the sample covariance, 1 its diagonal
    x = rng.normal(size=(30, 4))
    np.testing.assert_allclose(shrinkage_covariance(x, shrinkage=0.0)[0], np.cov(x.T, bias=True), rtol=1e-12)
    np.testing.assert_allclose(shrinkage_covariance(x, shrinkage=1.0)[0], np.diag(np.var(x, axis=0)),
                               rtol=1e-12)
    # channels in very different units are all kept
    scaled = x * [1e-9, 1.0, 1e6, 1.0]
    np.testing.assert_allclose(np.diag(shrinkage_covariance(scaled)[0]), np.var(scaled, axis=0), rtol=1e-12)


def test_shrinkage_bad_input_raises():
    with pytest.raises(ValueError, match=r"2-D.*\(10,\)"):
        shrinkage_covariance(np.zeros(10))
    with pytest.raises(ValueError, match="at least 2 samples"):
        shrinkage_covariance(np.ones((1, 3)))
    with pytest.raises(ValueError, match="channel 1 have no variance"):
        shrinkage_covariance(np.array([[1.0, 5.0], [2.0, 5.0], [0.0, 5.0]]))
    with pytest.raises(ValueError, match="channel 0 have no variance"):
        shrinkage_covariance(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        shrinkage_covariance(np.eye(3), shrinkage=1.5)
    with pytest.raises(ValueError, match="NaN"):
        shrinkage_covariance([[1.0, np.nan], [2.0, 3.0]])


# --------------------------------------------------------------------------------------------------
# RDM <-> vector


def test_vector_round_trip_matches_squareform_order():
    rng = np.random.default_rng(8)
    for n in (2, 3, 7):
        vec = rng.normal(size=n * (n - 1) // 2)
        rdm = vector_to_rdm(vec)
        np.testing.assert_array_equal(rdm, squareform(vec))
        np.testing.assert_array_equal(rdm_to_vector(rdm), vec)
    # tiny asymmetry from rounding elsewhere is accepted
    rdm = squareform(rng.random(10))
    rdm[0, 1] += 1e-12
    assert rdm_to_vector(rdm).shape == (10,)


def test_vector_conversion_bad_input_raises():
    with pytest.raises(ValueError, match="square.*\\(2, 3\\)"):
        rdm_to_vector(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 conditions"):
        rdm_to_vector(np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"symmetric.*\(0, 1\)"):
        rdm_to_vector([[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match=r"zero diagonal.*\(1, 1\)"):
        rdm_to_vector([[0.0, 1.0], [1.0, 0.5]])
    with pytest.raises(ValueError, match="NaN"):
        rdm_to_vector([[0.0, np.nan], [np.nan, 0.0]])
    with pytest.raises(ValueError, match="4 entries"):
        vector_to_rdm(np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        vector_to_rdm([])
    with pytest.raises(ValueError, match="1-D"):
        vector_to_rdm(np.ones((3, 1)))


# --------------------------------------------------------------------------------------------------
# comparison


def test_inversion_count_matches_brute_force():
    rng = np.random.default_rng(9)
    for n in list(range(0, 20)) + [31, 32, 33, 64, 100]:
        seq = rng.integers(0, 5, size=(4, n))
        expected = [sum(row[i] > row[j] for i in range(n) for j in range(i + 1, n)) for row in seq]
        np.testing.assert_array_equal(rsa._count_inversions(seq), expected)


@pytest.mark.parametrize("n_conditions, levels", [(3, 2), (4, 3), (6, 3), (10, 4), (15, None), (25, 6)])
def test_tau_a_matches_brute_force_with_ties(n_conditions, levels):
    rng = np.random.default_rng(n_conditions)
    for _ in range(3):
        a = random_rdm(rng, n_conditions, levels=levels)
        b = random_rdm(rng, n_conditions, levels=levels)
        expected = tau_a_loops(rdm_to_vector(a), rdm_to_vector(b))
        assert compare_rdms(a, b, method="kendall_tau_a") == pytest.approx(expected, abs=1e-14)


def test_tau_a_agrees_with_scipy_tau_b_on_a_large_tied_vector():
    # tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), so tau-a = tau-b sqrt((n0 - n1)(n0 - n2)) / n0
    rng = np.random.default_rng(10)
    n = 600 * 599 // 2                     # 600 conditions: 179,700 dissimilarities
    x = rng.integers(0, 50, size=n).astype(float)
    y = x + rng.integers(0, 80, size=n)    # correlated, with many ties in both
    n0 = n * (n - 1) / 2
    tau_b = stats.kendalltau(x, y).statistic
    expected = tau_b * np.sqrt((n0 - tied_pairs(x)) * (n0 - tied_pairs(y))) / n0
    assert compare_rdms(x, y, method="kendall_tau_a") == pytest.approx(expected, rel=1e-9)


def test_tau_a_without_ties_equals_scipy_kendall_tau():
    rng = np.random.default_rng(11)
    a, b = random_rdm(rng, 30), random_rdm(rng, 30)
    b = b + 0.3 * a
    assert compare_rdms(a, b, method="kendall_tau_a") == pytest.approx(
        stats.kendalltau(rdm_to_vector(a), rdm_to_vector(b)).statistic, abs=1e-12)


def test_spearman_and_pearson_match_scipy():
    rng = np.random.default_rng(12)
    for levels in (None, 3, 8):                   # continuous, and with many ties
        a, b = random_rdm(rng, 20, levels=levels), random_rdm(rng, 20, levels=levels)
        b = b + 0.5 * a
        va, vb = rdm_to_vector(a), rdm_to_vector(b)
        assert compare_rdms(a, b) == pytest.approx(stats.spearmanr(va, vb).statistic, abs=1e-12)
        assert compare_rdms(a, b, method="pearson") == pytest.approx(stats.pearsonr(va, vb).statistic,
                                                                     abs=1e-12)


def test_compare_rdms_known_values():
    rng = np.random.default_rng(13)
    a = random_rdm(rng, 8)
    for method in rsa.COMPARISON_METHODS:
        assert compare_rdms(a, a, method=method) == pytest.approx(1.0, abs=1e-14)
        assert compare_rdms(a, 2 * a + 1 - np.eye(8), method=method) == pytest.approx(1.0, abs=1e-14)
        # a vector is as good as the square matrix; the comparison is symmetric
        b = random_rdm(rng, 8)
        assert compare_rdms(rdm_to_vector(a), b, method=method) == compare_rdms(a, b, method=method)
        assert compare_rdms(b, a, method=method) == pytest.approx(compare_rdms(a, b, method=method), abs=1e-14)
    # reversing the order of the dissimilarities: -1 for the rank statistics
    assert compare_rdms(a, -a, method="spearman") == pytest.approx(-1.0)
    assert compare_rdms(a, -a, method="kendall_tau_a") == pytest.approx(-1.0)
    # a model with a tie: (C - D) / n0 = (2 - 0) / 3 under tau-a
    model, data = vector_to_rdm([1.0, 1.0, 2.0]), vector_to_rdm([1.0, 2.0, 3.0])
    assert compare_rdms(model, data, method="kendall_tau_a") == pytest.approx(2 / 3)
    # ties inside the data count against the model even if identical: (n0 - n1) / n0
    assert compare_rdms(model, model, method="kendall_tau_a") == pytest.approx(2 / 3)


def test_constant_rdm_gives_nan_correlation_but_zero_tau_a():
    flat = vector_to_rdm(np.ones(6))
    other = vector_to_rdm(np.arange(6.0))
    assert np.isnan(compare_rdms(flat, other))
    assert np.isnan(compare_rdms(other, flat, method="pearson"))
    assert compare_rdms(flat, other, method="kendall_tau_a") == 0.0


def test_compare_rdms_bad_input_raises():
    with pytest.raises(ValueError, match="4 and 5 conditions"):
        compare_rdms(np.ones(6), np.ones(10))
    with pytest.raises(ValueError, match="at least 3 conditions, got 2"):
        compare_rdms([[0, 1], [1, 0]], [[0, 2], [2, 0]])
    with pytest.raises(ValueError, match="method must be one of"):
        compare_rdms(np.ones(3), np.ones(3), method="kendall")
    with pytest.raises(ValueError, match="b holds NaN"):
        compare_rdms(np.ones(3), [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="a has 5 entries"):
        compare_rdms(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 3\)"):
        compare_rdms(np.zeros((2, 3, 3)), np.ones(3))


# --------------------------------------------------------------------------------------------------
# permutation test


def test_permuted_statistics_are_those_of_relabelled_rdms():
    rng = np.random.default_rng(14)
    n = 9
    a, b = random_rdm(rng, n, levels=4), random_rdm(rng, n, levels=4)
    perms = np.array([rng.permutation(n) for _ in range(6)] + [np.arange(n)])
    index = rsa._permuted_pair_index(perms, n)
    for perm, idx in zip(perms, index):
        np.testing.assert_array_equal(rdm_to_vector(b)[idx], rdm_to_vector(b[perm][:, perm]))
    for method in rsa.COMPARISON_METHODS:
        got = rsa._Comparison(rdm_to_vector(a), rdm_to_vector(b), method).statistics(index)
        expected = [compare_rdms(a, b[p][:, p], method=method) for p in perms]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)


def latent_rdm(rng, latent, noise_sd):
    return representational_dissimilarity(latent + noise_sd * rng.normal(size=latent.shape))


@pytest.mark.parametrize("method", rsa.COMPARISON_METHODS)
def test_rdms_of_shared_latent_patterns_give_a_small_p(method):
    rng = np.random.default_rng(15)
    latent = rng.normal(size=(12, 25))
    a, b = latent_rdm(rng, latent, 0.7), latent_rdm(rng, latent, 0.7)
    result = rdm_permutation_test(a, b, method=method, n_permutations=999, seed=0)
    assert result.statistic == pytest.approx(compare_rdms(a, b, method=method), abs=1e-14)
    assert result.statistic > 0.3
    assert result.p_value == pytest.approx(1 / 1000)         # no relabelling does as well
    assert result.null_distribution.shape == (999,) and result.n_permutations == 999
    assert result.method == method
    assert abs(result.null_distribution.mean()) < 0.05        # relabelling destroys the relation


def test_identical_rdms_give_statistic_one():
    rng = np.random.default_rng(16)
    a = latent_rdm(rng, rng.normal(size=(7, 10)), 0.0)
    for method in rsa.COMPARISON_METHODS:
        result = rdm_permutation_test(a, a, method=method, n_permutations=200, seed=1)
        assert result.statistic == pytest.approx(1.0, abs=1e-14)
        # only relabellings that happen to be the identity (1 in 7!) can tie with it
        assert result.p_value <= 3 / 201


def test_p_value_is_the_corrected_fraction_of_the_null():
    rng = np.random.default_rng(17)
    a, b = random_rdm(rng, 6), random_rdm(rng, 6)
    result = rdm_permutation_test(a, b, n_permutations=500, seed=2)
    # ties: a permutation that reproduces the observed ranks gives the same statistic up to
    # rounding, and counts as at least as extreme (the implementation's relative tolerance)
    tolerance = rsa._TIE_RTOL * max(1.0, abs(result.statistic))
    assert result.p_value == (1 + np.sum(result.null_distribution >= result.statistic - tolerance)) / 501
    assert np.sum(np.abs(result.null_distribution - result.statistic) <= tolerance) >= 1   # ties occur here
    again = rdm_permutation_test(a, b, n_permutations=500, seed=2)
    np.testing.assert_array_equal(again.null_distribution, result.null_distribution)
    other = rdm_permutation_test(a, b, n_permutations=500, seed=3)
    assert not np.array_equal(other.null_distribution, result.null_distribution)
    gen = rdm_permutation_test(a, b, n_permutations=500, seed=np.random.default_rng(2))
    np.testing.assert_array_equal(gen.null_distribution, result.null_distribution)


def test_permutations_span_batches():
    rng = np.random.default_rng(18)
    a, b = random_rdm(rng, 5), random_rdm(rng, 5)
    old = rsa._BATCH_ELEMENTS
    try:
        rsa._BATCH_ELEMENTS = 25      # 2 permutations per batch of 10 dissimilarities, 4 batches
        small = rdm_permutation_test(a, b, method="kendall_tau_a", n_permutations=7, seed=4)
    finally:
        rsa._BATCH_ELEMENTS = old
    big = rdm_permutation_test(a, b, method="kendall_tau_a", n_permutations=7, seed=4)
    np.testing.assert_array_equal(small.null_distribution, big.null_distribution)


def test_independent_rdms_give_roughly_uniform_p_values():
    rng = np.random.default_rng(19)
    p_spearman = []
    for seed in range(300):
        a, b = random_rdm(rng, 8), random_rdm(rng, 8)
        p_spearman.append(rdm_permutation_test(a, b, n_permutations=199, seed=seed).p_value)
    p_spearman = np.array(p_spearman)
    assert 0.02 <= np.mean(p_spearman <= 0.05) <= 0.09
    assert 0.42 <= np.mean(p_spearman <= 0.5) <= 0.58
    assert 0.45 <= p_spearman.mean() <= 0.55
    # tau-a, over a handful of seeds: not all small
    p_tau = [rdm_permutation_test(latent_rdm(rng, rng.normal(size=(10, 5)), 0.0),
                                  latent_rdm(rng, rng.normal(size=(10, 5)), 0.0),
                                  method="kendall_tau_a", n_permutations=499, seed=seed).p_value
             for seed in range(8)]
    assert sum(p < 0.05 for p in p_tau) <= 2 and max(p_tau) > 0.5


def test_permutation_test_bad_input_raises():
    a = vector_to_rdm(np.arange(1.0, 7.0))
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="n_permutations"):
            rdm_permutation_test(a, a, n_permutations=bad)
    with pytest.raises(ValueError, match="undefined"):
        rdm_permutation_test(a, vector_to_rdm(np.ones(6)), n_permutations=10)
    with pytest.raises(ValueError, match="4 and 3 conditions"):
        rdm_permutation_test(a, np.ones(3))


# --------------------------------------------------------------------------------------------------
# input checks of representational_dissimilarity


def test_dissimilarity_bad_input_raises():
    x = np.arange(12.0).reshape(3, 4) ** 1.5
    with pytest.raises(ValueError, match="metric must be one of"):
        representational_dissimilarity(x, metric="cosine")
    with pytest.raises(ValueError, match=r"2-D.*correlation.*\(2, 3, 4\)"):
        representational_dissimilarity(np.stack([x, x]))
    with pytest.raises(ValueError, match=r"3-D.*crossnobis.*\(3, 4\)"):
        representational_dissimilarity(x, metric="crossnobis")
    with pytest.raises(ValueError, match=r"at least 2 independent partitions.*\(1, 3, 4\)"):
        representational_dissimilarity(x[None], metric="crossnobis")
    with pytest.raises(ValueError, match=r"at least 2 conditions.*\(1, 4\)"):
        representational_dissimilarity(x[:1], metric="euclidean")
    with pytest.raises(ValueError, match=r"at least 2 conditions.*\(2, 1, 4\)"):
        representational_dissimilarity(np.stack([x[:1], x[:1]]), metric="crossnobis")
    with pytest.raises(ValueError, match="empty"):
        representational_dissimilarity(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"NaN.*\(1, 2\)"):
        representational_dissimilarity(np.where(np.arange(12).reshape(3, 4) == 6, np.nan, x))
    with pytest.raises(ValueError, match="real numbers"):
        representational_dissimilarity(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="condition 1 is constant"):
        representational_dissimilarity(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    with pytest.raises(ValueError, match="at least 2 channels"):
        representational_dissimilarity(np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="squared applies to the euclidean"):
        representational_dissimilarity(x, squared=True)
    with pytest.raises(ValueError, match="noise_cov applies to the crossnobis"):
        representational_dissimilarity(x, metric="euclidean", noise_cov=np.eye(4))
    with pytest.raises(ValueError, match="residuals applies to the crossnobis"):
        representational_dissimilarity(x, residuals=np.ones((5, 4)))


def test_crossnobis_bad_noise_raises():
    rng = np.random.default_rng(20)
    p = rng.normal(size=(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(n_channels, n_channels\) = \(4, 4\).*\(3, 3\)"):
        representational_dissimilarity(p, metric="crossnobis", noise_cov=np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        representational_dissimilarity(p, metric="crossnobis", noise_cov=np.ones((4, 4)))
    with pytest.raises(ValueError, match="symmetric"):
        representational_dissimilarity(p, metric="crossnobis", noise_cov=np.eye(4) + np.triu(np.ones((4, 4)), 1))
    with pytest.raises(ValueError, match="not both"):
        representational_dissimilarity(p, metric="crossnobis", noise_cov=np.eye(4), residuals=np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"n_channels=4.*\(5, 3\)"):
        representational_dissimilarity(p, metric="crossnobis", residuals=np.ones((5, 3)))
    with pytest.raises(ValueError, match="none were given"):
        representational_dissimilarity(p, metric="crossnobis", shrinkage=0.5)
    with pytest.raises(ValueError, match="positive definite"):   # 2 samples, 4 channels, no shrinkage
        representational_dissimilarity(p, metric="crossnobis", residuals=rng.normal(size=(2, 4)), shrinkage=0.0)
