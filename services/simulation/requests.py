"""From a ``SimulateRequest`` to what the engine runs: a validated NetworkSpec and a plan of outputs.

Transport-free (it reads the generated messages, nothing else of gRPC), so it is unit-tested on
its own. Every bad input raises :class:`RequestError`, a ``ValueError`` whose message starts with
the path of the request field at fault (``network.populations[0].size must be a positive
integer, got 0``) and whose ``field`` holds that path for the ``ErrorDetail``. The core's own
validation (:meth:`NetworkSpec.validate`) names fields relative to the spec; they are prefixed
with ``network.`` here, and the indices of inputs added to a ready-made circuit are counted
from the request's lists, not the circuit's.

Defaults of unset fields are documented in ``simulation.proto``: they are the engine's.

Example
-------
>>> from neuromesh.simulation.v1 import simulation_pb2 as S
>>> network = S.Network(cortical_column=S.CorticalColumn(scale=0.02, stimulus_rate_hz=20.0), seed=3)
>>> spec = network_spec(network)
>>> spec == cortical_column(scale=0.02, stimulus_rate_hz=20.0, seed=3)
True
>>> plan = simulation_plan(S.SimulateRequest(network=network, duration_ms=300.0))
>>> plan.n_bins, plan.bin_ms, plan.binned_counts_shape
(30, 10.0, (30, 1586))
>>> network_spec(S.Network(populations=[S.Population(name="a", size=0)]))
Traceback (most recent call last):
...
services.simulation.requests.RequestError: network.populations[0].size must be a positive integer, got 0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Callable

from neuromesh.simulation.v1 import simulation_pb2 as S
from services.simulation.core.circuits import cortical_column, vogels_abbott
from services.simulation.core.network import (
    IZHIKEVICH_REGIMES, MAX_NEURONS, Connectivity, CurrentInput, InitialValue, NetworkSpec, Plasticity,
    PoissonInput, Population, Projection, Reward, StateMonitor,
)

__all__ = ["DEFAULT_BIN_MS", "DEFAULT_DT_MS", "RequestError", "SimulationPlan", "network_spec", "simulation_plan"]

DEFAULT_DT_MS = 0.1
DEFAULT_BIN_MS = 10.0
#: The engine counts steps in int32.
MAX_STEPS = 2**31 - 1
#: Bins of the population rates held in memory during a run (8 bytes per bin and population).
MAX_BINS = 10_000_000

_MODELS = {S.NEURON_MODEL_UNSPECIFIED: "lif_cuba", S.NEURON_MODEL_LIF_CUBA: "lif_cuba",
           S.NEURON_MODEL_LIF_COBA: "lif_coba", S.NEURON_MODEL_IZHIKEVICH: "izhikevich",
           S.NEURON_MODEL_POISSON: "poisson"}
_DISTRIBUTIONS = {S.DISTRIBUTION_UNSPECIFIED: "constant", S.DISTRIBUTION_CONSTANT: "constant",
                  S.DISTRIBUTION_UNIFORM: "uniform", S.DISTRIBUTION_NORMAL: "normal"}
_SYNAPSES = {S.SYNAPSE_CHANNEL_UNSPECIFIED: "exc", S.SYNAPSE_CHANNEL_EXC: "exc", S.SYNAPSE_CHANNEL_INH: "inh"}
_RULES = {S.CONNECTIVITY_RULE_FIXED_PROBABILITY: "fixed_probability",
          S.CONNECTIVITY_RULE_FIXED_INDEGREE: "fixed_indegree", S.CONNECTIVITY_RULE_ONE_TO_ONE: "one_to_one",
          S.CONNECTIVITY_RULE_ALL_TO_ALL: "all_to_all"}
_PLASTICITY = {S.PLASTICITY_RULE_UNSPECIFIED: "stdp", S.PLASTICITY_RULE_STDP: "stdp",
               S.PLASTICITY_RULE_REWARD_MODULATED_STDP: "reward_modulated_stdp"}
_DTYPES = {S.DTYPE_UNSPECIFIED: "float32", S.DTYPE_FLOAT32: "float32", S.DTYPE_FLOAT64: "float64"}
_VOGELS_ABBOTT = {S.VOGELS_ABBOTT_KIND_CUBA: "cuba", S.VOGELS_ABBOTT_KIND_COBA: "coba"}
#: The lists of a Network that are appended to a circuit's own.
_EXTENSIBLE = ("poisson_inputs", "current_inputs", "rewards", "state_monitors")


class RequestError(ValueError):
    """Bad input in a request; ``field`` is the dotted path of the field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _fail(field: str, what: str, value: object) -> RequestError:
    return RequestError(f"{field} {what}, got {value!r}", field=field)


