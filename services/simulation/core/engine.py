"""Build a :class:`~services.simulation.core.network.NetworkSpec` in the compiled engine and run it.

The inner loop is C++ with OpenMP (``native/engine.cpp``, bound as ``_engine``); this module
validates the spec, estimates the memory it needs *before* allocating anything, lays the
populations out in one index space, draws initial states, and runs the network in chunks so a
caller can stream progress, write results as they come, and cancel between chunks (a chunk is
sized to take about a tenth of a second).

Example
-------
>>> from services.simulation.core.network import NetworkSpec, Population, CurrentInput
>>> spec = NetworkSpec(populations=(Population("cell", 1, "lif_cuba",
...                                            params={"v_rest": -60.0, "refractory_ms": 2.0}),),
...                    current_inputs=(CurrentInput("cell", amplitude=15.0),), seed=3)
>>> result = simulate(spec, duration_ms=1000.0)
>>> result.population_rates_hz()["cell"]   # analytic: 1000 / (2 + 20 ln(15/5)) = 41.7 Hz
41.0
>>> np.diff(result.spike_times_ms[:3])       # each interval within a step of 23.97 ms
array([23.9, 23.9])
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import _engine
from .network import MODEL_VARIABLES, NetworkSpec, expected_synapse_count

ReportFn = Callable[..., None]
#: Fewer neurons than this per thread do not pay for a barrier per step: a 4,000-neuron step takes
#: a few microseconds, and on a busy machine a descheduled thread stalls every barrier.
MIN_NEURONS_PER_THREAD = 8192
#: Called after each chunk with (spike_steps, spike_ids, population_counts, traces, first_step).
ChunkFn = Callable[["Chunk"], None]


class NetworkTooLarge(MemoryError):
    """The network would need more memory than allowed; nothing was allocated."""

    def __init__(self, estimate_bytes: int, limit_bytes: int, breakdown: dict[str, int]) -> None:
        top = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in sorted(breakdown.items(), key=lambda kv: -kv[1])[:3])
        super().__init__(f"the network needs an estimated {estimate_bytes / 2**30:.2f} GiB ({top}), more than the "
                         f"{limit_bytes / 2**30:.2f} GiB allowed")
        self.estimate_bytes = estimate_bytes
        self.limit_bytes = limit_bytes
        self.breakdown = breakdown


def available_memory_bytes() -> int:
    """Memory this process may use: 80% of MemAvailable (Linux), or of physical memory elsewhere."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * 0.8)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)


def estimate_memory_bytes(spec: NetworkSpec, *, threads: int = 1) -> dict[str, int]:
    """Bytes the engine will allocate for ``spec``, by component (peak during the build included).

    Synapse counts of ``fixed_probability`` projections are their expectation plus four standard
    deviations, so the estimate is an upper bound in practice.

    >>> from services.simulation.core.network import Population, Projection, Connectivity
    >>> spec = NetworkSpec((Population("p", 1000),), (Projection("p", "p",
    ...                    connectivity=Connectivity("fixed_indegree", 100)),))
    >>> estimate_memory_bytes(spec)["synapses"]
    800000
    """
    real = 4 if spec.dtype == "float32" else 8
    n = spec.n_neurons
    max_delay = max([round(p.delay_ms / spec.dt_ms) for p in spec.projections], default=0)
    out = {"neurons": n * (5 * real + 4 + 8), "delay_buffers": 2 * (max_delay + 1) * n * real if max_delay else 0,
           "synapses": 0, "plasticity": 0, "connectivity_index": 0}
    for proj in spec.projections:
        s = expected_synapse_count(spec, proj)
        if proj.connectivity.rule == "fixed_probability":
            s += int(4 * math.sqrt(s + 1))
        n_src, n_tgt = spec.population(proj.source).size, spec.population(proj.target).size
        out["synapses"] += 8 * s                      # targets, plus the build's per-thread copy
        out["connectivity_index"] += 8 * (n_src + 1) + (8 * n_src * (threads + 1) if threads > 1 else 0)
        if proj.plasticity is not None:
            out["plasticity"] += s * (2 * real + 8 + 4) + 8 * (n_tgt + 1) + real * (n_src + n_tgt)
    return out


