"""The servicer's streaming of a run into arrays, against in-memory writers: whatever the chunking
of the run and of the arrays, the streamed spikes, counts, rates and traces are the core's."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from neuromesh.simulation.v1 import simulation_pb2 as S
from services.common.store import choose_chunks
from services.simulation import servicer
from services.simulation.core import Simulation, simulate
from services.simulation.requests import simulation_plan


class MemoryWriter:
    """An ArrayWriter that keeps the array in memory and counts its writes."""

    def __init__(self, shape, dtype, chunks=None):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.chunks = tuple(chunks) if chunks is not None else choose_chunks(self.shape, self.dtype.itemsize)
        self.data = np.full(self.shape, -1, self.dtype)
        self.writes = 0
        self.finalized = self.aborted = False

    def __setitem__(self, selection, block):
        self.data[selection] = block
        self.writes += 1

    def finalize(self):
        self.finalized = True
        return self.data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.finalized:
            self.aborted = True


class MemoryStore:
    def __init__(self):
        self.arrays: dict[str, MemoryWriter] = {}

    def create_array(self, key, shape, dtype, *, chunks=None):
        self.arrays[key] = MemoryWriter(shape, dtype, chunks)
        return self.arrays[key]


def network() -> S.Network:
    return S.Network(
        populations=[S.Population(name="drive", size=30, model=S.NEURON_MODEL_POISSON, params={"rate_hz": 40.0}),
                     S.Population(name="exc", size=40), S.Population(name="inh", size=10)],
        projections=[S.Projection(source="drive", target="exc", weight=2.0, connectivity=S.Connectivity(
                         rule=S.CONNECTIVITY_RULE_FIXED_PROBABILITY, value=0.2)),
                     S.Projection(source="exc", target="inh", weight=1.5, delay_ms=1.0, connectivity=S.Connectivity(
                         rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=8))],
        state_monitors=[S.StateMonitor(population="inh", neurons=[0, 3, 9], variables=["v", "g_exc"], every_ms=0.3)],
        seed=9)


@pytest.mark.parametrize("count_populations", [(), ("inh", "drive")])
def test_streamed_outputs_equal_the_core_whatever_the_chunking(monkeypatch, tmp_path, count_populations):
    # tiny array chunks and copy blocks, and a run in many engine chunks: every block boundary is crossed
    monkeypatch.setattr(servicer, "TARGET_CHUNK_BYTES", 4 * 80 * 3)
    monkeypatch.setattr(servicer, "_COPY_BYTES", 8 * 37)
    request = S.SimulateRequest(network=network(), duration_ms=203.7, bin_ms=2.0,
                                count_populations=list(count_populations))
    plan = simulation_plan(request)
    expected = simulate(plan.spec, plan.duration_ms)
    store = MemoryStore()
    with contextlib.ExitStack() as stack:
        recorder = servicer._Recorder(store, plan, "run", tmp_path, stack)
        sim = Simulation(plan.spec)
        chunks = []
        sim.run(plan.duration_ms, chunk_seconds=1e-5, on_chunk=lambda c: (chunks.append(c.n_steps), recorder.add(c)))
        assert len(chunks) > 10
        recorder.counts.finish()
        copies = {}
        for name, spool in [("times", recorder.spike_times), ("ids", recorder.spike_ids),
                            ("trace", recorder.traces[0])]:
            copies[name] = MemoryWriter((spool.rows, *spool.row_shape), spool.dtype, chunks=(5, *spool.row_shape))
            spool.copy_to(copies[name], lambda: None)
            assert copies[name].writes > 1
        recorder.close()

    np.testing.assert_array_equal(copies["times"].data, expected.spike_times_ms)
    np.testing.assert_array_equal(copies["ids"].data, expected.spike_ids)
    np.testing.assert_array_equal(copies["trace"].data, expected.traces[0])

    counted = count_populations or ("drive", "exc", "inh")
    columns = np.concatenate([np.arange(expected.offsets[p], expected.offsets[p] + plan.spec.population(p).size)
                              for p in counted])
    n_bins = 101   # 2037 steps of 0.1 ms in bins of 20 steps; the incomplete last bin is dropped
    truth = np.zeros((n_bins, plan.spec.n_neurons), np.float32)
    steps = np.round(expected.spike_times_ms / 0.1).astype(int)
    keep = steps // 20 < n_bins
    np.add.at(truth, (steps[keep] // 20, expected.spike_ids[keep]), 1)
    counts = store.arrays["run/binned_counts"]
    rows = 4 * 80 * 3 // (4 * len(columns))
    assert counts.chunks[0] == rows < n_bins and counts.writes == -(-n_bins // rows)
    np.testing.assert_array_equal(counts.data, truth[:, columns])

    np.testing.assert_array_equal(recorder.pop_counts, expected.population_counts[:n_bins * 20].reshape(
        n_bins, 20, -1).sum(axis=1))
    np.testing.assert_array_equal(recorder.pop_totals, expected.population_counts.sum(axis=0))
    # the raster keeps exactly the sampled neurons' spikes of its window
    times, ids = np.concatenate(recorder.sample_times), np.concatenate(recorder.sample_ids)
    sel = np.isin(expected.spike_ids, recorder.sample)
    np.testing.assert_array_equal(times, expected.spike_times_ms[sel])
    np.testing.assert_array_equal(ids, expected.spike_ids[sel])


def test_a_run_that_fails_leaves_its_writers_unfinalized(tmp_path):
    plan = simulation_plan(S.SimulateRequest(network=network(), duration_ms=50.0))
    store = MemoryStore()
    with pytest.raises(RuntimeError), contextlib.ExitStack() as stack:
        servicer._Recorder(store, plan, "run", tmp_path, stack)
        raise RuntimeError("cancelled")
    assert store.arrays["run/binned_counts"].aborted
