"""The report of ``%explain``: summary, the top features as a table, and the plots (mean |SHAP|
bars and a beeswarm for a global view; a waterfall, and LIME's weights, for one row)."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

import numpy as np

from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, html_table, text_table

POSITIVE, NEGATIVE = "#d62728", "#1f77b4"
MAX_POINTS = 1000  # beeswarm points per feature


def _value(x: Any) -> float | int:
    """A feature value for a table: whole numbers (one-hot columns, counts) without decimals."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 1e15 else x


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


class ExplainReport(Report):
    """Shows an :class:`~aimodel_kernel.engine.explanation.entry.ExplainResult`."""

    kind: ClassVar[str] = "explain"
    title: ClassVar[str] = "Explanation"
    # a global explanation's per-row arrays stay in r.values, out of the notebook
    PER_ROW: ClassVar[tuple[str, ...]] = ("values", "data", "base_values", "explained", "rows",
                                          "background_rows")

    # -- pieces --------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: what was explained, by which explainer, on how many rows."""
        r = self.result
        if r.scope == "local":
            said = f"{r.model_name} predicts {r.prediction!r}"
            if r.probability is not None:
                said += f" (probability {r.probability:.3f})"
            line = f"row {r.row}: {said}; {r.explainer} explains the {r.output}"
            if r.lime is not None:
                line += f", beside LIME ({r.lime.output})"
        else:
            rows = (f"{r.sample_size:,} rows" if r.sample_size == r.n_rows
                    else f"a seeded sample of {r.sample_size:,} of {r.n_rows:,} rows")
            line = f"{r.explainer} on {rows}: explains the {r.output}"
        if r.background_size:
            line += f"; background {r.background_size:,} rows"
        if r.logged and r.run_id:
            line += f"; logged to run {r.run_id[:8]}"
        return line

    def _why(self) -> str:
        return f"explainer: {self.result.explainer} ({self.result.reason})"

    def _more(self) -> str | None:
        hidden = len(self.result.features) - self.result.top
        return f"{hidden} more features in r.importance" if hidden > 0 else None

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the top features."""
        r = self.result
        if r.scope == "global":
            return ["feature", f"mean |SHAP| ({r.space})"], [[f, v] for f, v in r.top_features()]
        column = {f: j for j, f in enumerate(r.features)}
        value = "SHAP" if r.method == "shap" else "LIME weight"
        header = ["feature", "value", value]
        lime = r.lime if r.lime is not None else (r if r.method == "lime" else None)
        if r.lime is not None:
            header.append("LIME weight")
        if lime is not None:
            header.append("LIME rule")
        rows = []
        for f, _ in r.top_features():
            j = column[f]
            row: list[Any] = [f, _value(r.data[0, j]), float(r.values[0, j])]
            if r.lime is not None:
                row.append(float(r.lime.values[0, j]))
            if lime is not None:
                row.append(lime.conditions[j] if lime.conditions else "")
            rows.append(row)
        return header, rows

    def _total(self) -> str | None:
        r = self.result
        if r.scope != "local" or r.base_value is None:
            return None
        total = r.base_value + float(r.values[0].sum())
        if r.method == "lime":
            return (f"LIME intercept {fmt(r.base_value)} + weights {fmt(float(r.values[0].sum()))}"
                    f" = {fmt(total)} (local fit R² {fmt(r.score)})")
        return (f"base value {fmt(r.base_value)} + contributions {fmt(float(r.values[0].sum()))} "
                f"= {fmt(total)} ({r.space})")

    def _caption(self) -> str:
        return "Top features" if self.result.scope == "global" else f"Row {self.result.row}"

    def _after_table(self) -> list[str]:
        """The lines under the table: how the contributions add up, and what is not shown."""
        return [line for line in (self._total(), self._more()) if line]

    # -- the structured view -------------------------------------------------------------------
    def sections(self) -> list[view.Section]:
        out: list[view.Section] = [view.table(self._caption(), *self.table())]
        if self._after_table():
            out.append(view.text("Reading it", "\n".join(self._after_table())))
        return out

    def view_notes(self) -> list[str]:
        return [self._why(), *self.result.notes]

    def payload(self) -> dict[str, Any]:
        """The view, with a global explanation's per-row arrays left in ``r.values`` only."""
        out = super().payload()
        if self.result.scope == "global":
            out["data"] = {k: v for k, v in out["data"].items() if k not in self.PER_ROW}
        return out

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        parts = [self.summary(), self._why(), "", text_table(*self.table())]
        parts += self._after_table()
        parts += [f"note: {n}" for n in self.result.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>',
                 f'<div class="note">{escape(self._why())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        parts.append(html_table(*self.table(), caption=self._caption()))
        parts += [f'<div class="note">{escape(line)}</div>' for line in self._after_table()]
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        if not len(r.features):
            return None
        k = min(r.top, len(r.features))
        height = max(2.6, 0.3 * k + 1.2)
        if r.scope == "global":
            fig, axes = new_figure(2, size=(4.6, height))
            _bars(axes[0], r)
            _beeswarm(fig, axes[1], r)
            return to_png(fig)
        panels = [r] + ([r.lime] if r.lime is not None else [])
        fig, axes = new_figure(len(panels), size=(5.2, height))
        for ax, part in zip(axes, panels, strict=True):
            if part.method == "lime":
                _lime_bars(ax, part)
            else:
                _waterfall(ax, part)
        return to_png(fig)


# -- panels ------------------------------------------------------------------------------------
def _bars(ax: Any, r: Any) -> None:
    top = r.top_features()[::-1]
    ax.barh(range(len(top)), [v for _, v in top], color=POSITIVE)
    ax.set_yticks(range(len(top)), [_short(f) for f, _ in top], fontsize=8)
    ax.set_xlabel(f"mean |SHAP| ({r.space})", fontsize=8)
    ax.set_title("feature importance", fontsize=10)


def _offsets(x: np.ndarray, width: float = 0.38) -> np.ndarray:
    """Vertical offsets that spread points sharing an x-bin, so density shows (a beeswarm)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return np.zeros(len(x))
    bins = np.floor((x - x.min()) / np.ptp(x) * 49).astype(int)
    order = np.lexsort((x, bins))
    rank = np.empty(len(x), int)
    starts = np.r_[0, np.flatnonzero(np.diff(bins[order])) + 1]
    counts = np.diff(np.r_[starts, len(x)])
    rank[order] = np.arange(len(x)) - np.repeat(starts, counts)
    step = width / max(1, int(np.ceil(counts.max() / 2)))
    return np.where(rank % 2, -1, 1) * ((rank + 1) // 2) * step


def _beeswarm(fig: Any, ax: Any, r: Any) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    column = {f: j for j, f in enumerate(r.features)}
    top = [f for f, _ in r.top_features()][::-1]
    rows = np.arange(len(r.values))[:MAX_POINTS]
    for y, f in enumerate(top):
        j = column[f]
        x, v = r.values[rows, j], r.data[rows, j]
        lo, hi = np.nanpercentile(v, [5, 95]) if len(v) else (0.0, 1.0)
        shade = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(v), 0.5)
        ax.scatter(x, y + _offsets(x), c=shade, cmap="coolwarm", vmin=0, vmax=1, s=7,
                   linewidths=0, alpha=0.8)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(range(len(top)), [_short(f) for f in top], fontsize=8)
    ax.set_xlabel(f"SHAP value ({r.space})", fontsize=8)
    ax.set_title("SHAP values per row", fontsize=10)
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="coolwarm"), ax=ax, ticks=[0, 1],
                       aspect=30, pad=0.02)
    bar.ax.set_yticklabels(["low", "high"], fontsize=7)
    bar.set_label("feature value", fontsize=8)


def _items(r: Any) -> list[tuple[str, float]]:
    """(label, value) bars of one row, least important first, the rest folded into one bar."""
    values = r.values[0]
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[: r.top]
    items = [(f"{_short(r.features[j], 22)} = {fmt(_value(r.data[0, j]), 3)}", float(values[j]))
             for j in shown]
    rest = order[r.top:]
    if len(rest):
        items.append((f"{len(rest)} other features", float(values[rest].sum())))
    return items[::-1]


def _waterfall(ax: Any, r: Any) -> None:
    base = r.base_value or 0.0
    items = _items(r)
    start = base
    ends = np.cumsum([base] + [v for _, v in items])
    lo, hi = float(ends.min()), float(ends.max())
    pad = 0.22 * (hi - lo) or 0.1 * max(abs(hi), 1e-9)
    ax.set_xlim(lo - pad, hi + pad)
    for y, (_, value) in enumerate(items):
        ax.barh(y, value, left=start, color=POSITIVE if value >= 0 else NEGATIVE, height=0.7)
        ax.text(start + value, y, f" {value:+.3g}", va="center", fontsize=7,
                ha="left" if value >= 0 else "right")
        start += value
    ax.axvline(base, color="grey", lw=0.8, ls="--")
    ax.axvline(start, color="black", lw=0.8)
    ax.set_yticks(range(len(items)), [label for label, _ in items], fontsize=7)
    ax.set_xlabel(f"{r.space}: base {base:.3g} → {start:.3g}", fontsize=8)
    ax.set_title(f"SHAP, row {r.row}", fontsize=10)


def _lime_bars(ax: Any, r: Any) -> None:
    items = _items(r)
    ax.barh(range(len(items)), [v for _, v in items],
            color=[POSITIVE if v >= 0 else NEGATIVE for _, v in items], height=0.7)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(range(len(items)), [label for label, _ in items], fontsize=7)
    ax.set_xlabel(f"LIME weight ({r.space})", fontsize=8)
    ax.set_title(f"LIME, row {r.row} (fit R² {r.score:.2f})", fontsize=10)
