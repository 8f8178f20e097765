"""Declarative description of a spiking network: populations, projections, inputs, monitors.

A :class:`NetworkSpec` says *what* to simulate; :func:`services.simulation.core.engine.simulate`
builds it in the compiled engine and runs it. Everything is plain, frozen dataclasses so a spec
can come from a gRPC request, a JSON file or a notebook, and :meth:`NetworkSpec.validate` checks it
before anything is allocated: every error names the field (``populations[1].size``) and the value.

Units throughout: time in ms, membrane potential in mV, rates in Hz. Synaptic state is kept in
two channels per neuron, ``"exc"`` and ``"inh"``, each an exponentially decaying variable:

* ``lif_cuba`` and ``izhikevich``: the channels are currents, in mV of drive (``R·I``) for the LIF
  and in Izhikevich's current units for the Izhikevich neuron; a projection's weight is the jump
  of the channel per spike and may be negative (inhibition in Brian2's CUBA example is -9 mV).
* ``lif_coba``: the channels are conductances relative to the leak conductance (dimensionless,
  as in Brian2's COBA benchmark); weights must be >= 0 and the sign comes from the reversal
  potentials ``e_exc`` and ``e_inh``.

Example
-------
>>> spec = NetworkSpec(
...     populations=(Population("exc", 80, "lif_cuba"), Population("inh", 20, "lif_cuba")),
...     projections=(Projection("exc", "inh", synapse="exc", weight=1.62,
...                             connectivity=Connectivity("fixed_probability", 0.1)),),
...     dt_ms=0.1, seed=1)
>>> spec.validate()
>>> spec.population("inh").size, spec.n_neurons
(20, 100)
>>> NetworkSpec(populations=(Population("exc", 0, "lif_cuba"),)).validate()
Traceback (most recent call last):
...
ValueError: populations[0].size must be a positive integer, got 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

#: Neuron models of the engine and their parameters with defaults. The LIF defaults are the
#: Vogels & Abbott (2005) benchmark values of Brian2's examples (CUBA: ``v_rest=-49`` so the
#: network is self-driven; COBA: ``i_bias=20`` mV); Izhikevich defaults are regular spiking.
MODEL_PARAMETERS: Mapping[str, Mapping[str, float]] = {
    "lif_cuba": {"tau_m": 20.0, "v_rest": -49.0, "v_threshold": -50.0, "v_reset": -60.0,
                 "refractory_ms": 5.0, "tau_exc": 5.0, "tau_inh": 10.0, "i_bias": 0.0},
    "lif_coba": {"tau_m": 20.0, "v_rest": -60.0, "v_threshold": -50.0, "v_reset": -60.0,
                 "refractory_ms": 5.0, "tau_exc": 5.0, "tau_inh": 10.0, "e_exc": 0.0,
                 "e_inh": -80.0, "i_bias": 20.0},
    "izhikevich": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "v_peak": 30.0,
                   "tau_exc": 5.0, "tau_inh": 10.0, "i_bias": 0.0},
    "poisson": {"rate_hz": 10.0, "modulation_frequency_hz": 0.0, "modulation_depth": 0.0,
                "start_ms": 0.0, "stop_ms": math.inf},
}

#: Izhikevich (2003) parameter sets (a, b, c, d) of the classic firing regimes.
IZHIKEVICH_REGIMES: Mapping[str, Mapping[str, float]] = {
    "regular_spiking": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
    "intrinsically_bursting": {"a": 0.02, "b": 0.2, "c": -55.0, "d": 4.0},
    "chattering": {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0},
    "fast_spiking": {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0},
    "low_threshold_spiking": {"a": 0.02, "b": 0.25, "c": -65.0, "d": 2.0},
}

#: State variables a StateMonitor can record, by model.
MODEL_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "lif_cuba": ("v", "g_exc", "g_inh"),
    "lif_coba": ("v", "g_exc", "g_inh"),
    "izhikevich": ("v", "u", "g_exc", "g_inh"),
    "poisson": (),
}

CONNECTIVITY_RULES = ("fixed_probability", "fixed_indegree", "one_to_one", "all_to_all")
SYNAPSE_CHANNELS = ("exc", "inh")
PLASTICITY_RULES = ("stdp", "reward_modulated_stdp")
DTYPES = ("float32", "float64")

#: The engine keeps at most this many delay slots per neuron (the ring buffer of arriving input).
MAX_DELAY_STEPS = 4096
#: Neurons are addressed with int32 in the engine.
MAX_NEURONS = 2**31 - 1


@dataclass(frozen=True)
class InitialValue:
    """How a state variable starts: ``constant`` (``a``), ``uniform`` in [a, b), ``normal`` (mean a, sd b)."""

    distribution: str = "constant"
    a: float = 0.0
    b: float = 0.0

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.distribution == "constant":
            return np.full(n, self.a)
        if self.distribution == "uniform":
            return rng.uniform(self.a, self.b, n)
        return rng.normal(self.a, self.b, n)


@dataclass(frozen=True)
class Population:
    """``size`` neurons of one ``model`` with shared ``params`` (defaults from :data:`MODEL_PARAMETERS`).

    ``initial`` maps a state variable (``"v"``, ``"u"``, ``"g_exc"``, ``"g_inh"``) to its
    :class:`InitialValue`; by default ``v`` is uniform between reset and threshold for LIF neurons
    and ``c`` (with ``u = b·c``) for Izhikevich neurons.
    """

    name: str
    size: int
    model: str = "lif_cuba"
    params: Mapping[str, float] = field(default_factory=dict)
    initial: Mapping[str, InitialValue] = field(default_factory=dict)

    def parameters(self) -> dict[str, float]:
        """The model's defaults overridden by ``params``."""
        return {**MODEL_PARAMETERS[self.model], **{k: float(v) for k, v in self.params.items()}}


