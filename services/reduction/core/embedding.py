"""t-SNE embeddings of population activity and of trial trajectories, for visualisation.

:class:`TSNEEmbedding` (registered as ``"tsne"``) places every time bin's population vector in
two (or three) dimensions so that bins with similar activity land close together: t-distributed
stochastic neighbour embedding (van der Maaten & Hinton 2008), in the Barnes-Hut approximation
(van der Maaten 2014) that makes it O(n log n).

Why a wrapper around scikit-learn
---------------------------------
The optimisation is done by :class:`sklearn.manifold.TSNE`, a well-kept, tested
implementation. Barnes-Hut t-SNE is subtle to get right (the perplexity calibration of every
point's bandwidth by bisection, the space-partitioning tree and its accuracy parameter, early
exaggeration, the gain-adapted momentum schedule, the learning-rate heuristic of Belkina et al.
2019), and a small mistake gives plausible-looking but wrong pictures, which nothing downstream
would catch. This module adds what the reduction service needs around it:

* **PCA first** (``pca_components``, default 50): the activity is centred and projected onto its
  leading principal components (by an SVD in numpy) before t-SNE, standard practice: it removes
  noise dimensions, which otherwise make all distances alike, and speeds up the neighbour
  search. With no more neurons than ``pca_components`` the centred activity is used as it is.
  Neurons are not rescaled; transform the activity first (square root, z-score) if high-rate
  neurons should not dominate.
* **A size limit** (``max_samples``, default 10 000): t-SNE's time and memory grow faster than
  linearly, and a request for a million bins would hold a worker for a long time. Larger inputs
  are *refused* with a ValueError naming the limit rather than silently subsampled, so that the
  embedding always has one point per row the caller sent; the caller decides how to subsample
  (every k-th bin, some trials) and can place the remaining bins with :meth:`transform`.
* **Out-of-sample placement.** t-SNE defines no mapping for new data. :meth:`TSNEEmbedding.transform`
  returns the fitted embedding when given the training data itself (recognised by a SHA-256
  digest of its values, stored with the model); any other rows are placed at the
  inverse-distance-weighted mean of the embedded positions of their ``n_neighbors`` nearest
  training rows in the PCA space (a new row identical to a training row lands on it). This is
  an interpolation for display (e.g. held-out trials drawn into the map of the training
  trials), not a t-SNE of the new rows: it cannot show structure that the training data lacked.
* **Saving**: the embedding, the PCA projection and the projected training rows (for the
  placement) are the state, as plain arrays.
* **Progress**: ``report`` is called before and after the PCA step and at the end. The t-SNE
  optimisation itself cannot be interrupted from outside; a cancellation takes effect at the
  next call.

:func:`trajectory_embedding` embeds trials of shape ``(n_trials, n_time, n_neurons)``: all their
bins together in one map, returned as ``(n_trials, n_time, n_components)`` so each trial is a
path through the map, to be drawn by condition.

Example
-------
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 8.0])
>>> model = TSNEEmbedding(perplexity=10.0, pca_components=3).fit(X)
>>> Y = model.transform(X)
>>> Y.shape
(60, 2)
>>> within = np.linalg.norm(Y[:30].mean(axis=0) - Y[:30], axis=1).mean()
>>> bool(np.linalg.norm(Y[:30].mean(axis=0) - Y[30:].mean(axis=0)) > 3 * within)
True
"""

from __future__ import annotations

import hashlib
import math
import numbers
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from sklearn.manifold import TSNE

from .base import Reducer, Report, check_activity, register_reducer

