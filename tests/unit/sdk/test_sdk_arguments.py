"""Keyword arguments are checked before anything is uploaded or sent: each mistake raises the SDK's
InvalidArgument naming the argument (the request field), with nothing stored and no call made.
Valid arguments become the request the service expects."""

from __future__ import annotations

import numpy as np
import pytest

from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.sdk import Client, InvalidArgument, RetryPolicy, cortical_column, network_message, vogels_abbott
from neuromesh.sdk.fields import box, enum_value, struct
from neuromesh.segmentation.v1 import segmentation_pb2 as SEG
from neuromesh.simulation.v1 import simulation_pb2 as S

VOLUME = np.zeros((4, 8, 8), np.uint8)
COUNTS = np.zeros((100, 5), np.float32)


@pytest.fixture
def client(artifacts):
    # nothing listens on port 9: a call that got past the checks would fail UNAVAILABLE, not InvalidArgument
    with Client({name: "127.0.0.1:9" for name in ("decoding", "reduction", "simulation", "segmentation",
                                                  "connectomics")},
                artifacts=artifacts, retry=RetryPolicy(max_attempts=1), progress=False) as client:
        yield client


CASES = {
    "bin width 0": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(3, int), bin_width_s=0.0), "bin_width_s"),
    "two sources": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(3, int), nwb=b"x", bin_width_s=0.1),
                    "source"),
    "no source": (lambda c: c.decoding.bin_recording(bin_width_s=0.1), "source"),
    "times without units": (lambda c: c.decoding.bin_recording(np.zeros(3), bin_width_s=0.1), "unit_ids"),
    "unaligned spikes": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(4, int), bin_width_s=0.1),
                         "unit_ids"),
    "stop before start": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(3, int), bin_width_s=0.1,
                                                             start_s=5.0, stop_s=2.0), "stop_s"),
    "behaviour without times": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(3, int), bin_width_s=0.1,
                                                                   behaviour=np.zeros(5)), "behaviour_times"),
    "series without nwb": (lambda c: c.decoding.bin_recording(np.zeros(3), np.zeros(3, int), bin_width_s=0.1,
                                                              behaviour_series="hand"), "behaviour_series"),
    "continuous without rate": (lambda c: c.decoding.bin_recording(continuous=COUNTS, bin_width_s=0.1),
                                "sampling_rate_hz"),
    "one fold": (lambda c: c.decoding.train(COUNTS, np.zeros(100), n_folds=1), "n_folds"),
    "unaligned targets": (lambda c: c.decoding.train(COUNTS, np.zeros(99)), "targets"),
    "time resolved without trials": (lambda c: c.decoding.train(COUNTS, np.zeros(100), time_in_trial=np.zeros(100)),
                                     "trial_index"),
    "fractional history": (lambda c: c.decoding.train(COUNTS, np.zeros(100), history_bins=2.5), "history_bins"),
    "numpy-unfriendly params": (lambda c: c.decoding.train(COUNTS, np.zeros(100), params={"lr": float("nan")}),
                                "params.lr"),
    "unknown comparison": (lambda c: c.decoding.compare_representations(COUNTS, COUNTS, comparison="cosine"),
                           "comparison"),
    "test fraction 1": (lambda c: c.reduction.fit(COUNTS, test_fraction=1.0), "test_fraction"),
    "4-D activity": (lambda c: c.reduction.fit(np.zeros((2, 2, 2, 2))), "activity"),
    "average without conditions": (lambda c: c.reduction.fit(np.zeros((4, 10, 5)), trial_average=True),
                                   "conditions"),
    "negative smoothing": (lambda c: c.reduction.fit(COUNTS, smooth_sigma_bins=-1), "smooth_sigma_bins"),
    "zero duration": (lambda c: c.simulation.simulate(vogels_abbott("cuba"), duration_ms=0.0), "duration_ms"),
    "bins longer than the run": (lambda c: c.simulation.simulate(vogels_abbott("cuba"), duration_ms=10.0,
                                                                 bin_ms=20.0), "bin_ms"),
    "unknown network field": (lambda c: c.simulation.simulate({"populaitons": []}, duration_ms=10.0), "network"),
    "unknown neuron model": (lambda c: c.simulation.simulate(
        {"populations": [{"name": "e", "size": 10, "model": "hodgkin_huxley"}]}, duration_ms=10.0),
        "network.populations[0].model"),
    "unknown circuit kind": (lambda c: vogels_abbott("hh"), "kind"),
    "2-D raw": (lambda c: c.segmentation.segment(np.zeros((8, 8))), "raw"),
    "model and classical": (lambda c: c.segmentation.segment(VOLUME, model=b"ckpt", classical=True), "classical"),
    "threshold above 1": (lambda c: c.segmentation.segment(VOLUME, thresholds=[0.5, 1.5]), "thresholds"),
    "repeated thresholds": (lambda c: c.segmentation.segment(VOLUME, thresholds=[0.5, 0.5]), "thresholds"),
    "two voxel sizes": (lambda c: c.segmentation.segment(VOLUME, voxel_size_nm=(4, 4)), "voxel_size_nm"),
    "negative voxel size": (lambda c: c.segmentation.segment(VOLUME, voxel_size_nm=(4, -4, 4)), "voxel_size_nm"),
    "truth of another shape": (lambda c: c.segmentation.segment(VOLUME, ground_truth=np.zeros((4, 8, 9))),
                               "ground_truth"),
    "unknown watershed option": (lambda c: c.segmentation.segment(VOLUME, watershed={"threshold": 0.4}),
                                 "watershed.threshold"),
    "stepped region": (lambda c: c.segmentation.train_boundary_model(VOLUME, VOLUME, train_region=np.s_[0:4:2]),
                       "train_region"),
    "unknown target": (lambda c: c.segmentation.train_boundary_model(VOLUME, VOLUME, network={"target": "edges"}),
                       "network.target"),
    "zero block": (lambda c: c.connectomics.contact_graph(VOLUME, block_shape=(0, 8, 8)), "block_shape"),
    "unknown measure option": (lambda c: c.connectomics.contact_graph(VOLUME, measures={"nrandom": 3}),
                               "measures.nrandom"),
    "angle above 90": (lambda c: c.connectomics.diffusion_connectome(b"d", [0, 1000], [[1, 0, 0]], b"p",
                                                                     max_angle_deg=120), "max_angle_deg"),
    "fa threshold 1": (lambda c: c.connectomics.diffusion_connectome(b"d", [0, 1000], [[1, 0, 0]], b"p",
                                                                     seed_fa_threshold=1.0), "seed_fa_threshold"),
    "unknown fibre model": (lambda c: c.connectomics.diffusion_connectome(b"d", [0], [[1, 0, 0]], b"p", model="ball"),
                            "model"),
    "shard past count": (lambda c: c.connectomics.diffusion_connectome(b"d", [0], [[1, 0, 0]], b"p", shard_index=2,
                                                                       shard_count=2), "shard_index"),
    "a bare array as NIfTI": (lambda c: c.connectomics.diffusion_connectome(np.zeros((2, 2, 2, 2)), [0], [[1, 0, 0]],
                                                                            b"p"), "dwi"),
    "two graphs": (lambda c: c.connectomics.analyze_graph({"source": [1], "target": [2]}, matrix=np.eye(2)), "graph"),
    "non-square matrix": (lambda c: c.connectomics.analyze_graph(matrix=np.zeros((2, 3))), "matrix"),
    "simulation without synapses": (lambda c: c.connectomics.simulated_connectome(
        _simulation_result(c, record=False)), "simulation"),
    "negative timeout": (lambda c: c.simulation.estimate_memory(vogels_abbott("cuba"), timeout=-1), "timeout"),
}


