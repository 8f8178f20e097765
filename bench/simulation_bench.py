"""The simulation engine against Brian2 and NEST on the Vogels & Abbott benchmark networks.

Networks (``services.simulation.core.vogels_abbott``; the peers build the same ones themselves):

* **CUBA**: Brian2's ``examples/CUBA.py``: ``dv/dt = (ge + gi - (v - El)) / taum`` with ``ge``,
  ``gi`` in mV of drive, taum 20 ms, taue 5 ms, taui 10 ms, Vt -50 mV, Vr -60 mV, El -49 mV,
  refractory 5 ms, exact (formerly 'linear') integration, we = 60*0.27/10 mV, wi = -20*4.5/10 mV,
  v0 uniform in [Vr, Vt).
* **COBA**: benchmark 1 of Brette et al. (2007) as run by the Brian team:
  ``dv/dt = (ge*(Ee - v) + gi*(Ei - v) - (v - El) + I) / taum``, I = 20 mV, El -60 mV, Ee 0,
  Ei -80 mV, taue 5 ms, taui 10 ms, ge and gi dimensionless (units of the leak conductance),
  we = 0.6, wi = 6.7, forward Euler, refractory 5 ms, Vt -50 mV, Vr -60 mV, v0 ~ N(-55, 5) mV.

80 % excitatory, 20 % inhibitory neurons, each pair connected with probability 80 / N (0.02 at
the original 4,000 neurons, so larger networks keep the in-degree and the weights), no delays,
dt = 0.1 ms, ``--duration-ms`` (1 s) of biological time, every spike recorded.

Simulators, side by side in one run:

* **NeuroMesh** (``Simulation(spec, threads=T)``; the C++/OpenMP extension is compiled when the
  package is installed, as NEST's binary is when it is, so no compilation is timed). The engine
  uses at most one thread per ``MIN_NEURONS_PER_THREAD`` neurons; ``threads_used`` records what
  it used, and the table shows ``2>1`` where it ran on one of the two threads allowed.
* **Brian2 C++ standalone** (``set_device('cpp_standalone')``; 1 thread is Brian2's default
  serial code, ``openmp_threads = 0``; 2 threads is ``openmp_threads = 2``), a fresh project
  directory every run, so the C++ compilation is part of its end-to-end time.
* **Brian2 Cython** runtime target (single-threaded), a fresh Cython cache every timed run, so
  the compilation of its code objects is part of its end-to-end time.
* **NEST** (``iaf_psc_exp`` for CUBA, ``iaf_cond_exp`` for COBA, parameters converted below;
  ``local_num_threads`` 1 and 2; delays are NEST's minimum, one time step).

Brian2 2.9 does not import with the NumPy of the main environment, so the peers live in a
virtual environment of their own that this script creates at first use (``--peer-venv``,
default ``~/.cache/neuromesh/bench-peers/venv``, the versions in ``PEER_REQUIREMENTS``) and runs
each measurement in a fresh process of that environment's Python running this same file with
``--peer`` (only the standard library is imported at module level, so the file works in both).

Per network, size and simulator: ``simulate_s`` (the simulation phase: NeuroMesh ``Simulation.run``;
Brian2 the network's run loop as Brian2 times it, ``device._last_run_time``, which in standalone
mode is the loop inside the compiled ``main``; NEST ``nest.Run`` after ``nest.Prepare``),
``end_to_end_s`` (from nothing to spikes in memory: building the network, code generation and
compilation where there is one, the run, reading the spikes back; Python's start-up and the
simulator's import are not counted, and are reported as ``import_s``), and the mean rates of the
excitatory and inhibitory neurons. Ratios are NeuroMesh / peer at equal thread counts (below 1:
NeuroMesh is faster), the 1 -> 2 thread speed-up of each simulator (simulation phase), and
NeuroMesh's rates over each peer's (the networks are drawn by each simulator's own random
numbers, so rates agree statistically, not spike for spike; ``--rate-seeds K`` adds K seeds of
each simulator at 4,000 neurons for a mean and standard deviation).

Run from the repository root::

    python bench/simulation_bench.py --json bench/results/simulation_bench.json

``--sizes 4000`` for a quick run, ``--only neuromesh`` (or ``neuromesh,nest``, ...) for some
simulators, ``--tiny`` for the smoke test (400 neurons, 50 ms, NeuroMesh only, no peer venv),
``--million`` for one COBA network of 1,000,000 neurons x 100 synapses on NeuroMesh alone (build
and simulate times and the process's peak RSS).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DEFAULT_PEER_VENV = Path.home() / ".cache" / "neuromesh" / "bench-peers" / "venv"
#: What the peer environment installs from PyPI (what resolves and works with Python 3.11:
#: brian2 2.11 needs a newer Python, brian2 2.9 fails to import with numpy >= 2.3).
PEER_REQUIREMENTS = ("brian2==2.9.0", "numpy==2.2.6", "nest-simulator==3.10.0", "cython==3.3.1", "setuptools")
PEER_PACKAGES = ("brian2", "numpy", "nest-simulator", "cython", "sympy", "setuptools")
SIMULATORS = ("neuromesh", "brian2_standalone", "brian2_cython", "nest")
LABEL = {"neuromesh": "NeuroMesh", "brian2_standalone": "Brian2 C++ standalone", "brian2_cython": "Brian2 Cython",
         "nest": "NEST"}
#: Threads each simulator runs with (Brian2's Cython target is single-threaded).
PEER_THREADS = {"brian2_standalone": (1, 2), "brian2_cython": (1,), "nest": (1, 2)}
RESULT_MARK = "PEER-RESULT "
DT_MS = 0.1
EXC_FRACTION = 0.8


def log(message: str) -> None:
    """Progress on stderr (a full run takes about half an hour); the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# ================================================================================================
