"""The report of ``%fairness``: checks (failing ones highlighted), per-group metrics, the
before / after table of a mitigation, and one figure of per-group metrics and disparities."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, ClassVar

import numpy as np

from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, html_table, text_table

NAMES = {
    "count": "count", "selection_rate": "selection rate", "accuracy": "accuracy", "tpr": "TPR",
    "fpr": "FPR", "fnr": "FNR", "precision": "precision", "mae": "MAE", "rmse": "RMSE",
    "mean_prediction": "mean prediction", "mean_true": "mean true",
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equal_opportunity_difference": "equal opportunity difference (TPR)",
    "equalized_odds_difference": "equalized odds difference",
    "accuracy_difference": "accuracy difference", "mae_gap": "MAE gap", "mae_ratio": "MAE ratio",
    "rmse_gap": "RMSE gap", "mean_prediction_gap": "mean prediction gap",
}
RULE_NOTES = {"demographic_parity_ratio": "four-fifths rule"}
MAX_PLOT_GROUPS = 12
STYLE = """<style>
.aimodel-report tr.fail td{background:#fdecee}
.aimodel-report tr.fail td:last-child{color:#b00020;font-weight:600}
.aimodel-report tr.pass td:last-child{color:#1b7f3b}
</style>"""


def _name(metric: str) -> str:
    return NAMES.get(metric, metric.replace("_", " "))


def _verdict(check: dict[str, Any]) -> view.RichCell:
    """``pass`` (good), ``FAIL`` (bad) or ``n/a``, with the rule's name where it has one."""
    if check["passed"] is None:
        return view.cell(None, text="n/a")
    note = RULE_NOTES.get(check["metric"])
    word = "pass" if check["passed"] else "FAIL"
    return view.cell(bool(check["passed"]), text=f"{word} ({note})" if note else word,
                     status="good" if check["passed"] else "bad")


def _rule(check: dict[str, Any]) -> str:
    return f"{check['rule'].replace('>=', '≥').replace('<=', '≤')} {check['threshold']:g}"


def _interval(iv: Sequence[float] | None) -> str:
    return f"{fmt(iv[0], 3)} – {fmt(iv[1], 3)}" if iv else ""


class FairnessReport(Report):
    """Shows a :class:`~aimodel_kernel.engine.fairness.audits.FairnessResult`."""

    kind: ClassVar[str] = "fairness"
    title: ClassVar[str] = "Fairness audit"

    # -- pieces --------------------------------------------------------------------------------
    def headline(self) -> str:
        """One line: model, rows, groups, the failing checks, where it was logged."""
        r = self.result
        by = " × ".join(r.sensitive)
        task = r.task.task + (f", positive class {r.positive_label!r}"
                              if r.task.is_classification else "")
        head = (f"{r.model_name or 'predictions'} on {r.n_samples:,} rows by {by} "
                f"({len(r.groups)} groups; {task}): ")
        failed = [c for c in r.checks if c["passed"] is False]
        if failed:
            c = failed[0]
            head += (f"{len(failed)} of {len(r.checks)} checks fail — {_name(c['metric'])} "
                     f"{fmt(c['value'], 3)}, limit {_rule(c)}")
        elif any(c["passed"] is None for c in r.checks):
            head += "some checks could not be computed"
        else:
            head += f"all {len(r.checks)} checks pass" if len(r.checks) > 1 else "its check passes"
        if r.logged and r.run_id:
            head += f"; logged to run {r.run_id[:8]}"
        return head

    def check_rows(self) -> tuple[list[str], list[list[Any]]]:
        r = self.result
        ci = (r.intervals or {}).get("summary", {})
        header = ["check", "value", *(["95% CI"] if ci else []), "rule", "result"]
        rows = []
        for c in r.checks:
            row: list[Any] = [_name(c["metric"]), c["value"]]
            if ci:
                row.append(_interval(ci.get(c["metric"])))
            rows.append([*row, _rule(c), _verdict(c)])
        checked = {c["metric"] for c in r.checks}
        for metric, value in r.summary.items():
            if metric not in checked:
                extra = [_interval(ci.get(metric))] if ci else []
                rows.append([_name(metric), value, *extra, "", ""])
        return header, rows

    def group_rows(self) -> tuple[list[str], list[list[Any]]]:
        r = self.result
        metrics = [m for m in r.overall if m != "count"]
        ci = (r.intervals or {}).get("groups")
        header = ["group", "count", *[_name(m) for m in metrics]]
        rows = []
        for i, g in enumerate(r.groups):
            cells = [g[m] if not ci else
                     view.cell(g[m], text=f"{fmt(g[m], 3)} ({_interval(ci[i].get(m))})")
                     for m in metrics]
            rows.append([g["group"], g["count"], *cells])
        rows.append(["(all)", r.overall["count"], *[r.overall[m] for m in metrics]])
        return header, rows

    def mitigation_lines(self) -> list[str]:
        m = self.result.mitigation
        if m is None:
            return []
        where = f"registered {m.ref}" if m.ref else "not registered"
        if m.parent:
            where += f" (parent {m.parent})"
        fit = "the audit rows" if m.fit_on_audit_data else f"{m.fit_rows:,} fit rows"
        return [f"Mitigation: {m.method} ({m.constraint}), fitted on {fit}; {where}"]

    def comparison_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows before / after mitigation; the change is coloured good or bad."""
        m = self.result.mitigation
        rows = []
        for c in m.comparison():
            better = c["higher_is_better"]
            status = (None if c["delta"] in (None, 0) or better is None
                      else "good" if (c["delta"] > 0) == better else "bad")
            change = view.cell(c["delta"], status=status,
                               text="" if c["delta"] is None else f"{c['delta']:+.4f}")
            rows.append([_name(c["metric"]), c["a"], c["b"], change])
        return ["metric", "before", "after", "change"], rows

    # -- the structured view -------------------------------------------------------------------
    def summary_line(self) -> str:
        return self.headline()

    def view_status(self) -> view.Status:
        """``warning`` when a check fails (a disparity beyond its threshold)."""
        return "warning" if self.result.failed else "ok"

    def sections(self) -> list[view.Section]:
        r = self.result
        out: list[view.Section] = [view.table("Checks", *self.check_rows()),
                                   view.table("Per group", *self.group_rows())]
        if r.mitigation is not None:
            lines = [*self.mitigation_lines(), *r.mitigation.notes]
            out += [view.text("Mitigation", "\n".join(lines)),
                    view.table("Before / after", *self.comparison_rows())]
        return out

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        r = self.result
        parts = [self.headline(), "", text_table(*self.check_rows()), "",
                 text_table(*self.group_rows())]
        if r.mitigation is not None:
            parts += ["", *self.mitigation_lines(), text_table(*self.comparison_rows())]
            parts += [f"note: {n}" for n in r.mitigation.notes]
        parts += [f"note: {n}" for n in r.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [STYLE, f'<div class="summary">{escape(self.headline())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        header, rows = self.check_rows()
        classes = [("fail" if c["passed"] is False else "pass" if c["passed"] else "")
                   for c in r.checks] + [""] * (len(rows) - len(r.checks))
        parts.append(_classed_table(header, rows, classes, "Checks"))
        parts.append(html_table(*self.group_rows(), caption="Per group"))
        if r.mitigation is not None:
            lines = "".join(f'<div class="summary">{escape(s)}</div>'
                            for s in self.mitigation_lines())
            notes = "".join(f'<div class="note">{escape(n)}</div>' for n in r.mitigation.notes)
            parts.append(lines + notes + html_table(*self.comparison_rows(),
                                                    caption="Before / after"))
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        groups = r.groups[:MAX_PLOT_GROUPS]
        if not groups:
            return None
        fig, axes = new_figure(2, size=(4.6, 3.4))
        labels = [g["group"] for g in groups]
        ci = (r.intervals or {}).get("groups")
        if r.task.is_classification:
            _bars(axes[0], labels, {m: [g[m] for g in groups]
                                    for m in ("selection_rate", "tpr", "fpr", "accuracy")},
                  ci[:len(groups)] if ci else None)
            axes[0].set_ylim(0, 1.05)
            axes[0].set_title("per group" + _more(r.groups))
            _disparities(axes[1], r)
        else:
            _bars(axes[0], labels, {m: [g[m] for g in groups] for m in ("mae", "rmse")},
                  ci[:len(groups)] if ci else None)
            axes[0].set_title("errors per group" + _more(r.groups))
            _bars(axes[1], labels, {m: [g[m] for g in groups]
                                    for m in ("mean_prediction", "mean_true")}, None)
            axes[1].set_title("mean prediction vs truth")
        return to_png(fig)


def _classed_table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: list[str],
                   caption: str) -> str:
    """An HTML table with a class per row (``fail`` / ``pass``: the whole row is marked)."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(("<tr>" if not cls else f'<tr class="{cls}">')
                   + "".join(f"<td>{escape(fmt(v))}</td>" for v in row) + "</tr>"
                   for row, cls in zip(rows, classes, strict=True))
    return (f"<h4>{escape(caption)}</h4><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _more(groups: list[Any]) -> str:
    n = len(groups)
    return f" (first {MAX_PLOT_GROUPS} of {n})" if n > MAX_PLOT_GROUPS else ""


def _bars(ax: Any, labels: list[str], series: dict[str, list[float]],
          ci: list[dict[str, Any]] | None) -> None:
    """Grouped bars: one cluster per group, one bar per metric, with CI whiskers if known."""
    k = len(series)
    width = 0.8 / k
    x = np.arange(len(labels))
    for j, (metric, values) in enumerate(series.items()):
        vals = np.asarray(values, dtype=float)
        err = None
        if ci:
            lo = np.asarray([c.get(metric, [np.nan, np.nan])[0] for c in ci], dtype=float)
            hi = np.asarray([c.get(metric, [np.nan, np.nan])[1] for c in ci], dtype=float)
            err = np.nan_to_num(np.vstack([vals - lo, hi - vals]).clip(min=0))
        ax.bar(x + (j - (k - 1) / 2) * width, np.nan_to_num(vals), width, yerr=err,
               capsize=2, label=_name(metric))
    short = [s if len(s) <= 14 else s[:13] + "…" for s in labels]
    ax.set_xticks(x, short, rotation=30 if len(labels) > 4 else 0, fontsize=7,
                  ha="right" if len(labels) > 4 else "center")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=k,
              frameon=False)


def _disparities(ax: Any, r: Any) -> None:
    """Horizontal bars of each disparity (before / after when mitigated) and the threshold."""
    metrics = ["demographic_parity_difference", "equal_opportunity_difference",
               "equalized_odds_difference", "demographic_parity_ratio"]
    y = np.arange(len(metrics))
    sides = [("before" if r.mitigation is not None else "", r.summary)]
    if r.mitigation is not None:
        sides.append(("after", r.mitigation.after))
    height = 0.8 / len(sides)
    for j, (label, summary) in enumerate(sides):
        vals = [summary.get(m, np.nan) for m in metrics]
        ax.barh(y + (j - (len(sides) - 1) / 2) * height, np.nan_to_num(vals), height,
                label=label or None)
    limit_d, limit_r = r.thresholds["difference"], r.thresholds["ratio"]
    ax.vlines(limit_d, -0.5, 2.5, colors="grey", linestyles="--", lw=0.8)
    ax.vlines(limit_r, 2.5, 3.5, colors="#b00020", linestyles="--", lw=0.8)
    ax.set_yticks(y, ["DP difference", "equal opp. diff.", "eq. odds diff.", "DP ratio"],
                  fontsize=7)
    ax.set_xlim(0, 1.05)
    ax.set_title("disparities (dashed: thresholds)")
    if len(sides) > 1:
        ax.legend(fontsize=7, loc="lower right")
