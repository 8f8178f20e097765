"""KalmanDecoder: fitted parameters of a known linear-Gaussian system, the filter against the exact
posterior by batch Gaussian conditioning, decoding the synthetic reaching session, bad input, saving."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.linalg
from sklearn.base import clone

from services.decoding.core import kalman
from services.decoding.core.base import DECODERS, RidgeDecoder, load_model, save_model, window_tensor
from services.decoding.core.kalman import KalmanDecoder
from services.decoding.core.scores import r2_score

# a known system: 2-D rotating, decaying state seen through 4 noisy observations
TRUE_A = np.array([[0.9, 0.15], [-0.15, 0.85]])
TRUE_W = np.array([[0.5, 0.1], [0.1, 0.3]])
TRUE_H = np.array([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0], [-0.7, 0.3]])
TRUE_Q = np.array([[1.0, 0.2, 0.0, 0.1], [0.2, 0.8, 0.1, 0.0], [0.0, 0.1, 1.5, -0.3], [0.1, 0.0, -0.3, 0.6]])
X_MEAN = np.array([1.0, -2.0])
Z_MEAN = np.array([5.0, 3.0, 0.0, 10.0])
STATIONARY = scipy.linalg.solve_discrete_lyapunov(TRUE_A, TRUE_W)   # Var x_t = A Var A^T + W


def simulate(n, seed, *, initial_cov=STATIONARY):
    """States (n, 2) and observations (n, 4) of the true system, x_1 ~ N(mu_x, initial_cov)."""
    rng = np.random.default_rng(seed)
    w = rng.multivariate_normal(np.zeros(2), TRUE_W, size=n)
    q = rng.multivariate_normal(np.zeros(4), TRUE_Q, size=n)
    x = np.empty((n, 2))
    x[0] = rng.multivariate_normal(np.zeros(2), initial_cov)
    for t in range(1, n):
        x[t] = TRUE_A @ x[t - 1] + w[t]
    return x + X_MEAN, x @ TRUE_H.T + q + Z_MEAN


def true_model(initial_cov=STATIONARY):
    return KalmanDecoder.from_parameters(A=TRUE_A, W=TRUE_W, H=TRUE_H, Q=TRUE_Q, state_mean=X_MEAN,
                                         state_cov=initial_cov, feature_mean=Z_MEAN)


def test_module_examples_run():
    result = doctest.testmod(kalman, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_registered_under_its_name():
    assert DECODERS["kalman"] is KalmanDecoder and KalmanDecoder.decoder_name == "kalman"


# --------------------------------------------------------------------------------------------------
# fitting


def test_fitted_parameters_approach_the_true_ones():
    x, z = simulate(100_000, seed=0)
    errors = {}
    for n in (2_000, 100_000):
        model = KalmanDecoder().fit(z[:n, np.newaxis, :], x[:n])
        errors[n] = {name: np.abs(got - want).max() for name, got, want in
                     [("A", model.A_, TRUE_A), ("W", model.W_, TRUE_W), ("H", model.H_, TRUE_H),
                      ("Q", model.Q_, TRUE_Q), ("S0", model.state_cov_, STATIONARY)]}
    big = errors[100_000]
    # sampling error ~ 1/sqrt(n) ~ 0.003; the state covariance converges slower (autocorrelated)
    assert big["A"] < 0.01 and big["H"] < 0.02 and big["W"] < 0.01 and big["Q"] < 0.02, big
    assert big["S0"] < 0.1, big
    assert sum(big.values()) < sum(errors[2_000].values()) / 3, errors
    np.testing.assert_allclose(model.state_mean_, X_MEAN, atol=0.05)
    np.testing.assert_allclose(model.feature_mean_, Z_MEAN, atol=0.1)


def test_least_squares_fit_on_noise_free_data_is_exact():
    """Without observation noise and with ridge=0, H is recovered to rounding error."""
    x, _ = simulate(500, seed=1)
    z = (x - X_MEAN) @ TRUE_H.T + Z_MEAN
    model = KalmanDecoder(ridge=0.0).fit(z[:, np.newaxis], x)
    np.testing.assert_allclose(model.H_, TRUE_H, atol=1e-10)
    np.testing.assert_allclose(model.Q_, 0.0, atol=1e-10)
    # A is the least-squares regression of centred x_{t+1} on centred x_t
    xc = x - x.mean(axis=0)
    expected_A = np.linalg.solve(xc[:-1].T @ xc[:-1], xc[:-1].T @ xc[1:]).T
    np.testing.assert_allclose(model.A_, expected_A, rtol=1e-10)


def test_transition_noise_scale_multiplies_w_only():
    x, z = simulate(1000, seed=2)
    one = KalmanDecoder().fit(z[:, None], x)
    two = KalmanDecoder(transition_noise_scale=2.0).fit(z[:, None], x)
    np.testing.assert_allclose(two.W_, 2.0 * one.W_, rtol=1e-12)
    np.testing.assert_array_equal(two.A_, one.A_)
    np.testing.assert_array_equal(two.Q_, one.Q_)


# --------------------------------------------------------------------------------------------------
# the filter against exact answers


def batch_posterior(z, initial_cov):
    """p(x_t | z_1..t) for every t by conditioning the joint Gaussian of x_1..T, z_1..T."""
    T, (p, k) = z.shape[0], TRUE_H.shape
    # x - mu = L e with e = (x_1 - mu, w_2, ..., w_T): L[t, s] = A^(t - s) for s <= t
    L = np.zeros((T * k, T * k))
    for t in range(T):
        for s in range(t + 1):
            L[t * k:(t + 1) * k, s * k:(s + 1) * k] = np.linalg.matrix_power(TRUE_A, t - s)
    cov_e = scipy.linalg.block_diag(initial_cov, *[TRUE_W] * (T - 1))
    cov_x = L @ cov_e @ L.T
    Hbig = np.kron(np.eye(T), TRUE_H)
    cov_z = Hbig @ cov_x @ Hbig.T + np.kron(np.eye(T), TRUE_Q)
    cov_xz = cov_x @ Hbig.T
    dz = (z - Z_MEAN).ravel()
    means, covs = np.empty((T, k)), np.empty((T, k, k))
    for t in range(T):
        seen = slice(0, (t + 1) * p)
        rows = slice(t * k, (t + 1) * k)
        cross = cov_xz[rows, seen]
        means[t] = X_MEAN + cross @ np.linalg.solve(cov_z[seen, seen], dz[seen])
        covs[t] = cov_x[rows, rows] - cross @ np.linalg.solve(cov_z[seen, seen], cross.T)
    return means, covs


@pytest.mark.parametrize("initial_cov", [STATIONARY, np.array([[4.0, -1.0], [-1.0, 2.0]])])
def test_filter_equals_batch_gaussian_conditioning(initial_cov):
    _, z = simulate(6, seed=3, initial_cov=initial_cov)
    means, covs = true_model(initial_cov).filter(z[:, np.newaxis, :])
    expected_means, expected_covs = batch_posterior(z, initial_cov)
    np.testing.assert_allclose(means, expected_means, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(covs, expected_covs, rtol=1e-8, atol=1e-10)
    assert means.shape == (6, 2) and covs.shape == (6, 2, 2)


def naive_kalman(z, initial_cov):
    """Textbook covariance-form Kalman filter in observation space, for comparison."""
    m, P = X_MEAN.copy(), initial_cov.copy()
    means, covs = [], []
    for t in range(z.shape[0]):
        if t > 0:
            m = X_MEAN + TRUE_A @ (m - X_MEAN)
            P = TRUE_A @ P @ TRUE_A.T + TRUE_W
        innovation_cov = TRUE_H @ P @ TRUE_H.T + TRUE_Q
        K = P @ TRUE_H.T @ np.linalg.inv(innovation_cov)
        m = m + K @ (z[t] - Z_MEAN - TRUE_H @ (m - X_MEAN))
        P = P - K @ TRUE_H @ P
        means.append(m)
        covs.append(P)
    return np.array(means), np.array(covs)


def test_long_sequences_use_the_steady_state_correctly():
    """Past the convergence of the covariances the filter reuses the steady state: still exact."""
    initial = np.array([[4.0, -1.0], [-1.0, 2.0]])
    _, z = simulate(400, seed=4, initial_cov=initial)
    means, covs = true_model(initial).filter(z[:, np.newaxis, :])
    expected_means, expected_covs = naive_kalman(z, initial)
    np.testing.assert_allclose(means, expected_means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covs, expected_covs, rtol=1e-9, atol=1e-12)
    # the steady state solves the discrete algebraic Riccati equation (prior covariance form)
    prior = scipy.linalg.solve_discrete_are(TRUE_A.T, TRUE_H.T, TRUE_W, TRUE_Q)
    posterior = prior - prior @ TRUE_H.T @ np.linalg.solve(TRUE_H @ prior @ TRUE_H.T + TRUE_Q, TRUE_H @ prior)
    np.testing.assert_allclose(covs[-1], posterior, rtol=1e-9)


def test_filter_beats_the_single_step_regression_on_the_true_system():
    """Using the dynamics is what the filter is for: its error is below that of decoding each
    step from its own observation alone, and its posterior variance matches its actual error."""
    x, z = simulate(20_000, seed=5)
    model = KalmanDecoder().fit(z[:10_000, None], x[:10_000])
    means, covs = model.filter(z[10_000:, None])
    error = means - x[10_000:]
    single = RidgeDecoder(alphas=(1e-6,)).fit(z[:10_000, None], x[:10_000]).predict(z[10_000:, None])
    assert (error ** 2).mean() < 0.8 * ((single - x[10_000:]) ** 2).mean()
    np.testing.assert_allclose((error ** 2).mean(axis=0), np.diagonal(covs[-1]), rtol=0.1)


# --------------------------------------------------------------------------------------------------
# decoding the synthetic reaching session


def test_decodes_reaching_velocity(reaching_session):
    session, counts = reaching_session
    n_train = 4800                                           # 240 s of 300, then 60 s held out
    X, velocity = counts[:, np.newaxis, :], session.velocity  # history_bins=0: the current bin
    model = KalmanDecoder().fit(X[:n_train], velocity[:n_train])
    r2 = r2_score(velocity[n_train:], model.predict(X[n_train:]))
    # measured 0.944 and 0.945; the Wiener filter on the same single bin reaches 0.73
    assert np.all(r2 > 0.9), r2
    wiener = r2_score(velocity[n_train:], RidgeDecoder().fit(X[:n_train], velocity[:n_train]).predict(X[n_train:]))
    assert np.all(r2 > wiener + 0.1), (r2, wiener)


def test_history_windows_are_flattened_observations(small_session):
    session, counts = small_session
    X, valid = window_tensor(counts, history_bins=2)
    model = KalmanDecoder().fit(X[valid], session.velocity[valid])
    assert model.H_.shape == (60, 2) and model.Q_.shape == (60, 60)
    flat = KalmanDecoder().fit(X[valid].reshape(-1, 1, 60), session.velocity[valid])
    np.testing.assert_allclose(model.predict(X[valid]), flat.predict(X[valid].reshape(-1, 1, 60)), rtol=1e-10)


def test_a_constant_target_stays_at_its_value():
    """A target that never moves (singular state covariance) is decoded as that value."""
    rng = np.random.default_rng(9)
    y = np.column_stack([0.1 * rng.normal(size=500).cumsum(), np.full(500, 3.0)])
    z = y[:, :1] @ [[1.0, 2.0, 3.0]] + rng.normal(size=(500, 3))
    prediction = KalmanDecoder().fit(z[:, None], y).predict(z[:, None])
    np.testing.assert_allclose(prediction[:, 1], 3.0, atol=1e-9)
    assert r2_score(y[:, 0], prediction[:, 0])[0] > 0.5


def test_a_silent_unit_is_harmless_with_ridge(small_session):
    session, counts = small_session
    counts = counts.copy()
    counts[:, 3] = 0.0
    X = counts[:, np.newaxis, :]
    model = KalmanDecoder().fit(X[:800], session.velocity[:800])
    test = X[800:].copy()
    test[:, 0, 3] = 5.0                                      # it fires at test time: no effect
    np.testing.assert_allclose(model.predict(test), model.predict(X[800:]), atol=1e-8)
    with pytest.raises(ValueError, match=r"Q_ is not positive definite; fit with ridge > 0"):
        KalmanDecoder(ridge=0.0).fit(X[:800], session.velocity[:800]).predict(X[800:])


# --------------------------------------------------------------------------------------------------
# the contract: bad input, saving, scikit-learn parameters


def test_save_load_round_trip_gives_identical_predictions(small_session):
    session, counts = small_session
    X, valid = window_tensor(counts, history_bins=1)
    model = KalmanDecoder(ridge=1e-3, transition_noise_scale=1.5).fit(X[valid][:800], session.velocity[valid][:800])
    again = load_model(save_model(model))
    assert isinstance(again, KalmanDecoder) and again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.predict(X[valid][800:]), model.predict(X[valid][800:]))
    assert clone(model).get_params() == {"ridge": 1e-3, "transition_noise_scale": 1.5}


def test_reports_progress():
    x, z = simulate(50, seed=6)
    calls = []
    KalmanDecoder().fit(z[:, None], x, report=lambda f, message: calls.append(f))
    assert calls == [1.0]


@pytest.mark.parametrize("params, message", [
    ({"ridge": -1.0}, r"ridge must be a finite number >= 0, got -1.0"),
    ({"ridge": np.nan}, r"ridge must be a finite number >= 0"),
    ({"transition_noise_scale": 0.0}, r"transition_noise_scale must be > 0, got 0"),
    ({"transition_noise_scale": "big"}, r"transition_noise_scale must be a finite number"),
])
def test_bad_parameters_raise(params, message):
    x, z = simulate(50, seed=7)
    with pytest.raises(ValueError, match=message):
        KalmanDecoder(**params).fit(z[:, None], x)


def test_bad_input_raises():
    x, z = simulate(50, seed=8)
    X = z[:, None, :]
    with pytest.raises(ValueError, match=r"KalmanDecoder is not fitted"):
        KalmanDecoder().predict(X)
    with pytest.raises(ValueError, match=r"window tensor of shape \(n_samples, n_lags, n_features\), "
                                         r"got shape \(50, 4\)"):
        KalmanDecoder().fit(z, x)
    with pytest.raises(ValueError, match=r"X has 50 samples but the targets have 49"):
        KalmanDecoder().fit(X, x[:49])
    with pytest.raises(ValueError, match=r"at least n_outputs \+ 2 = 4 consecutive samples.*got 3"):
        KalmanDecoder().fit(X[:3], x[:3])
    bad = X.copy()
    bad[10, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at sample 10, lag 0, feature 2\)"):
        KalmanDecoder().fit(bad, x)
    model = KalmanDecoder().fit(X, x)
    with pytest.raises(ValueError, match=r"windows of shape \(2, 2\), the decoder was fitted on \(1, 4\)"):
        model.predict(z.reshape(50, 2, 2))
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        model.filter(bad)
    with pytest.raises(ValueError, match=r"is not fitted \(no A_\)"):
        save_model(KalmanDecoder())


def test_from_parameters_checks_shapes():
    with pytest.raises(ValueError, match=r"Q must have shape \(4, 4\) for H of shape \(4, 2\), got \(3, 3\)"):
        KalmanDecoder.from_parameters(A=TRUE_A, W=TRUE_W, H=TRUE_H, Q=np.eye(3), state_mean=X_MEAN,
                                      state_cov=STATIONARY)
    with pytest.raises(ValueError, match=r"n_lags must be an integer >= 1 dividing H's 4 rows, got 3"):
        KalmanDecoder.from_parameters(A=TRUE_A, W=TRUE_W, H=TRUE_H, Q=TRUE_Q, state_mean=X_MEAN,
                                      state_cov=STATIONARY, n_lags=3)


# --------------------------------------------------------------------------------------------------
# online decoding, one window at a time


def test_stepping_one_window_at_a_time_equals_the_filter():
    """Through the transient and well past the steady state, step gives filter's means."""
    initial = np.array([[4.0, -1.0], [-1.0, 2.0]])
    _, z = simulate(400, seed=10, initial_cov=initial)
    X = z[:, np.newaxis, :]
    model = true_model(initial)
    model.start_online()
    online = np.array([model.step(window) for window in X])
    assert online.shape == (400, 2)
    np.testing.assert_allclose(online, model.filter(X)[0], rtol=0, atol=1e-10)
    assert model._online.steady                              # the fast path was reached and used


