"""Representational similarity analysis (RSA): dissimilarity matrices and their comparison.

RSA (Kriegeskorte et al. 2008) describes what a brain region represents by how differently it
responds to each pair of experimental conditions. The responses of ``n_channels`` channels
(neurons, electrodes, voxels) to ``n_conditions`` conditions become a representational
dissimilarity matrix (RDM), ``n_conditions x n_conditions``, symmetric with a zero diagonal; RDMs
from brains and from models are then compared on their upper triangles, and the comparison is
tested by permuting the condition labels (Nili et al. 2014).

* :func:`representational_dissimilarity` builds an RDM from condition patterns, with the
  correlation distance, the Euclidean distance, or the cross-validated Mahalanobis
  ("crossnobis") distance of Walther et al. (2016), which is unbiased: noise alone gives
  distances that scatter around 0, where every non-cross-validated distance is positive.
* :func:`rdm_to_vector` and :func:`vector_to_rdm` convert between the square matrix and its
  upper triangle (in the row-major order of :func:`scipy.spatial.distance.squareform`).
* :func:`compare_rdms` correlates two RDMs: Spearman, Pearson, or Kendall's tau-a, which Nili
  et al. recommend for models that predict tied dissimilarities.
* :func:`rdm_permutation_test` tests the comparison against a null distribution made by
  relabelling the conditions of one RDM.

Example
-------
>>> rng = np.random.default_rng(0)
>>> latent = rng.normal(size=(8, 30))               # 8 conditions, 30 channels
>>> brain = representational_dissimilarity(latent + 0.5 * rng.normal(size=latent.shape))
>>> model = representational_dissimilarity(latent)
>>> brain.shape, bool(np.all(np.diag(brain) == 0))
((8, 8), True)
>>> result = rdm_permutation_test(brain, model, n_permutations=999, seed=1)
>>> round(result.statistic, 3), result.p_value
(0.874, 0.001)

References
----------
Kriegeskorte N, Mur M, Bandettini P (2008). Representational similarity analysis - connecting
the branches of systems neuroscience. Front Syst Neurosci 2:4.
Nili H, Wingfield C, Walther A, Su L, Marslen-Wilson W, Kriegeskorte N (2014). A toolbox for
representational similarity analysis. PLoS Comput Biol 10:e1003553.
Walther A, Nili H, Ejaz N, Alink A, Kriegeskorte N, Diedrichsen J (2016). Reliability of
dissimilarity measures for multi-voxel pattern analysis. NeuroImage 137:188-200.
Ledoit O, Wolf M (2004). A well-conditioned estimator for large-dimensional covariance matrices.
J Multivar Anal 88:365-411.
Knight WR (1966). A computer method for calculating Kendall's tau with ungrouped data.
J Am Stat Assoc 61:436-439.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "representational_dissimilarity", "rdm_to_vector", "vector_to_rdm", "compare_rdms",
    "rdm_permutation_test", "RDMPermutationResult", "shrinkage_covariance",
    "DISSIMILARITY_METRICS", "COMPARISON_METHODS",
]

#: the distances :func:`representational_dissimilarity` computes
DISSIMILARITY_METRICS = ("correlation", "euclidean", "crossnobis")
#: the statistics :func:`compare_rdms` computes
COMPARISON_METHODS = ("spearman", "kendall_tau_a", "pearson")

# relative tolerance for the symmetry and zero diagonal of an RDM handed in: RDMs computed
# elsewhere (or saved as text) carry rounding differences between entries (i, j) and (j, i)
_RDM_RTOL = 1e-8
# a permuted statistic this close to the observed one (relative) counts as ">=": the observed
# and permuted statistics are sums over the same numbers in different orders, so mathematically
# equal values (e.g. a relabelling that maps the RDM onto itself) may differ in the last bits
_TIE_RTOL = 1e-12
# numbers held at once by a batch of permuted RDM vectors in the permutation test (~16 MB each)
_BATCH_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------------------------------
# input checks


def _as_real_array(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if x.size == 0:
        raise ValueError(f"{name} is empty, shape {x.shape}")
    if not np.isfinite(x).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {where})")
    return x


def _check_metric(value, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _n_from_vector_length(length: int, name: str) -> int:
    """Number of conditions whose upper triangle has ``length`` entries, ``n (n - 1) / 2``."""
    n = int(round((1 + np.sqrt(1 + 8 * length)) / 2))
    if n * (n - 1) // 2 != length:
        raise ValueError(f"{name} has {length} entries, which is not n (n - 1) / 2 for any number of "
                         "conditions n (valid lengths: 1, 3, 6, 10, ...)")
    return n


def _check_rdm(rdm, name: str = "rdm") -> np.ndarray:
    rdm = _as_real_array(rdm, name)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"{name} must be a square matrix (n_conditions, n_conditions), got shape {rdm.shape}")
    if rdm.shape[0] < 2:
        raise ValueError(f"{name} must describe at least 2 conditions, got shape {rdm.shape}")
    tol = _RDM_RTOL * max(float(np.abs(rdm).max()), np.finfo(np.float64).tiny)
    if np.abs(np.diag(rdm)).max() > tol:
        i = int(np.argmax(np.abs(np.diag(rdm))))
        raise ValueError(f"{name} must have a zero diagonal, got {rdm[i, i]!r} at ({i}, {i})")
    asym = np.abs(rdm - rdm.T)
    if asym.max() > tol:
        i, j = (int(k) for k in np.unravel_index(np.argmax(asym), asym.shape))
        raise ValueError(f"{name} must be symmetric, got {rdm[i, j]!r} at ({i}, {j}) but {rdm[j, i]!r} "
                         f"at ({j}, {i})")
    return rdm


def _as_vector(x, name: str) -> tuple[np.ndarray, int]:
    """An RDM or its upper-triangle vector -> (vector, n_conditions)."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        vec = _as_real_array(arr, name)
        return vec, _n_from_vector_length(vec.size, name)
    if arr.ndim == 2:
        rdm = _check_rdm(arr, name)
        return rdm[np.triu_indices(rdm.shape[0], k=1)], rdm.shape[0]
    raise ValueError(f"{name} must be an RDM (n_conditions, n_conditions) or its upper-triangle vector, "
                     f"got shape {arr.shape}")


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray, int]:
    va, na = _as_vector(a, "a")
    vb, nb = _as_vector(b, "b")
    if na != nb:
        raise ValueError(f"a and b must describe the same conditions, got {na} and {nb} conditions")
    if na < 3:
        # two conditions give one dissimilarity each: nothing to correlate
        raise ValueError(f"comparing RDMs needs at least 3 conditions, got {na}")
    return va, vb, na


