"""Graph measures of connectomes: hand-computed answers, networkx as the reference, guards, bad input."""

from __future__ import annotations

import doctest
import math
import re
import time

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from services.connectomics.core import graph_measures as gm
from services.connectomics.core.graph_measures import (
    GraphTooLargeError, average_clustering, characteristic_path_length, clustering, degree,
    degree_preserving_randomization, global_efficiency, graph_summary, louvain_communities, modularity,
    normalized_rich_club_coefficient, rich_club_coefficient, small_world_sigma, strength,
)

# --------------------------------------------------------------------------------------------------
# graphs with known answers


def ring_lattice(n: int, k: int) -> np.ndarray:
    """n nodes on a ring, each joined to its k nearest neighbours (k/2 on each side)."""
    A = np.zeros((n, n))
    for offset in range(1, k // 2 + 1):
        A += np.roll(np.eye(n), offset, axis=1) + np.roll(np.eye(n), -offset, axis=1)
    return A


def star(n: int) -> np.ndarray:
    A = np.zeros((n, n))
    A[0, 1:] = A[1:, 0] = 1
    return A


def complete(n: int) -> np.ndarray:
    return np.ones((n, n)) - np.eye(n)


def two_cliques(size: int, *, inside: float = 1.0, bridge: float = 1.0) -> np.ndarray:
    """Two cliques of ``size`` nodes joined by one edge between node size-1 and node size."""
    A = np.zeros((2 * size, 2 * size))
    A[:size, :size] = A[size:, size:] = inside
    np.fill_diagonal(A, 0)
    A[size - 1, size] = A[size, size - 1] = bridge
    return A


def random_weighted(n: int, p: float, *, seed: int, directed: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = (rng.random((n, n)) < p) * rng.uniform(0.1, 2.0, size=(n, n))
    np.fill_diagonal(A, 0)
    if not directed:
        A = np.triu(A, 1)
        A = A + A.T
    return A


def to_networkx(A: np.ndarray, *, directed: bool) -> nx.Graph:
    G = nx.from_numpy_array(A, create_using=nx.DiGraph if directed else nx.Graph)
    for _, _, data in G.edges(data=True):
        data["length"] = 1.0 / data["weight"]
    return G


def ring_hops(n: int, k: int) -> np.ndarray:
    """Hop distance from a node of the ring lattice to the nodes at offsets 1 .. n-1."""
    offsets = np.arange(1, n)
    return np.ceil(np.minimum(offsets, n - offsets) / (k // 2))


# --------------------------------------------------------------------------------------------------
# hand-computed values


@pytest.mark.parametrize("n, k", [(12, 4), (20, 6), (30, 8), (9, 2)])
def test_ring_lattice_clustering_and_paths(n, k):
    A = ring_lattice(n, k)
    assert np.array_equal(degree(A), np.full(n, k))
    expected_c = 3 * (k - 2) / (4 * (k - 1))
    np.testing.assert_allclose(clustering(A), expected_c, rtol=1e-12, atol=1e-15)
    # every node sees the same distances, so the means over nodes are those of one node
    hops = ring_hops(n, k)
    assert characteristic_path_length(A) == pytest.approx(hops.mean(), rel=1e-12)
    assert global_efficiency(A) == pytest.approx((1 / hops).mean(), rel=1e-12)


def test_ring_lattice_12_4_by_hand():
    A = ring_lattice(12, 4)
    # hops to offsets 1..11: 1 1 2 2 3 3 3 2 2 1 1 (sum 21; sum of inverses 4 + 2 + 1 = 7)
    assert average_clustering(A) == pytest.approx(0.5)
    assert characteristic_path_length(A) == pytest.approx(21 / 11)
    assert global_efficiency(A) == pytest.approx(7 / 11)
    # equal weights 3 everywhere: the weighted clustering is the binary one, lengths are 1/3
    assert average_clustering(3 * A, weighted=True) == pytest.approx(0.5)
    assert characteristic_path_length(3 * A, weighted=True) == pytest.approx(21 / 11 / 3)
    assert global_efficiency(3 * A, weighted=True) == pytest.approx(3 * 7 / 11)


@pytest.mark.parametrize("n", [5, 6, 11])
def test_star(n):
    A = star(n)
    assert np.array_equal(degree(A), [n - 1] + [1] * (n - 1))
    assert np.array_equal(clustering(A), np.zeros(n))
    # centre-leaf pairs at 1 (2(n-1) ordered), leaf-leaf pairs at 2 ((n-1)(n-2) ordered)
    assert characteristic_path_length(A) == pytest.approx(2 * (n - 1) / n)
    assert global_efficiency(A) == pytest.approx((n + 2) / (2 * n))
    assert characteristic_path_length(0.5 * A, weighted=True) == pytest.approx(2 * 2 * (n - 1) / n)
    # only the centre has degree > 1, so phi is defined at k = 0 alone: n - 1 edges of n(n-1)/2 pairs
    k, phi = rich_club_coefficient(A)
    assert np.array_equal(k, [0])
    np.testing.assert_allclose(phi, [2 / n])


def test_complete_graph():
    n = 7
    A = complete(n)
    assert np.array_equal(degree(A), np.full(n, n - 1))
    np.testing.assert_allclose(clustering(A), 1.0)
    np.testing.assert_allclose(clustering(2.5 * A, weighted=True), 1.0)
    assert characteristic_path_length(A) == 1.0
    assert global_efficiency(A) == 1.0
    assert modularity(A, np.zeros(n)) == pytest.approx(0.0, abs=1e-15)
    k, phi = rich_club_coefficient(A)
    assert np.array_equal(k, np.arange(n - 1))
    np.testing.assert_allclose(phi, 1.0)
    # no swap is possible: the complete graph is the only graph with these degrees
    assert np.array_equal(degree_preserving_randomization(A, seed=0), A)


def test_two_cliques_louvain_and_analytic_modularity():
    A = two_cliques(5)
    halves = np.repeat([0, 1], 5)
    # m = 21 edges; each clique has 10 inside and degree sum 21 = m: Q = 2 (10/21 - 1/4) = 19/42
    assert modularity(A, halves) == pytest.approx(19 / 42, rel=1e-12)
    assert modularity(A, np.zeros(10)) == pytest.approx(0.0, abs=1e-15)
    for seed in (0, 1, 2):
        found = louvain_communities(A, seed=seed)
        assert np.array_equal(found.labels, halves)
        assert found.n_communities == 2
        assert found.modularity == pytest.approx(19 / 42, rel=1e-12)
    # Q_gamma = sum_c [L_c/m - gamma (d_c/2m)^2]: 20/21 - gamma/2 for the halves, 1 - gamma for one block
    assert modularity(A, halves, resolution=2.0) == pytest.approx(20 / 21 - 1.0)
    assert modularity(A, np.zeros(10), resolution=0.05) == pytest.approx(0.95)
    # below gamma = 2/21 a single community wins, and Louvain finds it
    single = louvain_communities(A, resolution=0.05, seed=0)
    assert single.n_communities == 1
    assert single.modularity == pytest.approx(0.95)


def test_weighted_two_cliques_modularity():
    # inside weight 2, bridge 1: total weight 41 and each half's strength sum 41, inside weight 20
    A = two_cliques(5, inside=2.0, bridge=1.0)
    halves = np.repeat(["left", "right"], 5)       # labels need not be integers
    assert modularity(A, halves) == pytest.approx(40 / 41 - 0.5, rel=1e-12)
    assert modularity(A, halves, weighted=False) == pytest.approx(19 / 42, rel=1e-12)


def test_directed_cycle_by_hand():
    n = 5
    A = np.roll(np.eye(n), 1, axis=1)                 # arcs i -> i+1
    assert np.array_equal(degree(A, direction="in"), np.ones(n))
    assert np.array_equal(degree(A), np.full(n, 2))
    # distances along the cycle are 1 .. n-1 from every node
    assert characteristic_path_length(A) == pytest.approx(np.arange(1, n).mean())
    assert global_efficiency(A) == pytest.approx((1 / np.arange(1, n)).mean())
    # read as undirected it is not symmetric
    with pytest.raises(ValueError, match=r"not symmetric \(A\[0, 1\] = 1.0 but A\[1, 0\] = 0.0\)"):
        characteristic_path_length(A, directed=False)


def test_disconnected_pairs_left_out_of_path_length_and_zero_in_efficiency():
    A = np.zeros((5, 5))
    A[0, 1] = A[1, 0] = 1                              # a pair
    A[2, 3] = A[3, 2] = A[3, 4] = A[4, 3] = 1          # a path of three
    # connected ordered pairs: 2 at distance 1; in the path 4 at 1 and 2 at 2 -> 8 pairs, sum 10
    assert characteristic_path_length(A) == pytest.approx(10 / 8)
    assert global_efficiency(A) == pytest.approx((2 + 4 + 2 * 0.5) / 20)
    G = nx.from_numpy_array(A)
    assert global_efficiency(A) == pytest.approx(nx.global_efficiency(G))
    summary = graph_summary(A, measures=("path_length",))
    assert summary["connected_pair_fraction"] == pytest.approx(8 / 20)


# --------------------------------------------------------------------------------------------------
# networkx as the reference


@pytest.fixture(scope="module", params=[False, True], ids=["undirected", "directed"])
def weighted_graph(request):
    directed = request.param
    A = random_weighted(40, 0.15, seed=3, directed=directed)
    G = to_networkx(A, directed=directed)
    assert (nx.is_strongly_connected if directed else nx.is_connected)(G)
    return A, G, directed


def test_degree_and_strength_match_networkx(weighted_graph):
    A, G, directed = weighted_graph
    nodes = range(len(A))
    if directed:
        assert np.array_equal(degree(A, direction="in"), [G.in_degree(i) for i in nodes])
        assert np.array_equal(degree(A, direction="out"), [G.out_degree(i) for i in nodes])
        np.testing.assert_allclose(strength(A, direction="in"), [G.in_degree(i, weight="weight") for i in nodes])
        np.testing.assert_allclose(strength(A, direction="out"), [G.out_degree(i, weight="weight") for i in nodes])
    assert np.array_equal(degree(A), [G.degree(i) for i in nodes])
    np.testing.assert_allclose(strength(A), [G.degree(i, weight="weight") for i in nodes], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_clustering_matches_networkx(weighted_graph, weighted):
    A, G, directed = weighted_graph
    weight = "weight" if weighted else None
    reference = nx.clustering(G, weight=weight)
    np.testing.assert_allclose(clustering(A, weighted=weighted), [reference[i] for i in range(len(A))],
                               rtol=1e-10, atol=1e-14)
    assert average_clustering(A, weighted=weighted) == pytest.approx(nx.average_clustering(G, weight=weight),
                                                                      rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_paths_match_networkx(weighted_graph, weighted):
    A, G, directed = weighted_graph
    length = "length" if weighted else None
    assert characteristic_path_length(A, weighted=weighted) == pytest.approx(
        nx.average_shortest_path_length(G, weight=length), rel=1e-10)
    distances = dict(nx.shortest_path_length(G, weight=length))
    n = len(A)
    inverse_sum = sum(1 / d for i in range(n) for j, d in distances[i].items() if j != i)
    assert global_efficiency(A, weighted=weighted) == pytest.approx(inverse_sum / (n * (n - 1)), rel=1e-10)
    if not directed and not weighted:
        assert global_efficiency(A) == pytest.approx(nx.global_efficiency(G), rel=1e-12)


def test_disconnected_graph_paths_match_networkx():
    A = random_weighted(60, 0.03, seed=5)
    G = to_networkx(A, directed=False)
    assert not nx.is_connected(G)
    distances = dict(nx.shortest_path_length(G))
    finite = [d for i in distances for j, d in distances[i].items() if j != i]
    assert characteristic_path_length(A) == pytest.approx(np.mean(finite), rel=1e-12)
    assert global_efficiency(A) == pytest.approx(nx.global_efficiency(G), rel=1e-12)


@pytest.mark.parametrize("resolution", [1.0, 0.6, 1.7])
@pytest.mark.parametrize("weighted", [True, False])
def test_modularity_matches_networkx(weighted_graph, resolution, weighted):
    A, G, directed = weighted_graph
    labels = np.random.default_rng(0).integers(4, size=len(A))
    communities = [set(np.flatnonzero(labels == c).tolist()) for c in range(4)]
    expected = nx.community.modularity(G, communities, weight="weight" if weighted else None, resolution=resolution)
    assert modularity(A, labels, resolution=resolution, weighted=weighted) == pytest.approx(expected, rel=1e-10)


def test_louvain_matches_networkx_with_the_same_seed(weighted_graph):
    A, G, directed = weighted_graph
    found = louvain_communities(A, seed=7, resolution=1.2)
    reference = nx.community.louvain_communities(G, weight="weight", resolution=1.2, seed=7)
    ours = {frozenset(np.flatnonzero(found.labels == c).tolist()) for c in range(found.n_communities)}
    assert ours == {frozenset(c) for c in reference}
    assert found.modularity == pytest.approx(nx.community.modularity(G, reference, resolution=1.2), rel=1e-10)
    # communities are numbered by their lowest node
    assert [int(np.flatnonzero(found.labels == c)[0]) for c in range(found.n_communities)] == sorted(
        min(c) for c in reference)


def test_rich_club_matches_networkx():
    A = random_weighted(80, 0.1, seed=11)
    G = nx.from_numpy_array(A)
    reference = nx.rich_club_coefficient(G, normalized=False)
    k, phi = rich_club_coefficient(A)
    assert k.tolist() == sorted(reference)
    np.testing.assert_allclose(phi, [reference[d] for d in k.tolist()], rtol=1e-12)


def test_directed_rich_club_by_hand():
    # arcs 0->1, 1->0, 1->2, 2->0, 3->0; total degrees 4, 3, 2, 1
    A = np.zeros((4, 4))
    for i, j in [(0, 1), (1, 0), (1, 2), (2, 0), (3, 0)]:
        A[i, j] = 1
    k, phi = rich_club_coefficient(A)
    # k=0: 5 arcs / 12; k=1: nodes 0,1,2 hold 4 arcs / 6; k=2: nodes 0,1 hold 2 arcs / 2
    assert np.array_equal(k, [0, 1, 2])
    np.testing.assert_allclose(phi, [5 / 12, 4 / 6, 1.0])


def test_sparse_input_gives_the_dense_results():
    for directed in (False, True):
        A = random_weighted(30, 0.2, seed=2, directed=directed)
        labels = np.arange(30) % 3
        for sparse in (sp.csr_array(A), sp.coo_matrix(A), sp.lil_array(A)):
            np.testing.assert_allclose(clustering(sparse, weighted=True), clustering(A, weighted=True))
            assert characteristic_path_length(sparse, weighted=True) == characteristic_path_length(A, weighted=True)
            assert modularity(sparse, labels) == pytest.approx(modularity(A, labels), rel=1e-13)


def test_sparse_clustering_path_for_large_graphs_matches_dense():
    # 2,500 nodes of density < 5% take the blocked sparse products; dense products are the reference
    A = sp.random_array((2500, 2500), density=0.004, random_state=np.random.default_rng(1), format="csr")
    A = sp.triu(A, k=1)
    A = (A + A.T).tocsr()
    graph = gm._as_graph(A)
    assert not gm._clustering_uses_dense_products(graph)
    dense = A.toarray()
    x = np.cbrt(dense / dense.max())
    expected_triangles = np.einsum("ij,ij->i", x @ x, x)
    k = (dense > 0).sum(axis=1)
    expected = np.divide(expected_triangles, k * (k - 1), out=np.zeros(2500), where=k > 1)
    np.testing.assert_allclose(clustering(A, weighted=True), expected, rtol=1e-10, atol=1e-15)


def test_results_do_not_depend_on_the_block_sizes(monkeypatch):
    # blocks of a few rows (clustering) and of a few sources (paths) sum to the one-block results
    A = sp.random_array((2500, 2500), density=0.003, random_state=np.random.default_rng(6), format="csr")
    A = sp.triu(A, k=1)
    A = (A + A.T).tocsr()
    B = random_weighted(40, 0.1, seed=6, directed=True)
    one_block = (clustering(A, weighted=True), characteristic_path_length(B, weighted=True), global_efficiency(B))
    monkeypatch.setattr(gm, "_PRODUCT_BLOCK_ENTRIES", 64)
    monkeypatch.setattr(gm, "_PATH_BLOCK_ELEMENTS", 7 * 40)
    np.testing.assert_allclose(clustering(A, weighted=True), one_block[0], rtol=1e-12)
    assert characteristic_path_length(B, weighted=True) == pytest.approx(one_block[1], rel=1e-12)
    assert global_efficiency(B) == pytest.approx(one_block[2], rel=1e-12)


def test_nearly_symmetric_matrix_counts_as_undirected():
    A = random_weighted(20, 0.3, seed=4)
    noisy = A + 1e-14 * np.triu(A, 1)
    assert graph_summary(noisy, measures=("degree",))["directed"] is False
    assert graph_summary(A, measures=("degree",), directed=True)["directed"] is True


def test_symmetric_matrix_read_as_directed_gives_the_undirected_values():
    # Fagiolo's coefficient reduces to Onnela's when every arc is reciprocated: S = 2X, the total
    # degree is 2k and k arcs are reciprocal, so 8 (X^3)_ii / (2 [2k (2k - 1) - 2k]) = (X^3)_ii / (k (k - 1))
    A = random_weighted(30, 0.25, seed=16)
    for weighted in (False, True):
        np.testing.assert_allclose(clustering(A, weighted=weighted, directed=True), clustering(A, weighted=weighted),
                                   rtol=1e-12)
        assert characteristic_path_length(A, weighted=weighted, directed=True) == pytest.approx(
            characteristic_path_length(A, weighted=weighted), rel=1e-12)
    labels = np.arange(30) % 4
    assert modularity(A, labels, directed=True) == pytest.approx(modularity(A, labels), rel=1e-12)


def test_boolean_adjacency_is_binary():
    A = ring_lattice(10, 4).astype(bool)
    assert average_clustering(A) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------------
# degree-preserving randomisation


def edge_set(A, directed: bool) -> set[tuple[int, int]]:
    rows, cols = np.nonzero(A if directed else np.triu(A, 1))
    return set(zip(rows.tolist(), cols.tolist()))


def test_undirected_randomization_keeps_degrees_and_changes_edges():
    A = random_weighted(60, 0.1, seed=8)
    R = degree_preserving_randomization(A, n_swaps_per_edge=10, seed=1)
    assert np.array_equal(R, R.T)
    assert np.all(np.diag(R) == 0)
    assert np.array_equal((R > 0).sum(axis=1), (A > 0).sum(axis=1))
    # weights move with their edges: the multiset of weights is unchanged
    np.testing.assert_array_equal(np.sort(R[np.triu_indices(60, 1)]), np.sort(A[np.triu_indices(60, 1)]))
    before, after = edge_set(A, False), edge_set(R, False)
    assert len(after) == len(before)
    assert len(before & after) < 0.3 * len(before)


def test_directed_randomization_keeps_in_and_out_degrees():
    A = random_weighted(60, 0.08, seed=9, directed=True)
    R = degree_preserving_randomization(A, n_swaps_per_edge=10, seed=2)
    assert np.all(np.diag(R) == 0)
    assert np.array_equal((R > 0).sum(axis=1), (A > 0).sum(axis=1))
    assert np.array_equal((R > 0).sum(axis=0), (A > 0).sum(axis=0))
    before, after = edge_set(A, True), edge_set(R, True)
    assert len(after) == len(before)
    assert len(before & after) < 0.3 * len(before)


def test_randomization_is_seeded_and_keeps_the_input_format():
    A = random_weighted(40, 0.15, seed=1)
    same = [degree_preserving_randomization(A, seed=5) for _ in range(2)]
    assert np.array_equal(same[0], same[1])
    assert not np.array_equal(same[0], degree_preserving_randomization(A, seed=6))
    generator_result = degree_preserving_randomization(A, seed=np.random.default_rng(5))
    assert np.array_equal(generator_result, same[0])
    assert np.array_equal(degree_preserving_randomization(A, n_swaps_per_edge=0, seed=5), A)
    sparse_result = degree_preserving_randomization(sp.csr_array(A), seed=5)
    assert sp.issparse(sparse_result)
    assert np.array_equal(sparse_result.toarray(), same[0])


def test_undirected_randomization_samples_the_graphs_with_these_degrees_uniformly():
    # four nodes of degree 1: three perfect matchings, which the swaps must all reach equally often
    A = np.zeros((4, 4))
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = 1
    rng = np.random.default_rng(0)
    seen = [tuple(sorted(edge_set(degree_preserving_randomization(A, n_swaps_per_edge=5, seed=rng), False)))
            for _ in range(600)]
    counts = {graph: seen.count(graph) / len(seen) for graph in set(seen)}
    assert set(counts) == {((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))}
    for share in counts.values():
        assert share == pytest.approx(1 / 3, abs=0.07)


def test_directed_randomization_samples_the_graphs_with_these_degrees_uniformly():
    # four nodes with one arc in and one out: the 9 derangements of 4 (two 2-cycles or a 4-cycle)
    A = np.zeros((4, 4))
    for i, j in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        A[i, j] = 1
    rng = np.random.default_rng(1)
    seen = [tuple(sorted(edge_set(degree_preserving_randomization(A, n_swaps_per_edge=10, seed=rng, directed=True),
                                  True)))
            for _ in range(900)]
    counts = {graph: seen.count(graph) / len(seen) for graph in set(seen)}
    assert len(counts) == 9
    for share in counts.values():
        assert share == pytest.approx(1 / 9, abs=0.045)


def test_randomized_lattice_loses_its_clustering():
    A = ring_lattice(100, 6)
    R = degree_preserving_randomization(A, n_swaps_per_edge=10, seed=3)
    assert average_clustering(A) == pytest.approx(0.6)
    # a random graph of mean degree 6 on 100 nodes clusters at about 6/100
    assert average_clustering(R) < 0.15


# --------------------------------------------------------------------------------------------------
# small-worldness and the normalised rich club


def test_watts_strogatz_graph_is_small_world():
    A = nx.to_numpy_array(nx.watts_strogatz_graph(200, 8, 0.05, seed=1), nodelist=range(200))
    result = small_world_sigma(A, n_random=5, seed=0)
    assert result.sigma > 2.0
    assert result.sigma == pytest.approx((result.clustering / result.clustering_random)
                                         / (result.path_length / result.path_length_random))
    assert result.clustering == pytest.approx(average_clustering(A))
    assert result.path_length == pytest.approx(characteristic_path_length(A))
    assert result.n_random == 5


@pytest.mark.parametrize("directed", [False, True])
def test_random_graph_sigma_is_about_one(directed):
    A = random_weighted(200, 0.06, seed=12, directed=directed)
    result = small_world_sigma(A, n_random=5, seed=1)
    assert result.sigma == pytest.approx(1.0, abs=0.2)
    assert result.clustering_random == pytest.approx(result.clustering, rel=0.25)


def test_small_world_sigma_is_seeded():
    A = ring_lattice(40, 4)
    assert small_world_sigma(A, n_random=2, seed=4) == small_world_sigma(A, n_random=2, seed=4)


def test_normalized_rich_club():
    # random graph: phi matches its random counterparts at the low degrees
    A = random_weighted(150, 0.08, seed=13)
    club = normalized_rich_club_coefficient(A, n_random=5, seed=0)
    low = club.degrees <= 8
    np.testing.assert_allclose(club.phi_normalized[low], 1.0, atol=0.1)
    np.testing.assert_allclose(club.phi, rich_club_coefficient(A)[1])

    # planted rich club: 10 hubs all linked to each other and to 10 of 200 sparsely linked others;
    # random graphs with these degrees join two hubs with probability about 19^2 / 2m ~ 1/3
    rng = np.random.default_rng(0)
    hubs, others = 10, 200
    B = np.zeros((hubs + others, hubs + others))
    B[:hubs, :hubs] = 1
    B[hubs:, hubs:] = np.triu(rng.random((others, others)) < 4 / others, 1)
    for h in range(hubs):
        B[h, hubs + rng.choice(others, size=10, replace=False)] = 1
    B = np.maximum(B, B.T)
    np.fill_diagonal(B, 0)
    k_hubs_only = int(B[hubs:].sum(axis=1).max())      # above it only the hubs remain
    assert B[:hubs].sum(axis=1).min() > k_hubs_only
    club = normalized_rich_club_coefficient(B, n_random=5, seed=0)
    at = int(np.flatnonzero(club.degrees == k_hubs_only)[0])
    assert club.phi[at] == 1.0
    assert club.phi_normalized[at] > 2.0


# --------------------------------------------------------------------------------------------------
# the summary


def test_summary_holds_the_single_measures():
    A = random_weighted(30, 0.2, seed=14)
    summary = graph_summary(A, seed=0)
    assert summary["n_nodes"] == 30
    assert summary["n_edges"] == int((A > 0).sum() // 2)
    assert summary["density"] == pytest.approx(summary["n_edges"] / (30 * 29 / 2))
    assert summary["directed"] is False
    np.testing.assert_array_equal(summary["degree"], degree(A))
    np.testing.assert_allclose(summary["weighted_clustering"], clustering(A, weighted=True))
    assert summary["average_clustering"] == pytest.approx(average_clustering(A))
    assert summary["weighted_characteristic_path_length"] == pytest.approx(
        characteristic_path_length(A, weighted=True))
    assert summary["global_efficiency"] == pytest.approx(global_efficiency(A))
    assert summary["modularity"] == pytest.approx(modularity(A, summary["community_labels"]))
    assert "small_world_sigma" not in summary
    for value in summary.values():
        assert isinstance(value, (bool, int, float, np.ndarray))


def test_summary_of_a_directed_graph_with_random_measures():
    A = random_weighted(30, 0.2, seed=15, directed=True)
    summary = graph_summary(A, measures=gm.SUMMARY_MEASURES, n_random=2, seed=3)
    assert summary["directed"] is True
    np.testing.assert_array_equal(summary["in_degree"], degree(A, direction="in"))
    np.testing.assert_allclose(summary["out_strength"], strength(A, direction="out"))
    assert summary["small_world_sigma"] > 0
    assert summary["rich_club_normalized"].shape == summary["rich_club_degrees"].shape
    again = graph_summary(A, measures=gm.SUMMARY_MEASURES, n_random=2, seed=3)
    assert again["small_world_sigma"] == summary["small_world_sigma"]
    np.testing.assert_array_equal(again["community_labels"], summary["community_labels"])


# --------------------------------------------------------------------------------------------------
# guards


def sparse_ring(n: int) -> sp.csr_array:
    rows = np.arange(n)
    cols = (rows + 1) % n
    A = sp.coo_array((np.ones(n), (rows, cols)), shape=(n, n))
    return (A + A.T).tocsr()


def test_path_guard_refuses_a_large_graph_at_once():
    A = sparse_ring(30_000)
    start = time.perf_counter()
    with pytest.raises(GraphTooLargeError) as info:
        characteristic_path_length(A)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert message.startswith("characteristic_path_length: the graph has 30,000 nodes and 30,000 edges")
    assert "max_nodes=20,000" in message and "pass max_nodes=30_000" in message
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.measure, err.n_nodes, err.n_edges, err.limit_name, err.limit) == (
        "characteristic_path_length", 30_000, 30_000, "max_nodes", 20_000)


def test_edge_visit_guard_and_its_advice():
    A = ring_lattice(20, 4)                            # 40 edges, 80 arcs: 1,600 visits
    with pytest.raises(GraphTooLargeError, match=r"global_efficiency: .* 20 nodes and 40 edges.*is 1,600, "
                                                 r"more than the limit max_edge_visits=100") as info:
        global_efficiency(A, max_edge_visits=100)
    suggested = int(re.search(r"pass max_edge_visits=([\d_]+)", str(info.value)).group(1))
    assert global_efficiency(A, max_edge_visits=suggested) == pytest.approx(global_efficiency(A))


def test_large_limits_are_suggested_rounded_up():
    with pytest.raises(GraphTooLargeError) as info:
        gm._guard_paths(gm._as_graph(sparse_ring(12_345)), "global_efficiency", max_nodes=math.inf,
                        max_edge_visits=1e6)
    assert info.value.required == 12_345 * 24_690
    suggested = float(re.search(r"pass max_edge_visits=(\S+) ", str(info.value)).group(1))
    assert info.value.required <= suggested < 1.01 * info.value.required


def test_clustering_guard_only_for_sparse_products():
    A = sparse_ring(3_000)                             # beyond dense products: sum_j k_j^2 = 12,000
    with pytest.raises(GraphTooLargeError, match=r"clustering: .*3,000 nodes and 3,000 edges.*12,000.*max_wedges=100"):
        clustering(A, max_wedges=100)
    assert clustering(A, max_wedges=12_000).sum() == 0
    # small graphs use dense products whose cost is bounded, so they are never refused
    assert average_clustering(ring_lattice(50, 4), max_wedges=1) == pytest.approx(0.5)


def test_louvain_and_swap_guards():
    A = two_cliques(5)
    with pytest.raises(GraphTooLargeError, match=r"louvain_communities: .*21 edges.*max_edges=20"):
        louvain_communities(A, max_edges=20, seed=0)
    with pytest.raises(GraphTooLargeError, match=r"degree_preserving_randomization: .*is 210, .*max_swap_attempts=200"):
        degree_preserving_randomization(A, n_swaps_per_edge=10, max_swap_attempts=200)


def test_random_ensembles_multiply_the_cost():
    A = ring_lattice(50, 2)                            # 50 edges, 100 arcs: 5,000 visits per graph
    assert characteristic_path_length(A, max_edge_visits=20_000) > 0
    with pytest.raises(GraphTooLargeError, match=r"on 11 graphs.*is 55,000.*lower n_random"):
        small_world_sigma(A, n_random=10, max_edge_visits=20_000, seed=0)
    assert small_world_sigma(A, n_random=2, max_edge_visits=20_000, seed=0).n_random == 2
    with pytest.raises(GraphTooLargeError, match=r"for 4 random graphs.*is 2,000"):
        normalized_rich_club_coefficient(A, n_random=4, max_swap_attempts=1_000)


def test_summary_checks_every_guard_before_any_work(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a measure ran before every guard was checked")

    monkeypatch.setattr(gm, "_path_statistics", must_not_run)
    monkeypatch.setattr(gm, "_degree", must_not_run)
    with pytest.raises(GraphTooLargeError, match=r"^communities: .*max_edges=1\b"):
        graph_summary(two_cliques(4), measures=("degree", "path_length", "communities"), limits={"max_edges": 1})


def test_limits_are_checked():
    A = ring_lattice(10, 2)
    with pytest.raises(ValueError, match="max_nodes must be a positive number"):
        global_efficiency(A, max_nodes=0)
    with pytest.raises(ValueError, match=r"unknown limits \['max_cats'\]"):
        graph_summary(A, limits={"max_cats": 3})
    assert global_efficiency(A, max_nodes=math.inf) > 0


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("A, message", [
    (np.zeros((3, 4)), r"adjacency must be square, got shape \(3, 4\)"),
    (np.ones(3), r"adjacency must be square, got shape \(3,\)"),
    (np.zeros((0, 0)), r"adjacency is empty, shape \(0, 0\)"),
    (np.zeros((4, 4)), r"adjacency has no edges"),
    (np.array([[0, np.nan], [np.nan, 0]]), r"NaN or infinite weights \(first A\[0, 1\] = nan\)"),
    (np.array([[0, np.inf], [np.inf, 0]]), r"NaN or infinite weights"),
    (np.array([[0, -1.0], [-1.0, 0]]), r"negative weights \(first A\[0, 1\] = -1.0\)"),
    (np.array([["0", "1"], ["1", "0"]]), r"adjacency must hold real numbers, got dtype <U1"),
    (np.array([[0, 1j], [1j, 0]]), r"real numbers, got dtype complex128"),
    (np.array([[0, 1], [1, 0]], dtype=object), r"real numbers, got dtype object"),
    (np.array([[1.0, 1.0], [1.0, 0]]), r"self-loops .*A\[0, 0\] = 1.0.*np.fill_diagonal"),
    (sp.csr_array(np.array([[0, -2.0], [-2.0, 0]])), r"negative weights \(first A\[0, 1\] = -2.0\)"),
    (sp.csr_array(np.array([[0, np.nan], [1.0, 0]])), r"NaN or infinite weights"),
    (sp.csr_array((3, 4)), r"adjacency must be square, got shape \(3, 4\)"),
    ([[0, 1], [1]], r"square 2-D matrix of numbers"),
])
def test_bad_adjacency(A, message):
    with pytest.raises(ValueError, match=message):
        degree(A)


def test_bad_options():
    A = two_cliques(3)
    with pytest.raises(ValueError, match=r"labels must give one community per node, shape \(6,\), got shape \(5,\)"):
        modularity(A, [0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="resolution must be a finite nonnegative number"):
        louvain_communities(A, resolution=-1)
    with pytest.raises(ValueError, match="n_random must be a positive integer"):
        small_world_sigma(A, n_random=0)
    with pytest.raises(ValueError, match="direction must be 'total', 'in' or 'out'"):
        degree(A, direction="both")
    with pytest.raises(ValueError, match="directed must be True, False or None"):
        degree(A, directed="yes")
    with pytest.raises(ValueError, match=r"unknown measures \['pagerank'\]"):
        graph_summary(A, measures=("degree", "pagerank"))
    with pytest.raises(ValueError, match="measures must be a collection"):
        graph_summary(A, measures="degree")
    with pytest.raises(ValueError, match="seed must be"):
        degree_preserving_randomization(A, seed=-3)
    with pytest.raises(ValueError, match="seed must be"):
        louvain_communities(A, seed=1.5)


# --------------------------------------------------------------------------------------------------
# the docstring examples


def test_docstring_examples_run():
    result = doctest.testmod(gm, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 20
    assert result.failed == 0
