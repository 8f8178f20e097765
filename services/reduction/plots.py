"""PNG figures of reduction results: latents over time, trajectories per condition, variance.

Example
-------
>>> latents = np.cumsum(np.random.default_rng(0).normal(size=(4, 30, 3)), axis=1)
>>> png = trajectories_figure(latents, conditions=[0, 0, 1, 1])
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["components_figure", "trajectories_figure", "variance_figure"]

_MAX_LINES = 60  # trials drawn per figure; more turn the plot into a blot
_MAX_CONTINUOUS_BINS = 400


def components_figure(latents: np.ndarray, *, n_show: int = 4, max_samples: int = 2000, title: str = "") -> bytes:
    """The first ``n_show`` latents over time (the first ``max_samples`` bins, trials stacked)."""
    flat = latents.reshape(-1, latents.shape[-1])[:max_samples]
    n_show = min(n_show, flat.shape[1])
    fig = new_figure(figsize=(9, 1.5 * n_show + 0.6))
    axes = fig.subplots(n_show, 1, sharex=True, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        ax.plot(flat[:, k], lw=0.8, color=f"C{k}")
        ax.set_ylabel(f"latent {k + 1}")
    axes[-1].set_xlabel("time bin")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return png_bytes(fig)


def trajectories_figure(latents: np.ndarray, *, conditions: Sequence[int] | None = None, title: str = "") -> bytes:
    """Trajectories in the first two latents (and the first three in 3-D), coloured by condition.

    ``latents`` is (n_trials, n_time, n_components); 2-D input (one continuous recording) is
    drawn as one trajectory of its first 400 bins.
    With conditions, each condition's mean trajectory is drawn bold over its trials.
    """
    if latents.ndim == 2:
        # one continuous recording: its first bins, or the figure is a ball of wool
        latents = latents[np.newaxis, :_MAX_CONTINUOUS_BINS]
        title = title or f"first {latents.shape[1]} bins"
    n_trials, _, n_components = latents.shape
    conditions = np.zeros(n_trials, dtype=int) if conditions is None else np.asarray(conditions)
    labels = np.unique(conditions)
    three_d = n_components >= 3
    fig = new_figure(figsize=(10 if three_d else 5, 4.5))
    ax2 = fig.add_subplot(1, 2 if three_d else 1, 1)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d") if three_d else None
    y = latents[..., 1] if n_components > 1 else np.zeros(latents.shape[:2])
    shown = np.linspace(0, n_trials - 1, min(n_trials, _MAX_LINES)).astype(int)
    for i, label in enumerate(labels):
        colour = f"C{i % 10}"
        members = np.flatnonzero(conditions == label)
        for t in np.intersect1d(members, shown):
            ax2.plot(latents[t, :, 0], y[t], color=colour, lw=0.5, alpha=0.35)
            if ax3 is not None:
                ax3.plot(latents[t, :, 0], latents[t, :, 1], latents[t, :, 2], color=colour, lw=0.5, alpha=0.35)
        mean = latents[members].mean(axis=0)
        ax2.plot(mean[:, 0], mean[:, 1] if n_components > 1 else np.zeros(len(mean)), color=colour, lw=2,
                 label=f"condition {label}" if len(labels) > 1 else "mean")
        ax2.plot(mean[0, 0], mean[0, 1] if n_components > 1 else 0, "o", color=colour, ms=4)
        if ax3 is not None:
            ax3.plot(mean[:, 0], mean[:, 1], mean[:, 2], color=colour, lw=2)
    ax2.set_xlabel("latent 1")
    ax2.set_ylabel("latent 2")
    if len(labels) <= 12:
        ax2.legend(frameon=False, fontsize=7)
    if ax3 is not None:
        ax3.set_xlabel("latent 1")
        ax3.set_ylabel("latent 2")
        ax3.set_zlabel("latent 3")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return png_bytes(fig)


def variance_figure(ratios: Sequence[float], *, title: str = "explained variance") -> bytes:
    """Explained variance ratio per component, and its cumulative sum."""
    ratios = np.asarray(ratios, dtype=float)
    fig = new_figure(figsize=(5, 3.5))
    ax = fig.subplots()
    index = np.arange(1, ratios.size + 1)
    ax.bar(index, ratios, color="C0", label="per component")
    ax.plot(index, np.cumsum(ratios), "o-", color="C1", label="cumulative")
    ax.set_xlabel("component")
    ax.set_ylabel("fraction of variance")
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return png_bytes(fig)