# --------------------------------------------------------------------------------------------------
# dissimilarities


def shrinkage_covariance(residuals, *, shrinkage: float | None = None) -> tuple[np.ndarray, float]:
    """Noise covariance from residuals, shrunk toward its diagonal (Ledoit-Wolf intensity).

    Parameters
    ----------
    residuals : array_like, shape (n_samples, n_channels)
        Noise samples, e.g. the residuals of a regression of the channels on the design; finite,
        at least 2 samples. They are centred on their channel means here.
    shrinkage : float in [0, 1], optional
        Weight of the diagonal target. By default it is estimated from the data (see Notes).

    Returns
    -------
    covariance : ndarray, shape (n_channels, n_channels)
        ``(1 - lam) * S + lam * diag(S)``, with ``S = Xc.T @ Xc / n_samples`` the (maximum
        likelihood, divided by ``n_samples``) sample covariance of the centred residuals ``Xc``.
        The variances are kept as they are; only the covariances shrink toward 0.
    lam : float
        The shrinkage intensity used.

    Raises
    ------
    ValueError
        ``residuals`` is not 2-D, has fewer than 2 samples, NaN or infinite values, a channel
        without variance; ``shrinkage`` is not a number in [0, 1].

    Notes
    -----
    With fewer samples than channels ``S`` is singular, and with not many more its inverse is a
    poor, noise-amplifying estimate of the precision matrix the Mahalanobis distance needs. The
    diagonal target keeps every channel's own variance and drops the covariances, so the shrunk
    matrix is positive definite whenever ``lam > 0``. The intensity is the Ledoit & Wolf (2004)
    estimate of the one minimising the expected squared (Frobenius) error, for this target (the
    "target D" of Schäfer & Strimmer 2005): with ``w_kij = x_ki x_kj`` for centred sample ``k``,

    ``lam = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij**2``, clipped to [0, 1],

    where ``Var(s_ij) = sum_k (w_kij - s_ij)**2 / n_samples**2`` estimates the sampling variance
    of the covariance ``s_ij``. (Ledoit & Wolf shrink toward a multiple of the identity instead;
    for channels of unequal noise, e.g. neurons of different firing rates, that pulls the
    variances toward each other as well.)

    Examples
    --------
    Channels 0 and 1 share noise (true covariance 0.8, variances 1); channel 2 is independent.
    Few samples leave more of the estimated covariance to chance, so it is shrunk more:

    >>> rng = np.random.default_rng(0)
    >>> mix = np.array([[1.0, 0.8, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 2.0]])
    >>> cov, lam = shrinkage_covariance(rng.normal(size=(20, 3)) @ mix)
    >>> round(lam, 3)
    0.285
    >>> cov, lam = shrinkage_covariance(rng.normal(size=(500, 3)) @ mix)
    >>> round(lam, 3), cov.round(2)
    (0.032, array([[ 0.94,  0.74, -0.05],
                   [ 0.74,  0.95, -0.05],
                   [-0.05, -0.05,  4.18]]))
    """
    x = _as_real_array(residuals, "residuals")
    if x.ndim != 2:
        raise ValueError(f"residuals must be 2-D (n_samples, n_channels), got shape {x.shape}")
    n, n_channels = x.shape
    if n < 2:
        raise ValueError(f"residuals need at least 2 samples to estimate a covariance, got shape {x.shape}")
    if shrinkage is not None:
        if (isinstance(shrinkage, bool) or not isinstance(shrinkage, numbers.Real)
                or not 0.0 <= shrinkage <= 1.0):
            raise ValueError(f"shrinkage must be a number in [0, 1] or None, got {shrinkage!r}")
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    variances = np.diag(s)
    # per channel, relative to that channel's magnitude: channels may be in very different units
    flat = variances <= 1e-24 * np.abs(x).max(axis=0) ** 2
    if flat.any():
        raise ValueError(f"residuals of channel {int(np.flatnonzero(flat)[0])} have no variance: the noise "
                         "covariance would be singular")
    if shrinkage is None:
        off = ~np.eye(n_channels, dtype=bool)
        denominator = float(np.sum(s[off] ** 2))
        if denominator == 0.0:
            lam = 1.0   # no covariance to shrink (one channel, or exactly uncorrelated residuals)
        else:
            # sum over i != j and k of w_kij**2, i.e. all (i, j) minus the diagonal, without an
            # (n, n_channels, n_channels) array: sum_k (sum_i x_ki**2)**2 - sum_k sum_i x_ki**4
            sq = xc * xc
            w2 = float(np.sum(np.sum(sq, axis=1) ** 2) - np.sum(sq * sq))
            variance_of_s = (w2 / n - denominator) / n   # sum_{i != j} of Var(s_ij)
            lam = float(np.clip(variance_of_s / denominator, 0.0, 1.0))
    else:
        lam = float(shrinkage)
    cov = (1.0 - lam) * s
    cov[np.diag_indices(n_channels)] = variances
    return cov, lam