@dataclass(frozen=True)
class Connectivity:
    """Which pairs connect: ``fixed_probability`` (each pair independently with probability
    ``value``), ``fixed_indegree`` (each target gets exactly ``value`` distinct sources),
    ``one_to_one`` (source i to target i) or ``all_to_all``."""

    rule: str = "fixed_probability"
    value: float = 0.0
    allow_autapses: bool = False


@dataclass(frozen=True)
class Plasticity:
    """Pair-based STDP with all-to-all trace interaction, optionally reward-modulated.

    ``stdp``: for a pre spike at t_pre and a post spike at t_post, dt = t_post - t_pre, the weight
    changes by ``a_plus·exp(-dt/tau_plus)`` for dt > 0 and by ``-a_minus·exp(dt/tau_minus)``
    for dt < 0, clipped to [0, w_max] (in the channel's weight units, i.e. |weight|).
    ``reward_modulated_stdp`` (a three-factor rule, Izhikevich 2007): the same pairing changes an
    eligibility trace ``c`` (decaying with ``tau_eligibility``) instead of the weight; a dopamine
    signal ``d`` (jumps by each reward's amount, decays with ``tau_dopamine``) turns it into
    weight change, ``dw/dt = learning_rate · d · c``, applied every ``update_interval_ms``.
    """

    rule: str = "stdp"
    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    w_max: float = 1.0
    tau_eligibility: float = 1000.0
    tau_dopamine: float = 200.0
    learning_rate: float = 1.0
    update_interval_ms: float = 1.0


@dataclass(frozen=True)
class Projection:
    """Synapses from population ``source`` onto ``target``'s ``synapse`` channel.

    ``weight`` is the jump of the target channel per presynaptic spike; ``delay_ms`` the
    transmission delay (0: the spike acts before the next update, as in Brian2 without delays).
    """

    source: str
    target: str
    synapse: str = "exc"
    weight: float = 1.0
    delay_ms: float = 0.0
    connectivity: Connectivity = field(default_factory=Connectivity)
    plasticity: Plasticity | None = None


@dataclass(frozen=True)
class PoissonInput:
    """Independent Poisson spike trains onto every neuron of ``target``: ``n_sources`` sources at
    ``rate_hz`` each, each spike adding ``weight`` to the ``synapse`` channel, between ``start_ms``
    and ``stop_ms``. (For shared inputs, such as a thalamus, use a ``poisson`` population.)"""

    target: str
    rate_hz: float
    weight: float
    n_sources: int = 1
    synapse: str = "exc"
    start_ms: float = 0.0
    stop_ms: float = math.inf


@dataclass(frozen=True)
class CurrentInput:
    """A step current of ``amplitude`` (mV of drive for LIF, current units for Izhikevich) added
    to ``target``'s neurons (all, or the indices ``neurons``) from ``start_ms`` to ``stop_ms``."""

    target: str
    amplitude: float
    start_ms: float = 0.0
    stop_ms: float = math.inf
    neurons: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Reward:
    """A dopamine pulse of ``amount`` at ``time_ms`` for the reward-modulated projections."""

    time_ms: float
    amount: float = 1.0


