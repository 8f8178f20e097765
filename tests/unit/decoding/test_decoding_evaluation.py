"""The decoder contract (base.py) and the generic evaluation (evaluation.py) against known answers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.base import clone

from services.decoding.core import cross_validate_decoder
from services.decoding.core.base import (DECODERS, RidgeDecoder, load_model, load_model_with_metadata,
                                         save_model, window_tensor)
from services.decoding.core.evaluation import (classification_scores, cross_validate, shuffled_control,
                                               time_resolved_decoding, trial_folds)


def test_window_tensor_is_the_design_matrix_reshaped():
    x = np.arange(30.0).reshape(10, 3)
    windows, valid = window_tensor(x, history_bins=2, future_bins=1)
    assert windows.shape == (10, 4, 3)
    assert valid.tolist() == [False, False] + [True] * 7 + [False]
    # window of sample 5: bins 3, 4, 5, 6, oldest first
    np.testing.assert_array_equal(windows[5], x[3:7])
    assert np.isnan(windows[0]).all() and np.isnan(windows[9]).all()


def test_ridge_decoder_with_one_alpha_matches_the_nested_wiener_reference():
    """RidgeDecoder through the generic cross_validate equals the specialised Wiener code path."""
    rng = np.random.default_rng(4)
    x = rng.poisson(2.0, size=(900, 6)).astype(float)
    y = np.c_[x @ rng.normal(size=6), np.roll(x[:, 0], 2)] + rng.normal(size=(900, 2))
    reference = cross_validate_decoder(x, y, history_bins=3, n_folds=4, alphas=[2.0])
    ours = cross_validate(RidgeDecoder(alphas=(2.0,)), x, y, history_bins=3, n_folds=4)
    np.testing.assert_allclose(ours.predictions, reference.predictions, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ours.r2, reference.r2, rtol=1e-10)
    np.testing.assert_allclose(ours.fold_scores, reference.fold_r2, rtol=1e-10)


def test_ridge_decoder_recovers_velocity_and_the_shuffled_control_does_not(reaching_session):
    session, counts = reaching_session
    report = cross_validate(RidgeDecoder(), counts, session.velocity, history_bins=5, n_folds=5)
    assert report.r2.shape == (2,) and report.r2.min() > 0.6, report.r2
    assert report.n_tested == counts.shape[0] - 5
    control = shuffled_control(RidgeDecoder(), counts, session.velocity, history_bins=5, n_folds=5,
                               n_shuffles=3, seed=1)
    assert control.method == "circular_shift"
    assert np.all(control.scores < 0.05), control.scores


def test_noise_scores_at_most_zero_under_blocked_folds():
    """The leakage test: features without information about a smooth target score R² <= 0.

    A random walk is so autocorrelated that shuffled K-fold, or blocked folds without a gap
    and a long window, would let a decoder interpolate between neighbouring training bins.
    """
    rng = np.random.default_rng(0)
    target = np.cumsum(rng.normal(size=(3000, 1)), axis=0)
    noise = rng.normal(size=(3000, 30))
    report = cross_validate(RidgeDecoder(), noise, target, history_bins=10, n_folds=5)
    assert report.r2[0] <= 0.0, report.r2


def test_classification_scores_and_confusion_by_hand():
    s = classification_scores([3, 3, 7, 7, 9, 9], [3, 7, 7, 7, 9, 3])
    assert s["classes"].tolist() == [3, 7, 9]
    assert s["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert s["chance"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="same length|one length"):
        classification_scores([1, 2], [1])


def test_trial_folds_keep_trials_whole_and_skip_samples_outside_trials():
    trials = np.array([-1, 0, 0, 1, 1, -1, 2, 2, 3, 3])
    folds = trial_folds(trials, np.arange(10), n_folds=2)
    for train, test in folds:
        assert set(trials[test]).isdisjoint(trials[train])
        assert -1 not in set(trials[test]) | set(trials[train])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == [1, 2, 3, 4, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="fewer than n_folds"):
        trial_folds(trials, np.arange(10), n_folds=5)


def test_time_resolved_decoding_finds_when_information_appears():
    rng = np.random.default_rng(2)
    n_trials, per_trial = 60, 8
    trial = np.repeat(np.arange(n_trials), per_trial)
    t = np.tile(np.arange(per_trial) * 0.05, n_trials)
    y = np.repeat(rng.normal(size=n_trials), per_trial)
    informative = t >= 0.2
    x = np.c_[np.where(informative, y, 0.0) + 0.1 * rng.normal(size=y.size), rng.normal(size=(y.size, 3))]
    result = time_resolved_decoding(RidgeDecoder(), x, y, trial_index=trial, time_in_trial_s=t, n_folds=5)
    np.testing.assert_allclose(result.times_s, np.arange(per_trial) * 0.05)
    assert np.all(result.scores[result.times_s >= 0.2] > 0.9)
    assert np.all(result.scores[result.times_s < 0.2] < 0.1)
    assert np.all(result.n_trials == n_trials)


def test_bad_inputs_name_the_problem():
    x = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(ValueError, match="X has 100 samples but the targets have 99"):
        cross_validate(RidgeDecoder(), x, np.zeros(99), history_bins=1)
    with pytest.raises(ValueError, match="NaN"):
        cross_validate(RidgeDecoder(), x, np.r_[np.zeros(99), np.nan], history_bins=1)
    with pytest.raises(ValueError, match="longer than the recording"):
        cross_validate(RidgeDecoder(), x, np.zeros(100), history_bins=200)
    with pytest.raises(ValueError, match="n_folds"):
        cross_validate(RidgeDecoder(), x, np.zeros(100), history_bins=1, n_folds=1)
    with pytest.raises(ValueError, match="empty"):
        cross_validate(RidgeDecoder(), np.zeros((0, 3)), np.zeros(0), history_bins=0)


def test_report_raising_stops_the_evaluation():
    x = np.random.default_rng(0).normal(size=(300, 3))
    calls = []

    def report(fraction, message):
        calls.append(fraction)
        raise KeyboardInterrupt  # what a cancelled call raises is any exception; it must propagate

    with pytest.raises(KeyboardInterrupt):
        cross_validate(RidgeDecoder(), x, x[:, 0], history_bins=1, report=report)
    assert len(calls) == 1


def test_models_round_trip_without_pickle():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    X, valid = window_tensor(x, history_bins=2)
    y = x @ rng.normal(size=(5, 2))
    model = RidgeDecoder().fit(X[valid], y[valid])
    data = save_model(model, metadata={"history_bins": 2})
    again, metadata = load_model_with_metadata(data)
    assert metadata == {"history_bins": 2} and again.alpha_ == model.alpha_
    np.testing.assert_array_equal(again.predict(X[valid]), model.predict(X[valid]))
    assert clone(again).get_params() == model.get_params()
    assert "wiener" in DECODERS


@pytest.mark.parametrize("data, match", [
    (b"not a zip file", "not a saved NeuroMesh decoder"),
    (b"", "not a saved NeuroMesh decoder"),
])
def test_loading_garbage_is_a_value_error(data, match):
    with pytest.raises(ValueError, match=match):
        load_model(data)


def test_loading_a_pickled_array_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, __neuromesh_model__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a saved NeuroMesh decoder"):
        load_model(buffer.getvalue())


def test_an_unknown_decoder_name_in_a_model_is_refused():
    import json
    buffer = io.BytesIO()
    meta = json.dumps({"decoder": "telepathy", "params": {}, "format": 1}).encode()
    np.savez(buffer, __neuromesh_model__=np.frombuffer(meta, dtype=np.uint8))
    with pytest.raises(ValueError, match="'telepathy' decoder"):
        load_model(buffer.getvalue())