def _whitener(noise_cov, n_channels: int) -> np.ndarray:
    """``W`` with ``W.T @ W = inv(noise_cov)``, so ``(W d_i) . (W d_j) = d_i' inv(S) d_j``."""
    cov = _as_real_array(noise_cov, "noise_cov")
    if cov.shape != (n_channels, n_channels):
        raise ValueError(f"noise_cov must have shape (n_channels, n_channels) = {(n_channels, n_channels)}, "
                         f"got {cov.shape}")
    scale = float(np.abs(cov).max())
    if np.abs(cov - cov.T).max() > _RDM_RTOL * scale:
        raise ValueError("noise_cov must be symmetric")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("noise_cov must be positive definite (is it estimated from fewer samples than "
                         "channels? shrink it, e.g. pass residuals instead)") from None
    # inv(S) = inv(L).T inv(L): whitening by inv(L) keeps the pattern products in one matmul
    return np.linalg.solve(chol, np.eye(n_channels))


def _squared_distances_from_gram(gram: np.ndarray) -> np.ndarray:
    """``g_ii + g_jj - 2 g_ij`` for a symmetric matrix of inner products."""
    d = np.diag(gram)
    rdm = d[:, np.newaxis] + d[np.newaxis, :] - 2.0 * gram
    rdm = (rdm + rdm.T) / 2.0
    np.fill_diagonal(rdm, 0.0)
    return rdm


