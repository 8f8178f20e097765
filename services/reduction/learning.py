"""CompareLearningRules without transport: check the request, compute, store.

Like :mod:`services.reduction.circuits`: :func:`learning_options` checks the plain fields
(defaults resolved, each bad value a :class:`~services.common.errors.RequestError` naming the
field), :func:`run_learning` computes with the core
(:mod:`services.reduction.core.learning_rules`) and returns an
:class:`~services.reduction.circuits.Outcome` of a ``CompareLearningRulesResult``, which
:func:`~services.reduction.circuits.store_outcome` stores.

Example
-------
>>> from neuromesh.reduction.v1 import reduction_pb2 as R
>>> options = learning_options(R.CompareLearningRulesRequest(
...     teacher=R.LinearTeacherTask(n_samples=200, n_in=6, n_out=3), epochs=20,
...     rules=[R.LEARNING_RULE_BACKPROP, R.LEARNING_RULE_FEEDBACK_ALIGNMENT]))
>>> options.mode, options.rules, options.learning_rates
('two_layer', ('backprop', 'feedback_alignment'), {'backprop': 0.01, 'feedback_alignment': 0.01})
>>> outcome = run_learning(options, {})
>>> [r.final_train_loss < 0.1 * r.initial_train_loss for r in outcome.message.rules]
[True, True]
>>> sorted(key for _, key, _ in outcome.arrays)[:3]
['rules/backprop/b1', 'rules/backprop/b2', 'rules/backprop/feedback']
>>> learning_options(R.CompareLearningRulesRequest(mode=R.LEARNING_RULES_MODE_OJA,
...                                                hebbian=R.HebbianOptions(n_components=2)))
Traceback (most recent call last):
...
services.common.errors.RequestError: hebbian.n_components must be 1 for LEARNING_RULES_MODE_OJA (one unit), got 2
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from neuromesh.reduction.v1 import reduction_pb2 as R
from services.common.errors import RequestError, ResourceExhausted

from . import brain_model_plots as plots
from .circuits import Outcome, Progress, _count, _enum, _fail, _optional, _real
from .core import learning_rules as lr

__all__ = ["LearningOptions", "learning_options", "run_learning"]

_MODES = {R.LEARNING_RULES_MODE_UNSPECIFIED: "two_layer", R.LEARNING_RULES_MODE_TWO_LAYER: "two_layer",
          R.LEARNING_RULES_MODE_OJA: "oja", R.LEARNING_RULES_MODE_SANGER: "sanger",
          R.LEARNING_RULES_MODE_SUBSPACE: "subspace"}
_RULES = {R.LEARNING_RULE_BACKPROP: "backprop", R.LEARNING_RULE_FEEDBACK_ALIGNMENT: "feedback_alignment",
          R.LEARNING_RULE_THREE_FACTOR: "three_factor"}
_RULE_ENUMS = {name: value for value, name in _RULES.items()}
_ACTIVATIONS = {R.HIDDEN_ACTIVATION_UNSPECIFIED: "linear", R.HIDDEN_ACTIVATION_LINEAR: "linear",
                R.HIDDEN_ACTIVATION_TANH: "tanh", R.HIDDEN_ACTIVATION_RELU: "relu"}
DEFAULT_LEARNING_RATES = {"backprop": 0.01, "feedback_alignment": 0.01, "three_factor": 0.002}
#: Hebbian defaults: (learning rate, epochs, batch size) of Oja's rule and of the k-unit rules
_HEBBIAN_DEFAULTS = {"oja": (0.02, 10, 1), "sanger": (0.2, 20, 10), "subspace": (0.2, 20, 10)}
MAX_EPOCHS = 100_000
MAX_WIDTH = 100_000


@dataclass(frozen=True)
class LearningOptions:
    """A checked ``CompareLearningRulesRequest`` (its artifacts aside)."""

    mode: str
    #: "teacher" or "uploaded"
    task: str
    #: the generated task: n_samples, n_in, n_out, noise_sd, n_test_samples, seed
    teacher: tuple[int, int, int, float, int, int]
    rules: tuple[str, ...]
    n_hidden: int
    activation: str
    epochs: int
    batch_size: int
    learning_rates: dict[str, float]
    perturbation_sd: float
    init_scale: float
    seed: int
    #: Hebbian modes: n_components, learning_rate, epochs, batch_size, center
    hebbian: tuple[int, float, int, int, bool]
    #: the request's array fields this call reads (dotted paths)
    inputs: tuple[str, ...] = ()


def learning_options(request: R.CompareLearningRulesRequest, *, max_bytes: int | None = None) -> LearningOptions:
    """Check a ``CompareLearningRulesRequest``; RequestError naming the first bad field.

    ``max_bytes`` caps the memory of a generated task (RESOURCE_EXHAUSTED above it).
    """
    mode = _enum(_MODES, request.mode, "mode", R.LearningRulesMode)
    mode_name = R.LearningRulesMode.Name(request.mode or R.LEARNING_RULES_MODE_TWO_LAYER)
    task = "uploaded" if request.WhichOneof("task") == "uploaded" else "teacher"
    t = request.teacher
    teacher = (_count(t.n_samples, "teacher.n_samples", 1000, maximum=10**8),
               _count(t.n_in, "teacher.n_in", 30, maximum=MAX_WIDTH), _count(t.n_out, "teacher.n_out", 10,
                                                                             maximum=MAX_WIDTH),
               _real(_optional(t, "noise_sd", 0.1), "teacher.noise_sd"),
               int(t.n_test_samples), int(t.seed))
    if not 0 <= t.n_test_samples <= 10**8:
        raise _fail("teacher.n_test_samples", "must be an integer in [0, 100000000]", t.n_test_samples)
    if task == "teacher" and max_bytes is not None:
        n_samples, n_in, n_out, _, n_test, _ = teacher
        needed = 8 * (n_samples + n_test) * (n_in + n_out)
        if needed > max_bytes:
            raise ResourceExhausted(f"the teacher task of {n_samples + n_test} samples of {n_in} inputs and {n_out} "
                                    f"outputs takes {needed} bytes, more than NEUROMESH_MAX_INPUT_BYTES={max_bytes}",
                                    field="teacher.n_samples")
    inputs: tuple[str, ...] = ()
    if task == "uploaded":
        up = request.uploaded
        given = {name: up.HasField(name) and bool(getattr(up, name).key) for name in ("x", "y", "x_test", "y_test")}
        if not given["x"]:
            raise RequestError("uploaded.x is required: the inputs (n_samples, n_in)", field="uploaded.x.key")
        if mode == "two_layer" and not given["y"]:
            raise RequestError("uploaded.y is required by LEARNING_RULES_MODE_TWO_LAYER: the targets "
                               "(n_samples, n_out)", field="uploaded.y.key")
        if given["x_test"] != given["y_test"]:
            missing = "y_test" if given["x_test"] else "x_test"
            raise RequestError(f"uploaded.x_test and uploaded.y_test go together: uploaded.{missing} is missing",
                               field=f"uploaded.{missing}")
        if mode != "two_layer" and given["x_test"]:
            raise RequestError(f"uploaded.x_test and y_test are not read by {mode_name}", field="uploaded.x_test")
        inputs = tuple(f"uploaded.{name}" for name, ok in given.items() if ok)
    rules: list[str] = []
    for i, value in enumerate(request.rules):
        if value not in _RULES:
            shown = R.LearningRule.Name(value) if value in R.LearningRule.values() else value
            raise _fail(f"rules[{i}]", f"must be one of {', '.join(R.LearningRule.Name(v) for v in _RULES)}", shown)
        if _RULES[value] in rules:
            raise _fail(f"rules[{i}]", "names a rule twice", R.LearningRule.Name(value))
        rules.append(_RULES[value])
    if rules and mode != "two_layer":
        raise RequestError(f"rules is read only by LEARNING_RULES_MODE_TWO_LAYER, not {mode_name}", field="rules")
    rates = {}
    for rule in rules or lr.RULES:
        name = f"{rule}_learning_rate"
        rates[rule] = _real(_optional(request, name, DEFAULT_LEARNING_RATES[rule]), name, low_open=True)
    h = request.hebbian
    rate0, epochs0, batch0 = _HEBBIAN_DEFAULTS.get(mode, _HEBBIAN_DEFAULTS["sanger"])
    n_components = _count(h.n_components, "hebbian.n_components", 1, maximum=MAX_WIDTH)
    if mode == "oja" and n_components != 1:
        raise _fail("hebbian.n_components", "must be 1 for LEARNING_RULES_MODE_OJA (one unit)", n_components)
    hebbian = (n_components, _real(_optional(h, "learning_rate", rate0), "hebbian.learning_rate", low_open=True),
               _count(h.epochs, "hebbian.epochs", epochs0, maximum=MAX_EPOCHS),
               _count(h.batch_size, "hebbian.batch_size", batch0, maximum=10**8),
               bool(_optional(h, "center", True)))
    if request.seed < 0:
        raise _fail("seed", "must be >= 0", request.seed)
    return LearningOptions(
        mode=mode, task=task, teacher=teacher, rules=tuple(rules) or lr.RULES,
        n_hidden=_count(request.n_hidden, "n_hidden", 20, maximum=MAX_WIDTH),
        activation=_enum(_ACTIVATIONS, request.activation, "activation", R.HiddenActivation),
        epochs=_count(request.epochs, "epochs", 50, maximum=MAX_EPOCHS),
        batch_size=_count(request.batch_size, "batch_size", 10, maximum=10**8), learning_rates=rates,
        perturbation_sd=_real(_optional(request, "perturbation_sd", 0.1), "perturbation_sd", low_open=True),
        init_scale=_real(_optional(request, "init_scale", 0.1), "init_scale", low_open=True),
        seed=int(request.seed), hebbian=hebbian, inputs=inputs)


_FIELDS = {"X": "uploaded.x", "Y": "uploaded.y", "X_test": "uploaded.x_test", "Y_test": "uploaded.y_test",
           "n_components": "hebbian.n_components", "X and Y": "uploaded.y"}


def _task(options: LearningOptions, arrays: Mapping[str, np.ndarray]):
    """X, Y, X_test, Y_test (None where absent) and the teacher T (None for uploaded tasks)."""
    if options.task == "teacher":
        n_samples, n_in, n_out, noise_sd, n_test, seed = options.teacher
        X, Y, T = lr.linear_teacher_task(n_samples=n_samples + n_test, n_in=n_in, n_out=n_out, noise_sd=noise_sd,
                                         seed=seed)
        if n_test:
            return X[:n_samples], Y[:n_samples], X[n_samples:], Y[n_samples:], T
        return X, Y, None, None, T
    get = lambda name: arrays.get(f"uploaded.{name}")  # noqa: E731
    return get("x"), get("y"), get("x_test"), get("y_test"), None


def _core_error(exc: ValueError) -> RequestError:
    message = str(exc)
    for name, field in sorted(_FIELDS.items(), key=lambda item: -len(item[0])):
        if message.startswith(f"{name} "):
            return RequestError(message, field=field)
    return RequestError(message, field="uploaded.x")


def run_learning(options: LearningOptions, arrays: Mapping[str, np.ndarray], progress: Progress | None = None
                 ) -> Outcome:
    """Train what ``options`` asks on the task; an Outcome of a ``CompareLearningRulesResult``."""
    X, Y, X_test, Y_test, T = _task(options, arrays)
    result = R.CompareLearningRulesResult(mode=R.LearningRulesMode.Value(f"LEARNING_RULES_MODE_{options.mode.upper()}"),
                                          least_squares_loss=math.nan)
    out = Outcome(result)
    if T is not None:
        out.array("teacher", "teacher", T)

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction_done=0.97 * min(max(fraction, 0.0), 1.0), stage="train", message=message)

    try:
        if options.mode == "two_layer":
            _two_layer(options, X, Y, X_test, Y_test, out, report)
        else:
            _hebbian(options, X, out, report)
    except FloatingPointError as exc:
        rule = re.search(r"rule '(\w+)'", str(exc))
        field = f"{rule.group(1)}_learning_rate" if rule else "hebbian.learning_rate"
        raise RequestError(str(exc), field=field) from None
    except RequestError:
        raise
    except ValueError as exc:
        raise _core_error(exc) from None
    return out


def _two_layer(options: LearningOptions, X, Y, X_test, Y_test, out: Outcome, report) -> None:
    comparison = lr.compare_learning_rules(
        X, Y, rules=options.rules, n_hidden=options.n_hidden, activation=options.activation, epochs=options.epochs,
        batch_size=options.batch_size, learning_rates=options.learning_rates, perturbation_sd=options.perturbation_sd,
        X_test=X_test, Y_test=Y_test, init_scale=options.init_scale, seed=options.seed, report=report)
    msg = out.message
    X = np.asarray(X, dtype=float)
    msg.n_samples, msg.n_in = X.shape
    msg.n_out = np.shape(Y)[1]
    msg.n_test_samples = 0 if X_test is None else len(X_test)
    msg.least_squares_loss = comparison["least_squares_loss"]
    for i, rule in enumerate(options.rules):
        res = comparison["results"][rule]
        msg.rules.add(rule=_RULE_ENUMS[rule], learning_rate=options.learning_rates[rule],
                      initial_train_loss=float(res.train_loss[0]), final_train_loss=float(res.train_loss[-1]),
                      final_test_loss=float(res.test_loss[-1]), final_update_angle=float(res.update_angle[-1]),
                      final_feedback_angle=float(res.feedback_angle[-1]))
        path, key = f"rules[{i}]", f"rules/{rule}"
        out.array(f"{path}.train_loss", f"{key}/train_loss", res.train_loss)
        if X_test is not None:
            out.array(f"{path}.test_loss", f"{key}/test_loss", res.test_loss)
        out.array(f"{path}.update_angle", f"{key}/update_angle", res.update_angle)
        if rule == "feedback_alignment":
            out.array(f"{path}.feedback_angle", f"{key}/feedback_angle", res.feedback_angle)
        for name, weight in (("w1", "W1"), ("b1", "b1"), ("w2", "W2"), ("b2", "b2"), ("feedback", "B")):
            out.array(f"{path}.{name}", f"{key}/{name}", res.weights[weight])
    out.figure("figure", "learning_curves", plots.learning_curves_figure(
        comparison["train_loss"], {r: comparison["results"][r].update_angle for r in options.rules},
        least_squares_loss=comparison["least_squares_loss"],
        test_loss=comparison["test_loss"] if X_test is not None else None,
        title=f"{msg.n_in}-{options.n_hidden}-{msg.n_out} {options.activation} network, {msg.n_samples} samples, "
              f"{options.epochs} epochs"))


def _hebbian(options: LearningOptions, X, out: Outcome, report) -> None:
    n_components, rate, epochs, batch_size, center = options.hebbian
    X = np.asarray(X)
    if options.mode == "oja":
        fit = lr.oja_rule(X, learning_rate=rate, epochs=epochs, batch_size=batch_size, center=center,
                          seed=options.seed, report=report)
    else:
        fit = lr.generalized_hebbian(X, n_components, rule=options.mode, learning_rate=rate, epochs=epochs,
                                     batch_size=batch_size, center=center, seed=options.seed, report=report)
    if not np.isfinite(fit.weights).all():
        raise RequestError(f"the weights of the {options.mode} rule diverged; lower hebbian.learning_rate",
                           field="hebbian.learning_rate")
    msg = out.message
    msg.n_samples, msg.n_in = X.shape
    total = float(np.mean(np.sum((np.asarray(X, dtype=float) - fit.mean) ** 2, axis=1)))
    h = msg.hebbian
    h.final_alignment[:] = fit.alignment[-1].tolist()
    h.final_norms[:] = fit.norms[-1].tolist()
    h.explained_variance_ratio[:] = (fit.eigenvalues / total).tolist()
    for name in ("weights", "components", "eigenvalues", "alignment", "norms", "mean"):
        out.array(f"hebbian.{name}", f"hebbian/{name}", getattr(fit, name))
    out.figure("figure", "hebbian", plots.hebbian_figure(
        fit.alignment, fit.weights, fit.components, rule=options.mode,
        title=f"{options.mode}: {fit.weights.shape[0]} unit{'s' if fit.weights.shape[0] > 1 else ''} on "
              f"{msg.n_samples} samples of {msg.n_in} inputs, final alignment {fit.alignment[-1].min():.4f}"))
