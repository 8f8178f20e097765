"""Ready-made circuits: the Vogels & Abbott benchmark networks and a layered cortical column.

Each function returns a :class:`~services.simulation.core.network.NetworkSpec`, so a circuit can
be inspected, modified with :func:`dataclasses.replace`, and simulated like any other spec.

Example
-------
>>> spec = vogels_abbott("coba", n_neurons=4000)
>>> [(p.name, p.size) for p in spec.populations]
[('exc', 3200), ('inh', 800)]
>>> column = cortical_column(scale=0.02, stimulus_rate_hz=20.0)
>>> [p.name for p in column.populations][:4]
['L1_inh', 'L23_exc', 'L23_inh', 'L4_exc']
"""

from __future__ import annotations

import math

from .network import (
    Connectivity, InitialValue, NetworkSpec, PoissonInput, Population, Projection,
)

#: Brian2's example parameters for the Vogels & Abbott (2005) networks as used in the Brette et
#: al. (2007) simulator review: CUBA is Brian2's ``examples/CUBA.py``; COBA the conductance-based
#: benchmark 1 with Brian2's weights in units of the leak conductance and a 20 mV drive.
VOGELS_ABBOTT = {
    "cuba": {"model": "lif_cuba", "w_exc": 60 * 0.27 / 10, "w_inh": -20 * 4.5 / 10,
             "initial_v": InitialValue("uniform", -60.0, -50.0)},
    "coba": {"model": "lif_coba", "w_exc": 0.6, "w_inh": 6.7,
             "initial_v": InitialValue("normal", -55.0, 5.0)},
}


def vogels_abbott(kind: str, n_neurons: int = 4000, *, synapses_per_neuron: int = 80, seed: int = 1,
                  dtype: str = "float32") -> NetworkSpec:
    """The random 80/20 excitatory/inhibitory network of Vogels & Abbott (2005), CUBA or COBA.

    Connections are drawn with probability ``synapses_per_neuron / n_neurons`` (0.02 at the
    original 4,000 neurons), so larger networks keep the in-degree, and the rates, of the original.
    """
    if kind not in VOGELS_ABBOTT:
        raise ValueError(f"kind must be one of {tuple(VOGELS_ABBOTT)}, got {kind!r}")
    if not isinstance(n_neurons, int) or n_neurons < 5:
        raise ValueError(f"n_neurons must be an integer >= 5, got {n_neurons!r}")
    par = VOGELS_ABBOTT[kind]
    n_exc = int(round(0.8 * n_neurons))
    p = min(1.0, synapses_per_neuron / n_neurons)
    populations = (Population("exc", n_exc, par["model"], initial={"v": par["initial_v"]}),
                   Population("inh", n_neurons - n_exc, par["model"], initial={"v": par["initial_v"]}))
    projections = tuple(
        Projection(src, tgt, synapse=src, weight=par["w_exc"] if src == "exc" else par["w_inh"],
                   connectivity=Connectivity("fixed_probability", p))
        for src in ("exc", "inh") for tgt in ("exc", "inh"))
    return NetworkSpec(populations, projections, seed=seed, dtype=dtype)


# ----------------------------------------------------------------------------- cortical column
#: Neurons per population of the full-scale column (Potjans & Diesmann 2014, Table 5; L1 added
#: here as a small purely inhibitory layer, about 1.5% of the neurons).
COLUMN_SIZES = {
    "L1_inh": 1200,
    "L23_exc": 20683, "L23_inh": 5834, "L4_exc": 21915, "L4_inh": 5479,
    "L5_exc": 4850, "L5_inh": 1065, "L6_exc": 14395, "L6_inh": 2948,
}
_PD14 = ("L23_exc", "L23_inh", "L4_exc", "L4_inh", "L5_exc", "L5_inh", "L6_exc", "L6_inh")
#: Connection probabilities target (row) <- source (column) of Potjans & Diesmann (2014), Table 5.
PD14_PROBABILITIES = (
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443),
)
#: L1 interneurons: not in PD14. Chosen here, as an illustration, to be driven by L2/3
#: pyramidal cells and to inhibit L2/3 (their main targets in vivo); these are not measured values.
L1_PROBABILITIES = {("L23_exc", "L1_inh"): 0.05, ("L1_inh", "L23_exc"): 0.05, ("L1_inh", "L23_inh"): 0.05,
                    ("L1_inh", "L1_inh"): 0.05}
#: Thalamic afferents (902 neurons in PD14) and their connection probabilities onto the column.
THALAMUS_SIZE = 902
THALAMIC_PROBABILITIES = {"L4_exc": 0.0983, "L4_inh": 0.0619, "L6_exc": 0.0512, "L6_inh": 0.0196}
#: External (cortico-cortical) Poisson in-degree of each population in PD14, at 8 Hz each.
BACKGROUND_INDEGREE = {"L1_inh": 1500, "L23_exc": 1600, "L23_inh": 1500, "L4_exc": 2100, "L4_inh": 1900,
                       "L5_exc": 2000, "L5_inh": 1900, "L6_exc": 2900, "L6_inh": 2100}

