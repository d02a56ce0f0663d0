"""The report of ``%evaluate``: summary, metric tables and one composite figure of its plots."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

import numpy as np

from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, html_table, text_table

NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "f1_macro": "F1 (macro)",
    "f1_weighted": "F1 (weighted)",
    "roc_auc": "ROC AUC",
    "log_loss": "log loss",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
}
HEADLINE = {
    "classification": ("accuracy", "roc_auc", "f1_macro"),
    "regression": ("r2", "rmse", "mae"),
}
MAX_TABLE_CLASSES = 20
MAX_CURVES = 10


def _name(metric: str) -> str:
    return NAMES.get(metric, metric.replace("_", " "))


def _num(value: Any) -> str:
    return "nan" if value is None else f"{value:.3f}"


class EvaluationReport(Report):
    """Shows an :class:`~aimodel_kernel.engine.evaluation.metrics.EvaluationResult`."""

    kind: ClassVar[str] = "evaluation"
    title: ClassVar[str] = "Evaluation"

    # -- pieces --------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: model, rows, task and the headline metrics."""
        r = self.result
        group = "classification" if r.task.is_classification else "regression"
        shown = [
            f"{_name(m)} {_num(r.metrics[m])}" for m in HEADLINE[group] if m in r.metrics
        ]
        who = r.model_name or "predictions"
        line = f"{who} on {r.n_samples:,} rows ({r.task.task}): " + ", ".join(shown)
        if r.cv:
            line += f"; {r.cv['k']}-fold CV"
        if r.logged and r.run_id:
            line += f"; logged to run {r.run_id[:8]}"
        return line

    def metric_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the headline metrics, with CI and CV columns when present."""
        r = self.result
        cv = (r.cv or {}).get("metrics", {})
        header = ["metric", "value"]
        if r.intervals:
            header.append("95% CI")
        if cv:
            header.append(f"CV mean ± std ({r.cv['k']} folds)")
        rows = []
        for metric, value in r.metrics.items():
            row: list[Any] = [_name(metric), value]
            if r.intervals:
                lo_hi = r.intervals.get(metric)
                row.append(f"{fmt(lo_hi[0])} – {fmt(lo_hi[1])}" if lo_hi else "")
            if cv:
                c = cv.get(metric)
                row.append(f"{fmt(c['mean'])} ± {fmt(c['std'])}" if c else "")
            rows.append(row)
        return header, rows

    def per_class_rows(self) -> tuple[list[str], list[list[Any]]]:
        per_class = self.result.per_class
        with_auc = any("roc_auc" in v for v in per_class.values())
        header = ["class", "precision", "recall", "F1", "support"]
        header += ["ROC AUC"] if with_auc else []
        rows = [
            [label, v["precision"], v["recall"], v["f1"], v["support"]]
            + ([v.get("roc_auc")] if with_auc else [])
            for label, v in per_class.items()
        ]
        return header, rows

    def confusion_rows(self) -> tuple[list[str], list[list[Any]]] | None:
        r = self.result
        if r.confusion is None or len(r.labels) > MAX_TABLE_CLASSES:
            return None
        header = ["true \\ predicted", *[str(c) for c in r.labels]]
        return header, [[str(c), *row] for c, row in zip(r.labels, r.confusion, strict=True)]

    def sections(self) -> list[view.Section]:
        out: list[view.Section] = [view.table("Metrics", *self.metric_rows())]
        if self.result.per_class:
            out.append(view.table("Per class", *self.per_class_rows()))
        confusion = self.confusion_rows()
        if confusion:
            out.append(view.table("Confusion matrix", *confusion, sortable=False, open=False))
        return out

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        header, rows = self.metric_rows()
        parts = [self.summary(), "", text_table(header, rows)]
        parts += [f"note: {n}" for n in self.result.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        parts.append(html_table(*self.metric_rows(), caption="Metrics"))
        if r.per_class:
            parts.append(html_table(*self.per_class_rows(), caption="Per class"))
        if r.confusion is not None:
            confusion = self.confusion_rows()
            if confusion:
                parts.append(html_table(*confusion, caption="Confusion matrix"))
            else:
                parts.append(
                    f'<div class="note">{len(r.labels)} classes: the confusion matrix is in the '
                    "plot and in the JSON only</div>"
                )
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        curves = r.curves or {}
        if not r.task.is_classification:
            if "residuals" not in curves:
                return None
            fig, axes = _figure(2)
            _residuals(axes[0], curves["residuals"])
            _pred_vs_true(axes[1], curves["residuals"])
            return to_png(fig)
        panels = [p for p in ("roc", "pr", "calibration") if curves.get(p)]
        if r.confusion is None and not panels:
            return None
        fig, axes = _figure(len(panels) + (r.confusion is not None), rotated=len(r.labels) > 4)
        if r.confusion is not None:
            _confusion(axes[0], np.asarray(r.confusion), [str(c) for c in r.labels])
            axes = axes[1:]
        draw = {"roc": _roc, "pr": _pr, "calibration": _calibration}
        for ax, panel in zip(axes, panels, strict=True):
            draw[panel](ax, curves[panel])
        return to_png(fig)


# -- panels ------------------------------------------------------------------------------------
def _figure(ncols: int, *, rotated: bool = False):
    """A row of panels with fixed margins: a constrained layout would double the render time."""
    fig, axes = new_figure(ncols)
    fig.set_layout_engine("none")
    width = fig.get_figwidth()  # inches
    axes[0].get_gridspec().update(left=0.6 / width, right=1 - 0.15 / width, top=0.9,
                                  wspace=0.32, bottom=0.25 if rotated else 0.16)
    for ax in axes:
        ax.set_position(ax.get_subplotspec().get_position(fig))
    return fig, axes


def _confusion(ax: Any, matrix: np.ndarray, labels: list[str]) -> None:
    k = len(labels)
    ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    ax.set_title("confusion matrix")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= MAX_TABLE_CLASSES:
        short = [s if len(s) <= 10 else s[:9] + "…" for s in labels]
        ax.set_xticks(range(k), short, rotation=90 if k > 4 else 0, fontsize=7)
        ax.set_yticks(range(k), short, fontsize=7)
    if k <= 12:
        top = matrix.max() or 1
        for (i, j), value in np.ndenumerate(matrix):
            color = "white" if value > top / 2 else "black"
            ax.text(j, i, f"{value:,}", ha="center", va="center", color=color, fontsize=7)


def _legend(ax: Any, n: int) -> None:
    if n:
        ax.legend(fontsize=7, loc="lower right" if n < 6 else "best")


def _roc(ax: Any, curves: list[dict[str, Any]]) -> None:
    for c in curves[:MAX_CURVES]:
        ax.plot(c["fpr"], c["tpr"], lw=1.2, label=f"{c['label']} (AUC {_num(c['auc'])})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(title="ROC" + _more(curves), xlabel="false positive rate", ylabel="true positive rate")
    _legend(ax, min(len(curves), MAX_CURVES))


def _pr(ax: Any, curves: list[dict[str, Any]]) -> None:
    for c in curves[:MAX_CURVES]:
        ax.plot(c["recall"], c["precision"], lw=1.2, label=c["label"])
    ax.set(title="precision–recall" + _more(curves), xlabel="recall", ylabel="precision")
    ax.set_ylim(0, 1.02)
    _legend(ax, min(len(curves), MAX_CURVES))


def _more(curves: list[Any]) -> str:
    return f" (first {MAX_CURVES} of {len(curves)} classes)" if len(curves) > MAX_CURVES else ""


def _calibration(ax: Any, cal: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.plot(cal["prob_pred"], cal["prob_true"], marker="o", ms=3, lw=1.2)
    ax.set(title="calibration", xlabel="mean predicted probability", ylabel="fraction positive")


def _residuals(ax: Any, data: dict[str, Any]) -> None:
    ax.scatter(data["y_pred"], data["residual"], s=6, alpha=0.5, linewidths=0)
    ax.axhline(0.0, ls="--", lw=0.8, color="grey")
    ax.set(title="residuals", xlabel="predicted", ylabel="true − predicted")


def _pred_vs_true(ax: Any, data: dict[str, Any]) -> None:
    ax.scatter(data["y_true"], data["y_pred"], s=6, alpha=0.5, linewidths=0)
    values = data["y_true"] + data["y_pred"]
    if values:
        lo, hi = min(values), max(values)
        ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, color="grey")
    ax.set(title="predicted vs true", xlabel="true", ylabel="predicted")
