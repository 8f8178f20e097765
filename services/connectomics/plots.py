"""PNG figures of connectomes: matrix heatmaps, FA slices, structure against function.

Drawn off-screen with :mod:`services.common.figures` (no ``pyplot``: requests are served from
worker threads).

Example
-------
>>> png = heatmaps_figure({"count": np.array([[0, 3], [3, 0]]), "volume": np.array([[0, .1], [.1, 0]])},
...                       labels=[1, 2], title="two regions")
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm

from services.common.figures import new_figure, png_bytes

__all__ = ["heatmaps_figure", "fa_figure", "structure_function_figure"]

#: matrices larger than this are shown for their first rows/columns only
_MAX_SHOWN = 200


def _tick_labels(ax, labels: Sequence, n: int) -> None:
    if n <= 30:
        ax.set_xticks(range(n), [str(v) for v in list(labels)[:n]], rotation=90, fontsize=6)
        ax.set_yticks(range(n), [str(v) for v in list(labels)[:n]], fontsize=6)


def heatmaps_figure(matrices: Mapping[str, np.ndarray], *, labels: Sequence, title: str,
                    log_scale: Sequence[str] = ("count", "area", "faces")) -> bytes:
    """One heatmap per matrix, side by side; names in ``log_scale`` get a logarithmic colour scale."""
    fig = new_figure(figsize=(4.2 * len(matrices), 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(matrices)))
    for ax, (name, matrix) in zip(axes, matrices.items()):
        m = np.asarray(matrix, dtype=np.float64)[:_MAX_SHOWN, :_MAX_SHOWN]
        positive = m[m > 0]
        norm = (LogNorm(vmin=positive.min(), vmax=positive.max())
                if name in log_scale and positive.size and positive.max() > positive.min() else None)
        shown = np.where(m > 0, m, np.nan) if norm is not None else m
        image = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(name if len(matrix) <= _MAX_SHOWN else f"{name} (first {_MAX_SHOWN})", fontsize=9)
        _tick_labels(ax, labels, m.shape[0])
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def fa_figure(fa: np.ndarray, mask: np.ndarray | None = None, *, title: str = "FA") -> bytes:
    """Axial, coronal and sagittal middle slices of an FA map (x, y, z), with the mask's outline."""
    fa = np.asarray(fa, dtype=np.float64)
    fig = new_figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    cx, cy, cz = (s // 2 for s in fa.shape[:3])
    views = (("axial", fa[:, :, cz].T, None if mask is None else mask[:, :, cz].T),
             ("coronal", fa[:, cy, :].T, None if mask is None else mask[:, cy, :].T),
             ("sagittal", fa[cx, :, :].T, None if mask is None else mask[cx, :, :].T))
    for ax, (name, section, outline) in zip(axes, views):
        image = ax.imshow(section, cmap="gray", origin="lower", vmin=0.0, vmax=1.0)
        if outline is not None and outline.any() and not outline.all():
            ax.contour(outline.astype(float), levels=[0.5], colors="tab:orange", linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.8, label="fractional anisotropy")
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def structure_function_figure(structural: np.ndarray, functional: np.ndarray, *, labels: Sequence,
                              pair_strength: np.ndarray, pair_correlation: np.ndarray, title: str) -> bytes:
    """Structural and functional matrices side by side, and each pair's correlation against its strength."""
    fig = new_figure(figsize=(13, 4), layout="constrained")
    ax_s, ax_f, ax_p = fig.subplots(1, 3)
    s = np.asarray(structural, dtype=np.float64)
    bound = float(np.nanmax(np.abs(s))) if s.size and np.isfinite(s).any() and np.nanmax(np.abs(s)) > 0 else 1.0
    image = ax_s.imshow(s, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    fig.colorbar(image, ax=ax_s, shrink=0.8, label="summed weight (pre row, post column)")
    ax_s.set_title("structure", fontsize=9)
    image = ax_f.imshow(np.asarray(functional, dtype=np.float64), cmap="RdBu_r", vmin=-1, vmax=1,
                        interpolation="nearest")
    fig.colorbar(image, ax=ax_f, shrink=0.8, label="spike-count correlation")
    ax_f.set_title("function", fontsize=9)
    for ax in (ax_s, ax_f):
        _tick_labels(ax, labels, len(s))
    strength, correlation = np.asarray(pair_strength), np.asarray(pair_correlation)
    if len(strength) > 20_000:      # a readable scatter, the same subsample in every figure
        keep = np.random.default_rng(0).choice(len(strength), 20_000, replace=False)
        strength, correlation = strength[keep], correlation[keep]
    connected = strength > 0
    ax_p.scatter(strength[~connected], correlation[~connected], s=2, alpha=0.3, color="tab:gray", label="unconnected")
    ax_p.scatter(strength[connected], correlation[connected], s=4, alpha=0.6, color="tab:red", label="connected")
    ax_p.set_xlabel("|W_ij| + |W_ji|")
    ax_p.set_ylabel("spike-count correlation")
    ax_p.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)