#: LIF parameters of the column (PD14's neurons expressed as a CUBA LIF in mV of drive:
#: tau_m 10 ms, v_rest -65, threshold -50, reset -65, refractory 2 ms, synaptic time constant 0.5 ms).
COLUMN_NEURON = {"tau_m": 10.0, "v_rest": -65.0, "v_threshold": -50.0, "v_reset": -65.0, "refractory_ms": 2.0,
                 "tau_exc": 0.5, "tau_inh": 0.5}


def cortical_column(*, scale: float = 0.05, stimulus_rate_hz: float = 15.0, stimulus_frequency_hz: float = 4.0,
                    stimulus_depth: float = 1.0, stimulus_start_ms: float = 0.0, stimulus_stop_ms: float = math.inf,
                    background_rate_hz: float = 8.0, psp_mv: float = 0.15, relative_inhibition: float = 4.0,
                    seed: int = 1, dtype: str = "float32") -> NetworkSpec:
    """A six-layer cortical column (L1, L2/3, L4, L5, L6; about 20% inhibitory) with a thalamus.

    The layer structure, sizes and connection probabilities are those of the Potjans & Diesmann
    (2014) microcircuit (plus an illustrative L1), scaled to ``scale`` of its 78,000 neurons.
    The thalamus is a population of Poisson neurons whose rate is ``stimulus_rate_hz`` modulated
    at ``stimulus_frequency_hz`` (depth ``stimulus_depth``) between ``stimulus_start_ms`` and
    ``stimulus_stop_ms``; it projects to L4 (and weakly to L6), so the stimulus enters the column
    where it does in cortex. Every neuron also gets independent background Poisson input.

    Downscaling keeps each neuron's mean input: connection probabilities are kept, and weights
    are multiplied by ``1/scale`` so the summed input of the fewer synapses stays that of the
    full column (``psp_mv`` is the full-scale excitatory weight; inhibitory weights are
    ``relative_inhibition`` times stronger). Delays are 1.5 ms (excitatory) and 0.8 ms (inhibitory).
    """
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    sizes = {name: max(1, int(round(n * scale))) for name, n in COLUMN_SIZES.items()}
    populations = tuple(Population(name, sizes[name], "lif_cuba", params=COLUMN_NEURON,
                                   initial={"v": InitialValue("normal", -58.0, 5.0)})
                        for name in COLUMN_SIZES) + (
        Population("thalamus", max(1, int(round(THALAMUS_SIZE * scale))), "poisson",
                   params={"rate_hz": stimulus_rate_hz, "modulation_frequency_hz": stimulus_frequency_hz,
                           "modulation_depth": stimulus_depth, "start_ms": stimulus_start_ms,
                           "stop_ms": stimulus_stop_ms}),)
    # Weights are PSC jumps in mV of drive; with tau_syn << tau_m the PSP peak is about
    # w * tau_syn / tau_m, so w = psp * tau_m / tau_syn.
    w_exc = psp_mv * COLUMN_NEURON["tau_m"] / COLUMN_NEURON["tau_exc"] / scale
    w_inh = -relative_inhibition * w_exc
    pairs: dict[tuple[str, str], float] = {}
    for t, target in enumerate(_PD14):
        for s, source in enumerate(_PD14):
            if PD14_PROBABILITIES[t][s] > 0:
                pairs[(source, target)] = PD14_PROBABILITIES[t][s]
    pairs.update(L1_PROBABILITIES)
    projections = []
    for (source, target), p in pairs.items():
        exc = source.endswith("_exc")
        weight = w_exc * (2.0 if (source, target) == ("L4_exc", "L23_exc") else 1.0) if exc else w_inh
        projections.append(Projection(source, target, synapse="exc" if exc else "inh", weight=weight,
                                      delay_ms=1.5 if exc else 0.8, connectivity=Connectivity("fixed_probability", p)))
    for target, p in THALAMIC_PROBABILITIES.items():
        projections.append(Projection("thalamus", target, synapse="exc", weight=w_exc, delay_ms=1.5,
                                      connectivity=Connectivity("fixed_probability", p)))
    # Background: K_ext independent 8 Hz sources per neuron, full-scale weight (their number is
    # not scaled, so neither is their weight).
    background = tuple(PoissonInput(name, rate_hz=background_rate_hz, weight=w_exc * scale,
                                    n_sources=BACKGROUND_INDEGREE[name], synapse="exc")
                       for name in COLUMN_SIZES)
    return NetworkSpec(populations, tuple(projections), poisson_inputs=background, seed=seed, dtype=dtype)
