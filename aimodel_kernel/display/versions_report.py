"""The table of registered model versions shown by ``%versions``."""

from __future__ import annotations

import json
import time
from html import escape

from .report import Report
from .tables import html_table, text_table

TAG = "aimodel."
_HEADLINE = ("val_accuracy", "train_accuracy", "val_r2", "val_loss", "loss", "eval.accuracy",
             "eval.roc_auc", "eval.r2", "eval.rmse")


def _headline(metrics: dict[str, float]) -> str:
    shown = [(k, metrics[k]) for k in _HEADLINE if k in metrics][:3]
    return ", ".join(f"{k} {v:.4g}" for k, v in shown)


# what later magics add to a version's run, recognised by their metric prefixes
RECORDED = (("eval.", "evaluation"), ("explain.", "explanation"), ("fairness.", "fairness"),
            ("compress.", "compression"))


def _recorded(metrics: dict[str, float]) -> str:
    return ", ".join(what for prefix, what in RECORDED
                     if any(k.startswith(prefix) for k in metrics))


def _size(run_tags: dict[str, str]) -> str:
    size = run_tags.get(f"{TAG}model_bytes")
    if not size:
        return ""
    n = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


class VersionsReport(Report):
    """Renders :class:`~aimodel_kernel.engine.versions.VersionList`."""

    kind = "versions"
    header = ("version", "aliases", "created", "parent", "model", "task", "data", "metrics",
              "size", "recorded")

    def _rows(self) -> list[list[str]]:
        rows = []
        for v in self.result.versions:
            tags = v.run_tags
            classes = json.loads(tags.get(f"{TAG}classes", "[]"))
            task = tags.get(f"{TAG}task", "")
            if classes and task != "regression":
                task += f" ({len(classes)})"
            rows.append([
                v.ref,
                ", ".join(v.aliases),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
                tags.get(f"{TAG}parent", ""),
                tags.get(f"{TAG}model_class", "").rsplit(".", 1)[-1],
                task,
                tags.get(f"{TAG}data.sha256", "")[:10],
                _headline(v.metrics),
                _size(tags),
                _recorded(v.metrics),
            ])
        return rows

    def summary(self) -> str:
        n = len(self.result.versions)
        what = self.result.name or "all registered models"
        return f"{n} version{'s' if n != 1 else ''} of {what} in {self.result.tracking_uri}"

    def text(self) -> str:
        if not self.result.versions:
            return self.summary()
        return self.summary() + "\n\n" + text_table(self.header, self._rows())

    def html_body(self) -> str:
        rows = self._rows()
        table = html_table(self.header, rows, sortable=True) if rows else ""
        return f'<div class="summary">{escape(self.summary())}</div>{table}'
