"""Graphs in and out: edge tables as CSV, GraphML for Gephi/Cytoscape/networkx, adjacency from tables.

An **edge table** is a CSV file with a header row; the columns ``source`` and ``target`` (node
ids, integers or names) are required, every other column is a numeric edge attribute
(``weight``, ``faces``, ``area``, ``synapses`` ...). A **node table** has a column ``id`` and
numeric attributes. The same tables come out of the service and go into it, so a graph made by
one call (a contact graph, a connectivity matrix) can be analysed by another.

GraphML is written through networkx (a well-kept, widely read implementation of the format);
node ids are written as strings, attributes as numbers.

Example
-------
>>> csv = edge_table_csv({"source": [1, 1], "target": [2, 3], "weight": [0.5, 2.0]})
>>> print(csv.decode().strip())
source,target,weight
1,2,0.5
1,3,2.0
>>> table = read_edge_table(csv)
>>> nodes, matrix = adjacency_from_edges(table, weight="weight", directed=False)
>>> nodes.tolist(), matrix.toarray().tolist()
([1, 2, 3], [[0.0, 0.5, 2.0], [0.5, 0.0, 0.0], [2.0, 0.0, 0.0]])
"""

from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

import networkx as nx
import numpy as np
from scipy import sparse

__all__ = ["edge_table_csv", "read_edge_table", "read_synapse_table", "adjacency_from_edges", "matrix_edge_table", "graphml_bytes",
           "MAX_TABLE_BYTES"]

#: edge tables larger than this are refused before parsing (about 10 million rows)
MAX_TABLE_BYTES = 512 * 2**20


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def edge_table_csv(columns: Mapping[str, Sequence[Any]]) -> bytes:
    """A CSV file (UTF-8, header row) of equal-length columns, in the order given."""
    names = list(columns)
    lengths = {len(columns[n]) for n in names}
    if len(lengths) > 1:
        raise ValueError(f"columns must have equal lengths, got {dict((n, len(columns[n])) for n in names)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in zip(*(columns[n] for n in names)):
        writer.writerow([_format(v) for v in row])
    return out.getvalue().encode()


def _parse_id(text: str, row: int, column: str):
    text = text.strip()
    if not text:
        raise ValueError(f"edge table row {row}: {column} is empty")
    try:
        value = int(text)
    except ValueError:
        return text
    if value < 0:
        raise ValueError(f"edge table row {row}: {column} {value} is negative; node ids are >= 0 or names")
    return value


def read_edge_table(data: bytes, *, max_bytes: int = MAX_TABLE_BYTES) -> dict[str, np.ndarray]:
    """Parse an edge table (see the module): ``source``/``target`` as int64 (or str) arrays, the
    rest as float64.

    Raises
    ------
    ValueError
        Not UTF-8 text, no header, missing ``source``/``target``, a row of the wrong length, a
        non-numeric or non-finite attribute (naming the row and column), no rows, too large.
    """
    if len(data) > max_bytes:
        raise ValueError(f"the edge table holds {len(data)} bytes, more than the {max_bytes} this reads")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the edge table is not UTF-8 text (a CSV file with a header row is expected)") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ValueError("the edge table is empty: a CSV header row with source and target is expected")
    header = [h.strip() for h in header]
    for required in ("source", "target"):
        if required not in header:
            raise ValueError(f"the edge table has no {required!r} column; its columns: {', '.join(header)}")
    if len(set(header)) != len(header):
        raise ValueError(f"the edge table has repeated column names: {', '.join(header)}")
    values: dict[str, list] = {h: [] for h in header}
    for row_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"edge table row {row_number} has {len(row)} fields, the header {len(header)}")
        for name, cell in zip(header, row):
            if name in ("source", "target"):
                values[name].append(_parse_id(cell, row_number, name))
                continue
            try:
                number = float(cell)
            except ValueError:
                raise ValueError(f"edge table row {row_number}: {name} {cell!r} is not a number") from None
            if not np.isfinite(number):
                raise ValueError(f"edge table row {row_number}: {name} is {cell.strip()}, not a finite number")
            values[name].append(number)
    if not values["source"]:
        raise ValueError("the edge table has a header but no rows")
    table: dict[str, np.ndarray] = {}
    for name, column in values.items():
        if name in ("source", "target"):
            table[name] = (np.asarray(column, dtype=np.int64) if all(isinstance(v, int) for v in column)
                           else np.asarray([str(v) for v in column]))
        else:
            table[name] = np.asarray(column, dtype=np.float64)
    if table["source"].dtype.kind != table["target"].dtype.kind:
        table["source"], table["target"] = table["source"].astype(str), table["target"].astype(str)
    return table


