"""The reports of ``%explain`` for token and image models (Integrated Gradients attributions).

Tokens: the text of each shown row with every token's background coloured by its attribution
(red adds to the explained output, blue takes from it; escaped text, no scripts), the tokens
with the highest mean |attribution| as a table, and a plain-text fallback listing each row's
top tokens. Images: a grid of a few rows, each image with its heat map (summed over channels)
laid over it, and the pixels with the highest mean |attribution|. Both use the ``explain``
report kind, so the lab renders them as tables and text with no new section types.
"""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

import numpy as np

from . import view
from .explain_report import NEGATIVE, POSITIVE, ExplainReport
from .plots import new_figure, to_png
from .report import Report
from .tables import html_table, text_table

SHOWN_ROWS = 10  # rows drawn as coloured text (tokens) ...
TEXT_ROWS = 5  # ... listed in the plain-text view
IMAGE_ROWS = 4  # images in the PNG grid
TABLE_ROW_LIMIT = 400  # token rows of the per-row table in the structured view
_RGB = {POSITIVE: (214, 39, 40), NEGATIVE: (31, 119, 180)}


def report_for(result: Any) -> Report:
    """The report that shows an ``explain()`` result."""
    kind = getattr(result, "kind", None)
    if kind == "tokens":
        return TokenExplainReport(result)
    if kind == "image":
        return ImageExplainReport(result)
    return ExplainReport(result)


class AttributionReport(Report):
    """What the token and image reports share: the summary, the method line, the payload."""

    kind: ClassVar[str] = "explain"
    title: ClassVar[str] = "Explanation"
    unit: ClassVar[str] = "rows"
    PER_ROW: ClassVar[tuple[str, ...]] = ()

    def summary(self) -> str:
        """One line: what was explained, by which method, on how many rows."""
        r = self.result
        if r.scope == "local":
            line = (f"row {r.row}: {r.model_name} predicts {r.prediction!r}; {r.explainer} "
                    f"explains the {r.output}")
        else:
            rows = (f"{r.sample_size:,} {self.unit}" if r.sample_size == r.n_rows
                    else f"a seeded sample of {r.sample_size:,} of {r.n_rows:,} {self.unit}")
            line = f"{r.explainer} on {rows}: explains the {r.output}"
        line += f"; {r.n_steps} steps, convergence delta up to {r.max_delta:.2g}"
        if r.logged and r.run_id:
            line += f"; logged to run {r.run_id[:8]}"
        return line

    def _why(self) -> str:
        r = self.result
        return f"method: {r.method} ({r.reason}); baseline: {r.baseline}"

    def _reading(self) -> str:
        return ("each row's attributions add up to f(row) - f(baseline), up to its convergence "
                f"delta (largest |delta| {self.result.max_delta:.3g})")

    def view_notes(self) -> list[str]:
        return [self._why(), *self.result.notes]

    def payload(self) -> dict[str, Any]:
        """The view; per-row arrays stay on the result (``r.tokens``, ``r.heatmaps`` ...)."""
        out = super().payload()
        out["data"] = {k: v for k, v in out["data"].items() if k not in self.PER_ROW}
        return out


# -- tokens ------------------------------------------------------------------------------------
def _colour(value: float, scale: float) -> str:
    """A CSS background: red for a positive attribution, blue for a negative one, its opacity
    the attribution's share of the row's largest |attribution|."""
    r, g, b = _RGB[POSITIVE if value >= 0 else NEGATIVE]
    alpha = min(1.0, abs(value) / scale) * 0.85 if scale > 0 else 0.0
    return f"rgba({r},{g},{b},{alpha:.2f})"


def token_html(tokens: list[str], values: list[float]) -> str:
    """A row's tokens as escaped ``<span>``s coloured by attribution (word pieces ``##x`` join
    the token before them)."""
    scale = max((abs(v) for v in values), default=0.0)
    parts = []
    for k, (tok, v) in enumerate(zip(tokens, values, strict=True)):
        piece = tok.startswith("##") and k > 0
        shown = tok[2:] if piece else tok
        parts.append(("" if piece or k == 0 else " ") + (
            f'<span style="background:{_colour(v, scale)};padding:0 1px" '
            f'title="{escape(f"{tok}: {v:+.4g}")}">{escape(shown)}</span>'))
    return "".join(parts)