def _enum(table: dict[int, str], value: int, field: str, enum_type) -> str:
    if value not in table:
        known = ", ".join(enum_type.Name(v) for v in table)
        raise _fail(field, f"must be one of {known}", enum_type.Name(value) if value in enum_type.values()
                    else value)
    return table[value]


def _finite(value: float, field: str, *, minimum: float | None = None, positive: bool = False) -> float:
    if not math.isfinite(value):
        raise _fail(field, "must be a finite number", value)
    if positive and value <= 0:
        raise _fail(field, "must be > 0", value)
    if minimum is not None and value < minimum:
        raise _fail(field, f"must be >= {minimum}", value)
    return float(value)


def _optional(message, name: str, default: float) -> float:
    return getattr(message, name) if message.HasField(name) else default


# ------------------------------------------------------------------------------------------------
# messages -> dataclasses


def _population(msg: S.Population, where: str) -> Population:
    model = _enum(_MODELS, msg.model, f"{where}.model", S.NeuronModel)
    params: dict[str, float] = {}
    if msg.izhikevich_regime:
        if model != "izhikevich":
            raise _fail(f"{where}.izhikevich_regime", f"applies to izhikevich neurons, not {model}",
                        msg.izhikevich_regime)
        if msg.izhikevich_regime not in IZHIKEVICH_REGIMES:
            raise _fail(f"{where}.izhikevich_regime", f"must be one of {', '.join(IZHIKEVICH_REGIMES)}",
                        msg.izhikevich_regime)
        params.update(IZHIKEVICH_REGIMES[msg.izhikevich_regime])
    params.update(sorted(msg.params.items()))
    initial = {var: InitialValue(_enum(_DISTRIBUTIONS, init.distribution, f"{where}.initial.{var}.distribution",
                                       S.Distribution), init.a, init.b)
               for var, init in sorted(msg.initial.items())}
    if msg.size > MAX_NEURONS:
        raise _fail(f"{where}.size", f"must be at most {MAX_NEURONS}", msg.size)
    return Population(msg.name, int(msg.size), model, params=params, initial=initial)


def _projection(msg: S.Projection, where: str) -> Projection:
    conn = msg.connectivity
    if conn.rule == S.CONNECTIVITY_RULE_UNSPECIFIED:
        raise _fail(f"{where}.connectivity.rule", "is required (fixed_probability, fixed_indegree, one_to_one or "
                    "all_to_all)", S.ConnectivityRule.Name(conn.rule))
    rule = _enum(_RULES, conn.rule, f"{where}.connectivity.rule", S.ConnectivityRule)
    plasticity = None
    if msg.HasField("plasticity"):
        pl = msg.plasticity
        defaults = Plasticity()
        plasticity = Plasticity(rule=_enum(_PLASTICITY, pl.rule, f"{where}.plasticity.rule", S.PlasticityRule),
                                **{f.name: _optional(pl, f.name, getattr(defaults, f.name))
                                   for f in fields(Plasticity) if f.name != "rule"})
    return Projection(msg.source, msg.target, synapse=_enum(_SYNAPSES, msg.synapse, f"{where}.synapse",
                                                            S.SynapseChannel),
                      weight=msg.weight, delay_ms=msg.delay_ms,
                      connectivity=Connectivity(rule, conn.value, conn.allow_autapses), plasticity=plasticity)