def representational_dissimilarity(patterns, *, metric: str = "correlation", squared: bool = False,
                                   noise_cov=None, residuals=None,
                                   shrinkage: float | None = None) -> np.ndarray:
    """Representational dissimilarity matrix (RDM) of condition-response patterns.

    Parameters
    ----------
    patterns : array_like
        ``(n_conditions, n_channels)`` response patterns for ``"correlation"`` and
        ``"euclidean"``; ``(n_partitions, n_conditions, n_channels)`` for ``"crossnobis"``, one
        estimate of every condition's pattern per independent partition of the data (e.g. per
        run or per fold of trials). Finite, at least 2 conditions.
    metric : {"correlation", "euclidean", "crossnobis"}, default "correlation"
        * ``"correlation"``: ``1 - r`` with ``r`` the Pearson correlation of two conditions'
          patterns across channels; in [0, 2]. Needs >= 2 channels and no constant pattern.
        * ``"euclidean"``: ``||p_i - p_j||`` (or its square, see ``squared``).
        * ``"crossnobis"``: cross-validated squared Mahalanobis distance per channel (Walther et
          al. 2016), ``mean over partitions m != n of (d_i_j^m)' inv(S) (d_i_j^n) / n_channels``,
          with ``d_i_j^m = p_i^m - p_j^m`` the pattern difference in partition ``m``.
    squared : bool, default False
        Euclidean only: return squared distances ``||p_i - p_j||**2`` instead. The default is the
        plain distance, as :func:`scipy.spatial.distance.pdist` computes it.
    noise_cov : array_like, shape (n_channels, n_channels), optional
        Crossnobis only: noise covariance ``S``, symmetric positive definite.
    residuals : array_like, shape (n_samples, n_channels), optional
        Crossnobis only, instead of ``noise_cov``: noise samples from which ``S`` is estimated by
        :func:`shrinkage_covariance` (sample covariance shrunk toward its diagonal with the
        Ledoit-Wolf intensity, or with ``shrinkage`` if given). With neither, ``S`` is the
        identity: the cross-validated squared Euclidean distance per channel.
    shrinkage : float in [0, 1], optional
        Crossnobis with ``residuals`` only: fixed shrinkage intensity (default: estimated).

    Returns
    -------
    rdm : ndarray of float64, shape (n_conditions, n_conditions)
        Symmetric, with an exactly zero diagonal.

    Raises
    ------
    ValueError
        Unknown metric; ``patterns`` of the wrong dimensionality for the metric, empty, with NaN
        or infinite values, fewer than 2 conditions (or partitions for crossnobis), a constant
        pattern under the correlation distance; an option given for a metric that does not use
        it; a noise covariance of the wrong shape, not symmetric positive definite.

    Notes
    -----
    Why crossnobis: a pattern estimate is the true pattern plus noise, so any distance between
    two estimates is inflated by the noise. For the squared Euclidean distance between the means
    of ``M`` partitions the bias is ``2 * sigma**2 * n_channels / M`` for noise of variance
    ``sigma**2`` per channel, however similar the conditions are. Multiplying the difference
    from one partition by that from another, independent one removes it: the expectation of
    each product is the true ``delta' inv(S) delta``, so the crossnobis distance is unbiased,
    0 on average for identical conditions, and can come out negative. Dividing by
    ``n_channels`` makes the distance a per-channel quantity, comparable between regions of
    different sizes. The ``M (M - 1)`` ordered pairs of partitions are averaged in one pass,
    ``sum_{m != n} d^m' d^n = (sum_m d^m)' (sum_n d^n) - sum_m d^m' d^m``.

    Examples
    --------
    >>> p = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 2.0, 1.0]])
    >>> representational_dissimilarity(p).round(12)      # 1 - r: same shape, opposite slope
    array([[0., 0., 2.],
           [0., 0., 2.],
           [2., 2., 0.]])
    >>> representational_dissimilarity(p, metric="euclidean", squared=True)
    array([[ 0., 14.,  8.],
           [14.,  0., 30.],
           [ 8., 30.,  0.]])

    Two partitions of the same three noiseless patterns: crossnobis is then the squared
    Euclidean distance divided by the 3 channels.

    >>> representational_dissimilarity(np.stack([p, p]), metric="crossnobis").round(3)
    array([[ 0.   ,  4.667,  2.667],
           [ 4.667,  0.   , 10.   ],
           [ 2.667, 10.   ,  0.   ]])
    """
    metric = _check_metric(metric, DISSIMILARITY_METRICS, "metric")
    if not isinstance(squared, (bool, np.bool_)):
        raise ValueError(f"squared must be True or False, got {squared!r}")
    if squared and metric != "euclidean":
        raise ValueError(f"squared applies to the euclidean metric only, not {metric!r}")
    if metric != "crossnobis":
        for name, value in (("noise_cov", noise_cov), ("residuals", residuals), ("shrinkage", shrinkage)):
            if value is not None:
                raise ValueError(f"{name} applies to the crossnobis metric only, not {metric!r}")
    x = _as_real_array(patterns, "patterns")
    if metric == "crossnobis":
        return _crossnobis(x, noise_cov=noise_cov, residuals=residuals, shrinkage=shrinkage)
    if x.ndim != 2:
        raise ValueError(f"patterns must be 2-D (n_conditions, n_channels) for the {metric} metric, "
                         f"got shape {x.shape}")
    n_conditions, n_channels = x.shape
    if n_conditions < 2:
        raise ValueError(f"an RDM needs at least 2 conditions, got shape {x.shape}")
    if metric == "correlation":
        return _correlation_distance(x)
    # one row of differences at a time instead of the Gram-matrix identity ||a||² + ||b||² -
    # 2 a.b, which cancels catastrophically for near-identical patterns (a distance of 1e-8
    # could come out as 1e-4), at the price of a Python loop over the conditions
    rdm = np.zeros((n_conditions, n_conditions))
    for i in range(n_conditions - 1):
        diff = x[i + 1:] - x[i]
        scale = np.abs(diff).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        # scaled first so that squaring cannot overflow for huge values
        sq = np.sum((diff / scale) ** 2, axis=1)
        rdm[i, i + 1:] = sq * scale[:, 0] ** 2 if squared else np.sqrt(sq) * scale[:, 0]
    return rdm + rdm.T