class TokenExplainReport(AttributionReport):
    """Shows a token attribution result (``attribution_result.TokenExplainResult``)."""

    PER_ROW: ClassVar[tuple[str, ...]] = ("tokens", "token_ids", "token_attributions",
                                          "deltas", "rows", "predictions", "explained")

    def _top_of_row(self, k: int) -> list[tuple[int, str, float]]:
        """(position, token, attribution) of row ``k``, largest |attribution| first."""
        r = self.result
        values = r.token_attributions[k]
        order = np.argsort(-np.abs(values), kind="stable")[: r.top]
        return [(int(j), r.tokens[k][j], float(values[j])) for j in order]

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows: the top tokens (global) or the row's top tokens (local)."""
        r = self.result
        if r.scope == "global":
            return (["token", f"mean |attribution| ({r.space})", "occurrences"],
                    [[t, v, r.counts.get(t, 0)] for t, v in r.top_features()])
        return (["position", "token", f"attribution ({r.space})"],
                [[j, t, v] for j, t, v in self._top_of_row(0)])

    def _caption(self) -> str:
        return "Top tokens" if self.result.scope == "global" else f"Row {self.result.row}"

    def _row_label(self, k: int) -> str:
        r = self.result
        said = f"predicts {r.predictions[k]!r}"
        if r.explained is not None and r.explained[k] != r.predictions[k]:
            said += f", explains {r.explained[k]!r}"
        return f"row {int(r.rows[k])} ({said})"

    def per_row_rows(self) -> list[list[Any]]:
        """(row, position, token, attribution) of the shown rows, for the structured view."""
        r = self.result
        out: list[list[Any]] = []
        for k in range(min(SHOWN_ROWS, len(r.rows))):
            for j, (t, v) in enumerate(zip(r.tokens[k], r.token_attributions[k], strict=True)):
                out.append([int(r.rows[k]), j, t, float(v)])
        return out[:TABLE_ROW_LIMIT]

    def sections(self) -> list[view.Section]:
        return [view.table(self._caption(), *self.table()),
                view.table("Attributions per token", ["row", "position", "token",
                                                      f"attribution ({self.result.space})"],
                           self.per_row_rows(), open=self.result.scope == "local"),
                view.text("Reading it", self._reading())]

    def text(self) -> str:
        r = self.result
        parts = [self.summary(), self._why(), "", text_table(*self.table()), ""]
        for k in range(min(TEXT_ROWS, len(r.rows))):
            top = ", ".join(f"{t} {v:+.3g}" for _, t, v in self._top_of_row(k))
            parts.append(f"{self._row_label(k)}: {top}")
        if len(r.rows) > TEXT_ROWS:
            parts.append(f"{len(r.rows) - TEXT_ROWS} more rows in r.tokens / "
                         "r.token_attributions")
        parts.append(self._reading())
        parts += [f"note: {n}" for n in r.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>',
                 f'<div class="note">{escape(self._why())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        for k in range(min(SHOWN_ROWS, len(r.rows))):
            parts.append(f'<div style="margin:.3em 0;line-height:1.7"><span class="note">'
                         f'{escape(self._row_label(k))}:</span> '
                         f'{token_html(r.tokens[k], r.token_attributions[k])}</div>')
        if len(r.rows) > SHOWN_ROWS:
            parts.append(f'<div class="note">{len(r.rows) - SHOWN_ROWS} more rows in '
                         'r.tokens / r.token_attributions</div>')
        parts.append(html_table(*self.table(), caption=self._caption()))
        parts.append(f'<div class="note">{escape(self._reading())}</div>')
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        if r.scope == "global":
            items = r.top_features()[::-1]
            title, xlabel = "top tokens", f"mean |attribution| ({r.space})"
        else:
            items = [(t, v) for _, t, v in self._top_of_row(0)][::-1]
            title, xlabel = f"row {r.row}", f"attribution ({r.space})"
        if not items:
            return None
        fig, axes = new_figure(1, size=(5.2, max(2.6, 0.3 * len(items) + 1.2)))
        ax = axes[0]
        ax.barh(range(len(items)), [v for _, v in items],
                color=[POSITIVE if v >= 0 else NEGATIVE for _, v in items], height=0.7)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_yticks(range(len(items)), [t[:28] for t, _ in items], fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(title, fontsize=10)
        return to_png(fig)


# -- images ------------------------------------------------------------------------------------
def _shown_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image (C, H, W) as matplotlib draws it: grey for one channel, RGB for three (scaled
    to [0, 1]), else the channel mean."""
    if image.shape[0] == 3:
        lo, hi = float(image.min()), float(image.max())
        rgb = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
        return np.transpose(rgb, (1, 2, 0)), None
    return image.mean(axis=0), "gray"


class ImageExplainReport(AttributionReport):
    """Shows an image attribution result (``attribution_result.ImageExplainResult``)."""

    unit: ClassVar[str] = "images"
    PER_ROW: ClassVar[tuple[str, ...]] = ("heatmaps", "images", "deltas", "rows",
                                          "predictions", "explained")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the pixels with the highest mean |attribution|."""
        r = self.result
        return (["pixel (row, column)", f"mean |attribution| ({r.space})"],
                [[p, v] for p, v in r.top_features()])

    def _caption(self) -> str:
        return "Top pixels"

    def sections(self) -> list[view.Section]:
        r = self.result
        rows = [[int(r.rows[k]), r.predictions[k], float(r.heatmaps[k].sum()), float(r.deltas[k])]
                for k in range(min(SHOWN_ROWS, len(r.rows)))]
        return [view.table(self._caption(), *self.table()),
                view.table("Images", ["row", "prediction", "sum of attributions",
                                      "convergence delta"], rows),
                view.text("Reading it", self._reading())]

    def text(self) -> str:
        r = self.result
        parts = [self.summary(), self._why(), "", text_table(*self.table()),
                 f"heat maps of shape {tuple(r.heatmaps.shape[1:])} per image in r.heatmaps",
                 self._reading()]
        parts += [f"note: {n}" for n in r.notes]
        return "\n".join(parts)

    def html_body(self) -> str:
        r = self.result
        parts = [f'<div class="summary">{escape(self.summary())}</div>',
                 f'<div class="note">{escape(self._why())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in r.notes]
        parts.append(html_table(*self.table(), caption=self._caption()))
        parts.append(f'<div class="note">{escape(self._reading())}</div>')
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        r = self.result
        count = min(IMAGE_ROWS, len(r.rows))
        if not count:
            return None
        fig, axes = new_figure(count, 2, size=(2.4, 2.4))
        for k in range(count):
            shown, cmap = _shown_image(r.images[k])
            heat = r.heatmaps[k]
            limit = float(np.abs(heat).max()) or 1.0
            top, bottom = axes[k], axes[count + k]
            top.imshow(shown, cmap=cmap)
            top.set_title(f"row {int(r.rows[k])}: {r.predictions[k]!r}", fontsize=9)
            bottom.imshow(shown, cmap=cmap)
            bottom.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.6)
            bottom.set_title("attribution", fontsize=9)
            for ax in (top, bottom):
                ax.set_xticks([])
                ax.set_yticks([])
        return to_png(fig)
