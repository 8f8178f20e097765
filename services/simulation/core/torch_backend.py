"""Run a :class:`~services.simulation.core.network.NetworkSpec` with torch, on a CUDA GPU when one is present.

:class:`TorchSimulation` has the interface of :class:`~services.simulation.core.engine.Simulation`
(``run`` with the same chunks, reports and summary; ``weights``, ``connections``, ``state``,
``monitor_times_ms``) and implements the same step as ``native/engine.cpp``:

1. state monitors record at the start of the step;
2. injected currents switch on/off, Poisson drive is added to the channels;
3. the neurons integrate (LIF CUBA with exact propagators, LIF COBA forward Euler on ``v`` with
   exact decay of the conductances, Izhikevich forward Euler; a LIF neuron integrates again once
   ``step - spike_step >= refractory steps``), cross threshold and reset;
4. the step's spikes are delivered: undelayed synapses add their weight to the target channel
   right away, a delay of ``d`` steps goes into a ring slot that joins the channel at the end of
   step ``s + d``.

The connectivity and the initial state are built on the CPU by the compiled engine itself and
read back (``engine.Simulation.connections`` / ``state``), so they are *identical* to the CPU
engine's for the same spec. The synapses are then kept on the device as one CSR table over all
neurons (row start and out-degree, int64, per neuron; target slot int32 and projection id
int16 per synapse) and delivered event-driven: the step's spiking neurons are found with
``nonzero``, their rows expanded with ``repeat_interleave`` and the weights scattered with
``index_add_`` into the channels (or the delay ring). There is one host synchronisation per step
(a small vector: spikes per population and synaptic events, so the expansion needs no further
one); spikes, counts and traces stay on the device until the end of a chunk.

What differs from the CPU engine
--------------------------------
* Random numbers: Poisson populations and Poisson drive use torch's generator on the device,
  seeded from ``spec.seed``. They are statistically equivalent to the engine's counter-based
  streams, not the same draws, so networks with Poisson input do not give the same spikes
  (the same spec does give the same spikes run after run with torch on the CPU).
* Float rounding: float32 networks are integrated with the engine's rounding, including the
  multiply-adds its compiler fused into FMA instructions (:func:`engine_fuses_multiply_add`
  finds out whether the installed build has them; torch gets the single rounding by computing
  the multiply-add in float64), so single neurons, feed-forward paths and even the recurrent
  Vogels-Abbott networks run bit for bit as on the CPU engine when torch runs on the CPU. The
  inputs that reach one neuron in one step are summed spike by spike (the engine: delivery unit
  by unit), which is the same order unless one neuron gets, on one channel, input from two
  projections in one step. float64 networks differ in the last bits (torch has no float64 FMA).
  On CUDA, ``index_add_`` accumulates with atomics, so the order of the sums, and with it the
  spikes of recurrent (chaotic) networks, vary from run to run: only their statistics agree.
* Plasticity (STDP, reward-modulated STDP) is not implemented here: a plastic spec raises
  ``ValueError``; run it with ``device="cpu"``.

Speed: a step costs a few dozen small kernel launches and one synchronisation whatever the size
of the network, a fixed cost of the order of a few hundred microseconds per step, so networks
that the compiled engine steps in microseconds (the 4,000-neuron benchmarks) run faster on the
CPU; the GPU pays off when a step has much work (millions of neurons, 10^8 synapses and more).
``AUTO_GPU_MIN_SYNAPSES`` lets :func:`make_simulation` keep small networks on the CPU.

Example
-------
>>> from services.simulation.core.network import CurrentInput, NetworkSpec, Population
>>> spec = NetworkSpec(populations=(Population("cell", 1, "lif_cuba",
...                                            params={"v_rest": -60.0, "refractory_ms": 2.0}),),
...                    current_inputs=(CurrentInput("cell", amplitude=15.0),), seed=3)
>>> sim = make_simulation(spec, device="torch-cpu")   # device="cuda" (or None) on a GPU machine
>>> chunks = []
>>> summary = sim.run(250.0, on_chunk=chunks.append)
>>> steps = np.concatenate([c.spike_steps for c in chunks])
>>> summary.spikes, np.diff(steps[:3]) * spec.dt_ms   # as the CPU engine: 23.9 ms apart
(10, array([23.9, 23.9]))
>>> ref = []
>>> _ = make_simulation(spec, device="cpu").run(250.0, on_chunk=ref.append)
>>> bool(np.array_equal(steps, np.concatenate([c.spike_steps for c in ref])))
True

The connectivity is the CPU engine's:

>>> from services.simulation.core.circuits import vogels_abbott
>>> va = vogels_abbott("cuba", 500)
>>> on_torch, on_cpu = TorchSimulation(va, device="torch-cpu"), make_simulation(va, device="cpu")
>>> on_torch.synapse_count == on_cpu.synapse_count
True
>>> all(np.array_equal(a, b) for i in range(len(va.projections))
...     for a, b in zip(on_torch.connections(i), on_cpu.connections(i)))
True
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import engine
from .engine import Chunk, ChunkFn, NetworkTooLarge, ReportFn, RunSummary
from .network import NetworkSpec, expected_synapse_count

try:  # the CPU engine works without torch; only this backend needs it
    import torch
except ImportError:  # pragma: no cover - torch is a dependency of the project
    torch = None  # type: ignore[assignment]

#: ``make_simulation(device=None)`` picks the GPU only for networks with at least this many
#: expected synapses (0: whenever a GPU is present and the spec has no plasticity). An estimate,
#: not yet measured on a GPU: the engine steps 5 million synapses (COBA 64,000) in about 100 us,
#: less than the GPU backend's fixed cost per step; at 10^8 synapses the CPU is memory-bound.
AUTO_GPU_MIN_SYNAPSES = 20_000_000
#: Fraction of the device's free memory a network may take (the rest is torch's and other users').
DEVICE_MEMORY_FRACTION = 0.8
#: Synapses moved to the device per block while building (bounds the build's temporary memory).
BUILD_BLOCK_SYNAPSES = 1 << 22
#: Synaptic events expanded at once; a step with more is delivered in batches of spikes.
EVENT_BATCH = 1 << 22
#: Bytes of temporaries per expanded synaptic event (indices, slots, weights).
_BYTES_PER_EVENT = 48
#: Rows of the state matrix.
_ROWS = {"v": 0, "u": 1, "g_exc": 2, "g_inh": 3}
_NEVER = np.iinfo(np.int64).max
_LONG_AGO = -(2**62)


# ----------------------------------------------------------------------------- helpers
def _require_torch() -> None:
    if torch is None:  # pragma: no cover
        raise RuntimeError("the torch backend needs torch; install it or use device='cpu'")


def _llround(x: float) -> int:
    """C's llround (half away from zero), as the engine rounds times to steps."""
    if not math.isfinite(x):
        return _NEVER
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def has_plasticity(spec: NetworkSpec) -> bool:
    return any(p.plasticity is not None for p in spec.projections)


