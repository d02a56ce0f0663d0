"""One section of a report drawn three ways: text block, HTML and JSON view sections.

The diff report is made of these (``diff_report.py``); each knows nothing about diffs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from . import view
from .tables import fmt, html_table, text_table


@dataclass
class Part:
    """One section of the diff; the text, HTML and JSON views are all drawn from it.

    ``lines`` come first, then ``caption`` and ``table`` (header, rows of cells), then ``more``;
    ``code`` is a unified diff instead. ``changed`` (default: anything to show) opens the
    section. ``strike`` shows a two-sided table's A column struck out and B highlighted (HTML);
    ``tone`` is the ``good`` / ``bad`` class of the lines.
    """

    title: str
    lines: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[Any]]] | None = None
    caption: str | None = None
    more: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    changed: bool | None = None
    strike: bool = False
    sortable: bool = True
    tone: str = ""

    @property
    def empty(self) -> bool:
        return not (self.lines or self.code or (self.table and self.table[1]))

    @property
    def open(self) -> bool:
        return not self.empty if self.changed is None else bool(self.changed)

    def text(self) -> str:
        if self.code:
            return "\n".join(self.code)
        if self.empty:
            return ""
        parts = ["\n".join(self.lines)] if self.lines else []
        if self.table and self.table[1]:
            table = text_table(*self.table)
            if self.caption:
                table = f"{self.caption}\n{table}"
            parts.append(("\n" if self.caption and parts else "") + table)
        return "\n".join([*parts, *self.more])

    def html(self) -> str:
        if self.code:
            return '<pre class="aimodel-diff">' + "\n".join(
                f'<span class="{_code_class(line)}">{escape(line)}</span>' for line in self.code
            ) + "</pre>"
        if self.empty:
            return '<div class="note">no change</div>'
        attr = f' class="{self.tone}"' if self.tone else ""
        out = "".join(f"<div{attr}>{escape(x)}</div>" for x in self.lines)
        if self.table and self.table[1]:
            out += f"<div>{escape(self.caption)}</div>" if self.caption else ""
            out += _struck(*self.table) if self.strike else html_table(*self.table)
        return out + "".join(f'<div class="note">{escape(x)}</div>' for x in self.more)

    def sections(self) -> list[view.Section]:
        if self.empty:
            return [view.text(self.title, "no change", open=False)]
        if self.code:
            return [view.diff(self.title, "\n".join(self.code), open=self.open)]
        out: list[view.Section] = []
        if self.lines or (self.more and not self.table):
            out.append(view.text(self.title, "\n".join(self.lines + self.more), open=self.open))
        if self.table and self.table[1]:
            # below a text block of the same part, the table needs a title of its own
            title = self.caption or (f"{self.title}, side by side" if out else self.title)
            if self.more:
                title += f" ({'; '.join(self.more).strip('()')})"
            out.append(view.table(title, *self.table, sortable=self.sortable, open=self.open))
        return out


def _code_class(line: str) -> str:
    if line.startswith(("+++", "---", "@@")):
        return "hunk"
    return {"+": "add", "-": "rem"}.get(line[:1], "")


def _struck(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table of ``[name, a, b]`` rows: A struck out, B highlighted."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(f"<tr><td>{escape(fmt(k))}</td><td><del>{escape(fmt(a))}</del></td>"
                   f'<td class="good">{escape(fmt(b))}</td></tr>' for k, a, b in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
