"""Structure and function of a simulated network: its synaptic graph, its spike-count correlations, their agreement.

A simulation gives both sides of a question connectomics asks of real brains: how far does the
wiring explain the activity? :func:`structural_matrix` sums the synapses between every pair of
neurons into a signed weight matrix ``W[pre, post]``; :func:`spike_count_matrix` bins the spikes
and :func:`functional_connectivity` correlates the binned counts of every pair (Pearson, the
"noise correlation" of the field when the bins are trials of one condition);
:func:`structure_function_agreement` compares the two over every pair of distinct neurons.

The comparison is on the undirected, unsigned structural strength ``|W| + |W|.T`` (a
correlation has no direction, and an inhibitory synapse also couples two neurons' counts)
against the correlation, by Pearson's and Spearman's coefficients, and as the mean correlation
of connected against unconnected pairs. Neurons that never spike have no defined correlation
and are left out of the comparison (reported as ``n_silent``).

Example
-------
A chain 0 -> 1 -> 2 where each neuron spikes in the bin after its input; 3 fires alone:

>>> W = structural_matrix([0, 1], [1, 2], [1.0, 1.0], n_neurons=4)
>>> W.toarray().tolist()
[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
>>> rng = np.random.default_rng(0)
>>> drive = rng.random(200) < 0.3
>>> times, ids = [], []
>>> for t in np.flatnonzero(drive):
...     times += [t * 10.0 + 1, t * 10.0 + 2, t * 10.0 + 3]; ids += [0, 1, 2]
>>> for t in np.flatnonzero(rng.random(200) < 0.3):
...     times.append(t * 10.0 + 5); ids.append(3)
>>> counts = spike_count_matrix(times, ids, n_neurons=4, bin_ms=10.0, duration_ms=2000.0)
>>> fc = functional_connectivity(counts)
>>> round(float(fc[0, 1]), 3), abs(float(fc[0, 3])) < 0.2
(1.0, True)
>>> agreement = structure_function_agreement(W, fc)
>>> agreement.connected_mean_correlation > agreement.unconnected_mean_correlation
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse, stats

__all__ = ["structural_matrix", "spike_count_matrix", "functional_connectivity", "structure_function_agreement",
           "StructureFunctionAgreement", "group_matrix", "MAX_DENSE_NEURONS"]

#: the functional matrix is dense n x n float64: 8,000 neurons are 512 MB
MAX_DENSE_NEURONS = 8_000


def _check_n(n_neurons: Any, *, limit: int = MAX_DENSE_NEURONS) -> int:
    if not isinstance(n_neurons, (int, np.integer)) or n_neurons < 1:
        raise ValueError(f"n_neurons must be an integer >= 1, got {n_neurons!r}")
    if n_neurons > limit:
        raise ValueError(f"{n_neurons} neurons need a dense {n_neurons} x {n_neurons} matrix "
                         f"({n_neurons ** 2 * 8 / 2**30:.1f} GiB); the limit is {limit}: choose fewer neurons")
    return int(n_neurons)


def _index_column(values: Any, name: str, n: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.dtype.kind == "f" and array.size:
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise ValueError(f"{name} must hold integer neuron ids")
    elif array.dtype.kind not in "iu" and array.size:
        raise ValueError(f"{name} must hold integer neuron ids, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n):
        raise ValueError(f"{name} holds ids outside [0, {n}): min {array.min()}, max {array.max()}")
    return array


def structural_matrix(pre: Any, post: Any, weights: Any, *, n_neurons: int) -> sparse.csr_matrix:
    """The signed weight matrix ``W[pre, post]``: the sum of the weights of every synapse.

    Parameters
    ----------
    pre, post : 1-D integer arrays
        Presynaptic and postsynaptic neuron of each synapse, ids in ``[0, n_neurons)``.
    weights : 1-D float array
        Each synapse's weight, signed (inhibitory < 0), finite.
    n_neurons : int

    Returns
    -------
    scipy.sparse.csr_matrix (n_neurons, n_neurons), float64

    Example
    -------
    >>> structural_matrix([0, 0, 1], [1, 1, 0], [0.5, 0.25, -1.0], n_neurons=2).toarray().tolist()
    [[0.0, 0.75], [-1.0, 0.0]]
    """
    if not isinstance(n_neurons, (int, np.integer)) or n_neurons < 1:
        raise ValueError(f"n_neurons must be an integer >= 1, got {n_neurons!r}")
    pre_ids = _index_column(pre, "pre", n_neurons)
    post_ids = _index_column(post, "post", n_neurons)
    w = np.asarray(weights, dtype=np.float64)
    if not (len(pre_ids) == len(post_ids) == len(w)):
        raise ValueError(f"pre, post and weights must have the same length, got {len(pre_ids)}, {len(post_ids)} "
                         f"and {len(w)}")
    if not np.isfinite(w).all():
        raise ValueError("weights hold NaN or infinite values")
    return sparse.coo_matrix((w, (pre_ids, post_ids)), shape=(n_neurons, n_neurons)).tocsr()


def spike_count_matrix(spike_times_ms: Any, spike_ids: Any, *, n_neurons: int, bin_ms: float,
                       duration_ms: float, start_ms: float = 0.0) -> np.ndarray:
    """Spikes per bin and neuron, ``(n_bins, n_neurons)`` float64, bins ``[start + i*bin, start + (i+1)*bin)``.

    An incomplete last bin is dropped; spikes outside ``[start_ms, start_ms + n_bins * bin_ms)``
    are not counted.

    Example
    -------
    >>> spike_count_matrix([1.0, 2.0, 12.0, 25.0], [0, 0, 1, 0], n_neurons=2, bin_ms=10.0,
    ...                    duration_ms=25.0).tolist()
    [[2.0, 0.0], [0.0, 1.0]]
    """
    n = _check_n(n_neurons)
    for name, value in (("bin_ms", bin_ms), ("duration_ms", duration_ms)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not math.isfinite(start_ms):
        raise ValueError(f"start_ms must be finite, got {start_ms!r}")
    n_bins = int(math.floor(duration_ms / bin_ms + 1e-9))
    if n_bins < 2:
        raise ValueError(f"duration_ms={duration_ms} holds {n_bins} bin(s) of bin_ms={bin_ms}; correlations need >= 2")
    times = np.asarray(spike_times_ms, dtype=np.float64)
    ids = _index_column(spike_ids, "spike_ids", n)
    if times.shape != ids.shape:
        raise ValueError(f"spike_times and spike_ids must have the same length, got {times.shape} and {ids.shape}")
    if not np.isfinite(times).all():
        raise ValueError("spike_times hold NaN or infinite values")
    bins = np.floor((times - start_ms) / bin_ms).astype(np.int64)
    keep = (bins >= 0) & (bins < n_bins)
    counts = np.bincount(bins[keep] * n + ids[keep], minlength=n_bins * n)
    return counts.reshape(n_bins, n).astype(np.float64)


def functional_connectivity(counts: Any) -> np.ndarray:
    """Pearson correlation of every pair of columns of ``counts`` (bins x neurons).

    A neuron whose count never changes (silent, or as regular as a clock at this bin width) has
    no defined correlation: its row and column are NaN, the diagonal is 1 elsewhere.

    Example
    -------
    >>> fc = functional_connectivity(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 0.0]]))
    >>> np.round(fc, 3).tolist()
    [[1.0, 1.0, nan], [1.0, 1.0, nan], [nan, nan, nan]]
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"counts must be 2-D (bins, neurons), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"counts need >= 2 bins for a correlation, got {x.shape[0]}")
    _check_n(x.shape[1])
    if not np.isfinite(x).all():
        raise ValueError("counts hold NaN or infinite values")
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred ** 2).sum(axis=0))
    constant = norms <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))
    norms[constant] = np.inf
    fc = (centred.T @ centred) / np.outer(norms, norms)
    np.clip(fc, -1.0, 1.0, out=fc)
    fc[constant, :] = np.nan
    fc[:, constant] = np.nan
    np.fill_diagonal(fc, np.where(constant, np.nan, 1.0))
    return fc