def _correlation_distance(x: np.ndarray) -> np.ndarray:
    n_conditions, n_channels = x.shape
    if n_channels < 2:
        raise ValueError(f"the correlation distance needs at least 2 channels, got shape {x.shape}")
    z = x - x.mean(axis=1, keepdims=True)
    peak = np.abs(z).max(axis=1, keepdims=True)
    if np.any(peak[:, 0] == 0):
        i = int(np.flatnonzero(peak[:, 0] == 0)[0])
        raise ValueError(f"pattern of condition {i} is constant across channels: its correlation with "
                         "other patterns is undefined")
    z = z / peak   # scaled by the largest magnitude first, so squares cannot overflow
    z /= np.sqrt(np.sum(z * z, axis=1, keepdims=True))
    rdm = 1.0 - np.clip(z @ z.T, -1.0, 1.0)
    rdm = (rdm + rdm.T) / 2.0
    np.fill_diagonal(rdm, 0.0)
    return rdm


def _crossnobis(x: np.ndarray, *, noise_cov, residuals, shrinkage) -> np.ndarray:
    if x.ndim != 3:
        raise ValueError("patterns must be 3-D (n_partitions, n_conditions, n_channels) for the crossnobis "
                         f"metric, got shape {x.shape}")
    n_partitions, n_conditions, n_channels = x.shape
    if n_partitions < 2:
        raise ValueError(f"crossnobis needs at least 2 independent partitions, got shape {x.shape}")
    if n_conditions < 2:
        raise ValueError(f"an RDM needs at least 2 conditions, got shape {x.shape}")
    if noise_cov is not None and residuals is not None:
        raise ValueError("give noise_cov or residuals, not both")
    if shrinkage is not None and residuals is None:
        raise ValueError("shrinkage applies to a covariance estimated from residuals; none were given")
    if residuals is not None:
        r = np.asarray(residuals)
        if r.ndim != 2 or r.shape[1] != n_channels:
            raise ValueError(f"residuals must have shape (n_samples, n_channels={n_channels}), got {r.shape}")
        noise_cov, _ = shrinkage_covariance(r, shrinkage=shrinkage)
    # The distance depends only on differences between conditions of one partition, so removing
    # each partition's mean pattern changes nothing, but keeps a large common response (e.g. a
    # baseline firing rate) from swamping the difference terms below in rounding error.
    x = x - x.mean(axis=1, keepdims=True)
    if noise_cov is not None:
        x = x @ _whitener(noise_cov, n_channels).T
    total = x.sum(axis=0)
    # inner products of condition patterns between different partitions, averaged over the
    # M (M - 1) ordered pairs: all pairs minus those of a partition with itself
    cross = total @ total.T - np.einsum("mic,mjc->ij", x, x)
    cross /= n_partitions * (n_partitions - 1)
    return _squared_distances_from_gram(cross) / n_channels


# --------------------------------------------------------------------------------------------------
# RDM <-> vector


def rdm_to_vector(rdm) -> np.ndarray:
    """The upper triangle (above the diagonal) of an RDM, row by row.

    Parameters
    ----------
    rdm : array_like, shape (n_conditions, n_conditions)
        Symmetric (to a relative 1e-8), zero diagonal, finite, at least 2 conditions.

    Returns
    -------
    vector : ndarray of float64, shape (n_conditions * (n_conditions - 1) / 2,)
        ``rdm[i, j]`` for ``i < j`` in row-major order, the order of
        :func:`scipy.spatial.distance.squareform` and :func:`numpy.triu_indices` with ``k=1``.

    Raises
    ------
    ValueError
        ``rdm`` is not square, smaller than 2 x 2, not symmetric, has a non-zero diagonal, NaN or
        infinite values.

    Examples
    --------
    >>> rdm_to_vector([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    array([1., 2., 3.])
    """
    rdm = _check_rdm(rdm)
    return rdm[np.triu_indices(rdm.shape[0], k=1)]


