"""What the gateway adds to a service call: latency per step, and jobs per second under load.

The same trivial call, the simulation service's unary ``EstimateMemory`` for a small network, is
made three ways in one run against one local stack (``neuromesh up``: SeaweedFS, every service,
the gateway with a SQLite job store):

* **direct**: a gRPC call from this process, what lab software does without the gateway;
* **gateway, events**: ``POST /v1/jobs`` with one step making that call, then the job's event
  stream (``GET /v1/jobs/{id}/events``) until its ``end`` event: the durable path (the job and its
  step written to the database, claimed under a lease by the runner, the call, the outputs and
  the job state written back), followed the way the SDK and the web page follow a job;
* **gateway, polling**: the same job, then ``GET /v1/jobs/{id}`` every 2 ms (10 ms when 50 run at
  once) until it has succeeded: a naive client, whose reads compete with the runner for the
  gateway's CPU.

Each call asks for a different network (its seed and size change), so neither the gateway's step
cache nor anything else can answer from a previous call. Measured: the median and 90th percentile
latency of sequential calls, and calls (jobs) per second with 50 submitted at once by 50 threads.
The overhead per step is the difference of the medians; the issue's goal is under 20 ms.

Run from the repository root::

    python bench/gateway_bench.py --json bench/results/gateway_bench.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc

from neuromesh.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from neuromesh.stack.local import LocalStack
from services.common.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def network(i: int) -> dict:
    """A small network that differs from every other call's (proto JSON)."""
    return {"seed": str(1000 + i), "populations": [{"name": "exc", "size": 100 + i % 997},
                                                   {"name": "inh", "size": 25}],
            "projections": [{"source": "exc", "target": "inh", "weight": 0.5,
                             "connectivity": {"rule": "CONNECTIVITY_RULE_FIXED_PROBABILITY", "value": 0.1}}]}


def direct_call(stub) -> float:
    from google.protobuf import json_format

    request = json_format.ParseDict({"network": network(next(_counter))}, simulation_pb2.EstimateMemoryRequest())
    started = time.perf_counter()
    stub.EstimateMemory(request, timeout=30)
    return time.perf_counter() - started


