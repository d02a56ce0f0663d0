"""What ``explain()`` returns for token and image inputs: Integrated Gradients attributions.

Both results share the fields that ``record.py`` logs and ``%diff`` compares with tabular
results (``method``, ``explainer``, ``importance``, ``output``, ``sample_size`` ...), so an
explanation of a token model is recorded like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..core.plain import jsonable


@dataclass
class AttributionResult:
    """Fields common to token and image attributions (see the subclasses)."""

    scope: str
    method: str
    explainer: str
    reason: str
    rows: np.ndarray
    explained: list[Any] | None
    predictions: list[Any]
    output: str
    space: str
    importance: dict[str, float]
    deltas: np.ndarray
    n_steps: int
    baseline: str
    n_rows: int
    seed: int
    top: int
    row: int | None = None
    prediction: Any = None
    model_name: str = ""
    seconds: float = 0.0
    run_id: str | None = None
    logged: bool = False
    artifact_dir: str = "explain"
    notes: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    background_size: int = 0  # no background rows: the baseline is one input

    @property
    def sample_size(self) -> int:
        """Rows explained."""
        return len(self.rows)

    @property
    def max_delta(self) -> float:
        """The largest |convergence delta| over the explained rows."""
        return float(np.abs(self.deltas).max()) if len(self.deltas) else 0.0

    def top_features(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` (default ``top``) largest entries of ``importance``."""
        return list(self.importance.items())[: k or self.top]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tracking_uri"}
        out.update(sample_size=self.sample_size, max_delta=self.max_delta)
        return jsonable(out)


@dataclass
class TokenExplainResult(AttributionResult):
    """Per-token attributions: ``token_attributions[i][t]`` is token ``tokens[i][t]``'s share of
    the explained output of row ``rows[i]`` (summed over the embedding dimension); padding
    (attention mask 0) is dropped. ``importance`` is mean |attribution| per distinct token over
    the explained rows, largest first. ``sum(token_attributions[i])`` equals
    f(row) - f(baseline) up to ``deltas[i]``."""

    tokens: list[list[str]] = field(default_factory=list)
    token_ids: list[list[int]] = field(default_factory=list)
    token_attributions: list[list[float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    tokenizer: str | None = None
    embedding: str = ""
    kind: str = "tokens"


@dataclass
class ImageExplainResult(AttributionResult):
    """Pixel attributions: ``heatmaps[i]`` (H, W) is the attribution of each pixel of row
    ``rows[i]``, summed over channels; ``images[i]`` is that row's input (C, H, W) for
    drawing. ``importance`` is mean |attribution| per pixel (``"r,c"``), largest first."""

    heatmaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    images: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0)))
    kind: str = "image"
