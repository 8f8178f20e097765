"""What does a cortical column do under a thalamic stimulus? Simulate it, then reduce its activity.

The simulation service runs a six-layer column (Potjans & Diesmann 2014 layout at 5% scale,
about 4,000 LIF neurons) twice: without thalamic input and with a 4 Hz modulated thalamus
driving layer 4. The script prints each layer's rate in both conditions, so the stimulus can be
followed from L4 into the other layers, and the throughput of the engine. The reduction service
then fits a PCA to the driven column's binned excitatory counts and reports how much of the
population activity a few components carry.

Run it against a stack started by ``neuromesh up``::

    python examples/simulate_column.py --duration-ms 2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from neuromesh.reduction.v1 import reduction_pb2, reduction_pb2_grpc
from neuromesh.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from neuromesh.stack.local import LocalStack, default_state_dir
from services.common.settings import load_settings

EXCITATORY = ["L23_exc", "L4_exc", "L5_exc", "L6_exc"]


def simulate(stub, *, stimulus_rate_hz: float, duration_ms: float, seed: int):
    request = simulation_pb2.SimulateRequest(
        duration_ms=duration_ms, bin_ms=10.0, count_populations=EXCITATORY,
        network=simulation_pb2.Network(seed=seed, cortical_column=simulation_pb2.CorticalColumn(
            scale=0.05, stimulus_rate_hz=stimulus_rate_hz, stimulus_frequency_hz=4.0)))
    result = None
    for event in stub.Simulate(request, timeout=900):
        if event.HasField("result"):
            result = event.result
        elif event.progress.stage == "simulate" and sys.stdout.isatty():
            counters = event.progress.counters
            print(f"  {counters['simulated_ms']:7.0f} ms simulated, {counters['spikes']:9.0f} spikes", end="\r")
    print(f"  {result.duration_ms:7.0f} ms simulated, {result.n_spikes:9d} spikes")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(default_state_dir()))
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    state = LocalStack(Path(args.state_dir), load_settings()).read_state()
    if state is None:
        print(f"no local stack in {args.state_dir}: run `neuromesh up` first", file=sys.stderr)
        return 1
    endpoints = {c.name: c.endpoint for c in state.components}
    missing = [name for name in ("simulation", "reduction") if name not in endpoints]
    if missing:
        print(f"the stack has no {' or '.join(missing)} service", file=sys.stderr)
        return 1

    with grpc.insecure_channel(endpoints["simulation"]) as channel:
        stub = simulation_pb2_grpc.SimulationServiceStub(channel)
        print("column without thalamic input")
        quiet = simulate(stub, stimulus_rate_hz=0.0, duration_ms=args.duration_ms, seed=args.seed)
        print("column with a 4 Hz modulated thalamus at 30 Hz")
        driven = simulate(stub, stimulus_rate_hz=30.0, duration_ms=args.duration_ms, seed=args.seed)

    print(f"{'population':<10} {'no stimulus':>12} {'stimulus':>10}   (Hz)")
    for q, d in zip(quiet.populations, driven.populations):
        print(f"{q.name:<10} {q.rate_hz:12.2f} {d.rate_hz:10.2f}")
    print(f"{driven.n_neurons} neurons, {driven.synapse_count} synapses: {driven.simulate_s:.2f} s to simulate "
          f"{driven.duration_ms:.0f} ms ({driven.synaptic_events_per_second:.3g} synaptic events/s)")
    print(f"raster: s3://{driven.figure.bucket}/{driven.figure.key}")
    print(f"binned counts ({driven.n_bins} bins of {driven.bin_ms:g} ms): "
          f"s3://{driven.binned_counts.bucket}/{driven.binned_counts.key}")

    with grpc.insecure_channel(endpoints["reduction"]) as channel:
        stub = reduction_pb2_grpc.ReductionServiceStub(channel)
        params = struct_pb2.Struct()
        params.update({"n_components": 5})
        reduced = None
        for event in stub.Fit(reduction_pb2.FitRequest(
                activity=driven.binned_counts, method=reduction_pb2.MethodSpec(name="pca", params=params),
                preprocessing=reduction_pb2.Preprocessing(smooth_sigma_bins=2.0)), timeout=600):
            if event.HasField("result"):
                reduced = event.result
    ratios = ", ".join(f"{r:.3f}" for r in reduced.scores.explained_variance_ratio)
    print(f"PCA of the excitatory counts: explained variance ratio {ratios}")
    print(f"latents: s3://{reduced.latents.bucket}/{reduced.latents.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
