"""SimulateRequest -> NetworkSpec and output plan: every field maps to the core, every bad input is
a ValueError that names the request field at fault."""

from __future__ import annotations

import doctest
import importlib
import math
from dataclasses import replace

import numpy as np
import pytest

from neuromesh.simulation.v1 import simulation_pb2 as S
from services.simulation.core import (
    Connectivity, CurrentInput, InitialValue, NetworkSpec, Plasticity, PoissonInput, Population, Projection, Reward,
    StateMonitor, cortical_column, simulate, vogels_abbott,
)
from services.simulation.requests import RequestError, network_spec, simulation_plan


def small_network(**edits) -> S.Network:
    """Two LIF populations and a projection; ``edits`` are functions applied to the message."""
    network = S.Network(
        populations=[S.Population(name="exc", size=80), S.Population(name="inh", size=20)],
        projections=[S.Projection(source="exc", target="inh", weight=1.0, connectivity=S.Connectivity(
            rule=S.CONNECTIVITY_RULE_FIXED_PROBABILITY, value=0.1))])
    for edit in edits.values():
        edit(network)
    return network


# --- conversion ----------------------------------------------------------------------------------


def test_every_field_maps_to_the_core_dataclasses():
    network = S.Network(
        populations=[
            S.Population(name="thal", size=10, model=S.NEURON_MODEL_POISSON,
                         params={"rate_hz": 20.0, "modulation_frequency_hz": 4.0}),
            S.Population(name="pyr", size=30, model=S.NEURON_MODEL_LIF_COBA, params={"tau_m": 15.0},
                         initial={"v": S.InitialValue(distribution=S.DISTRIBUTION_NORMAL, a=-58.0, b=2.0),
                                  "g_exc": S.InitialValue(a=0.1)}),
            S.Population(name="fs", size=5, model=S.NEURON_MODEL_IZHIKEVICH, izhikevich_regime="fast_spiking",
                         params={"d": 3.0}),
        ],
        projections=[
            S.Projection(source="thal", target="pyr", weight=0.3, delay_ms=1.5,
                         connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=4)),
            S.Projection(source="pyr", target="pyr", synapse=S.SYNAPSE_CHANNEL_EXC, weight=0.2,
                         connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_ALL_TO_ALL, allow_autapses=True),
                         plasticity=S.Plasticity(rule=S.PLASTICITY_RULE_REWARD_MODULATED_STDP, a_plus=0.0,
                                                 tau_dopamine=50.0)),
            S.Projection(source="fs", target="pyr", synapse=S.SYNAPSE_CHANNEL_INH, weight=2.0,
                         connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_PROBABILITY, value=0.5)),
        ],
        poisson_inputs=[S.PoissonInput(target="pyr", rate_hz=5.0, weight=0.1, n_sources=100),
                        S.PoissonInput(target="fs", rate_hz=2.0, weight=1.0, synapse=S.SYNAPSE_CHANNEL_INH,
                                       start_ms=10.0, stop_ms=20.0)],
        current_inputs=[S.CurrentInput(target="fs", amplitude=4.0, neurons=[0, 2]),
                        S.CurrentInput(target="pyr", amplitude=1.0, start_ms=5.0, stop_ms=6.0)],
        rewards=[S.Reward(time_ms=30.0), S.Reward(time_ms=40.0, amount=-0.5)],
        state_monitors=[S.StateMonitor(population="fs", neurons=[1], variables=["v", "u"], every_ms=0.5),
                        S.StateMonitor(population="pyr", neurons=[0, 1])],
        record_spikes=S.SpikeRecording(populations=["pyr", "fs"]), dt_ms=0.05, seed=11, dtype=S.DTYPE_FLOAT64)
    expected = NetworkSpec(
        populations=(
            Population("thal", 10, "poisson", params={"rate_hz": 20.0, "modulation_frequency_hz": 4.0}),
            Population("pyr", 30, "lif_coba", params={"tau_m": 15.0},
                       initial={"v": InitialValue("normal", -58.0, 2.0), "g_exc": InitialValue("constant", 0.1)}),
            Population("fs", 5, "izhikevich", params={"a": 0.1, "b": 0.2, "c": -65.0, "d": 3.0}),
        ),
        projections=(
            Projection("thal", "pyr", weight=0.3, delay_ms=1.5, connectivity=Connectivity("fixed_indegree", 4)),
            Projection("pyr", "pyr", weight=0.2, connectivity=Connectivity("all_to_all", 0.0, True),
                       plasticity=Plasticity(rule="reward_modulated_stdp", a_plus=0.0, tau_dopamine=50.0)),
            Projection("fs", "pyr", synapse="inh", weight=2.0, connectivity=Connectivity("fixed_probability", 0.5)),
        ),
        poisson_inputs=(PoissonInput("pyr", 5.0, 0.1, n_sources=100),
                        PoissonInput("fs", 2.0, 1.0, synapse="inh", start_ms=10.0, stop_ms=20.0)),
        current_inputs=(CurrentInput("fs", 4.0, neurons=(0, 2)), CurrentInput("pyr", 1.0, start_ms=5.0, stop_ms=6.0)),
        rewards=(Reward(30.0), Reward(40.0, -0.5)),
        state_monitors=(StateMonitor("fs", (1,), ("v", "u"), 0.5), StateMonitor("pyr", (0, 1), ("v",), 0.05)),
        record_spikes=("pyr", "fs"), dt_ms=0.05, seed=11, dtype="float64")
    spec = network_spec(network)
    assert spec == expected
    assert spec.poisson_inputs[0].stop_ms == math.inf and spec.current_inputs[0].stop_ms == math.inf
    assert spec.projections[1].plasticity.a_minus == Plasticity().a_minus   # unset: the engine's default