def _simulation_result(client, *, record):
    from neuromesh.sdk.simulation import SimulationResult
    message = S.SimulateResult(duration_ms=100.0)
    if record:
        message.synapses.n_synapses = 1
    return SimulationResult(message, client.artifacts)


@pytest.mark.parametrize("name", CASES)
def test_a_bad_argument_is_refused_by_name_before_anything_is_sent(client, store, name):
    call, field = CASES[name]
    with pytest.raises(InvalidArgument) as caught:
        call(client)
    assert caught.value.field == field, caught.value
    assert f"field {field}" in str(caught.value)
    assert store.puts == []          # nothing uploaded


def test_short_enum_names_full_names_and_numbers_are_one_value():
    assert {enum_value(C.TrackingMethod, v, field="tracking") for v in
            ("probabilistic", "PROBABILISTIC", "TRACKING_METHOD_PROBABILISTIC", 2)} == {2}
    assert enum_value(SEG.AffinityReduction, None, field="affinity_reduction") == 0


def test_a_declarative_network_from_a_dict_takes_short_enum_names_everywhere():
    net = network_message({
        "populations": [{"name": "exc", "size": 800, "model": "izhikevich", "izhikevich_regime": "chattering",
                         "initial": {"v": {"distribution": "uniform", "a": -70, "b": -60}}},
                        {"name": "inh", "size": 200, "model": "lif_coba", "params": {"tau_m": np.float64(10.0)}}],
        "projections": [{"source": "exc", "target": "inh", "synapse": "exc", "weight": 0.2,
                         "connectivity": {"rule": "fixed_indegree", "value": 20},
                         "plasticity": {"rule": "reward_modulated_stdp", "a_plus": 0.02}}],
        "dtype": "float64", "seed": np.int64(4)})
    assert net.populations[0].initial["v"].distribution == S.DISTRIBUTION_UNIFORM
    assert net.populations[1].model == S.NEURON_MODEL_LIF_COBA and net.populations[1].params["tau_m"] == 10.0
    projection = net.projections[0]
    assert projection.connectivity.rule == S.CONNECTIVITY_RULE_FIXED_INDEGREE
    assert projection.plasticity.rule == S.PLASTICITY_RULE_REWARD_MODULATED_STDP
    assert projection.plasticity.HasField("a_plus") and not projection.plasticity.HasField("a_minus")
    assert net.dtype == S.DTYPE_FLOAT64 and net.seed == 4


