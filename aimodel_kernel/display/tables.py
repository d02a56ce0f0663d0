"""HTML and plain-text tables, the two fallbacks every report shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = """<style>
.aimodel-report{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px}
.aimodel-report h4{margin:.6em 0 .3em 0;font-size:14px}
.aimodel-report table{border-collapse:collapse;margin:.2em 0 .8em 0}
.aimodel-report th,.aimodel-report td{padding:2px 10px;border-bottom:1px solid #ddd;
text-align:right}
.aimodel-report th:first-child,.aimodel-report td:first-child{text-align:left}
.aimodel-report .summary{margin:.3em 0;font-weight:600}
.aimodel-report .note{color:#666}
.aimodel-report .bad{color:#b00020}
.aimodel-report .good{color:#1b7f3b}
</style>"""


def fmt(value: Any, digits: int = 4) -> str:
    """A number shown compactly: ints as is, floats to ``digits`` significant figures.

    A rich cell (``view.cell``: ``{"value", "text"?, "status"?}``) shows its ``text``, or its
    value formatted.
    """
    if isinstance(value, dict) and "value" in value:
        return value["text"] if "text" in value else fmt(value["value"], digits)
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"
    return str(value)


# Click a header to sort by that column (numbers numerically). Runs only where the output is
# trusted (JupyterLab, Notebook); elsewhere the attribute is stripped and the table is static.
_SORT_JS = (
    "var t=this.closest('table'),b=t.tBodies[0],i=this.cellIndex,"
    "d=this.dataset.dir=this.dataset.dir==='asc'?'desc':'asc',"
    "k=function(r){var s=r.cells[i].dataset.v||r.cells[i].textContent,"
    "n=parseFloat(s.replace(/,/g,''));return isNaN(n)?s:n;};"
    "Array.from(b.rows).sort(function(x,y){var a=k(x),c=k(y),o=a<c?-1:a>c?1:0;"
    "return d==='asc'?o:-o;}).forEach(function(r){b.appendChild(r);});"
)


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
    sortable: bool = False,
) -> str:
    """An escaped HTML table; numbers are formatted with :func:`fmt`.

    A rich cell's ``good`` / ``bad`` status becomes the cell's class. With ``sortable``,
    clicking a column header sorts the rows (in trusted outputs), rich cells by their value.
    """
    attr = f' onclick="{escape(_SORT_JS)}" style="cursor:pointer"' if sortable else ""
    head = "".join(f"<th{attr}>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(html_cell(v, sort_key=sortable) for v in row) + "</tr>" for row in rows
    )
    cap = f"<h4>{escape(caption)}</h4>" if caption else ""
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_cell(value: Any, *, sort_key: bool = False) -> str:
    """One ``<td>``: the value formatted; a rich cell's status as its class and, with
    ``sort_key``, its value as the ``data-v`` the header's sort reads."""
    attrs = ""
    if isinstance(value, dict) and "value" in value:
        if value.get("status") in ("good", "bad"):
            attrs += f' class="{value["status"]}"'
        if sort_key and value["value"] is not None:
            attrs += f' data-v="{escape(str(value["value"]))}"'
    return f"<td{attrs}>{escape(fmt(value))}</td>"


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left/right aligned monospace table."""
    cells = [[str(h) for h in header]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wrap_html(*parts: str) -> str:
    """Our style sheet and the parts inside one ``aimodel-report`` div."""
    return STYLE + '<div class="aimodel-report">' + "".join(parts) + "</div>"
