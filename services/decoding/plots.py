"""PNG figures of decoding results: predicted versus true traces, confusion matrices, RDMs.

Figures are drawn off-screen with :mod:`services.common.figures` (no ``pyplot``: requests are
served from worker threads).

Example
-------
>>> png = confusion_figure(np.array([[5, 1], [0, 6]]), classes=[0, 1])
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["traces_figure", "confusion_figure", "rdm_figure"]


def traces_figure(truth: np.ndarray, predicted: np.ndarray, *, bin_width_s: float | None = None,
                  max_samples: int = 1000, names: Sequence[str] | None = None, title: str = "") -> bytes:
    """True (grey) and predicted (colour) traces of every output over the first tested stretch.

    Only the first ``max_samples`` samples where a prediction exists are drawn, so the figure
    stays readable for long recordings. ``bin_width_s`` labels the x axis in seconds.
    """
    truth = np.asarray(truth, dtype=np.float64).reshape(len(truth), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    tested = np.flatnonzero(np.isfinite(predicted).all(axis=1))
    shown = tested[:max_samples] if tested.size else np.arange(min(len(truth), max_samples))
    n_outputs = truth.shape[1]
    fig = new_figure(figsize=(9, 1.8 * n_outputs + 0.6))
    axes = fig.subplots(n_outputs, 1, sharex=True, squeeze=False)[:, 0]
    x = shown * bin_width_s if bin_width_s else shown
    for k, ax in enumerate(axes):
        ax.plot(x, truth[shown, k], color="0.55", lw=1.2, label="true")
        ax.plot(x, predicted[shown, k], color="tab:blue", lw=1.0, label="predicted")
        ax.set_ylabel(names[k] if names and k < len(names) else f"output {k}")
    axes[0].legend(loc="upper right", frameon=False, ncol=2)
    axes[-1].set_xlabel("time (s)" if bin_width_s else "sample")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return png_bytes(fig)


def confusion_figure(confusion: np.ndarray, *, classes: Sequence[int], title: str = "") -> bytes:
    """Row-normalised confusion matrix (true class down, predicted across), with the counts."""
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1, keepdims=True)
    fractions = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    size = 1.2 + 0.5 * len(classes)
    fig = new_figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes])
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(classes) <= 20:
        for i in ticks:
            for j in ticks:
                ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center",
                        color="white" if fractions[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return png_bytes(fig)


def rdm_figure(rdms: Sequence[np.ndarray], *, titles: Sequence[str], suptitle: str = "") -> bytes:
    """Dissimilarity matrices side by side, each with its own colour scale."""
    fig = new_figure(figsize=(4.2 * len(rdms), 4))
    axes = fig.subplots(1, len(rdms), squeeze=False)[0]
    for ax, rdm, title in zip(axes, rdms, titles):
        image = ax.imshow(rdm, cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("condition")
        ax.set_ylabel("condition")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return png_bytes(fig)