@dataclass(frozen=True)
class StateMonitor:
    """Record ``variables`` of neurons ``neurons`` (indices within ``population``) every ``every_ms``."""

    population: str
    neurons: tuple[int, ...]
    variables: tuple[str, ...] = ("v",)
    every_ms: float = 0.1


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network, its time step, precision and seed. The same spec gives the same spikes."""

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = ()
    poisson_inputs: tuple[PoissonInput, ...] = ()
    current_inputs: tuple[CurrentInput, ...] = ()
    rewards: tuple[Reward, ...] = ()
    state_monitors: tuple[StateMonitor, ...] = ()
    record_spikes: tuple[str, ...] | None = None   # None: every population; () records none
    dt_ms: float = 0.1
    seed: int = 0
    dtype: str = "float32"

    # ------------------------------------------------------------------ lookups
    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    def population(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def population_index(self, name: str) -> int:
        for i, pop in enumerate(self.populations):
            if pop.name == name:
                return i
        raise KeyError(name)

    def offsets(self) -> dict[str, int]:
        """Global index of each population's first neuron (populations are laid out in order)."""
        out, start = {}, 0
        for pop in self.populations:
            out[pop.name] = start
            start += pop.size
        return out

    def with_seed(self, seed: int) -> "NetworkSpec":
        return replace(self, seed=seed)

    # ------------------------------------------------------------------ validation
    def validate(self, duration_ms: float | None = None) -> None:
        """Raise ``ValueError`` naming the first bad field; return None when the spec is sound."""
        _check(self.dtype in DTYPES, "dtype", f"must be one of {DTYPES}", self.dtype)
        _positive_finite(self.dt_ms, "dt_ms")
        _check(isinstance(self.seed, (int, np.integer)) and 0 <= self.seed < 2**63, "seed",
               "must be an integer in [0, 2**63)", self.seed)
        if duration_ms is not None:
            _positive_finite(duration_ms, "duration_ms")
        _check(len(self.populations) > 0, "populations", "must name at least one population",
               len(self.populations))
        names: set[str] = set()
        for i, pop in enumerate(self.populations):
            where = f"populations[{i}]"
            _check(isinstance(pop.name, str) and pop.name != "", f"{where}.name", "must be a non-empty string",
                   pop.name)
            _check(pop.name not in names, f"{where}.name", "is used twice", pop.name)
            names.add(pop.name)
            _check(isinstance(pop.size, (int, np.integer)) and not isinstance(pop.size, bool) and pop.size > 0,
                   f"{where}.size", "must be a positive integer", pop.size)
            _check(pop.model in MODEL_PARAMETERS, f"{where}.model", f"must be one of {tuple(MODEL_PARAMETERS)}",
                   pop.model)
            known = MODEL_PARAMETERS[pop.model]
            for key, value in pop.params.items():
                _check(key in known, f"{where}.params.{key}", f"is not a parameter of {pop.model} "
                       f"(known: {', '.join(known)})", value)
                _finite_or_inf(value, f"{where}.params.{key}", allow_inf=key == "stop_ms")
            _check_model_parameters(pop, where, self.dt_ms)
            for var, init in pop.initial.items():
                _check(var in MODEL_VARIABLES[pop.model], f"{where}.initial.{var}",
                       f"is not a state variable of {pop.model} (known: {MODEL_VARIABLES[pop.model]})", var)
                _check(init.distribution in ("constant", "uniform", "normal"), f"{where}.initial.{var}.distribution",
                       "must be constant, uniform or normal", init.distribution)
                _finite_or_inf(init.a, f"{where}.initial.{var}.a")
                _finite_or_inf(init.b, f"{where}.initial.{var}.b")
                _check(init.distribution != "normal" or init.b >= 0, f"{where}.initial.{var}.b",
                       "(a standard deviation) must be >= 0", init.b)
        _check(self.n_neurons <= MAX_NEURONS, "populations", f"hold {self.n_neurons} neurons; at most "
               f"{MAX_NEURONS} are supported", self.n_neurons)
        for i, proj in enumerate(self.projections):
            self._validate_projection(i, proj, names)
        for i, inp in enumerate(self.poisson_inputs):
            where = f"poisson_inputs[{i}]"
            self._check_target(inp.target, f"{where}.target", names, receives=True)
            _check(inp.synapse in SYNAPSE_CHANNELS, f"{where}.synapse", f"must be one of {SYNAPSE_CHANNELS}",
                   inp.synapse)
            _non_negative_finite(inp.rate_hz, f"{where}.rate_hz")
            _finite_or_inf(inp.weight, f"{where}.weight")
            _check(isinstance(inp.n_sources, (int, np.integer)) and inp.n_sources >= 1, f"{where}.n_sources",
                   "must be a positive integer", inp.n_sources)
            _check(inp.rate_hz * inp.n_sources * self.dt_ms * 1e-3 <= 100.0, f"{where}.rate_hz",
                   "times n_sources gives more than 100 input spikes per neuron per step; use a current "
                   "input for such drive", inp.rate_hz)
            self._check_weight_sign(inp.target, inp.weight, f"{where}.weight")
            _window(inp.start_ms, inp.stop_ms, where)
        for i, cur in enumerate(self.current_inputs):
            where = f"current_inputs[{i}]"
            self._check_target(cur.target, f"{where}.target", names, receives=True)
            _finite_or_inf(cur.amplitude, f"{where}.amplitude")
            _window(cur.start_ms, cur.stop_ms, where)
            if cur.neurons is not None:
                size = self.population(cur.target).size
                idx = np.asarray(cur.neurons)
                _check(idx.size > 0 and np.issubdtype(idx.dtype, np.integer) and idx.min() >= 0 and idx.max() < size,
                       f"{where}.neurons", f"must be indices in [0, {size})", list(cur.neurons)[:5])
        for i, reward in enumerate(self.rewards):
            _non_negative_finite(reward.time_ms, f"rewards[{i}].time_ms")
            _finite_or_inf(reward.amount, f"rewards[{i}].amount")
        for i, mon in enumerate(self.state_monitors):
            where = f"state_monitors[{i}]"
            self._check_target(mon.population, f"{where}.population", names, receives=False)
            pop = self.population(mon.population)
            idx = np.asarray(mon.neurons)
            _check(idx.size > 0 and np.issubdtype(idx.dtype, np.integer) and idx.min() >= 0 and idx.max() < pop.size,
                   f"{where}.neurons", f"must be a non-empty list of indices in [0, {pop.size})", list(mon.neurons)[:5])
            _check(idx.size <= 10_000, f"{where}.neurons", "may name at most 10000 neurons", idx.size)
            _check(len(mon.variables) > 0, f"{where}.variables", "must name at least one variable", mon.variables)
            for var in mon.variables:
                _check(var in MODEL_VARIABLES[pop.model], f"{where}.variables", f"{var!r} is not a state variable "
                       f"of {pop.model} (known: {MODEL_VARIABLES[pop.model]})", var)
            _positive_finite(mon.every_ms, f"{where}.every_ms")
            _check(mon.every_ms >= self.dt_ms * (1 - 1e-9), f"{where}.every_ms", f"must be >= dt_ms ({self.dt_ms})",
                   mon.every_ms)
        if self.record_spikes is not None:
            for name in self.record_spikes:
                _check(name in names, "record_spikes", "names a population that does not exist", name)

    def _validate_projection(self, i: int, proj: Projection, names: set[str]) -> None:
        where = f"projections[{i}]"
        _check(proj.source in names, f"{where}.source", "names a population that does not exist", proj.source)
        self._check_target(proj.target, f"{where}.target", names, receives=True)
        _check(proj.synapse in SYNAPSE_CHANNELS, f"{where}.synapse", f"must be one of {SYNAPSE_CHANNELS}",
               proj.synapse)
        _finite_or_inf(proj.weight, f"{where}.weight")
        self._check_weight_sign(proj.target, proj.weight, f"{where}.weight")
        _non_negative_finite(proj.delay_ms, f"{where}.delay_ms")
        _check(round(proj.delay_ms / self.dt_ms) <= MAX_DELAY_STEPS, f"{where}.delay_ms",
               f"is more than {MAX_DELAY_STEPS} steps of dt_ms={self.dt_ms}", proj.delay_ms)
        conn = proj.connectivity
        _check(conn.rule in CONNECTIVITY_RULES, f"{where}.connectivity.rule", f"must be one of {CONNECTIVITY_RULES}",
               conn.rule)
        n_src, n_tgt = self.population(proj.source).size, self.population(proj.target).size
        if conn.rule == "fixed_probability":
            _check(isinstance(conn.value, (int, float, np.floating)) and math.isfinite(conn.value)
                   and 0.0 <= conn.value <= 1.0, f"{where}.connectivity.value",
                   "(a connection probability) must be in [0, 1]", conn.value)
        elif conn.rule == "fixed_indegree":
            k = conn.value
            limit = n_src - (1 if proj.source == proj.target and not conn.allow_autapses else 0)
            _check(math.isfinite(k) and float(k).is_integer() and 0 <= k <= limit, f"{where}.connectivity.value",
                   f"(an in-degree) must be an integer in [0, {limit}] for a source of {n_src} neurons", k)
        elif conn.rule == "one_to_one":
            _check(n_src == n_tgt, f"{where}.connectivity.rule", f"one_to_one needs equal sizes, got source "
                   f"{n_src} and target {n_tgt}", conn.rule)
        if proj.plasticity is not None:
            pl = proj.plasticity
            _check(pl.rule in PLASTICITY_RULES, f"{where}.plasticity.rule", f"must be one of {PLASTICITY_RULES}",
                   pl.rule)
            for name in ("a_plus", "a_minus", "w_max", "learning_rate"):
                _non_negative_finite(getattr(pl, name), f"{where}.plasticity.{name}")
            for name in ("tau_plus", "tau_minus", "tau_eligibility", "tau_dopamine", "update_interval_ms"):
                _positive_finite(getattr(pl, name), f"{where}.plasticity.{name}")
            _check(abs(proj.weight) <= pl.w_max, f"{where}.weight", f"must lie in [0, w_max={pl.w_max}] in "
                   "magnitude for a plastic projection", proj.weight)

    def _check_target(self, name: str, where: str, names: set[str], *, receives: bool) -> None:
        _check(name in names, where, "names a population that does not exist", name)
        if receives:
            _check(self.population(name).model != "poisson", where, "is a poisson population, which has no "
                   "synapses or membrane to receive input", name)

    def _check_weight_sign(self, target: str, weight: float, where: str) -> None:
        if self.population(target).model == "lif_coba":
            _check(weight >= 0, where, "must be >= 0 onto lif_coba neurons (a conductance; the sign comes "
                   "from the reversal potential)", weight)


