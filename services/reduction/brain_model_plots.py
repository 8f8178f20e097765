"""PNGs of the circuit-inference and learning-rule RPCs of the reduction service.

Drawn off-screen, each on its own canvas (:mod:`services.common.figures`), so worker threads
draw them concurrently.

Example
-------
>>> png = loss_figure(np.geomspace(1.0, 0.01, 20), np.geomspace(1.2, 0.02, 20))
>>> png[:4] == b"\\x89PNG"
True
>>> rng = np.random.default_rng(0)
>>> png = fixed_points_figure(rng.normal(size=(5, 40, 3)), rng.normal(size=(2, 3)), ["stable", "saddle"],
...                           rng.normal(size=(2, 3)) + 0j)
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["loss_figure", "activity_figure", "connectivity_figure", "fixed_points_figure", "learning_curves_figure",
           "hebbian_figure"]

#: colours of the fixed points by stability
STABILITY_COLOURS = {"stable": "C2", "marginal": "C0", "saddle": "C1", "unstable": "C3"}
#: trajectories drawn under the fixed points; units drawn in the activity figure
MAX_TRAJECTORIES = 30
MAX_UNITS = 6


def loss_figure(loss: np.ndarray, heldout_loss: np.ndarray | None = None, *, title: str = "") -> bytes:
    """Training (and held-out) loss after each epoch, on a log scale."""
    fig = new_figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, np.maximum(loss, 1e-300), color="C0", lw=1.5, label="training")
    if heldout_loss is not None and np.isfinite(heldout_loss).any():
        ax.plot(epochs, np.maximum(heldout_loss, 1e-300), color="C1", lw=1.5, label="held out")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("normalised squared error")
    ax.set_title(title or "circuit fit", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return png_bytes(fig)


def activity_figure(observed: np.ndarray, predicted: np.ndarray, *, units: Sequence[int] | None = None,
                    title: str = "") -> bytes:
    """Observed (points) against predicted (lines) rates of one trial, (n_steps, n_observed)."""
    n = observed.shape[1]
    shown = list(units if units is not None else range(n))[:MAX_UNITS]
    fig = new_figure(figsize=(7, 1.3 * len(shown) + 0.8))
    axes = np.atleast_1d(fig.subplots(len(shown), 1, sharex=True, squeeze=False)).ravel()
    t = np.arange(1, observed.shape[0] + 1)
    for ax, k in zip(axes, shown):
        ax.plot(t, observed[:, k], "o", ms=2.5, color="0.35", label="recorded")
        ax.plot(t, predicted[:, k], color="C0", lw=1.4, label="fitted network")
        ax.set_ylabel(f"unit {k}", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6, frameon=False, loc="upper right")
    axes[-1].set_xlabel("step")
    fig.suptitle(title or "recorded and predicted rates", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def connectivity_figure(fitted: np.ndarray, true: np.ndarray | None = None, *, title: str = "") -> bytes:
    """The fitted W as a heatmap; with the true W beside it and the scatter of their entries."""
    panels = 1 if true is None else 3
    fig = new_figure(figsize=(3.6 * panels, 3.4))
    axes = np.atleast_1d(fig.subplots(1, panels, squeeze=False)).ravel()
    limit = float(max(np.abs(fitted).max(), np.abs(true).max() if true is not None else 0.0)) or 1.0
    mats = [("fitted W", fitted)] if true is None else [("true W", true), ("fitted W", fitted)]
    for ax, (name, W) in zip(axes, mats):
        image = ax.imshow(W, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("from unit", fontsize=7)
        ax.set_ylabel("to unit", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.colorbar(image, ax=list(axes[:len(mats)]), shrink=0.8)
    if true is not None:
        ax = axes[2]
        ax.scatter(true.ravel(), fitted.ravel(), s=6, alpha=0.6)
        ax.plot([-limit, limit], [-limit, limit], color="0.6", lw=0.8)
        ax.set_xlabel("true weight", fontsize=7)
        ax.set_ylabel("fitted weight", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title or "connectivity", fontsize=9)
    return png_bytes(fig)


def _principal_plane(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top two principal directions (columns) of ``states`` (n, N); fewer dims padded."""
    mean = states.mean(axis=0)
    _, _, vt = np.linalg.svd(states - mean, full_matrices=False)
    basis = vt[:2].T
    if basis.shape[1] < 2:
        basis = np.hstack([basis, np.zeros((states.shape[1], 2 - basis.shape[1]))])
    return mean, basis