def test_circuit_builders_leave_unset_what_the_service_defaults():
    column = cortical_column(0.02, stimulus_rate_hz=20.0, seed=7, dt_ms=0.1)
    assert column.cortical_column.HasField("stimulus_rate_hz") and not column.cortical_column.HasField("psp_mv")
    assert column.dt_ms == 0.1 and column.seed == 7
    assert vogels_abbott("coba").vogels_abbott.n_neurons == 0   # 0: the service's 4000


def test_boxes_from_slices_and_dicts():
    region = box(np.s_[10:20, :, 5:], field="train_region")
    assert (region.z_start, region.z_stop, region.y_stop, region.x_start, region.x_stop) == (10, 20, 0, 5, 0)
    assert box({"z_stop": 8}, field="r").z_stop == 8 and box(None, field="r") is None
    with pytest.raises(InvalidArgument, match="empty"):
        box(np.s_[5:5], field="r")


def test_parameters_become_a_struct_of_plain_numbers():
    params = struct({"n_components": np.int32(3), "widths": np.array([1.0, 2.0]), "nested": {"on": True}},
                    field="params")
    assert params["n_components"] == 3 and list(params["widths"]) == [1.0, 2.0] and params["nested"]["on"] is True


def test_valid_arguments_make_the_request_the_service_expects(scripted, artifacts):
    servicer, target = scripted
    with Client({"simulation": target}, artifacts=artifacts, progress=False) as client:
        run = client.simulation.simulate({"vogels_abbott": {"kind": "coba", "n_neurons": 100}}, duration_ms=250.0,
                                         bin_ms=5.0, count_populations="exc")
    assert run.n_spikes == 250 and run.duration_ms == 250.0 and servicer.calls == 1
