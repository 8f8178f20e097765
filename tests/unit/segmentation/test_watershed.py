"""Seeded watershed, region adjacency graph, agglomeration and clean-up, against known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from services.segmentation.core.metrics import contingency_table, segmentation_scores
from services.segmentation.core.synthetic import (affinities_from_labels, boundary_map_from_labels,
                                                  synthetic_em_volume)
from services.segmentation.core.watershed import (RegionAdjacencyGraph, affinities_to_boundaries, agglomerate,
                                                  region_adjacency_graph, remove_small_fragments,
                                                  seeded_watershed, segment_at_thresholds)


def assert_same_partition(a, b, where):
    """``a`` and ``b`` agree up to a one-to-one relabelling on the voxels ``where``."""
    a_ids, b_ids, _ = contingency_table(a[where], b[where], ignore_ground_truth=())
    assert np.unique(a_ids).size == a_ids.size and np.unique(b_ids).size == b_ids.size


@pytest.fixture(scope="module", params=[0, 1])
def perfect(request):
    _, truth = synthetic_em_volume((20, 32, 32), n_neurites=7, seed=request.param)
    return truth, boundary_map_from_labels(truth), affinities_from_labels(truth)


def test_perfect_boundaries_and_affinities_reproduce_the_ground_truth(perfect):
    truth, boundaries, affinities = perfect
    fragments = seeded_watershed(boundaries, min_seed_distance=2, threshold=0.5, mask=truth > 0)
    assert fragments.dtype == np.uint64
    assert fragments.max() > truth.max()                     # an over-segmentation ...
    assert_same_partition(truth, truth, truth > 0)
    gt_of_fragment, _, _ = contingency_table(fragments, truth)
    assert np.unique(gt_of_fragment).size == gt_of_fragment.size   # ... that never crosses a neuron boundary
    tree = agglomerate(fragments, region_adjacency_graph(fragments, affinities))
    segmentation = tree.segmentation(0.5)
    scores = segmentation_scores(segmentation, truth)
    assert (scores.voi_split, scores.voi_merge, scores.adapted_rand_error) == (0.0, 0.0, 0.0)
    assert_same_partition(segmentation, truth, truth > 0)
    assert np.all(segmentation[truth == 0] == 0)


def test_hierarchy_is_monotone_and_nested():
    raw, truth = synthetic_em_volume((16, 28, 28), n_neurites=6, seed=2, noise_std=0.08)
    boundaries = 1.0 - raw                                   # a poor, noisy boundary map
    fragments = seeded_watershed(boundaries, min_seed_distance=2, threshold=0.4)
    tree = agglomerate(fragments, region_adjacency_graph(fragments, boundaries))
    assert np.all(np.diff(tree.scores) <= 0)                 # merge scores never increase
    thresholds = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 1.01]
    cuts = segment_at_thresholds(fragments, boundaries, thresholds)
    counts = [np.unique(c).size for c in cuts]
    assert counts == sorted(counts)                          # higher threshold: as many segments or more
    assert counts[-1] == np.unique(fragments).size           # nothing merges above every score
    for coarse, fine in itertools.pairwise(cuts):           # each finer segment lies in one coarser segment
        fine_ids, _, _ = contingency_table(fine, coarse, ignore_ground_truth=())
        assert np.unique(fine_ids).size == fine_ids.size
    for t, cut in zip(thresholds, cuts):
        np.testing.assert_array_equal(tree.segmentation(t), cut)
        assert tree.n_segments(t) == np.unique(cut).size


def test_average_linkage_uses_sums_and_counts_not_means_of_means():
    # 1-2: one link at 0.9; 1-3: three links summing to 0.6 (mean 0.2); 2-3: one link at 0.8.
    # First merge {1, 2} at 0.9; the new edge {1,2}-3 has sum 1.4 over 4 links: 0.35 (not 0.5, not 0.8).
    rag = RegionAdjacencyGraph(u=np.array([1, 1, 2], np.uint64), v=np.array([2, 3, 3], np.uint64),
                               affinity_sum=np.array([0.9, 0.6, 0.8]), count=np.array([1, 3, 1]))
    tree = agglomerate(None, rag, fragment_ids=[1, 2, 3])
    np.testing.assert_allclose(tree.scores, [0.9, 0.35])
    np.testing.assert_array_equal(tree.children, [[0, 1], [2, 3]])
    assert tree.segment_of(0.5).tolist() == [1, 1, 2]
    assert tree.segment_of(0.3).tolist() == [1, 1, 1]
    assert tree.relabel(np.array([[[3, 0, 1]]]), 0.5).tolist() == [[[2, 0, 1]]]
    with pytest.raises(ValueError, match="not in the merge tree"):
        tree.relabel(np.array([[[4]]]), 0.5)
    assert agglomerate(None, rag, fragment_ids=[1, 2, 3], min_score=0.5).scores.tolist() == [0.9]


def naive_average_linkage(n, edges):
    """Reference: recompute every cluster pair's mean from the original links, merge the best, repeat."""
    clusters = [{i} for i in range(n)]
    scores = []
    while True:
        best = None
        for i, j in itertools.combinations(range(len(clusters)), 2):
            links = [(s, c) for (a, b), (s, c) in edges.items()
                     if (a in clusters[i] and b in clusters[j]) or (a in clusters[j] and b in clusters[i])]
            if links:
                mean = sum(s for s, _ in links) / sum(c for _, c in links)
                if best is None or mean > best[0]:
                    best = (mean, i, j)
        if best is None:
            return scores, clusters
        mean, i, j = best
        scores.append(mean)
        clusters[i] = clusters[i] | clusters[j]
        del clusters[j]


