"""The connectomics service through real service processes, a real S3 server and gRPC.

* micro path: a crop of the real FIB-25 ground truth is uploaded as a Zarr array, graphed by
  ContactGraph block by block (the service may load only 600 kB at once), with a synapse table;
  every stored table is checked against the core run here on the same array;
* simulations: the simulation service runs a small network with ``record_connectivity``, and
  SimulatedConnectome compares its synapses with its spike-count correlations;
* AnalyzeGraph on an edge table, and the guard of a measure too large for its graph;
* bad input (a float segmentation, a missing key, a malformed table): clear errors, and the
  server keeps serving.

The macro path (diffusion MRI) is in ``test_connectomics_diffusion.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import networkx as nx
import numpy as np
import pytest
from grpc_status import rpc_status

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.connectomics.v1 import connectomics_pb2_grpc
from neuromesh.segmentation.v1 import segmentation_pb2
from neuromesh.simulation.v1 import simulation_pb2 as S
from neuromesh.simulation.v1 import simulation_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.errors import error_detail_from_status
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.connectomics import SERVICE
from services.connectomics.core.contacts import contact_graph
from services.connectomics.core.graph_io import read_edge_table
from services.connectomics.core.simulated import (functional_connectivity, spike_count_matrix, structural_matrix,
                                                   structure_function_agreement)
from services.simulation import SERVICE as SIMULATION

pytestmark = pytest.mark.integration

FIB25 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fib25_training_sample2.npz"
MAX_INPUT_BYTES = 600_000      # the (40, 96, 96) uint64 crop is 2.9 MB: it must be read block by block


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket, tmp_path_factory.mktemp("connectomics") / "service.log",
                             max_input_bytes=str(MAX_INPUT_BYTES), compute_threads="1")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield connectomics_pb2_grpc.ConnectomicsServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


def stream(call):
    events = list(call)
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


def status_of(err: grpc.RpcError):
    status = rpc_status.from_call(err)
    return err.code(), err.details(), error_detail_from_status(status) if status else None


def table(store, ref) -> dict[str, np.ndarray]:
    return read_edge_table(store.get_bytes(ref))


@pytest.fixture(scope="module")
def fib25_crop():
    if not FIB25.exists():
        pytest.fail(f"the real FIB-25 volume is missing: {FIB25}")
    with np.load(FIB25) as data:
        return data["gt"][100:140, 50:146, 60:156].astype(np.uint64), tuple(float(r) for r in data["resolution_nm"])


@pytest.fixture(scope="module")
def contact_run(stub, store, fib25_crop):
    labels, resolution = fib25_crop
    labels_ref = store.put_array("inputs/fib25-crop", labels, chunks=(20, 48, 48))
    ids = np.unique(labels[labels > 0])
    rng = np.random.default_rng(0)
    pre, post = rng.choice(ids, 60), rng.choice(ids, 60)
    keep = pre != post
    positions = rng.integers(0, 40, (60, 3))
    rows = "".join(f"{a},{b},{z},{y},{x}\n" for a, b, (z, y, x) in zip(pre[keep], post[keep], positions[keep]))
    synapses_ref = store.put_bytes("inputs/synapses.csv", ("pre,post,z,y,x\n" + rows).encode(), media_type="text/csv")
    request = C.ContactGraphRequest(segmentation=segmentation_pb2.Volume(ref=ArtifactRef(key=labels_ref.key)),
                                    voxel_size_nm=list(resolution), block_shape=[20, 48, 48],
                                    synapses=ArtifactRef(key=synapses_ref.key),
                                    measures=C.GraphMeasuresOptions(measures=["degree", "strength", "clustering",
                                                                              "communities"], seed=1))
    progress, result = stream(stub.ContactGraph(request, timeout=300))
    return request, progress, result, (pre[keep], post[keep])


def test_contact_graph_of_real_em_ground_truth_matches_the_core(contact_run, store, fib25_crop):
    labels, resolution = fib25_crop
    _, progress, result, _ = contact_run
    expected = contact_graph(labels, voxel_size=resolution)
    assert result.n_nodes == expected.n_nodes and result.n_edges == expected.n_edges
    assert result.total_area_nm2 == pytest.approx(float(expected.area.sum()))
    edges = table(store, result.edge_table)
    np.testing.assert_array_equal(edges["source"], expected.edge_a.astype(np.int64))
    np.testing.assert_array_equal(edges["target"], expected.edge_b.astype(np.int64))
    np.testing.assert_array_equal(edges["faces"], expected.faces)
    np.testing.assert_allclose(edges["area_nm2"], expected.area)
    segments = np.genfromtxt(io.BytesIO(store.get_bytes(result.node_table)), delimiter=",", names=True)
    np.testing.assert_array_equal(segments["voxel_count"], expected.node_voxels)
    assert {p.stage for p in progress} >= {"contacts", "store"}
    assert [p.fraction_done for p in progress] == sorted(p.fraction_done for p in progress)
    # the GraphML opens in networkx with the same graph
    graph = nx.read_graphml(io.BytesIO(store.get_bytes(result.graphml)))
    assert graph.number_of_nodes() == expected.n_nodes and graph.number_of_edges() == expected.n_edges
    # measures: degrees of the contact graph are the number of touching segments
    measured = np.genfromtxt(io.BytesIO(store.get_bytes(result.measures.node_table)), delimiter=",", names=True)
    degrees = np.bincount(np.searchsorted(expected.node_ids, np.r_[expected.edge_a, expected.edge_b]),
                          minlength=expected.n_nodes)
    np.testing.assert_array_equal(measured["degree"], degrees)
    assert 0 < result.measures.scalars["modularity"] < 1 and result.measures.scalars["n_communities"] >= 2
    assert store.get_bytes(result.heatmap)[:8] == b"\x89PNG\r\n\x1a\n"


def test_synapse_table_becomes_a_directed_graph(contact_run, store):
    _, _, result, (pre, post) = contact_run
    assert result.n_synapses == len(pre)
    edges = table(store, result.synapse_edge_table)
    pairs = {}
    for a, b in zip(pre.tolist(), post.tolist()):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    assert dict(zip(zip(edges["source"].tolist(), edges["target"].tolist()), edges["synapses"].tolist())) == pairs
    assert nx.read_graphml(io.BytesIO(store.get_bytes(result.synapse_graphml))).is_directed()
    assert result.synapse_measures.directed


def test_a_second_identical_request_returns_the_stored_result(contact_run, stub):
    request, _, result, _ = contact_run
    progress, again = stream(stub.ContactGraph(request, timeout=60))
    assert progress == [] and again.report.key == result.report.key and again.edge_table.key == result.edge_table.key


# --- structure and function of a simulated network ---------------------------------------------------


@pytest.fixture(scope="module")
def simulation(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SIMULATION, s3_server, module_bucket,
                             tmp_path_factory.mktemp("simulation") / "service.log")
    process.start()
    with grpc.insecure_channel(process.address) as channel:
        yield simulation_pb2_grpc.SimulationServiceStub(channel)
    process.stop()


def test_simulated_network_structure_explains_its_correlations(simulation, stub, store):
    network = S.Network(
        populations=[S.Population(name="drive", size=60, model=S.NEURON_MODEL_POISSON, params={"rate_hz": 20.0}),
                     S.Population(name="exc", size=120, params={"i_bias": 5.0})],
        projections=[S.Projection(source="drive", target="exc", weight=4.0, delay_ms=1.0,
                                  connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_INDEGREE, value=3)),
                     S.Projection(source="exc", target="exc", weight=3.0, delay_ms=1.0,
                                  connectivity=S.Connectivity(rule=S.CONNECTIVITY_RULE_FIXED_PROBABILITY, value=0.03))],
        seed=5)
    events = list(simulation.Simulate(S.SimulateRequest(network=network, duration_ms=4000.0, record_connectivity=True),
                                      timeout=300))
    sim = events[-1].result
    assert sim.synapses.n_synapses == sim.synapse_count and list(sim.synapses.projection_starts)[-1] == sim.synapse_count
    request = C.SimulatedConnectomeRequest(
        spike_times=sim.spike_times, spike_ids=sim.spike_ids, pre_ids=sim.synapses.pre_ids,
        post_ids=sim.synapses.post_ids, weights=sim.synapses.weights, population_table=sim.population_table,
        bin_ms=25.0, duration_ms=4000.0)
    response = stub.SimulatedConnectome(request, timeout=120)
    # the same numbers as the core on the downloaded arrays
    times, ids = store.get_array(sim.spike_times), store.get_array(sim.spike_ids)
    W = structural_matrix(store.get_array(sim.synapses.pre_ids), store.get_array(sim.synapses.post_ids),
                          store.get_array(sim.synapses.weights), n_neurons=180)
    fc = functional_connectivity(spike_count_matrix(times, ids, n_neurons=180, bin_ms=25.0, duration_ms=4000.0))
    expected = structure_function_agreement(W, fc)
    assert response.agreement.pearson_r == pytest.approx(expected.pearson_r)
    assert response.agreement.n_connected_pairs == expected.n_connected_pairs > 0
    np.testing.assert_allclose(store.get_array(response.functional), fc, equal_nan=True)
    np.testing.assert_array_equal(store.get_array(response.structural), W.toarray())
    # the physiology: pairs joined by a synapse fire together more than the others
    assert response.agreement.connected_mean_correlation > response.agreement.unconnected_mean_correlation + 0.02
    assert list(response.populations) == ["drive", "exc"] and response.n_neurons == 180
    population_structural = store.get_array(response.population_structural)
    assert population_structural[0, 1] == pytest.approx(W.toarray()[:60, 60:].sum())
    assert store.get_bytes(response.figure)[:8] == b"\x89PNG\r\n\x1a\n"


# --- AnalyzeGraph and its guards ---------------------------------------------------------------------


def test_analyze_graph_of_two_cliques(stub, store):
    edges = [(a, b) for block in (range(0, 5), range(5, 10)) for a in block for b in block if a < b] + [(4, 5)]
    csv = "source,target\n" + "".join(f"{a},{b}\n" for a, b in edges)
    ref = store.put_bytes("inputs/two-cliques.csv", csv.encode(), media_type="text/csv")
    response = stub.AnalyzeGraph(C.AnalyzeGraphRequest(
        edge_table=ArtifactRef(key=ref.key), measures=C.GraphMeasuresOptions(
            measures=["degree", "clustering", "path_length", "communities"], seed=0)), timeout=60)
    graph = nx.Graph(edges)
    scalars = response.measures.scalars
    assert scalars["average_clustering"] == pytest.approx(nx.average_clustering(graph))
    assert scalars["characteristic_path_length"] == pytest.approx(nx.average_shortest_path_length(graph))
    assert scalars["n_communities"] == 2
    expected_q = nx.community.modularity(graph, [set(range(5)), set(range(5, 10))])
    assert scalars["modularity"] == pytest.approx(expected_q)
    nodes = np.genfromtxt(io.BytesIO(store.get_bytes(response.measures.node_table)), delimiter=",", names=True)
    assert nodes["degree"].tolist() == [4, 4, 4, 4, 5, 5, 4, 4, 4, 4]


def test_a_measure_too_large_for_its_graph_is_refused_at_once(stub, store):
    n = 20_002      # a path: all-pairs shortest paths over more nodes than the default limit
    csv = "source,target\n" + "".join(f"{i},{i + 1}\n" for i in range(n - 1))
    ref = store.put_bytes("inputs/long-path.csv", csv.encode(), media_type="text/csv")
    with pytest.raises(grpc.RpcError) as info:
        stub.AnalyzeGraph(C.AnalyzeGraphRequest(edge_table=ArtifactRef(key=ref.key), measures=C.GraphMeasuresOptions(
            measures=["path_length"])), timeout=60)
    code, message, detail = status_of(info.value)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "20000" in message.replace(",", "")
    assert detail.reason == "GRAPH_TOO_LARGE"


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors_and_the_server_keeps_serving(stub, store, service):
    float_ref = store.put_array("inputs/float-labels", np.full((4, 8, 8), 1.5))
    bad_csv = store.put_bytes("inputs/bad.csv", b"source,target,weight\n1,2,abc\n", media_type="text/csv")
    labels_ref = store.put_array("inputs/small-labels", np.ones((4, 8, 8), np.uint32))
    cases = [
        (lambda: stream(stub.ContactGraph(C.ContactGraphRequest(segmentation=segmentation_pb2.Volume(
            ref=ArtifactRef(key=float_ref.key))), timeout=30)), grpc.StatusCode.INVALID_ARGUMENT, "integer"),
        (lambda: stream(stub.ContactGraph(C.ContactGraphRequest(segmentation=segmentation_pb2.Volume(
            ref=ArtifactRef(key="inputs/nope"))), timeout=30)), grpc.StatusCode.NOT_FOUND, "segmentation"),
        (lambda: stream(stub.ContactGraph(C.ContactGraphRequest(segmentation=segmentation_pb2.Volume(
            ref=ArtifactRef(key=labels_ref.key)), voxel_size_nm=[1, 0, 1]), timeout=30)),
         grpc.StatusCode.INVALID_ARGUMENT, "voxel_size_nm"),
        (lambda: stream(stub.ContactGraph(C.ContactGraphRequest(segmentation=segmentation_pb2.Volume(
            ref=ArtifactRef(key=labels_ref.key)), synapses=ArtifactRef(key=bad_csv.key)), timeout=30)),
         grpc.StatusCode.INVALID_ARGUMENT, "synapses"),
        (lambda: stub.AnalyzeGraph(C.AnalyzeGraphRequest(edge_table=ArtifactRef(key=bad_csv.key)), timeout=30),
         grpc.StatusCode.INVALID_ARGUMENT, "row 2: weight 'abc' is not a number"),
        (lambda: stub.AnalyzeGraph(C.AnalyzeGraphRequest(), timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "graph"),
        (lambda: stub.AnalyzeGraph(C.AnalyzeGraphRequest(edge_table=ArtifactRef(key=bad_csv.key),
                                                         measures=C.GraphMeasuresOptions(measures=["pagerank"])),
                                   timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "pagerank"),
    ]
    for call, code, fragment in cases:
        with pytest.raises(grpc.RpcError) as info:
            call()
        got, message, _ = status_of(info.value)
        assert got == code and fragment in message, (code, fragment, got, message)
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"
