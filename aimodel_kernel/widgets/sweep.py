"""The sweep part of the experiment panel: the leaderboard widget (a sortable table; two rows
selected -> their ``%diff``) and the run tags of panel runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

from ..display.leaderboard_report import LeaderboardReport
from ..display.tables import fmt, html_table, wrap_html
from ..engine.core.errors import AimodelError
from ..engine.core.metric_names import higher_is_better


def show(output: Any, obj: Any) -> None:
    """Replace an ``Output`` widget's content with ``obj`` (a report, or text).

    Sets the widget's ``outputs`` state instead of capturing with ``with output:``, so it is
    safe from the panel's training thread (capturing depends on the running cell's message).
    """
    output.outputs = ()
    if isinstance(obj, str):
        output.append_stdout(obj + "\n")
    else:
        output.append_display_data(obj)


class Leaderboard:
    """A sweep's runs as a table, best first, re-sortable by any column; selecting two
    registered versions shows their diff.

    Parameters
    ----------
    diff : callable
        ``diff(a_ref, b_ref)`` returning the report to show (``%diff a b``); ``a`` is the run
        that ran first.
    """

    def __init__(self, diff: Callable[[str, str], Any]) -> None:
        import ipywidgets as w

        self._diff = diff
        self.report: LeaderboardReport | None = None
        self.summary = w.HTML()
        self.table = w.HTML()
        self.sort_by = w.Dropdown(description="sort by", options=[], layout=w.Layout(width="260px"))
        self.select = w.SelectMultiple(description="diff two", options=[], rows=5,
                                       layout=w.Layout(width="420px"))
        self.diff_output = w.Output()
        self.view = w.VBox([self.summary, self.sort_by, self.table, self.select, self.diff_output],
                           layout=w.Layout(display="none"))
        self.sort_by.observe(self._on_sort, names="value")
        self.select.observe(self._on_select, names="value")
        self._order: dict[str, int] = {}
        self._updating = False
        self._chosen_sort = False  # a person picked the column: keep it across updates

    # -- content ----------------------------------------------------------------------------
    def update(self, sweep: Any) -> None:
        """Show the current state of ``sweep`` (a :class:`~..engine.sweep.SweepResult`)."""
        self.report = LeaderboardReport(sweep)
        header = self.report.header()
        key, _ = sweep.ranking()
        keep = self.sort_by.value
        self._updating = True
        try:
            self._update(sweep, header, key, keep)
        finally:
            self._updating = False

    def _update(self, sweep: Any, header: list[str], key: str | None, keep: Any) -> None:
        with self.view.hold_sync():
            self.sort_by.options = header
            if self._chosen_sort and keep in header:
                self.sort_by.value = keep
            else:
                self.sort_by.value = key if key in header else "#"
            self._order = {t.ref: t.index for t in sweep.trials if t.ref}
            metric = key or ""
            options = [(f"{t.ref}  {metric} {fmt(t.metrics[metric])}" if metric in t.metrics
                        else t.ref, t.ref) for t in sweep.ranked() if t.ref]
            chosen = tuple(v for v in self.select.value if v in dict(options).values())
            self.select.options = options
            self.select.value = chosen
            self.summary.value = f"<b>{escape(self.report.summary())}</b>"
            self._render()
            self.view.layout.display = ""

    def rows(self, *, plain: bool = True) -> list[list[Any]]:
        """The table's rows as shown, ordered by the ``sort by`` column (metrics best first,
        other columns ascending, empty cells last): values, or with ``plain=False`` the rich
        cells that mark the best run and failures."""
        if self.report is None:
            return []
        header = self.report.header()
        rows = self.report.rows()
        column = self.sort_by.value
        if column in header:
            i = header.index(column)
            metric = column in self.report.metric_keys()
            descending = metric and higher_is_better(column) is not False

            def key(row: list[Any]) -> tuple:
                value = row[i]["value"] if isinstance(row[i], dict) else row[i]
                if value is None or value == "":
                    return (2, 0, "")
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return (0, -value if descending else value, "")
                return (1, 0, str(value))

            rows = sorted(rows, key=key)
        return self.report.plain_rows(rows) if plain else rows

    def _on_sort(self, change: dict[str, Any]) -> None:
        if not self._updating:
            self._chosen_sort = True
            self._render()

    def _render(self) -> None:
        if self.report is None:
            return
        self.table.value = wrap_html(html_table(self.report.header(), self.rows(plain=False),
                                                sortable=True))

    # -- diff of two rows -------------------------------------------------------------------
    def _on_select(self, change: dict[str, Any]) -> None:
        refs = list(change["new"])
        if len(refs) != 2:
            self.diff_output.outputs = ()
            if refs:
                show(self.diff_output, "select a second version to compare")
            return
        a, b = sorted(refs, key=lambda r: self._order.get(r, 0))
        show(self.diff_output, f"comparing {a} and {b}…")
        try:
            report = self._diff(a, b)
        except AimodelError as exc:
            show(self.diff_output, f"cannot compare {a} and {b}: {exc}")
            return
        show(self.diff_output, report)


def panel_tags(kind: str, params: dict[str, Any], **extra: str) -> dict[str, str]:
    """Run tags of a panel run: ``aimodel.panel`` (``train`` or ``sweep``) and the chosen
    parameters, so runs with the same ``%train`` line but other parameters stay apart."""
    tags = {"aimodel.panel": kind,
            "aimodel.panel.params": json.dumps(params, sort_keys=True, default=repr)}
    tags.update({f"aimodel.{k.replace('_', '.')}": v for k, v in extra.items()})
    return tags