@dataclass(frozen=True)
class StructureFunctionAgreement:
    """How far the wiring explains the correlations, over pairs of distinct active neurons.

    ``pearson_r``/``spearman_rho`` correlate the structural strength ``|W_ij| + |W_ji|`` with the
    functional correlation; ``connected_*``/``unconnected_*`` split the pairs by whether any
    synapse joins them; ``n_silent`` neurons had no defined correlation and were left out.
    """

    pearson_r: float
    spearman_rho: float
    connected_mean_correlation: float
    unconnected_mean_correlation: float
    n_pairs: int
    n_connected_pairs: int
    n_silent: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def structure_function_agreement(structural: Any, functional: Any) -> StructureFunctionAgreement:
    """Compare a structural weight matrix with a functional correlation matrix (see the module).

    Example
    -------
    >>> W = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> fc = np.array([[1.0, 0.8, 0.1], [0.8, 1.0, 0.0], [0.1, 0.0, 1.0]])
    >>> a = structure_function_agreement(W, fc)
    >>> a.n_pairs, a.n_connected_pairs, round(a.connected_mean_correlation, 2), round(a.unconnected_mean_correlation, 2)
    (3, 1, 0.8, 0.05)
    """
    w = structural.toarray() if sparse.issparse(structural) else np.asarray(structural, dtype=np.float64)
    fc = np.asarray(functional, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"the structural matrix must be square, got shape {w.shape}")
    if fc.shape != w.shape:
        raise ValueError(f"the structural matrix {w.shape} and the functional matrix {fc.shape} must have the same shape")
    if not np.isfinite(w).all():
        raise ValueError("the structural matrix holds NaN or infinite values")
    strength = np.abs(w) + np.abs(w).T
    active = ~np.isnan(np.diag(fc))         # functional_connectivity marks silent neurons with NaN
    upper = np.triu(np.ones_like(strength, dtype=bool), k=1) & np.outer(active, active)
    s, f = strength[upper], fc[upper]
    valid = np.isfinite(f)
    s, f = s[valid], f[valid]
    if len(f) < 3:
        raise ValueError(f"only {len(f)} pairs of active neurons: at least 3 are needed to compare structure "
                         f"and function")
    connected = s > 0

    def correlation(fn):
        if np.ptp(s) == 0 or np.ptp(f) == 0:
            return float("nan")
        return float(fn(s, f)[0])
    return StructureFunctionAgreement(
        pearson_r=correlation(stats.pearsonr), spearman_rho=correlation(stats.spearmanr),
        connected_mean_correlation=float(f[connected].mean()) if connected.any() else float("nan"),
        unconnected_mean_correlation=float(f[~connected].mean()) if (~connected).any() else float("nan"),
        n_pairs=int(len(f)), n_connected_pairs=int(connected.sum()), n_silent=int((~active).sum()))