def http(method: str, url: str, token: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


def follow_events(base: str, token: str, job_id: str) -> dict:
    """Read the job's event stream until its ``end`` event; answer the final job."""
    request = urllib.request.Request(f"{base}/v1/jobs/{job_id}/events", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as stream:
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "end":
                return json.loads(line[len("data: "):])
    raise RuntimeError(f"the event stream of job {job_id} ended without an end event")


def gateway_job(base: str, token: str, follow: str = "events", poll_s: float = 0.002) -> float:
    """Seconds from submitting a one-step job to seeing it succeeded.

    ``follow="events"``: by its server-sent event stream (``GET /v1/jobs/{id}/events``, how the SDK
    and the web page follow a job); ``"poll"``: ``GET /v1/jobs/{id}`` every ``poll_s``.
    """
    body = {"steps": [{"id": "estimate", "service": "simulation", "method": "EstimateMemory",
                       "params": {"network": network(next(_counter))}}]}
    started = time.perf_counter()
    job = http("POST", f"{base}/v1/jobs", token, body)
    if follow == "events":
        if job["state"] not in ("succeeded", "failed", "cancelled"):
            job = follow_events(base, token, job["id"])
    else:
        while job["state"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(poll_s)
            job = http("GET", f"{base}/v1/jobs/{job['id']}", token)
    took = time.perf_counter() - started
    if job["state"] != "succeeded":
        raise RuntimeError(f"job {job['id']} ended {job['state']}: {job.get('error')}")
    return took


def throughput(fn, n: int) -> float:
    """Calls per second with ``n`` submitted at once, one per thread."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda _: fn(), range(n)))
    return n / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="sequential calls per side")
    parser.add_argument("--concurrent", type=int, default=50, help="calls submitted at once")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per side (median taken)")
    parser.add_argument("--tiny", action="store_true", help="a few calls, for the smoke test")
    parser.add_argument("--port-offset", type=int, default=700)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.tiny:
        args.calls, args.concurrent, args.rounds = 5, 5, 1

    load_start = os.getloadavg()[0]
    state_dir = Path(tempfile.mkdtemp(prefix="neuromesh-gateway-bench-"))
    cli = [sys.executable, "-m", "neuromesh", "--state-dir", str(state_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROMESH_")}
    up = subprocess.run([*cli, "up", "--port-offset", str(args.port_offset)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        print(up.stdout + up.stderr, file=sys.stderr)
        return 1
    try:
        state = LocalStack(state_dir, load_settings()).read_state()
        endpoints = {c.name: c.endpoint for c in state.components}
        base = f"http://{endpoints['gateway']}"
        token = (state_dir / "gateway-token").read_text().strip()
        with grpc.insecure_channel(endpoints["simulation"]) as channel:
            stub = simulation_pb2_grpc.SimulationServiceStub(channel)
            polled = functools.partial(gateway_job, follow="poll")
            for _ in range(5):                               # warm both paths: channels, imports, caches
                direct_call(stub)
                gateway_job(base, token)
                polled(base, token)
            # interleave the sides so a drift of the machine favours neither
            direct_s, gateway_s, polled_s = [], [], []
            for _ in range(args.calls):
                direct_s.append(direct_call(stub))
                gateway_s.append(gateway_job(base, token))
                polled_s.append(polled(base, token))
            direct_rate = statistics.median(throughput(lambda: direct_call(stub), args.concurrent)
                                            for _ in range(args.rounds))
            gateway_rate = statistics.median(throughput(lambda: gateway_job(base, token), args.concurrent)
                                             for _ in range(args.rounds))
            polled_rate = statistics.median(throughput(lambda: polled(base, token, poll_s=0.01), args.concurrent)
                                            for _ in range(args.rounds))
    finally:
        subprocess.run([*cli, "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    load = os.getloadavg()[0]
    d50, g50, p50 = statistics.median(direct_s), statistics.median(gateway_s), statistics.median(polled_s)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_1m_start": load_start,
                    "load_average_1m": load},
        "calls": args.calls, "concurrent": args.concurrent,
        "direct": {"median_ms": 1e3 * d50, "p90_ms": 1e3 * percentile(direct_s, 0.9), "calls_per_s": direct_rate},
        "gateway": {"follow": "events", "median_ms": 1e3 * g50, "p90_ms": 1e3 * percentile(gateway_s, 0.9),
                    "jobs_per_s": gateway_rate},
        "gateway_polling": {"follow": "GET every 2 ms (10 ms when concurrent)", "median_ms": 1e3 * p50,
                            "p90_ms": 1e3 * percentile(polled_s, 0.9), "jobs_per_s": polled_rate},
        "overhead_ms_per_step": 1e3 * (g50 - d50),
        "overhead_ms_per_step_polling": 1e3 * (p50 - d50),
        "ratio": {"latency_gateway_over_direct": g50 / d50, "throughput_gateway_over_direct": gateway_rate / direct_rate},
    }
    print(f"{'path':<16} {'median ms':>10} {'p90 ms':>8} {'per s at ' + str(args.concurrent):>14}")
    for name, side, rate in (("direct", "direct", direct_rate), ("gateway, events", "gateway", gateway_rate),
                             ("gateway, polling", "gateway_polling", polled_rate)):
        print(f"{name:<16} {result[side]['median_ms']:10.2f} {result[side]['p90_ms']:8.2f} {rate:14.1f}")
    print(f"overhead per step: {result['overhead_ms_per_step']:.1f} ms following events, "
          f"{result['overhead_ms_per_step_polling']:.1f} ms polling (goal < 20 ms); "
          f"load average {load_start:.2f} at the start, {load:.2f} at the end")
    print("ratio " + ", ".join(f"{k} {v:.3f}" for k, v in result["ratio"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