def test_agglomeration_matches_a_naive_reference_on_a_random_graph():
    rng = np.random.default_rng(3)
    n = 12
    pairs = [p for p in itertools.combinations(range(n), 2) if rng.random() < 0.35]
    edges = {p: (float(rng.random() * c), int(c)) for p, c in zip(pairs, rng.integers(1, 5, len(pairs)))}
    rag = RegionAdjacencyGraph(u=np.array([a + 1 for a, _ in edges], np.uint64),
                               v=np.array([b + 1 for _, b in edges], np.uint64),
                               affinity_sum=np.array([s for s, _ in edges.values()]),
                               count=np.array([c for _, c in edges.values()]))
    tree = agglomerate(None, rag, fragment_ids=np.arange(1, n + 1))
    scores, clusters = naive_average_linkage(n, edges)
    np.testing.assert_allclose(tree.scores, scores, rtol=1e-12)
    final = tree.segment_of(-1.0)
    assert sorted(sorted(np.flatnonzero(final == s).tolist()) for s in np.unique(final)) == sorted(
        sorted(c) for c in clusters)


def test_region_adjacency_graph_matches_a_loop_over_voxels():
    rng = np.random.default_rng(4)
    fragments = rng.integers(0, 5, size=(3, 4, 5))
    affinities = rng.random((3,) + fragments.shape)
    boundaries = rng.random(fragments.shape)
    offsets = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    expected_aff, expected_bnd = {}, {}
    for c, offset in enumerate(offsets):
        for p in np.ndindex(fragments.shape):
            q = tuple(np.subtract(p, offset))
            if min(q) < 0:
                continue
            a, b = int(fragments[p]), int(fragments[q])
            if a == b or a == 0 or b == 0:
                continue
            key = (min(a, b), max(a, b))
            s, n = expected_aff.get(key, (0.0, 0))
            expected_aff[key] = (s + affinities[(c,) + p], n + 1)
            s, n = expected_bnd.get(key, (0.0, 0))
            expected_bnd[key] = (s + 1 - (boundaries[p] + boundaries[q]) / 2, n + 1)
    for values, expected in ((affinities, expected_aff), (boundaries, expected_bnd)):
        rag = region_adjacency_graph(fragments, values)
        assert list(zip(rag.u.tolist(), rag.v.tolist())) == sorted(expected)
        np.testing.assert_allclose(rag.affinity_sum, [expected[k][0] for k in sorted(expected)])
        np.testing.assert_array_equal(rag.count, [expected[k][1] for k in sorted(expected)])
    counts_only = region_adjacency_graph(fragments)
    np.testing.assert_array_equal(counts_only.count, [expected_aff[k][1] for k in sorted(expected_aff)])
    # sums and counts of several graphs add up edge by edge
    combined = RegionAdjacencyGraph.combine([counts_only, counts_only])
    np.testing.assert_array_equal(combined.count, 2 * counts_only.count)


