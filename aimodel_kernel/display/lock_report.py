"""Reports of ``%aimodel freeze`` (what the lock file holds) and ``%aimodel check`` (how this
kernel differs from it)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, ClassVar

from . import view
from .report import Report
from .tables import html_table, text_table

_CHECK_HEADER = ("what", "name", "locked", "here", "status", "detail")


def _shown(value: Any) -> str:
    return "—" if value is None else str(value)


class FreezeReport(Report):
    """Renders a :class:`~aimodel_kernel.engine.versions.lock.FreezeResult`."""

    kind: ClassVar[str] = "freeze"
    title: ClassVar[str] = "Notebook lock"

    def summary(self) -> str:
        lock = self.result.lock
        runs = lock["runs"]
        data = {r["data"]["sha256"] for r in runs if r["data"].get("sha256")}
        return (f"wrote {Path(self.result.path).name}: python {lock['python']}, "
                f"{len(lock['packages'])} packages, {len(runs)} run"
                f"{'s' if len(runs) != 1 else ''}, {len(data)} data fingerprint"
                f"{'s' if len(data) != 1 else ''}")

    def package_rows(self) -> list[list[Any]]:
        return [[name, version] for name, version in sorted(self.result.lock["packages"].items())]

    def run_rows(self) -> list[list[Any]]:
        rows = []
        for run in self.result.lock["runs"]:
            data = run["data"]
            names = ", ".join(n for n in (data.get("X"), data.get("y")) if n)
            seed = _shown(run["seed"]) + ("" if run["seed_in_line"] else " (random)")
            rows.append([run["magic"], seed, names, (data.get("sha256") or "")[:12],
                         _shown(data.get("shape"))])
        return rows

    _RUN_HEADER = ("%train line", "seed", "data", "sha256", "shape")

    def view_status(self) -> view.Status:
        return "warning" if any(not r["seed_in_line"] for r in self.result.lock["runs"]) \
            else "ok"

    def sections(self) -> list[view.Section]:
        out: list[view.Section] = [view.table("Packages", ["package", "version"],
                                              self.package_rows())]
        if self.result.lock["runs"]:
            out.append(view.table("Runs", self._RUN_HEADER, self.run_rows(),
                                  kinds=["code", "text", "text", "code", "text"]))
        return out

    def text(self) -> str:
        lines = [self.summary(), self.result.path, *self.view_notes(), "",
                 text_table(["package", "version"], self.package_rows())]
        if self.result.lock["runs"]:
            lines += ["", text_table(self._RUN_HEADER, self.run_rows())]
        return "\n".join(lines)

    def html_body(self) -> str:
        parts = [f'<div class="summary">{escape(self.summary())}</div>',
                 f'<div class="note">{escape(self.result.path)}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in self.view_notes()]
        parts.append(html_table(["package", "version"], self.package_rows(), caption="Packages"))
        if self.result.lock["runs"]:
            parts.append(html_table(self._RUN_HEADER, self.run_rows(), caption="Runs"))
        return "".join(parts)


class CheckReport(Report):
    """Renders a :class:`~aimodel_kernel.engine.versions.lock.CheckResult`: mismatches first."""

    kind: ClassVar[str] = "check"
    title: ClassVar[str] = "Notebook check"

    def summary(self) -> str:
        r = self.result
        name = Path(r.path).name
        bad, pending = r.mismatches, r.pending
        if bad:
            first = ", ".join(f"{m.name} ({_shown(m.locked)} locked, {_shown(m.current)} here)"
                              if m.what != "data" else f"data {m.name}" for m in bad[:3])
            head = (f"{len(bad)} mismatch{'es' if len(bad) != 1 else ''} with {name}: {first}"
                    + (" …" if len(bad) > 3 else ""))
        else:
            head = f"this kernel matches {name}"
        if pending:
            head += (f"; {len(pending)} data set{'s' if len(pending) != 1 else ''} not checked "
                     "yet")
        return head

    def _rows(self, rows: list[Any]) -> list[list[Any]]:
        return [[r.what, r.name, _shown(r.locked), _shown(r.current), r.status, r.detail]
                for r in rows]

    def _cells(self, rows: list[Any]) -> list[list[Any]]:
        colour = {"mismatch": "bad", "ok": "good", "pending": "neutral", "note": "neutral"}
        return [[*row[:4], view.cell(row[4], row[4], colour[row[4]]), row[5]]
                for row in self._rows(rows)]

    def view_status(self) -> view.Status:
        return "warning" if self.result.mismatches else "ok"

    def view_notes(self) -> list[str]:
        return [f"{r.name}: {r.detail}" for r in self.result.rows
                if r.status in ("pending", "note")]

    def sections(self) -> list[view.Section]:
        r = self.result
        out: list[view.Section] = []
        if r.mismatches:
            out.append(view.table("Mismatches", _CHECK_HEADER, self._cells(r.mismatches)))
        out.append(view.table("Everything compared", _CHECK_HEADER, self._cells(r.rows),
                              open=not r.mismatches))
        return out

    def text(self) -> str:
        r = self.result
        lines = [self.summary()]
        if r.mismatches:
            lines += ["", text_table(_CHECK_HEADER, self._rows(r.mismatches))]
        lines += ["", "Everything compared:", text_table(_CHECK_HEADER, self._rows(r.rows))]
        return "\n".join(lines)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        if r.mismatches:
            parts.append(html_table(_CHECK_HEADER, self._rows(r.mismatches),
                                    caption="Mismatches"))
        parts.append("<details" + ("" if r.mismatches else " open")
                     + "><summary>everything compared</summary>"
                     + html_table(_CHECK_HEADER, self._rows(r.rows)) + "</details>")
        return "".join(parts)
