"""The table of registered model versions shown by ``%versions``."""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any, ClassVar

from ..engine.core.metric_names import headline_metrics
from ..engine.store.tracking import TAG
from . import view
from .report import Report
from .tables import html_table, text_table


def _headline(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in headline_metrics(metrics).items())


# what later magics add to a version's run, recognised by their metric prefixes
RECORDED = (("eval.", "evaluation"), ("explain.", "explanation"), ("fairness.", "fairness"),
            ("compress.", "compression"))


def _recorded(metrics: dict[str, float]) -> str:
    return ", ".join(what for prefix, what in RECORDED
                     if any(k.startswith(prefix) for k in metrics))


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _size(run_tags: dict[str, str]) -> view.RichCell | None:
    """The model file size: sorted by bytes, shown as ``12.3 KB``."""
    size = run_tags.get(f"{TAG}model_bytes")
    if not size:
        return None
    n = float(size)
    return view.cell(int(n) if n.is_integer() else n, text=_bytes(n))


def _created(seconds: float) -> view.RichCell:
    """When the version was registered: sorted by time, shown as local ``YYYY-MM-DD HH:MM``."""
    return view.cell(seconds, text=time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)))


class VersionsReport(Report):
    """Renders :class:`~aimodel_kernel.engine.store.registry.VersionList`."""

    kind: ClassVar[str] = "versions"
    title: ClassVar[str] = "Model versions"
    header = ("version", "aliases", "created", "parent", "model", "task", "data", "metrics",
              "size", "recorded")

    def rows(self) -> list[list[Any]]:
        """One row per version; ``created`` and ``size`` are rich cells (sorted by number)."""
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
                _created(v.created),
                tags.get(f"{TAG}parent", ""),
                tags.get(f"{TAG}model_class", "").rsplit(".", 1)[-1]
                + (f" ({tags[f'{TAG}lora']})" if tags.get(f"{TAG}lora") else ""),
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

    def sections(self) -> list[view.Section]:
        if not self.result.versions:
            return []
        kinds: list[view.ColumnKind] = ["text"] * len(self.header)
        kinds[2] = kinds[8] = "number"
        kinds[6] = "code"
        return [view.table("Versions", self.header, self.rows(), kinds=kinds)]

    def text(self) -> str:
        if not self.result.versions:
            return self.summary()
        return self.summary() + "\n\n" + text_table(self.header, self.rows())

    def html_body(self) -> str:
        rows = self.rows()
        table = html_table(self.header, rows, sortable=True) if rows else ""
        return f'<div class="summary">{escape(self.summary())}</div>{table}'