@dataclass
class Chunk:
    """What one chunk of the run produced (steps ``first_step`` up to ``first_step + n_steps``)."""

    first_step: int
    n_steps: int
    spike_steps: np.ndarray        # int64, one per recorded spike, ascending
    spike_ids: np.ndarray          # int32 global neuron ids
    population_counts: np.ndarray  # int32 [n_steps, n_populations], spikes per step (all neurons)
    traces: list[np.ndarray]       # per state monitor: float64 [samples, variables, neurons]
    synaptic_events: int


@dataclass
class RunSummary:
    duration_ms: float
    n_steps: int
    spikes: int
    synaptic_events: int
    neuron_steps: int
    simulate_seconds: float
    cancelled: bool = False


class Simulation:
    """A network built in the engine, ready to run; runs can be continued.

    Parameters
    ----------
    spec : NetworkSpec
        The network; validated here.
    threads : int
        OpenMP threads the engine may use; it uses at most one per ``MIN_NEURONS_PER_THREAD``
        neurons (``self.threads`` says how many). Results do not depend on it.
    memory_limit_bytes : int, optional
        Refuse (``NetworkTooLarge``) networks whose estimate exceeds this; default 80% of the
        memory available now.
    """

    def __init__(self, spec: NetworkSpec, *, threads: int = 1, memory_limit_bytes: int | None = None,
                 report: ReportFn | None = None) -> None:
        spec.validate()
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        breakdown = estimate_memory_bytes(spec, threads=threads)
        estimate = sum(breakdown.values())
        limit = available_memory_bytes() if memory_limit_bytes is None else memory_limit_bytes
        if estimate > limit:
            raise NetworkTooLarge(estimate, limit, breakdown)
        self.spec = spec
        self.threads = threads = max(1, min(threads, spec.n_neurons // MIN_NEURONS_PER_THREAD))
        self.memory_estimate_bytes = estimate
        started = time.perf_counter()
        cls = _engine.EngineF32 if spec.dtype == "float32" else _engine.EngineF64
        self._engine = cls(threads, spec.dt_ms, int(spec.seed), spec.n_neurons)
        self.offsets = spec.offsets()
        self._build(report)
        self.build_seconds = time.perf_counter() - started
        self.weights_before = {i: self._engine.get_weights(i) for i, p in enumerate(spec.projections)
                               if p.plasticity is not None}

    # ------------------------------------------------------------------ building
    def _build(self, report: ReportFn | None) -> None:
        spec, eng, off = self.spec, self._engine, self.offsets
        rng = np.random.default_rng(spec.seed)
        for pop in spec.populations:
            eng.add_population(_engine.MODELS[pop.model], off[pop.name], pop.size, pop.parameters())
        state = {var: np.zeros(spec.n_neurons) for var in ("v", "u", "g_exc", "g_inh")}
        for pop in spec.populations:
            p, sl = pop.parameters(), slice(off[pop.name], off[pop.name] + pop.size)
            if pop.model in ("lif_cuba", "lif_coba"):
                state["v"][sl] = rng.uniform(p["v_reset"], p["v_threshold"], pop.size)
            elif pop.model == "izhikevich":
                state["v"][sl] = p["c"]
            for var, init in pop.initial.items():
                state[var][sl] = init.sample(pop.size, rng)
            if pop.model == "izhikevich" and "u" not in pop.initial:
                state["u"][sl] = p["b"] * state["v"][sl]
        for var, values in state.items():
            eng.set_state(_engine.VARIABLES[var], values)
        for i, proj in enumerate(spec.projections):
            if report is not None:
                report(fraction_done=i / max(1, len(spec.projections)), stage="build",
                       message=f"connecting {proj.source} -> {proj.target}")
            src, tgt = spec.population(proj.source), spec.population(proj.target)
            plastic = 0 if proj.plasticity is None else _engine.PLASTICITY[proj.plasticity.rule]
            pl = {} if proj.plasticity is None else {k: float(v) for k, v in vars(proj.plasticity).items()
                                                      if k != "rule"}
            eng.add_projection(off[src.name], src.size, off[tgt.name], tgt.size, 0 if proj.synapse == "exc" else 1,
                               float(proj.weight), int(round(proj.delay_ms / spec.dt_ms)),
                               _engine.RULES[proj.connectivity.rule], float(proj.connectivity.value),
                               bool(proj.connectivity.allow_autapses), proj.source == proj.target, plastic, pl,
                               1000 + i)
        for i, inp in enumerate(spec.poisson_inputs):
            lam = inp.n_sources * inp.rate_hz * spec.dt_ms * 1e-3
            eng.add_poisson_input(off[inp.target], spec.population(inp.target).size,
                                  0 if inp.synapse == "exc" else 1, float(inp.weight), lam, inp.start_ms,
                                  inp.stop_ms, 100_000 + i)
        for cur in spec.current_inputs:
            local = np.arange(spec.population(cur.target).size) if cur.neurons is None else np.asarray(cur.neurons)
            eng.add_current_input((local + off[cur.target]).astype(np.int32), float(cur.amplitude), cur.start_ms,
                                  cur.stop_ms)
        for reward in spec.rewards:
            eng.add_reward(reward.time_ms, reward.amount)
        self._monitor_every = []
        for mon in spec.state_monitors:
            every = max(1, int(round(mon.every_ms / spec.dt_ms)))
            eng.add_state_monitor((np.asarray(mon.neurons) + off[mon.population]).astype(np.int32),
                                  [_engine.VARIABLES[v] for v in mon.variables], every)
            self._monitor_every.append(every)
        recorded = {p.name for p in spec.populations} if spec.record_spikes is None else set(spec.record_spikes)
        eng.set_recorded_populations([p.name in recorded for p in spec.populations])
        eng.finalize()

    # ------------------------------------------------------------------ running
    @property
    def synapse_count(self) -> int:
        return self._engine.synapse_count

    @property
    def time_ms(self) -> float:
        return self._engine.step * self.spec.dt_ms

    def run(self, duration_ms: float, *, report: ReportFn | None = None, on_chunk: ChunkFn | None = None,
            chunk_seconds: float = 0.1) -> RunSummary:
        """Advance ``duration_ms``; ``on_chunk`` receives each chunk's output, ``report`` progress.

        ``report`` may raise to cancel: the run stops after the current chunk and the exception
        propagates (the engine's memory is freed when this object is dropped).
        """
        if not (isinstance(duration_ms, (int, float)) and math.isfinite(duration_ms) and duration_ms > 0):
            raise ValueError(f"duration_ms must be a finite number > 0, got {duration_ms!r}")
        n_total = int(round(duration_ms / self.spec.dt_ms))
        if self._engine.step + n_total >= 2**31:
            raise ValueError(f"duration_ms={duration_ms} is more than 2**31 steps of dt_ms={self.spec.dt_ms}")
        done, spikes, events, chunk = 0, 0, 0, 100
        started = time.perf_counter()
        while done < n_total:
            n = min(chunk, n_total - done)
            t0 = time.perf_counter()
            out = self._engine.run(n)
            took = time.perf_counter() - t0
            first = self._engine.step - n
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
            # size the next chunk to take about chunk_seconds of wall time
            chunk = int(min(max(1, n * chunk_seconds / max(took, 1e-6)), 2 * n + 100, 100_000))
        return RunSummary(duration_ms=n_total * self.spec.dt_ms, n_steps=n_total, spikes=spikes,
                          synaptic_events=events, neuron_steps=n_total * self.spec.n_neurons,
                          simulate_seconds=time.perf_counter() - started)

    def weights(self, projection: int) -> np.ndarray:
        """Current weights of projection ``projection`` (signed), one per synapse in (source, target) order."""
        return self._engine.get_weights(projection)

    def connections(self, projection: int) -> tuple[np.ndarray, np.ndarray]:
        """(source index, target index) within their populations, one pair per synapse."""
        return self._engine.get_connections(projection)

    def state(self, variable: str) -> np.ndarray:
        """Current values of ``variable`` (``v``, ``u``, ``g_exc``, ``g_inh``) for every neuron."""
        return self._engine.get_state(_engine.VARIABLES[variable])

    def monitor_times_ms(self, index: int, n_samples_before: int, n_samples: int) -> np.ndarray:
        every = self._monitor_every[index]
        return (np.arange(n_samples_before, n_samples_before + n_samples) * every) * self.spec.dt_ms


@dataclass
class SimulationResult:
    """Everything a run recorded, in memory (for notebooks and tests; the service streams to the store)."""

    spec: NetworkSpec
    duration_ms: float
    spike_times_ms: np.ndarray
    spike_ids: np.ndarray              # global ids; see ``population_of``
    population_counts: np.ndarray      # [n_steps, n_populations]
    traces: list[np.ndarray]           # per state monitor [samples, variables, neurons]
    trace_times_ms: list[np.ndarray]
    weights_before: dict[int, np.ndarray]
    weights_after: dict[int, np.ndarray]
    summary: RunSummary
    build_seconds: float
    synapse_count: int
    offsets: dict[str, int] = field(default_factory=dict)

    def spikes_of(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """(times in ms, neuron index within the population) of ``population``'s spikes."""
        start = self.offsets[population]
        size = self.spec.population(population).size
        sel = (self.spike_ids >= start) & (self.spike_ids < start + size)
        return self.spike_times_ms[sel], self.spike_ids[sel] - start

    def population_rates_hz(self) -> dict[str, float]:
        """Mean firing rate of each population over the run."""
        totals = self.population_counts.sum(axis=0)
        return {p.name: float(totals[i] / p.size / (self.duration_ms * 1e-3))
                for i, p in enumerate(self.spec.populations)}

    def rate_traces_hz(self, bin_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """(bin start times in ms, rates [n_bins, n_populations]) with bins of ``bin_ms``."""
        per_bin = max(1, int(round(bin_ms / self.spec.dt_ms)))
        n_bins = self.population_counts.shape[0] // per_bin
        counts = self.population_counts[: n_bins * per_bin].reshape(n_bins, per_bin, -1).sum(axis=1)
        sizes = np.array([p.size for p in self.spec.populations], dtype=float)
        return np.arange(n_bins) * per_bin * self.spec.dt_ms, counts / sizes / (per_bin * self.spec.dt_ms * 1e-3)


def simulate(spec: NetworkSpec, duration_ms: float, *, threads: int = 1, report: ReportFn | None = None,
             memory_limit_bytes: int | None = None) -> SimulationResult:
    """Build ``spec``, run it for ``duration_ms`` and return everything it recorded."""
    spec.validate(duration_ms)
    sim = Simulation(spec, threads=threads, memory_limit_bytes=memory_limit_bytes, report=report)
    steps, ids, counts = [], [], []
    traces: list[list[np.ndarray]] = [[] for _ in spec.state_monitors]

    def collect(chunk: Chunk) -> None:
        steps.append(chunk.spike_steps)
        ids.append(chunk.spike_ids)
        counts.append(chunk.population_counts)
        for i, arr in enumerate(chunk.traces):
            traces[i].append(arr)

    summary = sim.run(duration_ms, report=report, on_chunk=collect)
    joined = [np.concatenate(t) if t else np.zeros((0, len(m.variables), len(m.neurons)))
              for t, m in zip(traces, spec.state_monitors)]
    times = [sim.monitor_times_ms(i, 0, arr.shape[0]) for i, arr in enumerate(joined)]
    return SimulationResult(
        spec=spec, duration_ms=summary.duration_ms,
        spike_times_ms=np.concatenate(steps).astype(np.float64) * spec.dt_ms if steps else np.zeros(0),
        spike_ids=np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
        population_counts=np.concatenate(counts) if counts else np.zeros((0, len(spec.populations)), np.int32),
        traces=joined, trace_times_ms=times, weights_before=sim.weights_before,
        weights_after={i: sim.weights(i) for i in sim.weights_before}, summary=summary,
        build_seconds=sim.build_seconds, synapse_count=sim.synapse_count, offsets=sim.offsets)


__all__ = ["Chunk", "NetworkTooLarge", "RunSummary", "Simulation", "SimulationResult", "available_memory_bytes",
           "estimate_memory_bytes", "simulate", "MODEL_VARIABLES"]
