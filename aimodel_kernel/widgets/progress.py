"""Live training progress in the cell: an ipywidgets bar and loss curve, or plain text lines.

The callback is called after every batch, so it only compares a clock reading unless an update
is due (at most every ``interval`` seconds, ~5 per second by default).
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, TextIO

from ..engine.core.events import BatchEnd, EpochEnd, Event, RunStarted, TrainingEnd
from .kernel_status import StatusChannel


def widget_frontend_likely() -> bool:
    """True inside a Jupyter kernel (a frontend may render widgets) with ipywidgets installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def format_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def sparkline_svg(series: dict[str, list[float]], width: int = 260, height: int = 60) -> str:
    """A tiny inline SVG of a few curves (cheap enough to redraw several times a second)."""
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
    values = [v for vs in series.values() for v in vs if v == v]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    n = max(len(vs) for vs in series.values())
    parts, legend = [], []
    for (name, vs), colour in zip(series.items(), colours, strict=False):
        if not vs:
            continue
        step = (width - 4) / max(n - 1, 1)
        pts = " ".join(
            f"{2 + i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
            for i, v in enumerate(vs)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        legend.append(f'<span style="color:{colour}">■ {html.escape(name)} {vs[-1]:.4g}</span>')
    return (f'<svg width="{width}" height="{height}" style="border:1px solid #eee">'
            + "".join(parts) + "</svg><div style='font-size:11px'>" + " ".join(legend) + "</div>")


class TrainingProgress:
    """An event callback that shows live progress, as a widget or as text.

    Parameters
    ----------
    interval : float
        Minimum seconds between two display updates.
    widget : bool, optional
        Force the widget (True) or text (False) view; by default a widget inside a kernel.
    stream : file, optional
        Where the text view writes (``sys.stdout``).
    """

    def __init__(self, *, interval: float = 0.2, widget: bool | None = None,
                 stream: TextIO | None = None, title: str = "training") -> None:
        self.interval = interval
        self.use_widget = widget_frontend_likely() if widget is None else widget
        self.stream = stream or sys.stdout
        self.title = title
        self.epochs = self.batches = 1
        self.start_epoch = 0
        self.epoch = self.batch = 0
        self.curves: dict[str, list[float]] = {}
        self.last_metrics: dict[str, float] = {}
        self.updates = 0
        self.opened = False  # RunStarted arrived: a view (and the status comm) await their end
        self._t0 = self._last = 0.0
        self._steps_done = 0
        self._view: Any = None
        self._handle: Any = None
        self.status = StatusChannel(title)
        # text lines pile up in the output, so they come at most every 2 s
        self._every = interval if self.use_widget else max(interval, 2.0)

    # -- the callback ------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        if type(event) is BatchEnd:
            self.epoch, self.batch = event.epoch, event.batch + 1
            now = time.perf_counter()
            if now - self._last >= self._every:
                self._last = now
                self._render(now)
        elif type(event) is EpochEnd:
            self._steps_done = (event.epoch - self.start_epoch) * self.batches
            self.epoch, self.batch = event.epoch, 0
            self.last_metrics = event.metrics
            for key in ("loss", "val_loss", "val_accuracy"):
                if key in event.metrics:
                    self.curves.setdefault(key, []).append(event.metrics[key])
            now = time.perf_counter()
            if now - self._last >= self._every or event.epoch == self.epochs:
                self._last = now
                self._render(now)
        elif type(event) is RunStarted:
            self.epochs, self.batches = event.epochs, max(event.batches_per_epoch, 1)
            self.start_epoch = self.epoch = event.start_epoch
            self._t0 = self._last = time.perf_counter()
            self._open()
        elif type(event) is TrainingEnd:
            self._close(event)

    # -- state -> text -----------------------------------------------------------------------
    def _fraction(self) -> float:
        total = (self.epochs - self.start_epoch) * self.batches
        done = (self.epoch - self.start_epoch) * self.batches + self.batch
        return min(done / total, 1.0) if total else 1.0

    def eta(self, now: float) -> float:
        """Seconds left at the rate so far (NaN before the first step)."""
        frac = self._fraction()
        return (now - self._t0) / frac * (1 - frac) if frac > 0 else float("nan")

    def status_line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = now - self._t0
        eta = self.eta(now)
        shown = min(self.epoch + (1 if self.batch else 0), self.epochs)
        parts = [f"epoch {shown}/{self.epochs}"]
        if self.batch:
            parts.append(f"batch {self.batch}/{self.batches}")
        for key in ("loss", "val_loss", "val_accuracy", "val_mae"):
            if key in self.last_metrics:
                parts.append(f"{key} {self.last_metrics[key]:.4g}")
        if "samples_per_second" in self.last_metrics:
            parts.append(f"{self.last_metrics['samples_per_second']:,.0f} samples/s")
        parts.append(f"elapsed {format_eta(elapsed)}")
        parts.append(f"ETA {format_eta(eta)}")
        return "  ".join(parts)

    # -- views -------------------------------------------------------------------------------
    def _open(self) -> None:
        self.opened = True
        self.status.start(self.start_epoch, self.epochs)
        if not self.use_widget:
            return
        import ipywidgets as w
        from IPython.display import display

        self._bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description=self.title[:20],
                                    layout=w.Layout(width="320px"))
        self._label = w.HTML()
        self._curve = w.HTML()
        self._view = w.VBox([w.HBox([self._bar, self._label]), self._curve])
        self._handle = display(self._view, display_id=True)

    def _render(self, now: float) -> None:
        self.updates += 1
        line = self.status_line(now)
        self.status.progress(self.epoch, self.epochs, self._fraction(), self.eta(now), line)
        if not self.use_widget:
            print(line, file=self.stream, flush=True)
            return
        with self._view.hold_sync():
            self._bar.value = self._fraction()
            self._label.value = f"<code>{html.escape(line)}</code>"
            if self.curves:
                self._curve.value = sparkline_svg(self.curves)

    def _close(self, event: TrainingEnd) -> None:
        line = self.status_line()
        summary = f"{self.title}: {event.status} — {line}"
        self.status.end(self.epoch, self.epochs, self._fraction(), line, event.status)
        if not self.use_widget:
            print(summary, file=self.stream, flush=True)
            return
        self._view.close()
        self._handle.update(
            {"text/plain": summary, "text/html": f"<code>{html.escape(summary)}</code>"},
            raw=True,
        )
