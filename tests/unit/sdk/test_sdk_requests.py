"""Requests from keyword arguments named as proto fields (the brain-model RPCs): conversions, uploads
of ref fields, and errors naming the dotted field path."""

from __future__ import annotations

import numpy as np
import pytest

from neuromesh.reduction.v1 import reduction_pb2 as R
from neuromesh.sdk.errors import InvalidArgument
from neuromesh.sdk.requests import build_request
from neuromesh.simulation.v1 import simulation_pb2 as S


def test_ref_fields_are_uploaded_arrays_and_files_by_what_they_are(artifacts, store, tmp_path):
    image = tmp_path / "scene.png"
    image.write_bytes(b"\x89PNG fake")
    request = build_request(S.TrainPredictiveCodingRequest, {
        "source": "uploaded", "images": [np.ones((8, 8), np.float32), image], "layer_sizes": np.array([32, 16]),
        "bar_length": {"lengths": [1.0, 2.0, 3.0]}}, artifacts=artifacts)
    assert request.images[0].key.endswith("-float32-8x8") and request.images[1].media_type == "image/png"
    assert list(request.layer_sizes) == [32, 16] and list(request.bar_length.lengths) == [1.0, 2.0, 3.0]
    assert len(store.puts) == 2


def test_nested_messages_repeated_enums_and_optional_fields(artifacts):
    request = build_request(R.InferCircuitRequest, {
        "activity": np.zeros((2, 10, 3)), "activation": "softplus", "tau": np.float64(2.0), "dale_signs": [1, 1, -1],
        "fixed_points": {"n_initial_states": 64, "input": [0.5]}, "optimizer": 0}, artifacts=artifacts)
    assert request.activation == R.RATE_ACTIVATION_SOFTPLUS and request.HasField("tau") and not request.HasField("dt")
    assert request.fixed_points.n_initial_states == 64 and list(request.fixed_points.input) == [0.5]
    rules = build_request(R.CompareLearningRulesRequest, {"mode": "two_layer", "rules": ["backprop", "three_factor"]},
                          artifacts=artifacts)
    assert list(rules.rules) == [R.LEARNING_RULE_BACKPROP, R.LEARNING_RULE_THREE_FACTOR]


@pytest.mark.parametrize("values, field", [
    ({"mode": "two_layer", "teacher": {"n_samples": 10}, "uploaded": {}}, "uploaded"),
    ({"mode": "two_layer", "teacher": {"n_sample": 10}}, "teacher.n_sample"),
    ({"mode": "two_layer", "epochs": 2.5}, "epochs"),
    ({"mode": "two_layer", "init_scale": float("inf")}, "init_scale"),
    ({"mode": "two_layer", "rules": "backprop"}, "rules"),
    ({"mode": "two_layer", "rules": ["backprop", "hebb"]}, "rules[1]"),
    ({"mode": "quantum"}, "mode"),
])
def test_mistakes_name_the_dotted_field(artifacts, values, field):
    with pytest.raises(InvalidArgument) as caught:
        build_request(R.CompareLearningRulesRequest, values, artifacts=artifacts)
    assert caught.value.field == field


def test_a_fitted_network_goes_back_as_it_came(artifacts, store):
    recurrent = store.put_array("derived/circuit/recurrent", np.eye(3))
    from neuromesh.sdk.reduction import CircuitInference

    circuit = CircuitInference(R.InferCircuitResult(network=R.RateNetworkArrays(recurrent=recurrent, tau=1.0)),
                               artifacts)
    request = build_request(R.FindFixedPointsRequest, {"network": circuit.message.network, "seed": 2},
                            artifacts=artifacts)
    assert request.network.recurrent.key == "derived/circuit/recurrent" and request.network.tau == 1.0
