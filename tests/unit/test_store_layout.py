"""Pure parts of the artifact store: key rules, chunk choice, selections, C-order pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.common.errors import InvalidArgument
from services.common.store import (_c_order_pieces, _contiguous_span, choose_chunks, normalize_selection,
                                   validate_key)


@pytest.mark.parametrize("key", ["a", "results/3f2a/rates", "jobs/42/params.json", "x.y-z_1/ü"])
def test_valid_keys_pass(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key, why", [
    ("", "non-empty"),
    ("/abs/key", "start or end"),
    ("trailing/", "start or end"),
    ("a/../b", "'..'"),
    ("..", "'..'"),
    ("a/./b", "'.'"),
    ("a//b", "empty segments"),
    ("a\\b", "backslash"),
    ("a\nb", "control"),
    ("k" * 901, "at most 900"),
])
def test_invalid_keys_are_refused_with_the_reason(key, why):
    with pytest.raises(InvalidArgument, match="invalid key") as info:
        validate_key(key)
    assert why in info.value.message
    assert info.value.reason == "INVALID_KEY"


@pytest.mark.parametrize("shape, itemsize", [
    ((512, 512, 512), 4), ((10_000_000, 384), 2), ((1000,), 8), ((3, 5), 1), ((), 8),
    ((0, 7), 4), ((7, 1, 1, 9999999), 1), ((300, 301, 302), 8),
])
def test_chunks_fit_the_target_and_cover_the_array_with_little_padding(shape, itemsize):
    target = 8 * 2**20
    chunks = choose_chunks(shape, itemsize, target_bytes=target)
    assert len(chunks) == len(shape)
    assert all(1 <= c <= max(n, 1) for c, n in zip(chunks, shape))
    # at most one halving short of the target (or the array is smaller than the target)
    assert math.prod(chunks) * itemsize <= max(target, itemsize)
    if math.prod(shape) * itemsize > target:
        assert math.prod(chunks) * itemsize > target / 2 ** len(shape) / 2
    # ceiling halving keeps the stored padding of edge chunks under one chunk row per axis
    padded = math.prod(-(-n // c) * c for n, c in zip(shape, chunks))
    assert padded <= math.prod(n + c for n, c in zip(shape, chunks))


def test_chunks_of_a_volume_are_near_cubic():
    chunks = choose_chunks((1024, 4096, 4096), 8)
    assert max(chunks) / min(chunks) <= 2


@pytest.mark.parametrize("selection", [
    ..., (slice(2, 5),), (slice(None), 3), (-1,), (1, ..., 2), (slice(-3, None), slice(0, 100)),
    (slice(5, 2),), (np.int64(2), slice(1, 3)),
])
def test_normalized_selection_matches_numpy(selection):
    a = np.arange(6 * 4, dtype=np.int32).reshape(6, 4)
    region, out_shape = normalize_selection(selection, a.shape)
    assert all(isinstance(s, slice) and s.step is None for s in region)
    assert a[region].reshape(out_shape).tolist() == a[selection].tolist()
    assert out_shape == a[selection].shape


@pytest.mark.parametrize("selection, message", [
    ((slice(None, None, 2),), "step"),
    ((7,), "out of bounds"),
    ((0, 0, 0), "3 indices"),
    ((..., ...), "Ellipsis"),
    (([1, 2],), "not an int or a slice"),
    ((True,), "not an int or a slice"),
])
def test_bad_selections_are_refused(selection, message):
    with pytest.raises(InvalidArgument, match=message):
        normalize_selection(selection, (6, 4))


@pytest.mark.parametrize("shape, chunks, itemsize, budget", [
    ((10, 6, 4), (3, 2, 2), 4, 4 * 6 * 4 * 3),   # slabs along axis 0, cut on chunk edges
    ((10, 6, 4), (3, 2, 2), 4, 40),               # budget smaller than one row: cut axis 1
    ((10, 6, 4), (3, 2, 2), 4, 1),                # one element at a time
    ((5,), (2,), 8, 16),
    ((), (), 8, 16),
    ((3, 0), (1, 1), 4, 16),
])
def test_c_order_pieces_concatenate_to_the_c_order_bytes(shape, chunks, itemsize, budget):
    a = np.arange(math.prod(shape), dtype=f"u{itemsize}").reshape(shape)
    pieces = list(_c_order_pieces(shape, chunks, itemsize, budget))
    joined = b"".join(np.ascontiguousarray(a[p]).tobytes() for p in pieces)
    assert joined == a.tobytes()
    assert all(_contiguous_span(p, shape) is not None for p in pieces)
    assert all(a[p].nbytes <= max(budget, itemsize) for p in pieces)


def test_contiguous_span_recognises_runs_in_flat_c_order():
    shape = (4, 3, 2)
    assert _contiguous_span((slice(1, 3), slice(0, 3), slice(0, 2)), shape) == (6, 18)
    assert _contiguous_span((slice(2, 3), slice(1, 3), slice(0, 2)), shape) == (14, 18)
    assert _contiguous_span((slice(2, 3), slice(1, 2), slice(1, 2)), shape) == (15, 16)
    assert _contiguous_span((slice(0, 2), slice(0, 2), slice(0, 2)), shape) is None   # rows with gaps
    assert _contiguous_span((), ()) == (0, 1)
