"""Structure and function of simulated networks against reference computations and planted ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from services.connectomics.core.simulated import (functional_connectivity, group_matrix, spike_count_matrix,
                                                   structural_matrix, structure_function_agreement)


def test_structural_matrix_sums_every_synapse_of_a_pair():
    rng = np.random.default_rng(0)
    pre, post = rng.integers(0, 6, 50), rng.integers(0, 6, 50)
    w = rng.normal(size=50)
    dense = np.zeros((6, 6))
    for i, j, x in zip(pre, post, w):
        dense[i, j] += x
    np.testing.assert_allclose(structural_matrix(pre, post, w, n_neurons=6).toarray(), dense)


def test_spike_counts_equal_a_histogram_per_neuron():
    rng = np.random.default_rng(1)
    times, ids = rng.uniform(-5, 105, 400), rng.integers(0, 4, 400)
    counts = spike_count_matrix(times, ids, n_neurons=4, bin_ms=7.0, duration_ms=100.0)
    edges = np.arange(0, 14 * 7.0 + 1e-9, 7.0)          # 14 complete bins of 7 ms in 100 ms
    expected = np.stack([np.histogram(times[ids == i], bins=edges)[0] for i in range(4)], axis=1)
    np.testing.assert_array_equal(counts, expected)


def test_functional_connectivity_equals_numpy_corrcoef_and_marks_silent_neurons():
    rng = np.random.default_rng(2)
    counts = rng.poisson(3.0, size=(200, 5)).astype(float)
    counts[:, 3] = 0.0                                   # silent
    fc = functional_connectivity(counts)
    active = [0, 1, 2, 4]
    np.testing.assert_allclose(fc[np.ix_(active, active)], np.corrcoef(counts[:, active].T), atol=1e-12)
    assert np.isnan(fc[3]).all() and np.isnan(fc[:, 3]).all()


def planted_network(n=40, p=0.1, bins=3000, seed=0):
    """Counts whose only correlations come from the synapses: each synapse is a Poisson source
    shared by its two neurons (on top of private noise)."""
    rng = np.random.default_rng(seed)
    connected = np.triu(rng.random((n, n)) < p, k=1)
    pre, post = np.nonzero(connected)
    weights = rng.uniform(0.5, 2.0, len(pre)) * rng.choice([-1, 1], len(pre))   # signs do not matter
    counts = rng.poisson(2.0, size=(bins, n)).astype(float)
    for i, j, w in zip(pre, post, weights):
        shared = rng.poisson(abs(w), size=bins)
        counts[:, i] += shared
        counts[:, j] += shared
    return pre, post, weights, counts


def test_agreement_is_high_when_the_wiring_makes_the_correlations():
    pre, post, weights, counts = planted_network()
    W = structural_matrix(pre, post, weights, n_neurons=counts.shape[1])
    agreement = structure_function_agreement(W, functional_connectivity(counts))
    assert agreement.pearson_r > 0.8 and agreement.spearman_rho > 0.5
    assert agreement.connected_mean_correlation > 0.1 > abs(agreement.unconnected_mean_correlation)
    assert agreement.n_pairs == 40 * 39 // 2 and agreement.n_connected_pairs == len(pre) and agreement.n_silent == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_is_near_zero_for_wiring_unrelated_to_the_activity(seed):
    pre, post, weights, counts = planted_network(seed=seed)
    shuffled = np.random.default_rng(seed + 10).permutation(counts.shape[1])   # the same graph, other neurons
    W = structural_matrix(shuffled[pre], shuffled[post], weights, n_neurons=counts.shape[1])
    agreement = structure_function_agreement(W, functional_connectivity(counts))
    assert abs(agreement.pearson_r) < 0.15          # a few pairs stay connected by chance
    assert agreement.connected_mean_correlation < 0.05


def test_group_matrix_sums_and_averages_by_population():
    m = np.arange(16, dtype=float).reshape(4, 4)
    labels, total = group_matrix(m, ["b", "a", "a", "b"])
    assert labels.tolist() == ["a", "b"]
    np.testing.assert_array_equal(total, [[m[1:3, 1:3].sum(), m[np.ix_([1, 2], [0, 3])].sum()],
                                          [m[np.ix_([0, 3], [1, 2])].sum(), m[np.ix_([0, 3], [0, 3])].sum()]])
    _, mean = group_matrix(m, [0, 0, 1, 1], reduce="mean")
    assert mean[0, 0] == pytest.approx((m[0, 1] + m[1, 0]) / 2)       # diagonal: distinct pairs only
    assert mean[0, 1] == pytest.approx(m[0:2, 2:4].mean())


@pytest.mark.parametrize("call, message", [
    (lambda: structural_matrix([0, 1], [1], [1.0, 1.0], n_neurons=2), "same length"),
    (lambda: structural_matrix([0, 5], [1, 1], [1.0, 1.0], n_neurons=2), r"outside \[0, 2\)"),
    (lambda: structural_matrix([0], [1], [np.nan], n_neurons=2), "NaN"),
    (lambda: spike_count_matrix([1.0], [0], n_neurons=1, bin_ms=10.0, duration_ms=15.0), ">= 2"),
    (lambda: spike_count_matrix([np.inf], [0], n_neurons=1, bin_ms=1.0, duration_ms=15.0), "NaN or infinite"),
    (lambda: spike_count_matrix([1.0], [0], n_neurons=100_000, bin_ms=1.0, duration_ms=15.0), "limit"),
    (lambda: functional_connectivity(np.ones(5)), "2-D"),
    (lambda: structure_function_agreement(np.zeros((3, 3)), np.eye(4)), "same shape"),
    (lambda: structure_function_agreement(np.zeros((2, 3)), np.eye(2)), "square"),
])
def test_bad_input_is_refused_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
