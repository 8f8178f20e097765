"""The PNG of a simulation: a spike raster of a subsample of neurons over the population rates.

The raster shows at most :data:`RASTER_NEURONS_PER_POPULATION` neurons of each recorded
population (evenly spaced through it) during the first :data:`RASTER_WINDOW_MS` of the run, so
the figure stays legible, and cheap to collect, however large the network and long the run.

Example
-------
>>> rng = np.random.default_rng(0)
>>> sample = raster_sample([("exc", 0, 80), ("inh", 80, 20)])
>>> len(sample), sample[:3].tolist()
(70, [0, 2, 3])
>>> times, ids = np.sort(rng.uniform(0, 200, 500)), rng.integers(0, 100, 500)
>>> png = raster_figure(times, ids, populations=[("exc", 0, 80), ("inh", 80, 20)], sample=sample,
...                     window_ms=200.0, bin_ms=10.0, rates=rng.uniform(0, 20, (20, 2)))
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from services.common.figures import new_figure, png_bytes

__all__ = ["RASTER_NEURONS_PER_POPULATION", "RASTER_WINDOW_MS", "raster_figure", "raster_sample"]

RASTER_NEURONS_PER_POPULATION = 50
RASTER_WINDOW_MS = 1000.0
#: Rate traces drawn at most this many bins long (longer runs are averaged down).
_MAX_RATE_POINTS = 2000


def raster_sample(populations: Sequence[tuple[str, int, int]], *,
                  per_population: int = RASTER_NEURONS_PER_POPULATION) -> np.ndarray:
    """Sorted global ids of the neurons drawn: up to ``per_population`` of each (name, offset, size)."""
    ids = [offset + np.unique(np.linspace(0, size - 1, min(size, per_population)).round().astype(np.int64))
           for _, offset, size in populations]
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def raster_figure(times_ms: np.ndarray, ids: np.ndarray, *, populations: Sequence[tuple[str, int, int]],
                  sample: np.ndarray, window_ms: float, bin_ms: float, rates: np.ndarray,
                  rate_names: Sequence[str] | None = None, title: str = "") -> bytes:
    """Raster of the spikes (``times_ms``, global ``ids``) of ``sample`` above the rates per bin.

    ``populations`` are the recorded (name, offset, size), in drawing order; ``rates`` is
    (n_bins, n_populations) in Hz with ``rate_names`` naming its columns (default: ``populations``).
    """
    fig = new_figure(figsize=(9, 6.5))
    ax_raster, ax_rates = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.2, 1]})
    row = np.searchsorted(sample, ids)           # rank of each neuron in the sample: its raster row
    ticks, labels = [], []
    for k, (name, offset, size) in enumerate(populations):
        lo, hi = np.searchsorted(sample, [offset, offset + size])
        if hi == lo:
            continue
        sel = (ids >= offset) & (ids < offset + size)
        ax_raster.scatter(times_ms[sel], row[sel], s=1.5, marker="|", color=f"C{k % 10}", linewidths=0.6)
        ticks.append((lo + hi - 1) / 2)
        labels.append(name)
    ax_raster.set_xlim(0, window_ms)
    ax_raster.set_ylim(-0.5, max(len(sample), 1) - 0.5)
    ax_raster.set_yticks(ticks, labels, fontsize=7)
    ax_raster.invert_yaxis()
    ax_raster.set_xlabel("time (ms)")
    ax_raster.set_title(title or f"spikes of {len(sample)} sampled neurons")

    names = list(rate_names if rate_names is not None else [p[0] for p in populations])
    n_bins = rates.shape[0]
    step = max(1, -(-n_bins // _MAX_RATE_POINTS))
    shown = rates[: n_bins // step * step].reshape(-1, step, rates.shape[1]).mean(axis=1) if n_bins >= step \
        else rates
    t = (np.arange(shown.shape[0]) + 0.5) * bin_ms * step
    for k, name in enumerate(names):
        ax_rates.plot(t, shown[:, k], lw=0.8, color=f"C{k % 10}", label=name)
    ax_rates.set_xlabel("time (ms)")
    ax_rates.set_ylabel("rate (Hz)")
    ax_rates.set_xlim(0, max(n_bins * bin_ms, bin_ms))
    if names:
        ax_rates.legend(fontsize=6, ncol=min(5, len(names)), loc="upper right", frameon=False)
    fig.tight_layout()
    return png_bytes(fig)
