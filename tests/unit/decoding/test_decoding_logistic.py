"""LogisticDecoder and the classification scores, on the synthetic condition session."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
import sklearn.metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from services.decoding.core import logistic
from services.decoding.core.base import DECODERS, load_model, save_model, window_tensor
from services.decoding.core.logistic import LogisticDecoder, accuracy_score, balanced_accuracy, confusion_matrix
from services.decoding.core.synthetic import simulate_condition_session


@pytest.fixture(scope="module")
def condition_session():
    """The default session (40 units, 4 conditions x 30 trials of 40 bins of 50 ms; 0.5 s
    baseline, 0.5 s ramp) and a stratified split: the last 10 trials of every condition are held out."""
    session = simulate_condition_session()
    rank = np.empty(session.n_trials, dtype=int)
    for c in range(session.n_conditions):
        trials = np.flatnonzero(session.trial_condition == c)
        rank[trials] = np.arange(trials.size)
    held_out_trial = rank >= 20
    return session, held_out_trial


def periods(session):
    tuned = session.time_in_trial_s > session.baseline_s + session.ramp_s     # fully tuned
    baseline = session.time_in_trial_s < session.baseline_s
    return tuned, baseline


def test_module_examples_run():
    result = doctest.testmod(logistic, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_registered_as_a_classifier():
    assert DECODERS["logistic"] is LogisticDecoder and LogisticDecoder.task == "classification"


# --------------------------------------------------------------------------------------------------
# the estimator against scikit-learn on the same standardised design


def gaussian_classes(labels, n=500, p=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(labels, size=n)
    centres = {c: rng.normal(scale=1.5, size=p) for c in labels}
    x = np.array([centres[c] for c in y]) + rng.normal(size=(n, p))
    return (x * [1.0, 10.0, 0.1, 3.0][:p] + 5.0)[:, np.newaxis, :], y


@pytest.mark.parametrize("labels", [(3, 7, 9), (-1, 5), (0, 1, 2, 3, 4)])
@pytest.mark.parametrize("C", [0.01, 1.0])
def test_probabilities_equal_sklearn_on_standardised_features(labels, C):
    X, y = gaussian_classes(labels)
    # both solved to a tight tolerance, so they must agree closely: the same objective
    model = LogisticDecoder(C=C, tol=1e-10, max_iter=10_000).fit(X[:400], y[:400])
    flat = X[:, 0, :]
    mean, sd = flat[:400].mean(axis=0), flat[:400].std(axis=0)
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit((flat[:400] - mean) / sd, y[:400])
    np.testing.assert_allclose(model.mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(model.scale_, sd, rtol=1e-12)
    proba = model.predict_proba(X[400:])
    np.testing.assert_allclose(proba, reference.predict_proba((flat[400:] - mean) / sd), atol=1e-7)
    # the default tolerance is close too
    default = LogisticDecoder(C=C).fit(X[:400], y[:400]).predict_proba(X[400:])
    np.testing.assert_allclose(default, proba, atol=1e-3)
    assert model.classes_.tolist() == sorted(labels) and proba.shape == (100, len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X[400:]), model.classes_[np.argmax(proba, axis=1)])
    assert set(model.predict(X[400:])) <= set(labels)


def test_probabilities_are_finite_for_huge_logits():
    X, y = gaussian_classes((0, 1), seed=1)
    model = LogisticDecoder().fit(X, y)
    far = X[:3] * 1e6
    proba = model.predict_proba(far)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    X3, y3 = gaussian_classes((0, 1, 2), seed=1)
    assert np.isfinite(LogisticDecoder().fit(X3, y3).predict_proba(X3[:3] * 1e6)).all()


def test_constant_feature_gets_no_weight():
    X, y = gaussian_classes((0, 1, 2), seed=2)
    X = np.concatenate([X, np.full((X.shape[0], 1, 1), 4.0)], axis=2)
    model = LogisticDecoder().fit(X, y)
    assert model.scale_[-1] == 1.0
    np.testing.assert_allclose(model.coef_[:, -1], 0.0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# decoding the condition session


def test_decodes_held_out_trials_well_above_chance(condition_session):
    session, held_out_trial = condition_session
    test = held_out_trial[session.trial]
    tuned, baseline = periods(session)
    X = session.counts[:, np.newaxis, :]
    model = LogisticDecoder().fit(X[~test & tuned], session.condition[~test & tuned])
    accuracy = model.score(X[test & tuned], session.condition[test & tuned])
    assert accuracy > 0.85, accuracy                  # measured 0.95; chance is 0.25
    assert balanced_accuracy(session.condition[test & tuned], model.predict(X[test & tuned])) > 0.85


def test_baseline_period_is_decoded_at_chance(condition_session):
    """In the baseline the counts do not depend on the condition. With a balanced test set the
    expected accuracy of any classifier there is exactly 1 / n_conditions; the bins are
    independent given the trial, so the binomial standard error applies."""
    session, held_out_trial = condition_session
    test = held_out_trial[session.trial]
    tuned, baseline = periods(session)
    X = session.counts[:, np.newaxis, :]
    model = LogisticDecoder().fit(X[~test], session.condition[~test])     # trained on every bin
    rows = test & baseline
    chance = 1.0 / session.n_conditions
    se = np.sqrt(chance * (1 - chance) / rows.sum())                     # 400 bins: 0.022
    accuracy = model.score(X[rows], session.condition[rows])             # measured 0.243
    assert abs(accuracy - chance) < 4 * se, (accuracy, se)
    # time-resolved: per bin of the trial, accuracy rises from chance to near 1 after the ramp
    predicted = model.predict(X[test])
    correct = predicted == session.condition[test]
    by_time = correct.reshape(-1, session.bins_per_trial).mean(axis=0)
    assert by_time[session.tuning_gain == 0].mean() < chance + 0.1
    assert by_time[session.tuning_gain == 1].mean() > 0.85
    assert np.all(by_time[session.tuning_gain == 1] > 0.7)


def test_shuffled_labels_decode_at_chance(condition_session):
    """Labels permuted across training trials: the expected accuracy is 1 / n_conditions by
    symmetry. One shuffle's accuracy varies a lot (a random classifier still maps each condition
    consistently to some class), so the mean over shuffles is tested against its standard error."""
    session, held_out_trial = condition_session
    test = held_out_trial[session.trial]
    tuned, _ = periods(session)
    X = session.counts[:, np.newaxis, :]
    rng = np.random.default_rng(1)
    training_trials = np.flatnonzero(~held_out_trial)
    accuracies = []
    for _ in range(16):
        shuffled = session.trial_condition.copy()
        shuffled[training_trials] = rng.permutation(shuffled[training_trials])
        labels = shuffled[session.trial]
        model = LogisticDecoder().fit(X[~test & tuned], labels[~test & tuned])
        accuracies.append(model.score(X[test & tuned], session.condition[test & tuned]))
    chance = 1.0 / session.n_conditions
    mean, se = np.mean(accuracies), np.std(accuracies, ddof=1) / np.sqrt(len(accuracies))
    assert abs(mean - chance) < 4 * se and abs(mean - chance) < 0.1, (mean, se)


def test_history_windows_and_save_load(condition_session):
    session, held_out_trial = condition_session
    X, valid = window_tensor(session.counts, history_bins=2)
    labels = np.array([3, 7, 9, 11])[session.condition]                # arbitrary integer labels
    train = valid & ~held_out_trial[session.trial]
    model = LogisticDecoder(C=0.5).fit(X[train], labels[train])
    assert model.coef_.shape == (4, 120) and model.classes_.tolist() == [3, 7, 9, 11]
    again = load_model(save_model(model))
    assert isinstance(again, LogisticDecoder) and again.get_params() == model.get_params()
    test = valid & held_out_trial[session.trial]
    np.testing.assert_array_equal(again.predict_proba(X[test]), model.predict_proba(X[test]))
    np.testing.assert_array_equal(again.predict(X[test]), model.predict(X[test]))
    assert again.classes_.dtype == np.int64


# --------------------------------------------------------------------------------------------------
# scores


def test_confusion_matrix_hand_computed():
    y_true = [7, 7, 7, 3, 3, 9, 9, 9, 9]
    y_pred = [7, 3, 7, 3, 9, 9, 9, 7, 9]
    # rows true 3, 7, 9; columns predicted 3, 7, 9
    expected = np.array([[1, 0, 1],
                         [1, 2, 0],
                         [0, 1, 3]])
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), expected)
    # another order of classes permutes rows and columns alike; an absent class gives zeros
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, classes=[9, 3, 7, 1]),
                                  [[3, 0, 1, 0], [1, 1, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]])
    assert accuracy_score(y_true, y_pred) == pytest.approx(6 / 9)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)


def test_scores_equal_sklearn_on_random_labels():
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.integers(-2, 4, 300), rng.integers(-2, 5, 300)
    classes = np.array([4, -2, 0, 3, 1, 2, -1])
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, classes),
                                  sklearn.metrics.confusion_matrix(y_true, y_pred, labels=classes))
    assert accuracy_score(y_true, y_pred) == pytest.approx(sklearn.metrics.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # sklearn warns that label 4 is never true
        expected = sklearn.metrics.balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(expected)


def test_score_errors():
    with pytest.raises(ValueError, match=r"same shape, got \(3,\) and \(2,\)"):
        accuracy_score([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"y_pred: class labels must be integers"):
        accuracy_score([1, 2], [1.5, 2.0])
    with pytest.raises(ValueError, match=r"y_true: class labels are empty"):
        balanced_accuracy([], [])
    with pytest.raises(ValueError, match=r"labels \[5\] occur but are not in classes \[1, 2\]"):
        confusion_matrix([1, 2, 5], [1, 2, 2], classes=[1, 2])
    with pytest.raises(ValueError, match=r"classes must be distinct, got \[1, 2, 1\]"):
        confusion_matrix([1, 2], [1, 2], classes=[1, 2, 1])


# --------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_raises():
    X, y = gaussian_classes((0, 1, 2), n=60)
    with pytest.raises(ValueError, match=r"LogisticDecoder is not fitted"):
        LogisticDecoder().predict(X)
    with pytest.raises(ValueError, match=r"at least two classes, the labels are all 4"):
        LogisticDecoder().fit(X, np.full(60, 4))
    with pytest.raises(ValueError, match=r"class labels must be integers"):
        LogisticDecoder().fit(X, y + 0.5)
    with pytest.raises(ValueError, match=r"X has 60 samples but the targets have 59"):
        LogisticDecoder().fit(X, y[:59])
    with pytest.raises(ValueError, match=r"window tensor of shape .*got shape \(60, 4\)"):
        LogisticDecoder().fit(X[:, 0], y)
    model = LogisticDecoder().fit(X, y)
    with pytest.raises(ValueError, match=r"windows of shape \(2, 2\), the decoder was fitted on \(1, 4\)"):
        model.predict_proba(X.reshape(60, 2, 2))
    with pytest.raises(ValueError, match=r"is not fitted \(no coef_\)"):
        save_model(LogisticDecoder())


@pytest.mark.parametrize("params, message", [
    ({"C": 0.0}, r"C must be a finite number > 0, got 0.0"),
    ({"C": np.inf}, r"C must be a finite number > 0"),
    ({"tol": -1e-3}, r"tol must be a finite number > 0"),
    ({"max_iter": 0}, r"max_iter must be an integer >= 1, got 0"),
    ({"max_iter": 10.5}, r"max_iter must be an integer >= 1"),
])
def test_bad_parameters_raise(params, message):
    X, y = gaussian_classes((0, 1), n=40)
    with pytest.raises(ValueError, match=message):
        LogisticDecoder(**params).fit(X, y)


def test_non_convergence_is_reported():
    X, y = gaussian_classes((0, 1, 2), n=200)
    with pytest.warns(ConvergenceWarning, match=r"did not converge in max_iter=1 iterations"):
        LogisticDecoder(max_iter=1).fit(X, y)
