"""The torch backend against the compiled CPU engine (torch on the CPU here; a CUDA test where there is a GPU)."""

from __future__ import annotations

import doctest
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from services.simulation.core import (  # noqa: E402
    IZHIKEVICH_REGIMES, Connectivity, CurrentInput, InitialValue, NetworkSpec, NetworkTooLarge, Plasticity,
    PoissonInput, Population, Projection, Simulation, StateMonitor, vogels_abbott,
)
from services.simulation.core import torch_backend  # noqa: E402
from services.simulation.core.torch_backend import TorchSimulation, make_simulation  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(sim, duration_ms, **kwargs):
    """Everything a run's chunks carried, joined: (spike steps, spike ids, counts, traces, summary, chunks)."""
    chunks = []
    summary = sim.run(duration_ms, on_chunk=chunks.append, **kwargs)
    steps = np.concatenate([c.spike_steps for c in chunks])
    ids = np.concatenate([c.spike_ids for c in chunks])
    counts = np.concatenate([c.population_counts for c in chunks])
    traces = [np.concatenate([c.traces[i] for c in chunks]) for i in range(len(sim.spec.state_monitors))]
    return steps, ids, counts, traces, summary, chunks


def both(spec, duration_ms):
    return run(Simulation(spec), duration_ms), run(TorchSimulation(spec, device="torch-cpu"), duration_ms)


def rates_hz(spec, counts, duration_ms):
    return counts.sum(axis=0) / np.array([p.size for p in spec.populations]) / (duration_ms * 1e-3)