def adjacency_from_edges(table: Mapping[str, np.ndarray], *, weight: str | None = "weight", directed: bool,
                         nodes: Sequence[Any] | None = None) -> tuple[np.ndarray, sparse.csr_matrix]:
    """The node list (sorted, or ``nodes``) and the sparse adjacency of an edge table.

    Repeated edges sum; undirected graphs are symmetrised (an edge given both ways counts twice).
    ``weight=None`` or a table without that column gives weight 1 per edge. Self-loops are
    refused: graph measures of connectomes are defined without them.
    """
    source, target = np.asarray(table["source"]), np.asarray(table["target"])
    if weight is not None and weight in table:
        w = np.asarray(table[weight], dtype=np.float64)
    elif weight is not None and weight != "weight":
        raise ValueError(f"the edge table has no column {weight!r}; its columns: {', '.join(table)}")
    else:
        w = np.ones(len(source))
    if (source == target).any():
        first = int(np.flatnonzero(source == target)[0])
        raise ValueError(f"edge {first} is a self-loop on node {source[first]}; graph measures here exclude them")
    if (w < 0).any():
        raise ValueError(f"edge weights must be >= 0, found {w.min()}")
    node_list = np.unique(np.r_[source, target]) if nodes is None else np.asarray(nodes)
    index = {v: i for i, v in enumerate(node_list.tolist())}
    try:
        i = np.array([index[v] for v in source.tolist()], dtype=np.int64)
        j = np.array([index[v] for v in target.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"edge endpoint {exc.args[0]!r} is not in the node list") from None
    n = len(node_list)
    if not directed:
        i, j, w = np.r_[i, j], np.r_[j, i], np.r_[w, w]
    return node_list, sparse.coo_matrix((w, (i, j)), shape=(n, n)).tocsr()


def matrix_edge_table(matrix: Any, labels: Sequence[Any], *, directed: bool,
                      weight_name: str = "weight") -> dict[str, np.ndarray]:
    """The nonzero entries of a square matrix as an edge table (upper triangle when undirected)."""
    m = sparse.coo_matrix(matrix)
    if m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ValueError(f"matrix {m.shape} and {len(labels)} labels do not match")
    keep = m.data != 0
    if not directed:
        keep &= m.row < m.col
    labels = np.asarray(labels)
    order = np.lexsort((m.col[keep], m.row[keep]))
    return {"source": labels[m.row[keep][order]], "target": labels[m.col[keep][order]],
            weight_name: m.data[keep][order].astype(np.float64)}


def graphml_bytes(edges: Mapping[str, np.ndarray], *, directed: bool,
                  nodes: Mapping[str, np.ndarray] | None = None) -> bytes:
    """GraphML of an edge table (and optionally a node table with column ``id``), via networkx."""
    graph = nx.DiGraph() if directed else nx.Graph()
    if nodes is not None:
        attributes = [name for name in nodes if name != "id"]
        for k, node in enumerate(np.asarray(nodes["id"]).tolist()):
            graph.add_node(str(node), **{a: _plain(nodes[a][k]) for a in attributes})
    attributes = [name for name in edges if name not in ("source", "target")]
    for k, (a, b) in enumerate(zip(np.asarray(edges["source"]).tolist(), np.asarray(edges["target"]).tolist())):
        graph.add_edge(str(a), str(b), **{name: _plain(edges[name][k]) for name in attributes})
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer)
    return buffer.getvalue()


def _plain(value: Any):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def read_synapse_table(data: bytes, *, max_bytes: int = MAX_TABLE_BYTES) -> dict[str, np.ndarray]:
    """Parse a synapse table: CSV with integer columns ``pre`` and ``post`` (segment ids), optionally
    ``z``, ``y``, ``x`` (voxels; all three or none) and ``weight``.

    Returns ``pre``, ``post`` (int64), and ``positions`` ((n, 3) float64) and ``weight`` when given.

    Example
    -------
    >>> t = read_synapse_table(b"pre,post,z,y,x\\n4,7,1,2,3\\n")
    >>> t["pre"].tolist(), t["post"].tolist(), t["positions"].tolist()
    ([4], [7], [[1.0, 2.0, 3.0]])
    """
    if len(data) > max_bytes:
        raise ValueError(f"the synapse table holds {len(data)} bytes, more than the {max_bytes} this reads")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the synapse table is not UTF-8 text (a CSV file with a header row is expected)") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0]:
        raise ValueError("the synapse table is empty: a CSV header row with pre and post is expected")
    header = [h.strip() for h in rows[0]]
    for required in ("pre", "post"):
        if required not in header:
            raise ValueError(f"the synapse table has no {required!r} column; its columns: {', '.join(header)}")
    axes = [a for a in ("z", "y", "x") if a in header]
    if axes and len(axes) != 3:
        raise ValueError(f"the synapse table has position columns {axes}: give all of z, y, x or none")
    body = [r for r in rows[1:] if r and any(c.strip() for c in r)]
    if not body:
        raise ValueError("the synapse table has a header but no rows")
    columns: dict[str, list[float]] = {h: [] for h in header}
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"synapse table row {number} has {len(row)} fields, the header {len(header)}")
        for name, cell in zip(header, row):
            try:
                columns[name].append(float(cell))
            except ValueError:
                raise ValueError(f"synapse table row {number}: {name} {cell!r} is not a number") from None
    table: dict[str, np.ndarray] = {}
    for name in ("pre", "post"):
        values = np.asarray(columns[name])
        if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
            raise ValueError(f"the synapse table's {name} column must hold integer segment ids")
        table[name] = values.astype(np.int64)
    if axes:
        table["positions"] = np.stack([np.asarray(columns[a]) for a in ("z", "y", "x")], axis=1)
    if "weight" in columns:
        table["weight"] = np.asarray(columns["weight"])
    return table
