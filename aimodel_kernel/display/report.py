"""The base of every result shown in a cell: text, HTML, a PNG and our JSON MIME type."""

from __future__ import annotations

from typing import Any, ClassVar

from . import view
from .mime import img_tag, mime_type, png_base64
from .tables import wrap_html


class Report:
    """Wraps an engine result and renders it; attributes not found here come from the result.

    Subclasses set ``kind`` and implement :meth:`text`, :meth:`html_body` and, when the result
    has plots, :meth:`png`.
    """

    kind: ClassVar[str] = "report"
    title: ClassVar[str] = "Report"

    def __init__(self, result: Any) -> None:
        self.result = result
        self._png: bytes | None = None
        self._png_done = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self.result)))

    def to_dict(self) -> dict[str, Any]:
        """Everything the report shows, JSON-serialisable."""
        return self.result.to_dict()

    # -- the structured view (see view.py) ------------------------------------------------------
    def summary_line(self) -> str:
        """The one line a person reads first."""
        summary = getattr(type(self), "summary", None)
        return summary(self) if callable(summary) else self.text().splitlines()[0]

    def sections(self) -> list[view.Section]:
        """Tables and text blocks in the order shown; the lab renderer draws them."""
        return []

    # ``view_notes`` / ``view_status``, not ``notes`` / ``status``: those names are the result's
    # own attributes (``r.notes``, ``r.status``), which this class passes through.
    def view_notes(self) -> list[str]:
        """Notes shown under the summary."""
        return list(getattr(self.result, "notes", None) or [])

    def view_status(self) -> view.Status:
        """``warning`` or ``error`` when the summary reports a problem."""
        return "ok"

    def payload(self) -> dict[str, Any]:
        """Our JSON MIME type's content: the view and, under ``data``, the whole result."""
        return view.envelope(self.kind, title=self.title, summary=self.summary_line(),
                             sections=self.sections(), data=self.to_dict(),
                             notes=self.view_notes(), status=self.view_status())

    # -- renderers ----------------------------------------------------------------------------
    def text(self) -> str:
        raise NotImplementedError

    def html_body(self) -> str:
        raise NotImplementedError

    def figure_png(self) -> bytes | None:
        """The report's plots as one PNG, or ``None``. Computed once."""
        return None

    def png(self) -> bytes | None:
        if not self._png_done:
            self._png = self.figure_png()
            self._png_done = True
        return self._png

    def html(self) -> str:
        png = self.png()
        plots = img_tag(png, f"{self.kind} plots") if png else ""
        return wrap_html(self.html_body(), plots)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "text/plain": self.text(),
            "text/html": self.html(),
            mime_type(self.kind): self.payload(),
        }
        png = self.png()
        if png:
            bundle["image/png"] = png_base64(png)
        return bundle

    def __repr__(self) -> str:
        return self.text()
