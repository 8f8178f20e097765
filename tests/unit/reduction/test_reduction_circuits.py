"""InferCircuit and FindFixedPoints requests: checked field by field, computed, stored.

Every bad value is a RequestError (INVALID_ARGUMENT) naming the request field at fault, also
when the core finds the problem in an uploaded array; outcomes carry the core's numbers and
land at the fields of the result message.
"""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest
import torch

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.reduction.v1 import reduction_pb2 as R
from services.common.errors import RequestError, ResourceExhausted
from services.reduction import circuits
from services.reduction.core import circuit_inference as ci


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and extra threads spin-wait on these tiny tensors."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class MemoryStore:
    """The part of ArtifactStore that store_outcome uses, in memory."""

    def __init__(self):
        self.objects = {}

    def put_array(self, key, value, *, if_exists="error"):
        self.objects[key] = np.asarray(value)
        return ArtifactRef(key=key, shape=list(np.shape(value)), dtype=str(np.asarray(value).dtype))

    def put_bytes(self, key, data, *, media_type="", if_exists="error"):
        self.objects[key] = data
        return ArtifactRef(key=key, media_type=media_type, size_bytes=len(data))


def ref(key: str) -> ArtifactRef:
    return ArtifactRef(key=key)


# --- paths and storage -----------------------------------------------------------------------


def test_refs_land_at_dotted_indexed_and_appended_paths():
    message = R.CompareLearningRulesResult(rules=[R.RuleCurves(), R.RuleCurves()])
    out = circuits.Outcome(message)
    out.array("rules[1].w1", "rules/1/w1", np.eye(2))
    out.array("hebbian.weights", "hebbian/weights", np.ones(3))
    out.figure("figure", "curves", b"\x89PNG...")
    events = []
    stored = circuits.store_outcome(MemoryStore(), "p", out, lambda **k: events.append(k))
    assert stored.rules[1].w1.key == "p/rules/1/w1" and not stored.rules[0].HasField("w1")
    assert stored.hebbian.weights.key == "p/hebbian/weights" and stored.figure.key == "p/curves.png"
    assert [e["stage"] for e in events] == ["store"] * 3
    assert [e["fraction_done"] for e in events] == sorted(e["fraction_done"] for e in events)
    assert 0.97 <= events[0]["fraction_done"] and events[-1]["fraction_done"] < 1.0
    points = R.FixedPointsResult()
    circuits.set_ref(points, "figure", ref("x"))
    assert circuits.get_ref(points, "figure").key == "x"


# --- InferCircuit: checks --------------------------------------------------------------------


def test_circuit_defaults():
    options = circuits.circuit_options(R.InferCircuitRequest(inputs=ref("u"), activity=ref("a")))
    assert (options.optimizer, options.epochs, options.learning_rate, options.activation) == \
        ("adam", 500, 0.01, "tanh")
    assert (options.tau, options.dt, options.holdout_fraction, options.batch_size, options.n_units) == \
        (1.0, 0.1, 0.2, None, None)
    assert options.inputs == ("inputs", "activity") and options.fixed_points == circuits.FixedPointSettings()
    full = circuits.circuit_options(R.InferCircuitRequest(
        behaviour=ref("y"), true_recurrent=ref("W"), observed_units=[0, 2], n_units=3, holdout_fraction=0.0,
        fixed_points=R.FixedPointOptions(input=[1.0, -1.0], polish_iterations=0, keep_tolerance=1e-4)))
    assert full.inputs == ("inputs", "activity", "behaviour", "true_recurrent")
    assert full.observed_units == (0, 2) and full.n_units == 3 and full.holdout_fraction == 0.0
    assert full.fixed_points.input == (1.0, -1.0) and full.fixed_points.polish_iterations == 0
    assert full.fixed_points.search_kwargs()["keep_tolerance"] == 1e-4


