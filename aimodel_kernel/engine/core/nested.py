"""Nested inputs: ``X`` as a tuple/list of arrays (positional inputs, ``forward(x_num, x_cat)``)
or a dict of them (keyword inputs, ``input_ids`` / ``attention_mask``), each leaf one row per
sample. The leaves are named as the user would index them (``X['input_ids']``, ``X[0]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .batches import TARGET_KEYS
from .kinds import is_frame, is_sparse, is_tensor


def _is_leaf_array(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) or is_tensor(obj) or is_frame(obj)


def is_nested(X: Any) -> bool:
    """Whether ``X`` is a dict of array-likes, a tuple of arrays / tensors / frames, or a list
    of tensors or of arrays of different shapes (a list of equally shaped numpy arrays stays
    rows, as a list of lists does: pass a tuple for positional inputs)."""
    if is_sparse(X) or is_frame(X):  # a DOK matrix is a dict
        return False
    if isinstance(X, Mapping):
        return len(X) > 0
    if not isinstance(X, list | tuple) or hasattr(X, "_fields") or not X:
        return False
    if not all(_is_leaf_array(v) or isinstance(v, Mapping) for v in X):
        return False
    if isinstance(X, tuple):
        return True
    arrays = all(isinstance(v, np.ndarray) for v in X)
    return not arrays or len({v.shape for v in X}) > 1


def map_leaves(fn: Callable[[str, Any], Any], X: Any, name: str = "X") -> Any:
    """``X`` with ``fn(leaf_name, leaf)`` applied to every leaf (dicts, tuples, lists rebuilt
    as plain ones of the same kind)."""
    if isinstance(X, Mapping) and not is_sparse(X):
        return {k: map_leaves(fn, v, f"{name}[{k!r}]") for k, v in X.items()}
    if isinstance(X, list | tuple) and not hasattr(X, "_fields") and is_nested(X):
        return type(X)(map_leaves(fn, v, f"{name}[{i}]") for i, v in enumerate(X))
    return fn(name, X)


def leaves(X: Any, name: str = "X") -> list[tuple[str, Any]]:
    """``(leaf_name, leaf)`` of every leaf of a nested ``X``, in order (dicts in key order)."""
    found: list[tuple[str, Any]] = []
    map_leaves(lambda n, leaf: found.append((n, leaf)), X, name)
    return found


def split_target(X: Mapping) -> tuple[dict[str, Any], Any, str | None]:
    """A dict ``X`` without its ``labels`` / ``label`` entry, that entry and its key."""
    for key in TARGET_KEYS:
        if key in X:
            return {k: v for k, v in X.items() if k != key}, X[key], key
    return dict(X), None, None
