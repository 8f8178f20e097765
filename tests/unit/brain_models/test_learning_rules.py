"""Local learning rules: Hebbian PCA against eigenvectors; feedback alignment and node perturbation against backprop."""

from __future__ import annotations

import numpy as np
import pytest

from services.reduction.core.learning_rules import (
    compare_learning_rules, generalized_hebbian, linear_teacher_task, oja_rule, three_factor_association,
    train_two_layer,
)


def planted_spectrum(n_samples=4000, variances=(6.0, 3.0, 1.5, 0.5, 0.3, 0.2, 0.1, 0.1), seed=0):
    """Gaussian data with known principal axes (the columns of Q) and variances, plus an offset."""
    rng = np.random.default_rng(seed)
    d = len(variances)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = rng.normal(size=(n_samples, d)) * np.sqrt(variances) @ Q.T + 5.0
    return X, Q


def test_oja_single_unit_converges_to_the_first_principal_component_at_unit_norm():
    X, Q = planted_spectrum()
    fit = oja_rule(X, epochs=5, seed=1)
    assert abs(fit.weights[0] @ Q[:, 0]) / np.linalg.norm(fit.weights[0]) > 0.99
    assert abs(np.linalg.norm(fit.weights[0]) - 1.0) < 0.02
    np.testing.assert_allclose(fit.mean, X.mean(axis=0))
    assert abs(fit.components[0] @ Q[:, 0]) > 0.99          # the sample eigenvector is close to the planted one
    assert fit.alignment[-1, 0] > 0.99 and fit.alignment[0, 0] < fit.alignment[-1, 0] + 1e-12


def test_without_centring_oja_finds_the_mean_direction():
    X, _ = planted_spectrum()
    fit = oja_rule(X, epochs=5, center=False)
    mean_direction = X.mean(axis=0) / np.linalg.norm(X.mean(axis=0))
    assert abs(fit.weights[0] @ mean_direction) > 0.99      # E[x x^T] is dominated by the offset of 5


def test_sanger_rule_finds_the_top_eigenvectors_in_order():
    X, Q = planted_spectrum()
    fit = generalized_hebbian(X, 3, rule="sanger", epochs=10, seed=2)
    cosines = np.abs(np.sum(fit.weights * Q[:, :3].T, axis=1)) / np.linalg.norm(fit.weights, axis=1)
    assert np.all(cosines > 0.99), cosines
    np.testing.assert_allclose(np.linalg.norm(fit.weights, axis=1), 1.0, atol=0.02)
    np.testing.assert_allclose(fit.eigenvalues, [6.0, 3.0, 1.5], rtol=0.1)


def test_symmetric_subspace_rule_finds_an_orthonormal_basis_of_the_top_subspace():
    X, Q = planted_spectrum()
    fit = generalized_hebbian(X, 3, rule="subspace", epochs=10, seed=2)
    np.testing.assert_allclose(fit.weights @ fit.weights.T, np.eye(3), atol=0.02)
    # principal angles between the learned span and the top-3 eigenvectors all near 0
    qa, _ = np.linalg.qr(fit.weights.T)
    assert np.linalg.svd(qa.T @ Q[:, :3], compute_uv=False).min() > 0.99
    assert fit.alignment[-1].min() > 0.99


@pytest.fixture(scope="module")
def comparison():
    X, Y, T = linear_teacher_task(n_samples=1000, n_in=30, n_out=10, noise_sd=0.1, seed=0)
    rng = np.random.default_rng(5)
    X_test = rng.normal(size=(500, 30))
    Y_test = X_test @ T.T + 0.1 * rng.normal(size=(500, 10))
    calls = []
    out = compare_learning_rules(X, Y, n_hidden=20, epochs=40, X_test=X_test, Y_test=Y_test, seed=0,
                                 report=lambda f, m: calls.append(f))
    return out, calls


def test_backprop_and_feedback_alignment_reach_the_least_squares_loss(comparison):
    out, calls = comparison
    floor = out["least_squares_loss"]
    bp, fa = out["train_loss"]["backprop"], out["train_loss"]["feedback_alignment"]
    assert bp[-1] < 1.02 * floor and fa[-1] < 1.05 * bp[-1]
    # all rules started from the same weights
    assert len({round(float(curve[0]), 12) for curve in out["train_loss"].values()}) == 1
    for rule, curve in out["test_loss"].items():
        assert curve[-1] < 1.3 * out["train_loss"][rule][-1] + 0.01
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0) and len(calls) == 3 * 40


