"""The structured view every report puts in its JSON MIME type, for the JupyterLab renderer.

A report's ``application/vnd.aimodel.<kind>.v1+json`` payload is an envelope::

    {"version": 1, "kind": "evaluation", "title": "...", "summary": "one line",
     "status": "ok" | "warning" | "error", "notes": ["..."],
     "sections": [table | text | diff sections], "data": {the engine result's to_dict()}}

``sections`` say how to show the result (the renderer needs no per-kind code); ``data`` is the
full result for programs. The JSON Schema ``report.v1.schema.json`` beside this module is the
Python side's definition of the format; ``labextension/src/report.ts`` is the TypeScript side's.
Both are tested against the example files in ``docs/report-examples/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal, NotRequired, TypedDict

SCHEMA_FILE = "report.v1.schema.json"
Status = Literal["ok", "warning", "error"]
CellStatus = Literal["good", "bad", "neutral"]
ColumnKind = Literal["text", "number", "code"]


class RichCell(TypedDict):
    """A cell whose shown text differs from its value, or that is coloured good/bad."""

    value: str | float | int | bool | None
    text: NotRequired[str]
    status: NotRequired[CellStatus]


Cell = str | float | int | bool | None | RichCell


class Column(TypedDict):
    name: str
    kind: ColumnKind


class TableSection(TypedDict):
    type: Literal["table"]
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    sortable: bool
    open: bool


class TextSection(TypedDict):
    type: Literal["text", "diff"]
    title: str
    text: str
    open: bool


Section = TableSection | TextSection


def _jsonable(value: Any) -> Any:
    """Numbers JSON can carry (NaN and infinities become ``None``), numpy scalars as Python."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cell(value: Any, text: str | None = None, status: str | None = None) -> RichCell:
    """A cell shown as ``text`` (sorted and copied by ``value``), coloured by ``status``."""
    out: RichCell = {"value": _jsonable(value)}
    if text is not None:
        out["text"] = text
    if status in ("good", "bad", "neutral"):
        out["status"] = status  # type: ignore[typeddict-item]
    return out


def _column_kind(values: list[Any]) -> ColumnKind:
    plain = [v["value"] if isinstance(v, dict) else v for v in values]
    present = [v for v in plain if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "number"
    return "text"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
          sortable: bool = True, open: bool = True,
          kinds: Sequence[ColumnKind] | None = None) -> TableSection:
    """A table section; a column's kind is ``number`` when every value in it is a number."""
    body = [[_jsonable(v) if not isinstance(v, dict) else v for v in row] for row in rows]
    if kinds is None:
        kinds = [_column_kind([row[i] for row in body if i < len(row)])
                 for i in range(len(header))]
    columns: list[Column] = [{"name": str(h), "kind": k}
                             for h, k in zip(header, kinds, strict=True)]
    return {"type": "table", "title": title, "columns": columns, "rows": body,
            "sortable": sortable, "open": open}


def text(title: str, body: str, *, open: bool = True) -> TextSection:
    """A preformatted text section."""
    return {"type": "text", "title": title, "text": body, "open": open}


def diff(title: str, unified: str, *, open: bool = True) -> TextSection:
    """A unified diff, shown with added and removed lines coloured."""
    return {"type": "diff", "title": title, "text": unified, "open": open}


def envelope(kind: str, *, title: str, summary: str, sections: list[Section],
             data: dict[str, Any], notes: Sequence[str] = (), status: Status = "ok",
             ) -> dict[str, Any]:
    """The whole JSON payload of a report (see the module docstring)."""
    from .mime import SCHEMA_VERSION

    return {"version": SCHEMA_VERSION, "kind": kind, "title": title, "summary": summary,
            "status": status, "notes": list(notes), "sections": sections,
            "data": _jsonable(data)}


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the payload (``report.v1.schema.json``)."""
    text_ = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text_)


def validate(payload: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``payload`` is not a valid report."""
    import jsonschema

    jsonschema.validate(payload, schema())