def cuda_available() -> bool:
    return torch is not None and torch.cuda.is_available()


def resolve_device(device: Any) -> "torch.device":
    """``"torch-cpu"`` -> the CPU; ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` as they are."""
    _require_torch()
    if isinstance(device, str) and device == "torch-cpu":
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'torch-cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA devices")
        return torch.device("cuda", index)
    if dev.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'torch-cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def device_memory_limit_bytes(device: "torch.device") -> int:
    """``DEVICE_MEMORY_FRACTION`` of the free memory of ``device`` (host memory for the CPU)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * DEVICE_MEMORY_FRACTION)
    return engine.available_memory_bytes()


def estimate_device_memory_bytes(spec: NetworkSpec) -> dict[str, int]:
    """Bytes :class:`TorchSimulation` will allocate on the device for ``spec``, by component.

    Synapse counts of ``fixed_probability`` projections are their expectation plus four standard
    deviations, as in :func:`~services.simulation.core.engine.estimate_memory_bytes`.

    >>> from services.simulation.core.network import Connectivity, Population, Projection
    >>> spec = NetworkSpec((Population("p", 1000),), (Projection("p", "p",
    ...                    connectivity=Connectivity("fixed_indegree", 100)),))
    >>> estimate_device_memory_bytes(spec)["synapses"]   # 100,000 synapses of 4 + 2 bytes
    600000
    """
    real = 4 if spec.dtype == "float32" else 8
    n = spec.n_neurons
    max_delay = max([round(p.delay_ms / spec.dt_ms) for p in spec.projections], default=0)
    per_synapse = (4 if 4 * n < 2**31 else 8) + (2 if len(spec.projections) < 2**15 else 4)
    total = largest = 0
    for proj in spec.projections:
        s = expected_synapse_count(spec, proj)
        if proj.connectivity.rule == "fixed_probability":
            s += int(4 * math.sqrt(s + 1))
        total += s
        largest = max(largest, s)
    drive = sum(spec.population(d.target).size for d in spec.poisson_inputs)
    # v, u, g_exc, g_inh, iext; refractory step, row start, out-degree (int64 each); spike mask
    # and its cumulative sum (int64); per-neuron parameters and temporaries: 4 reals more
    neurons = n * (9 * real + 8 + 8 + 8 + 1 + 8)
    return {
        "neurons": neurons,
        "delay_buffers": 2 * (max_delay + 1) * n * real if max_delay else 0,
        "synapses": total * per_synapse,
        # the build's blocks and, later, a step's expanded synaptic events (never both at once)
        "temporaries": max(min(total, EVENT_BATCH) * _BYTES_PER_EVENT,
                           min(largest, BUILD_BLOCK_SYNAPSES) * 40 + 8 * n),
        "poisson_drive": drive * (3 * real + 8),
    }


def _scaled(report: ReportFn | None, start: float, span: float) -> ReportFn | None:
    """``report`` with ``fraction_done`` mapped into [start, start + span] (build stages in turn)."""
    if report is None:
        return None

    def scaled(**kwargs: Any) -> None:
        if "fraction_done" in kwargs:
            kwargs["fraction_done"] = start + span * kwargs["fraction_done"]
        report(**kwargs)

    return scaled


def _connectivity_spec(spec: NetworkSpec) -> NetworkSpec:
    """The part of ``spec`` that decides connectivity and initial state, for the CPU build.

    Delays, inputs and monitors do not change which synapses are drawn (each projection draws
    from its own stream) nor the initial state; dropping them saves the host the delay ring."""
    return replace(spec, projections=tuple(replace(p, delay_ms=0.0) for p in spec.projections),
                   poisson_inputs=(), current_inputs=(), rewards=(), state_monitors=(), record_spikes=())


@dataclass
class _Segment:
    """Consecutive populations of one model, updated with one set of tensor operations.

    Parameters equal across the segment are Python floats (torch rounds them to the state's
    precision, as the engine casts its double parameters to Real); others are per-neuron tensors."""

    model: str
    lo: int
    hi: int
    p: dict[str, Any]
    refractory: bool = False      # some neuron has refractory steps > 0
    current: bool = False         # some neuron receives injected current
    views: dict[str, Any] = field(default_factory=dict)   # the segment's slices of the state


@dataclass
class _Drive:
    dest: Any            # indices into the channels (ch * N + neuron)
    lam: float
    weight: float
    start_step: int
    stop_step: int
    lo: int
    size: int


# ----------------------------------------------------------------------------- the simulation
class TorchSimulation:
    """A network on a torch device (``"cuda"``, ``"cuda:N"``, or ``"torch-cpu"`` for tests), ready to run.

    Parameters
    ----------
    spec : NetworkSpec
        The network; validated here. Plastic projections raise ``ValueError``.
    device : str or torch.device
        ``"cuda"``, ``"cuda:N"`` or ``"torch-cpu"`` (torch on the CPU; slower than the compiled
        engine, meant for tests).
    memory_limit_bytes : int, optional
        Refuse (``NetworkTooLarge``) networks whose device estimate exceeds this; default 80% of
        the device's free memory now (of the host's available memory for ``"torch-cpu"``).
    report : callable, optional
        Progress of the build, as for ``engine.Simulation``.
    build_threads : int
        Threads of the CPU engine that draws the connectivity (the result does not depend on it).
    """

    def __init__(self, spec: NetworkSpec, *, device: Any, memory_limit_bytes: int | None = None,
                 report: ReportFn | None = None, build_threads: int = 1) -> None:
        _require_torch()
        spec.validate()
        for i, proj in enumerate(spec.projections):
            if proj.plasticity is not None:
                raise ValueError(f"projections[{i}] ({proj.source} -> {proj.target}) has {proj.plasticity.rule} "
                                 "plasticity; plasticity runs on the CPU engine; use device='cpu'")
        self.device = resolve_device(device)
        self.spec = spec
        self.threads = 1
        breakdown = estimate_device_memory_bytes(spec)
        estimate = sum(breakdown.values())
        limit = device_memory_limit_bytes(self.device) if memory_limit_bytes is None else memory_limit_bytes
        if estimate > limit:
            raise NetworkTooLarge(estimate, limit, breakdown)
        self.memory_estimate_bytes = estimate
        started = time.perf_counter()
        host = engine.Simulation(_connectivity_spec(spec), threads=build_threads, report=_scaled(report, 0.0, 0.5))
        self.offsets = dict(host.offsets)
        self._real = torch.float32 if spec.dtype == "float32" else torch.float64
        self._np_real = np.float32 if spec.dtype == "float32" else np.float64
        # a*b + c rounded as the engine's loops round it (see _fused_fma)
        self._fma = _fused_fma if spec.dtype == "float32" and engine_fuses_multiply_add() else _plain_fma
        self._step = 0
        with torch.no_grad():
            self._build_state(host)
            self._build_synapses(host, _scaled(report, 0.5, 0.5))
            del host
            self._build_populations()
            self._build_inputs()
            self._build_monitors()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if report is not None:
            report(fraction_done=1.0, stage="build", message=f"{self.synapse_count} synapses on {self.device}")
        self.build_seconds = time.perf_counter() - started
        self.weights_before: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ building
    def _build_state(self, host: engine.Simulation) -> None:
        spec, dev = self.spec, self.device
        n = self._n = spec.n_neurons
        self._delays = [int(round(p.delay_ms / spec.dt_ms)) for p in spec.projections]
        max_delay = max(self._delays, default=0)
        self._ring_len = max_delay + 1 if max_delay else 0
        # one flat buffer: [v | u | g_exc | g_inh | ring slot 0 (exc, inh) | slot 1 | ...], so
        # undelayed and delayed synapses are delivered with one index_add_
        self._buf = torch.zeros(4 * n + 2 * n * self._ring_len, dtype=self._real, device=dev)
        for var, row in _ROWS.items():
            self._buf[row * n:(row + 1) * n] = torch.from_numpy(host.state(var)).to(dev, self._real)
        self._S = self._buf[:4 * n].view(4, n)
        self._G = self._buf[2 * n:4 * n]
        self._ring = self._buf[4 * n:].view(self._ring_len, 2 * n) if self._ring_len else None
        self._v, self._u, self._ge, self._gi = self._S[0], self._S[1], self._S[2], self._S[3]
        self._ref = torch.full((n,), _LONG_AGO, dtype=torch.int64, device=dev)
        self._mask = torch.zeros(n, dtype=torch.bool, device=dev)
        self._iext = torch.zeros(n, dtype=self._real, device=dev) if spec.current_inputs else None

    def _build_synapses(self, host: engine.Simulation, report: ReportFn | None) -> None:
        spec, dev, n, off = self.spec, self.device, self._n, self.offsets
        projs = spec.projections
        counts = []
        degree = np.zeros(n, dtype=np.int64)
        self._synapses_of = []
        for i, proj in enumerate(projs):
            rows, _ = host.connections(i)
            c = np.bincount(rows, minlength=spec.population(proj.source).size).astype(np.int64)
            counts.append(c)
            degree[off[proj.source]:off[proj.source] + c.size] += c
            self._synapses_of.append(int(rows.size))
        row_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(degree, out=row_ptr[1:])
        total = self._synapse_count = int(row_ptr[-1])
        index_dtype = torch.int32 if 4 * n < 2**31 else torch.int64
        self._pid_dtype = torch.int16 if len(projs) < 2**15 else torch.int32
        self._base = torch.empty(total, dtype=index_dtype, device=dev)   # channel * N + target
        self._pid = torch.empty(total, dtype=self._pid_dtype, device=dev)
        self._row_start = torch.from_numpy(row_ptr[:-1]).to(dev)
        self._outdeg = torch.from_numpy(degree).to(dev)
        self._max_outdeg = int(degree.max()) if n else 0
        fill = self._row_start.clone()
        for i, proj in enumerate(projs):
            if report is not None:
                report(fraction_done=i / max(1, len(projs)), stage="build",
                       message=f"moving {proj.source} -> {proj.target} to {dev}")
            if self._synapses_of[i] == 0:
                continue
            rows, cols = host.connections(i)
            s0, n_src = off[proj.source], counts[i].size
            c = torch.from_numpy(counts[i]).to(dev)
            first = torch.cumsum(c, 0) - c        # where each source's synapses start within rows
            shift = (0 if proj.synapse == "exc" else n) + off[proj.target]
            for b0 in range(0, rows.size, BUILD_BLOCK_SYNAPSES):
                b1 = min(rows.size, b0 + BUILD_BLOCK_SYNAPSES)
                r = torch.from_numpy(rows[b0:b1]).to(dev)
                pos = fill.index_select(0, r + s0) + torch.arange(b0, b1, device=dev) - first.index_select(0, r)
                tgt = torch.from_numpy(cols[b0:b1]).to(dev, torch.int64) + shift
                self._base.index_copy_(0, pos, tgt.to(index_dtype))
                self._pid.index_fill_(0, pos, i)
                del r, pos, tgt
            fill[s0:s0 + n_src] += c
            del rows, cols
        # per projection: weight (the engine's Real), and the slot offset of each ring position
        weights = [float(self._np_real(p.weight)) for p in projs]
        self._weights = weights
        self._uniform_weight = weights[0] if weights and all(w == weights[0] for w in weights) else None
        self._wtab = torch.tensor(weights or [0.0], dtype=self._real, device=dev)
        if self._ring_len:
            L = self._ring_len
            d = np.asarray(self._delays, dtype=np.int64)
            r = np.arange(L, dtype=np.int64)[:, None]
            offs = np.where(d[None, :] == 0, 2 * n, 4 * n + ((r + d[None, :]) % L) * 2 * n)
            self._offs = torch.from_numpy(offs.astype(np.int64)).to(dev)    # [L, n_projections]
        self._event_batch = max(EVENT_BATCH, self._max_outdeg)

    def _build_populations(self) -> None:
        spec, off, dt, dev = self.spec, self.offsets, self.spec.dt_ms, self.device
        current_neurons = np.zeros(self._n, dtype=bool)
        for cur in spec.current_inputs:
            local = np.arange(spec.population(cur.target).size) if cur.neurons is None else np.asarray(cur.neurons)
            current_neurons[local + off[cur.target]] = True
        groups: list[list[int]] = []
        for i, pop in enumerate(spec.populations):
            if groups and pop.model != "poisson" and spec.populations[groups[-1][0]].model == pop.model:
                groups[-1].append(i)
            else:
                groups.append([i])
        self._segments: list[_Segment] = []
        for group in groups:
            pops = [spec.populations[i] for i in group]
            lo = off[pops[0].name]
            hi = off[pops[-1].name] + pops[-1].size
            per_pop = [self._derived(pop, dt) for pop in pops]
            sizes = torch.tensor([pop.size for pop in pops], device=dev)
            p: dict[str, Any] = {}
            for key in per_pop[0]:
                values = [d[key] for d in per_pop]
                if pops[0].model != "poisson" and key != "ref_steps":   # the engine's Real constants
                    values = [float(self._np_real(v)) for v in values]
                if all(v == values[0] for v in values):
                    p[key] = values[0]
                else:
                    dtype = torch.int64 if key == "ref_steps" else self._real
                    p[key] = torch.repeat_interleave(torch.tensor(values, dtype=dtype, device=dev), sizes)
            seg = _Segment(pops[0].model, lo, hi, p, current=bool(current_neurons[lo:hi].any()))
            if seg.model in ("lif_cuba", "lif_coba"):
                seg.refractory = any(d["ref_steps"] > 0 for d in per_pop)
            sl = slice(lo, hi)
            seg.views = {"v": self._v[sl], "u": self._u[sl], "ge": self._ge[sl], "gi": self._gi[sl],
                         "ref": self._ref[sl], "mask": self._mask[sl],
                         "iext": self._iext[sl] if seg.current else None}
            self._segments.append(seg)
        self._pop_last = torch.tensor([off[p.name] + p.size - 1 for p in spec.populations], device=dev)
        recorded = ({p.name for p in spec.populations} if spec.record_spikes is None else set(spec.record_spikes))
        self._recorded = [p.name in recorded for p in spec.populations]

    def _derived(self, pop, dt: float) -> dict[str, Any]:
        """The engine's per-population constants (computed in double, as engine.cpp does)."""
        p = pop.parameters()
        r = self._np_real
        if pop.model == "poisson":
            return {"rate": p["rate_hz"] * dt * 1e-3, "omega": 2.0 * math.pi * p["modulation_frequency_hz"] * dt * 1e-3,
                    "depth": p["modulation_depth"], "start": _llround(p["start_ms"] / dt),
                    "stop": _llround(p["stop_ms"] / dt)}
        out = {"de": math.exp(-dt / p["tau_exc"]), "di": math.exp(-dt / p["tau_inh"])}
        if pop.model == "izhikevich":
            # dt * a is evaluated in Real in the engine's loop
            out.update(dt=dt, dt_a=float(r(dt) * r(p["a"])), b=p["b"], c=p["c"], d=p["d"], peak=p["v_peak"],
                       bias=p["i_bias"])
            return out
        out.update(vth=p["v_threshold"], vr=p["v_reset"], ref_steps=_llround(p["refractory_ms"] / dt))
        if pop.model == "lif_coba":
            out.update(k=dt / p["tau_m"], ee=p["e_exc"], ei=p["e_inh"], rest=p["v_rest"], bias=p["i_bias"])
        else:
            tau_m = p["tau_m"]

            def propagator(tau_s: float) -> float:
                if abs(tau_s - tau_m) < 1e-12:
                    return dt / tau_m * math.exp(-dt / tau_m)
                return tau_s / (tau_m - tau_s) * (math.exp(-dt / tau_m) - math.exp(-dt / tau_s))

            out.update(pv=math.exp(-dt / tau_m), pe=propagator(p["tau_exc"]), pin=propagator(p["tau_inh"]),
                       rest=p["v_rest"] + p["i_bias"])
        return out

    def _build_inputs(self) -> None:
        spec, off, dt, dev, n = self.spec, self.offsets, self.spec.dt_ms, self.device, self._n
        # injected currents change iext at their start and stop steps only
        self._current_changes: dict[int, list[tuple[Any, Any]]] = {}
        for cur in spec.current_inputs:
            local = np.arange(spec.population(cur.target).size) if cur.neurons is None else np.asarray(cur.neurons)
            idx = torch.from_numpy((local + off[cur.target]).astype(np.int64)).to(dev)
            start, stop = _llround(cur.start_ms / dt), _llround(cur.stop_ms / dt)
            amp = float(self._np_real(cur.amplitude))
            self._current_changes.setdefault(start, []).append(
                (idx, torch.full((idx.numel(),), amp, dtype=self._real, device=dev)))
            if stop != start and stop != _NEVER:
                self._current_changes.setdefault(stop, []).append(
                    (idx, torch.full((idx.numel(),), -amp, dtype=self._real, device=dev)))
        self._drives: list[_Drive] = []
        for inp in spec.poisson_inputs:
            size, lo = spec.population(inp.target).size, off[inp.target]
            ch = 0 if inp.synapse == "exc" else n
            self._drives.append(_Drive(torch.arange(ch + lo, ch + lo + size, device=dev),
                                       inp.n_sources * inp.rate_hz * dt * 1e-3, float(inp.weight),
                                       _llround(inp.start_ms / dt), _llround(inp.stop_ms / dt), ch + lo, size))
        self._drive_sets: dict[tuple[int, ...], tuple[Any, ...]] = {}
        self._generator = torch.Generator(device=dev)
        self._generator.manual_seed(int(self.spec.seed))
        self._nonzero = _nonzero_for(dev)

    def _build_monitors(self) -> None:
        spec, off, dev, n = self.spec, self.offsets, self.device, self._n
        self._monitors = []
        self._monitor_every = []
        for mon in spec.state_monitors:
            every = max(1, int(round(mon.every_ms / spec.dt_ms)))
            neurons = np.asarray(mon.neurons, dtype=np.int64) + off[mon.population]
            rows = np.asarray([_ROWS[v] for v in mon.variables], dtype=np.int64)
            flat = torch.from_numpy((rows[:, None] * n + neurons[None, :]).reshape(-1)).to(dev)
            self._monitors.append((every, flat, len(mon.variables), neurons.size))
            self._monitor_every.append(every)

    # ------------------------------------------------------------------ properties
    @property
    def synapse_count(self) -> int:
        return self._synapse_count

    @property
    def time_ms(self) -> float:
        return self._step * self.spec.dt_ms

    # ------------------------------------------------------------------ one step
    def _update_segment(self, seg: _Segment, step: int) -> None:
        p, views = seg.p, seg.views
        mask = views["mask"]
        if seg.model == "poisson":
            if not (p["start"] <= step < p["stop"]):
                mask.fill_(False)
                return
            rate = p["rate"]
            if p["depth"] != 0.0:
                rate *= max(0.0, 1.0 + p["depth"] * math.sin(p["omega"] * step))
            u = torch.rand(seg.hi - seg.lo, generator=self._generator, device=self.device, dtype=self._real)
            torch.lt(u, rate, out=mask)
            return
        v, ge, gi, iext = views["v"], views["ge"], views["gi"], views["iext"]
        fma = self._fma
        if seg.model == "izhikevich":
            u = views["u"]
            current = ge + gi + p["bias"]
            if iext is not None:
                current = current + iext
            # engine: q = fma(0.04 v, v, 5 v); v += dt q (fused); u += (dt a) fma(b, v, -u) (fused)
            q = fma(0.04 * v, v, 5.0 * v) + 140.0 - u + current
            vn = fma(q, p["dt"], v)
            un = fma(fma(v, p["b"], -u), p["dt_a"], u)
            v.copy_(vn)
            u.copy_(un)
            ge.mul_(p["de"])
            gi.mul_(p["di"])
            torch.ge(v, p["peak"], out=mask)
            _fill(v, mask, p["c"])
            torch.where(mask, u + p["d"], u, out=u)
            return
        if seg.model == "lif_cuba":
            # exact propagators: v' = target + (v - target) pv + g_e pe + g_i pi
            target = p["rest"] if iext is None else p["rest"] + iext
            vn = fma(gi, p["pin"], fma(ge, p["pe"], fma(v - target, p["pv"], target)))
        else:  # lif_coba, forward Euler on v: v' = v + k (g_e (e_e - v) + g_i (e_i - v) - (v - rest) + bias)
            drive = fma(gi, p["ei"] - v, ge * (p["ee"] - v)) - (v - p["rest"]) + p["bias"]
            if iext is not None:
                drive = drive + iext
            vn = fma(drive, p["k"], v)
        ref = views["ref"]
        if seg.refractory:
            torch.where(ref <= step, vn, v, out=v)
        else:
            v.copy_(vn)
        ge.mul_(p["de"])
        gi.mul_(p["di"])
        torch.gt(v, p["vth"], out=mask)
        _fill(v, mask, p["vr"])
        if seg.refractory:
            _fill(ref, mask, step + p["ref_steps"])

    def _add_drive(self, step: int) -> None:
        active = tuple(j for j, d in enumerate(self._drives) if d.start_step <= step < d.stop_step)
        if not active:
            return
        cached = self._drive_sets.get(active)
        if cached is None:
            drives = [self._drives[j] for j in active]
            lam = torch.cat([torch.full((d.size,), d.lam, dtype=self._real, device=self.device) for d in drives])
            w = torch.cat([torch.full((d.size,), d.weight, dtype=self._real, device=self.device) for d in drives])
            dest = torch.cat([d.dest for d in drives])
            single = (drives[0].lo, drives[0].size) if len(drives) == 1 else None
            cached = self._drive_sets[active] = (lam, w, dest, single)
        lam, w, dest, single = cached
        k = torch.poisson(lam, generator=self._generator)
        if single is not None:
            self._G[single[0]:single[0] + single[1]].add_(k.mul_(w))
        else:
            self._G.index_add_(0, dest, k.mul_(w))

    def _deliver(self, ids: Any, n_events: int, step: int) -> None:
        """Add the weights of the synapses of spiking neurons ``ids`` to their targets."""
        lens = self._outdeg.index_select(0, ids)
        if n_events <= self._event_batch:
            self._deliver_batch(ids, lens, n_events, step)
            return
        csum = torch.cumsum(lens, 0)
        n_batches = -(-n_events // self._event_batch)
        marks = torch.arange(1, n_batches, device=self.device, dtype=torch.int64) * self._event_batch
        cuts = [0] + torch.searchsorted(csum, marks, right=True).tolist() + [ids.numel()]
        cuts = sorted(set(cuts))
        ends = torch.tensor(cuts[1:], device=self.device) - 1
        events = [0] + csum.index_select(0, ends).tolist()
        for a, b, e0, e1 in zip(cuts[:-1], cuts[1:], events[:-1], events[1:]):
            self._deliver_batch(ids[a:b], lens[a:b], e1 - e0, step)

    def _deliver_batch(self, ids: Any, lens: Any, n_events: int, step: int) -> None:
        if n_events == 0:
            return
        starts = self._row_start.index_select(0, ids)
        shift = starts - (torch.cumsum(lens, 0) - lens)
        syn = torch.repeat_interleave(shift, lens, output_size=n_events)
        syn += torch.arange(n_events, device=self.device, dtype=torch.int64)
        dest = self._base.index_select(0, syn)
        pid = None
        if self._uniform_weight is None or self._ring_len:
            pid = self._pid.index_select(0, syn).to(torch.int32)
        del syn
        if self._uniform_weight is None:
            w = self._wtab.index_select(0, pid)
        else:
            w = self._wtab[:1].expand(n_events)
        if self._ring_len:
            dest = dest + self._offs[step % self._ring_len].index_select(0, pid)
            self._buf.index_add_(0, dest, w)
        else:
            self._G.index_add_(0, dest, w)

    def _run_chunk(self, n_steps: int) -> dict[str, Any]:
        dev, n_pop = self.device, len(self.spec.populations)
        step0 = self._step
        # monitored samples of this chunk: the steps that are multiples of `every`
        traces, first_sample = [], []
        for every, flat, nv, nn in self._monitors:
            first = -(-step0 // every) * every
            n_samples = (step0 + n_steps - 1 - first) // every + 1 if first < step0 + n_steps else 0
            traces.append(torch.zeros((n_samples, nv, nn), dtype=self._real, device=dev))
            first_sample.append(first)
        cumulative: list[list[int]] = []   # per step: spikes of populations 0..p together
        recorded_ids, recorded_per_step = [], np.zeros(n_steps, dtype=np.int64)
        all_recorded = all(self._recorded)
        events = 0
        state_flat = self._S.view(-1)
        have_synapses = self._synapse_count > 0
        stats = torch.zeros(n_pop + 1, dtype=torch.int64, device=dev)
        nonzero = self._nonzero
        for s in range(n_steps):
            step = step0 + s
            for m, (every, flat, _nv, _nn) in enumerate(self._monitors):
                if step % every == 0:
                    torch.index_select(state_flat, 0, flat, out=traces[m][(step - first_sample[m]) // every].view(-1))
            for idx, delta in self._current_changes.get(step, ()):
                self._iext.index_add_(0, idx, delta)
            if self._drives:
                self._add_drive(step)
            for seg in self._segments:
                self._update_segment(seg, step)
            # the one host synchronisation of the step: spikes per population and synaptic events
            cum = torch.cumsum(self._mask, 0)
            torch.index_select(cum, 0, self._pop_last, out=stats[:n_pop])
            if have_synapses:
                torch.sum(self._outdeg * self._mask, 0, out=stats[n_pop])
            host = stats.tolist()
            cum_host = host[:n_pop]
            cumulative.append(cum_host)
            n_spikes = cum_host[-1]
            if n_spikes:
                ids = nonzero(self._mask, n_spikes)
                if all_recorded:
                    recorded_ids.append(ids)
                    recorded_per_step[s] = n_spikes
                else:
                    first = 0
                    for pi, rec in enumerate(self._recorded):
                        last = cum_host[pi]
                        if rec and last > first:
                            recorded_ids.append(ids[first:last])
                            recorded_per_step[s] += last - first
                        first = last
                if have_synapses and host[n_pop]:
                    events += host[n_pop]
                    self._deliver(ids, host[n_pop], step)
            if self._ring_len:
                slot = self._ring[step % self._ring_len]
                self._G.add_(slot)
                slot.zero_()
        self._step += n_steps
        counts = np.diff(np.asarray(cumulative, dtype=np.int64).reshape(n_steps, n_pop), axis=1,
                         prepend=0).astype(np.int32)
        spike_ids = (torch.cat(recorded_ids).to(torch.int32).cpu().numpy() if recorded_ids
                     else np.zeros(0, dtype=np.int32))
        spike_steps = np.repeat(np.arange(step0, step0 + n_steps, dtype=np.int64), recorded_per_step)
        return {"spike_steps": spike_steps, "spike_ids": spike_ids, "population_counts": counts,
                "traces": [t.to(torch.float64).cpu().numpy() for t in traces], "synaptic_events": events}

    # ------------------------------------------------------------------ running
    def run(self, duration_ms: float, *, report: ReportFn | None = None, on_chunk: ChunkFn | None = None,
            chunk_seconds: float = 0.1) -> RunSummary:
        """Advance ``duration_ms``; ``on_chunk`` receives each chunk's output, ``report`` progress.

        As ``engine.Simulation.run``: ``report`` may raise to cancel; the run stops after the
        current chunk and the exception propagates.
        """
        if not (isinstance(duration_ms, (int, float)) and math.isfinite(duration_ms) and duration_ms > 0):
            raise ValueError(f"duration_ms must be a finite number > 0, got {duration_ms!r}")
        n_total = int(round(duration_ms / self.spec.dt_ms))
        if self._step + n_total >= 2**31:
            raise ValueError(f"duration_ms={duration_ms} is more than 2**31 steps of dt_ms={self.spec.dt_ms}")
        done, spikes, events, chunk = 0, 0, 0, 100
        started = time.perf_counter()
        while done < n_total:
            n = min(chunk, n_total - done)
            t0 = time.perf_counter()
            with torch.no_grad():
                out = self._run_chunk(n)
            took = time.perf_counter() - t0
            first = self._step - n
            counts = out["population_counts"]
            spikes += int(counts.sum())
            events += int(out["synaptic_events"])
            done += n
            if on_chunk is not None:
                on_chunk(Chunk(first, n, out["spike_steps"], out["spike_ids"], counts, list(out["traces"]),
                               int(out["synaptic_events"])))
            if report is not None:
                elapsed = time.perf_counter() - started
                report(fraction_done=done / n_total, stage="simulate",
                       message=f"{done * self.spec.dt_ms:.1f} of {n_total * self.spec.dt_ms:.1f} ms simulated, "
                               f"{spikes} spikes",
                       counters={"simulated_ms": done * self.spec.dt_ms, "spikes": spikes,
                                 "synaptic_events": events,
                                 "synaptic_events_per_second": events / elapsed if elapsed > 0 else 0.0})
            chunk = int(min(max(1, n * chunk_seconds / max(took, 1e-6)), 2 * n + 100, 100_000))
        return RunSummary(duration_ms=n_total * self.spec.dt_ms, n_steps=n_total, spikes=spikes,
                          synaptic_events=events, neuron_steps=n_total * self.spec.n_neurons,
                          simulate_seconds=time.perf_counter() - started)

    # ------------------------------------------------------------------ reading back
    def weights(self, projection: int) -> np.ndarray:
        """Weights of projection ``projection`` (signed; static, so all equal), one per synapse."""
        count = self._synapses_of[projection]
        return np.full(count, self._weights[projection], dtype=np.float64)

    def connections(self, projection: int) -> tuple[np.ndarray, np.ndarray]:
        """(source index, target index) within their populations, one pair per synapse, in
        (source, target) order: the CPU engine's arrays."""
        proj = self.spec.projections[projection]
        with torch.no_grad():
            pos = torch.nonzero(self._pid == projection).view(-1)
            src = torch.searchsorted(self._row_start, pos, right=True) - 1 - self.offsets[proj.source]
            shift = (0 if proj.synapse == "exc" else self._n) + self.offsets[proj.target]
            tgt = self._base.index_select(0, pos).to(torch.int64) - shift
        return src.cpu().numpy().astype(np.int64), tgt.to(torch.int32).cpu().numpy()

    def state(self, variable: str) -> np.ndarray:
        """Current values of ``variable`` (``v``, ``u``, ``g_exc``, ``g_inh``) for every neuron."""
        if variable not in _ROWS:
            raise ValueError(f"variable must be one of {tuple(_ROWS)}, got {variable!r}")
        return self._S[_ROWS[variable]].to(torch.float64).cpu().numpy()

    def monitor_times_ms(self, index: int, n_samples_before: int, n_samples: int) -> np.ndarray:
        every = self._monitor_every[index]
        return (np.arange(n_samples_before, n_samples_before + n_samples) * every) * self.spec.dt_ms


def _nonzero_plain(mask: Any, count: int) -> Any:
    """Indices of the True entries of ``mask`` (``count`` of them), int64."""
    return torch.nonzero(mask).view(-1)


def _nonzero_static(mask: Any, count: int) -> Any:
    """As :func:`_nonzero_plain`, but with the size given, so CUDA need not wait to learn it."""
    return torch.nonzero_static(mask, size=count).view(-1)


def _nonzero_for(device: "torch.device") -> Any:
    """On CUDA ``nonzero`` waits for the device to learn its output size; the step already knows
    the count (from its one synchronisation), so there ``nonzero_static`` with that size is used."""
    if device.type != "cuda" or not hasattr(torch, "nonzero_static"):
        return _nonzero_plain
    try:
        if _nonzero_static(torch.tensor([False, True, True], device=device), 2).tolist() == [1, 2]:
            return _nonzero_static
    except (RuntimeError, NotImplementedError):  # pragma: no cover - older torch builds
        pass
    return _nonzero_plain  # pragma: no cover


def _plain_fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` with two roundings."""
    return a * b + c


def _fused_fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once to float32, as an FMA instruction does.

    ``a`` is a float32 tensor; ``b`` and ``c`` float32 tensors or numbers that are float32 values.
    The product of two float32 values is exact in float64, so computing the sum in float64 and
    rounding to float32 gives the FMA's result (but for ties of the double rounding, about one
    in 2**29 operations)."""
    a64 = a.to(torch.float64)
    if isinstance(c, torch.Tensor):
        out = torch.addcmul(c, a64, b) if isinstance(b, torch.Tensor) else torch.add(c, a64, alpha=b)
    else:
        out = a64.mul_(b).add_(c)
    return out.to(torch.float32)


@functools.lru_cache(maxsize=None)
def engine_fuses_multiply_add() -> bool:
    """Whether the compiled engine was built with multiply-adds contracted into FMA instructions.

    ``-march=native`` on a machine with FMA (the default build) contracts them; a portable build
    (``NEUROMESH_ENGINE_MARCH=x86-64-v2``) does not. Found out by running one float32 LIF neuron
    in the engine and comparing its membrane trace with both roundings of the propagator step."""
    from .network import CurrentInput, InitialValue, Population, StateMonitor

    dt, n = 0.01, 300
    spec = NetworkSpec((Population("probe", 1, "lif_cuba", params={"v_rest": -60.0, "v_threshold": 100.0},
                                   initial={"v": InitialValue("constant", -60.0)}),),
                       current_inputs=(CurrentInput("probe", amplitude=10.5),),
                       state_monitors=(StateMonitor("probe", (0,), ("v",), every_ms=dt),), dt_ms=dt)
    trace = engine.simulate(spec, n * dt).traces[0][:, 0, 0].astype(np.float32)
    f32 = np.float32
    pv, target = f32(math.exp(-dt / 20.0)), f32(-60.0) + f32(10.5)
    plain, fused = [f32(-60.0)], [f32(-60.0)]
    for _ in range(trace.size - 1):
        plain.append(f32(target + f32((plain[-1] - target) * pv)))
        fused.append(f32(np.float64(f32(fused[-1] - target)) * np.float64(pv) + np.float64(target)))
    return bool(np.array_equal(trace, np.asarray(fused)) and not np.array_equal(trace, np.asarray(plain)))


def _fill(dst: Any, mask: Any, value: Any) -> None:
    """``dst[mask] = value`` without a host synchronisation (value a number or a per-neuron tensor)."""
    if isinstance(value, (int, float)):
        dst.masked_fill_(mask, value)
    else:
        torch.where(mask, value, dst, out=dst)


# ----------------------------------------------------------------------------- choosing a backend
def make_simulation(spec: NetworkSpec, *, threads: int = 1, device: Any = None,
                    memory_limit_bytes: int | None = None,
                    report: ReportFn | None = None) -> "engine.Simulation | TorchSimulation":
    """Build ``spec`` on ``device``: the compiled CPU engine or the torch backend.

    ``device``: ``None`` picks ``"cuda"`` when a CUDA GPU is present and the spec has no
    plasticity (and at least ``AUTO_GPU_MIN_SYNAPSES`` expected synapses), else ``"cpu"``;
    ``"cpu"`` is :class:`engine.Simulation` (``threads`` OpenMP threads); ``"cuda"``/``"cuda:N"``
    is :class:`TorchSimulation` on that GPU (``threads`` then only speeds up drawing the
    connectivity); ``"torch-cpu"`` is :class:`TorchSimulation` on the CPU, for tests.
    """
    if device is None:
        big = AUTO_GPU_MIN_SYNAPSES <= 0 or \
            sum(expected_synapse_count(spec, p) for p in spec.projections) >= AUTO_GPU_MIN_SYNAPSES
        device = "cuda" if cuda_available() and not has_plasticity(spec) and big else "cpu"
    if isinstance(device, str) and device == "cpu":
        return engine.Simulation(spec, threads=threads, memory_limit_bytes=memory_limit_bytes, report=report)
    return TorchSimulation(spec, device=device, memory_limit_bytes=memory_limit_bytes, report=report,
                           build_threads=threads)


__all__ = ["AUTO_GPU_MIN_SYNAPSES", "DEVICE_MEMORY_FRACTION", "TorchSimulation", "cuda_available",
           "device_memory_limit_bytes", "engine_fuses_multiply_add", "estimate_device_memory_bytes",
           "has_plasticity", "make_simulation", "resolve_device"]