def fixed_points_figure(trajectories: np.ndarray, points: np.ndarray, stability: Sequence[str],
                        eigenvalues: np.ndarray, *, tau: float = 1.0, title: str = "") -> bytes:
    """Left: fixed points over the trajectories in their first two principal components; right: spectra.

    ``trajectories`` is any array ending in N (drawn as lines when it is (n_trials, n_steps, N));
    ``eigenvalues`` (k, N) are continuous-time, drawn as ``Re tau`` against ``Im tau``.
    """
    fig = new_figure(figsize=(10, 4.2))
    ax_state, ax_spectrum = fig.subplots(1, 2)
    flat = trajectories.reshape(-1, trajectories.shape[-1])
    mean, basis = _principal_plane(flat if len(flat) > 1 else np.vstack([flat, flat + 1e-9]))
    if trajectories.ndim == 3:
        for trial in trajectories[:MAX_TRAJECTORIES]:
            xy = (trial - mean) @ basis
            ax_state.plot(xy[:, 0], xy[:, 1], color="0.75", lw=0.6)
    else:
        xy = (flat - mean) @ basis
        ax_state.plot(xy[:, 0], xy[:, 1], ".", color="0.75", ms=2)
    drawn = set()
    for kind in ("stable", "marginal", "saddle", "unstable"):
        sel = np.asarray([s == kind for s in stability], dtype=bool)
        if sel.any():
            xy = (points[sel] - mean) @ basis
            ax_state.scatter(xy[:, 0], xy[:, 1], s=28, color=STABILITY_COLOURS[kind], edgecolor="k", lw=0.4,
                             label=f"{kind} ({int(sel.sum())})", zorder=3)
            ev = eigenvalues[sel] * tau
            ax_spectrum.scatter(ev.real.ravel(), ev.imag.ravel(), s=10, color=STABILITY_COLOURS[kind], alpha=0.7,
                                label=None if kind in drawn else kind)
            drawn.add(kind)
    ax_state.set_xlabel("PC 1")
    ax_state.set_ylabel("PC 2")
    ax_state.set_title(f"{len(points)} fixed and slow points", fontsize=9)
    if len(points):
        ax_state.legend(fontsize=7, frameon=False)
    ax_spectrum.axvline(0, color="0.5", lw=0.8)
    ax_spectrum.axhline(0, color="0.8", lw=0.5)
    ax_spectrum.set_xlabel("Re(eigenvalue) x tau")
    ax_spectrum.set_ylabel("Im(eigenvalue) x tau")
    ax_spectrum.set_title("linearised dynamics at each point", fontsize=9)
    fig.suptitle(title or "fixed points", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def learning_curves_figure(train_loss: Mapping[str, np.ndarray], update_angle: Mapping[str, np.ndarray], *,
                           least_squares_loss: float | None = None,
                           test_loss: Mapping[str, np.ndarray] | None = None, title: str = "") -> bytes:
    """Loss per epoch for each rule (log scale, least-squares floor dashed) beside its update angle."""
    fig = new_figure(figsize=(10, 4))
    ax_loss, ax_angle = fig.subplots(1, 2)
    for k, (rule, curve) in enumerate(train_loss.items()):
        epochs = np.arange(len(curve))
        ax_loss.plot(epochs, np.maximum(curve, 1e-300), color=f"C{k}", lw=1.5, label=rule)
        if test_loss is not None and rule in test_loss and np.isfinite(test_loss[rule]).all():
            ax_loss.plot(epochs, np.maximum(test_loss[rule], 1e-300), color=f"C{k}", lw=1, ls=":")
        ax_angle.plot(epochs, update_angle[rule], color=f"C{k}", lw=1.5, label=rule)
    if least_squares_loss is not None and least_squares_loss > 0:
        ax_loss.axhline(least_squares_loss, color="0.4", ls="--", lw=1, label="least squares")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (training; test dotted)")
    ax_loss.legend(fontsize=7, frameon=False)
    ax_angle.axhline(90, color="0.6", lw=0.8)
    ax_angle.set_ylim(0, 180)
    ax_angle.set_xlabel("epoch")
    ax_angle.set_ylabel("hidden update vs gradient (degrees)")
    ax_angle.legend(fontsize=7, frameon=False)
    fig.suptitle(title or "learning rules", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def hebbian_figure(alignment: np.ndarray, weights: np.ndarray, components: np.ndarray, *, rule: str,
                   title: str = "") -> bytes:
    """Alignment with PCA over epochs (per unit) beside each learned row and its principal component."""
    fig = new_figure(figsize=(10, 4))
    ax_align, ax_rows = fig.subplots(1, 2)
    epochs = np.arange(1, alignment.shape[0] + 1)
    for i in range(alignment.shape[1]):
        ax_align.plot(epochs, alignment[:, i], lw=1.4, color=f"C{i % 10}", label=f"unit {i}")
    ax_align.set_ylim(0, 1.02)
    ax_align.set_xlabel("epoch")
    ax_align.set_ylabel("principal-angle cosine" if rule == "subspace" else "|cos| with its component")
    ax_align.legend(fontsize=7, frameon=False)
    features = np.arange(weights.shape[1])
    for i in range(min(weights.shape[0], 5)):
        sign = 1.0 if rule == "subspace" or weights[i] @ components[i] >= 0 else -1.0
        ax_rows.plot(features, sign * weights[i], color=f"C{i % 10}", lw=1.4, label=f"learned {i}")
        if rule != "subspace":
            ax_rows.plot(features, components[i], color=f"C{i % 10}", ls="--", lw=1, label=f"component {i}")
    ax_rows.set_xlabel("input")
    ax_rows.set_ylabel("weight")
    ax_rows.legend(fontsize=6, frameon=False)
    fig.suptitle(title or f"Hebbian learning ({rule}) against PCA", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)
