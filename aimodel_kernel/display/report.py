"""The base of every result shown in a cell: text, HTML, a PNG and our JSON MIME type."""

from __future__ import annotations

from typing import Any, ClassVar

from .mime import img_tag, mime_type, png_base64
from .tables import wrap_html


class Report:
    """Wraps an engine result and renders it; attributes not found here come from the result.

    Subclasses set ``kind`` and implement :meth:`text`, :meth:`html_body` and, when the result
    has plots, :meth:`png`.
    """

    kind: ClassVar[str] = "report"

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
            mime_type(self.kind): self.to_dict(),
        }
        png = self.png()
        if png:
            bundle["image/png"] = png_base64(png)
        return bundle

    def __repr__(self) -> str:
        return self.text()