def test_feedback_alignment_aligns_forward_weights_with_the_fixed_feedback(comparison):
    fa = comparison[0]["results"]["feedback_alignment"]
    assert fa.feedback_angle[0] > 80 and fa.feedback_angle[-1] < 45        # measured 88 -> 32 degrees
    assert fa.update_angle[0] > 80 and np.median(fa.update_angle[5:]) < 60  # measured 84 -> about 30
    np.testing.assert_array_equal(fa.weights["B"], comparison[0]["results"]["backprop"].weights["B"])
    assert np.all(comparison[0]["results"]["backprop"].update_angle < 1e-4)   # 0 up to rounding


def test_node_perturbation_learns_from_reward_alone(comparison):
    out = comparison[0]
    curve = out["train_loss"]["three_factor"]
    assert curve[-1] < 0.05 * curve[0] and curve[-1] < 3 * out["least_squares_loss"]
    assert np.all(curve[20:] < curve[10])                  # still descending after the start
    # its one-run gradient estimates point downhill on average, if only just
    assert np.mean(out["results"]["three_factor"].update_angle[1:]) < 85


def test_feedback_alignment_trains_a_nonlinear_network_too():
    X, Y, _ = linear_teacher_task(n_samples=600, n_in=8, n_out=3, noise_sd=0.0, seed=4)
    Y = np.tanh(2 * Y)
    bp = train_two_layer(X, Y, rule="backprop", activation="tanh", epochs=30, learning_rate=0.05, seed=1)
    fa = train_two_layer(X, Y, rule="feedback_alignment", activation="tanh", epochs=30, learning_rate=0.05, seed=1)
    assert fa.train_loss[-1] < 0.2 * fa.train_loss[0] and fa.train_loss[-1] < 2 * bp.train_loss[-1]
    assert fa.update_angle[-1] < 90


@pytest.mark.parametrize("baseline", ["unperturbed", "running"])
def test_three_factor_association_converges_to_the_known_answer(baseline):
    X, Y, T = linear_teacher_task(n_samples=500, n_in=5, n_out=3, noise_sd=0.05, seed=3)
    fit = three_factor_association(X, Y, epochs=20, batch_size=5, learning_rate=0.1, baseline=baseline, seed=1)
    assert fit.weight_error[-1] < 0.1
    assert np.linalg.norm(fit.weights - T) / np.linalg.norm(T) < 0.1
    assert fit.reward[-1] > fit.reward[0] and fit.reward[-1] > -0.1


def test_rules_are_deterministic_and_reports_can_cancel():
    X, Y, _ = linear_teacher_task(n_samples=100, n_in=4, n_out=2, seed=0)
    a = train_two_layer(X, Y, rule="three_factor", epochs=3, seed=7)
    b = train_two_layer(X, Y, rule="three_factor", epochs=3, seed=7)
    np.testing.assert_array_equal(a.weights["W1"], b.weights["W1"])

    def cancel(fraction, message):
        raise KeyboardInterrupt

    for call in (lambda: oja_rule(X, report=cancel), lambda: train_two_layer(X, Y, report=cancel),
                 lambda: three_factor_association(X, Y, report=cancel)):
        with pytest.raises(KeyboardInterrupt):
            call()


@pytest.mark.parametrize("call, message", [
    (lambda: oja_rule(np.zeros((0, 3))), "empty"),
    (lambda: oja_rule(np.ones(5)), "shape"),
    (lambda: oja_rule(np.ones((10, 3))), "no variance"),
    (lambda: oja_rule([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (lambda: generalized_hebbian(np.eye(3), 4), "n_components"),
    (lambda: generalized_hebbian(np.eye(3), 2, rule="hebb"), "rule"),
    (lambda: oja_rule(np.eye(3), learning_rate=-1), "learning_rate"),
    (lambda: train_two_layer(np.eye(3), np.eye(4)), "one row per sample"),
    (lambda: train_two_layer(np.eye(3), np.eye(3), rule="sgd"), "rule"),
    (lambda: train_two_layer(np.eye(3), np.eye(3), activation="sigmoid"), "activation"),
    (lambda: train_two_layer(np.eye(3), np.eye(3), X_test=np.eye(3)), "X_test and Y_test"),
    (lambda: train_two_layer(np.eye(3), np.eye(3), initial_weights={"W1": np.eye(3)}), "initial_weights"),
    (lambda: compare_learning_rules(np.eye(3), np.eye(3), rules=()), "rules"),
    (lambda: compare_learning_rules(np.eye(3), np.eye(3), learning_rates={"hebb": 0.1}), "unknown rules"),
    (lambda: three_factor_association(np.eye(3), np.eye(3), baseline="critic"), "baseline"),
    (lambda: three_factor_association(np.eye(3), np.eye(3), perturbation_sd=0), "perturbation_sd"),
])
def test_bad_input_raises_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