def test_defaults_of_unset_fields():
    spec = network_spec(small_network())
    assert (spec.dt_ms, spec.seed, spec.dtype, spec.record_spikes) == (0.1, 0, "float32", None)
    assert spec.populations[0].model == "lif_cuba" and spec.projections[0].synapse == "exc"
    none = network_spec(small_network(rec=lambda n: n.record_spikes.SetInParent()))
    assert none.record_spikes == ()


@pytest.mark.parametrize("kind, name", [(S.VOGELS_ABBOTT_KIND_CUBA, "cuba"), (S.VOGELS_ABBOTT_KIND_COBA, "coba")])
def test_vogels_abbott_circuit(kind, name):
    assert network_spec(S.Network(vogels_abbott=S.VogelsAbbott(kind=kind), seed=1)) == vogels_abbott(name, seed=1)
    assert network_spec(S.Network(vogels_abbott=S.VogelsAbbott(kind=kind, n_neurons=1000, synapses_per_neuron=40),
                                  seed=2, dtype=S.DTYPE_FLOAT64)) == \
        vogels_abbott(name, 1000, synapses_per_neuron=40, seed=2, dtype="float64")


def test_cortical_column_circuit_with_its_options_and_added_inputs():
    assert network_spec(S.Network(cortical_column=S.CorticalColumn())) == cortical_column(seed=0)
    column = S.CorticalColumn(scale=0.02, stimulus_rate_hz=0.0, stimulus_frequency_hz=8.0, stimulus_depth=0.5,
                              stimulus_start_ms=100.0, stimulus_stop_ms=200.0, background_rate_hz=6.0, psp_mv=0.1,
                              relative_inhibition=5.0)
    base = cortical_column(scale=0.02, stimulus_rate_hz=0.0, stimulus_frequency_hz=8.0, stimulus_depth=0.5,
                           stimulus_start_ms=100.0, stimulus_stop_ms=200.0, background_rate_hz=6.0, psp_mv=0.1,
                           relative_inhibition=5.0, seed=5)
    assert network_spec(S.Network(cortical_column=column, seed=5)) == base
    # inputs and monitors of the request are added to the circuit's, after them
    extended = network_spec(S.Network(
        cortical_column=column, seed=5, poisson_inputs=[S.PoissonInput(target="L23_exc", rate_hz=3.0, weight=1.0)],
        state_monitors=[S.StateMonitor(population="L4_exc", neurons=[0])],
        record_spikes=S.SpikeRecording(populations=["L4_exc"]), dt_ms=0.2))
    assert extended == replace(base, poisson_inputs=base.poisson_inputs + (PoissonInput("L23_exc", 3.0, 1.0),),
                               state_monitors=(StateMonitor("L4_exc", (0,), ("v",), 0.2),),
                               record_spikes=("L4_exc",), dt_ms=0.2)


# --- bad input -----------------------------------------------------------------------------------


def pop(i, **values):
    return lambda n: [setattr(n.populations[i], k, v) for k, v in values.items()]


def proj(i, **values):
    return lambda n: [setattr(n.projections[i], k, v) for k, v in values.items()]


def conn(i, **values):
    return lambda n: [setattr(n.projections[i].connectivity, k, v) for k, v in values.items()]


