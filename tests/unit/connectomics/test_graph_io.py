"""Edge tables and GraphML: round trips through the formats, and malformed files refused by name."""

from __future__ import annotations

import io

import networkx as nx
import numpy as np
import pytest

from services.connectomics.core.graph_io import (adjacency_from_edges, edge_table_csv, graphml_bytes,
                                                 matrix_edge_table, read_edge_table)


def test_edge_table_round_trips_through_csv():
    columns = {"source": np.array([3, 3, 10]), "target": np.array([4, 10, 11]),
               "area": np.array([1.5, 0.1, 1e-7]), "faces": np.array([3, 1, 2])}
    table = read_edge_table(edge_table_csv(columns))
    assert table["source"].tolist() == [3, 3, 10] and table["target"].tolist() == [4, 10, 11]
    assert table["area"].tolist() == [1.5, 0.1, 1e-7] and table["faces"].tolist() == [3.0, 1.0, 2.0]


def test_named_nodes_are_kept_as_strings():
    table = read_edge_table(b"source,target,weight\nV1,V2,1\nV2,MT,2\n")
    nodes, matrix = adjacency_from_edges(table, directed=True)
    assert nodes.tolist() == ["MT", "V1", "V2"]
    assert matrix.toarray().tolist() == [[0, 0, 0], [0, 0, 1], [2, 0, 0]]


def test_adjacency_sums_repeated_edges_and_symmetrises_undirected_graphs():
    table = {"source": np.array([0, 0, 1]), "target": np.array([1, 1, 2]), "weight": np.array([1.0, 2.0, 5.0])}
    _, undirected = adjacency_from_edges(table, directed=False)
    assert undirected.toarray().tolist() == [[0, 3, 0], [3, 0, 5], [0, 5, 0]]
    _, binary = adjacency_from_edges(table, weight=None, directed=True)
    assert binary.toarray().tolist() == [[0, 2, 0], [0, 0, 1], [0, 0, 0]]


def test_matrix_edge_table_lists_the_nonzero_entries():
    matrix = np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]], float)
    table = matrix_edge_table(matrix, [10, 20, 30], directed=False)
    assert list(zip(table["source"].tolist(), table["target"].tolist(), table["weight"].tolist())) == [
        (10, 20, 2.0), (20, 30, 1.0)]
    assert len(matrix_edge_table(matrix, [10, 20, 30], directed=True)["source"]) == 4


def test_graphml_is_read_back_by_networkx_with_its_attributes():
    edges = {"source": np.array([1, 2]), "target": np.array([2, 3]), "area": np.array([4.5, 1.0])}
    nodes = {"id": np.array([1, 2, 3, 4]), "voxels": np.array([10, 20, 30, 1])}
    graph = nx.read_graphml(io.BytesIO(graphml_bytes(edges, directed=False, nodes=nodes)))
    assert sorted(graph.nodes) == ["1", "2", "3", "4"]          # the isolated node 4 is kept
    assert graph.nodes["3"]["voxels"] == 30
    assert graph.edges["1", "2"]["area"] == 4.5 and not graph.is_directed()


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\xff\xfe\x00", "UTF-8"),
    (b"from,to\n1,2\n", "no 'source' column"),
    (b"source,target\n", "no rows"),
    (b"source,target,weight\n1,2\n", "row 2 has 2 fields"),
    (b"source,target,weight\n1,2,abc\n", "row 2: weight 'abc' is not a number"),
    (b"source,target,weight\n1,2,nan\n", "not a finite number"),
    (b"source,target\n1,-2\n", "negative"),
    (b"source,target,source\n1,2,3\n", "repeated column"),
])
def test_malformed_edge_tables_are_refused_naming_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        read_edge_table(data)


def test_oversized_tables_self_loops_and_negative_weights_are_refused():
    with pytest.raises(ValueError, match="more than"):
        read_edge_table(b"source,target\n1,2\n" * 10, max_bytes=50)
    with pytest.raises(ValueError, match="self-loop"):
        adjacency_from_edges({"source": np.array([1]), "target": np.array([1])}, directed=True)
    with pytest.raises(ValueError, match=">= 0"):
        adjacency_from_edges({"source": np.array([1]), "target": np.array([2]), "weight": np.array([-1.0])},
                             directed=True)
    with pytest.raises(ValueError, match="no column 'area'"):
        adjacency_from_edges({"source": np.array([1]), "target": np.array([2])}, weight="area", directed=True)