__all__ = ["TSNEEmbedding", "trajectory_embedding"]


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _digest(X: np.ndarray) -> np.ndarray:
    """SHA-256 of the shape and float64 values of ``X``, as 32 uint8 (an array, for the state).

    float64 first, so the same numbers sent as float32 or as integers are the same data."""
    values = np.ascontiguousarray(X, dtype=np.float64)
    h = hashlib.sha256(np.array(values.shape, dtype=np.int64).tobytes())
    h.update(values.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def _principal_axes(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the leading ``n_components`` principal axes (rows), signs fixed so that each
    axis's largest-magnitude loading is positive (an SVD's signs are otherwise arbitrary)."""
    mean = X.mean(axis=0)
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    axes = vt[:n_components]
    signs = np.sign(axes[np.arange(axes.shape[0]), np.argmax(np.abs(axes), axis=1)])
    signs[signs == 0] = 1.0
    return mean, axes * signs[:, None]


@register_reducer("tsne")
class TSNEEmbedding(Reducer):
    """t-SNE of time bins (Barnes-Hut, by scikit-learn), after PCA; see the module docstring.

    Parameters
    ----------
    n_components : int, default 2
        Dimensions of the embedding, 1 to 3 (Barnes-Hut works in at most 3).
    perplexity : float, default 30
        Effective number of neighbours of each point; must be below the number of samples.
        Typical values are 5 to 50.
    seed : int, default 0
        Seeds scikit-learn's random state: the starting positions with ``init="random"``; with
        ``init="pca"`` only the randomised SVD that scikit-learn may use for the initial PCA of
        large inputs, so there the embedding is essentially deterministic. Either way the same
        data, seed and thread count give the same embedding.
    init : {"pca", "random"}, default "pca"
        Starting positions: the leading principal components (scaled small), which preserves
        more of the global arrangement of clusters (Kobak & Berens 2019, "The art of using
        t-SNE for single-cell transcriptomics"), or small random ones.
    pca_components : int or None, default 50
        Principal components kept before t-SNE; None to use all centred neurons.
    max_samples : int, default 10000
        Largest number of samples accepted by ``fit``; more raise a ValueError (not subsampled).
    n_neighbors : int, default 10
        Training rows whose positions are averaged to place a new row in :meth:`transform`.
    max_iter : int, default 1000
        Optimisation iterations (at least 250, scikit-learn's minimum).

    Attributes
    ----------
    embedding_ : ndarray, shape (n_samples, n_components)
        The embedding of the training rows.
    pca_mean_ : ndarray, shape (n_neurons,)
    pca_axes_ : ndarray, shape (n_pcs, n_neurons)
        The projection applied before t-SNE (the identity's rows without PCA).
    reference_ : ndarray, shape (n_samples, n_pcs)
        The projected training rows, for placing new ones.
    data_digest_ : ndarray of uint8, shape (32,)
        SHA-256 of the training data, to recognise it in :meth:`transform`.
    kl_divergence_ : float
        The final Kullback-Leibler divergence of the optimisation.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(40, 6))
    >>> model = TSNEEmbedding(perplexity=5.0, pca_components=None, seed=3).fit(X)
    >>> bool(np.array_equal(model.transform(X), model.embedding_)), model.transform(X[:4] + 0.01).shape
    (True, (4, 2))
    """

    # the fitted state is a list of arrays: the default StatefulModel methods save and restore it
    state_attributes = ("embedding_", "pca_mean_", "pca_axes_", "reference_", "data_digest_", "kl_divergence_")

    def __init__(self, *, n_components: int = 2, perplexity: float = 30.0, seed: int = 0, init: str = "pca",
                 pca_components: int | None = 50, max_samples: int = 10_000, n_neighbors: int = 10,
                 max_iter: int = 1000) -> None:
        self.n_components = n_components
        self.perplexity = perplexity
        self.seed = seed
        self.init = init
        self.pca_components = pca_components
        self.max_samples = max_samples
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter

    def _check_params(self) -> dict[str, Any]:
        n_components = _count(self.n_components, "n_components", 1)
        if n_components > 3:
            raise ValueError(f"n_components must be 1, 2 or 3 (Barnes-Hut t-SNE), got {n_components}")
        perplexity = self.perplexity
        if isinstance(perplexity, bool) or not isinstance(perplexity, numbers.Real) or not (
                math.isfinite(perplexity) and perplexity > 0):
            raise ValueError(f"perplexity must be a finite number > 0, got {perplexity!r}")
        if self.init not in ("pca", "random"):
            raise ValueError(f"init must be 'pca' or 'random', got {self.init!r}")
        pca = None if self.pca_components is None else _count(self.pca_components, "pca_components", 1)
        return {"n_components": n_components, "perplexity": float(perplexity), "pca_components": pca,
                "seed": _count(self.seed, "seed", 0), "max_samples": _count(self.max_samples, "max_samples", 2),
                "n_neighbors": _count(self.n_neighbors, "n_neighbors", 1),
                "max_iter": _count(self.max_iter, "max_iter", 250)}

    def fit(self, X, *, report: Report | None = None) -> "TSNEEmbedding":
        """Embed the rows of ``X``, shape (n_samples, n_neurons).

        Raises
        ------
        ValueError
            Wrong rank, NaN or infinite values, more than ``max_samples`` rows, a perplexity not
            below the number of rows, a parameter out of range.
        """
        params = self._check_params()
        X = check_activity(X, min_samples=2)
        n, n_features = X.shape
        if n > params["max_samples"]:
            raise ValueError(f"t-SNE of {n} samples refused: the limit is max_samples={params['max_samples']} "
                             f"(time and memory grow faster than linearly); subsample the bins, or raise "
                             f"max_samples, and place the rest with transform()")
        if params["perplexity"] >= n:
            raise ValueError(f"perplexity ({params['perplexity']:g}) must be below the number of samples ({n})")
        if report is not None:
            report(0.0, f"projecting {n} samples of {n_features} neurons")
        X64 = X.astype(np.float64)
        n_pcs = params["pca_components"]
        if n_pcs is not None and n_pcs < n_features:
            mean, axes = _principal_axes(X64, min(n_pcs, n))
        else:
            mean, axes = X64.mean(axis=0), np.eye(n_features)
        reference = (X64 - mean) @ axes.T
        if report is not None:
            report(0.1, f"t-SNE of {n} samples in {reference.shape[1]} dimensions")
        tsne = TSNE(n_components=params["n_components"], perplexity=params["perplexity"], init=self.init,
                    learning_rate="auto", max_iter=params["max_iter"], random_state=params["seed"],
                    method="barnes_hut")
        embedding = tsne.fit_transform(reference)
        if report is not None:
            report(1.0, f"t-SNE done, KL divergence {tsne.kl_divergence_:.4g}")
        self.embedding_ = embedding.astype(np.float64)
        self.pca_mean_, self.pca_axes_ = mean, axes
        self.reference_ = reference
        self.data_digest_ = _digest(X)
        self.kl_divergence_ = float(tsne.kl_divergence_)
        return self

    def transform(self, X) -> np.ndarray:
        """The embedding of ``X``: the fitted one for the training data, else placed by weighted
        nearest neighbours (see the module docstring). Shape (n_samples, n_components)."""
        if not hasattr(self, "embedding_"):
            raise ValueError(f"{type(self).__name__} is not fitted")
        X = check_activity(X)
        if X.shape[1] != self.pca_mean_.size:
            raise ValueError(f"activity has {X.shape[1]} neurons (shape {X.shape}), the embedding was fitted on "
                             f"{self.pca_mean_.size}")
        if X.shape[0] == self.embedding_.shape[0] and np.array_equal(_digest(X), self.data_digest_):
            return self.embedding_.copy()
        return self._place(X)

    def _place(self, X: np.ndarray) -> np.ndarray:
        points = (X.astype(np.float64) - self.pca_mean_) @ self.pca_axes_.T
        k = min(_count(self.n_neighbors, "n_neighbors", 1), self.reference_.shape[0])
        distance, index = cKDTree(self.reference_).query(points, k=k)
        distance, index = distance.reshape(len(points), k), index.reshape(len(points), k)
        exact = distance <= 1e-12 * max(1.0, float(np.abs(self.reference_).max()))
        # inverse-distance weights; a row that coincides with training rows takes their place only
        weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64),
                           1.0 / np.maximum(distance, 1e-300))
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkc->nc", weights, self.embedding_[index])

    def fit_transform(self, X, *, report: Report | None = None) -> np.ndarray:
        return self.fit(X, report=report).embedding_.copy()


def trajectory_embedding(X_trials, *, report: Report | None = None, **params) -> np.ndarray:
    """t-SNE of every time bin of every trial, in one map, shaped back into trajectories.

    Parameters
    ----------
    X_trials : array_like, shape (n_trials, n_time, n_neurons)
    report : callable, optional
        Passed to :meth:`TSNEEmbedding.fit`.
    **params
        Parameters of :class:`TSNEEmbedding` (``n_components``, ``perplexity``, ``seed``, ...);
        ``max_samples`` limits ``n_trials * n_time``.

    Returns
    -------
    ndarray, shape (n_trials, n_time, n_components)
        Row ``[i, t]`` is the position of trial ``i``'s bin ``t``.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> trials = rng.normal(size=(4, 10, 3)).cumsum(axis=1)
    >>> trajectory_embedding(trials, perplexity=5.0).shape
    (4, 10, 2)
    """
    X_trials = check_activity(X_trials, ndim=3)
    n_trials, n_time, n_neurons = X_trials.shape
    model = TSNEEmbedding(**params)
    embedding = model.fit_transform(X_trials.reshape(n_trials * n_time, n_neurons), report=report)
    return embedding.reshape(n_trials, n_time, embedding.shape[1])