# the peers: run in the peer venv's Python (``--peer CONFIG``), one measurement per process


def _peer_versions() -> dict:
    from importlib import metadata
    out = {}
    for name in PEER_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _split_rates(ids, n: int, n_exc: int, duration_ms: float) -> dict:
    import numpy as np
    ids = np.asarray(ids)
    exc = int(np.count_nonzero(ids < n_exc))
    seconds = duration_ms * 1e-3
    return {"spikes": int(ids.size), "rate_exc_hz": exc / n_exc / seconds,
            "rate_inh_hz": (int(ids.size) - exc) / (n - n_exc) / seconds}


def _brian2_network(kind: str, n: int, synapses_per_neuron: int):
    """The Brian2 example network (see the module docstring), as its example scripts write it."""
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, mV, ms
    n_exc = int(round(EXC_FRACTION * n))
    p = min(1.0, synapses_per_neuron / n)
    if kind == "cuba":
        ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV,
              "we": (60 * 0.27 / 10) * mV, "wi": (-20 * 4.5 / 10) * mV}
        eqs = """
        dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """
        # 'exact' is the method Brian2's CUBA example calls 'linear' in older releases
        group = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
                            namespace=ns, name="neurons")
        group.v = "Vr + rand() * (Vt - Vr)"
        group.ge = 0 * mV
        group.gi = 0 * mV
    else:
        ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -60 * mV,
              "Ee": 0 * mV, "Ei": -80 * mV, "I": 20 * mV, "we": 6.0 / 10.0, "wi": 67.0 / 10.0}
        eqs = """
        dv/dt  = (ge*(Ee-v)+gi*(Ei-v)-(v-El)+I)*(1./taum) : volt (unless refractory)
        dge/dt = -ge/taue : 1
        dgi/dt = -gi/taui : 1
        """
        group = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="euler",
                            namespace=ns, name="neurons")
        group.v = "(randn() * 5 - 55) * mV"
        group.ge = 0
        group.gi = 0
    # Subgroups instead of connect('i<3200', p=0.02): the same synapses, drawn without testing
    # the condition for every pair (which grows as N^2). Fixed names: Brian2 numbers unnamed
    # objects (neurongroup_1, ...) and the names are in the generated code, so a second network in
    # one process would otherwise be compiled again.
    ce = Synapses(group[:n_exc], group, on_pre="ge += we", namespace=ns, name="exc_synapses")
    ci = Synapses(group[n_exc:], group, on_pre="gi += wi", namespace=ns, name="inh_synapses")
    ce.connect(p=p)
    ci.connect(p=p)
    monitor = SpikeMonitor(group, name="spikes")
    return Network(group, ce, ci, monitor, name="network"), monitor, (ce, ci), n_exc


def _run_brian2_standalone(cfg: dict) -> list[dict]:
    started = time.perf_counter()
    import brian2
    from brian2 import device, ms, prefs, set_device
    import_s = time.perf_counter() - started
    out = []
    for seed in cfg["seeds"]:
        directory = tempfile.mkdtemp(prefix="brian2-standalone-", dir=cfg.get("workdir"))
        try:
            t0 = time.perf_counter()
            set_device("cpp_standalone", directory=directory, build_on_run=False)
            # 0 is Brian2's default: serial code without OpenMP
            prefs.devices.cpp_standalone.openmp_threads = 0 if cfg["threads"] == 1 else cfg["threads"]
            brian2.seed(seed)
            net, monitor, synapses, n_exc = _brian2_network(cfg["kind"], cfg["n"], cfg["synapses_per_neuron"])
            net.run(cfg["duration_ms"] * ms)
            device.build(directory=directory, compile=True, run=True, with_output=False)
            ids = monitor.i[:]
            end_to_end = time.perf_counter() - t0
            simulate = float(device._last_run_time)
            rates = _split_rates(ids, cfg["n"], n_exc, cfg["duration_ms"])
            out.append({**rates, "seed": seed, "simulate_s": simulate, "end_to_end_s": end_to_end,
                        "setup_s": end_to_end - simulate, "import_s": import_s,
                        "compile_s": device.timers["compile"]["make"], "run_binary_s": device.timers["run_binary"],
                        "synapses": int(sum(len(s) for s in synapses)),
                        "openmp_threads": int(prefs.devices.cpp_standalone.openmp_threads)})
            device.reinit()
            device.activate()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return out


