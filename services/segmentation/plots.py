"""PNG figures of segmentation results: sections of raw, boundaries and labels; training losses.

Figures are drawn off-screen with :mod:`services.common.figures` (no ``pyplot``: requests are
served from worker threads). Sections are ``(y, x)`` slices of ``(z, y, x)`` volumes.

Example
-------
>>> raw = np.random.default_rng(0).random((2, 16, 16))
>>> labels = np.repeat(np.arange(1, 3), 8)[None, None, :] * np.ones((2, 16, 1), dtype=np.uint64)
>>> png = sections_figure(raw, 1 - raw, {"0.5": labels}, z=[0, 1])
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["sections_figure", "label_colours", "loss_figure"]

#: sections wider than this many pixels are subsampled for the figure
_MAX_PIXELS = 512


def label_colours(labels: np.ndarray) -> np.ndarray:
    """RGB image of a label section: a fixed pseudo-random colour per id, black for 0."""
    labels = np.asarray(labels).astype(np.uint64)
    # a multiplicative hash spreads neighbouring ids over distant colours, the same in every figure
    hashed = (labels * np.uint64(2654435761)) & np.uint64(0xFFFFFF)
    rgb = np.stack([(hashed >> np.uint64(s)) & np.uint64(0xFF) for s in (16, 8, 0)], axis=-1).astype(np.float64)
    rgb = 0.25 + 0.75 * rgb / 255.0
    rgb[labels == 0] = 0.0
    return rgb


def _subsample(section: np.ndarray) -> np.ndarray:
    step = max(1, -(-max(section.shape[:2]) // _MAX_PIXELS))
    return section[::step, ::step]


def sections_figure(raw: Sequence[np.ndarray], boundaries: Sequence[np.ndarray],
                    labels: Mapping[str, Sequence[np.ndarray]], *, z: Sequence[int], title: str = "") -> bytes:
    """One row per z section: raw, the boundary map, then the labels of each named segmentation.

    Parameters
    ----------
    raw, boundaries : sequence of (y, x) arrays
        One per section, in the order of ``z``.
    labels : mapping of name to sequence of (y, x) label arrays
        E.g. ``{"threshold 0.5": [...]}``; one column each.
    z : sequence of int
        The sections' indices, for the row titles.
    """
    columns = 2 + len(labels)
    fig = new_figure(figsize=(2.6 * columns, 2.6 * len(z) + (0.4 if title else 0.1)))
    axes = fig.subplots(len(z), columns, squeeze=False)
    for row, index in enumerate(z):
        panels = [(_subsample(np.asarray(raw[row], dtype=np.float64)), "raw", "gray"),
                  (_subsample(np.asarray(boundaries[row], dtype=np.float64)), "boundaries", "magma")]
        panels += [(_subsample(label_colours(sections[row])), name, None) for name, sections in labels.items()]
        for col, (image, name, cmap) in enumerate(panels):
            ax = axes[row, col]
            if cmap is None:
                ax.imshow(image, interpolation="nearest")
            else:
                ax.imshow(image, cmap=cmap, interpolation="nearest",
                          vmin=0.0 if name == "boundaries" else None, vmax=1.0 if name == "boundaries" else None)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}, z={index}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def loss_figure(loss: np.ndarray, validation_iterations: Sequence[int] = (), validation_loss: Sequence[float] = (),
                *, title: str = "") -> bytes:
    """Training loss per iteration (light), its running mean, and the validation loss (points)."""
    loss = np.asarray(loss, dtype=np.float64)
    fig = new_figure(figsize=(6, 3.2))
    ax = fig.subplots()
    steps = np.arange(1, loss.size + 1)
    ax.plot(steps, loss, color="0.75", lw=0.8, label="training (per iteration)")
    window = max(1, loss.size // 20)
    if loss.size >= window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="C0", lw=1.5, label=f"training (mean of {window})")
    if len(validation_iterations):
        ax.plot(validation_iterations, validation_loss, "o-", color="C3", ms=3, lw=1, label="validation")
    ax.set_xlabel("iteration")
    ax.set_ylabel("balanced BCE loss")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)
