"""Rows of token inputs, one at a time, as the model takes them (the batch contract of
``core/batches.py``): a tensor of ids, a tuple of positional inputs or a dict of keyword inputs,
each a batch of one row with its ids kept as int64.

Rows come from an array or tensor of ids, a dict or tuple of array-likes with the same first
dimension, a map-style ``Dataset`` (or a DataLoader's dataset: rows are read one at a time, so
variable-length items need no padding) or a Hugging Face ``datasets.Dataset``. Targets inside
the items (``labels`` / ``label``, or the ``y`` of ``(x, y)`` pairs) are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.batches import TARGET_KEYS, is_tensor, split_item
from ..core.data import is_dataset, is_hf_dataset, is_loader
from ..core.errors import InputError
from .modality import first_item_inputs, ids_position, is_positional

MASK_KEY = "attention_mask"


def _tensor(value: Any, device: Any, dtype: Any) -> Any:
    """One row's leaf as a tensor with a batch dimension: ints as int64, floats as ``dtype``."""
    import torch

    t = value if is_tensor(value) else torch.as_tensor(np.asarray(value))
    if t.is_floating_point():
        t = t.to(dtype)
    elif t.dtype not in (torch.bool, torch.uint8):
        t = t.long()
    return t.to(device).unsqueeze(0)


class TokenRows:
    """The rows of ``X`` for a token model, each a batch of one (tensor, tuple or dict).

    Parameters
    ----------
    X : the user's rows (see the module docstring)
    device, dtype : the module's device and floating dtype
    x_name : str
        The user's name of ``X``, for messages.
    """

    def __init__(self, X: Any, device: Any, dtype: Any, x_name: str = "X") -> None:
        self.device, self.dtype, self.x_name = device, dtype, x_name
        self._dataset = X.dataset if is_loader(X) else X
        self._items = is_dataset(X) or is_loader(X) or is_hf_dataset(X)
        if self._items:
            first = first_item_inputs(X, x_name)
        elif isinstance(X, Mapping):
            X = {k: v for k, v in X.items() if k not in TARGET_KEYS}
            first = X
        elif is_positional(X):
            first = tuple(X)
        else:
            first = X
        self._X = first if not self._items else None
        self.where = ids_position(first, x_name)
        self.n = len(self._dataset) if self._items else self._length(first)

    def _length(self, inputs: Any) -> int:
        leaves = list(inputs.values()) if isinstance(inputs, Mapping) else (
            list(inputs) if isinstance(inputs, tuple) else [inputs])
        sizes = {len(v) for v in leaves if is_tensor(v) or np.ndim(v) > 0}
        if len(sizes) != 1:
            raise InputError(f"the inputs in {self.x_name} have different numbers of rows "
                             f"({', '.join(str(s) for s in sorted(sizes))}); give every input "
                             "one row per sample")
        n = sizes.pop()
        if n == 0:
            raise InputError(f"{self.x_name} is empty")
        return n

    def __len__(self) -> int:
        return self.n

    def row(self, i: int) -> Any:
        """Row ``i`` as the model takes it: a batch of one on the module's device."""
        if self._items:
            inputs, _ = split_item(self._dataset[int(i)])
            if isinstance(inputs, Mapping):
                inputs = {k: v for k, v in inputs.items() if k not in TARGET_KEYS}
        else:
            inputs = self._X
            if isinstance(inputs, Mapping):
                inputs = {k: v[int(i)] for k, v in inputs.items()}
            elif isinstance(inputs, tuple):
                inputs = tuple(v[int(i)] for v in inputs)
            else:
                inputs = inputs[int(i)]
        return self._as_batch(inputs)

    def _as_batch(self, inputs: Any) -> Any:
        def leaf(v: Any) -> Any:
            return _tensor(v, self.device, self.dtype)

        if isinstance(inputs, Mapping):
            return {k: leaf(v) for k, v in inputs.items()}
        if isinstance(inputs, tuple | list) and self.where is not None:
            return tuple(leaf(v) for v in inputs)
        return leaf(inputs)

    # -- the parts of one row ------------------------------------------------------------------
    def ids(self, batch: Any) -> Any:
        """The token ids of a row batch (shape (1, L), int64)."""
        return batch if self.where is None else batch[self.where]

    def mask(self, batch: Any) -> Any:
        """The row's attention mask when its inputs carry one (dict key ``attention_mask``)."""
        if isinstance(batch, Mapping):
            return batch.get(MASK_KEY)
        return None

    def others(self, batch: Any) -> tuple[list[Any], tuple[Any, ...]]:
        """``(keys or positions, values)`` of the row's inputs besides the ids, in order:
        passed through as Captum's additional forward arguments."""
        if isinstance(batch, Mapping):
            keys = [k for k in batch if k != self.where]
            return keys, tuple(batch[k] for k in keys)
        if isinstance(batch, tuple):
            keys = [i for i in range(len(batch)) if i != self.where]
            return keys, tuple(batch[i] for i in keys)
        return [], ()

    def rebuild(self, ids: Any, keys: list[Any], values: tuple[Any, ...]) -> Any:
        """The inputs of the model with ``ids`` in the ids' place (batch of any size)."""
        if self.where is None:
            return ids
        if isinstance(self.where, str):
            return {self.where: ids, **dict(zip(keys, values, strict=True))}
        parts = dict(zip(keys, values, strict=True))
        parts[self.where] = ids
        return tuple(parts[i] for i in range(len(parts)))
