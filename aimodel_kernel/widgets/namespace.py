"""Which objects in the user namespace can be a model, features X or targets y.

Only cheap type checks: torch, pandas and scipy are looked up in ``sys.modules`` (an object can
only be one of theirs if the package is already imported), so listing never imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

HIDDEN = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def _visible(ns: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in ns.items()
            if not name.startswith("_") and name not in HIDDEN and not isinstance(value, type)]


def is_model(value: Any) -> bool:
    """A scikit-learn style estimator (``fit`` and ``get_params``) or a ``torch.nn.Module``."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        return True
    return callable(getattr(value, "fit", None)) and callable(getattr(value, "get_params", None))


def _nested_rows(value: Any, torch: Any) -> int | None:
    """Rows of a dict of inputs (``input_ids``, ``attention_mask`` ...) or a tuple of them
    (``forward(x_num, x_cat)``): arrays or tensors with one first dimension, else ``None``."""
    leaves = list(value.values()) if isinstance(value, Mapping) else list(value)
    if not leaves or (isinstance(value, Mapping) and not all(isinstance(k, str) for k in value)):
        return None
    arrays = (np.ndarray,) if torch is None else (np.ndarray, torch.Tensor)
    if not all(isinstance(v, arrays) and v.ndim >= 1 for v in leaves):
        return None
    rows = {int(v.shape[0]) for v in leaves}
    return rows.pop() if len(rows) == 1 else None


def rows_of(value: Any) -> int | None:
    """The number of rows of something usable as X (2-D array, DataFrame, sparse matrix, tensor,
    a dict or tuple of model inputs, map-style Dataset, DataLoader or Hugging Face dataset),
    else ``None``."""
    torch = sys.modules.get("torch")
    pd = sys.modules.get("pandas")
    sp = sys.modules.get("scipy.sparse")
    if isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor)):
        return int(value.shape[0]) if value.ndim >= 2 else None
    if isinstance(value, Mapping) or (isinstance(value, tuple) and len(value) >= 2):
        return _nested_rows(value, torch)
    if hasattr(value, "column_names") and hasattr(value, "set_format"):  # a datasets.Dataset
        return len(value)
    if pd is not None and isinstance(value, pd.DataFrame):
        return len(value)
    if sp is not None and sp.issparse(value):
        return int(value.shape[0])
    if torch is not None:
        data = torch.utils.data
        if isinstance(value, data.DataLoader):
            value = value.dataset
        if isinstance(value, data.Dataset) and hasattr(value, "__len__"):
            try:
                return len(value)
            except TypeError:
                return None
    return None


def is_dataset(value: Any) -> bool:
    """A Dataset or DataLoader: it yields its own targets, so it takes no y."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.utils.data.Dataset
                                            | torch.utils.data.DataLoader)


def length_of_target(value: Any) -> int | None:
    """The length of something usable as y (1-D array, Series, tensor, or one column), else
    ``None``."""
    torch = sys.modules.get("torch")
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.Series):
        return len(value)
    array = isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor))
    if array and (value.ndim == 1 or (value.ndim == 2 and value.shape[1] == 1)):
        return int(value.shape[0])
    return None


def models(ns: Mapping[str, Any]) -> list[str]:
    """Names of the estimators and modules, in the namespace's order."""
    return [name for name, value in _visible(ns) if is_model(value)]


def features(ns: Mapping[str, Any], min_rows: int = 2) -> list[str]:
    """Names usable as X, with at least ``min_rows`` rows."""
    out = []
    for name, value in _visible(ns):
        n = rows_of(value)
        if n is not None and n >= min_rows:
            out.append(name)
    return out


def targets(ns: Mapping[str, Any], n_rows: int | None = None) -> list[str]:
    """Names usable as y; only those of length ``n_rows`` when X is chosen."""
    out = []
    for name, value in _visible(ns):
        n = length_of_target(value)
        if n is not None and n >= 2 and (n_rows is None or n == n_rows):
            out.append(name)
    return out