def _check_model_parameters(pop: Population, where: str, dt_ms: float) -> None:
    p = pop.parameters()
    if pop.model in ("lif_cuba", "lif_coba"):
        for name in ("tau_m", "tau_exc", "tau_inh"):
            _positive_finite(p[name], f"{where}.params.{name}")
        _non_negative_finite(p["refractory_ms"], f"{where}.params.refractory_ms")
        _check(p["v_reset"] < p["v_threshold"], f"{where}.params.v_reset", "must be below v_threshold "
               f"({p['v_threshold']})", p["v_reset"])
    elif pop.model == "izhikevich":
        for name in ("tau_exc", "tau_inh"):
            _positive_finite(p[name], f"{where}.params.{name}")
        _check(p["c"] < p["v_peak"], f"{where}.params.c", f"(the reset) must be below v_peak ({p['v_peak']})", p["c"])
    elif pop.model == "poisson":
        _non_negative_finite(p["rate_hz"], f"{where}.params.rate_hz")
        _check(p["rate_hz"] * (1 + abs(p["modulation_depth"])) * dt_ms * 1e-3 <= 1.0, f"{where}.params.rate_hz",
               f"is too high for dt_ms={dt_ms}: more than one spike per step", p["rate_hz"])
        _non_negative_finite(p["modulation_frequency_hz"], f"{where}.params.modulation_frequency_hz")
        _window(p["start_ms"], p["stop_ms"], f"{where}.params")