def test_stepping_a_fitted_decoder_with_history_windows(small_session):
    session, counts = small_session
    X, valid = window_tensor(counts, history_bins=2)
    X, y = X[valid], session.velocity[valid]
    model = KalmanDecoder().fit(X[:700], y[:700])
    # the first step after fit starts from the prior without start_online
    online = np.array([model.step(window) for window in X[700:]])
    np.testing.assert_allclose(online, model.predict(X[700:]), rtol=0, atol=1e-10)


def test_start_online_resets_to_the_prior():
    _, z = simulate(120, seed=11)
    X = z[:, np.newaxis, :]
    model = true_model()
    expected = model.filter(X[60:])[0]
    model.start_online()
    for window in X[:60]:                                    # another stream, then a new one
        model.step(window)
    model.start_online()
    np.testing.assert_allclose([model.step(w) for w in X[60:]], expected, rtol=0, atol=1e-10)
    # refitting ends the stream too
    refit = KalmanDecoder().fit(X, z[:, :2])
    first = refit.step(X[5])
    refit.fit(X, z[:, :2])
    np.testing.assert_array_equal(refit.step(X[5]), first)


def test_the_observation_model_is_cached_and_refitting_replaces_it():
    x, z = simulate(300, seed=12)
    X = z[:, np.newaxis, :]
    model = KalmanDecoder().fit(X, x)
    model.predict(X[:10])
    cached = model._observation
    model.predict(X[10:20])
    model.step(X[0])
    assert model._observation is cached
    model.fit(X[:200], x[:200])
    assert model._observation is None
    np.testing.assert_allclose(model.predict(X), KalmanDecoder().fit(X[:200], x[:200]).predict(X), rtol=1e-12)
    assert model._observation is not cached
    _, arrays = model.get_model_state()
    assert not any(name.startswith("_") for name in arrays)


