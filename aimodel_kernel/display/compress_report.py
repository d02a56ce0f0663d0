"""The report of ``%compress``: one row per variant, the choice and the size / latency / metric
plot."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import html_table, text_table

HEADER = ["variant", "size", "× size", "params", "sparsity", "p50 b1 ms", "p95 b1 ms",
          "p50 b256 ms", "p95 b256 ms", "× speed b256", "METRIC", "drop", "agreement",
          "max |Δ| out", "status"]


def _size(n: int | None) -> view.RichCell | None:
    """A file size: sorted by bytes, shown in KB or MB."""
    if n is None:
        return None
    return view.cell(n, text=f"{n / 1024:.1f} KB" if n < 1024 * 1024
                     else f"{n / 1024 / 1024:.2f} MB")


def _num(value: float | None, fmt: str) -> view.RichCell | None:
    """A measurement: sorted by its value, shown with ``fmt``; missing is empty."""
    return None if value is None else view.cell(value, text=format(value, fmt))


class CompressReport(Report):
    """Shows a :class:`~aimodel_kernel.engine.compression.result.CompressResult`."""

    kind: ClassVar[str] = "compress"
    title: ClassVar[str] = "Compression"

    def _points(self, drop: float | None) -> view.RichCell | None:
        """The metric's change from the original (``-drop``), in points for accuracy."""
        if drop is None:
            return None
        if self.result.metric == "accuracy":
            return view.cell(0.0 - drop, text=f"{(0.0 - drop) * 100:+.1f} pt")
        return view.cell(0.0 - drop, text=f"{0.0 - drop:+.3g}")

    def summary(self) -> str:
        r = self.result
        ok = sum(v.ok for v in r.variants[1:])
        failed = len(r.variants) - 1 - ok
        line = (f"{r.model_class}: {ok} variant{'s' if ok != 1 else ''} checked on "
                f"{r.n_check:,} rows ({r.metric}, {r.threads} thread"
                f"{'s' if r.threads != 1 else ''})")
        if failed:
            line += f", {failed} failed"
        return line

    def choice(self) -> str:
        r = self.result
        text = f"chosen {r.reason}" if r.chosen else r.reason
        if r.export_path:
            text += f"\nwritten to {r.export_path}"
        return text

    def view_status(self) -> view.Status:
        """``error`` when no variant could be built and checked; ``warning`` when some failed
        or none kept the metric within ``--max-drop``."""
        r = self.result
        tried = r.variants[1:]
        if tried and not any(v.ok for v in tried):
            return "error"
        if not all(v.ok for v in tried) or (tried and not r.chosen):
            return "warning"
        return "ok"

    def registered(self) -> str | None:
        r = self.result
        if not r.versions:
            return None
        return ("registered: " + ", ".join(r.versions)
                + (f" (parent {r.parent})" if r.parent else ""))

    def sections(self) -> list[view.Section]:
        lines = [self.choice(), *([self.registered()] if self.registered() else [])]
        return [view.table("Variants", *self.rows()), view.text("Choice", "\n".join(lines))]

    def rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and one row per variant; numbers stay numbers (shown formatted)."""
        r = self.result
        orig = r.original
        header = [r.metric if h == "METRIC" else h for h in HEADER]
        rows = []
        for v in r.variants:
            d = v.to_dict(orig)
            if not v.ok:
                rows.append([v.name, *[None] * (len(header) - 2),
                             view.cell(f"failed: {v.reason}", status="bad")])
                continue
            rows.append([
                v.name, _size(v.size_bytes), _num(d.get("size_ratio"), ".2f"),
                v.params or None, _num(v.sparsity, ".0%") if v.params else None,
                _num(v.p50(1), ".3f"), _num(d.get("latency_ms_p95"), ".3f"),
                _num(v.p50(256), ".3f"), _num(d.get("latency_ms_p95_b256"), ".3f"),
                _num(d.get("speedup_b256"), ".2f"), _num(v.metrics.get(r.metric), ".4f"),
                None if v is orig else self._points(v.metric_drop),
                _num(v.agreement, ".1%"),
                _num(v.max_abs_diff, ".2g"), "ok" + (f" → {v.version}" if v.version else ""),
            ])
        return header, rows

    def text(self) -> str:
        r = self.result
        parts = [self.summary(), "", text_table(*self.rows()), "", self.choice()]
        parts += [self.registered()] if r.versions else []
        parts += [f"note: {n}" for n in r.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>',
                 html_table(*self.rows(), caption="Variants")]
        cls = "good" if r.chosen else "bad"
        parts += [f'<div class="{cls}">{escape(line)}</div>'
                  for line in self.choice().splitlines()]
        if r.versions:
            parts.append(f'<div class="note">{escape(self.registered())}</div>')
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        done = [v for v in r.variants if v.ok and v.p50() is not None and v.size_bytes]
        if len(done) < 2:
            return None
        fig, axes = new_figure(2, size=(4.6, 3.4))
        lat = [v.p50() for v in done]
        size = [v.size_bytes / 1024 for v in done]
        metric = [v.metrics.get(r.metric, float("nan")) for v in done]
        points = axes[0].scatter(lat, size, c=metric, cmap="viridis", s=36,
                                 edgecolors=["red" if v.name == r.chosen else "none"
                                             for v in done], linewidths=1.5)
        axes[0].set(title="size vs latency (colour: " + r.metric + ")",
                    xlabel="p50 latency at batch 256 (ms)", ylabel="file size (KB)")
        fig.colorbar(points, ax=axes[0], shrink=0.8)
        axes[1].scatter(lat, metric, s=36, color="tab:blue")
        axes[1].set(title=f"{r.metric} vs latency", xlabel="p50 latency at batch 256 (ms)",
                    ylabel=r.metric)
        for v, x, s, m in zip(done, lat, size, metric, strict=True):
            for ax, yv in ((axes[0], s), (axes[1], m)):
                ax.annotate(v.name, (x, yv), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        return to_png(fig)
