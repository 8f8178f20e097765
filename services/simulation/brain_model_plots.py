"""PNGs of the brain-model RPCs: an observer's beliefs and psychometric curves, predictive coding's fields.

Every figure is drawn off-screen on its own canvas (:mod:`services.common.figures`), so worker
threads draw them concurrently.

Example
-------
>>> grid = np.linspace(-2, 2, 41)
>>> curves = [("reference 0", 0.5 * (1 + np.tanh(grid)))]
>>> binned = binned_proportions(np.array([-1.0, -0.5, 0.5, 1.0] * 10), np.array([0, 0, 1, 1] * 10, bool), n_bins=2)
>>> [round(float(v), 2) for v in binned[1]]
[0.0, 1.0]
>>> psychometric_figure(grid, curves, data=[("reference 0", *binned)])[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["binned_proportions", "psychometric_figure", "posterior_figure", "fields_figure",
           "prediction_errors_figure", "bar_tuning_figure"]

#: sequences drawn by the posterior figure, fields by the fields figure
MAX_SEQUENCES = 5
MAX_FIELDS = 64


def binned_proportions(stimuli: np.ndarray, choices: np.ndarray, *, n_bins: int = 10
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean stimulus, proportion of "greater" and trial count in ``n_bins`` stimulus quantile bins.

    Bins with equal stimuli merge (quantiles of discrete stimuli coincide), so fewer may come back.
    """
    x = np.asarray(stimuli, dtype=float)
    c = np.asarray(choices, dtype=float)
    if x.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    centres, proportions, counts = [], [], []
    for b in np.unique(index):
        sel = index == b
        centres.append(x[sel].mean())
        proportions.append(c[sel].mean())
        counts.append(int(sel.sum()))
    return np.asarray(centres), np.asarray(proportions), np.asarray(counts, np.int64)


def psychometric_figure(grid: np.ndarray, curves: Sequence[tuple[str, np.ndarray]], *,
                        data: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]] | None = None,
                        references: Sequence[float] | None = None, title: str = "") -> bytes:
    """P("greater") against the stimulus: one line per curve, the data's binned proportions as points.

    ``curves`` are (label, probabilities on ``grid``); ``data`` are (label, bin centres,
    proportions, counts), drawn with binomial standard errors in the colour of the curve of the
    same position; ``references`` are marked by dotted vertical lines.
    """
    fig = new_figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for k, (label, p) in enumerate(curves):
        ax.plot(grid, p, color=f"C{k % 10}", lw=1.6, label=label)
    for k, (label, x, p, n) in enumerate(data or ()):
        se = np.sqrt(np.clip(p * (1 - p), 0, None) / np.maximum(n, 1))
        ax.errorbar(x, p, yerr=se, fmt="o", ms=4, color=f"C{k % 10}", capsize=2,
                    label=None if curves else label)
    for k, r in enumerate(references or ()):
        ax.axvline(r, color=f"C{k % 10}", ls=":", lw=0.8)
    ax.axhline(0.5, color="0.6", lw=0.6)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("stimulus")
    ax.set_ylabel('P("greater than reference")')
    ax.set_title(title or "psychometric curves", fontsize=9)
    if curves or data:
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return png_bytes(fig)


def posterior_figure(observations: np.ndarray, means: np.ndarray, variances: np.ndarray, *,
                     title: str = "") -> bytes:
    """Posterior mean +- 2 sd after k measurements (k = 0: the prior), measurements as points.

    ``observations`` is (n_sequences, n); ``means`` and ``variances`` (n_sequences, n + 1). At
    most :data:`MAX_SEQUENCES` sequences are drawn.
    """
    fig = new_figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    k = np.arange(means.shape[-1])
    for s in range(min(MAX_SEQUENCES, means.shape[0])):
        colour = f"C{s % 10}"
        sd = np.sqrt(variances[s])
        ax.fill_between(k, means[s] - 2 * sd, means[s] + 2 * sd, color=colour, alpha=0.15, lw=0)
        ax.plot(k, means[s], color=colour, lw=1.5, label=f"sequence {s}" if means.shape[0] > 1 else "posterior mean")
        ax.plot(k[1:], observations[s], "o", color=colour, ms=3, alpha=0.7)
    ax.set_xlabel("measurements seen")
    ax.set_ylabel("stimulus")
    ax.set_title(title or "posterior mean +- 2 sd, measurements")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return png_bytes(fig)


def fields_figure(fields: np.ndarray, r2: np.ndarray, *, title: str = "") -> bytes:
    """The level-1 fields as grey images on a grid, each titled with its Gabor R^2.

    Each field is scaled to its own largest absolute value (0 is mid-grey). At most
    :data:`MAX_FIELDS` are drawn.
    """
    n = min(len(fields), MAX_FIELDS)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig = new_figure(figsize=(1.2 * cols + 0.4, 1.25 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        limit = float(np.abs(fields[i]).max()) or 1.0
        ax.imshow(fields[i], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"{i}: {r2[i]:.2f}", fontsize=6, pad=2)
    fig.suptitle(title or "level-1 fields (unit: Gabor R^2)", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def prediction_errors_figure(relative_errors: np.ndarray, *, title: str = "") -> bytes:
    """Relative prediction error of each level (columns of ``relative_errors``) over the batches."""
    fig = new_figure(figsize=(6.5, 4))
    ax = fig.subplots()
    batches = np.arange(1, relative_errors.shape[0] + 1)
    names = ["image (e0)"] + [f"level {l} (e{l})" for l in range(1, relative_errors.shape[1])]
    for l in range(relative_errors.shape[1]):
        ax.plot(batches, np.maximum(relative_errors[:, l], 1e-12), lw=1.2, color=f"C{l % 10}", label=names[l])
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel("prediction error / power predicted")
    ax.set_title(title or "prediction errors during learning")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return png_bytes(fig)


def bar_tuning_figure(lengths: np.ndarray, responses: np.ndarray, units: Sequence[int], *, title: str = "") -> bytes:
    """Error and cause of each probed unit against bar length, with and without feedback.

    ``responses`` is (n_units, 4, n_lengths): error with feedback, cause with feedback, error
    without, cause without.
    """
    n = len(units)
    cols = min(n, 4)
    rows = int(math.ceil(n / cols))
    fig = new_figure(figsize=(3.2 * cols, 2.6 * rows + 0.5))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        error, cause, error_free, cause_free = responses[i]
        ax.plot(lengths, error, color="C0", lw=1.5, label="error, feedback")
        ax.plot(lengths, error_free, color="C1", lw=1.5, label="error, no feedback")
        ax.plot(lengths, cause, color="C0", ls="--", lw=1, label="cause, feedback")
        ax.plot(lengths, cause_free, color="C1", ls="--", lw=1, label="cause, no feedback")
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_title(f"unit {units[i]}", fontsize=8)
        ax.set_xlabel("bar length (pixels)", fontsize=7)
        ax.tick_params(labelsize=6)
        if i == 0:
            ax.legend(fontsize=5, frameon=False)
    fig.suptitle(title or "bar-length tuning of level-1 units", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)
