"""Circuit inference: planted connectivity recovered by fitting, fixed points of known attractors found."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from services.reduction.core.circuit_inference import (
    RateNetwork, connectivity_correlation, effective_connectivity, find_fixed_points, fit_rate_network,
    random_rate_network, sample_states, simulate_rate_network, variance_explained,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and extra threads spin-wait on these tiny tensors."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def smooth_inputs(n_trials, n_steps, n_inputs, *, seed=0, scale=0.5):
    """Autoregressive (coefficient 0.7) Gaussian inputs: slow enough for the network to follow."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n_trials, n_steps, n_inputs))
    u = np.zeros_like(raw)
    for t in range(n_steps):
        u[:, t] = (0.7 * u[:, t - 1] if t else 0.0) + raw[:, t]
    return scale * u


def recordings(truth, *, n_trials=60, n_steps=40, noise_sd=0.02, seed=0):
    u = smooth_inputs(n_trials, n_steps, truth.n_inputs, seed=seed)
    data = simulate_rate_network(truth, u)
    noisy = data.rates + noise_sd * np.random.default_rng(seed + 1).normal(size=data.rates.shape)
    return u, data, noisy


def test_simulation_of_a_linear_network_settles_at_the_analytic_fixed_point():
    rng = np.random.default_rng(0)
    W = 0.5 * rng.normal(size=(5, 5)) / math.sqrt(5)
    net = RateNetwork(recurrent=W, input_weights=rng.normal(size=(5, 2)), readout=rng.normal(size=(1, 5)),
                      bias=0.1, readout_bias=0.0, initial_state=0.0, tau=1.0, dt=0.1, activation="linear")
    u = np.array([0.3, -0.7])
    out = simulate_rate_network(net, np.tile(u, (400, 1)))
    expected = np.linalg.solve(np.eye(5) - W, net.input_weights @ u + 0.1)
    np.testing.assert_allclose(out.states[0, -1], expected, atol=1e-8)
    np.testing.assert_allclose(out.outputs[0, -1], net.readout @ expected, atol=1e-8)


@pytest.fixture(scope="module")
def full_fit():
    truth = random_rate_network(12, n_inputs=3, n_outputs=2, gain=1.5, seed=1)
    u, data, noisy = recordings(truth)
    calls = []
    fit = fit_rate_network(u, noisy, behaviour=data.outputs, optimizer="lbfgs", epochs=20, device="cpu", seed=0,
                           report=lambda f, m: calls.append(f))
    return truth, data, fit, calls


def test_fit_with_every_unit_observed_recovers_the_connectivity(full_fit):
    truth, data, fit, calls = full_fit
    assert fit.heldout_trials.size == 12 and fit.train_trials.size == 48
    assert np.intersect1d(fit.heldout_trials, fit.train_trials).size == 0
    assert fit.heldout_activity_r2 > 0.98 and fit.heldout_behaviour_r2 > 0.98
    # the measure: Pearson correlation of all N^2 entries of W (phi = tanh is fixed, so W is identified);
    # measured 0.89; an unrelated random network of the same statistics is at chance
    assert connectivity_correlation(truth.recurrent, fit.network.recurrent) > 0.8
    chance = [abs(connectivity_correlation(truth.recurrent, random_rate_network(12, gain=1.5, seed=s).recurrent))
              for s in range(2, 12)]
    assert max(chance) < 0.35
    effective = connectivity_correlation(effective_connectivity(truth, data.states),
                                         effective_connectivity(fit.network, data.states))
    assert effective > 0.6
    assert fit.loss[-1] < 0.05 * fit.loss[0]
    assert calls == sorted(calls) and calls[-1] == 1.0


def test_fit_with_hidden_units_predicts_held_out_activity_and_behaviour():
    truth = random_rate_network(12, n_inputs=3, n_outputs=2, gain=1.5, seed=3)
    u, data, noisy = recordings(truth, seed=5)
    observed = np.array([0, 1, 2, 4, 5, 7, 8, 10, 11])
    fit = fit_rate_network(u, noisy[..., observed], behaviour=data.outputs, observed_units=observed, n_units=12,
                           optimizer="lbfgs", epochs=15, device="cpu", seed=1)
    assert fit.predicted_activity.shape == (60, 40, 9) and fit.predicted_behaviour.shape == (60, 40, 2)
    assert fit.heldout_activity_r2 > 0.95 and fit.heldout_behaviour_r2 > 0.95
    np.testing.assert_allclose(
        fit.heldout_activity_r2,
        variance_explained(noisy[fit.heldout_trials][..., observed], fit.predicted_activity[fit.heldout_trials]))


