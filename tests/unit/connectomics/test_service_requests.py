"""The plain fields of connectomics requests: defaults resolved, every bad value named."""

from __future__ import annotations

import pytest

from neuromesh.connectomics.v1 import connectomics_pb2 as C
from services.common.errors import RequestError
from services.connectomics.requests import (DEFAULT_MEASURES, contact_options, measures_options, simulated_options,
                                            tracking_options)


def test_defaults():
    options = tracking_options(C.DiffusionConnectomeRequest())
    assert (options.model, options.tracking, options.seeds_per_voxel, options.processes) == ("csd", "deterministic", 1, 1)
    assert (options.seed_fa_threshold, options.stop_fa_threshold, options.max_angle_deg) == (0.3, 0.2, 30.0)
    assert options.step_size_mm is None and options.measures.measures == DEFAULT_MEASURES
    contact = contact_options(C.ContactGraphRequest())
    assert contact.voxel_size == (1.0, 1.0, 1.0) and contact.block_shape == (64, 256, 256)
    assert measures_options(C.GraphMeasuresOptions(measures=["small_world", "degree"])).measures == (
        "degree", "small_world")          # in computing order
    assert simulated_options(C.SimulatedConnectomeRequest(duration_ms=100)).bin_ms == 20.0


@pytest.mark.parametrize("call, field", [
    (lambda: tracking_options(C.DiffusionConnectomeRequest(seeds_per_voxel=11)), "seeds_per_voxel"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(max_angle_deg=91)), "max_angle_deg"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(step_size_mm=float("nan"))), "step_size_mm"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(min_length_mm=20, max_length_mm=10)), "min_length_mm"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(processes=65)), "processes"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(shard_index=2, shard_count=2)), "shard_index"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(shard_index=1)), "shard_index"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(seed_fa_threshold=1.0)), "seed_fa_threshold"),
    (lambda: tracking_options(C.DiffusionConnectomeRequest(model=9)), "model"),
    (lambda: contact_options(C.ContactGraphRequest(voxel_size_nm=[1, 2])), "voxel_size_nm"),
    (lambda: contact_options(C.ContactGraphRequest(block_shape=[0, 8, 8])), "block_shape"),
    (lambda: contact_options(C.ContactGraphRequest(min_contact_faces=-1)), "min_contact_faces"),
    (lambda: measures_options(C.GraphMeasuresOptions(measures=["pagerank"])), "measures.measures"),
    (lambda: measures_options(C.GraphMeasuresOptions(n_random=-1)), "measures.n_random"),
    (lambda: measures_options(C.GraphMeasuresOptions(resolution=float("inf"))), "measures.resolution"),
    (lambda: simulated_options(C.SimulatedConnectomeRequest()), "duration_ms"),
    (lambda: simulated_options(C.SimulatedConnectomeRequest(duration_ms=10, bin_ms=20)), "bin_ms"),
    (lambda: simulated_options(C.SimulatedConnectomeRequest(duration_ms=100, first_neuron=5, last_neuron=5)),
     "first_neuron"),
    (lambda: simulated_options(C.SimulatedConnectomeRequest(duration_ms=100, last_neuron=9000)), "last_neuron"),
])
def test_bad_values_are_refused_naming_the_field(call, field):
    with pytest.raises(RequestError) as info:
        call()
    assert info.value.field == field