def _poisson_input(msg: S.PoissonInput, where: str) -> PoissonInput:
    return PoissonInput(msg.target, rate_hz=msg.rate_hz, weight=msg.weight, n_sources=int(msg.n_sources or 1),
                        synapse=_enum(_SYNAPSES, msg.synapse, f"{where}.synapse", S.SynapseChannel),
                        start_ms=msg.start_ms, stop_ms=_optional(msg, "stop_ms", math.inf))


def _current_input(msg: S.CurrentInput, where: str) -> CurrentInput:
    return CurrentInput(msg.target, amplitude=msg.amplitude, start_ms=msg.start_ms,
                        stop_ms=_optional(msg, "stop_ms", math.inf),
                        neurons=tuple(int(i) for i in msg.neurons) if len(msg.neurons) else None)


def _reward(msg: S.Reward, where: str) -> Reward:
    return Reward(msg.time_ms, amount=_optional(msg, "amount", 1.0))


def _state_monitor(msg: S.StateMonitor, where: str, dt_ms: float) -> StateMonitor:
    return StateMonitor(msg.population, tuple(int(i) for i in msg.neurons),
                        variables=tuple(msg.variables) or ("v",), every_ms=msg.every_ms or dt_ms)


def _circuit(network: S.Network, where: str, *, seed: int, dtype: str) -> NetworkSpec:
    kind = network.WhichOneof("circuit")
    here = f"{where}.{kind}"
    for name in ("populations", "projections"):
        if len(getattr(network, name)):
            raise _fail(f"{where}.{name}", f"must be empty when {here} names the circuit (it brings its own)",
                        f"{len(getattr(network, name))} {name}")
    try:
        if kind == "vogels_abbott":
            va = network.vogels_abbott
            if va.kind == S.VOGELS_ABBOTT_KIND_UNSPECIFIED:
                raise _fail(f"{here}.kind", "is required (CUBA or COBA)", S.VogelsAbbottKind.Name(va.kind))
            n = int(va.n_neurons or 4000)
            if not 5 <= n <= MAX_NEURONS:
                raise _fail(f"{here}.n_neurons", f"must be an integer in [5, {MAX_NEURONS}]", n)
            k = int(va.synapses_per_neuron or 80)
            if k < 0:
                raise _fail(f"{here}.synapses_per_neuron", "must be >= 0", k)
            return vogels_abbott(_enum(_VOGELS_ABBOTT, va.kind, f"{here}.kind", S.VogelsAbbottKind), n,
                                 synapses_per_neuron=k, seed=seed, dtype=dtype)
        col = network.cortical_column
        scale = col.scale or 0.05
        if not (math.isfinite(scale) and 0 < scale <= 1):
            raise _fail(f"{here}.scale", "must be in (0, 1]", scale)
        options = {
            "stimulus_rate_hz": _finite(_optional(col, "stimulus_rate_hz", 15.0), f"{here}.stimulus_rate_hz",
                                        minimum=0.0),
            "stimulus_frequency_hz": _finite(_optional(col, "stimulus_frequency_hz", 4.0),
                                             f"{here}.stimulus_frequency_hz", minimum=0.0),
            "stimulus_depth": _finite(_optional(col, "stimulus_depth", 1.0), f"{here}.stimulus_depth", minimum=0.0),
            "stimulus_start_ms": _finite(col.stimulus_start_ms, f"{here}.stimulus_start_ms", minimum=0.0),
            "background_rate_hz": _finite(_optional(col, "background_rate_hz", 8.0), f"{here}.background_rate_hz",
                                          minimum=0.0),
            "psp_mv": _finite(_optional(col, "psp_mv", 0.15), f"{here}.psp_mv", minimum=0.0),
            "relative_inhibition": _finite(_optional(col, "relative_inhibition", 4.0),
                                           f"{here}.relative_inhibition", minimum=0.0),
        }
        stop = _optional(col, "stimulus_stop_ms", math.inf)
        if math.isnan(stop) or stop <= options["stimulus_start_ms"]:
            raise _fail(f"{here}.stimulus_stop_ms", f"must be after stimulus_start_ms "
                        f"({options['stimulus_start_ms']})", stop)
        return cortical_column(scale=scale, stimulus_stop_ms=stop, seed=seed, dtype=dtype, **options)
    except RequestError:
        raise
    except ValueError as exc:  # the circuit's own checks: "<field> must ..."
        name = str(exc).split(" ", 1)[0]
        raise RequestError(f"{here}.{exc}", field=f"{here}.{name}") from exc


