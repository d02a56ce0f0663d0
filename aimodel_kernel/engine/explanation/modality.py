"""What a PyTorch model's rows are, for ``explain()``: token ids, images or feature rows.

* **tokens**: integer ids (a tensor or array of ints, a dict with ``input_ids``, a tuple whose
  first integer entry holds them, a ``Dataset`` / Hugging Face ``datasets.Dataset`` of such
  items) for a model with an input embedding layer (``get_input_embeddings()`` of a Hugging Face
  model, else its first ``nn.Embedding``): per-token Integrated Gradients on that layer;
* **image**: a floating tensor or array of shape (N, C, H, W) or (N, H, W), or a ``Dataset``
  (or DataLoader) of (C, H, W) items: Integrated Gradients on the pixels;
* **tabular**: everything else, explained by today's SHAP / LIME explainers.

Integer rows for a model without an embedding layer stay tabular (the forward check then says
that the model wants floats), except a dict with ``input_ids``, which only a token model takes.
torch is imported inside functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.batches import is_tensor, split_item
from ..core.data import is_dataset, is_hf_dataset, is_loader
from ..core.errors import InputError
from ..core.nested import is_nested

TOKENS, IMAGE, TABULAR = "tokens", "image", "tabular"
IDS_KEY = "input_ids"


@dataclass(frozen=True)
class InputKind:
    """Which attribution path suits the rows, and why (shown in the result)."""

    kind: str
    reason: str


def embedding_layer(model: Any) -> tuple[Any, str] | None:
    """``(layer, how it was found)``: the model's input embedding layer, or ``None``.

    A Hugging Face model's ``get_input_embeddings()`` when it returns an ``nn.Embedding``,
    else the first ``nn.Embedding`` among the model's modules.
    """
    from torch import nn

    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            layer = getter()
        except (NotImplementedError, AttributeError):
            layer = None
        if isinstance(layer, nn.Embedding):
            return layer, "get_input_embeddings()"
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            return module, f"the first nn.Embedding ({name or 'the model'})"
    return None


def _dtype_kind(value: Any) -> str | None:
    """numpy's dtype kind letter of a tensor, array or list of numbers (``None``: not numbers)."""
    if is_tensor(value):
        if value.is_floating_point():
            return "f"
        return "b" if str(value.dtype) == "torch.bool" else "i"
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged lists of ids (a Dataset's variable-length items)
        arr = np.asarray(value[0]) if len(value) else np.zeros(0)
    return arr.dtype.kind if arr.dtype.kind in "biuf" else None


def _ndim(value: Any) -> int:
    return value.dim() if is_tensor(value) else np.ndim(value)


def _is_ids(value: Any) -> bool:
    return _dtype_kind(value) in ("i", "u")


def is_positional(X: Any) -> bool:
    """A tuple (or list) of arrays / tensors: positional inputs (``forward(a, b)``)."""
    return isinstance(X, tuple | list) and is_nested(X)


def first_item_inputs(X: Any, x_name: str = "X") -> Any:
    """The inputs of a Dataset's (or a DataLoader's dataset's) first item."""
    dataset = X.dataset if is_loader(X) else X
    if len(dataset) == 0:
        raise InputError(f"{x_name} is empty")
    inputs, _ = split_item(dataset[0])
    return inputs


def sole_input(inputs: Any) -> Any:
    """The one input of an item (a tensor or array, also a 1-tuple of one, as a
    ``TensorDataset`` of images gives), else ``None``."""
    if isinstance(inputs, tuple | list) and len(inputs) == 1:
        inputs = inputs[0]
    return inputs if is_tensor(inputs) or isinstance(inputs, np.ndarray) else None


def ids_position(inputs: Any, x_name: str = "X") -> str | int | None:
    """Where token ids sit in a batch's inputs: a dict key, a tuple position, ``None`` for
    the inputs themselves; raises when none of them holds integers."""
    if isinstance(inputs, Mapping):
        if IDS_KEY in inputs:
            return IDS_KEY
        for key, value in inputs.items():
            if _is_ids(value):
                return key
    elif isinstance(inputs, tuple | list) and not _is_ids(inputs):
        for i, value in enumerate(inputs):
            if (is_tensor(value) or isinstance(value, np.ndarray)) and _is_ids(value):
                return i
    elif _is_ids(inputs):
        return None
    raise InputError(f"{x_name} holds no integer token ids to attribute to")


def _holds_ids(inputs: Any) -> bool:
    try:
        ids_position(inputs)
    except InputError:
        return False
    return True


def input_kind(model: Any, X: Any, *, name: str = "the model", x_name: str = "X") -> InputKind:
    """The attribution path for a PyTorch ``model`` on ``X`` (see the module docstring).

    Raises
    ------
    InputError
        Token ids under ``input_ids`` (or a Dataset of them) for a model without an embedding
        layer.
    """
    dataset = is_dataset(X) or is_loader(X) or is_hf_dataset(X)
    inputs = first_item_inputs(X, x_name) if dataset else X
    keyed = isinstance(inputs, Mapping)
    ids = _holds_ids(inputs) if keyed or is_positional(inputs) else (
        _ndim(inputs) >= (1 if dataset else 2) and _is_ids(inputs))
    if ids:
        found = embedding_layer(model)
        where = "a dataset of token ids" if dataset else (
            f"{x_name}[{IDS_KEY!r}] holds token ids" if keyed and IDS_KEY in inputs
            else f"{x_name} holds integer token ids")
        if found is not None:
            return InputKind(TOKENS, f"{where} and {name} embeds them with {found[1]}")
        if keyed or dataset:
            raise InputError(f"{x_name} holds token ids but {name} has no nn.Embedding layer to "
                             "attribute them to; pass the rows the model takes as floats, or a "
                             "model with an input embedding layer")
        return InputKind(TABULAR, f"{x_name} holds integers but {name} has no nn.Embedding")
    image = sole_input(inputs) if dataset else None
    if image is not None and _dtype_kind(image) == "f" and _ndim(image) == 3:
        return InputKind(IMAGE, f"{x_name} is a dataset of images (C, H, W)")
    if not dataset and not keyed and not is_positional(inputs) and _dtype_kind(inputs) == "f":
        ndim = _ndim(inputs)
        if ndim == 4:
            return InputKind(IMAGE, f"{x_name} is a batch of images (N, C, H, W)")
        if ndim == 3:
            return InputKind(IMAGE, f"{x_name} is a batch of 2-D inputs (N, H, W), such as "
                                     "single-channel images")
    return InputKind(TABULAR, f"{x_name} holds feature rows")
