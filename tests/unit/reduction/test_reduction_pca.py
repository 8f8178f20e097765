"""PCA against ground truth (low-rank data), scikit-learn, its own solvers, and out-of-core input."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import threadpoolctl
import zarr
from scipy.linalg import subspace_angles
from sklearn import decomposition
from sklearn.base import clone

from services.reduction.core import pca as pca_module
from services.reduction.core.base import REDUCERS, load_model, save_model
from services.reduction.core.pca import PCA, fit_pca_streaming, transform_streaming
from services.reduction.core.synthetic import low_rank_gaussian


@pytest.fixture(autouse=True, scope="module")
def single_threaded_blas():
    """One BLAS thread: the matrices are small, and on a shared machine extra threads spin-wait."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def low_rank():
    return low_rank_gaussian(n_samples=4000, n_neurons=40, rank=4, noise_std=0.2, seed=0)


def _align_signs(components, reference):
    """``components`` with each row's sign flipped to agree with the same row of ``reference``."""
    signs = np.sign(np.sum(components * reference, axis=1))
    return components * signs[:, None]


def test_docstring_examples():
    result = doctest.testmod(pca_module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_registered_as_pca():
    assert REDUCERS["pca"] is PCA and PCA.reducer_name == "pca"


def test_recovers_true_subspace_and_spectrum(low_rank):
    pca = PCA(n_components=4).fit(low_rank.activity)
    angles = np.degrees(subspace_angles(pca.components_.T, low_rank.loadings))
    assert angles.max() < 2.0
    # each component is the direction of one latent (distinct variances identify them)
    overlap = np.abs(pca.components_ @ low_rank.loadings)
    np.testing.assert_allclose(np.diag(overlap), 1.0, atol=2e-3)
    # population eigenvalues latent_std^2 + noise^2; the sample estimate is within a few
    # standard errors (sqrt(2 / n) ~ 2 %)
    np.testing.assert_allclose(pca.explained_variance_, low_rank.latent_std**2 + 0.2**2, rtol=0.08)
    total = np.trace(low_rank.covariance)
    np.testing.assert_allclose(pca.explained_variance_ratio_, (low_rank.latent_std**2 + 0.04) / total, rtol=0.08)
    np.testing.assert_allclose(pca.mean_, low_rank.mean, atol=0.15)
    assert pca.n_samples_seen_ == 4000


def test_matches_scikit_learn():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 25)) @ rng.normal(size=(25, 25)) * rng.uniform(0.5, 5, size=25) + 50.0
    ours = PCA(n_components=10).fit(X)
    ref = decomposition.PCA(n_components=10, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.components_, _align_signs(ref.components_, ours.components_), atol=1e-8)
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(ours.transform(X), ref.transform(X) * signs, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(ours.reconstruct(X), ref.inverse_transform(ref.transform(X)), rtol=1e-9)


def test_whitening_matches_scikit_learn_and_gives_unit_variance():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 8)) * np.arange(1, 9)
    ours = PCA(n_components=3, whiten=True).fit(X)
    ref = decomposition.PCA(n_components=3, whiten=True, svd_solver="full").fit(X)
    Z = ours.transform(X)
    np.testing.assert_allclose(Z.var(axis=0, ddof=1), 1.0, rtol=1e-10)
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(Z, ref.transform(X) * signs, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(ours.inverse_transform(Z), PCA(n_components=3).fit(X).reconstruct(X), rtol=1e-10)


def test_all_components_reconstruct_exactly():
    X = np.random.default_rng(5).normal(size=(50, 6))
    pca = PCA().fit(X)
    assert pca.components_.shape == (6, 6)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(pca.reconstruct(X), X, atol=1e-12)
    np.testing.assert_allclose(pca.explained_variance_ratio_.sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("solver", ["exact", "randomized"])
def test_sign_convention_largest_loading_positive(low_rank, solver):
    pca = PCA(n_components=4, solver=solver, seed=0).fit(low_rank.activity)
    peaks = pca.components_[np.arange(4), np.argmax(np.abs(pca.components_), axis=1)]
    assert np.all(peaks > 0)
    # refitting a copy gives bit-identical components: the sign choice is deterministic
    again = PCA(n_components=4, solver=solver, seed=0).fit(low_rank.activity.copy())
    np.testing.assert_array_equal(again.components_, pca.components_)


def test_randomized_matches_exact_on_low_rank_data(low_rank):
    exact = PCA(n_components=4).fit(low_rank.activity)
    fast = PCA(n_components=4, solver="randomized", seed=1).fit(low_rank.activity)
    np.testing.assert_allclose(fast.explained_variance_, exact.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(fast.explained_variance_ratio_, exact.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(fast.components_, exact.components_, atol=1e-5)
    np.testing.assert_allclose(fast.mean_, exact.mean_, rtol=1e-12)
    with pytest.raises(ValueError, match="power_iterations"):
        PCA(n_components=2, solver="randomized", power_iterations=-1).fit(low_rank.activity)


def test_float32_input_agrees_with_float64_to_single_precision():
    """float32 blocks are multiplied in float32 (as scikit-learn does), summed in float64."""
    data = low_rank_gaussian(n_samples=2000, n_neurons=12, rank=3, noise_std=0.2, seed=7)
    X32 = data.activity.astype(np.float32)
    ours = PCA(n_components=3).fit(X32)
    ref = PCA(n_components=3).fit(X32.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-6)
    assert ours.components_.dtype == np.float64 and ours.transform(X32).dtype == np.float64


# --------------------------------------------------------------------------- out of core
class _CountingRows:
    """An array wrapper that records the row slices read from it."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, key):
        self.reads.append((key.start, key.stop))
        return self.array[key]


def test_streaming_equals_in_memory_on_numpy():
    # a large offset: the textbook X^T X - n m m^T would lose ~8 digits here, shifted sums do not
    data = low_rank_gaussian(n_samples=3001, n_neurons=30, rank=3, noise_std=0.5, seed=2, mean_range=(1e4, 2e4))
    in_memory = PCA(n_components=5).fit(data.activity)
    reports = []
    streamed = fit_pca_streaming(data.activity, n_components=5, chunk_rows=250,
                                 report=lambda f, m: reports.append(f))
    np.testing.assert_allclose(streamed.explained_variance_, in_memory.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(streamed.explained_variance_ratio_, in_memory.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(streamed.components_, in_memory.components_, atol=1e-9)
    np.testing.assert_allclose(streamed.mean_, in_memory.mean_, rtol=1e-14)
    assert streamed.n_samples_seen_ == 3001
    assert len(reports) == 13 + 1 and reports == sorted(reports) and reports[-1] == 1.0


def test_streaming_from_a_memmap(tmp_path):
    data = low_rank_gaussian(n_samples=700, n_neurons=9, rank=2, noise_std=0.3, seed=4)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(700, 9))
    mm[:] = data.activity
    mm.flush()
    streamed = fit_pca_streaming(np.load(tmp_path / "x.npy", mmap_mode="r"), n_components=2, chunk_rows=64)
    ref = PCA(n_components=2).fit(np.asarray(mm))
    np.testing.assert_allclose(streamed.explained_variance_, ref.explained_variance_, rtol=1e-6)  # float32


def test_streaming_from_chunked_zarr_reads_each_chunk_once():
    data = low_rank_gaussian(n_samples=1000, n_neurons=16, rank=3, noise_std=0.2, seed=5)
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(1000, 16), chunks=(128, 16), dtype="float32")
    z[:] = data.activity.astype(np.float32)     # 7 full chunks and a ragged last one of 104 rows
    counting = _CountingRows(z)
    streamed = fit_pca_streaming(counting, n_components=3, chunk_rows=300)
    # 300 rows round up to 3 chunks (384 rows): every block starts on a chunk boundary
    assert counting.reads == [(0, 384), (384, 768), (768, 1000)]
    ref = PCA(n_components=3).fit(z[:])
    np.testing.assert_allclose(streamed.explained_variance_, ref.explained_variance_, rtol=1e-6)  # float32
    np.testing.assert_allclose(streamed.components_, ref.components_, atol=1e-5)
    # default block size: whole chunks too
    counting.reads.clear()
    fit_pca_streaming(counting, n_components=3)
    assert all(start % 128 == 0 for start, _ in counting.reads) and counting.reads[-1][1] == 1000


def test_streaming_from_sharded_zarr_reads_whole_shards():
    X = np.random.default_rng(11).normal(size=(1000, 8))
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(1000, 8), chunks=(50, 8), shards=(200, 8),
                          dtype="float64")
    z[:] = X
    counting = _CountingRows(z)
    counting.shards = z.shards
    streamed = fit_pca_streaming(counting, n_components=2, chunk_rows=10)
    assert counting.reads == [(i, i + 200) for i in range(0, 1000, 200)]
    np.testing.assert_allclose(streamed.components_, PCA(n_components=2).fit(X).components_, atol=1e-12)


def test_transform_streaming_into_zarr(tmp_path):
    data = low_rank_gaussian(n_samples=1000, n_neurons=16, rank=3, noise_std=0.2, seed=6)
    source = zarr.create_array(store=zarr.storage.LocalStore(tmp_path / "in.zarr"), shape=(1000, 16),
                               chunks=(100, 16), dtype="float64")
    source[:] = data.activity
    pca = fit_pca_streaming(source, n_components=3)
    out = zarr.create_array(store=zarr.storage.LocalStore(tmp_path / "out.zarr"), shape=(1000, 3),
                            chunks=(150, 3), dtype="float32")
    assert transform_streaming(pca, source, out, chunk_rows=200) is out
    np.testing.assert_allclose(out[:], pca.transform(data.activity), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(transform_streaming(pca, data.activity), pca.transform(data.activity), rtol=1e-14)
    with pytest.raises(ValueError, match=r"out must have shape \(1000, 3\), got \(1000, 2\)"):
        transform_streaming(pca, data.activity, np.zeros((1000, 2)))
    with pytest.raises(ValueError, match="array has 15 neurons, this PCA was fitted on 16"):
        transform_streaming(pca, data.activity[:, :15])


def test_streaming_bad_input():
    X = np.random.default_rng(0).normal(size=(100, 5))
    bad = X.copy()
    bad[57, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at index \(57, 3\)\)"):
        fit_pca_streaming(bad, n_components=2, chunk_rows=10)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_neurons\), got shape \(100,\)"):
        fit_pca_streaming(X[:, 0], n_components=1)
    with pytest.raises(ValueError, match="empty, shape"):
        fit_pca_streaming(X[:, :0], n_components=1)
    with pytest.raises(ValueError, match="array has 3 samples, fewer than the n_components=4"):
        fit_pca_streaming(X[:3, :], n_components=4)
    with pytest.raises(ValueError, match="n_components=6 exceeds the number of neurons, 5"):
        fit_pca_streaming(X, n_components=6)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        fit_pca_streaming(X, n_components=2, chunk_rows=0)
    with pytest.raises(ValueError, match="real numbers"):
        fit_pca_streaming(X.astype(complex), n_components=2)


# --------------------------------------------------------------------------- state, sklearn
def test_save_load_round_trip(low_rank):
    pca = PCA(n_components=3, whiten=True).fit(low_rank.activity)
    again = load_model(save_model(pca, metadata={"dataset": "x"}))
    assert isinstance(again, PCA) and again.get_params() == pca.get_params()
    for name in PCA.state_attributes:
        np.testing.assert_array_equal(getattr(again, name), getattr(pca, name))
    assert isinstance(again.n_samples_seen_, int)
    np.testing.assert_array_equal(again.transform(low_rank.activity), pca.transform(low_rank.activity))
    with pytest.raises(ValueError, match="not fitted"):
        save_model(PCA(n_components=2))


def test_clone_gives_an_unfitted_copy_with_the_same_params(low_rank):
    pca = PCA(n_components=3, solver="randomized", seed=4, oversamples=5).fit(low_rank.activity)
    copy = clone(pca)
    assert copy.get_params() == pca.get_params() and not hasattr(copy, "components_")


def test_report_is_called_and_can_cancel(low_rank):
    fractions = []
    PCA(n_components=2).fit(low_rank.activity, report=lambda f, m: fractions.append(f))
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)

    def cancel(fraction, message):
        raise KeyboardInterrupt("cancelled")

    for solver in ("exact", "randomized"):
        with pytest.raises(KeyboardInterrupt):
            PCA(n_components=2, solver=solver).fit(low_rank.activity, report=cancel)
    with pytest.raises(KeyboardInterrupt):
        fit_pca_streaming(low_rank.activity, n_components=2, report=cancel)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("solver", ["exact", "randomized"])
def test_constant_neurons_are_allowed_and_get_zero_loading(solver):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 6)) * [3, 2, 1, 1, 1, 1]
    X[:, 2] = 0.1            # constant, a value with no exact binary sum
    X[:, 4] = -7.0
    pca = PCA(n_components=3, solver=solver, seed=0).fit(X)
    assert np.all(pca.components_[:, [2, 4]] == 0.0)
    assert pca.mean_[2] == 0.1 and pca.mean_[4] == -7.0
    ref = PCA(n_components=3).fit(X[:, [0, 1, 3, 5]])
    np.testing.assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(pca.components_[:, [0, 1, 3, 5]], ref.components_, atol=1e-6)
    # streaming agrees
    streamed = fit_pca_streaming(X, n_components=3, chunk_rows=7)
    assert np.all(streamed.components_[:, [2, 4]] == 0.0)
    # asking for more components than vary fills in unit vectors of zero variance
    full = PCA(n_components=6).fit(X)
    np.testing.assert_allclose(full.explained_variance_[4:], 0.0)
    np.testing.assert_allclose(full.components_ @ full.components_.T, np.eye(6), atol=1e-12)


def test_bad_input_raises_naming_the_problem():
    X = np.random.default_rng(9).normal(size=(20, 5))
    with pytest.raises(ValueError, match="activity has 3 samples, fewer than the n_components=4"):
        PCA(n_components=4).fit(X[:3])
    with pytest.raises(ValueError, match="at least 2"):
        PCA(n_components=1).fit(X[:1])
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at index \(4, 1\)\)"):
        PCA(n_components=2).fit(bad)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_neurons\), got an array of rank 3"):
        PCA(n_components=2).fit(X.reshape(4, 5, 5))
    with pytest.raises(ValueError, match=r"activity is empty, shape \(20, 0\)"):
        PCA(n_components=1).fit(X[:, :0])
    with pytest.raises(ValueError, match="n_components=6 exceeds the number of neurons, 5"):
        PCA(n_components=6).fit(X)
    with pytest.raises(ValueError, match="n_components must be a positive integer, got 0"):
        PCA(n_components=0).fit(X)
    with pytest.raises(ValueError, match="solver must be one of"):
        PCA(n_components=2, solver="svd").fit(X)
    with pytest.raises(ValueError, match="every neuron has zero variance"):
        PCA(n_components=1).fit(np.ones((10, 3)))
    pca = PCA(n_components=2).fit(X)
    with pytest.raises(ValueError, match="activity has 4 neurons, this PCA was fitted on 5"):
        pca.transform(X[:, :4])
    with pytest.raises(ValueError, match="latents have 3 components, this PCA has 2"):
        pca.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not fitted"):
        PCA(n_components=2).transform(X)