def _run_brian2_cython(cfg: dict) -> list[dict]:
    started = time.perf_counter()
    import brian2
    from brian2 import device, ms, prefs, set_device, start_scope
    import_s = time.perf_counter() - started
    # A fresh cache for a timed run: it compiles every code object, as the first run of a script
    # does (seeds after the first in one process reuse the compiled code). The bench hands the
    # rate sweep the cache of the timed run of the same network.
    cache = cfg.get("cache_dir") or tempfile.mkdtemp(prefix="brian2-cython-cache-", dir=cfg.get("workdir"))
    cold = not os.path.isdir(cache) or not os.listdir(cache)
    os.makedirs(cache, exist_ok=True)
    out = []
    try:
        set_device("runtime")
        prefs.codegen.target = "cython"
        prefs.codegen.runtime.cython.cache_dir = cache
        for k, seed in enumerate(cfg["seeds"]):
            net = monitor = synapses = None  # the previous network, so that its subgroups' names are free
            gc.collect()
            start_scope()
            t0 = time.perf_counter()
            brian2.seed(seed)
            net, monitor, synapses, n_exc = _brian2_network(cfg["kind"], cfg["n"], cfg["synapses_per_neuron"])
            net.run(cfg["duration_ms"] * ms)
            ids = monitor.i[:]
            end_to_end = time.perf_counter() - t0
            simulate = float(device._last_run_time)
            rates = _split_rates(ids, cfg["n"], n_exc, cfg["duration_ms"])
            out.append({**rates, "seed": seed, "simulate_s": simulate, "end_to_end_s": end_to_end,
                        "setup_s": end_to_end - simulate, "import_s": import_s, "cold_cache": cold and k == 0,
                        "synapses": int(sum(len(s) for s in synapses))})
    finally:
        if not cfg.get("cache_dir"):
            shutil.rmtree(cache, ignore_errors=True)
    return out


#: NEST's neurons for the two networks. NEST wants currents in pA, capacitances in pF and
#: conductances in nS; the Brian2 networks have no capacitance, so pick NEST's default
#: C_m = 250 pF, and tau_m = 20 ms, hence g_L = C_m / tau_m = 12.5 nS (pF/ms = nS, nS*mV = pA).
NEST_C_M = 250.0
NEST_TAU_M = 20.0
NEST_G_L = NEST_C_M / NEST_TAU_M


def nest_network_parameters(kind: str) -> tuple[str, dict, float, float]:
    """(model, neuron parameters, excitatory weight, inhibitory weight) of NEST's version of ``kind``.

    CUBA: Brian2's ``taum dv/dt = -(v - El) + ge + gi`` has ``ge`` in mV of drive (R*I).
    ``iaf_psc_exp`` is ``C_m dV/dt = -(C_m/tau_m)(V - E_L) + I_syn``; multiplying Brian2's equation by
    ``C_m/tau_m`` gives the same with ``I_syn = (C_m/tau_m) * (ge + gi)``. Both decay exponentially
    with the same time constants, so a jump of ``w`` mV in ``ge`` is a jump of ``w * C_m / tau_m``
    pA in ``I_syn_ex``: 1.62 mV -> 20.25 pA, -9 mV -> -112.5 pA.

    COBA: Brian2's ``taum dv/dt = ge (Ee - v) + gi (Ei - v) - (v - El) + I`` times ``g_L = C_m/tau_m``
    is ``iaf_cond_exp``'s ``C_m dV/dt = -g_L (V - E_L) - g_ex (V - E_ex) - g_in (V - E_in) + I_e`` with
    ``g_ex = g_L * ge``, ``g_in = g_L * gi`` and ``I_e = g_L * I``: weights 0.6 -> 7.5 nS and
    6.7 -> 83.75 nS (negative in NEST, which routes negative weights to the inhibitory conductance),
    I_e = 12.5 nS * 20 mV = 250 pA. (NEST integrates this model with an adaptive Runge-Kutta solver,
    Brian2 and NeuroMesh with forward Euler at 0.1 ms.)
    """
    common = {"C_m": NEST_C_M, "V_th": -50.0, "V_reset": -60.0, "t_ref": 5.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0}
    if kind == "cuba":
        params = {**common, "tau_m": NEST_TAU_M, "E_L": -49.0, "I_e": 0.0}
        return "iaf_psc_exp", params, (60 * 0.27 / 10) * NEST_G_L, (-20 * 4.5 / 10) * NEST_G_L
    params = {**common, "g_L": NEST_G_L, "E_L": -60.0, "E_ex": 0.0, "E_in": -80.0, "I_e": 20.0 * NEST_G_L}
    return "iaf_cond_exp", params, 0.6 * NEST_G_L, -6.7 * NEST_G_L