def test_dale_law_fit_keeps_column_signs_and_recovers_the_connectivity():
    signs = np.array([1] * 9 + [-1] * 3)
    truth = random_rate_network(12, n_inputs=3, n_outputs=2, gain=1.5, dale_signs=signs, seed=1)
    u, data, noisy = recordings(truth)
    fit = fit_rate_network(u, noisy, behaviour=data.outputs, dale_signs=signs, optimizer="lbfgs", epochs=15,
                           device="cpu", seed=0)
    W = fit.network.recurrent
    assert (W[:, :9] >= 0).all() and (W[:, 9:] <= 0).all()
    assert connectivity_correlation(truth.recurrent, W) > 0.8
    assert fit.heldout_activity_r2 > 0.98


def test_adam_fit_learns_and_reports_and_can_be_cancelled():
    truth = random_rate_network(8, n_inputs=2, n_outputs=1, gain=1.2, seed=2)
    u, data, noisy = recordings(truth, n_trials=30, n_steps=25)
    calls = []
    fit = fit_rate_network(u, noisy, behaviour=data.outputs, epochs=60, batch_size=8, learning_rate=0.05,
                           learn_initial_state=True, device="cpu", seed=0, report=lambda f, m: calls.append(m))
    assert fit.loss[-10:].mean() < 0.1 * fit.loss[0]
    assert fit.heldout_activity_r2 > 0.9 and fit.heldout_behaviour_r2 > 0.9
    assert np.isfinite(fit.heldout_loss).all() and len(calls) == 10

    def cancel(fraction, message):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_rate_network(u, noisy, epochs=20, device="cpu", report=cancel)


def test_fixed_points_of_uncoupled_bistable_units_are_the_analytic_ones():
    # x = 2 tanh(x): x* solves it; each unit has fixed points {-x*, 0, x*}, 9 in all
    x_star = 1.0
    for _ in range(100):
        x_star = 2 * math.tanh(x_star)
    net = RateNetwork(recurrent=2 * np.eye(2), input_weights=np.zeros((2, 1)), readout=np.zeros((1, 2)), bias=0.0,
                      readout_bias=0.0, initial_state=0.0, tau=2.0, dt=0.2)
    starts = np.random.default_rng(0).uniform(-3, 3, size=(200, 2))
    found = find_fixed_points(net, starts, device="cpu")
    assert len(found.points) == 9 and found.is_fixed.all()
    expected = {(a, b) for a in (-x_star, 0.0, x_star) for b in (-x_star, 0.0, x_star)}
    for point in found.points:
        assert min(np.hypot(*(point - np.array(e))) for e in expected) < 1e-8
    kinds = {str(k): int((found.stability == k).sum()) for k in np.unique(found.stability)}
    assert kinds == {"stable": 4, "saddle": 4, "unstable": 1}
    stable = found.eigenvalues[found.stability == "stable"].real
    np.testing.assert_allclose(stable, (-1 + 2 * (1 - math.tanh(x_star) ** 2)) / 2.0, atol=1e-8)
    unstable = found.eigenvalues[found.stability == "unstable"].real
    np.testing.assert_allclose(unstable, (-1 + 2) / 2.0, atol=1e-8)
    np.testing.assert_allclose(found.map_eigenvalues, 1 + 0.2 * found.eigenvalues, atol=1e-12)


def test_line_attractor_fixed_points_lie_on_the_line_with_a_marginal_direction_along_it():
    rng = np.random.default_rng(4)
    n = 10
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    line = Q[:, 0]
    spectrum = np.concatenate([[1.0], rng.uniform(-0.5, 0.8, n - 1)])    # one eigenvalue exactly 1
    W = Q @ np.diag(spectrum) @ Q.T
    net = RateNetwork(recurrent=W, input_weights=np.zeros((n, 1)), readout=np.zeros((1, n)), bias=0.0,
                      readout_bias=0.0, initial_state=0.0, tau=1.0, dt=0.1, activation="linear")
    # initial states from trajectories that relax onto the line from random starts
    trajectories = np.stack([simulate_rate_network(net, np.zeros((30, 1)), initial_state=rng.normal(0, 2, n)).states[0]
                             for _ in range(20)])
    found = find_fixed_points(net, sample_states(trajectories, 100, noise_sd=0.3, seed=1), unique_tolerance=0.05,
                              device="cpu")
    assert len(found.points) >= 10 and found.is_fixed.all()
    along = found.points @ line
    off_line = found.points - np.outer(along, line)
    assert np.abs(off_line).max() < 1e-8
    assert along.max() - along.min() > 2.0                     # points spread along the line
    assert (found.stability == "marginal").all() and (found.n_marginal == 1).all()
    # the leading eigenvalue is 0 in continuous time (1 for the map), with its eigenvector along the line
    np.testing.assert_allclose(found.eigenvalues[:, 0], 0.0, atol=1e-8)
    np.testing.assert_allclose(found.map_eigenvalues[:, 0], 1.0, atol=1e-9)
    assert np.all(np.abs(found.eigenvectors[:, :, 0].real @ line) > 1 - 1e-8)
    np.testing.assert_allclose(np.sort(found.eigenvalues[0, 1:].real), np.sort(spectrum[1:] - 1.0), atol=1e-8)


