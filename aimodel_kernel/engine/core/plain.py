"""Plain Python data from numpy values: for JSON reports, MLflow and the display layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy arrays and scalars turned into lists and Python numbers, dict keys
    into strings, and NaN or infinite floats into ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    obj = plain(obj)
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj
