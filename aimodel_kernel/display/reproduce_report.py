"""How ``%reproduce`` reads: the verdict first, then what differed, then the version diff."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

from . import view
from .report import Report
from .tables import html_table, text_table


def _yes_no(flag: bool, *, bad: str | None = "bad") -> view.RichCell:
    """``yes`` (good) or ``no`` (``bad``, or uncoloured when ``bad`` is ``None``)."""
    return view.cell(bool(flag), text="yes" if flag else "no", status="good" if flag else bad)


class ReproduceReport(Report):
    """Renders :class:`~aimodel_kernel.engine.versions.reproduce.ReproduceResult` (and its diff)."""

    kind: ClassVar[str] = "reproduce"
    title: ClassVar[str] = "Reproduction"

    def summary(self) -> str:
        r = self.result
        return f"{r.reproduction or 'the retrained model'} vs {r.original}: {r.verdict}"

    def view_status(self) -> view.Status:
        """``warning`` when the retrained model does not match the original."""
        return "warning" if self.result.verdict.startswith("not reproduced") else "ok"

    MAX_DIFFERENCES: ClassVar[int] = 25

    def difference_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of what differs in the retrained model's state, in words (at most
        :attr:`MAX_DIFFERENCES`, then a row counting the rest); no rows when nothing does."""
        differences = list(self.result.differences)
        rows: list[list[Any]] = [[d.path or "the model", d.text]
                                 for d in differences[:self.MAX_DIFFERENCES]]
        if len(differences) > self.MAX_DIFFERENCES:
            rows.append(["…", f"and {len(differences) - self.MAX_DIFFERENCES} more"])
        return ["state", "difference"], rows

    def rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the comparison; metric changes show ``original → new``."""
        r = self.result
        rows: list[list[Any]] = [
            ["identical weights", _yes_no(r.identical_weights)],
            ["max weight difference", r.max_weight_difference],
            ["identical metrics", _yes_no(r.identical_metrics)],
            ["deterministic", _yes_no(r.deterministic, bad=None)],
        ]
        rows += [[f"{k} (original → new)", f"{a:.6g} → {b:.6g}"]
                 for k, (a, b) in r.metric_differences.items()]
        return ["", ""], rows

    def _diff_report(self):
        if self.result.diff is None:
            return None
        from .diff_report import DiffReport

        return DiffReport(self.result.diff)

    def sections(self) -> list[view.Section]:
        _, rows = self.rows()
        out: list[view.Section] = [
            view.table("Comparison", ["check", "result"], rows, sortable=False)]
        header, differences = self.difference_rows()
        if differences:
            out.append(view.table("What differs", header, differences, sortable=False))
        diff = self._diff_report()
        if diff is not None:  # the diff's own sections, closed, named as part of the diff
            for section in diff.sections():
                out.append({**section, "title": f"Diff: {section['title']}", "open": False})
        return out

    def text(self) -> str:
        parts = [self.summary(), *self.result.notes, "", text_table(*self.rows())]
        header, differences = self.difference_rows()
        if differences:
            parts += ["", text_table(header, differences)]
        diff = self._diff_report()
        if diff is not None:
            parts += ["", diff.text()]
        return "\n".join(parts)

    def html_body(self) -> str:
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in self.result.notes]
        parts.append(html_table(*self.rows()))
        header, differences = self.difference_rows()
        if differences:
            parts.append(html_table(header, differences))
        diff = self._diff_report()
        if diff is not None:
            parts.append(f"<details><summary>diff</summary>{diff.html_body()}</details>")
        return "".join(parts)
