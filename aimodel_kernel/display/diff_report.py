"""The report of ``%diff``: a summary line, then one section per kind of change.

Each section is an HTML ``<details>`` element, open when it has something to show, and a titled
block of the text fallback. The PNG holds the metric changes (relative to A) and, when rows were
compared, the flip matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any, ClassVar

import numpy as np

from ..engine.deltas import MACHINE_METRICS, format_delta, higher_is_better, ordinal
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, text_table

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


def _cell(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"


def _table(header: Sequence[str], rows: Sequence[str]) -> str:
    """An HTML table from a header and already rendered ``<tr>`` rows."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _interval(pair: Any) -> str:
    return f"{fmt(pair[0])} – {fmt(pair[1])}" if pair else ""


def _matrix(labels: list[Any], matrix: list[list[int]]) -> tuple[list[Any], np.ndarray]:
    """The labels and sub-matrix of the rows/columns that hold any non-zero count."""
    m = np.asarray(matrix)
    keep = np.flatnonzero(np.abs(m).sum(axis=0) + np.abs(m).sum(axis=1))[:MAX_ROWS]
    return [labels[i] for i in keep], m[np.ix_(keep, keep)]


class DiffReport(Report):
    """Renders :class:`~aimodel_kernel.engine.diff.VersionDiff`."""

    kind: ClassVar[str] = "diff"

    # -- sections: (title, text, html[, changed]); changed defaults to "text is not empty" ----
    def _sections(self) -> list[tuple[str, str, str, bool]]:
        builders: list[Callable[[], tuple | None]] = [
            self._params, self._code, self._data, self._environment, self._lineage,
            self._metrics, self._per_class, self._confusion, self._flips, self._importance,
            self._fairness, self._compression, self._model_size,
        ]
        out = []
        for build in builders:
            section = build()
            if section is not None:
                out.append((*section[:3], section[3] if len(section) > 3 else bool(section[1])))
        return out

    def _params(self):
        p = self.result.params
        header = ["parameter", self.result.a, self.result.b]
        rows = [[k, _value(v["a"]), _value(v["b"])] for k, v in p.items()]
        html = _table(header, [
            f"<tr>{_cell(k)}<td><del>{escape(a)}</del></td>{_cell(b, 'good')}</tr>"
            for k, a, b in rows
        ])
        return f"Changed parameters ({len(p)})", text_table(header, rows) if p else "", html

    def _code(self):
        code = self.result.code
        lines = [line for part in ("magic", "cell") for line in code.get(part, [])]
        if not lines:
            return "Code", "", ""

        def css(line: str) -> str:
            if line.startswith(("+++", "---", "@@")):
                return "hunk"
            return {"+": "add", "-": "rem"}.get(line[:1], "")

        html = '<pre class="aimodel-diff">' + "\n".join(
            f'<span class="{css(line)}">{escape(line)}</span>' for line in lines
        ) + "</pre>"
        return "Code", "\n".join(lines), html

    def _data(self):
        d = self.result.data
        if not d:
            return None
        a, b = d["a"], d["b"]
        head = "same training data" if d["same"] else "different training data"
        rows = [["sha256", (a.get("sha256") or "")[:12], (b.get("sha256") or "")[:12]],
                ["shape", _value(a.get("shape")), _value(b.get("shape"))]]
        if d.get("columns"):
            rows.append(["columns added", "", ", ".join(d["columns"]["added"])])
            rows.append(["columns removed", ", ".join(d["columns"]["removed"]), ""])
        for label, c in list((d.get("class_balance") or {}).items())[:MAX_ROWS]:
            rows.append([f"class {label}", f"{c['a']:,} ({c['a_share']:.1%})",
                         f"{c['b']:,} ({c['b_share']:.1%})"])
        header = ["", self.result.a, self.result.b]
        html = f"<div>{escape(head)}</div>" + _table(
            header, [f"<tr>{''.join(_cell(str(c)) for c in row)}</tr>" for row in rows])
        title = "Data" + ("" if d["same"] else " (changed)")
        return title, head + "\n" + text_table(header, rows), html, not d["same"]

    def _environment(self):
        env = self.result.environment
        header = ["package", self.result.a, self.result.b]
        rows = [[k, _value(v["a"]), _value(v["b"])] for k, v in env.items()]
        html = _table(header, [
            f"<tr>{_cell(k)}<td><del>{escape(a)}</del></td>{_cell(b, 'good')}</tr>"
            for k, a, b in rows
        ])
        return f"Environment ({len(env)})", text_table(header, rows) if env else "", html

    def _lineage(self):
        lin = self.result.lineage
        if not lin or not (lin.get("a") or lin.get("b")):
            return "Lineage", "", ""
        lines = [f"{self.result.a} ← " + (" ← ".join(lin["a"]) or "(no parent)"),
                 f"{self.result.b} ← " + (" ← ".join(lin["b"]) or "(no parent)")]
        if lin.get("relation"):
            lines.append(lin["relation"])
        for side, ref in (lin.get("unresolved") or {}).items():
            lines.append(f"parent {ref} of {getattr(self.result, side)} is not in the store")
        html = "".join(f"<div>{escape(x)}</div>" for x in lines)
        return "Lineage", "\n".join(lines), html

    def _metrics(self):
        metrics = self.result.metrics
        ci = any("interval_a" in m for m in metrics.values())
        header = ["metric", self.result.a, self.result.b, "change"]
        header += ["95% CI A", "95% CI B"] if ci else []
        rows, html_rows = [], []
        for name, m in metrics.items():
            extra = [_interval(m.get("interval_a")), _interval(m.get("interval_b"))] if ci else []
            row = [name, _value(m["a"]), _value(m["b"]), _delta_text(name, m), *extra]
            rows.append(row)
            html_rows.append("<tr>" + "".join(
                _cell(c, _direction(name, m) if i == 3 else "") for i, c in enumerate(row)
            ) + "</tr>")
        changed = sum(1 for name, m in metrics.items()
                      if (m["delta"] or m["delta"] is None) and name not in MACHINE_METRICS)
        title = f"Metrics ({changed} changed)"
        return title, text_table(header, rows) if rows else "", _table(header, html_rows), changed

    def _per_class(self):
        pc = self.result.per_class
        if not pc:
            return None
        names = [m for m in ("precision", "recall", "f1", "roc_auc")
                 if any(m in v for v in pc.values())]
        header = ["class", *[f"{m} change" for m in names], "support"]
        rows, html_rows = [], []
        for label, v in list(pc.items())[:MAX_ROWS]:
            sup = v.get("support", {})
            cells = [(_delta_text(m, v[m]) if m in v else "",
                      _direction(m, v[m]) if m in v else "") for m in names]
            support = f"{_value(sup.get('a'))} → {_value(sup.get('b'))}"
            rows.append([label, *[c for c, _ in cells], support])
            html_rows.append(f"<tr>{_cell(label)}" + "".join(_cell(c, k) for c, k in cells)
                             + f"{_cell(support)}</tr>")
        more = f"\n(first {MAX_ROWS} of {len(pc)} classes)" if len(pc) > MAX_ROWS else ""
        return "Per class", text_table(header, rows) + more, _table(header, html_rows)

    def _confusion(self):
        c = self.result.confusion
        if not c:
            return None
        labels, m = _matrix(c["labels"], c["delta"])
        if not labels:
            return "Confusion change", "", ""
        header = ["true \\ predicted", *[str(x) for x in labels]]
        rows = [[str(t), *[f"{v:+d}" if v else "0" for v in row]]
                for t, row in zip(labels, m.tolist(), strict=True)]
        html_rows = []
        for i, row in enumerate(m.tolist()):
            cells = [_cell(f"{v:+d}" if v else "0",
                           "" if not v else ("good" if (v > 0) == (i == j) else "bad"))
                     for j, v in enumerate(row)]
            html_rows.append(f"<tr>{_cell(str(labels[i]))}{''.join(cells)}</tr>")
        return "Confusion change (B − A)", text_table(header, rows), _table(header, html_rows)

    def _flips(self):
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
        text, html = "\n".join(lines), "".join(f"<div>{escape(x)}</div>" for x in lines)
        if f["kind"] == "classification" and k:
            labels, m = _matrix(f["labels"], f["matrix"])
            header = ["A \\ B", *[str(x) for x in labels]]
            rows = [[str(t), *row] for t, row in zip(labels, m.tolist(), strict=True)]
            text += "\n\nflip matrix (A's class → B's class)\n" + text_table(header, rows)
            html += "<div>flip matrix (A's class → B's class)</div>" + _table(
                header, [f"<tr>{''.join(_cell(fmt(c)) for c in r)}</tr>" for r in rows])
        return f"Prediction flips ({k:,})", text, html

    def _importance(self):
        imp = self.result.importance
        if not imp:
            return None
        header = ["feature", "rank A", "rank B", "change"]
        rows, html_rows = [], []
        for m in imp["moved"][:MAX_ROWS]:
            arrow = f"↑{m['change']}" if m["change"] > 0 else f"↓{-m['change']}"
            row = [m["feature"], ordinal(m["rank_a"]), ordinal(m["rank_b"]), arrow]
            rows.append(row)
            cls = "good" if m["change"] > 0 else "bad"
            html_rows.append("<tr>" + "".join(_cell(c, cls if i == 3 else "")
                                              for i, c in enumerate(row)) + "</tr>")
        lines = [imp["headline"] or "the importance ranking is unchanged"]
        changed = bool(imp["moved"] or imp["only_a"] or imp["only_b"])
        for side in ("a", "b"):
            if imp[f"only_{side}"]:
                lines.append(f"only in {side.upper()}: " + ", ".join(imp[f"only_{side}"][:10]))
        text = "\n".join(lines) + ("\n" + text_table(header, rows) if rows else "")
        html = "".join(f"<div>{escape(x)}</div>" for x in lines)
        html += _table(header, html_rows) if rows else ""
        return "Importance ranking", text, html, changed

    def _deltas(self, title: str, entries: dict[str, dict[str, Any]], first: str):
        header = [first, self.result.a, self.result.b, "change"]
        rows = [[k, _value(e["a"]), _value(e["b"]), _delta_text(k, e)] for k, e in entries.items()]
        html = _table(header, [
            "<tr>" + "".join(_cell(c, _direction(k, e) if i == 3 else "")
                             for i, c in enumerate(r)) + "</tr>"
            for r, (k, e) in zip(rows, entries.items(), strict=True)
        ])
        changed = any(e["delta"] or e["delta"] is None for e in entries.values())
        return title, text_table(header, rows) if rows else "", html, changed

    def _fairness(self):
        fair = self.result.fairness
        return None if fair is None else self._deltas("Fairness", fair, "metric")

    def _compression(self):
        comp = self.result.compression
        if comp is None:
            return None
        flat = {f"{variant} {k}": e
                for variant, measures in comp["variants"].items() for k, e in measures.items()}
        return self._deltas("Compression", flat, "variant / measure")

    def _model_size(self):
        s = self.result.model_size
        if not s:
            return None
        line = f"{s['a']:,} → {s['b']:,} bytes ({s['delta']:+,}"
        line += f", ×{s['ratio']:.2f})" if s.get("ratio") else ")"
        cls = "" if not s["delta"] else ("bad" if s["delta"] > 0 else "good")
        return "Model file size", line, f'<div class="{cls}">{escape(line)}</div>'

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        r = self.result
        parts = [r.summary]
        parts += [f"note: {n}" for n in r.notes]
        for title, text, _, _changed in self._sections():
            parts += ["", f"== {title} ==", text or "(no change)"]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [DIFF_STYLE, f'<div class="summary">{escape(r.summary)}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        for title, text, html, changed in self._sections():
            is_open = " open" if changed else ""
            body = html if text else '<div class="note">no change</div>'
            parts.append(f"<details{is_open}><summary>{escape(title)}</summary>{body}</details>")
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
