"""The torch decoders: decoding quality on the synthetic reaching session, reproducibility,
saving, progress/cancellation, input checks, and the single-sample fast path."""

from __future__ import annotations

import doctest
import time

import numpy as np
import pytest
import torch
from sklearn.base import clone

from services.decoding.core import neural
from services.decoding.core.base import DECODERS, RidgeDecoder, load_model, save_model, window_tensor
from services.decoding.core.neural import GRUDecoder, MLPClassifierDecoder, MLPDecoder, RecurrentDecoder
from services.decoding.core.scores import r2_score
from services.decoding.core.synthetic import simulate_reaching_session

HISTORY = 9          # 10-bin (500 ms) windows: the units lead the hand by 100 ms
GAP = HISTORY        # rows dropped between training and test block, so no window overlaps


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def reaching_windows():
    """40 units, 240 s of 50 ms bins: every valid window, its velocity, and where the test block
    (the final 20%) starts."""
    session = simulate_reaching_session(n_units=40, duration_s=240.0, seed=5)
    X, valid = window_tensor(session.binned_counts(), history_bins=HISTORY)
    return X[valid], session.velocity[valid], int(0.8 * valid.sum())


@pytest.fixture(scope="module")
def reaching(reaching_windows):
    """Training rows, then the held-out block after a gap of GAP rows."""
    X, y, cut = reaching_windows
    return X[:cut - GAP], y[:cut - GAP], X[cut:], y[cut:]


@pytest.fixture(scope="module")
def lstm(reaching):
    X, y, _, _ = reaching
    return RecurrentDecoder(hidden_size=64, epochs=8).fit(X, y)


@pytest.fixture(scope="module")
def mlp(reaching):
    X, y, _, _ = reaching
    return MLPDecoder(hidden_sizes=(64,), epochs=8).fit(X, y)


def tiny_data(seed=0, n=120, n_lags=3, n_features=4):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n, n_lags, n_features)).astype(np.float32)
    y = X[:, -1, :2] - X[:, 0, 2:] + rng.normal(0, 0.1, size=(n, 2))
    return X, y


