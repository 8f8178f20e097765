"""PNG figures drawn off-screen, safe from the worker threads that serve requests.

matplotlib's ``pyplot`` keeps global state and is not thread-safe; every service figure is
drawn with the object-oriented API on its own Agg canvas instead.

Example
-------
>>> fig = new_figure(figsize=(2, 2)); ax = fig.subplots(); _ = ax.plot([0, 1], [1, 0])
>>> png_bytes(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["new_figure", "png_bytes"]


def new_figure(**kwargs) -> Figure:
    """A figure attached to its own Agg canvas (``kwargs`` go to ``Figure``)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
