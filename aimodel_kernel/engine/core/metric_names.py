"""What metric names mean: the one headline list, which direction is better, how to word them.

Shared by ``%versions`` (the headline columns), ``%diff`` (the summary's metric and every
delta's direction), sweeps (the ranking metric), the server's model list and the reports.
"""

from __future__ import annotations

import math
import re
from typing import Any

HEADLINE = (
    "eval.accuracy", "eval.roc_auc", "eval.r2", "eval.f1_macro", "val_accuracy", "val_r2",
    "eval.rmse", "eval.mae", "val_mae", "val_loss", "train_accuracy", "train_r2", "loss",
)
"""Metrics that best say how good a version is, most telling first: evaluations on given data,
then the validation split, then the training rows."""

# metrics of the machine and the run, not of the model: never counted as a behaviour change
MACHINE_METRICS = ("fit_seconds", "train_seconds", "samples_per_second", "model_bytes")


def headline_metrics(metrics: dict[str, float], n: int = 3) -> dict[str, float]:
    """The first ``n`` of :data:`HEADLINE` that ``metrics`` has, in that order."""
    return {k: metrics[k] for k in [k for k in HEADLINE if k in metrics][:n]}


def metric_label(name: str) -> str:
    """``eval.roc_auc`` -> ``roc auc``."""
    return (name[len("eval."):] if name.startswith("eval.") else name).replace("_", " ")


_FRACTION = re.compile(r"accuracy|precision|recall|f1|auc")


_LOWER_FIRST = ("difference", "disparity", "gap")


_HIGHER = ("accuracy", "auc", "f1", "precision", "recall", "r2", "ratio", "per_second", "score")


_LOWER = ("loss", "rmse", "mae", "mse", "error", "latency", "bytes", "size", "seconds", "time")


def higher_is_better(name: str) -> bool | None:
    """``True`` for accuracy-like names, ``False`` for losses, errors, sizes; else ``None``."""
    low = name.lower()
    if any(w in low for w in _LOWER_FIRST):
        return False
    if any(w in low for w in _HIGHER):
        return True
    if any(w in low for w in _LOWER):
        return False
    return None


def is_fraction(name: str) -> bool:
    """Accuracy-like metrics in [0, 1], whose deltas read best in percentage points."""
    return bool(_FRACTION.search(name.lower())) and "loss" not in name.lower()


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st`` ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def format_delta(name: str, delta: float) -> str:
    """A signed delta: percentage points for accuracy-like metrics, else 3 significant figures."""
    if is_fraction(name):
        return f"{delta * 100:+.1f} pt"
    return f"{delta:+.3g}"


def finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when absent, NaN or infinite."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def delta(va: Any, vb: Any) -> dict[str, Any]:
    """``{"a", "b", "delta"}`` with ``delta = b - a`` when both are finite numbers."""
    va, vb = finite(va), finite(vb)
    return {"a": va, "b": vb, "delta": vb - va if va is not None and vb is not None else None}
