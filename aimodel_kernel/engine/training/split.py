"""Training / validation rows: a seeded (stratified) split of the checked data."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.data import Data, TaskInfo, take_rows
from ..core.errors import InputError


def split_indices(
    data: Data, task: TaskInfo, val: float, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Train / validation row indices for a ``val`` fraction (stratified for classes)."""
    if not val:
        return None, None
    n = data.n_samples
    n_val = round(n * val)
    if n_val < 1 or n - n_val < 1:
        raise InputError(f"--val {val} leaves an empty split of {n} rows; use a fraction like 0.2")
    from sklearn.model_selection import train_test_split

    stratify = None
    if task.is_classification:
        _, counts = np.unique(data.y, return_counts=True)
        if counts.min() >= 2 and n_val >= len(counts):
            stratify = data.y
    idx = np.arange(n)
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(va)


def rows(data: Data, index: np.ndarray | None) -> tuple[Any, Any]:
    """``(X, y)`` restricted to ``index`` (all rows when ``None``)."""
    if index is None:
        return data.X, data.y
    return take_rows(data.X, index), data.y[index]
