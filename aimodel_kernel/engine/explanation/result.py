"""What :func:`~aimodel_kernel.engine.explanation.entry.explain` returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..core.plain import jsonable


@dataclass
class ExplainResult:
    """SHAP (or LIME) values of a model: one row (``scope="local"``) or a sample (``"global"``).

    ``values[i, j]`` is feature ``j``'s contribution to the explained output for row
    ``rows[i]`` of X; ``base_values[i] + values[i].sum()`` is that output (SHAP). ``importance``
    is mean |value| per feature, largest first. With ``--method both`` the SHAP result carries
    the LIME one, of the same shape, as ``lime``.
    """

    scope: str
    method: str
    explainer: str
    reason: str
    features: list[str]
    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    rows: np.ndarray
    explained: list[Any] | None
    output: str
    space: str
    importance: dict[str, float]
    n_rows: int
    background_size: int
    seed: int
    top: int
    background_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    row: int | None = None
    prediction: Any = None
    probability: float | None = None
    lime: ExplainResult | None = None
    conditions: list[str] | None = None
    score: float | None = None
    model_name: str = ""
    seconds: float = 0.0
    run_id: str | None = None
    logged: bool = False
    artifact_dir: str = "explain"
    notes: list[str] = field(default_factory=list)
    tracking_uri: str | None = None

    @property
    def sample_size(self) -> int:
        """Rows explained."""
        return len(self.rows)

    @property
    def base_value(self) -> float | None:
        """The expected output the values start from (``None`` if it differs between rows)."""
        if not len(self.base_values):
            return None
        first = float(self.base_values[0])
        return first if np.allclose(self.base_values, first) else None

    def top_features(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` (default ``top``) most important features and their importance."""
        return list(self.importance.items())[: k or self.top]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN becomes ``None``)."""
        skip = ("tracking_uri", "lime")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out.update(sample_size=self.sample_size, base_value=self.base_value,
                   lime=self.lime.to_dict() if self.lime is not None else None)
        return jsonable(out)