def network_spec(network: S.Network, *, field: str = "network") -> NetworkSpec:
    """The validated :class:`NetworkSpec` a ``Network`` message describes.

    Raises
    ------
    RequestError
        Naming the field (``network.projections[2].connectivity.value``) and the value.
    """
    dt_ms = network.dt_ms if network.HasField("dt_ms") else DEFAULT_DT_MS
    dtype = _enum(_DTYPES, network.dtype, f"{field}.dtype", S.Dtype)
    seed = int(network.seed)
    if network.WhichOneof("circuit") is not None:
        base = _circuit(network, field, seed=seed, dtype=dtype)
    else:
        base = NetworkSpec(
            populations=tuple(_population(p, f"{field}.populations[{i}]") for i, p in enumerate(network.populations)),
            projections=tuple(_projection(p, f"{field}.projections[{i}]") for i, p in enumerate(network.projections)),
            seed=seed, dtype=dtype)
    builders: dict[str, Callable] = {"poisson_inputs": _poisson_input, "current_inputs": _current_input,
                                     "rewards": _reward,
                                     "state_monitors": lambda m, w: _state_monitor(m, w, dt_ms)}
    extra = {name: tuple(builders[name](m, f"{field}.{name}[{i}]") for i, m in enumerate(getattr(network, name)))
             for name in _EXTENSIBLE}
    spec = replace(base, dt_ms=dt_ms, seed=seed, dtype=dtype,
                   record_spikes=tuple(network.record_spikes.populations) if network.HasField("record_spikes")
                   else None,
                   **{name: getattr(base, name) + extra[name] for name in _EXTENSIBLE})
    try:
        spec.validate()
    except ValueError as exc:
        raise _renamed(exc, field, spec, {name: len(getattr(base, name)) for name in _EXTENSIBLE},
                       network.WhichOneof("circuit")) from exc
    return spec


def _renamed(exc: ValueError, field: str, spec: NetworkSpec, circuit_counts: dict[str, int],
             circuit: str | None) -> RequestError:
    """The core's "<spec path> <what>" error as one naming the request's field."""
    message = str(exc)
    path, _, rest = message.partition(" ")
    match = re.match(r"^(\w+)\[(\d+)\](.*)$", path)
    if circuit is not None:
        if match and match.group(1) in circuit_counts and int(match.group(2)) >= circuit_counts[match.group(1)]:
            # an input the request added to the circuit: count it in the request's list
            path = f"{match.group(1)}[{int(match.group(2)) - circuit_counts[match.group(1)]}]{match.group(3)}"
        elif path not in ("dt_ms", "seed", "dtype", "record_spikes"):
            # something of the circuit's own, made bad by one of its parameters: say which part
            if match and match.group(1) == "populations":
                message = f"{path} (of {spec.populations[int(match.group(2))].name}) {rest}"
            return RequestError(f"{field}.{circuit}: {message}", field=f"{field}.{circuit}")
    if path == "record_spikes":
        path = "record_spikes.populations"
    return RequestError(f"{field}.{path} {rest}", field=f"{field}.{path}")


# ------------------------------------------------------------------------------------------------
# the whole request