def _check(ok: bool, where: str, what: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{where} {what}, got {value!r}")


def _finite_or_inf(value: object, where: str, *, allow_inf: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and not math.isnan(value) and (allow_inf or math.isfinite(value))
    _check(ok, where, "must be a finite number", value)


def _positive_finite(value: object, where: str) -> None:
    _finite_or_inf(value, where)
    _check(value > 0, where, "must be > 0", value)  # type: ignore[operator]


def _non_negative_finite(value: object, where: str) -> None:
    _finite_or_inf(value, where)
    _check(value >= 0, where, "must be >= 0", value)  # type: ignore[operator]


def _window(start: float, stop: float, where: str) -> None:
    _non_negative_finite(start, f"{where}.start_ms")
    _finite_or_inf(stop, f"{where}.stop_ms", allow_inf=True)
    _check(stop > start, f"{where}.stop_ms", f"must be after start_ms ({start})", stop)


def expected_synapse_count(spec: NetworkSpec, proj: Projection) -> int:
    """Expected number of synapses of ``proj`` (exact for every rule but fixed_probability)."""
    n_src, n_tgt = spec.population(proj.source).size, spec.population(proj.target).size
    rule, value = proj.connectivity.rule, proj.connectivity.value
    same = proj.source == proj.target and not proj.connectivity.allow_autapses
    if rule == "fixed_probability":
        return int(math.ceil(value * n_src * (n_tgt - (1 if same else 0))))
    if rule == "fixed_indegree":
        return int(value) * n_tgt
    if rule == "one_to_one":
        return 0 if same else n_src
    return n_src * (n_tgt - (1 if same else 0))
