"""The contact graph of label volumes against brute-force counts, blockwise and whole; synapse graphs."""

from __future__ import annotations

import collections
import itertools
from pathlib import Path

import numpy as np
import pytest

from services.connectomics.core.contacts import contact_graph, synapse_graph

FIB25 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fib25_training_sample2.npz"


def brute_force_contacts(labels: np.ndarray) -> collections.Counter:
    """Faces shared by differing nonzero labels, counted voxel by voxel in plain Python."""
    counts: collections.Counter = collections.Counter()
    nz, ny, nx = labels.shape
    for z, y, x in itertools.product(range(nz), range(ny), range(nx)):
        a = int(labels[z, y, x])
        for dz, dy, dx in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            if z + dz < nz and y + dy < ny and x + dx < nx:
                b = int(labels[z + dz, y + dy, x + dx])
                if a and b and a != b:
                    counts[(min(a, b), max(a, b))] += 1
    return counts


def random_labels(shape, n_labels, seed, *, background=0.2):
    rng = np.random.default_rng(seed)
    # blobs: a coarse random grid upsampled, so segments are contiguous-ish and touch
    coarse = rng.integers(1, n_labels + 1, size=tuple(max(1, s // 2) for s in shape))
    labels = np.kron(coarse, np.ones((2, 2, 2), np.int64))[:shape[0], :shape[1], :shape[2]]
    labels = np.pad(labels, [(0, s - l) for s, l in zip(shape, labels.shape)], mode="edge")
    labels[rng.random(shape) < background] = 0
    return labels


@pytest.mark.parametrize("seed", [0, 1])
def test_contact_graph_equals_a_voxel_by_voxel_count(seed):
    labels = random_labels((7, 9, 11), 12, seed)
    truth = brute_force_contacts(labels)
    graph = contact_graph(labels)
    found = {(int(a), int(b)): int(f) for a, b, f in zip(graph.edge_a, graph.edge_b, graph.faces)}
    assert found == dict(truth)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert graph.node_ids.tolist() == ids.tolist() and graph.node_voxels.tolist() == counts.tolist()


@pytest.mark.parametrize("block_shape", [(1, 1, 1), (2, 3, 4), (3, 9, 5), (7, 9, 11), (100, 100, 100)])
def test_blockwise_graph_does_not_depend_on_the_blocks(block_shape):
    labels = random_labels((7, 9, 11), 15, 3)
    whole = contact_graph(labels)
    blocked = contact_graph(labels, block_shape=block_shape)
    for name in ("node_ids", "node_voxels", "edge_a", "edge_b", "faces", "area"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name), err_msg=name)


def test_contact_area_weights_each_face_by_its_orientation():
    labels = np.zeros((2, 2, 2), np.uint8)
    labels[0] = 1
    labels[1, 0] = 2        # label 2 touches 1 across z (2 faces) ...
    labels[1, 1] = 3        # ... label 3 touches 1 across z (2 faces) and 2 across y (2 faces)
    graph = contact_graph(labels, voxel_size=(30.0, 4.0, 5.0))
    edges = {(int(a), int(b)): (int(f), float(s)) for a, b, f, s in zip(graph.edge_a, graph.edge_b,
                                                                       graph.faces, graph.area)}
    assert edges == {(1, 2): (2, 2 * 4.0 * 5.0), (1, 3): (2, 2 * 4.0 * 5.0), (2, 3): (2, 2 * 30.0 * 5.0)}
    adjacency = graph.adjacency(weight="faces").toarray()
    np.testing.assert_array_equal(adjacency, [[0, 2, 2], [2, 0, 2], [2, 2, 0]])


def test_progress_is_reported_per_block_and_can_stop_the_work():
    labels = random_labels((4, 4, 4), 3, 0)
    seen = []
    contact_graph(labels, block_shape=(2, 2, 4), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    def stop(done, total):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        contact_graph(labels, block_shape=(2, 2, 4), progress=stop)


@pytest.mark.skipif(not FIB25.exists(), reason="needs ../shared/data/fib25_training_sample2.npz")
def test_contact_graph_of_the_fib25_ground_truth_matches_an_independent_count():
    """The real 250^3 FIB-SEM ground truth: nodes, edges and total contact area against a count made
    by a different route (per axis: every differing face as a Python tuple, tallied by a Counter)."""
    with np.load(FIB25) as data:
        labels = data["gt"]
        resolution = tuple(float(r) for r in data["resolution_nm"])
    counter: collections.Counter = collections.Counter()
    area_by_axis = (resolution[1] * resolution[2], resolution[0] * resolution[2], resolution[0] * resolution[1])
    total_area = 0.0
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)[:-1].ravel()
        b = np.moveaxis(labels, axis, 0)[1:].ravel()
        touching = (a != b) & (a != 0) & (b != 0)
        pairs = zip(a[touching].tolist(), b[touching].tolist())
        counter.update((x, y) if x < y else (y, x) for x, y in pairs)
        total_area += int(touching.sum()) * area_by_axis[axis]
    graph = contact_graph(labels, voxel_size=resolution, block_shape=(100, 128, 96))
    assert graph.n_nodes == len(np.unique(labels[labels > 0]))
    assert graph.n_edges == len(counter)
    assert graph.total_faces == sum(counter.values())
    assert graph.area.sum() == pytest.approx(total_area, rel=1e-12)
    biggest = max(counter, key=counter.get)
    i = np.flatnonzero((graph.edge_a == biggest[0]) & (graph.edge_b == biggest[1]))
    assert graph.faces[i].tolist() == [counter[biggest]]
    assert graph.n_edges > 100       # a real, densely packed neuropil


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 3)), "3-D"),
    (np.zeros((3, 3, 3, 1)), "3-D"),
    (np.zeros((0, 3, 3), np.int32), "empty"),
    (np.full((2, 2, 2), 1.5), "integer labels, got dtype float64"),
    (np.full((2, 2, 2), -1, np.int32), "negative"),
])
def test_bad_segmentations_are_refused_naming_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        contact_graph(bad)