def _run_nest(cfg: dict) -> list[dict]:
    os.environ.setdefault("PYNEST_QUIET", "1")
    started = time.perf_counter()
    import nest
    import numpy as np
    import_s = time.perf_counter() - started
    n, kind = cfg["n"], cfg["kind"]
    n_exc = int(round(EXC_FRACTION * n))
    p = min(1.0, cfg["synapses_per_neuron"] / n)
    model, params, w_exc, w_inh = nest_network_parameters(kind)
    out = []
    for seed in cfg["seeds"]:
        t0 = time.perf_counter()
        nest.ResetKernel()
        nest.verbosity = nest.VerbosityLevel.WARNING
        nest.SetKernelStatus({"resolution": DT_MS, "local_num_threads": cfg["threads"], "rng_seed": seed,
                              "print_time": False})
        neurons = nest.Create(model, n, params=params)
        neurons.V_m = (nest.random.uniform(min=-60.0, max=-50.0) if kind == "cuba"
                       else nest.random.normal(mean=-55.0, std=5.0))
        conn = {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": False}
        nest.Connect(neurons[:n_exc], neurons, conn, {"synapse_model": "static_synapse", "weight": w_exc,
                                                      "delay": DT_MS})
        nest.Connect(neurons[n_exc:], neurons, conn, {"synapse_model": "static_synapse", "weight": w_inh,
                                                      "delay": DT_MS})
        recorder = nest.Create("spike_recorder")
        nest.Connect(neurons, recorder)
        synapses = int(nest.GetKernelStatus("num_connections")) - n
        nest.Prepare()
        t_run = time.perf_counter()
        nest.Run(cfg["duration_ms"])
        simulate = time.perf_counter() - t_run
        nest.Cleanup()
        senders = np.asarray(recorder.get("events", "senders"))
        end_to_end = time.perf_counter() - t0
        rates = _split_rates(senders - neurons[0].global_id, n, n_exc, cfg["duration_ms"])
        out.append({**rates, "seed": seed, "simulate_s": simulate, "end_to_end_s": end_to_end,
                    "setup_s": end_to_end - simulate, "import_s": import_s, "synapses": synapses,
                    "model": model, "weights": [w_exc, w_inh]})
    return out


def peer_main(config: str) -> int:
    cfg = json.loads(config)
    os.environ["OMP_NUM_THREADS"] = str(cfg["threads"])
    run = {"brian2_standalone": _run_brian2_standalone, "brian2_cython": _run_brian2_cython,
           "nest": _run_nest}[cfg["peer"]]
    results = run(cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(RESULT_MARK + json.dumps({"results": results, "versions": _peer_versions(),
                                    "peak_rss_mib": max(peak, peak_children) / 1024}), flush=True)
    return 0


# ================================================================================================
# the peer environment


def ensure_peer_venv(venv: Path) -> Path:
    """Create (or bring up to ``PEER_REQUIREMENTS``) the peers' virtual environment; its python."""
    python = venv / "bin" / "python"
    marker = venv / "neuromesh-bench-requirements.txt"
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if not python.exists():
        log(f"creating the peers' virtual environment {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {' '.join(PEER_REQUIREMENTS)} into {venv} (about a minute)")
    proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                           *PEER_REQUIREMENTS], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install into {venv} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    marker.write_text(wanted)
    return python


def run_peer(python: Path, cfg: dict, timeout_s: float) -> dict:
    """One peer measurement in a fresh process; {'results': [...], 'versions': ...} or {'error': ...}."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "OMP_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = str(cfg["threads"])
    try:
        proc = subprocess.run([str(python), str(HERE), "--peer", json.dumps(cfg)], capture_output=True, text=True,
                              timeout=timeout_s, env=env, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    return {"error": f"exit {proc.returncode}: " + (proc.stdout[-1500:] + "\n" + proc.stderr[-3000:]).strip()}


# ================================================================================================
# NeuroMesh (in this process)


def run_neuromesh(kind: str, n: int, threads: int, duration_ms: float, synapses_per_neuron: int,
                  seed: int = 1) -> dict:
    import numpy as np
    from services.simulation.core import Simulation, vogels_abbott

    totals = []
    t0 = time.perf_counter()
    spec = vogels_abbott(kind, n, synapses_per_neuron=synapses_per_neuron, seed=seed)
    sim = Simulation(spec, threads=threads)
    summary = sim.run(duration_ms, on_chunk=lambda chunk: totals.append(chunk.population_counts.sum(axis=0)))
    end_to_end = time.perf_counter() - t0
    counts = np.sum(totals, axis=0)
    sizes = [p.size for p in spec.populations]
    seconds = summary.duration_ms * 1e-3
    # the engine uses at most one thread per MIN_NEURONS_PER_THREAD neurons: record what it used
    return {"seed": seed, "threads_used": sim.threads, "build_s": sim.build_seconds,
            "simulate_s": summary.simulate_seconds,
            "end_to_end_s": end_to_end, "setup_s": end_to_end - summary.simulate_seconds,
            "spikes": summary.spikes, "synaptic_events": summary.synaptic_events, "synapses": sim.synapse_count,
            "rate_exc_hz": float(counts[0] / sizes[0] / seconds), "rate_inh_hz": float(counts[1] / sizes[1] / seconds)}


# ================================================================================================
# the benchmark


def median_of(runs: list[dict]) -> dict:
    """The run with the median simulation time, with the medians of the times over all runs."""
    ordered = sorted(runs, key=lambda r: r["simulate_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    for key in ("simulate_s", "end_to_end_s", "setup_s", "build_s"):
        if key in chosen:
            chosen[key] = statistics.median(r[key] for r in runs)
    chosen["all_simulate_s"] = [r["simulate_s"] for r in runs]
    chosen["all_end_to_end_s"] = [r["end_to_end_s"] for r in runs]
    return chosen


def positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def run_benchmark(args: argparse.Namespace) -> dict:
    only = args.only
    python = None
    if set(only) - {"neuromesh"}:
        python = ensure_peer_venv(args.peer_venv)
    workdir = tempfile.mkdtemp(prefix="neuromesh-simbench-")
    versions: dict = {}
    cells: list[dict] = []
    load_start = os.getloadavg()
    try:
        for kind in args.kinds:
            for n in args.sizes:
                cell = {"kind": kind, "n": n, "runs": {}}
                cells.append(cell)
                if "neuromesh" in only:
                    for threads in args.threads:
                        log(f"{kind.upper()} {n}: NeuroMesh, {threads} thread(s), {args.repeats} run(s)")
                        load = load1()
                        runs = [run_neuromesh(kind, n, threads, args.duration_ms, args.synapses_per_neuron)
                                for _ in range(args.repeats)]
                        cell["runs"][f"neuromesh/{threads}"] = {**median_of(runs), "threads": threads,
                                                                "load1_before": load}
                for peer in SIMULATORS[1:]:
                    if peer not in only:
                        continue
                    for threads in PEER_THREADS[peer]:
                        if threads not in args.threads:
                            continue
                        log(f"{kind.upper()} {n}: {LABEL[peer]}, {threads} thread(s), {args.peer_repeats} run(s)")
                        load = load1()
                        cfg = {"peer": peer, "kind": kind, "n": n, "threads": threads, "seeds": [1],
                               "duration_ms": args.duration_ms, "synapses_per_neuron": args.synapses_per_neuron,
                               "workdir": workdir}
                        runs, error = [], None
                        for repeat in range(args.peer_repeats):
                            if peer == "brian2_cython":  # cold every time; the last one's cache is kept
                                cfg["cache_dir"] = os.path.join(workdir, f"cython-cache-{kind}-{n}-{repeat}")
                            got = run_peer(python, cfg, args.peer_timeout)
                            if "error" in got:
                                error = got["error"]
                                log(f"  failed: {error[-600:]}")
                                break
                            versions = got["versions"]
                            runs.extend(got["results"])
                        entry = {**median_of(runs)} if runs else {}
                        entry.update({"threads": threads, "load1_before": load})
                        if error:
                            entry["error"] = error
                        cell["runs"][f"{peer}/{threads}"] = entry
                        if args.json:  # so far, in case a long run stops part-way
                            write_json(args.json, {"partial": True, "cells": cells, "peer_versions": versions})
        rate_sweep = rate_seed_sweep(args, python, workdir) if args.rate_seeds else {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_end = os.getloadavg()

    ratio: dict[str, float] = {}
    for cell in cells:
        prefix = f"{cell['kind']}_{cell['n']}"
        runs = cell["runs"]
        cell["ratio"] = {}
        for key, peer_run in runs.items():
            sim, threads = key.split("/")
            ours = runs.get(f"neuromesh/{threads}")
            if sim == "neuromesh" or ours is None or "simulate_s" not in peer_run:
                continue
            for phase in ("simulate", "end_to_end"):
                value = ours[f"{phase}_s"] / peer_run[f"{phase}_s"] if peer_run[f"{phase}_s"] > 0 else None
                if positive(value):
                    cell["ratio"][f"{sim}_t{threads}_{phase}"] = value
            if threads == str(min(args.threads)):
                for pop in ("exc", "inh"):
                    theirs = peer_run[f"rate_{pop}_hz"]
                    value = ours[f"rate_{pop}_hz"] / theirs if theirs > 0 else None
                    if positive(value):
                        cell["ratio"][f"{sim}_rate_{pop}"] = value
        one, two = runs.get("neuromesh/1"), runs.get("neuromesh/2")
        if one and two and one["spikes"] > 0:  # 1.0: NeuroMesh's spikes do not depend on the thread count
            cell["ratio"]["neuromesh_spikes_t2_over_t1"] = two["spikes"] / one["spikes"]
        for sim in SIMULATORS:
            one, two = runs.get(f"{sim}/1"), runs.get(f"{sim}/2")
            if one and two and one.get("threads_used", 1) == two.get("threads_used", 2):
                continue  # NeuroMesh ran both on one thread: no speed-up to report
            if one and two and "simulate_s" in one and "simulate_s" in two and two["simulate_s"] > 0:
                value = one["simulate_s"] / two["simulate_s"]
                if positive(value):
                    cell["ratio"][f"{sim}_speedup_1_to_2"] = value
        ratio.update({f"{prefix}_{k}": v for k, v in cell["ratio"].items()})
    for kind, per_sim in rate_sweep.items():
        ours = per_sim.get("neuromesh")
        for sim, summary in per_sim.items():
            if sim == "neuromesh" or ours is None or "mean_exc_hz" not in summary:
                continue
            for pop in ("exc", "inh"):
                if summary[f"mean_{pop}_hz"] > 0 and ours[f"mean_{pop}_hz"] > 0:
                    ratio[f"{kind}_{args.rate_size}_seeds_{sim}_rate_{pop}"] = (ours[f"mean_{pop}_hz"]
                                                                                / summary[f"mean_{pop}_hz"])
    return {
        "mode": "tiny" if args.tiny else "full", "kinds": args.kinds, "sizes": args.sizes, "threads": args.threads,
        "duration_ms": args.duration_ms, "dt_ms": DT_MS, "synapses_per_neuron": args.synapses_per_neuron,
        "repeats": args.repeats, "peer_repeats": args.peer_repeats, "simulators": list(only),
        "cells": cells, "rate_sweep": rate_sweep, "ratio": ratio,
        "load_average_start": load_start, "load_average_end": load_end,
        "machine": machine(), "peer_versions": versions, "peer_requirements": list(PEER_REQUIREMENTS),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def rate_seed_sweep(args: argparse.Namespace, python: Path | None, workdir: str) -> dict:
    """Rates of ``--rate-seeds`` seeds of each simulator at ``--rate-size`` neurons (one thread)."""
    seeds = list(range(1, args.rate_seeds + 1))
    out: dict = {}
    for kind in args.kinds:
        out[kind] = {}
        for sim in SIMULATORS:
            if sim not in args.only:
                continue
            # the standalone device would compile once per seed; its rates are Brian2's as the
            # Cython target's are (same model, same random numbers: the same spikes at seed 1)
            if sim == "brian2_standalone":
                continue
            log(f"{kind.upper()} {args.rate_size}: rates of {LABEL[sim]} over {len(seeds)} seeds")
            if sim == "neuromesh":
                runs = [run_neuromesh(kind, args.rate_size, 1, args.duration_ms, args.synapses_per_neuron, seed)
                        for seed in seeds]
            else:
                cfg = {"peer": sim, "kind": kind, "n": args.rate_size, "threads": 1, "seeds": seeds,
                       "duration_ms": args.duration_ms, "synapses_per_neuron": args.synapses_per_neuron,
                       "workdir": workdir}
                if sim == "brian2_cython":
                    cfg["cache_dir"] = os.path.join(workdir, f"cython-cache-{kind}-{args.rate_size}-"
                                                             f"{args.peer_repeats - 1}")
                got = run_peer(python, cfg, args.peer_timeout)
                if "error" in got:
                    out[kind][sim] = {"error": got["error"]}
                    continue
                runs = got["results"]
            summary = {"seeds": seeds, "exc_hz": [r["rate_exc_hz"] for r in runs],
                       "inh_hz": [r["rate_inh_hz"] for r in runs]}
            for pop in ("exc", "inh"):
                values = summary[f"{pop}_hz"]
                summary[f"mean_{pop}_hz"] = statistics.fmean(values)
                summary[f"sd_{pop}_hz"] = statistics.stdev(values) if len(values) > 1 else 0.0
            out[kind][sim] = summary
    return out


def run_million(args: argparse.Namespace) -> dict:
    """COBA with 1,000,000 neurons x ``--synapses-per-neuron`` (100) for ``--duration-ms`` on NeuroMesh."""
    import numpy as np
    from services.simulation.core import Simulation, vogels_abbott

    threads = max(args.threads)
    n = 1_000_000
    load = load1()
    log(f"COBA {n}: NeuroMesh, {threads} thread(s), {args.synapses_per_neuron} synapses per neuron")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    spec = vogels_abbott("coba", n, synapses_per_neuron=args.synapses_per_neuron)
    t0 = time.perf_counter()
    sim = Simulation(spec, threads=threads)
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log(f"  built in {sim.build_seconds:.1f} s, {sim.synapse_count} synapses; simulating")
    totals = []
    summary = sim.run(args.duration_ms, on_chunk=lambda chunk: totals.append(chunk.population_counts.sum(axis=0)))
    end_to_end = time.perf_counter() - t0
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    counts = np.sum(totals, axis=0)
    sizes = [p.size for p in spec.populations]
    seconds = summary.duration_ms * 1e-3
    memory_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    result = {
        "mode": "million", "kind": "coba", "n": n, "threads": threads, "duration_ms": summary.duration_ms,
        "synapses_per_neuron": args.synapses_per_neuron, "synapses": sim.synapse_count,
        "build_s": sim.build_seconds, "simulate_s": summary.simulate_seconds, "end_to_end_s": end_to_end,
        "spikes": summary.spikes, "synaptic_events": summary.synaptic_events,
        "rate_exc_hz": float(counts[0] / sizes[0] / seconds), "rate_inh_hz": float(counts[1] / sizes[1] / seconds),
        "peak_rss_bytes": rss_peak, "rss_before_build_bytes": rss_before, "peak_rss_after_build_bytes": rss_built,
        "memory_estimate_bytes": sim.memory_estimate_bytes, "memory_total_bytes": memory_total,
        "load1_before": load, "load_average_end": os.getloadavg(), "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    result["ratio"] = {"peak_rss_of_memory": rss_peak / memory_total,
                       "peak_rss_of_estimate": rss_peak / sim.memory_estimate_bytes,
                       "simulate_per_biological_second": summary.simulate_seconds / seconds}
    return result


def write_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def machine() -> dict:
    import numpy as np
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor(), "numpy": np.__version__}


# ================================================================================================
# output


def table(result: dict) -> str:
    if result["mode"] == "million":
        r = result
        return "\n".join([
            f"COBA {r['n']:,} neurons x {r['synapses_per_neuron']} synapses ({r['synapses']:,}), "
            f"{r['duration_ms']:g} ms, NeuroMesh {r['threads']} threads; load {r['load1_before']}",
            f"{'build s':>9}{'simulate s':>12}{'end-to-end s':>14}{'exc Hz':>8}{'inh Hz':>8}{'peak RSS GiB':>14}"
            f"{'estimate GiB':>14}{'RSS/memory ratio':>18}",
            f"{r['build_s']:9.2f}{r['simulate_s']:12.2f}{r['end_to_end_s']:14.2f}{r['rate_exc_hz']:8.2f}"
            f"{r['rate_inh_hz']:8.2f}{r['peak_rss_bytes'] / 2**30:14.2f}{r['memory_estimate_bytes'] / 2**30:14.2f}"
            f"{r['ratio']['peak_rss_of_memory']:18.3f}",
            f"of {r['memory_total_bytes'] / 2**30:.1f} GiB on this machine"])
    lines = [f"Vogels-Abbott networks, {result['duration_ms']:g} ms at dt {result['dt_ms']} ms, "
             f"{result['synapses_per_neuron']} synapses per neuron; load average at start "
             f"{result['load_average_start'][0]:.2f}, at end {result['load_average_end'][0]:.2f}",
             f"{'network':12}{'simulator':24}{'thr':>4}{'setup s':>9}{'simulate s':>12}{'end-to-end s':>14}"
             f"{'exc Hz':>8}{'inh Hz':>8}{'load':>6}{'sim ratio':>11}{'e2e ratio':>11}{'rate ratio':>12}"]
    for cell in result["cells"]:
        name = f"{cell['kind'].upper()} {cell['n']}"
        for key, r in cell["runs"].items():
            sim, threads = key.split("/")
            if "simulate_s" not in r:
                lines.append(f"{name:12}{LABEL[sim]:24}{threads:>4}  failed: {r.get('error', '?')[-80:]}")
                continue
            ratios = cell["ratio"]
            sim_ratio = ratios.get(f"{sim}_t{threads}_simulate")
            e2e_ratio = ratios.get(f"{sim}_t{threads}_end_to_end")
            rate_ratio = [ratios.get(f"{sim}_rate_{pop}") for pop in ("exc", "inh")]
            if r.get("threads_used", int(threads)) != int(threads):
                threads = f"{threads}>{r['threads_used']}"
            lines.append(
                f"{name:12}{LABEL[sim]:24}{threads:>4}{_t(r['setup_s'], 9)}{_t(r['simulate_s'], 12)}"
                f"{_t(r['end_to_end_s'], 14)}{r['rate_exc_hz']:8.2f}{r['rate_inh_hz']:8.2f}{r['load1_before']:6.2f}"
                f"{_fmt(sim_ratio, 11)}{_fmt(e2e_ratio, 11)}"
                + (f"{rate_ratio[0]:6.3f}/{rate_ratio[1]:.3f}" if None not in rate_ratio else f"{'':>12}"))
        speedups = [f"{LABEL[s]} {cell['ratio'][f'{s}_speedup_1_to_2']:.3g}x" for s in SIMULATORS
                    if f"{s}_speedup_1_to_2" in cell["ratio"]]
        if speedups:
            lines.append(f"{'':12}1 -> 2 thread speed-up (simulation phase): " + ", ".join(speedups))
    for kind, per_sim in result.get("rate_sweep", {}).items():
        for sim, s in per_sim.items():
            if "mean_exc_hz" in s:
                lines.append(f"rates over seeds {s['seeds'][0]}..{s['seeds'][-1]}, {kind.upper()}, {LABEL[sim]}: "
                             f"exc {s['mean_exc_hz']:.3f} +- {s['sd_exc_hz']:.3f} Hz, "
                             f"inh {s['mean_inh_hz']:.3f} +- {s['sd_inh_hz']:.3f} Hz")
    lines.append("ratio = NeuroMesh / peer at equal threads (times: below 1 is faster); rate ratio exc/inh at 1 thread;"
                 " setup = end-to-end - simulate; thr 2>1: the engine used 1 of the 2 threads allowed")
    return "\n".join(lines)


def _t(seconds: float, width: int) -> str:
    """Seconds with 4 significant digits."""
    return f"{seconds:{width}.4g}"


def _fmt(value: float | None, width: int) -> str:
    """A ratio with 3 significant digits, blank when there is none."""
    return f"{'':>{width}}" if value is None else f"{value:{width}.3g}"


def int_list(text: str) -> list[int]:
    values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int_list, default=[4000, 16000, 64000], help="network sizes (neurons)")
    parser.add_argument("--kinds", default="coba,cuba", help="networks: coba, cuba or both (comma-separated)")
    parser.add_argument("--threads", type=int_list, default=[1, 2], help="thread counts (of 1, 2)")
    parser.add_argument("--only", default="all",
                        help=f"comma-separated simulators to run, of {', '.join(SIMULATORS)} (default all)")
    parser.add_argument("--duration-ms", type=float, default=1000.0, help="biological time simulated")
    parser.add_argument("--synapses-per-neuron", type=int, default=None,
                        help="expected in-degree (default 80; 100 with --million)")
    parser.add_argument("--repeats", type=int, default=3, help="NeuroMesh runs per configuration (median)")
    parser.add_argument("--peer-repeats", type=int, default=1, help="peer runs per configuration (median)")
    parser.add_argument("--rate-seeds", type=int, default=0,
                        help="also run this many seeds of each simulator at --rate-size neurons for their rates")
    parser.add_argument("--rate-size", type=int, default=4000, help="network size of the --rate-seeds runs")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV, help="the peers' virtual environment")
    parser.add_argument("--peer-timeout", type=float, default=1800.0, help="seconds one peer process may take")
    parser.add_argument("--tiny", action="store_true", help="smoke test: 400 neurons, 50 ms, NeuroMesh only")
    parser.add_argument("--million", action="store_true",
                        help="COBA with 1,000,000 neurons x 100 synapses on NeuroMesh alone, with peak RSS")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        return peer_main(args.peer)

    args.kinds = [k.strip().lower() for k in args.kinds.split(",") if k.strip()]
    if not args.kinds or set(args.kinds) - {"coba", "cuba"}:
        parser.error(f"--kinds must name coba and/or cuba, got {args.kinds}")
    only = SIMULATORS if args.only.strip() == "all" else tuple(s.strip() for s in args.only.split(",") if s.strip())
    if not only or set(only) - set(SIMULATORS):
        parser.error(f"--only must be 'all' or a comma-separated list of {', '.join(SIMULATORS)}, got {args.only!r}")
    args.only = tuple(s for s in SIMULATORS if s in only)
    if set(args.threads) - {1, 2}:
        parser.error("--threads must be 1 and/or 2")
    args.threads = sorted(set(args.threads))
    if args.synapses_per_neuron is None:
        args.synapses_per_neuron = 100 if args.million else 80
    if args.tiny:
        args.sizes, args.duration_ms, args.only, args.repeats, args.rate_seeds = [400], 50.0, ("neuromesh",), 1, 0
    if min(args.repeats, args.peer_repeats, args.synapses_per_neuron) < 1 or args.rate_seeds < 0:
        parser.error("--repeats, --peer-repeats and --synapses-per-neuron must be at least 1, --rate-seeds >= 0")
    if min(args.sizes) < 5 or not (math.isfinite(args.duration_ms) and args.duration_ms > 0):
        parser.error("--sizes must be at least 5 neurons and --duration-ms a positive number")

    result = run_million(args) if args.million else run_benchmark(args)
    print(table(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