def vector_to_rdm(vector) -> np.ndarray:
    """The symmetric RDM, with a zero diagonal, whose upper triangle is ``vector``.

    Parameters
    ----------
    vector : array_like, shape (n_conditions * (n_conditions - 1) / 2,)
        Upper-triangle entries in the order of :func:`rdm_to_vector`; finite, at least 1.

    Returns
    -------
    rdm : ndarray of float64, shape (n_conditions, n_conditions)

    Raises
    ------
    ValueError
        ``vector`` is not 1-D, empty, has NaN or infinite values, or a length that is not
        ``n (n - 1) / 2`` for any ``n``.

    Examples
    --------
    >>> vector_to_rdm([1.0, 2.0, 3.0])
    array([[0., 1., 2.],
           [1., 0., 3.],
           [2., 3., 0.]])
    """
    vec = _as_real_array(vector, "vector")
    if vec.ndim != 1:
        raise ValueError(f"vector must be 1-D, got shape {vec.shape}")
    n = _n_from_vector_length(vec.size, "vector")
    rdm = np.zeros((n, n))
    rows, cols = np.triu_indices(n, k=1)
    rdm[rows, cols] = vec
    rdm[cols, rows] = vec
    return rdm


# --------------------------------------------------------------------------------------------------
# comparison statistics