def add(name, message):
    return lambda n: getattr(n, name).append(message)


BAD_NETWORKS = {
    "zero dt": (dict(e=lambda n: setattr(n, "dt_ms", 0.0)), "network.dt_ms"),
    "negative dt": (dict(e=lambda n: setattr(n, "dt_ms", -0.1)), "network.dt_ms"),
    "NaN dt": (dict(e=lambda n: setattr(n, "dt_ms", float("nan"))), "network.dt_ms"),
    "negative seed": (dict(e=lambda n: setattr(n, "seed", -1)), "network.seed"),
    "unknown dtype": (dict(e=lambda n: setattr(n, "dtype", 7)), "network.dtype"),
    "no population": (dict(e=lambda n: (n.ClearField("populations"), n.ClearField("projections"))),
                      "network.populations"),
    "empty population": (dict(e=pop(1, size=0)), "network.populations[1].size"),
    "negative size": (dict(e=pop(0, size=-5)), "network.populations[0].size"),
    "more neurons than int32": (dict(e=pop(0, size=2**31)), "network.populations[0].size"),
    "unnamed population": (dict(e=pop(0, name="")), "network.populations[0].name"),
    "duplicate name": (dict(e=pop(1, name="exc")), "network.populations[1].name"),
    "unknown model": (dict(e=pop(0, model=42)), "network.populations[0].model"),
    "unknown parameter": (dict(e=lambda n: n.populations[0].params.update({"tau_x": 1.0})),
                          "network.populations[0].params.tau_x"),
    "NaN parameter": (dict(e=lambda n: n.populations[0].params.update({"tau_m": float("nan")})),
                      "network.populations[0].params.tau_m"),
    "infinite parameter": (dict(e=lambda n: n.populations[1].params.update({"v_rest": float("inf")})),
                           "network.populations[1].params.v_rest"),
    "reset above threshold": (dict(e=lambda n: n.populations[0].params.update({"v_reset": -40.0})),
                              "network.populations[0].params.v_reset"),
    "regime on a LIF": (dict(e=pop(0, izhikevich_regime="chattering")), "network.populations[0].izhikevich_regime"),
    "unknown regime": (dict(e=pop(0, model=S.NEURON_MODEL_IZHIKEVICH, izhikevich_regime="sleepy")),
                       "network.populations[0].izhikevich_regime"),
    "initial value of no variable": (dict(e=lambda n: n.populations[0].initial["w"].CopyFrom(S.InitialValue())),
                                     "network.populations[0].initial.w"),
    "negative initial sd": (dict(e=lambda n: n.populations[0].initial["v"].CopyFrom(
        S.InitialValue(distribution=S.DISTRIBUTION_NORMAL, a=-55, b=-1))), "network.populations[0].initial.v.b"),
    "unknown source": (dict(e=proj(0, source="thalamus")), "network.projections[0].source"),
    "unknown target": (dict(e=proj(0, target="thalamus")), "network.projections[0].target"),
    "no connectivity rule": (dict(e=conn(0, rule=S.CONNECTIVITY_RULE_UNSPECIFIED)),
                             "network.projections[0].connectivity.rule"),
    "probability above 1": (dict(e=conn(0, value=1.5)), "network.projections[0].connectivity.value"),
    "negative probability": (dict(e=conn(0, value=-0.1)), "network.projections[0].connectivity.value"),
    "NaN probability": (dict(e=conn(0, value=float("nan"))), "network.projections[0].connectivity.value"),
    "in-degree above the source size": (dict(e=conn(0, rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=81)),
                                        "network.projections[0].connectivity.value"),
    "fractional in-degree": (dict(e=conn(0, rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=2.5)),
                             "network.projections[0].connectivity.value"),
    "one-to-one of unequal sizes": (dict(e=conn(0, rule=S.CONNECTIVITY_RULE_ONE_TO_ONE)),
                                    "network.projections[0].connectivity.rule"),
    "negative delay": (dict(e=proj(0, delay_ms=-1.0)), "network.projections[0].delay_ms"),
    "NaN weight": (dict(e=proj(0, weight=float("nan"))), "network.projections[0].weight"),
    "negative conductance": (dict(e=pop(1, model=S.NEURON_MODEL_LIF_COBA), f=proj(0, weight=-1.0)),
                             "network.projections[0].weight"),
    "plastic weight above w_max": (dict(e=lambda n: n.projections[0].plasticity.CopyFrom(S.Plasticity(w_max=0.5))),
                                   "network.projections[0].weight"),
    "zero plasticity time constant": (dict(e=lambda n: n.projections[0].plasticity.CopyFrom(
        S.Plasticity(tau_plus=0.0, w_max=2.0))), "network.projections[0].plasticity.tau_plus"),
    "input to a poisson population": (dict(e=pop(1, model=S.NEURON_MODEL_POISSON)), "network.projections[0].target"),
    "negative input rate": (dict(e=add("poisson_inputs", S.PoissonInput(target="exc", rate_hz=-1.0, weight=1.0))),
                            "network.poisson_inputs[0].rate_hz"),
    "input stopping before it starts": (dict(e=add("poisson_inputs", S.PoissonInput(
        target="exc", rate_hz=1.0, weight=1.0, start_ms=10.0, stop_ms=5.0))), "network.poisson_inputs[0].stop_ms"),
    "current onto missing neurons": (dict(e=add("current_inputs", S.CurrentInput(target="inh", amplitude=1.0,
                                                                                  neurons=[3, 20]))),
                                     "network.current_inputs[0].neurons"),
    "reward before the start": (dict(e=add("rewards", S.Reward(time_ms=-1.0))), "network.rewards[0].time_ms"),
    "monitor of no neuron": (dict(e=add("state_monitors", S.StateMonitor(population="exc"))),
                             "network.state_monitors[0].neurons"),
    "monitor of an unknown variable": (dict(e=add("state_monitors", S.StateMonitor(population="exc", neurons=[0],
                                                                                    variables=["u"]))),
                                       "network.state_monitors[0].variables"),
    "monitor faster than dt": (dict(e=add("state_monitors", S.StateMonitor(population="exc", neurons=[0],
                                                                            every_ms=0.01))),
                               "network.state_monitors[0].every_ms"),
    "recording an unknown population": (dict(e=lambda n: n.record_spikes.populations.append("l5")),
                                        "network.record_spikes.populations"),
    "circuit and populations": (dict(e=lambda n: n.vogels_abbott.CopyFrom(S.VogelsAbbott(
        kind=S.VOGELS_ABBOTT_KIND_CUBA))), "network.populations"),
}