def test_seeds_and_mask():
    boundaries = np.zeros((3, 9, 15), np.float32)
    boundaries[:, :, 7] = 1.0                                # one membrane plane at x = 7
    fragments = seeded_watershed(boundaries, min_seed_distance=8)
    assert np.unique(fragments).tolist() == [1, 2]           # one seed per side
    assert np.unique(fragments[:, :, :7]).size == 1 and np.unique(fragments[:, :, 8:]).size == 1
    mask = np.ones(boundaries.shape, bool)
    mask[0] = False
    masked = seeded_watershed(boundaries, min_seed_distance=8, mask=mask)
    assert np.all(masked[0] == 0) and np.all(masked[1:] > 0)
    many = seeded_watershed(boundaries, min_seed_distance=1)
    assert np.unique(many).size >= 2


def test_per_section_fragments_stay_in_their_section():
    # columns along z (labels constant in z): perfect 2-D boundaries per section reproduce the columns
    truth = np.repeat((np.add.outer(np.arange(24) // 8, 3 * (np.arange(24) // 8)) + 1)[None], 4, axis=0)
    truth = truth.astype(np.uint64)
    fragments = seeded_watershed(boundary_map_from_labels(truth), min_seed_distance=2, per_section=True)
    for z in range(truth.shape[0]):
        others = np.delete(fragments, z, axis=0)
        assert not np.isin(fragments[z], others).any()      # ids unique across sections
    segmentation = agglomerate(fragments, region_adjacency_graph(fragments, affinities_from_labels(truth))
                               ).segmentation(0.5)
    assert_same_partition(segmentation, truth, np.ones(truth.shape, bool))


def test_affinities_to_boundaries():
    affinities = affinities_from_labels(np.array([[[1, 1, 2, 2]]]))
    np.testing.assert_array_equal(affinities_to_boundaries(affinities), [[[0, 1, 1, 0]]])
    mean = affinities_to_boundaries(affinities, reduce="mean")
    np.testing.assert_allclose(mean, [[[0.0, 0.5, 0.5, 0.0]]])   # x links only; z, y links leave the volume
    with pytest.raises(ValueError, match="channels"):
        affinities_to_boundaries(affinities[:2])


def test_remove_small_fragments():
    labels = np.array([[[1, 1, 1, 2, 3, 3, 3, 3, 0, 4]]])
    np.testing.assert_array_equal(remove_small_fragments(labels, 2), [[[1, 1, 1, 3, 3, 3, 3, 3, 0, 0]]])
    # two small fragments between big 1 and 2 (9 voxels each): 5 (4 voxels) touches 1 on 3 faces, 6 on 3
    # faces and 2 on 1: the tie goes to the larger, 1. 6 (2 voxels) touches 5 on 3 faces, 2 on 2: it joins 5,
    # and so ends in 1 too, whose id the group keeps
    labels = np.zeros((1, 3, 8), np.uint32)
    labels[..., :3], labels[..., 3], labels[..., 4], labels[..., 5:] = 1, 5, 6, 2
    labels[0, 0, 4] = 5
    cleaned = remove_small_fragments(labels, 5)
    expected = np.where(np.arange(8) < 5, 1, 2) * np.ones((1, 3, 1), np.uint32)
    np.testing.assert_array_equal(cleaned, expected)
    assert cleaned.dtype == labels.dtype
    # small fragments that touch only each other merge into one, then vanish if still too small
    tiny = np.zeros((1, 1, 6), np.uint8)
    tiny[..., :2] = [7, 8]
    assert remove_small_fragments(tiny, 3).max() == 0
    assert remove_small_fragments(tiny, 2).tolist() == [[[7, 7, 0, 0, 0, 0]]]


@pytest.mark.parametrize("call, message", [
    (lambda: seeded_watershed(np.zeros((4, 4))), r"boundaries must be 3-D .*\(4, 4\)"),
    (lambda: seeded_watershed(np.zeros((2, 4, 4, 4))), r"boundaries must be 3-D .*\(2, 4, 4, 4\)"),
    (lambda: seeded_watershed(np.full((2, 2, 2), np.nan)), "NaN"),
    (lambda: seeded_watershed(np.zeros((2, 2, 2)), mask=np.ones((2, 2), bool)), r"mask and boundaries.*\(2, 2\)"),
    (lambda: seeded_watershed(np.zeros((2, 2, 2)), min_seed_distance=-1), "min_seed_distance"),
    (lambda: seeded_watershed(np.zeros((2, 2, 2)), per_section=True, connectivity=3), "connectivity"),
    (lambda: region_adjacency_graph(np.ones((2, 2, 2), int), np.ones((3, 2, 2, 3))), "spatial shape"),
    (lambda: region_adjacency_graph(np.ones((2, 2, 2), int), np.ones((2, 2, 2, 2))), "channels"),
    (lambda: region_adjacency_graph(np.ones((2, 2, 2), int), np.ones((2, 2, 3))), "same shape"),
    (lambda: region_adjacency_graph(np.ones((2, 2, 2)), None), "integer"),
    (lambda: agglomerate(np.ones((2, 2, 2), int), "edges"), "RegionAdjacencyGraph"),
    (lambda: remove_small_fragments(np.ones((2, 2, 2), int), 0), "min_size"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _remove_small_fragments_on_voxels(labels, min_size):
    """The clean-up's policy applied to the voxels, merge round by merge round: the reference
    the graph-based :func:`remove_small_fragments` must equal (its first implementation)."""
    from scipy import sparse
    labels = labels.copy()
    while True:
        ids, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(labels.shape)
        if ids[0] != 0:                                 # rank 0 must be the background
            ids, sizes, inverse = np.r_[0, ids].astype(ids.dtype), np.r_[0, sizes], inverse + 1
        small = (sizes < min_size) & (ids != 0)
        if not small.any():
            return labels
        rag = region_adjacency_graph(inverse)           # on ranks: small integers
        u, v, count = rag.u.astype(np.int64), rag.v.astype(np.int64), rag.count
        src, dst, cnt = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([count, count])
        pick = small[src]
        src, dst, cnt = src[pick], dst[pick], cnt[pick]
        if src.size == 0:                               # the small ones left touch nothing: drop them
            return np.where(small[inverse], 0, labels).astype(labels.dtype)
        # each small fragment's target: most shared faces, then the larger neighbour, then the lower id
        order = np.lexsort((dst, -sizes[dst], -cnt, src))
        src, dst = src[order], dst[order]
        first = np.r_[True, src[1:] != src[:-1]]
        src, dst = src[first], dst[first]
        graph = sparse.coo_array((np.ones(src.size, np.int8), (src, dst)), shape=(ids.size, ids.size))
        _, component = sparse.csgraph.connected_components(graph, directed=False)
        # each merged group keeps the id of its largest member (ties: the lowest id); a group holds
        # at most one fragment that is not small, since only small ones point at a target
        by_size = np.lexsort((ids, -sizes))
        groups, first_member = np.unique(component[by_size], return_index=True)
        keeper = np.empty(groups.size, np.int64)
        keeper[groups] = by_size[first_member]
        new_ids = ids[keeper[component]]
        new_ids[0] = 0
        labels = new_ids[inverse].astype(labels.dtype)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_size", [2, 5, 40])
def test_remove_small_fragments_equals_the_voxel_reference(seed, min_size):
    rng = np.random.default_rng(seed)
    shape = (6, 9, 11)
    # fragments of many sizes: a watershed of noise from random seeds, some ids large and sparse
    markers = np.zeros(shape, np.int64)
    markers.flat[rng.choice(np.prod(shape), 30, replace=False)] = np.arange(1, 31)
    from skimage.segmentation import watershed
    labels = watershed(rng.random(shape), markers).astype(np.uint64)
    labels[rng.random(shape) < 0.05] = 0
    if seed % 2:
        labels = np.where(labels > 0, labels * np.uint64(10 ** 12), 0).astype(np.uint64)   # not dense
    np.testing.assert_array_equal(remove_small_fragments(labels, min_size),
                                  _remove_small_fragments_on_voxels(labels, min_size))
