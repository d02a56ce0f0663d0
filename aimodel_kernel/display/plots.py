"""Matplotlib figures rendered to PNG bytes with the Agg canvas, never touching pyplot state."""

from __future__ import annotations

import io
from typing import Any


def new_figure(ncols: int = 1, nrows: int = 1, *, size: tuple[float, float] = (4.0, 3.2)):
    """A ``Figure`` with an Agg canvas and its axes (a flat list), sized per panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def to_png(fig: Any, dpi: int = 90) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