BAD_CIRCUITS = {
    "no Vogels-Abbott kind": (S.Network(vogels_abbott=S.VogelsAbbott(n_neurons=100)), "network.vogels_abbott.kind"),
    "too few neurons": (S.Network(vogels_abbott=S.VogelsAbbott(kind=S.VOGELS_ABBOTT_KIND_COBA, n_neurons=3)),
                        "network.vogels_abbott.n_neurons"),
    "scale above 1": (S.Network(cortical_column=S.CorticalColumn(scale=2.0)), "network.cortical_column.scale"),
    "negative scale": (S.Network(cortical_column=S.CorticalColumn(scale=-0.1)), "network.cortical_column.scale"),
    "NaN stimulus": (S.Network(cortical_column=S.CorticalColumn(stimulus_rate_hz=float("nan"))),
                     "network.cortical_column.stimulus_rate_hz"),
    "negative stimulus": (S.Network(cortical_column=S.CorticalColumn(stimulus_rate_hz=-2.0)),
                          "network.cortical_column.stimulus_rate_hz"),
    "stimulus stops before it starts": (S.Network(cortical_column=S.CorticalColumn(
        stimulus_start_ms=50.0, stimulus_stop_ms=10.0)), "network.cortical_column.stimulus_stop_ms"),
    "stimulus faster than one spike per step": (S.Network(cortical_column=S.CorticalColumn(
        stimulus_rate_hz=20_000.0)), "network.cortical_column"),
    "bad input added to a circuit": (S.Network(cortical_column=S.CorticalColumn(), poisson_inputs=[
        S.PoissonInput(target="L9_exc", rate_hz=1.0, weight=1.0)]), "network.poisson_inputs[0].target"),
    "bad monitor added to a circuit": (S.Network(vogels_abbott=S.VogelsAbbott(kind=S.VOGELS_ABBOTT_KIND_CUBA),
                                                 state_monitors=[S.StateMonitor(population="exc", neurons=[4000])]),
                                       "network.state_monitors[0].neurons"),
    "circuit with a bad dt": (S.Network(cortical_column=S.CorticalColumn(), dt_ms=-1.0), "network.dt_ms"),
}


def check_names(error: RequestError, field: str) -> None:
    assert isinstance(error, ValueError)
    assert error.field == field, str(error)
    assert str(error).startswith(field + " ") or str(error).startswith(field + ":"), str(error)