def test_a_constant_input_moves_the_fixed_point_of_a_linear_network():
    rng = np.random.default_rng(2)
    W = 0.4 * rng.normal(size=(4, 4)) / 2
    net = RateNetwork(recurrent=W, input_weights=rng.normal(size=(4, 2)), readout=np.zeros((1, 4)), bias=0.0,
                      readout_bias=0.0, initial_state=0.0, activation="linear")
    u = np.array([1.0, -0.5])
    found = find_fixed_points(net, rng.normal(size=(20, 4)), inputs=u, device="cpu")
    assert len(found.points) == 1 and found.stability[0] == "stable"
    np.testing.assert_allclose(found.points[0], np.linalg.solve(np.eye(4) - W, net.input_weights @ u), atol=1e-9)


def test_slow_points_are_kept_but_not_called_fixed():
    # x' = -x + 2 tanh(x) + a: at x_c = -acosh(sqrt(2)) the slope of x' vanishes, and x' itself for a = a_crit (a
    # saddle-node). Just past it the left pair of fixed points is gone, leaving a ghost where the flow nearly stops
    a_crit = 2 * math.tanh(math.acosh(math.sqrt(2))) - math.acosh(math.sqrt(2))
    net = RateNetwork(recurrent=[[2.0]], input_weights=[[1.0]], readout=[[0.0]], bias=0.0, readout_bias=0.0,
                      initial_state=0.0, tau=1.0, dt=0.1)
    found = find_fixed_points(net, np.linspace(-3, 3, 31)[:, None], inputs=[a_crit + 0.01], keep_tolerance=1e-4,
                              device="cpu")
    slow = found.points[~found.is_fixed]
    assert found.is_fixed.sum() == 1 and found.points[found.is_fixed][0, 0] > 1      # the surviving fixed point
    assert len(slow) == 1 and slow[0, 0] == pytest.approx(-math.acosh(math.sqrt(2)), abs=0.1)
    assert found.speed[~found.is_fixed][0] < 0.02


@pytest.mark.parametrize("call, message", [
    (lambda: RateNetwork(np.ones((2, 3)), np.zeros((2, 1)), np.zeros((1, 2)), 0, 0, 0), "square"),
    (lambda: RateNetwork(np.eye(2), np.zeros((2, 1)), np.zeros((1, 2)), 0, 0, 0, tau=1.0, dt=2.0), "dt"),
    (lambda: RateNetwork(np.eye(2), np.zeros((2, 1)), np.zeros((1, 2)), 0, 0, 0, activation="sigmoid"),
     "activation"),
    (lambda: random_rate_network(4, dale_signs=[1, 1, 0, -1]), "dale_signs"),
    (lambda: simulate_rate_network(random_rate_network(3, n_inputs=2), np.zeros((5, 3))), "channels"),
    (lambda: fit_rate_network(np.zeros((4, 5, 1)), np.zeros((4, 6, 2))), "activity must have shape"),
    (lambda: fit_rate_network(np.zeros((4, 5, 1)), np.full((4, 5, 2), np.nan)), "NaN"),
    (lambda: fit_rate_network(np.zeros((4, 5, 1)), np.zeros((4, 5, 2)), observed_units=[0, 0], n_units=3),
     "observed_units"),
    (lambda: fit_rate_network(np.zeros((4, 5, 1)), np.zeros((4, 5, 2)), optimizer="sgd"), "optimizer"),
    (lambda: fit_rate_network(np.zeros((1, 5, 1)), np.zeros((1, 5, 2)), holdout_fraction=0.9), "no training"),
    (lambda: find_fixed_points(random_rate_network(3), np.zeros((5, 4))), "initial_states"),
    (lambda: find_fixed_points(random_rate_network(3), np.zeros((5, 3)), keep_tolerance=1e-20), "keep_tolerance"),
    (lambda: connectivity_correlation(np.eye(3), np.eye(4)), "one shape"),
    (lambda: variance_explained(np.ones((3, 1)), np.ones((3, 1))), "constant"),
])
def test_bad_input_raises_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