@pytest.mark.parametrize("request_, field", [
    (R.InferCircuitRequest(observed_units=[0, 0], n_units=3), "observed_units"),
    (R.InferCircuitRequest(observed_units=[0, 1]), "n_units"),
    (R.InferCircuitRequest(observed_units=[0, 5], n_units=3), "observed_units"),
    (R.InferCircuitRequest(n_units=-1), "n_units"),
    (R.InferCircuitRequest(dale_signs=[1, 2]), "dale_signs[1]"),
    (R.InferCircuitRequest(dale_signs=[1, -1], n_units=3), "dale_signs"),
    (R.InferCircuitRequest(tau=0.0), "tau"),
    (R.InferCircuitRequest(dt=2.0), "dt"),
    (R.InferCircuitRequest(activation=9), "activation"),
    (R.InferCircuitRequest(optimizer=9), "optimizer"),
    (R.InferCircuitRequest(holdout_fraction=1.0), "holdout_fraction"),
    (R.InferCircuitRequest(epochs=-5), "epochs"),
    (R.InferCircuitRequest(learning_rate=0.0), "learning_rate"),
    (R.InferCircuitRequest(batch_size=-1), "batch_size"),
    (R.InferCircuitRequest(l2=math.nan), "l2"),
    (R.InferCircuitRequest(max_grad_norm=0.0), "max_grad_norm"),
    (R.InferCircuitRequest(seed=-1), "seed"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(n_initial_states=20_000)),
     "fixed_points.n_initial_states"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(initial_noise_sd=-1.0)), "fixed_points.initial_noise_sd"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(input=[math.inf])), "fixed_points.input[0]"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(keep_tolerance=1e-14)), "fixed_points.keep_tolerance"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(learning_rate=0.0)), "fixed_points.learning_rate"),
    (R.InferCircuitRequest(fixed_points=R.FixedPointOptions(polish_iterations=-1)),
     "fixed_points.polish_iterations"),
])
def test_bad_circuit_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as info:
        circuits.circuit_options(request_)
    assert info.value.field == field, str(info.value)


# --- InferCircuit: computing -----------------------------------------------------------------


def linear_recordings(n=4, n_trials=20, n_steps=30, seed=0):
    rng = np.random.default_rng(seed)
    truth = ci.random_rate_network(n, n_inputs=n, n_outputs=1, gain=0.8, activation="linear", seed=seed)
    u = 0.5 * rng.normal(size=(n_trials, n_steps, n))
    return truth, u, ci.simulate_rate_network(truth, u)


def test_a_circuit_fit_reports_stores_and_scores_against_the_planted_network():
    truth, u, data = linear_recordings()
    options = circuits.circuit_options(R.InferCircuitRequest(
        activation=R.RATE_ACTIVATION_LINEAR, optimizer=R.CIRCUIT_OPTIMIZER_LBFGS, epochs=20, behaviour=ref("y"),
        true_recurrent=ref("W"), fixed_points=R.FixedPointOptions(n_initial_states=20)))
    events = []
    outcome = circuits.run_circuit(options, {"inputs": u, "activity": data.rates, "behaviour": data.outputs,
                                             "true_recurrent": truth.recurrent}, lambda **k: events.append(k))
    store = MemoryStore()
    result = circuits.store_outcome(store, "c", outcome)
    assert [e["stage"] for e in events][0] == "fit" and events[-1]["stage"] == "fixed_points"
    assert max(e["counters"]["epochs_done"] for e in events if e["stage"] == "fit") == 20
    assert result.connectivity_correlation > 0.99 and result.heldout_activity_r2 > 0.99
    W = store.objects[result.network.recurrent.key]
    assert result.connectivity_correlation == pytest.approx(ci.connectivity_correlation(truth.recurrent, W))
    assert result.network.activation == R.RATE_ACTIVATION_LINEAR and result.network.tau == 1.0
    assert result.network.readout.key == "c/network/readout" and result.predicted_behaviour.key
    # a stable linear network has one fixed point, the solution of (I - W) x = b
    (point,) = result.fixed_points.points
    assert point.stability == R.FIXED_POINT_STABILITY_STABLE and point.is_fixed
    b = store.objects[result.network.bias.key]
    np.testing.assert_allclose(store.objects["c/fixed_points/states"][0], np.linalg.solve(np.eye(4) - W, b),
                               atol=1e-8)
    for key in ("c/loss.png", "c/activity.png", "c/connectivity.png", "c/fixed_points/figure.png"):
        assert store.objects[key][:4] == b"\x89PNG"