def _tie_groups(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order of ``x``, and start and size of each run of equal values in sorted order."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    sizes = np.diff(np.append(starts, x.size))
    return order, starts, sizes


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (as for Spearman's rho)."""
    order, starts, sizes = _tie_groups(x)
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return ranks


def _dense_ranks(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 preserving order and ties, and the number of tied pairs."""
    order, starts, sizes = _tie_groups(x)
    codes = np.empty(x.size, dtype=np.int64)
    codes[order] = np.repeat(np.arange(starts.size, dtype=np.int64), sizes)
    return codes, int(np.sum(sizes * (sizes - 1) // 2))


def _standardize(x: np.ndarray) -> np.ndarray | None:
    """``x`` centred and scaled to unit norm, or None if it is constant (correlation undefined)."""
    z = x - x.mean()
    peak = np.abs(z).max()
    if peak == 0:
        return None
    z = z / peak   # scaled by the largest magnitude first, so squares cannot overflow
    return z / np.sqrt(np.dot(z, z))


def _count_inversions(seq: np.ndarray) -> np.ndarray:
    """Pairs ``i < j`` with ``seq[:, i] > seq[:, j]`` (strictly), per row, by a merge sort.

    Bottom-up merge sort (Knight 1966), vectorised across rows and across the blocks of a level:
    adjacent sorted blocks of ``width`` values are merged by a stable sort, which puts a left
    value before an equal right one. A value taken from index ``s`` of the merged block (``s >=
    width``: from the right block) lands at position ``p``; the ``p - (s - width)`` values before
    it from the left block are those <= it, so the ``s - p`` others are the left values greater
    than it, its inversions. log2(n) levels of O(n) work (a stable sort of two sorted runs is a
    merge), and O(n) memory.
    """
    a = np.array(seq, dtype=np.int64, copy=True)
    batch, n = a.shape
    total = np.zeros(batch, dtype=np.int64)
    width = 1
    while width < n:
        step = 2 * width
        full = (n // step) * step
        pieces = [(slice(0, full), (batch, full // step, step))] if full else []
        if n - full > width:   # a ragged last pair: a full left block and a shorter right one
            pieces.append((slice(full, n), (batch, 1, n - full)))
        for cols, shape in pieces:
            blocks = a[:, cols].reshape(shape)
            order = np.argsort(blocks, axis=-1, kind="stable")
            moved = order - np.arange(shape[-1])
            total += np.where(order >= width, moved, 0).sum(axis=(1, 2))
            a[:, cols] = np.take_along_axis(blocks, order, axis=-1).reshape(batch, -1)
        width = step
    return total


def _kendall_tau_a(x_codes: np.ndarray, x_ties: int, y_codes: np.ndarray, y_ties: int) -> np.ndarray:
    """Kendall's tau-a of a vector of codes ``x_codes`` (n,) with each row of ``y_codes`` (batch, n).

    ``x_ties`` and ``y_ties`` are the numbers of pairs tied in x and in y. With the pairs ordered
    by (x, y), every discordant pair is an inversion of y and vice versa; pairs tied in x are in
    y order and those tied in y are not strict inversions, so they count as neither. Of the
    ``n0 = n (n - 1) / 2`` pairs, ``n0 - x_ties - y_ties + joint_ties`` are tied in neither, and
    those are concordant or discordant: ``C - D = n0 - x_ties - y_ties + joint_ties - 2 D``.
    """
    batch, n = y_codes.shape
    n_y = int(y_codes.max()) + 1
    keys = x_codes[np.newaxis, :] * n_y + y_codes   # lexicographic (x, y) in one integer
    keys.sort(axis=1)
    # pairs tied in both: each value counts the equal values before it in its run
    new_run = np.ones_like(keys, dtype=bool)
    new_run[:, 1:] = keys[:, 1:] != keys[:, :-1]
    position = np.broadcast_to(np.arange(n), keys.shape)
    run_start = np.maximum.accumulate(np.where(new_run, position, 0), axis=1)
    joint_ties = np.sum(position - run_start, axis=1)
    discordant = _count_inversions(keys % n_y)
    n0 = n * (n - 1) // 2
    return (n0 - x_ties - y_ties + joint_ties - 2 * discordant) / n0


class _Comparison:
    """One RDM vector ``a`` prepared to be compared with many rearrangements of another, ``b``.

    The rearrangements are those of a relabelling of conditions, so each is a permutation of the
    entries of ``b``: ranks, means, norms and tie counts of ``b`` are computed once.
    """

    def __init__(self, va: np.ndarray, vb: np.ndarray, method: str):
        self.method = method
        if method == "kendall_tau_a":
            self.a_codes, self.a_ties = _dense_ranks(va)
            self.b_codes, self.b_ties = _dense_ranks(vb)
        else:
            if method == "spearman":
                va, vb = _average_ranks(va), _average_ranks(vb)
            self.za, self.zb = _standardize(va), _standardize(vb)

    def statistics(self, index: np.ndarray) -> np.ndarray:
        """Statistic of ``a`` against ``b[index[r]]`` for each row ``r`` of ``index`` (batch, n)."""
        if self.method == "kendall_tau_a":
            return _kendall_tau_a(self.a_codes, self.a_ties, self.b_codes[index], self.b_ties)
        if self.za is None or self.zb is None:
            return np.full(index.shape[0], np.nan)
        return np.clip(self.zb[index] @ self.za, -1.0, 1.0)


def compare_rdms(a, b, *, method: str = "spearman") -> float:
    """Correlation of two RDMs over their upper triangles.

    Parameters
    ----------
    a, b : array_like
        RDMs of the same conditions, ``(n_conditions, n_conditions)``, or their upper-triangle
        vectors as :func:`rdm_to_vector` returns them; at least 3 conditions, finite.
    method : {"spearman", "kendall_tau_a", "pearson"}, default "spearman"
        * ``"spearman"``: Pearson correlation of the ranks (ties get their mean rank).
        * ``"kendall_tau_a"``: ``(concordant - discordant) / (N (N - 1) / 2)`` over the ``N``
          dissimilarities, a pair tied in either RDM counting as neither. Unlike tau-b it is not
          rescaled for ties, so a model that predicts ties where the data have none scores lower
          than a model that orders them right, the reason Nili et al. (2014) recommend it for
          categorical models.
        * ``"pearson"``: linear correlation of the dissimilarities themselves.

    Returns
    -------
    statistic : float
        In [-1, 1]. For ``"spearman"`` and ``"pearson"`` it is NaN if either RDM has all its
        dissimilarities equal (correlation undefined); tau-a is then 0.

    Raises
    ------
    ValueError
        Unknown method; an input that is neither a valid RDM nor a vector of length
        ``n (n - 1) / 2``; different numbers of conditions; fewer than 3 conditions; NaN or
        infinite values.

    Notes
    -----
    Tau-a is computed exactly in O(N log N) time and O(N) memory (see Knight 1966): the
    discordant pairs are the inversions counted by a merge sort of one vector ordered by the
    other. A million dissimilarities (about 1,400 conditions) take one to a few seconds on one
    core; a quadratic pair-by-pair count, ``N**2 / 2 = 5e11`` sign products, would be out of
    reach there (a vectorised ``N x N`` sign matrix would need 1 TB even as int8).

    Examples
    --------
    >>> model = [[0, 1, 1], [1, 0, 2], [1, 2, 0]]        # predicts a tie
    >>> data = [[0, 1, 2], [1, 0, 3], [2, 3, 0]]
    >>> compare_rdms(model, data, method="kendall_tau_a")  # 2 of 3 pairs concordant, 1 tied
    0.6666666666666666
    >>> round(compare_rdms(model, data, method="spearman"), 4)
    0.866
    """
    method = _check_metric(method, COMPARISON_METHODS, "method")
    va, vb, _ = _check_pair(a, b)
    identity = np.arange(va.size)[np.newaxis, :]
    return float(_Comparison(va, vb, method).statistics(identity)[0])


# --------------------------------------------------------------------------------------------------
# permutation test


@dataclass(frozen=True)
class RDMPermutationResult:
    """Outcome of :func:`rdm_permutation_test`.

    Attributes
    ----------
    statistic : float
        The observed :func:`compare_rdms` statistic.
    p_value : float
        One-sided (greater), ``(1 + #(null >= statistic)) / (1 + n_permutations)``.
    null_distribution : ndarray of float64, shape (n_permutations,)
        The statistic after each random relabelling of the conditions of ``b``.
    method : str
        The comparison statistic.
    n_permutations : int
    """

    statistic: float
    p_value: float
    null_distribution: np.ndarray
    method: str
    n_permutations: int


def _permuted_pair_index(perms: np.ndarray, n: int) -> np.ndarray:
    """Index into the upper-triangle vector of an RDM after relabelling its conditions.

    For each row ``pi`` of ``perms`` (batch, n), entry ``k`` (the pair ``i < j``) of the result is
    the position of the pair ``(pi[i], pi[j])`` in the vector, so ``vec[index]`` is the vector of
    ``rdm[pi][:, pi]``.
    """
    rows, cols = np.triu_indices(n, k=1)
    pi, pj = perms[:, rows], perms[:, cols]
    lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
    # row-major position of (lo, hi), lo < hi: the rows before lo hold n-1, n-2, ... entries
    return lo * (2 * n - lo - 1) // 2 + (hi - lo - 1)


def rdm_permutation_test(a, b, *, method: str = "spearman", n_permutations: int = 10000,
                         seed=None) -> RDMPermutationResult:
    """Test the correlation of two RDMs by relabelling the conditions of one (Nili et al. 2014).

    Parameters
    ----------
    a, b : array_like
        RDMs of the same conditions, ``(n_conditions, n_conditions)`` or their upper-triangle
        vectors; at least 3 conditions, finite.
    method : {"spearman", "kendall_tau_a", "pearson"}, default "spearman"
        The statistic, as in :func:`compare_rdms`.
    n_permutations : int, default 10000
        Random relabellings, >= 1.
    seed : int, numpy.random.Generator or None
        Seed of the permutations (None: fresh entropy).

    Returns
    -------
    RDMPermutationResult
        ``statistic``, ``p_value``, ``null_distribution``, ``method``, ``n_permutations``.

    Raises
    ------
    ValueError
        As for :func:`compare_rdms`; ``n_permutations`` is not a positive integer; the statistic
        is undefined (NaN: one RDM has all dissimilarities equal).

    Notes
    -----
    The dissimilarities of an RDM are not independent (each condition takes part in
    ``n_conditions - 1`` of them), so permuting the entries of the vector would give too narrow
    a null distribution. Relabelling the conditions, rows and columns of ``b`` together, keeps
    that dependence and breaks only the correspondence between the two RDMs. The permutations
    are drawn at random (with replacement: for few conditions, e.g. 3! = 6 relabellings, many
    repeat) and the observed labelling counts as one of them, the ``+ 1`` in the p-value, so a
    p-value is never 0 and is valid (Phipson & Smyth 2010). A null value within a relative
    1e-12 of the observed one counts as equal, because equal statistics can differ in rounding.

    Spearman and Pearson cost one gather and dot product per permutation (about 0.3 s per 1,000
    permutations of a 92-condition RDM, 4,186 dissimilarities); tau-a a sort and a merge sort
    each, some 2-5 s per 1,000 permutations of the same RDM on one core.

    Examples
    --------
    >>> a = vector_to_rdm(np.arange(1.0, 11.0))        # 5 conditions
    >>> result = rdm_permutation_test(a, a, method="pearson", n_permutations=99, seed=0)
    >>> round(result.statistic, 12), result.null_distribution.shape     # 1 up to rounding
    (1.0, (99,))
    >>> bool(result.p_value <= 0.05)
    True
    """
    method = _check_metric(method, COMPARISON_METHODS, "method")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, numbers.Integral) or n_permutations < 1:
        raise ValueError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    va, vb, n = _check_pair(a, b)
    comparison = _Comparison(va, vb, method)
    observed = float(comparison.statistics(np.arange(va.size)[np.newaxis, :])[0])
    if np.isnan(observed):
        raise ValueError(f"the {method} correlation is undefined: all dissimilarities of one RDM are equal")
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    per_batch = max(1, _BATCH_ELEMENTS // va.size)
    for start in range(0, n_permutations, per_batch):
        size = min(per_batch, n_permutations - start)
        perms = rng.permuted(np.broadcast_to(np.arange(n), (size, n)), axis=1)
        null[start:start + size] = comparison.statistics(_permuted_pair_index(perms, n))
    tolerance = _TIE_RTOL * max(1.0, abs(observed))
    p_value = (1 + int(np.sum(null >= observed - tolerance))) / (1 + n_permutations)
    return RDMPermutationResult(statistic=observed, p_value=p_value, null_distribution=null,
                                method=method, n_permutations=n_permutations)
