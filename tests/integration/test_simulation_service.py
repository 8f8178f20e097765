"""The simulation service as lab software sees it: a real service process, a real S3 server, gRPC.

Every stored output is checked against the transport-free core run here on the same spec: the
engine is deterministic (same spec and seed, same spikes, whatever the thread count), so the
spikes, rates, counts and traces the service stores must equal the in-process ones exactly.
"""

from __future__ import annotations

import io
import time
import urllib.request
from dataclasses import replace

import grpc
import numpy as np
import pytest
from grpc_status import rpc_status
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from neuromesh.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.errors import error_detail_from_status
from services.common.results import result_prefix
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.simulation import SERVICE
from services.simulation.core import (Connectivity, NetworkSpec, Plasticity, Population, Projection, StateMonitor,
                                      cortical_column, estimate_memory_bytes, simulate)
from services.simulation.requests import network_spec
from services.simulation.servicer import SERVICE_VERSION

pytestmark = pytest.mark.integration

S = simulation_pb2


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket, tmp_path_factory.mktemp("simulation") / "service.log")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield simulation_pb2_grpc.SimulationServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


def scrape(service) -> dict[str, float]:
    """Every sample of the service's /metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def status_of(err: grpc.RpcError):
    status = rpc_status.from_call(err)
    return err.code(), err.details(), error_detail_from_status(status) if status else None


def simulate_call(stub, request, timeout: float = 120.0):
    events = list(stub.Simulate(request, timeout=timeout))
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


# --- a cortical column under a stimulus ------------------------------------------------------------

MONITOR = S.StateMonitor(population="L4_exc", neurons=[0, 1, 2], variables=["v", "g_exc"], every_ms=1.0)
COLUMN = S.SimulateRequest(
    network=S.Network(cortical_column=S.CorticalColumn(scale=0.02, stimulus_rate_hz=20.0), seed=7,
                      state_monitors=[MONITOR]),
    duration_ms=300.0, bin_ms=10.0)


@pytest.fixture(scope="module")
def column_spec() -> NetworkSpec:
    return replace(cortical_column(scale=0.02, stimulus_rate_hz=20.0, seed=7),
                   state_monitors=(StateMonitor("L4_exc", (0, 1, 2), ("v", "g_exc"), every_ms=1.0),))


@pytest.fixture(scope="module")
def column_run(stub, service):
    before = scrape(service)
    started = time.perf_counter()
    progress, result = simulate_call(stub, COLUMN)
    took = time.perf_counter() - started
    return progress, result, before, scrape(service), took


def test_column_streams_progress_and_stores_what_the_core_simulates(column_run, column_spec, store):
    progress, result, _, _, _ = column_run
    assert network_spec(COLUMN.network) == column_spec
    expected = simulate(column_spec, 300.0)

    running = [p for p in progress if p.stage == "simulate"]
    simulated = [p.counters["simulated_ms"] for p in running]
    assert len(simulated) >= 1 and simulated == sorted(simulated) and len(set(simulated)) == len(simulated)
    assert simulated[-1] == pytest.approx(300.0)
    assert all({"spikes", "synaptic_events", "synaptic_events_per_second"} <= set(p.counters) for p in running)
    assert running[-1].counters["spikes"] == expected.summary.spikes
    assert [p.stage for p in progress][-1] == "store"
    fractions = [p.fraction_done for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] <= 1.0

    # spikes: exactly the in-process run's (same spec and seed)
    times, ids = store.get_array(result.spike_times), store.get_array(result.spike_ids)
    assert times.dtype == np.float64 and ids.dtype == np.int64
    np.testing.assert_array_equal(times, expected.spike_times_ms)
    np.testing.assert_array_equal(ids, expected.spike_ids)
    assert result.n_spikes == expected.summary.spikes == len(ids)
    table = store.get_json(result.population_table)
    assert [(p["name"], p["offset"], p["size"]) for p in table] == \
        [(p.name, expected.offsets[p.name], p.size) for p in column_spec.populations]

    # rates per bin and population, and per-neuron counts usable by decoding and reduction
    _, rates = expected.rate_traces_hz(10.0)
    np.testing.assert_array_equal(store.get_array(result.population_rates), rates.astype(np.float32))
    counts = store.get_array(result.binned_counts)
    assert counts.dtype == np.float32 and counts.shape == (30, column_spec.n_neurons) and result.n_bins == 30
    truth = np.zeros((30, column_spec.n_neurons), np.float32)
    np.add.at(truth, ((expected.spike_times_ms / 10.0 + 1e-9).astype(int), expected.spike_ids), 1)
    np.testing.assert_array_equal(counts, truth)
    assert {p.name: p.rate_hz for p in result.populations} == pytest.approx(expected.population_rates_hz())

    # the state monitor's traces and their times
    (trace,) = result.traces
    np.testing.assert_array_equal(store.get_array(trace.values), expected.traces[0])
    np.testing.assert_array_equal(store.get_array(trace.times), expected.trace_times_ms[0])
    assert list(trace.variables) == ["v", "g_exc"] and list(trace.neurons) == [0, 1, 2]

    # the figure decodes; the summary has the run's numbers
    png = Image.open(io.BytesIO(store.get_bytes(result.figure)))
    assert png.format == "PNG" and png.size[0] > 400
    summary = store.get_json(result.summary)
    assert summary["synapse_count"] == expected.synapse_count == result.synapse_count
    assert summary["synaptic_events"] == expected.summary.synaptic_events == result.synaptic_events
    assert summary["n_spikes"] == expected.summary.spikes
    assert summary["rates_hz"] == pytest.approx(expected.population_rates_hz())
    assert summary["build_s"] > 0 and summary["simulate_s"] > 0 and summary["synaptic_events_per_second"] > 0


def test_metrics_count_the_run_exactly(column_run, column_spec, service):
    _, result, before, after, _ = column_run

    def delta(name):
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta("neuromesh_simulation_neuron_steps_total") == 3000 * column_spec.n_neurons == result.neuron_steps
    assert delta("neuromesh_simulation_synaptic_events_total") == result.synaptic_events > 0
    assert delta("neuromesh_simulation_spikes_total") == result.n_spikes
    assert delta("neuromesh_simulation_run_duration_seconds_count") == 1
    assert after["neuromesh_simulation_runs_in_progress"] == 0


def test_the_same_request_returns_the_stored_result(column_run, stub, service):
    _, result, _, _, _ = column_run
    before = scrape(service)
    progress, again = simulate_call(stub, COLUMN)
    assert progress == []
    assert (again.spike_times.key, again.spike_times.sha256) == (result.spike_times.key, result.spike_times.sha256)
    assert again.binned_counts.sha256 == result.binned_counts.sha256 and again.report.key == result.report.key
    assert scrape(service)["neuromesh_simulation_neuron_steps_total"] == \
        before["neuromesh_simulation_neuron_steps_total"]


# --- plasticity, memory estimate ------------------------------------------------------------------


def test_plastic_weights_before_and_after_equal_the_core(stub, store):
    network = S.Network(
        populations=[S.Population(name="in", size=100, model=S.NEURON_MODEL_POISSON, params={"rate_hz": 30.0}),
                     S.Population(name="out", size=40, params={"i_bias": 5.0})],
        projections=[S.Projection(source="in", target="out", weight=0.5, delay_ms=1.0,
                                  connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=20),
                                  plasticity=S.Plasticity(w_max=1.0, a_plus=0.02))],
        record_spikes=S.SpikeRecording(populations=["out"]), seed=4)
    spec = NetworkSpec(
        populations=(Population("in", 100, "poisson", params={"rate_hz": 30.0}),
                     Population("out", 40, params={"i_bias": 5.0})),
        projections=(Projection("in", "out", weight=0.5, delay_ms=1.0, connectivity=Connectivity("fixed_indegree", 20),
                                plasticity=Plasticity(w_max=1.0, a_plus=0.02)),),
        record_spikes=("out",), seed=4)
    assert network_spec(network) == spec
    _, result = simulate_call(stub, S.SimulateRequest(network=network, duration_ms=500.0))
    expected = simulate(spec, 500.0)
    (weights,) = result.weights
    before, after = store.get_array(weights.weights_before), store.get_array(weights.weights_after)
    np.testing.assert_array_equal(before, expected.weights_before[0])
    np.testing.assert_array_equal(after, expected.weights_after[0])
    assert not np.array_equal(before, after) and after.min() >= 0 and after.max() <= 1.0
    assert store.get_array(weights.pre_indices).shape == store.get_array(weights.post_indices).shape == (800,)
    # only "out" is recorded and counted
    np.testing.assert_array_equal(store.get_array(result.spike_ids), expected.spike_ids)
    assert store.get_array(result.binned_counts).shape == (50, 40)
    assert [p.count_column for p in result.populations] == [-1, 0]

    estimate = stub.EstimateMemory(S.EstimateMemoryRequest(network=network), timeout=10)
    assert dict(estimate.breakdown_bytes) == estimate_memory_bytes(spec)
    assert estimate.total_bytes == sum(estimate_memory_bytes(spec).values()) and estimate.fits
    assert estimate.expected_synapses == 800 and estimate.n_neurons == 140


# --- cancellation --------------------------------------------------------------------------------


def test_cancelling_a_long_run_stops_it_and_frees_the_service(stub, store, service):
    request = S.SimulateRequest(network=S.Network(vogels_abbott=S.VogelsAbbott(kind=S.VOGELS_ABBOTT_KIND_COBA,
                                                                               n_neurons=64000)),
                                duration_ms=60_000.0)
    call = stub.Simulate(request, timeout=120)
    seen = []
    for event in call:
        if event.progress.stage == "simulate":
            seen.append(event.progress.counters["simulated_ms"])
            if len(seen) == 3:
                break
    assert scrape(service)["neuromesh_simulation_runs_in_progress"] == 1
    call.cancel()
    cancelled_at = time.perf_counter()
    while scrape(service)["neuromesh_simulation_runs_in_progress"] != 0:
        assert time.perf_counter() - cancelled_at < 3.0, "the run went on after the call was cancelled"
        time.sleep(0.05)
    stopped = scrape(service)["neuromesh_simulation_neuron_steps_total"]
    assert seen == sorted(seen) and seen[-1] < 60_000.0
    # nothing of the cancelled run stays in the store, and no engine is still stepping
    assert store.list(result_prefix("simulation", "Simulate", request, SERVICE_VERSION) + "/") == []
    time.sleep(0.3)
    assert scrape(service)["neuromesh_simulation_neuron_steps_total"] == stopped
    assert scrape(service)['grpc_server_handled_total{grpc_code=CANCELLED,grpc_method=Simulate,'
                           'grpc_service=neuromesh.simulation.v1.SimulationService,grpc_type=SERVER_STREAM}'] >= 1
    # and the next request is served
    _, small = simulate_call(stub, S.SimulateRequest(network=S.Network(vogels_abbott=S.VogelsAbbott(
        kind=S.VOGELS_ABBOTT_KIND_CUBA, n_neurons=500)), duration_ms=100.0))
    assert small.n_neurons == 500 and small.n_spikes > 0


# --- bad input -----------------------------------------------------------------------------------


def _network(**changes) -> S.Network:
    network = S.Network(
        populations=[S.Population(name="exc", size=80), S.Population(name="inh", size=20)],
        projections=[S.Projection(source="exc", target="inh", weight=1.0, connectivity=S.Connectivity(
            rule=S.CONNECTIVITY_RULE_FIXED_PROBABILITY, value=0.1))])
    for edit in changes.values():
        edit(network)
    return network


BAD_REQUESTS = {
    "zero dt": (S.SimulateRequest(network=_network(dt=lambda n: setattr(n, "dt_ms", 0.0)), duration_ms=10.0),
                grpc.StatusCode.INVALID_ARGUMENT, "network.dt_ms"),
    "negative dt": (S.SimulateRequest(network=_network(dt=lambda n: setattr(n, "dt_ms", -0.1)), duration_ms=10.0),
                    grpc.StatusCode.INVALID_ARGUMENT, "network.dt_ms"),
    "empty population": (S.SimulateRequest(network=_network(size=lambda n: setattr(n.populations[1], "size", 0)),
                                           duration_ms=10.0),
                         grpc.StatusCode.INVALID_ARGUMENT, "network.populations[1].size"),
    "probability above 1": (S.SimulateRequest(network=_network(
        p=lambda n: setattr(n.projections[0].connectivity, "value", 1.5)), duration_ms=10.0),
        grpc.StatusCode.INVALID_ARGUMENT, "network.projections[0].connectivity.value"),
    "NaN parameter": (S.SimulateRequest(network=_network(nan=lambda n: n.populations[0].params.update(
        {"tau_m": float("nan")})), duration_ms=10.0),
        grpc.StatusCode.INVALID_ARGUMENT, "network.populations[0].params.tau_m"),
    "no duration": (S.SimulateRequest(network=_network()), grpc.StatusCode.INVALID_ARGUMENT, "duration_ms"),
    "no network": (S.SimulateRequest(duration_ms=10.0), grpc.StatusCode.INVALID_ARGUMENT, "network"),
    "circuit and populations": (S.SimulateRequest(network=_network(va=lambda n: n.vogels_abbott.CopyFrom(
        S.VogelsAbbott(kind=S.VOGELS_ABBOTT_KIND_CUBA))), duration_ms=10.0),
        grpc.StatusCode.INVALID_ARGUMENT, "network.populations"),
    "a billion neurons with 1000 synapses each": (S.SimulateRequest(network=S.Network(
        populations=[S.Population(name="huge", size=10**9)],
        projections=[S.Projection(source="huge", target="huge", weight=0.1, connectivity=S.Connectivity(
            rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=1000))]), duration_ms=10.0),
        grpc.StatusCode.RESOURCE_EXHAUSTED, "network"),
    "binned counts too large": (S.SimulateRequest(network=S.Network(populations=[S.Population(
        name="sources", size=1_000_000, model=S.NEURON_MODEL_POISSON)]), duration_ms=1_000_000.0, bin_ms=0.1),
        grpc.StatusCode.RESOURCE_EXHAUSTED, "count_populations"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_refused_naming_the_field(stub, service, case):
    request, code, field = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as info:
        simulate_call(stub, request, timeout=30)
    got_code, message, detail = status_of(info.value)
    assert got_code == code, message
    assert detail is not None and detail.field == field, (detail, message)
    assert message.startswith(field) or field in message
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and field == "network":
        assert "GiB" in message and int(detail.metadata["estimate_bytes"]) > 8 * 10**12
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"
