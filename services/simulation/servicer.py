"""gRPC adapter of the simulation service: check the network, build and run it, stream to the store.

``Simulate`` turns the request into a validated :class:`NetworkSpec` and a plan of its outputs
(:mod:`services.simulation.requests`), refuses what cannot fit (the engine's memory estimate,
before anything is allocated; outputs larger than ``NEUROMESH_MAX_INPUT_BYTES``), returns the
stored result if the same request ran before (content-addressed prefix), and otherwise builds
and runs the network in a worker thread holding a compute slot. The engine runs in chunks of
about 0.1 s of wall time; after each one the chunk's output goes on its way at once:

- binned counts per neuron are written to their Zarr array block by block as bins complete;
- spikes and state traces are appended to files on local disk (their length is only known at
  the end), then copied to their Zarr arrays block by block, so no run ever holds its spikes in
  memory, let alone twice;
- population counts are summed into bins in memory (bins x populations, small);
- the spikes of a fixed subsample of neurons in the first second are kept for the figure;
- the throughput counters (neuron steps, synaptic events, spikes) are incremented, so
  Prometheus sees a long run progress.

Each chunk is also a progress event and a cancellation checkpoint: when the client cancels, the
run stops after the current chunk, the engine is dropped, and what was stored is deleted.

``BayesianObserver`` (unary) and ``TrainPredictiveCoding`` (streaming) are the brain-model
RPCs: their checks, computation and storage are in :mod:`services.simulation.brain_models`, so
here they only resolve their inputs, reuse a stored result, and compute holding a slot.

Example
-------
Started by ``python -m services.simulation``; from lab software::

    stub = simulation_pb2_grpc.SimulationServiceStub(grpc.insecure_channel("127.0.0.1:50053"))
    request = simulation_pb2.SimulateRequest(duration_ms=1000.0, network=simulation_pb2.Network(
        cortical_column=simulation_pb2.CorticalColumn(scale=0.05, stimulus_rate_hz=20.0)))
    for event in stub.Simulate(request):
        ...   # event.progress.counters["simulated_ms"], then event.result.binned_counts
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from minio.deleteobjects import DeleteObject

from neuromesh.simulation.v1 import simulation_pb2 as S
from neuromesh.simulation.v1 import simulation_pb2_grpc
from services.common.compute import ComputeLimiter
from services.common.errors import Cancelled, InvalidArgument, NeuroMeshError, NotFound, ResourceExhausted
from services.common.metrics import HANDLING_SECONDS_BUCKETS, neuromesh_counter, neuromesh_gauge, neuromesh_histogram
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.rpc import PNG, StoreBackedServicer
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import TARGET_CHUNK_BYTES, ArrayWriter, ArtifactStore
from services.common.zarr_minio import translate_s3_errors

from . import brain_models, plots
from .core.engine import Chunk, NetworkTooLarge, available_memory_bytes, estimate_memory_bytes
from .core.torch_backend import make_simulation
from .core.network import NetworkSpec, expected_synapse_count
from .requests import RequestError, SimulationPlan, network_spec, simulation_plan

#: bump when the engine's or this adapter's output changes, so cached results are not reused
SERVICE_VERSION = "0.1.0"
SERVICE_NAME = S.DESCRIPTOR.services_by_name["SimulationService"].full_name

NEURON_STEPS = neuromesh_counter("simulation_neuron_steps", "Neuron updates simulated: neurons x time steps")
SYNAPTIC_EVENTS = neuromesh_counter("simulation_synaptic_events", "Spikes delivered to synapses")
SPIKES = neuromesh_counter("simulation_spikes", "Spikes emitted by simulated neurons")
RUN_SECONDS = neuromesh_histogram("simulation_run_duration_seconds",
                                  "Wall time of a completed run: building the network and simulating it",
                                  buckets=HANDLING_SECONDS_BUCKETS)
RUNS_IN_PROGRESS = neuromesh_gauge("simulation_runs_in_progress", "Simulations being built or run right now")

#: Fractions of the progress given to each stage.
_STAGES = {"build": (0.0, 0.02), "simulate": (0.02, 0.95), "store": (0.95, 1.0)}
#: Elements copied from a spool file to the store per write (a multiple of the array's chunks).
_COPY_BYTES = 4 * TARGET_CHUNK_BYTES


def _request_checked(fn, *args):
    """``fn(*args)``; a :class:`RequestError` becomes INVALID_ARGUMENT naming its field."""
    try:
        return fn(*args)
    except RequestError as exc:
        raise InvalidArgument(str(exc), field=exc.field) from exc


def _too_large(exc: NetworkTooLarge) -> ResourceExhausted:
    return ResourceExhausted(str(exc), reason="NETWORK_TOO_LARGE", field="network",
                             metadata={"estimate_bytes": exc.estimate_bytes, "limit_bytes": exc.limit_bytes,
                                       **{f"{k}_bytes": v for k, v in exc.breakdown.items()}})


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


# ------------------------------------------------------------------------------------------------
# what a run writes as it goes


class _Spool:
    """Rows appended to a file on local disk, copied to a Zarr array once their number is known."""

    def __init__(self, path: Path, dtype: Any, row_shape: tuple[int, ...] = ()) -> None:
        self.path, self.dtype, self.row_shape = path, np.dtype(dtype), tuple(row_shape)
        self.rows = 0
        self._file = open(path, "wb")

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        block.tofile(self._file)
        self.rows += block.shape[0]

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def copy_to(self, writer: ArrayWriter, progress) -> None:
        """Write the rows into ``writer`` in blocks (C order, so the digest is computed on the way)."""
        self.close()
        if self.rows == 0:
            return
        row_bytes = self.dtype.itemsize * max(1, math.prod(self.row_shape))
        step = max(writer.chunks[0], _COPY_BYTES // row_bytes // writer.chunks[0] * writer.chunks[0])
        data = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.rows, *self.row_shape))
        for start in range(0, self.rows, step):
            progress()
            writer[start:start + step] = np.asarray(data[start:start + step])
        del data


class _CountBlocks:
    """Binned counts (bins x neurons, float32) written a block of whole chunk rows at a time."""

    def __init__(self, writer: ArrayWriter, n_bins: int) -> None:
        self.writer, self.n_bins = writer, n_bins
        self.rows = writer.chunks[0]
        self.start = 0                           # first bin held in the buffer
        self.buffer = np.zeros((min(self.rows, n_bins), writer.shape[1]), np.float32)

    def add(self, bins: np.ndarray, cols: np.ndarray, completed_bins: int) -> None:
        """Count spikes (``bins`` ascending) and write every block whose bins are all complete."""
        i = 0
        while i < bins.size:
            j = int(np.searchsorted(bins, self.start + self.rows, side="left"))
            if j > i:
                np.add.at(self.buffer, (bins[i:j] - self.start, cols[i:j]), 1)
            if j < bins.size:
                self._flush()
            i = j
        while self.start < self.n_bins and self.start + self.rows <= completed_bins:
            self._flush()

    def _flush(self) -> None:
        stop = min(self.start + self.rows, self.n_bins)
        self.writer[self.start:stop] = self.buffer[: stop - self.start]
        self.buffer[:] = 0
        self.start = stop

    def finish(self) -> None:
        while self.start < self.n_bins:
            self._flush()


@dataclass
class _Recorder:
    """Takes each chunk of a run and sends its parts where they go (see the module docstring)."""

    store: ArtifactStore
    plan: SimulationPlan
    prefix: str
    tmp: Path
    #: writers entered here are deleted when the stack closes before they are finalized
    stack: contextlib.ExitStack

    def __post_init__(self) -> None:
        spec, plan = self.spec, self.plan
        self.n_neurons = spec.n_neurons
        self.offsets = np.array([o for o in spec.offsets().values()], dtype=np.int64)
        recorded = {p.name for p in spec.populations} if spec.record_spikes is None else set(spec.record_spikes)
        self.recorded = [(p.name, off, p.size) for p, off in zip(spec.populations, self.offsets.tolist())
                         if p.name in recorded]
        self.spike_times = _Spool(self.tmp / "spike_times", np.float64)
        self.spike_ids = _Spool(self.tmp / "spike_ids", np.int64)
        self.traces = [_Spool(self.tmp / f"trace_{i}", np.float64, (len(m.variables), len(m.neurons)))
                       for i, m in enumerate(spec.state_monitors)]
        self.pop_counts = np.zeros((plan.n_bins, len(spec.populations)), np.int64)
        self.pop_totals = np.zeros(len(spec.populations), np.int64)
        # binned counts: the column of each population's first neuron (-1: not counted)
        self.count_column = np.full(len(spec.populations), -1, np.int64)
        column = 0
        for name in plan.count_populations:
            self.count_column[spec.population_index(name)] = column
            column += spec.population(name).size
        self.counts: _CountBlocks | None = None
        if column:
            rows = max(1, min(plan.n_bins, TARGET_CHUNK_BYTES // (4 * column)))
            writer = self.create("binned_counts", (plan.n_bins, column), np.float32,
                                 chunks=(rows, min(column, TARGET_CHUNK_BYTES // 4)))
            self.counts = _CountBlocks(writer, plan.n_bins)
        self.sample = plots.raster_sample(self.recorded)
        self.window_steps = int(round(_raster_window_ms(plan) / spec.dt_ms))
        self.sample_times: list[np.ndarray] = []
        self.sample_ids: list[np.ndarray] = []

    @property
    def spec(self) -> NetworkSpec:
        return self.plan.spec

    def create(self, name: str, shape: tuple[int, ...], dtype: Any,
               chunks: tuple[int, ...] | None = None) -> ArrayWriter:
        return self.stack.enter_context(self.store.create_array(f"{self.prefix}/{name}", shape, dtype,
                                                                chunks=chunks))

    def add(self, chunk: Chunk) -> None:
        dt, plan = self.spec.dt_ms, self.plan
        NEURON_STEPS.inc(chunk.n_steps * self.n_neurons)
        SYNAPTIC_EVENTS.inc(chunk.synaptic_events)
        self.pop_totals += chunk.population_counts.sum(axis=0)
        SPIKES.inc(int(chunk.population_counts.sum()))
        # population counts per bin: the chunk's steps are consecutive, so its bins are too
        bins = (chunk.first_step + np.arange(chunk.n_steps)) // plan.steps_per_bin
        keep = bins < plan.n_bins
        if keep.any():
            bins, counts = bins[keep], chunk.population_counts[keep]
            starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
            self.pop_counts[bins[starts]] += np.add.reduceat(counts.astype(np.int64), starts, axis=0)
        steps, ids = chunk.spike_steps, chunk.spike_ids.astype(np.int64)
        if steps.size:
            self.spike_times.append(steps.astype(np.float64) * dt)
            self.spike_ids.append(ids)
            if steps[0] < self.window_steps and self.sample.size:
                early = steps < self.window_steps
                pos = np.minimum(np.searchsorted(self.sample, ids[early]), self.sample.size - 1)
                hit = self.sample[pos] == ids[early]
                self.sample_times.append(steps[early][hit].astype(np.float64) * dt)
                self.sample_ids.append(ids[early][hit])
        if self.counts is not None:
            pop = np.searchsorted(self.offsets, ids, side="right") - 1
            columns = self.count_column[pop]
            spike_bins = steps // plan.steps_per_bin
            sel = (columns >= 0) & (spike_bins < plan.n_bins)
            completed = min(plan.n_bins, (chunk.first_step + chunk.n_steps) // plan.steps_per_bin)
            self.counts.add(spike_bins[sel], columns[sel] + ids[sel] - self.offsets[pop[sel]], completed)
        for spool, trace in zip(self.traces, chunk.traces):
            spool.append(trace)

    def close(self) -> None:
        for spool in (self.spike_times, self.spike_ids, *self.traces):
            spool.close()
        self.counts = None


def _raster_window_ms(plan: SimulationPlan) -> float:
    """Biological time the raster of the figure shows."""
    return min(plots.RASTER_WINDOW_MS, plan.duration_ms)


# ------------------------------------------------------------------------------------------------
# the servicer


#: bytes per synapse of the stored synapse table: two int64 ids and a float64 weight
SYNAPSE_TABLE_BYTES = 24


def synapse_table(sim) -> dict[str, np.ndarray]:
    """Every synapse of a built simulation: global pre/post ids, signed weight, projection starts.

    The sign comes from the target channel (inhibitory < 0), so CUBA and COBA networks read alike;
    projections follow the network's order.
    """
    pre_parts, post_parts, weight_parts, starts = [], [], [], [0]
    for i, proj in enumerate(sim.spec.projections):
        pre, post = sim.connections(i)
        weights = np.abs(np.asarray(sim.weights(i), dtype=np.float64))
        pre_parts.append(np.asarray(pre, np.int64) + sim.offsets[proj.source])
        post_parts.append(np.asarray(post, np.int64) + sim.offsets[proj.target])
        weight_parts.append(-weights if proj.synapse == "inh" else weights)
        starts.append(starts[-1] + len(weights))
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return {"pre_ids": np.concatenate(pre_parts) if pre_parts else empty_i,
            "post_ids": np.concatenate(post_parts) if post_parts else empty_i,
            "weights": np.concatenate(weight_parts) if weight_parts else empty_f,
            "projection_starts": np.asarray(starts, np.int64)}


class SimulationServicer(StoreBackedServicer, simulation_pb2_grpc.SimulationServiceServicer):
    """Simulation RPCs over a shared :class:`ArtifactStore`; ``threads`` is the engine's OpenMP threads."""

    def __init__(self, store: ArtifactStore, *, limiter: ComputeLimiter | None = None,
                 max_input_bytes: int = 8 * 2**30, threads: int = 1) -> None:
        super().__init__(store, limiter=limiter, max_input_bytes=max_input_bytes)
        self.threads = threads
        # identical requests run one at a time: the second finds the first one's stored result
        self._prefix_locks: dict[str, list[Any]] = {}

    # --- EstimateMemory

    async def EstimateMemory(self, request, context):
        if not request.HasField("network"):
            raise InvalidArgument("network is required: populations and projections, or a circuit", field="network")
        spec = _request_checked(network_spec, request.network)
        breakdown = estimate_memory_bytes(spec, threads=self.threads)
        total, limit = sum(breakdown.values()), available_memory_bytes()
        return S.EstimateMemoryResponse(total_bytes=total, breakdown_bytes=breakdown, limit_bytes=limit,
                                        fits=total <= limit, n_neurons=spec.n_neurons,
                                        expected_synapses=sum(expected_synapse_count(spec, p)
                                                              for p in spec.projections))

    # --- Simulate

    async def Simulate(self, request, context):
        plan = _request_checked(simulation_plan, request)
        prefix = result_prefix("simulation", "Simulate", request, SERVICE_VERSION)
        stored = await self.stored_result(prefix, S.SimulateResult)
        if stored is not None:
            yield S.SimulateResponse(result=stored)
            return
        limit = self._check_fits(plan)
        async with self._one_run_per_prefix(prefix):
            stored = await self.stored_result(prefix, S.SimulateResult)
            if stored is not None:
                yield S.SimulateResponse(result=stored)
                return
            outcome = None
            async with self.limiter.slot():
                # what an interrupted run of this request left (no report: it never finished)
                await asyncio.to_thread(_remove_prefix, self.store, prefix)
                RUNS_IN_PROGRESS.inc()
                try:
                    async for event in stream_progress(self._run, plan, prefix, limit):
                        if event.progress is not None:
                            yield S.SimulateResponse(progress=event.progress)
                        else:
                            outcome = event.result
                finally:
                    RUNS_IN_PROGRESS.dec()
            RUN_SECONDS.observe(outcome.build_s + outcome.simulate_s)
            yield S.SimulateResponse(result=await self.store_result(prefix, outcome, request, SERVICE_VERSION))

    @contextlib.asynccontextmanager
    async def _one_run_per_prefix(self, prefix: str):
        entry = self._prefix_locks.setdefault(prefix, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._prefix_locks[prefix]

    def _check_fits(self, plan: SimulationPlan) -> int:
        """The engine's memory limit for this run; RESOURCE_EXHAUSTED when the network or an output is too big."""
        breakdown = estimate_memory_bytes(plan.spec, threads=self.threads)
        estimate, limit = sum(breakdown.values()), available_memory_bytes()
        if estimate > limit:
            raise _too_large(NetworkTooLarge(estimate, limit, breakdown))
        cap = f"NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}"
        if plan.binned_counts_bytes > self.max_input_bytes:
            n_bins, n_cols = plan.binned_counts_shape
            raise ResourceExhausted(
                f"binned counts of {n_bins} bins x {n_cols} neurons ({_gib(plan.binned_counts_bytes)}) would be "
                f"larger than the services load ({cap}); count fewer populations (count_populations) or use longer "
                f"bins (bin_ms)", field="count_populations")
        for i, _ in enumerate(plan.spec.state_monitors):
            if plan.trace_bytes(i) > self.max_input_bytes:
                raise ResourceExhausted(
                    f"state monitor {i} would record {plan.trace_samples(i)} samples ({_gib(plan.trace_bytes(i))}), "
                    f"more than {cap}; record fewer neurons or variables, or sample less often (every_ms)",
                    field=f"network.state_monitors[{i}]")
        if plan.rates_bytes > self.max_input_bytes:
            raise ResourceExhausted(f"{plan.n_bins} bins are too many ({cap}); use longer bins", field="bin_ms")
        return limit

    def _run(self, progress, plan: SimulationPlan, prefix: str, memory_limit: int) -> S.SimulateResult:
        """Build, run and store (in a worker thread); ``progress`` raises once the call is cancelled."""
        def report(*, fraction_done: float, stage: str, message: str = "", counters=None) -> None:
            lo, hi = _STAGES.get(stage, (0.0, 1.0))
            progress(fraction_done=lo + (hi - lo) * fraction_done, stage=stage, message=message, counters=counters)

        spec = plan.spec
        sim = recorder = None
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="neuromesh-simulation-")))
            try:
                try:
                    # the compiled CPU engine, or the torch backend on a GPU for large static networks
                    sim = make_simulation(spec, threads=self.threads, memory_limit_bytes=memory_limit, report=report)
                except NetworkTooLarge as exc:
                    raise _too_large(exc) from None
                if plan.record_connectivity and SYNAPSE_TABLE_BYTES * sim.synapse_count > self.max_input_bytes:
                    raise ResourceExhausted(
                        f"record_connectivity would store {sim.synapse_count} synapses "
                        f"({_gib(SYNAPSE_TABLE_BYTES * sim.synapse_count)}), more than the services load "
                        f"(NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}); simulate a smaller network or leave "
                        f"record_connectivity off", field="record_connectivity")
                recorder = _Recorder(self.store, plan, prefix, tmp, stack)
                run = sim.run(plan.duration_ms, report=report, on_chunk=recorder.add)
                engine = {"synapse_count": sim.synapse_count, "build_s": sim.build_seconds,
                          "memory_estimate_bytes": sim.memory_estimate_bytes}
                trace_times = [sim.monitor_times_ms(i, 0, spool.rows) for i, spool in enumerate(recorder.traces)]
                plastic = {i: (sim.weights_before[i], sim.weights(i), *sim.connections(i)) for i in sim.weights_before}
                synapses = synapse_table(sim) if plan.record_connectivity else None
                sim = None                            # the engine's memory goes now, before the uploads
                report(fraction_done=0.0, stage="store", message="storing spikes and traces")
                return self._store_outputs(recorder, run, engine, trace_times, plastic, synapses,
                                           lambda: report(fraction_done=0.5, stage="store",
                                                          message="storing spikes and traces"))
            finally:
                sim = None
                if recorder is not None:
                    recorder.close()

    def _store_outputs(self, rec: _Recorder, run, engine: dict[str, Any], trace_times: list[np.ndarray],
                       plastic: dict[int, tuple[np.ndarray, ...]], synapses: dict[str, np.ndarray] | None,
                       checkpoint) -> S.SimulateResult:
        plan, spec, prefix, store = rec.plan, rec.spec, rec.prefix, self.store

        def copied(name: str, spool: _Spool) -> ArrayWriter:
            writer = rec.create(name, (spool.rows, *spool.row_shape), spool.dtype)
            spool.copy_to(writer, checkpoint)
            return writer

        if rec.counts is not None:
            rec.counts.finish()
        spikes = [copied("spike_times", rec.spike_times), copied("spike_ids", rec.spike_ids)]
        trace_writers = [copied(f"traces/{i}/values", spool) for i, spool in enumerate(rec.traces)]
        checkpoint()
        # every array is complete: seal them together (a run cancelled before leaves none finalized)
        spike_times_ref, spike_ids_ref = (w.finalize() for w in spikes)
        trace_refs = [w.finalize() for w in trace_writers]
        counts_ref = rec.counts.writer.finalize() if rec.counts is not None else None

        def put_array(key: str, value: np.ndarray):
            return store.put_array(f"{prefix}/{key}", value, if_exists="return_existing")

        sizes = np.array([p.size for p in spec.populations], dtype=float)
        rates = (rec.pop_counts / sizes / (plan.steps_per_bin * spec.dt_ms * 1e-3)).astype(np.float32)
        totals = rec.pop_totals
        recorded = {name for name, _, _ in rec.recorded}
        populations = [S.PopulationSummary(
            name=p.name, offset=int(off), size=p.size, model=p.model, spikes=int(n),
            rate_hz=float(n / p.size / (run.duration_ms * 1e-3)), recorded=p.name in recorded,
            count_column=int(col)) for p, off, n, col in zip(spec.populations, rec.offsets, totals, rec.count_column)]
        result = S.SimulateResult(
            spike_times=spike_times_ref, spike_ids=spike_ids_ref, bin_ms=plan.bin_ms, n_bins=plan.n_bins,
            populations=populations, duration_ms=run.duration_ms, n_neurons=spec.n_neurons, n_spikes=run.spikes,
            synapse_count=engine["synapse_count"], synaptic_events=run.synaptic_events,
            neuron_steps=run.neuron_steps, build_s=engine["build_s"], simulate_s=run.simulate_seconds,
            synaptic_events_per_second=run.synaptic_events / run.simulate_seconds if run.simulate_seconds > 0 else 0.0)
        if counts_ref is not None:
            result.binned_counts.CopyFrom(counts_ref)
        result.population_rates.CopyFrom(put_array("population_rates", rates))
        result.population_table.CopyFrom(store.put_json(f"{prefix}/populations.json", [
            {"name": p.name, "offset": p.offset, "size": p.size, "model": p.model, "recorded": p.recorded}
            for p in populations], if_exists="return_existing"))
        for i, (mon, values) in enumerate(zip(spec.state_monitors, trace_refs)):
            result.traces.add(population=mon.population, variables=list(mon.variables), neurons=list(mon.neurons),
                              values=values, times=put_array(f"traces/{i}/times", trace_times[i]))
        for i, (before, after, pre, post) in plastic.items():
            proj = spec.projections[i]
            result.weights.add(projection=i, source=proj.source, target=proj.target,
                               weights_before=put_array(f"weights/{i}/before", before),
                               weights_after=put_array(f"weights/{i}/after", after),
                               pre_indices=put_array(f"weights/{i}/pre_indices", np.asarray(pre, np.int64)),
                               post_indices=put_array(f"weights/{i}/post_indices", np.asarray(post, np.int64)))
        if synapses is not None:
            result.synapses.CopyFrom(S.SynapseTable(
                pre_ids=put_array("synapses/pre_ids", synapses["pre_ids"]),
                post_ids=put_array("synapses/post_ids", synapses["post_ids"]),
                weights=put_array("synapses/weights", synapses["weights"]),
                n_synapses=len(synapses["weights"]), projection_starts=synapses["projection_starts"].tolist()))
        checkpoint()
        times = np.concatenate(rec.sample_times) if rec.sample_times else np.zeros(0)
        ids = np.concatenate(rec.sample_ids) if rec.sample_ids else np.zeros(0, np.int64)
        figure = plots.raster_figure(
            times, ids, populations=rec.recorded, sample=rec.sample, window_ms=_raster_window_ms(plan), bin_ms=plan.bin_ms,
            rates=rates, rate_names=[p.name for p in spec.populations],
            title=f"{spec.n_neurons} neurons, {run.duration_ms:g} ms: {len(rec.sample)} sampled neurons")
        result.figure.CopyFrom(store.put_bytes(f"{prefix}/figure.png", figure, media_type=PNG,
                                               if_exists="return_existing"))
        summary = {
            "duration_ms": run.duration_ms, "dt_ms": spec.dt_ms, "n_steps": run.n_steps, "seed": int(spec.seed),
            "dtype": spec.dtype, "threads": self.threads, "n_neurons": spec.n_neurons,
            "n_spikes": run.spikes, "n_recorded_spikes": int(rec.spike_ids.rows),
            "synapse_count": engine["synapse_count"], "synaptic_events": run.synaptic_events,
            "neuron_steps": run.neuron_steps, "build_s": engine["build_s"], "simulate_s": run.simulate_seconds,
            "synaptic_events_per_second": result.synaptic_events_per_second,
            "memory_estimate_bytes": engine["memory_estimate_bytes"], "bin_ms": plan.bin_ms, "n_bins": plan.n_bins,
            "count_populations": list(plan.count_populations),
            "rates_hz": {p.name: p.rate_hz for p in populations},
            "populations": [{"name": p.name, "offset": p.offset, "size": p.size, "model": p.model,
                             "spikes": p.spikes, "rate_hz": p.rate_hz, "recorded": p.recorded,
                             "count_column": p.count_column} for p in populations],
            "service_version": SERVICE_VERSION,
        }
        result.summary.CopyFrom(store.put_json(f"{prefix}/summary.json", summary, if_exists="return_existing"))
        return result

    # --- brain models: BayesianObserver, TrainPredictiveCoding (services/simulation/brain_models.py)

    async def _resolve_input(self, ref, field: str):
        """The stored ref of an input array; NOT_FOUND naming ``field`` when it is missing."""
        try:
            return await self.resolve(ref, field, array=True)
        except NotFound as exc:
            raise NotFound(f"{field}: {exc.message}", reason=exc.reason, field=field, metadata=exc.metadata) from None

    async def BayesianObserver(self, request, context):
        options = brain_models.observer_options(request)
        resolved = S.BayesianObserverRequest()
        resolved.CopyFrom(request)
        for name in options.inputs:
            getattr(resolved, name).CopyFrom(await self._resolve_input(getattr(request, name), name))
        prefix = result_prefix("simulation", "BayesianObserver", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, S.BayesianObserverResponse)
        if stored is not None:
            return stored
        arrays = {name: await self.load(getattr(resolved, name)) for name in options.inputs}
        # a unary call streams nothing, but a long fit (bootstrap) still stops when the client leaves
        gone = threading.Event()
        context.add_done_callback(lambda _: gone.set())

        def checkpoint(**_) -> None:
            if gone.is_set():
                raise Cancelled("the call was cancelled by the client")

        def work() -> S.BayesianObserverResponse:
            outcome = brain_models.run_observer(options, arrays, checkpoint)
            return brain_models.store_outcome(self.store, prefix, outcome)

        response = await self.compute(work)
        return await self.store_result(prefix, response, resolved, SERVICE_VERSION)

    async def TrainPredictiveCoding(self, request, context):
        options = brain_models.predictive_coding_options(request, max_bytes=self.max_input_bytes)
        resolved = S.TrainPredictiveCodingRequest()
        resolved.CopyFrom(request)
        for i, ref in enumerate(request.images):
            resolved.images[i].CopyFrom(await self._resolve_input(ref, f"images[{i}]"))
        prefix = result_prefix("simulation", "TrainPredictiveCoding", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, S.TrainPredictiveCodingResult)
        if stored is not None:
            yield S.TrainPredictiveCodingResponse(result=stored)
            return
        images = [await self.load(ref) for ref in resolved.images]

        def work(progress) -> S.TrainPredictiveCodingResult:
            outcome = brain_models.run_predictive_coding(options, images, progress)
            return brain_models.store_outcome(self.store, prefix, outcome, progress)

        result = None
        async with self.limiter.slot():
            async with contextlib.aclosing(stream_progress(work)) as events:
                async for event in events:
                    if event.progress is not None:
                        yield S.TrainPredictiveCodingResponse(progress=event.progress)
                    else:
                        result = event.result
        yield S.TrainPredictiveCodingResponse(result=await self.store_result(prefix, result, resolved,
                                                                             SERVICE_VERSION))


def _remove_prefix(store: ArtifactStore, prefix: str) -> None:
    """Delete every object under ``prefix/`` (the partial outputs of a run that did not finish)."""
    with translate_s3_errors(store.bucket, prefix):
        names = [o.object_name for o in store.client.list_objects(store.bucket, prefix=f"{prefix}/", recursive=True)]
        if not names:
            return
        failures = list(store.client.remove_objects(store.bucket, (DeleteObject(n) for n in names)))
    if failures:
        raise NeuroMeshError(f"could not delete {len(failures)} partial outputs under s3://{store.bucket}/{prefix}/: "
                             f"{failures[0]}")


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    limiter = ComputeLimiter(threads=settings.compute_threads, apply=True)
    servicer = SimulationServicer(store, limiter=limiter, max_input_bytes=settings.max_input_bytes,
                                  threads=settings.compute_threads)
    return ServiceDefinition(name="simulation", servicer=servicer,
                             add_to_server=simulation_pb2_grpc.add_SimulationServiceServicer_to_server,
                             service_full_name=SERVICE_NAME, version=SERVICE_VERSION)