def test_bad_voxel_size_and_block_shape():
    labels = np.ones((2, 2, 2), np.int32)
    with pytest.raises(ValueError, match="voxel_size"):
        contact_graph(labels, voxel_size=(1, 0, 1))
    with pytest.raises(ValueError, match="block_shape"):
        contact_graph(labels, block_shape=(2, 0, 2))


def test_synapse_graph_counts_synapses_per_directed_pair():
    graph = synapse_graph([3, 3, 5, 3, 0, 5], [5, 5, 3, 7, 5, 3], weights=[1, 2, 1, 1, 9, 0.5],
                          positions=np.zeros((6, 3)), shape=(4, 4, 4))
    assert list(zip(graph.pre.tolist(), graph.post.tolist(), graph.synapses.tolist(), graph.weight.tolist())) == [
        (3, 5, 2, 3.0), (3, 7, 1, 1.0), (5, 3, 2, 1.5)]
    adjacency = graph.adjacency().toarray()          # directed: row = pre
    np.testing.assert_array_equal(adjacency, [[0, 2, 1], [2, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(pre=[1, 2], post=[1]), "same length"),
    (dict(pre=[1.5], post=[1]), "non-integer"),
    (dict(pre=[np.nan], post=[1]), "NaN"),
    (dict(pre=[-1], post=[1]), "negative"),
    (dict(pre=["a"], post=[1]), "integer segment ids"),
    (dict(pre=[1], post=[2], positions=[[0, 0, 9]], shape=(4, 4, 4)), "outside the volume"),
    (dict(pre=[1], post=[2], positions=[[0, 0]]), r"\(1, 3\)"),
    (dict(pre=[1], post=[2], weights=[-1.0]), "weights"),
])
def test_bad_synapse_tables_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synapse_graph(**kwargs)
