"""Graph algorithms on the steps of a job: cycle finding, topological order, downstream closure.

Plain functions on step ids and edges, so that they are tested without models or a database.
An edge ``(a, b)`` means "``b`` uses an output of ``a``" (``a`` must finish first).

Example
-------
>>> edges = [("load", "pca"), ("pca", "plot"), ("load", "fa")]
>>> topological_order(["load", "pca", "fa", "plot"], edges)
['load', 'pca', 'fa', 'plot']
>>> find_cycle(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
['a', 'b', 'c', 'a']
>>> sorted(downstream_of(["load", "pca", "fa", "plot"], edges, "pca"))
['plot']
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence


def _successors(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a not in succ or b not in succ:
            raise ValueError(f"edge {a!r} -> {b!r} names a step that is not in the job")
        if b not in succ[a]:
            succ[a].append(b)
    return succ


def find_cycle(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """One cycle of the graph as ``[n0, n1, ..., n0]``, or None when it has none.

    Iterative depth-first search (a job of a thousand chained steps would overflow Python's
    recursion limit): a back edge to a node on the current path closes a cycle. Nodes are visited
    in the given order, so the cycle reported is the same on every call.
    """
    succ = _successors(nodes, edges)
    unvisited, on_path, done = 0, 1, 2
    mark = dict.fromkeys(nodes, unvisited)
    for root in nodes:
        if mark[root] != unvisited:
            continue
        path: list[str] = [root]
        iters = [iter(succ[root])]
        mark[root] = on_path
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                mark[path.pop()] = done
                iters.pop()
            elif mark[nxt] == on_path:
                return path[path.index(nxt):] + [nxt]
            elif mark[nxt] == unvisited:
                mark[nxt] = on_path
                path.append(nxt)
                iters.append(iter(succ[nxt]))
    return None


def topological_order(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """The nodes so that each comes after everything it depends on.

    Kahn's algorithm, taking ready nodes in their given order, so the order is stable: steps
    that do not depend on each other keep the order in which the job lists them.

    Raises
    ------
    ValueError
        When the graph has a cycle, naming it.
    """
    edges = list(edges)
    succ = _successors(nodes, edges)
    indegree = dict.fromkeys(nodes, 0)
    for a in nodes:
        for b in succ[a]:
            indegree[b] += 1
    position = {n: i for i, n in enumerate(nodes)}
    ready = [(position[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for b in succ[n]:
            indegree[b] -= 1
            if indegree[b] == 0:
                heapq.heappush(ready, (position[b], b))
    if len(order) != len(nodes):
        cycle = find_cycle(nodes, edges)
        raise ValueError(f"steps form a cycle (each feeds the next): {' -> '.join(cycle or [])}")
    return order


def downstream_of(nodes: Sequence[str], edges: Iterable[tuple[str, str]], start: str) -> set[str]:
    """Every node that depends, directly or through others, on ``start`` (``start`` excluded)."""
    succ = _successors(nodes, edges)
    seen: set[str] = set()
    stack = list(succ[start])
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(succ[n])
    return seen
