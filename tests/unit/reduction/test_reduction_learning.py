"""CompareLearningRules requests: checked field by field, computed against known answers, stored."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.reduction.v1 import reduction_pb2 as R
from services.common.errors import RequestError, ResourceExhausted
from services.reduction import circuits, learning
from services.reduction.core import learning_rules as lr


def ref(key: str) -> ArtifactRef:
    return ArtifactRef(key=key)


def test_defaults_per_mode():
    two_layer = learning.learning_options(R.CompareLearningRulesRequest())
    assert (two_layer.mode, two_layer.task, two_layer.teacher) == ("two_layer", "teacher", (1000, 30, 10, 0.1, 0, 0))
    assert two_layer.rules == lr.RULES and two_layer.learning_rates == learning.DEFAULT_LEARNING_RATES
    assert (two_layer.n_hidden, two_layer.activation, two_layer.epochs, two_layer.batch_size) == (20, "linear", 50, 10)
    assert (two_layer.perturbation_sd, two_layer.init_scale, two_layer.inputs) == (0.1, 0.1, ())
    oja = learning.learning_options(R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_OJA,
                                                                  uploaded=R.UploadedTask(x=ref("x"))))
    assert oja.hebbian == (1, 0.02, 10, 1, True) and oja.inputs == ("uploaded.x",)
    sanger = learning.learning_options(R.CompareLearningRulesRequest(
        mode=R.LEARNING_RULES_MODE_SANGER, hebbian=R.HebbianOptions(n_components=3, center=False)))
    assert sanger.hebbian == (3, 0.2, 20, 10, False)
    uploaded = learning.learning_options(R.CompareLearningRulesRequest(
        uploaded=R.UploadedTask(x=ref("x"), y=ref("y"), x_test=ref("xt"), y_test=ref("yt")),
        rules=[R.LEARNING_RULE_THREE_FACTOR], three_factor_learning_rate=0.001))
    assert uploaded.inputs == ("uploaded.x", "uploaded.y", "uploaded.x_test", "uploaded.y_test")
    assert uploaded.rules == ("three_factor",) and uploaded.learning_rates == {"three_factor": 0.001}


@pytest.mark.parametrize("request_, field", [
    (R.CompareLearningRulesRequest(mode=11), "mode"),
    (R.CompareLearningRulesRequest(rules=[R.LEARNING_RULE_UNSPECIFIED]), "rules[0]"),
    (R.CompareLearningRulesRequest(rules=[R.LEARNING_RULE_BACKPROP, R.LEARNING_RULE_BACKPROP]), "rules[1]"),
    (R.CompareLearningRulesRequest(rules=[7]), "rules[0]"),
    (R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_SANGER, rules=[R.LEARNING_RULE_BACKPROP]), "rules"),
    (R.CompareLearningRulesRequest(backprop_learning_rate=0.0), "backprop_learning_rate"),
    (R.CompareLearningRulesRequest(three_factor_learning_rate=math.nan), "three_factor_learning_rate"),
    (R.CompareLearningRulesRequest(perturbation_sd=-1.0), "perturbation_sd"),
    (R.CompareLearningRulesRequest(init_scale=0.0), "init_scale"),
    (R.CompareLearningRulesRequest(activation=8), "activation"),
    (R.CompareLearningRulesRequest(n_hidden=-2), "n_hidden"),
    (R.CompareLearningRulesRequest(epochs=-1), "epochs"),
    (R.CompareLearningRulesRequest(seed=-1), "seed"),
    (R.CompareLearningRulesRequest(teacher=R.LinearTeacherTask(n_in=-1)), "teacher.n_in"),
    (R.CompareLearningRulesRequest(teacher=R.LinearTeacherTask(noise_sd=-0.1)), "teacher.noise_sd"),
    (R.CompareLearningRulesRequest(teacher=R.LinearTeacherTask(n_test_samples=-5)), "teacher.n_test_samples"),
    (R.CompareLearningRulesRequest(uploaded=R.UploadedTask()), "uploaded.x.key"),
    (R.CompareLearningRulesRequest(uploaded=R.UploadedTask(x=ref("x"))), "uploaded.y.key"),
    (R.CompareLearningRulesRequest(uploaded=R.UploadedTask(x=ref("x"), y=ref("y"), x_test=ref("t"))),
     "uploaded.y_test"),
    (R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_OJA, uploaded=R.UploadedTask(
        x=ref("x"), x_test=ref("t"), y_test=ref("u"))), "uploaded.x_test"),
    (R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_OJA, hebbian=R.HebbianOptions(n_components=2)),
     "hebbian.n_components"),
    (R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_SANGER, hebbian=R.HebbianOptions(learning_rate=-1)),
     "hebbian.learning_rate"),
])
def test_bad_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as info:
        learning.learning_options(request_)
    assert info.value.field == field, str(info.value)


def test_a_generated_task_larger_than_the_service_loads_is_refused():
    with pytest.raises(ResourceExhausted) as info:
        learning.learning_options(R.CompareLearningRulesRequest(teacher=R.LinearTeacherTask(n_samples=10**6)),
                                  max_bytes=2**20)
    assert info.value.field == "teacher.n_samples"


def test_the_rules_train_the_same_network_as_the_core_and_their_curves_are_stored():
    options = learning.learning_options(R.CompareLearningRulesRequest(
        teacher=R.LinearTeacherTask(n_samples=300, n_in=6, n_out=3, n_test_samples=100, seed=2), epochs=10))
    events = []
    store_events = []
    outcome = learning.run_learning(options, {}, lambda **k: events.append(k))
    result = circuits.store_outcome(_Memory(), "l", outcome, lambda **k: store_events.append(k))
    X, Y, T = lr.linear_teacher_task(n_samples=400, n_in=6, n_out=3, seed=2)
    core = lr.compare_learning_rules(X[:300], Y[:300], X_test=X[300:], Y_test=Y[300:], epochs=10)
    for rule in result.rules:
        name = lr.RULES[rule.rule - 1]
        assert rule.final_train_loss == pytest.approx(core["train_loss"][name][-1], rel=1e-12)
        assert rule.final_test_loss == pytest.approx(core["test_loss"][name][-1], rel=1e-12)
        assert rule.final_train_loss < rule.initial_train_loss
        assert rule.train_loss.key == f"l/rules/{name}/train_loss" and rule.w1.key and rule.feedback.key
        assert rule.HasField("feedback_angle") == (name == "feedback_alignment")
    assert result.least_squares_loss == pytest.approx(core["least_squares_loss"])
    assert (result.n_samples, result.n_in, result.n_out, result.n_test_samples) == (300, 6, 3, 100)
    assert result.teacher.key == "l/teacher" and result.figure.key == "l/learning_curves.png"
    assert {e["stage"] for e in events} == {"train"} and len(events) == 30
    assert all(e["fraction_done"] >= events[-1]["fraction_done"] for e in store_events)


class _Memory:
    def __init__(self):
        self.objects = {}

    def put_array(self, key, value, *, if_exists="error"):
        self.objects[key] = np.asarray(value)
        return ArtifactRef(key=key, shape=list(np.shape(value)))

    def put_bytes(self, key, data, *, media_type="", if_exists="error"):
        self.objects[key] = data
        return ArtifactRef(key=key, media_type=media_type)


def test_hebbian_rules_align_with_pca_of_uploaded_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4)) * [3.0, 1.5, 0.7, 0.3] + 2.0
    memory = _Memory()
    for mode, k in ((R.LEARNING_RULES_MODE_OJA, 1), (R.LEARNING_RULES_MODE_SANGER, 2),
                    (R.LEARNING_RULES_MODE_SUBSPACE, 2)):
        options = learning.learning_options(R.CompareLearningRulesRequest(
            mode=mode, uploaded=R.UploadedTask(x=ref("x")), hebbian=R.HebbianOptions(n_components=k)))
        result = circuits.store_outcome(memory, f"h{mode}", learning.run_learning(options, {"uploaded.x": X}))
        assert result.mode == mode and len(result.hebbian.final_alignment) == k
        assert min(result.hebbian.final_alignment) > 0.98, (mode, result.hebbian.final_alignment)
        weights = memory.objects[result.hebbian.weights.key]
        np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0, atol=0.05)
        np.testing.assert_allclose(memory.objects[result.hebbian.mean.key], X.mean(axis=0))
        variances = np.sort(np.var(X, axis=0))[::-1]
        np.testing.assert_allclose(result.hebbian.explained_variance_ratio, variances[:k] / variances.sum(),
                                   rtol=0.05)


@pytest.mark.parametrize("mode, arrays, field", [
    (R.LEARNING_RULES_MODE_TWO_LAYER, {"uploaded.x": np.zeros((10, 3)), "uploaded.y": np.zeros((9, 2))},
     "uploaded.y"),
    (R.LEARNING_RULES_MODE_TWO_LAYER, {"uploaded.x": np.full((10, 3), np.nan), "uploaded.y": np.zeros((10, 2))},
     "uploaded.x"),
    (R.LEARNING_RULES_MODE_TWO_LAYER, {"uploaded.x": np.zeros(10), "uploaded.y": np.zeros((10, 2))}, "uploaded.x"),
    (R.LEARNING_RULES_MODE_SANGER, {"uploaded.x": np.random.default_rng(0).normal(size=(10, 3))},
     "hebbian.n_components"),
])
def test_bad_arrays_name_their_field(mode, arrays, field):
    task = R.UploadedTask(x=ref("x"), y=ref("y") if "uploaded.y" in arrays else None)
    options = learning.learning_options(R.CompareLearningRulesRequest(
        mode=mode, uploaded=task, hebbian=R.HebbianOptions(n_components=4) if mode != 1 else None, epochs=1))
    with pytest.raises(RequestError) as info:
        learning.run_learning(options, arrays)
    assert info.value.field == field, str(info.value)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_diverging_rules_name_their_learning_rate():
    options = learning.learning_options(R.CompareLearningRulesRequest(
        teacher=R.LinearTeacherTask(n_samples=100, n_in=4, n_out=2), rules=[R.LEARNING_RULE_FEEDBACK_ALIGNMENT],
        feedback_alignment_learning_rate=50.0, epochs=5))
    with pytest.raises(RequestError) as info:
        learning.run_learning(options, {})
    assert info.value.field == "feedback_alignment_learning_rate"
    options = learning.learning_options(R.CompareLearningRulesRequest(
        mode=R.LEARNING_RULES_MODE_OJA, hebbian=R.HebbianOptions(learning_rate=1e6), teacher=R.LinearTeacherTask(
            n_samples=200, n_in=4, n_out=1)))
    with pytest.raises(RequestError) as info:
        learning.run_learning(options, {})
    assert info.value.field == "hebbian.learning_rate"


def test_docstring_examples():
    result = doctest.testmod(learning, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