# ----------------------------------------------------------------------------- single neurons
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lif_under_constant_current_spikes_at_the_engines_steps(dtype):
    # six neurons, each with its own drive (10.5 mV is just above rheobase, where rounding matters
    # most), switched on and off inside the run; no randomness after the initial state
    drives = (10.5, 11.0, 12.0, 15.0, 25.0, 60.0)
    spec = NetworkSpec((Population("cell", len(drives), "lif_cuba", params={"v_rest": -60.0, "refractory_ms": 2.0},
                                   initial={"v": InitialValue("uniform", -60.0, -50.0)}),),
                       current_inputs=tuple(CurrentInput("cell", amplitude=a, start_ms=2.0, stop_ms=250.0, neurons=(i,))
                                            for i, a in enumerate(drives)),
                       state_monitors=(StateMonitor("cell", (0, 5), ("v", "g_exc")),), dtype=dtype, seed=4)
    cpu, gpu = both(spec, 300.0)
    assert cpu[0].size > 50
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])
    np.testing.assert_array_equal(gpu[2], cpu[2])
    if dtype == "float32":   # the same rounding as the engine's loop: the same membrane potentials
        np.testing.assert_array_equal(gpu[3][0], cpu[3][0])
    else:
        np.testing.assert_allclose(gpu[3][0], cpu[3][0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_izhikevich_regimes_spike_within_a_step_of_the_engine(dtype):
    # one neuron per regime: per-neuron parameters within one block of Izhikevich populations
    names = tuple(IZHIKEVICH_REGIMES)
    spec = NetworkSpec(tuple(Population(name, 1, "izhikevich", params=IZHIKEVICH_REGIMES[name]) for name in names),
                       current_inputs=tuple(CurrentInput(name, amplitude=10.0, start_ms=5.0) for name in names),
                       dtype=dtype)
    cpu, gpu = both(spec, 300.0)
    for g in range(len(IZHIKEVICH_REGIMES)):
        a, b = cpu[0][cpu[1] == g], gpu[0][gpu[1] == g]
        assert a.size > 3 and a.size == b.size
        assert np.abs(a - b).max() <= 1
        if dtype == "float32":   # the engine's rounding (FMAs included): the same steps
            np.testing.assert_array_equal(a, b)


def test_delayed_projection_arrives_when_it_does_in_the_engine():
    # a driven cell excites a target through a 1.5 ms delay and inhibits it without delay
    spec = NetworkSpec((Population("src", 1, "lif_cuba", params={"v_rest": -60.0},
                                   initial={"v": InitialValue("constant", -60.0)}),
                        Population("tgt", 1, "lif_cuba", initial={"v": InitialValue("constant", -60.0)})),
                       (Projection("src", "tgt", synapse="exc", weight=2.0, delay_ms=1.5,
                                   connectivity=Connectivity("all_to_all")),
                        Projection("src", "tgt", synapse="inh", weight=-1.0, connectivity=Connectivity("all_to_all"))),
                       current_inputs=(CurrentInput("src", amplitude=15.0),),
                       state_monitors=(StateMonitor("tgt", (0,), ("g_exc", "g_inh")),), dt_ms=0.1)
    cpu, gpu = both(spec, 60.0)
    first_spike = int(cpu[0][cpu[1] == 0][0])
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[3][0], cpu[3][0])
    g_exc, g_inh = gpu[3][0][:, 0, 0], gpu[3][0][:, 1, 0]
    # monitors record at the start of a step: an undelayed spike shows one step later, a delayed
    # one 15 steps after that
    assert np.nonzero(g_inh)[0][0] == first_spike + 1
    assert np.nonzero(g_exc)[0][0] == first_spike + 15 + 1


# ----------------------------------------------------------------------------- networks
@pytest.mark.parametrize("kind", ["cuba", "coba"])
def test_vogels_abbott_has_the_engines_connectivity_and_rates(kind):
    spec = vogels_abbott(kind, 2000)
    cpu_sim, gpu_sim = Simulation(spec), TorchSimulation(spec, device="torch-cpu")
    assert gpu_sim.synapse_count == cpu_sim.synapse_count
    for i in range(len(spec.projections)):
        for a, b in zip(cpu_sim.connections(i), gpu_sim.connections(i)):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        np.testing.assert_array_equal(cpu_sim.weights(i), gpu_sim.weights(i))
    for var in ("v", "g_exc", "g_inh"):
        np.testing.assert_array_equal(cpu_sim.state(var), gpu_sim.state(var))
    cpu, gpu = run(cpu_sim, 300.0), run(gpu_sim, 300.0)
    cpu_rates, gpu_rates = rates_hz(spec, cpu[2], 300.0), rates_hz(spec, gpu[2], 300.0)
    assert np.all(cpu_rates > 2.0)
    np.testing.assert_allclose(gpu_rates, cpu_rates, rtol=0.10)
    assert gpu[4].synaptic_events == pytest.approx(cpu[4].synaptic_events, rel=0.10)
    if kind == "cuba":
        # no randomness after the build, the engine's rounding, and each neuron's inputs summed in
        # the engine's order: on the CPU the chaotic network does not even diverge
        np.testing.assert_array_equal(gpu[0], cpu[0])
        np.testing.assert_array_equal(gpu[1], cpu[1])


def test_busy_steps_are_delivered_in_batches_with_the_same_result(monkeypatch):
    # a step with more synaptic events than EVENT_BATCH is split by spikes; the CUDA path's
    # nonzero_static (no wait for the output size) gives the same indices as nonzero
    monkeypatch.setattr(torch_backend, "EVENT_BATCH", 64)
    spec = vogels_abbott("cuba", 2000)
    sim = TorchSimulation(spec, device="torch-cpu")
    assert sim._event_batch < 200
    sim._nonzero = torch_backend._nonzero_static
    cpu, gpu = run(Simulation(spec), 40.0), run(sim, 40.0)
    assert gpu[4].synaptic_events == cpu[4].synaptic_events > 10_000
    np.testing.assert_array_equal(gpu[1], cpu[1])
    np.testing.assert_array_equal(gpu[0], cpu[0])


def test_poisson_population_fires_at_its_rate():
    spec = NetworkSpec((Population("p", 1000, "poisson", params={"rate_hz": 20.0}),
                        Population("q", 500, "poisson", params={"rate_hz": 40.0, "start_ms": 100.0})), seed=7)
    steps, ids, counts, _, summary, _ = run(TorchSimulation(spec, device="torch-cpu"), 300.0)
    assert counts[:, 0].sum() / 1000 / 0.3 == pytest.approx(20.0, rel=0.05)   # 6000 spikes expected
    assert counts[:1000, 1].sum() == 0                                       # q starts at 100 ms
    assert counts[1000:, 1].sum() / 500 / 0.2 == pytest.approx(40.0, rel=0.05)
    assert summary.spikes == ids.size == counts.sum()
    # the same seed gives the same spikes on the same device
    again = run(TorchSimulation(spec, device="torch-cpu"), 50.0)
    np.testing.assert_array_equal(again[1], ids[steps < 500])


def test_poisson_drive_gives_the_expected_mean_input():
    # 50 sources at 10 Hz with weight 0.5 onto g_exc (tau 5 ms): mean g = w * lambda / (1 - exp(-dt/tau))
    spec = NetworkSpec((Population("cell", 2000, "lif_cuba", params={"v_threshold": 1000.0}),),
                       poisson_inputs=(PoissonInput("cell", rate_hz=10.0, weight=0.5, n_sources=50),), seed=3)
    sim = TorchSimulation(spec, device="torch-cpu")
    sim.run(50.0)
    lam = 50 * 10.0 * 0.1e-3
    expected = 0.5 * lam / (1 - np.exp(-0.1 / 5.0))
    assert sim.state("g_exc").mean() == pytest.approx(expected, rel=0.05)
    assert sim.time_ms == pytest.approx(50.0)


def test_chunks_have_the_engines_layout_and_recorded_subsets():
    spec = replace(vogels_abbott("cuba", 500), record_spikes=("inh",),
                   state_monitors=(StateMonitor("exc", (0, 3, 7), ("v", "g_inh"), every_ms=0.3),
                                   StateMonitor("inh", (1,), ("g_exc",), every_ms=1.0)))
    reports = []
    cpu = run(Simulation(spec), 40.0)
    gpu_sim = TorchSimulation(spec, device="torch-cpu")
    gpu = run(gpu_sim, 40.0, report=lambda **kw: reports.append(kw), chunk_seconds=0.01)
    for a, b in zip(cpu[:3], gpu[:3]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    for a, b in zip(cpu[3], gpu[3]):
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert np.all(gpu[1] >= 400)   # only inh (ids 400..499) recorded; counts cover every population
    assert gpu[2][:, 0].sum() > 0
    chunk = gpu[5][0]
    assert chunk.first_step == 0 and chunk.population_counts.shape == (chunk.n_steps, 2)
    assert chunk.population_counts.dtype == np.int32 and chunk.spike_steps.dtype == np.int64
    assert sum(c.synaptic_events for c in gpu[5]) == gpu[4].synaptic_events == cpu[4].synaptic_events
    assert reports[-1]["fraction_done"] == 1.0 and reports[-1]["stage"] == "simulate"
    assert reports[-1]["counters"]["spikes"] == gpu[4].spikes
    np.testing.assert_allclose(gpu_sim.monitor_times_ms(0, 2, 3), [0.6, 0.9, 1.2])
    assert gpu_sim.threads == 1 and gpu_sim.weights_before == {} and gpu_sim.build_seconds > 0
    # a report that raises cancels the run after the current chunk
    with pytest.raises(KeyboardInterrupt):
        gpu_sim.run(10.0, report=lambda **kw: (_ for _ in ()).throw(KeyboardInterrupt()))


# ----------------------------------------------------------------------------- choosing, refusing
def test_plastic_specs_stay_on_the_cpu_engine():
    spec = NetworkSpec((Population("a", 20), Population("b", 20)),
                       (Projection("a", "b", weight=0.5, connectivity=Connectivity("fixed_probability", 0.2),
                                   plasticity=Plasticity(w_max=1.0)),))
    with pytest.raises(ValueError, match="plasticity runs on the CPU engine; use device='cpu'"):
        TorchSimulation(spec, device="torch-cpu")
    with pytest.raises(ValueError, match="plasticity runs on the CPU engine"):
        make_simulation(spec, device="torch-cpu")
    assert isinstance(make_simulation(spec), Simulation)          # None: never the GPU for plastic specs


def test_make_simulation_picks_the_backend():
    spec = vogels_abbott("cuba", 100)
    assert isinstance(make_simulation(spec, device="cpu", threads=2), Simulation)
    assert isinstance(make_simulation(spec, device="torch-cpu"), TorchSimulation)
    expected = TorchSimulation if torch.cuda.is_available() else Simulation
    assert isinstance(make_simulation(spec), expected)
    with pytest.raises(ValueError, match="device must be"):
        make_simulation(spec, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            make_simulation(spec, device="cuda")


def test_too_large_for_the_device_is_refused_before_building():
    spec = vogels_abbott("cuba", 4000)
    estimate = sum(torch_backend.estimate_device_memory_bytes(spec).values())
    with pytest.raises(NetworkTooLarge) as info:
        TorchSimulation(spec, device="torch-cpu", memory_limit_bytes=estimate - 1)
    assert info.value.estimate_bytes == estimate and "synapses" in info.value.breakdown
    sim = TorchSimulation(spec, device="torch-cpu", memory_limit_bytes=estimate)
    assert sim.memory_estimate_bytes == estimate


def test_docstring_examples():
    result = doctest.testmod(torch_backend, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuba_on_cuda_has_the_engines_rates():
    spec = vogels_abbott("cuba", 4000)
    cpu_sim, gpu_sim = Simulation(spec), make_simulation(spec, device="cuda")
    assert isinstance(gpu_sim, TorchSimulation) and gpu_sim.device.type == "cuda"
    for i in range(len(spec.projections)):
        for a, b in zip(cpu_sim.connections(i), gpu_sim.connections(i)):
            np.testing.assert_array_equal(a, b)
    cpu, gpu = run(cpu_sim, 300.0), run(gpu_sim, 300.0)
    cpu_rates, gpu_rates = rates_hz(spec, cpu[2], 300.0), rates_hz(spec, gpu[2], 300.0)
    assert np.all(cpu_rates > 2.0)
    np.testing.assert_allclose(gpu_rates, cpu_rates, rtol=0.10)
    assert gpu[1].dtype == np.int32 and gpu[0].dtype == np.int64