def test_a_circuit_fit_without_behaviour_or_fixed_points():
    truth, u, data = linear_recordings(n=3, n_trials=8, n_steps=10)
    options = circuits.circuit_options(R.InferCircuitRequest(optimizer=R.CIRCUIT_OPTIMIZER_ADAM, epochs=3,
                                                             fixed_points=R.FixedPointOptions(skip=True)))
    result = circuits.run_circuit(options, {"inputs": u, "activity": data.rates}).message
    assert not result.HasField("fixed_points") and math.isnan(result.heldout_behaviour_r2)
    assert math.isnan(result.connectivity_correlation) and len(result.observed_units) == 3


@pytest.mark.parametrize("edit, field", [
    (lambda a: a.update(activity=a["activity"][:, :-1]), "activity"),
    (lambda a: a.update(activity=np.where(np.arange(3) == 1, np.nan, a["activity"])), "activity"),
    (lambda a: a.update(inputs=a["inputs"][0]), "inputs"),
    (lambda a: a.update(behaviour=np.zeros((8, 11, 1))), "behaviour"),
    (lambda a: a.update(true_recurrent=np.eye(4)), "true_recurrent"),
    (lambda a: a.update(true_recurrent=np.ones((3, 3))), "true_recurrent"),
])
def test_bad_arrays_name_their_field(edit, field):
    truth, u, data = linear_recordings(n=3, n_trials=8, n_steps=10)
    arrays = {"inputs": u, "activity": data.rates, "behaviour": data.outputs, "true_recurrent": truth.recurrent}
    edit(arrays)
    options = circuits.circuit_options(R.InferCircuitRequest(optimizer=R.CIRCUIT_OPTIMIZER_LBFGS, epochs=1,
                                                             fixed_points=R.FixedPointOptions(skip=True)))
    with pytest.raises(RequestError) as info:
        circuits.run_circuit(options, arrays)
    assert info.value.field == field, str(info.value)


def test_sizes_are_checked_against_the_recorded_units_and_the_store_limit():
    _, u, data = linear_recordings(n=3, n_trials=8, n_steps=10)
    arrays = {"inputs": u, "activity": data.rates}
    with pytest.raises(RequestError) as info:
        circuits.run_circuit(circuits.circuit_options(R.InferCircuitRequest(dale_signs=[1, -1])), arrays)
    assert info.value.field == "dale_signs"
    with pytest.raises(RequestError) as info:
        circuits.run_circuit(circuits.circuit_options(R.InferCircuitRequest(n_units=2)), arrays)
    assert info.value.field == "n_units"
    with pytest.raises(ResourceExhausted) as info:
        circuits.run_circuit(circuits.circuit_options(R.InferCircuitRequest(
            fixed_points=R.FixedPointOptions(n_initial_states=10_000))), arrays, max_bytes=2**20)
    assert info.value.field == "fixed_points"
    with pytest.raises(RequestError) as info:
        circuits.run_circuit(circuits.circuit_options(R.InferCircuitRequest(
            epochs=1, fixed_points=R.FixedPointOptions(input=[1.0]))), arrays)
    assert info.value.field == "fixed_points.input"


def test_a_diverging_fit_names_the_learning_rate():
    _, u, data = linear_recordings(n=3, n_trials=8, n_steps=10)
    options = circuits.circuit_options(R.InferCircuitRequest(activation=R.RATE_ACTIVATION_LINEAR, epochs=30,
                                                             learning_rate=1e6, max_grad_norm=1e12))
    with pytest.raises(RequestError) as info:
        circuits.run_circuit(options, {"inputs": 100 * u, "activity": data.rates})
    assert info.value.field == "learning_rate"


# --- FindFixedPoints -------------------------------------------------------------------------


def test_fixed_point_request_checks():
    options = circuits.fixed_point_request_options(R.FindFixedPointsRequest(
        network=R.RateNetworkArrays(recurrent=ref("W"), bias=ref("b"), readout=ref("C"), tau=2.0, dt=0.5),
        trajectories=ref("x")))
    assert options.inputs == ("network.recurrent", "network.bias", "trajectories")
    assert (options.tau, options.dt, options.activation, options.start) == (2.0, 0.5, "tanh", "trajectories")
    stripped = circuits.without_unused_network_parts(R.FindFixedPointsRequest(
        network=R.RateNetworkArrays(recurrent=ref("W"), readout=ref("C"), initial_state=ref("x0"))))
    assert stripped.network.recurrent.key == "W" and not stripped.network.HasField("readout")