def group_matrix(matrix: Any, groups: Any, *, reduce: str = "sum") -> tuple[np.ndarray, np.ndarray]:
    """Collapse a neuron x neuron matrix to group x group (e.g. population) by summing or averaging.

    Returns the group labels (sorted) and the ``(n_groups, n_groups)`` matrix; with
    ``reduce="mean"`` the diagonal blocks average over distinct pairs only.

    Example
    -------
    >>> labels, m = group_matrix(np.ones((3, 3)) - np.eye(3), [0, 0, 1])
    >>> labels.tolist(), m.tolist()
    ([0, 1], [[2.0, 2.0], [2.0, 0.0]])
    """
    m = matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix, dtype=np.float64)
    g = np.asarray(groups)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or g.shape != (m.shape[0],):
        raise ValueError(f"groups must give one group per row of the square matrix: matrix {m.shape}, groups {g.shape}")
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    labels, index = np.unique(g, return_inverse=True)
    k = len(labels)
    one_hot = np.zeros((len(g), k))
    one_hot[np.arange(len(g)), index] = 1.0
    values = np.nan_to_num(m, nan=0.0)
    total = one_hot.T @ values @ one_hot
    if reduce == "sum":
        return labels, total
    present = (~np.isnan(m)).astype(np.float64)
    np.fill_diagonal(present, 0.0)
    pairs = one_hot.T @ present @ one_hot
    diagonal_self = one_hot.T @ np.diag(np.nan_to_num(np.diag(m))) @ one_hot
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(pairs > 0, (total - diagonal_self) / pairs, np.nan)
    return labels, mean