@dataclass(frozen=True)
class SimulationPlan:
    """What a ``SimulateRequest`` asks for, checked: the network, the run, the outputs' shapes."""

    spec: NetworkSpec
    duration_ms: float
    n_steps: int
    bin_ms: float
    steps_per_bin: int
    n_bins: int
    #: populations whose neurons are columns of the binned counts, in column order
    count_populations: tuple[str, ...]
    #: store every synapse (pre id, post id, weight) for the structural graph
    record_connectivity: bool = False

    @property
    def n_counted_neurons(self) -> int:
        return sum(self.spec.population(name).size for name in self.count_populations)

    @property
    def binned_counts_shape(self) -> tuple[int, int]:
        return self.n_bins, self.n_counted_neurons

    @property
    def binned_counts_bytes(self) -> int:
        return 4 * self.n_bins * self.n_counted_neurons   # float32

    def trace_samples(self, index: int) -> int:
        """Samples state monitor ``index`` records: one every ``every`` steps, the first at step 0."""
        mon = self.spec.state_monitors[index]
        every = max(1, int(round(mon.every_ms / self.spec.dt_ms)))
        return -(-self.n_steps // every)

    def trace_bytes(self, index: int) -> int:
        mon = self.spec.state_monitors[index]
        return 8 * self.trace_samples(index) * len(mon.variables) * len(mon.neurons)

    @property
    def rates_bytes(self) -> int:
        return 8 * self.n_bins * len(self.spec.populations)


def simulation_plan(request: S.SimulateRequest) -> SimulationPlan:
    """Check a whole ``SimulateRequest``; raise :class:`RequestError` naming the first bad field."""
    if not request.HasField("network"):
        raise RequestError("network is required: populations and projections, or a circuit", field="network")
    spec = network_spec(request.network)
    duration = _finite(request.duration_ms, "duration_ms", positive=True)
    n_steps = int(round(duration / spec.dt_ms))
    if n_steps < 1:
        raise _fail("duration_ms", f"is shorter than one step of dt_ms={spec.dt_ms}", duration)
    if n_steps > MAX_STEPS:
        raise _fail("duration_ms", f"is more than {MAX_STEPS} steps of dt_ms={spec.dt_ms}", duration)
    bin_ms = _finite(request.bin_ms or DEFAULT_BIN_MS, "bin_ms", positive=True)
    steps_per_bin = int(round(bin_ms / spec.dt_ms))
    if steps_per_bin < 1 or abs(steps_per_bin * spec.dt_ms - bin_ms) > 1e-9 * bin_ms:
        raise _fail("bin_ms", f"must be a multiple of dt_ms={spec.dt_ms}", bin_ms)
    n_bins = n_steps // steps_per_bin
    if n_bins < 1:
        raise _fail("bin_ms", f"must be at most duration_ms ({duration})", bin_ms)
    if n_bins > MAX_BINS:
        raise _fail("bin_ms", f"gives {n_bins} bins, more than {MAX_BINS}; use longer bins", bin_ms)
    recorded = [p.name for p in spec.populations] if spec.record_spikes is None else list(spec.record_spikes)
    counted = tuple(request.count_populations) or tuple(p.name for p in spec.populations if p.name in recorded)
    if request.count_populations:
        seen: set[str] = set()
        for i, name in enumerate(counted):
            where = f"count_populations[{i}]"
            if name in seen:
                raise _fail(where, "names a population twice", name)
            seen.add(name)
            if name not in {p.name for p in spec.populations}:
                raise _fail(where, "names a population that does not exist", name)
            if name not in recorded:
                raise _fail(where, "names a population whose spikes are not recorded (network.record_spikes)", name)
    return SimulationPlan(spec=spec, duration_ms=duration, n_steps=n_steps,
                          bin_ms=steps_per_bin * spec.dt_ms, steps_per_bin=steps_per_bin, n_bins=n_bins,
                          count_populations=counted, record_connectivity=request.record_connectivity)
