"""Targets: read from a Dataset's items (``(x, y)`` pairs, ``((a, b), y)``, dicts with
``labels`` / ``label``) or a Hugging Face dataset's label column, and checked (numbers or
labels of one type, nothing missing)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .batches import TARGET_KEYS, split_item
from .errors import InputError
from .kinds import is_hf_dataset, to_numpy


def dataset_targets(dataset: Any) -> np.ndarray:
    """The targets of a map-style Dataset, read once.

    A Hugging Face ``datasets.Dataset`` gives its ``labels`` (or ``label``) column directly; a
    Dataset with a ``targets`` attribute of one per item (torchvision) that; otherwise every
    item is read: the second element of an ``(x, y)`` pair, or a dict item's ``labels`` /
    ``label``.

    Raises
    ------
    InputError
        The items carry no target.
    """
    if is_hf_dataset(dataset):
        key = next((k for k in TARGET_KEYS if k in dataset.column_names), None)
        if key is None:
            raise InputError(
                f"the dataset has no 'labels' or 'label' column to train on (its columns: "
                f"{', '.join(dataset.column_names[:6])}); add one, e.g. "
                "X = X.rename_column('target', 'labels')")
        return np.asarray(dataset.with_format("numpy", columns=[key])[key])
    targets = getattr(dataset, "targets", None)
    if targets is not None and not isinstance(targets, str) and _sized(targets) \
            and len(targets) == len(dataset):
        return to_numpy(targets).reshape(len(dataset), -1).squeeze(-1)
    first = dataset[0]
    if split_item(first)[1] is None:
        raise InputError(
            f"{type(dataset).__name__} items must carry a target to train on: (x, y) pairs, "
            f"((a, b), y), or dicts with 'labels'; the first item is a {_shown(first)}")
    return np.stack([to_numpy(split_item(dataset[i])[1]) for i in range(len(dataset))])


def _sized(obj: Any) -> bool:
    try:
        len(obj)
    except TypeError:
        return False
    return True


def _shown(item: Any) -> str:
    if isinstance(item, dict):
        return f"dict with keys {', '.join(map(str, list(item)[:6]))}"
    return type(item).__name__


def check_target(y: np.ndarray, name: str) -> np.ndarray:
    """``y`` checked: no missing values, numbers or labels of one type (an ``object`` array of
    numbers comes back numeric)."""
    if y.dtype.kind == "O":
        y = _uniform_target(y, name)
    kind = y.dtype.kind
    if kind in "mM":
        raise InputError(f"{name} holds {y.dtype} values; a target must be numbers or class "
                         f"labels: convert it first (e.g. {name}.astype('int64') or a label per "
                         "period)")
    if kind in "cV":
        raise InputError(f"{name} has dtype {y.dtype}; a target must be real numbers or class "
                         "labels")
    if kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            raise InputError(
                f"{name} has {int(bad.sum())} NaN or infinite values (first at row "
                f"{int(np.flatnonzero(bad)[0])}); drop or fill those rows first"
            )
    return y


def _uniform_target(y: np.ndarray, name: str) -> np.ndarray:
    import pandas as pd

    missing = np.flatnonzero(pd.isna(y))
    if len(missing):
        raise InputError(f"{name} has missing values (first at row {missing[0]}); drop them")
    values = y.tolist()
    types = {type(v) for v in values}
    if all(issubclass(t, bool | int | float) for t in types):
        return np.asarray(values)  # numbers held as objects: the numeric array they make
    if all(issubclass(t, str | bytes) for t in types):
        return y  # text labels stay as given (their fingerprint is recorded this way)
    kinds = ", ".join(sorted(t.__name__ for t in types)[:4])
    if len(types) == 1:
        raise InputError(f"{name} holds {kinds} values; a target must be numbers or text labels: "
                         "convert it first")
    raise InputError(f"{name} mixes value types ({kinds}); make its values one type, e.g. "
                     f"{name}.astype(str)")