@pytest.mark.parametrize("request_, field", [
    (R.FindFixedPointsRequest(initial_states=ref("x")), "network.recurrent.key"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W"))), "start"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W"), tau=0.1, dt=0.2),
                              initial_states=ref("x")), "network.dt"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W"), activation=8), initial_states=ref("x")),
     "network.activation"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W")), initial_states=ref("x"),
                              options=R.FixedPointOptions(skip=True)), "options.skip"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W")), initial_states=ref("x"),
                              options=R.FixedPointOptions(input=[1.0])), "network.input_weights"),
    (R.FindFixedPointsRequest(network=R.RateNetworkArrays(recurrent=ref("W")), initial_states=ref("x"), seed=-3),
     "seed"),
])
def test_bad_fixed_point_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as info:
        circuits.fixed_point_request_options(request_)
    assert info.value.field == field, str(info.value)


def test_the_fixed_points_of_two_bistable_units_are_found_and_stored():
    options = circuits.fixed_point_request_options(R.FindFixedPointsRequest(
        network=R.RateNetworkArrays(recurrent=ref("W")), initial_states=ref("x")))
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 7), np.linspace(-3, 3, 7)), -1).reshape(-1, 2)
    store = MemoryStore()
    result = circuits.store_outcome(store, "f", circuits.run_fixed_points(
        options, {"network.recurrent": 2 * np.eye(2), "initial_states": grid}))
    points = result.fixed_points
    kinds = [R.FixedPointStability.Name(p.stability) for p in points.points]
    assert len(kinds) == 9 and points.n_fixed == 9 and points.n_candidates == 49
    assert sorted(set(kinds)) == ["FIXED_POINT_STABILITY_SADDLE", "FIXED_POINT_STABILITY_STABLE",
                                  "FIXED_POINT_STABILITY_UNSTABLE"]
    assert kinds.count("FIXED_POINT_STABILITY_STABLE") == 4
    assert store.objects["f/fixed_points/jacobians"].shape == (9, 2, 2)
    assert store.objects["f/fixed_points/eigenvectors_imag"].shape == (9, 2, 2)


@pytest.mark.parametrize("arrays, field", [
    ({"network.recurrent": np.ones((2, 3))}, "network.recurrent"),
    ({"network.recurrent": np.eye(2), "network.bias": np.zeros(3)}, "network.bias"),
    ({"network.recurrent": np.eye(2), "network.input_weights": np.zeros((3, 1))}, "network.input_weights"),
    ({"network.recurrent": np.full((2, 2), np.nan)}, "network.recurrent"),
    ({"network.recurrent": np.eye(2), "initial_states": np.zeros((4, 3))}, "initial_states"),
    ({"network.recurrent": np.eye(2), "initial_states": np.zeros((2, 4, 2))}, "initial_states"),
])
def test_bad_fixed_point_arrays_name_their_field(arrays, field):
    arrays = {"initial_states": np.zeros((4, 2)), **arrays}
    options = circuits.fixed_point_request_options(R.FindFixedPointsRequest(
        network=R.RateNetworkArrays(recurrent=ref("W")), initial_states=ref("x")))
    with pytest.raises(RequestError) as info:
        circuits.run_fixed_points(options, arrays)
    assert info.value.field == field, str(info.value)


def test_an_input_of_the_wrong_length_names_options_input():
    options = circuits.fixed_point_request_options(R.FindFixedPointsRequest(
        network=R.RateNetworkArrays(recurrent=ref("W"), input_weights=ref("B")), initial_states=ref("x"),
        options=R.FixedPointOptions(input=[1.0, 2.0])))
    with pytest.raises(RequestError) as info:
        circuits.run_fixed_points(options, {"network.recurrent": np.eye(2), "network.input_weights": np.ones((2, 1)),
                                            "initial_states": np.zeros((3, 2))})
    assert info.value.field == "options.input"


@pytest.mark.parametrize("name", ["services.reduction.circuits", "services.reduction.brain_model_plots"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