def direction_task(seed, n=1200, n_units=20, n_lags=3):
    """Four reach directions, labelled 10/20/30/40; cosine-tuned Poisson units (baseline 5, depth
    4 counts per bin) fire for the direction of the trial, held for 20 bins."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.integers(0, 4, size=n // 20 + 1), 20)[:n + n_lags - 1]
    preferred = rng.uniform(0, 2 * np.pi, n_units)
    rates = 5.0 + 4.0 * np.cos(labels[:, None] * (np.pi / 2) - preferred)
    counts = rng.poisson(rates).astype(np.float64)
    X, valid = window_tensor(counts, history_bins=n_lags - 1)
    return X[valid], (10 * (labels + 1))[valid]


# ------------------------------------------------------------------------------------------------
# decoding quality


def test_lstm_and_mlp_recover_velocity_on_a_held_out_block(reaching, lstm, mlp):
    X, y, X_test, y_test = reaching
    ridge = RidgeDecoder().fit(X, y)
    r2 = {name: model.score(X_test, y_test) for name, model in [("ridge", ridge), ("lstm", lstm), ("mlp", mlp)]}
    # measured: ridge 0.942, lstm 0.934, mlp 0.934 (velocity is a linear function of the rates here,
    # so the Wiener filter is near the ceiling and the networks should come close to it)
    assert r2["lstm"] > 0.85 and r2["mlp"] > 0.85, r2
    assert r2["lstm"] > r2["ridge"] - 0.05, r2
    per_output = r2_score(y_test, lstm.predict(X_test))
    assert per_output.shape == (2,) and per_output.min() > 0.8


@pytest.mark.parametrize("make", [lambda: MLPDecoder(hidden_sizes=(64,), epochs=8),
                                  lambda: RecurrentDecoder(hidden_size=16, epochs=4)], ids=["mlp", "lstm"])
def test_targets_shifted_in_time_give_no_held_out_skill(reaching_windows, make):
    X, y, cut = reaching_windows
    # velocity 60 s away is independent of the spikes: whatever is learnt is noise
    y = np.roll(y, 1200, axis=0)
    model = make().fit(X[:cut - GAP], y[:cut - GAP])
    assert model.score(X[cut:], y[cut:]) < 0.05      # measured: mlp -0.20, lstm -0.01


def test_classifier_is_well_above_chance_on_reach_directions():
    X, labels = direction_task(seed=1)
    # a contiguous held-out block, with a gap so that no window is in both
    X_test, labels_test = X[900:], labels[900:]
    X, labels = X[:880], labels[:880]
    clf = MLPClassifierDecoder(hidden_sizes=(32,), epochs=15, batch_size=32).fit(X, labels)
    assert clf.classes_.tolist() == [10, 20, 30, 40]
    accuracy = clf.score(X_test, labels_test)
    assert accuracy > 0.8, accuracy          # chance is 0.25; measured 0.977
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_test))
    assert clf.predict_one(X_test[0]) == clf.predict(X_test[:1])[0]


# ------------------------------------------------------------------------------------------------
# reproducibility and saving


@pytest.mark.parametrize("cls", [MLPDecoder, RecurrentDecoder, GRUDecoder])
def test_same_seed_same_predictions_other_seed_others(cls):
    X, y = tiny_data()
    small = {"hidden_sizes": (8,)} if cls is MLPDecoder else {"hidden_size": 8}
    a = cls(**small, epochs=3, batch_size=16, dropout=0.2, seed=7).fit(X, y).predict(X)
    b = cls(**small, epochs=3, batch_size=16, dropout=0.2, seed=7).fit(X, y).predict(X)
    c = cls(**small, epochs=3, batch_size=16, dropout=0.2, seed=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_the_global_torch_random_state_alone():
    X, y = tiny_data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPDecoder(hidden_sizes=(4,), epochs=1).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("make", [
    lambda: MLPDecoder(hidden_sizes=(8, 6), epochs=2),
    lambda: MLPClassifierDecoder(hidden_sizes=(8,), epochs=2),
    lambda: RecurrentDecoder(hidden_size=8, num_layers=2, dropout=0.1, epochs=2),
    lambda: RecurrentDecoder(cell="gru", hidden_size=8, epochs=2),
    lambda: GRUDecoder(hidden_size=8, epochs=2, validation_fraction=0.25),
], ids=["mlp", "mlp_classifier", "lstm", "lstm-class-gru-cell", "gru"])
def test_save_load_round_trip_gives_identical_predictions(make):
    X, y = tiny_data(seed=1)
    model = make()
    if model.task == "classification":
        y = (y[:, 0] > np.median(y[:, 0])).astype(int) * 5
    model.fit(X, y)
    params, arrays = model.get_model_state()
    assert any(name.startswith("module.") for name in arrays)
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    again = load_model(save_model(model))
    assert type(again) is type(model) and again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.mean_, model.mean_)
    np.testing.assert_array_equal(again.train_loss_, model.train_loss_)
    assert again.best_epoch_ == model.best_epoch_
    if model.task == "classification":
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_a_saved_model_whose_weights_do_not_match_its_params_is_refused():
    X, y = tiny_data()
    params, arrays = MLPDecoder(hidden_sizes=(8,), epochs=1).fit(X, y).get_model_state()
    with pytest.raises(ValueError, match="does not match"):
        MLPDecoder.from_model_state({**params, "hidden_sizes": [9]}, arrays)
    with pytest.raises(ValueError, match="lacks its array 'mean_'"):
        MLPDecoder.from_model_state(params, {k: v for k, v in arrays.items() if k != "mean_"})


def test_names_cells_and_sklearn_parameters():
    assert {"mlp", "mlp_classifier", "lstm", "gru"} <= set(DECODERS)
    assert DECODERS["lstm"] is RecurrentDecoder and DECODERS["gru"] is GRUDecoder
    X, y = tiny_data()
    assert isinstance(RecurrentDecoder(hidden_size=4, epochs=1).fit(X, y).module_.rnn, torch.nn.LSTM)
    assert isinstance(RecurrentDecoder(cell="gru", hidden_size=4, epochs=1).fit(X, y).module_.rnn, torch.nn.GRU)
    assert "cell" not in GRUDecoder().get_params() and GRUDecoder().cell == "gru"
    with pytest.raises(ValueError, match="cell"):
        GRUDecoder().set_params(cell="lstm")
    model = clone(RecurrentDecoder(hidden_size=7, cell="gru"))
    assert model.get_params()["hidden_size"] == 7 and model.cell == "gru"


# ------------------------------------------------------------------------------------------------
# training mechanics


def test_report_is_called_after_every_epoch_and_raising_in_it_stops_the_fit():
    X, y = tiny_data()
    calls = []
    MLPDecoder(hidden_sizes=(4,), epochs=3).fit(X, y, report=lambda f, m: calls.append((f, m)))
    assert [f for f, _ in calls] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all("training loss" in m for _, m in calls)

    class Cancelled(Exception):
        pass

    seen = []

    def cancel(fraction, message):
        seen.append(fraction)
        raise Cancelled(message)

    model = RecurrentDecoder(hidden_size=4, epochs=50)
    with pytest.raises(Cancelled, match="epoch 1 of 50"):
        model.fit(X, y, report=cancel)
    assert seen == [pytest.approx(1 / 50)]
    assert not hasattr(model, "module_")      # a cancelled fit leaves the decoder unfitted


def test_early_stopping_keeps_the_best_validation_epoch(reaching):
    X, y, _, _ = reaching
    X, y = X[:2000], np.roll(y[:2000], 1000, axis=0)    # no signal: validation loss soon rises
    messages = []
    model = MLPDecoder(hidden_sizes=(64,), epochs=60, validation_fraction=0.25, patience=3, dropout=0.0)
    model.fit(X, y, report=lambda f, m: messages.append((f, m)))
    n_run = len(model.train_loss_)
    assert n_run < 60 and len(model.validation_loss_) == n_run
    assert model.best_epoch_ == int(np.argmin(model.validation_loss_)) and n_run == model.best_epoch_ + 4
    assert messages[-1][0] == 1.0 and "stopping early" in messages[-1][1]
    # the kept weights are those of the best epoch: their loss on the last 25% (the validation
    # rows; standardised with the training rows' statistics) is the recorded minimum
    n_val = int(np.ceil(0.25 * len(X)))
    n_fit = len(X) - n_val - HISTORY
    z = (y - y[:n_fit].mean(axis=0)) / y[:n_fit].std(axis=0)
    z_hat = (model.predict(X[-n_val:]) - model.y_mean_) / model.y_scale_
    assert np.mean((z_hat - z[-n_val:]) ** 2) == pytest.approx(model.validation_loss_.min(), rel=1e-4)


def test_a_constant_feature_is_harmless():
    X, y = tiny_data()
    X[:, :, 1] = 3.0                      # a silent-but-offset unit
    model = MLPDecoder(hidden_sizes=(8,), epochs=2).fit(X, y)
    assert model.scale_[1] == 1.0 and model.mean_[1] == pytest.approx(3.0)
    assert np.isfinite(model.predict(X)).all()


# ------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("params, match", [
    ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
    ({"epochs": 2.5}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"dropout": 1.0}, "dropout"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"patience": 0}, "patience"),
    ({"seed": -1}, "seed"),
    ({"device": "tpu"}, "device must be one of"),
    ({"cell": "rnn"}, "cell must be 'lstm' or 'gru', got 'rnn'"),
    ({"hidden_size": 0}, "hidden_size"),
    ({"num_layers": 0}, "num_layers"),
])
def test_bad_parameters_are_value_errors(params, match):
    X, y = tiny_data()
    with pytest.raises(ValueError, match=match):
        RecurrentDecoder(**params).fit(X, y)


@pytest.mark.parametrize("hidden_sizes, match", [((), "at least one"), ((8, 0), r"hidden_sizes\[1\]"),
                                                 ("64", "sequence")])
def test_bad_hidden_sizes(hidden_sizes, match):
    X, y = tiny_data()
    with pytest.raises(ValueError, match=match):
        MLPDecoder(hidden_sizes=hidden_sizes).fit(X, y)


def test_bad_data_are_value_errors():
    X, y = tiny_data()
    model = MLPDecoder(hidden_sizes=(4,), epochs=1)
    with pytest.raises(ValueError, match=r"window tensor .* got shape \(120, 12\)"):
        model.fit(X.reshape(120, -1), y)
    bad = X.copy()
    bad[5, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN .* sample 5, lag 1, feature 2"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="X has 120 samples but the targets have 119"):
        model.fit(X, y[:-1])
    y_bad = y.copy()
    y_bad[7, 0] = np.inf
    with pytest.raises(ValueError, match="targets hold NaN or infinite values"):
        model.fit(X, y_bad)
    with pytest.raises(ValueError, match="leaves no training rows"):
        MLPDecoder(validation_fraction=0.5).fit(X[:4], y[:4])
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifierDecoder(epochs=1).fit(X, np.ones(120, dtype=int))
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(X)
    model.fit(X, y)
    with pytest.raises(ValueError, match=r"windows of shape \(3, 3\), the decoder was fitted on \(3, 4\)"):
        model.predict(X[:, :, :3])
    with pytest.raises(ValueError, match=r"the window has shape \(4, 4\)"):
        model.predict_one(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict_one(np.full((3, 4), np.nan))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_for_fitting_but_a_saved_model_loads_on_cpu():
    X, y = tiny_data()
    with pytest.raises(ValueError, match="no CUDA device"):
        MLPDecoder(device="cuda").fit(X, y)
    params, arrays = MLPDecoder(hidden_sizes=(4,), epochs=1, device="cpu").fit(X, y).get_model_state()
    loaded = MLPDecoder.from_model_state({**params, "device": "cuda"}, arrays)
    assert loaded.device_.type == "cpu" and loaded.predict(X).shape == (120, 2)


# ------------------------------------------------------------------------------------------------
# the single-sample fast path


def test_predict_one_matches_predict_and_is_fast(reaching):
    X, y, X_test, _ = reaching
    # the online case of the brief: a 128-unit LSTM on a 10-bin window of 40 units
    model = RecurrentDecoder(hidden_size=128, epochs=1).fit(X[:500], y[:500])
    batch = model.predict(X_test[:50])
    one = np.array([model.predict_one(w) for w in X_test[:50]])
    np.testing.assert_allclose(one, batch, rtol=1e-5, atol=1e-5)
    for w in X_test[:50]:                 # warm up
        model.predict_one(w)
    times = []
    for w in X_test[:300]:
        start = time.perf_counter()
        model.predict_one(w)
        times.append(time.perf_counter() - start)
    # the goal for online use is under 1 ms. The fastest call is what the code costs; the median
    # also carries the other processes of a shared machine (measured with 5 runnable processes on
    # 2 cores: fastest 0.4 ms, median 0.7-0.8 ms)
    assert min(times) < 1e-3, (min(times), np.median(times))


def test_a_fitted_model_can_be_deep_copied_after_using_the_fast_path():
    import copy

    X, y = tiny_data()
    model = RecurrentDecoder(hidden_size=4, epochs=1).fit(X, y)
    model.predict_one(X[0])
    twin = copy.deepcopy(model)
    np.testing.assert_array_equal(twin.predict_one(X[0]), model.predict_one(X[0]))


def test_docstring_examples():
    result = doctest.testmod(neural, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