def test_step_before_fit_raises():
    with pytest.raises(ValueError, match=r"KalmanDecoder is not fitted"):
        KalmanDecoder().step(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"KalmanDecoder is not fitted"):
        KalmanDecoder().start_online()


def test_step_with_a_bad_window_raises():
    model = true_model()
    with pytest.raises(ValueError, match=r"the window has shape \(4,\), the decoder was fitted on \(1, 4\) "
                                         r"\(n_lags, n_features\)"):
        model.step(np.zeros(4))
    with pytest.raises(ValueError, match=r"the window has shape \(1, 1, 4\), the decoder was fitted on \(1, 4\)"):
        model.step(np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match=r"real numbers, got dtype <U1"):
        model.step(np.array([["a", "b", "c", "d"]]))
    bad = np.zeros((1, 4))
    bad[0, 2] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        model.step(bad)                                      # in the transient
    _, z = simulate(300, seed=13)
    for window in z[:, np.newaxis, :]:
        model.step(window)
    assert model._online.steady
    before = model._online.mean.copy()
    bad[0, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        model.step(bad)                                      # on the fast path
    np.testing.assert_array_equal(model._online.mean, before)   # the stream is untouched


def test_save_load_then_stepping(small_session):
    session, counts = small_session
    X, valid = window_tensor(counts, history_bins=1)
    X, y = X[valid], session.velocity[valid]
    model = KalmanDecoder(ridge=1e-3).fit(X[:800], y[:800])
    model.start_online()
    for window in X[800:850]:                                # the saved state holds no stream
        model.step(window)
    again = load_model(save_model(model))
    assert getattr(again, "_observation", None) is None and getattr(again, "_online", None) is None
    online = np.array([again.step(window) for window in X[800:]])
    np.testing.assert_allclose(online, model.predict(X[800:]), rtol=0, atol=1e-10)
