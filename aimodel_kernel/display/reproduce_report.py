"""How ``%reproduce`` reads: the verdict first, then what differed, then the version diff."""

from __future__ import annotations

from html import escape

from .report import Report
from .tables import html_table, text_table


class ReproduceReport(Report):
    """Renders :class:`~aimodel_kernel.engine.reproduce.ReproduceResult` (and its diff)."""

    kind = "reproduce"

    def summary(self) -> str:
        r = self.result
        return f"{r.reproduction or 'the retrained model'} vs {r.original}: {r.verdict}"

    def _rows(self) -> list[list]:
        r = self.result
        rows = [["identical weights", "yes" if r.identical_weights else "no"],
                ["max weight difference", r.max_weight_difference],
                ["identical metrics", "yes" if r.identical_metrics else "no"],
                ["deterministic", "yes" if r.deterministic else "no"]]
        rows += [[f"{k} (original → new)", f"{a:.6g} → {b:.6g}"]
                 for k, (a, b) in r.metric_differences.items()]
        return rows

    def _diff_report(self):
        if self.result.diff is None:
            return None
        from .diff_report import DiffReport

        return DiffReport(self.result.diff)

    def text(self) -> str:
        parts = [self.summary(), *self.result.notes, "", text_table(["", ""], self._rows())]
        diff = self._diff_report()
        if diff is not None:
            parts += ["", diff.text()]
        return "\n".join(parts)

    def html_body(self) -> str:
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in self.result.notes]
        parts.append(html_table(["", ""], self._rows()))
        diff = self._diff_report()
        if diff is not None:
            parts.append(f"<details><summary>diff</summary>{diff.html_body()}</details>")
        return "".join(parts)
