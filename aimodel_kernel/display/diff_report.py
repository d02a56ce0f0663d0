"""The report of ``%diff``: a summary line, then one section per kind of change.

Each section is a :class:`~.diff_part.Part`, drawn three ways: an HTML ``<details>`` element
(open when it has something to show), a titled block of the text fallback, and the JSON view's
sections. The PNG holds the metric changes (relative to A) and, when rows were compared, the
flip matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any, ClassVar

import numpy as np

from ..engine.core.metric_names import MACHINE_METRICS, format_delta, higher_is_better, ordinal
from . import view
from .diff_part import Part
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt

MAX_ROWS = 20
MAX_INDICES = 20
MAX_BARS = 12
DIFF_STYLE = """<style>
.aimodel-report details{margin:.2em 0}
.aimodel-report details>summary{font-weight:600;cursor:pointer}
.aimodel-report del{color:#b00020}
.aimodel-report pre.aimodel-diff{background:#f7f7f7;padding:4px 8px;overflow-x:auto;font-size:12px}
.aimodel-report .add{color:#1b7f3b}
.aimodel-report .rem{color:#b00020}
.aimodel-report .hunk{color:#666}
</style>"""


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        text = str(value)
        return text if len(text) <= 80 else text[:79] + "…"
    return fmt(value)


def _shown(value: Any) -> Any:
    """A recorded value as a cell: numbers stay numbers; missing is ``—``; lists are text."""
    if value is None:
        return view.cell(None, text="—")
    return _value(value) if isinstance(value, dict | list) else value


def _delta_text(name: str, entry: dict[str, Any]) -> str:
    d = entry.get("delta")
    return "" if d is None else format_delta(name, d)


def _direction(name: str, entry: dict[str, Any]) -> str:
    """``good``, ``bad`` or ``""`` for a delta, by whether higher is better for the metric."""
    d = entry.get("delta")
    better = entry.get("higher_is_better", higher_is_better(name))
    if not d or better is None:
        return ""
    return "good" if (d > 0) == better else "bad"


def _delta_cell(name: str, entry: dict[str, Any]) -> view.RichCell:
    """The change as a cell: sorted by the delta, shown as ``+1.2 pt``, coloured good/bad."""
    return view.cell(entry.get("delta"), text=_delta_text(name, entry),
                     status=_direction(name, entry) or None)


def _interval(pair: Any) -> str:
    return f"{fmt(pair[0])} – {fmt(pair[1])}" if pair else ""


def _matrix(labels: list[Any], matrix: list[list[int]]) -> tuple[list[Any], np.ndarray]:
    """The labels and sub-matrix of the rows/columns that hold any non-zero count."""
    m = np.asarray(matrix)
    keep = np.flatnonzero(np.abs(m).sum(axis=0) + np.abs(m).sum(axis=1))[:MAX_ROWS]
    return [labels[i] for i in keep], m[np.ix_(keep, keep)]


class DiffReport(Report):
    """Renders :class:`~aimodel_kernel.engine.versions.diff.VersionDiff`."""

    kind: ClassVar[str] = "diff"
    title: ClassVar[str] = "Version diff"

    def summary_line(self) -> str:
        return self.result.summary

    def view_notes(self) -> list[str]:
        r = self.result
        return [*r.notes, *([f"logged as {r.logged_to} on {r.b}"] if r.logged_to else [])]

    def parts(self) -> list[Part]:
        """Every section in the order shown; sections that do not apply are left out."""
        builders: list[Callable[[], Part | None]] = [
            self._params, self._code, self._data, self._environment, self._lineage,
            self._metrics, self._per_class, self._confusion, self._flips, self._importance,
            self._fairness, self._compression, self._model_size,
        ]
        return [part for build in builders if (part := build()) is not None]

    def sections(self) -> list[view.Section]:
        return [section for part in self.parts() for section in part.sections()]

    def _sides(self, first: str) -> list[str]:
        return [first, self.result.a, self.result.b]

    def _params(self) -> Part:
        p = self.result.params
        rows = [[k, _shown(v["a"]), _shown(v["b"])] for k, v in p.items()]
        return Part(f"Changed parameters ({len(p)})", table=(self._sides("parameter"), rows),
                    strike=True)

    def _code(self) -> Part:
        code = self.result.code
        return Part("Code", code=[line for part in ("magic", "cell")
                                  for line in code.get(part, [])])

    def _data(self) -> Part | None:
        d = self.result.data
        if not d:
            return None
        a, b = d["a"], d["b"]
        rows: list[list[Any]] = [
            ["sha256", (a.get("sha256") or "")[:12], (b.get("sha256") or "")[:12]],
            ["shape", _value(a.get("shape")), _value(b.get("shape"))]]
        if d.get("columns"):
            rows.append(["columns added", "", ", ".join(d["columns"]["added"])])
            rows.append(["columns removed", ", ".join(d["columns"]["removed"]), ""])
        for label, c in list((d.get("class_balance") or {}).items())[:MAX_ROWS]:
            rows.append([f"class {label}",
                         view.cell(c["a"], text=f"{c['a']:,} ({c['a_share']:.1%})"),
                         view.cell(c["b"], text=f"{c['b']:,} ({c['b_share']:.1%})")])
        head = "same training data" if d["same"] else "different training data"
        return Part("Data" + ("" if d["same"] else " (changed)"), lines=[head],
                    table=(self._sides(""), rows), changed=not d["same"], sortable=False)

    def _environment(self) -> Part:
        env = self.result.environment
        rows = [[k, _shown(v["a"]), _shown(v["b"])] for k, v in env.items()]
        return Part(f"Environment ({len(env)})", table=(self._sides("package"), rows),
                    strike=True)

    def _lineage(self) -> Part:
        lin = self.result.lineage
        if not lin or not (lin.get("a") or lin.get("b")):
            return Part("Lineage")
        lines = [f"{self.result.a} ← " + (" ← ".join(lin["a"]) or "(no parent)"),
                 f"{self.result.b} ← " + (" ← ".join(lin["b"]) or "(no parent)")]
        if lin.get("relation"):
            lines.append(lin["relation"])
        for side, ref in (lin.get("unresolved") or {}).items():
            lines.append(f"parent {ref} of {getattr(self.result, side)} is not in the store")
        return Part("Lineage", lines=lines)

    def _metrics(self) -> Part:
        metrics = self.result.metrics
        ci = any("interval_a" in m for m in metrics.values())
        header = [*self._sides("metric"), "change", *(["95% CI A", "95% CI B"] if ci else [])]
        rows = []
        for name, m in metrics.items():
            extra = [_interval(m.get("interval_a")), _interval(m.get("interval_b"))] if ci else []
            rows.append([name, _shown(m["a"]), _shown(m["b"]), _delta_cell(name, m), *extra])
        shown = {n: m for n, m in metrics.items() if n not in MACHINE_METRICS}
        changed = sum(1 for m in shown.values() if m["delta"])
        counts = [f"{changed} changed"]
        for side in ("a", "b"):  # recorded on one version only (say, evaluated on one side)
            other = "b" if side == "a" else "a"
            alone = sum(1 for m in shown.values() if m[side] is not None and m[other] is None)
            if alone:
                counts.append(f"{alone} only on {getattr(self.result, side)}")
        return Part(f"Metrics ({', '.join(counts)})", table=(header, rows),
                    changed=bool(changed or len(counts) > 1))

    def _per_class(self) -> Part | None:
        pc = self.result.per_class
        if not pc:
            return None
        names = [m for m in ("precision", "recall", "f1", "roc_auc")
                 if any(m in v for v in pc.values())]
        header = ["class", *[f"{m} change" for m in names], "support"]
        rows = []
        for label, v in list(pc.items())[:MAX_ROWS]:
            sup = v.get("support", {})
            rows.append([label, *[_delta_cell(m, v[m]) if m in v else None for m in names],
                         f"{_value(sup.get('a'))} → {_value(sup.get('b'))}"])
        more = [f"(first {MAX_ROWS} of {len(pc)} classes)"] if len(pc) > MAX_ROWS else []
        return Part("Per class", table=(header, rows), more=more)

    def _confusion(self) -> Part | None:
        c = self.result.confusion
        if not c:
            return None
        labels, m = _matrix(c["labels"], c["delta"])
        if not labels:
            return Part("Confusion change")
        header = ["true \\ predicted", *[str(x) for x in labels]]
        rows = [[str(t), *[view.cell(v, text=f"{v:+d}" if v else "0",
                                     status=("good" if (v > 0) == (i == j) else "bad") if v
                                     else None)
                           for j, v in enumerate(row)]]
                for i, (t, row) in enumerate(zip(labels, m.tolist(), strict=True))]
        return Part("Confusion change (B − A)", table=(header, rows), sortable=False)

    def _flips(self) -> Part | None:
        f = self.result.flips
        if not f:
            return None
        n, k = f["n_rows"], f["n_flipped"]
        verb = "flipped" if f["kind"] == "classification" else "changed"
        lines = [f"{k:,} of {n:,} predictions {verb}"]
        if "fixed" in f:
            lines.append(f"fixed {f['fixed']:,}, broke {f['broke']:,}, wrong before and after "
                         f"{f['still_wrong']:,}; accuracy {f['accuracy_a']:.2%} → "
                         f"{f['accuracy_b']:.2%}")
        if "improved" in f:
            lines.append(f"closer to y {f['improved']:,}, further {f['worsened']:,}; RMSE "
                         f"{fmt(f['rmse_a'])} → {fmt(f['rmse_b'])}")
        if f["kind"] == "regression":
            lines.append(f"mean |change| {fmt(f['mean_abs_change'])}, "
                         f"max {fmt(f['max_abs_change'])}")
        shown = f["indices"][:MAX_INDICES]
        if shown:
            more = f" … ({len(f['indices']) - len(shown):,} more)" if k > len(shown) else ""
            lines.append("rows: " + ", ".join(str(i) for i in shown) + more)
        part = Part(f"Prediction flips ({k:,})", lines=lines, sortable=False)
        if f["kind"] == "classification" and k:
            labels, m = _matrix(f["labels"], f["matrix"])
            part.table = (["A \\ B", *[str(x) for x in labels]],
                          [[str(t), *row] for t, row in zip(labels, m.tolist(), strict=True)])
            part.caption = "flip matrix (A's class → B's class)"
        return part

    def _importance(self) -> Part | None:
        imp = self.result.importance
        if not imp:
            return None
        rows = [[m["feature"], view.cell(m["rank_a"], text=ordinal(m["rank_a"])),
                 view.cell(m["rank_b"], text=ordinal(m["rank_b"])),
                 view.cell(m["change"], status="good" if m["change"] > 0 else "bad",
                           text=f"↑{m['change']}" if m["change"] > 0 else f"↓{-m['change']}")]
                for m in imp["moved"][:MAX_ROWS]]
        lines = [imp["headline"] or "the importance ranking is unchanged"]
        for side in ("a", "b"):
            if imp[f"only_{side}"]:
                lines.append(f"only in {side.upper()}: " + ", ".join(imp[f"only_{side}"][:10]))
        return Part("Importance ranking", lines=lines,
                    table=(["feature", "rank A", "rank B", "change"], rows),
                    changed=bool(imp["moved"] or imp["only_a"] or imp["only_b"]))

    def _deltas(self, title: str, entries: dict[str, dict[str, Any]], first: str) -> Part:
        rows = [[k, _shown(e["a"]), _shown(e["b"]), _delta_cell(k, e)]
                for k, e in entries.items()]
        changed = any(e["delta"] or e["delta"] is None for e in entries.values())
        return Part(title, table=([*self._sides(first), "change"], rows), changed=changed)

    def _fairness(self) -> Part | None:
        fair = self.result.fairness
        return None if fair is None else self._deltas("Fairness", fair, "metric")

    def _compression(self) -> Part | None:
        comp = self.result.compression
        if comp is None:
            return None
        flat = {f"{variant} {k}": e
                for variant, measures in comp["variants"].items() for k, e in measures.items()}
        return self._deltas("Compression", flat, "variant / measure")

    def _model_size(self) -> Part | None:
        s = self.result.model_size
        if not s:
            return None
        line = f"{s['a']:,} → {s['b']:,} bytes ({s['delta']:+,}"
        line += f", ×{s['ratio']:.2f})" if s.get("ratio") else ")"
        tone = "" if not s["delta"] else ("bad" if s["delta"] > 0 else "good")
        return Part("Model file size", lines=[line], tone=tone)

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        r = self.result
        parts = [r.summary]
        parts += [f"note: {n}" for n in r.notes]
        for part in self.parts():
            parts += ["", f"== {part.title} ==", part.text() or "(no change)"]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [DIFF_STYLE, f'<div class="summary">{escape(r.summary)}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        for part in self.parts():
            is_open = " open" if part.open else ""
            parts.append(f"<details{is_open}><summary>{escape(part.title)}</summary>"
                         f"{part.html()}</details>")
        if r.logged_to:
            parts.append(f'<div class="note">logged as {escape(r.logged_to)} on {r.b}</div>')
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        bars = [(n, m) for n, m in r.metrics.items()
                if m["delta"] is not None and m["a"] and n not in MACHINE_METRICS][:MAX_BARS]
        f = r.flips
        flip_panel = bool(f and f["kind"] == "classification" and f["n_flipped"])
        if not bars and not flip_panel:
            return None
        fig, axes = new_figure(int(bool(bars)) + flip_panel, size=(4.4, 3.2))
        fig.set_layout_engine("none")
        width = fig.get_figwidth()
        axes[0].get_gridspec().update(left=1.3 / width, right=1 - 0.2 / width, top=0.88,
                                      bottom=0.16, wspace=0.55)
        for ax in axes:
            ax.set_position(ax.get_subplotspec().get_position(fig))
        if bars:
            _bars(axes[0], bars)
        if flip_panel:
            labels, m = _matrix(f["labels"], f["matrix"])
            _heatmap(axes[-1], m, [str(x) for x in labels])
        return to_png(fig)


def _bars(ax: Any, bars: list[tuple[str, dict[str, Any]]]) -> None:
    colors = {"good": "#1b7f3b", "bad": "#b00020", "": "#888888"}
    rel = [100 * m["delta"] / abs(m["a"]) for _, m in bars]
    ys = range(len(bars))
    ax.barh(ys, rel, height=0.6, color=[colors[_direction(n, m)] for n, m in bars])
    ax.set_yticks(ys, [n if len(n) <= 18 else n[:17] + "…" for n, _ in bars], fontsize=7)
    ax.set_ylim(max(len(bars), 4) - 0.5, -0.5)
    lim = 1.6 * max(max(abs(v) for v in rel), 1e-9)
    ax.set_xlim(-lim, lim)
    ax.axvline(0, color="grey", lw=0.8)
    for y, v, (n, m) in zip(ys, rel, bars, strict=True):
        ax.text(v, y, " " + _delta_text(n, m) + " ", va="center", fontsize=6,
                ha="left" if v >= 0 else "right")
    ax.set(title="metric change, B vs A", xlabel="change relative to A (%)")


def _heatmap(ax: Any, matrix: np.ndarray, labels: list[str]) -> None:
    ax.imshow(matrix, cmap="Oranges", interpolation="nearest")
    k = len(labels)
    short = [s if len(s) <= 10 else s[:9] + "…" for s in labels]
    ax.set_xticks(range(k), short, rotation=90 if k > 4 else 0, fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set(title="prediction flips", xlabel="B predicts", ylabel="A predicted")
    if k <= 12:
        top = matrix.max() or 1
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                ax.text(j, i, f"{value:,}", ha="center", va="center", fontsize=7,
                        color="white" if value > top / 2 else "black")