@pytest.mark.parametrize("case", list(BAD_NETWORKS))
def test_bad_network_names_the_field(case):
    edits, field = BAD_NETWORKS[case]
    with pytest.raises(RequestError) as info:
        network_spec(small_network(**edits))
    check_names(info.value, field)


@pytest.mark.parametrize("case", list(BAD_CIRCUITS))
def test_bad_circuit_names_the_field(case):
    network, field = BAD_CIRCUITS[case]
    with pytest.raises(RequestError) as info:
        network_spec(network)
    check_names(info.value, field)


BAD_REQUESTS = {
    "no network": (S.SimulateRequest(duration_ms=10.0), "network"),
    "no duration": (S.SimulateRequest(network=small_network()), "duration_ms"),
    "negative duration": (S.SimulateRequest(network=small_network(), duration_ms=-5.0), "duration_ms"),
    "NaN duration": (S.SimulateRequest(network=small_network(), duration_ms=float("nan")), "duration_ms"),
    "duration of no step": (S.SimulateRequest(network=small_network(), duration_ms=0.01), "duration_ms"),
    "more steps than int32": (S.SimulateRequest(network=small_network(), duration_ms=3e8), "duration_ms"),
    "bin not a multiple of dt": (S.SimulateRequest(network=small_network(), duration_ms=10.0, bin_ms=0.15), "bin_ms"),
    "bin longer than the run": (S.SimulateRequest(network=small_network(), duration_ms=10.0, bin_ms=20.0), "bin_ms"),
    "negative bin": (S.SimulateRequest(network=small_network(), duration_ms=10.0, bin_ms=-1.0), "bin_ms"),
    "counting an unknown population": (S.SimulateRequest(network=small_network(), duration_ms=10.0,
                                                         count_populations=["exc", "l4"]), "count_populations[1]"),
    "counting a population twice": (S.SimulateRequest(network=small_network(), duration_ms=10.0,
                                                      count_populations=["inh", "inh"]), "count_populations[1]"),
    "counting an unrecorded population": (S.SimulateRequest(
        network=small_network(r=lambda n: n.record_spikes.populations.append("exc")), duration_ms=10.0,
        count_populations=["inh"]), "count_populations[0]"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_names_the_field(case):
    request, field = BAD_REQUESTS[case]
    with pytest.raises(RequestError) as info:
        simulation_plan(request)
    check_names(info.value, field)


# --- the output plan -----------------------------------------------------------------------------


def test_plan_bins_and_counted_populations():
    plan = simulation_plan(S.SimulateRequest(network=small_network(), duration_ms=105.0))
    assert (plan.n_steps, plan.bin_ms, plan.steps_per_bin, plan.n_bins) == (1050, 10.0, 100, 10)
    assert plan.count_populations == ("exc", "inh") and plan.binned_counts_shape == (10, 100)
    assert plan.binned_counts_bytes == 4 * 10 * 100
    ordered = simulation_plan(S.SimulateRequest(network=small_network(), duration_ms=100.0, bin_ms=2.5,
                                                count_populations=["inh", "exc"]))
    assert ordered.count_populations == ("inh", "exc") and ordered.n_bins == 40
    only = simulation_plan(S.SimulateRequest(network=small_network(r=lambda n: n.record_spikes.populations.append(
        "inh")), duration_ms=100.0))
    assert only.count_populations == ("inh",) and only.n_counted_neurons == 20
    none = simulation_plan(S.SimulateRequest(network=small_network(r=lambda n: n.record_spikes.SetInParent()),
                                             duration_ms=100.0))
    assert none.count_populations == () and none.binned_counts_bytes == 0


@pytest.mark.parametrize("every_ms, duration_ms", [(0.1, 10.0), (0.3, 10.0), (1.0, 250.0), (0.7, 33.3)])
def test_planned_trace_samples_are_what_the_engine_records(every_ms, duration_ms):
    network = small_network(m=add("state_monitors", S.StateMonitor(population="inh", neurons=[0, 5],
                                                                    variables=["v", "g_exc"], every_ms=every_ms)))
    plan = simulation_plan(S.SimulateRequest(network=network, duration_ms=duration_ms, bin_ms=0.1))
    result = simulate(plan.spec, duration_ms)
    assert result.traces[0].shape == (plan.trace_samples(0), 2, 2)
    assert plan.trace_bytes(0) == result.traces[0].nbytes


@pytest.mark.parametrize("module", ["services.simulation.requests", "services.simulation.plots"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), extraglobs={"np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0
