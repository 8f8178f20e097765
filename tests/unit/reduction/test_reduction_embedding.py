"""t-SNE embeddings: separated clusters stay separated, reproducibility, the size limit,
out-of-sample placement, trajectories, saving and input checks."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import threadpoolctl
from sklearn.base import clone
from sklearn.manifold import trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from services.reduction.core import embedding
from services.reduction.core.base import REDUCERS, load_model, save_model
from services.reduction.core.embedding import TSNEEmbedding, trajectory_embedding


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One OpenMP/BLAS thread: scikit-learn's Barnes-Hut gradient runs on OpenMP threads, which on
    a shared, busy machine spin-wait and make a small t-SNE several times slower."""
    with threadpoolctl.threadpool_limits(limits=1):
        yield


def blobs(seed=0, n_clusters=5, per_cluster=60, n_neurons=60, spread=4.0):
    rng = np.random.default_rng(seed)
    centres = spread * rng.normal(size=(n_clusters, n_neurons))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    return centres[labels] + rng.normal(size=(labels.size, n_neurons)), labels, centres


@pytest.fixture(scope="module")
def fitted_blobs():
    X, labels, centres = blobs()
    return TSNEEmbedding(perplexity=20.0, max_iter=500).fit(X), X, labels, centres


def test_docstring_examples():
    result = doctest.testmod(embedding, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_registered_as_tsne():
    assert REDUCERS["tsne"] is TSNEEmbedding


def test_separated_clusters_stay_separated(fitted_blobs):
    model, X, labels, _ = fitted_blobs
    Y = model.transform(X)
    assert Y.shape == (300, 2)
    accuracy = cross_val_score(KNeighborsClassifier(5), Y, labels, cv=5).mean()
    assert accuracy > 0.95                                   # measured 1.0
    assert trustworthiness(X, Y, n_neighbors=5) > 0.9        # measured 0.964
    assert np.isfinite(model.kl_divergence_) and model.kl_divergence_ > 0


@pytest.mark.parametrize("init", ["pca", "random"])
def test_same_seed_same_embedding(init):
    X, _, _ = blobs(seed=1, n_clusters=3, per_cluster=40)
    model = TSNEEmbedding(perplexity=10.0, max_iter=250, seed=7, init=init)
    a = model.fit(X).embedding_
    assert np.array_equal(clone(model).fit(X).embedding_, a)
    other = clone(model).set_params(seed=8).fit(X).embedding_
    # the seed picks the random start; the PCA start of a small input uses no randomness
    assert np.array_equal(other, a) == (init == "pca")


def test_pca_step():
    X, _, _ = blobs(seed=2, n_clusters=3, per_cluster=40, n_neurons=30)
    model = TSNEEmbedding(perplexity=10.0, max_iter=250, pca_components=5).fit(X)
    assert model.pca_axes_.shape == (5, 30) and model.reference_.shape == (120, 5)
    np.testing.assert_allclose(model.pca_axes_ @ model.pca_axes_.T, np.eye(5), atol=1e-10)
    # as many components as neurons, or None: no projection, just centring
    for pcs in (30, None):
        plain = TSNEEmbedding(perplexity=10.0, max_iter=250, pca_components=pcs).fit(X)
        np.testing.assert_allclose(plain.reference_, X - X.mean(axis=0))


def test_transform_of_new_rows_places_them_near_their_cluster(fitted_blobs):
    model, X, labels, centres = fitted_blobs
    rng = np.random.default_rng(9)
    new = centres[labels] + rng.normal(size=X.shape)       # fresh draws of the same clusters
    placed = model.transform(new)
    assert placed.shape == (300, 2)
    knn = KNeighborsClassifier(5).fit(model.embedding_, labels)
    assert knn.score(placed, labels) > 0.95                 # measured 1.0
    # a training row sent among others lands exactly where it was embedded
    mixed = np.concatenate([X[:3], new[:2]])
    np.testing.assert_allclose(model.transform(mixed)[:3], model.embedding_[:3])


def test_the_training_data_is_recognised_in_any_dtype():
    rng = np.random.default_rng(5)
    counts = rng.poisson(3.0, size=(40, 6))
    model = TSNEEmbedding(perplexity=5.0, max_iter=250)
    Y = model.fit_transform(counts)
    assert np.array_equal(Y, model.embedding_)
    for same in (counts.astype(np.float64), counts.astype(np.float32), counts.astype(np.int32)):
        assert np.array_equal(model.transform(same), Y)
    # a changed value makes it other data, placed rather than looked up
    changed = counts.astype(np.float64)
    changed[0, 0] += 1e-6
    assert not np.array_equal(model.transform(changed), Y)
    # reordered rows are other data too, but each coincides with a training row and lands on it
    assert len(np.unique(counts, axis=0)) == 40
    np.testing.assert_allclose(model.transform(counts[::-1]), Y[::-1])


def test_too_many_samples_are_refused_naming_the_limit():
    X, _, _ = blobs(per_cluster=30)
    with pytest.raises(ValueError, match=r"150 samples refused: the limit is max_samples=100"):
        TSNEEmbedding(max_samples=100).fit(X)
    with pytest.raises(ValueError, match=r"limit is max_samples=100"):
        trajectory_embedding(X.reshape(5, 30, -1), max_samples=100)


def test_trajectory_embedding_shape_and_layout():
    rng = np.random.default_rng(3)
    # two conditions, 6 trials each, 20 bins: the conditions' trajectories run apart
    drift = np.linspace(0, 6, 20)[:, None] * np.array([1.0, -1.0, 0.5, 0.0])
    trials = np.stack([(1 if i % 2 else -1) * drift + 0.3 * rng.normal(size=(20, 4)) for i in range(12)])
    Y = trajectory_embedding(trials, perplexity=10.0, max_iter=250, n_components=3)
    assert Y.shape == (12, 20, 3)
    flat = TSNEEmbedding(perplexity=10.0, max_iter=250, n_components=3).fit(trials.reshape(240, 4)).embedding_
    assert np.array_equal(Y, flat.reshape(12, 20, 3))       # row [i, t] is trial i's bin t
    with pytest.raises(ValueError, match=r"rank 2"):
        trajectory_embedding(trials[0])


def test_save_load_round_trip(fitted_blobs):
    model, X, _, centres = fitted_blobs
    again = load_model(save_model(model))
    assert type(again) is TSNEEmbedding and again.get_params() == model.get_params()
    assert np.array_equal(again.transform(X), model.embedding_)
    assert again.kl_divergence_ == model.kl_divergence_
    new = centres[[0, 3]] + 0.1
    assert np.array_equal(again.transform(new), model.transform(new))


def test_report_and_cancellation():
    X, _, _ = blobs(seed=4, n_clusters=2, per_cluster=30)
    calls = []
    TSNEEmbedding(perplexity=5.0, max_iter=250).fit(X, report=lambda f, m: calls.append(f))
    assert calls == [0.0, 0.1, 1.0]

    def cancel(fraction, message):
        raise RuntimeError("cancelled")

    model = TSNEEmbedding(perplexity=5.0, max_iter=250)
    with pytest.raises(RuntimeError, match="cancelled"):
        model.fit(X, report=cancel)
    assert not hasattr(model, "embedding_")


@pytest.mark.parametrize("X, message", [
    (np.ones(10), "rank 1"),
    (np.ones((2, 5, 3)), "rank 3"),
    (np.full((20, 3), np.nan), "NaN"),
    (np.ones((1, 3)), "fewer than the 2"),
])
def test_bad_activity_is_refused(X, message):
    with pytest.raises(ValueError, match=message):
        TSNEEmbedding(perplexity=5.0).fit(X)


@pytest.mark.parametrize("params, message", [
    ({"perplexity": 40.0}, r"perplexity \(40\) must be below the number of samples \(30\)"),
    ({"perplexity": 0.0}, "perplexity must be"),
    ({"n_components": 4}, "1, 2 or 3"),
    ({"n_components": 0}, "n_components"),
    ({"pca_components": 0}, "pca_components"),
    ({"max_iter": 100}, "max_iter"),
    ({"max_samples": 1}, "max_samples"),
    ({"init": "spectral"}, "init must be"),
])
def test_bad_parameters_are_refused(params, message):
    X, _, _ = blobs(n_clusters=1, per_cluster=30, n_neurons=4)
    with pytest.raises(ValueError, match=message):
        TSNEEmbedding(**{"perplexity": 5.0, **params}).fit(X)


def test_transform_needs_a_fit_and_matching_neurons(fitted_blobs):
    with pytest.raises(ValueError, match="not fitted"):
        TSNEEmbedding().transform(np.ones((3, 4)))
    with pytest.raises(ValueError, match="not fitted"):
        save_model(TSNEEmbedding())
    model, X, _, _ = fitted_blobs
    with pytest.raises(ValueError, match="59 neurons .* fitted on 60"):
        model.transform(X[:, :59])
