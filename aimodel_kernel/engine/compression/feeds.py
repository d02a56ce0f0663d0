"""A PyTorch batch (a tensor, a tuple of inputs or a dict of inputs: the batch contract of
:mod:`~aimodel_kernel.engine.core.batches`) as the exporters and onnxruntime take it: export
arguments with a dynamic batch dimension (and a dynamic sequence dimension for token ids),
onnxruntime feeds by input name (``store.onnx_model.onnx_feeds``), and the same rows at another
sequence length.

Token ids are the integer inputs of two or more dimensions; their second dimension is the
sequence, shared by all of them (``input_ids`` and ``attention_mask`` have the same length).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import batches as contract
from ..store.onnx_model import onnx_feeds

__all__ = ["at_length", "dynamic_shapes", "export_args", "has_sequence", "input_names",
           "is_sequence", "onnx_feeds", "other_length", "sequence_length"]

def is_sequence(t: Any) -> bool:
    """An integer input with a second dimension: token ids (or their mask)."""
    import torch

    return t.dim() >= 2 and not (t.is_floating_point() or t.is_complex()) and \
        t.dtype != torch.bool


def has_sequence(example: Any) -> bool:
    """Whether any input of ``example`` is token ids (a dynamic sequence length to export)."""
    return any(is_sequence(t) for t in contract.tensors(example))


def sequence_length(example: Any) -> int | None:
    """The sequence length of the token ids in ``example`` (``None`` without any)."""
    lengths = [int(t.shape[1]) for t in contract.tensors(example) if is_sequence(t)]
    return lengths[0] if lengths else None


def export_args(example: Any) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` of a forward call on ``example``, as :func:`.batches.call` makes it."""
    if isinstance(example, Mapping):
        return (), dict(example)
    if isinstance(example, list | tuple):
        return tuple(example), {}
    return (example,), {}


def dynamic_shapes(example: Any, batch: Any, seq: Any | None) -> Any:
    """``torch.export`` dynamic shapes for ``example``: dimension 0 of every input is
    ``batch``, dimension 1 of token ids ``seq`` (when given); the structure of the arguments."""
    def one(t: Any) -> Any:
        if not contract.is_tensor(t) or t.dim() == 0:
            return None
        dims = {0: batch}
        if seq is not None and is_sequence(t):
            dims[1] = seq
        return dims

    if isinstance(example, Mapping):
        return {k: one(v) for k, v in example.items()}
    if isinstance(example, list | tuple):
        return tuple(one(v) for v in example)
    return (one(example),)


def input_names(model: Any, example: Any) -> list[str]:
    """The names of the inputs of ``example``: the dict keys, else the forward's parameters."""
    if isinstance(example, Mapping):
        return list(example)
    import inspect

    count = len(example) if isinstance(example, list | tuple) else 1
    try:
        params = [p.name for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]


def at_length(rows: Any, length: int) -> Any:
    """``rows`` with every token-id input cut (or tiled) to ``length`` positions."""
    import torch

    def one(t: Any) -> Any:
        if not is_sequence(t):
            return t
        if t.shape[1] >= length:
            return t[:, :length].contiguous()
        reps = -(-length // t.shape[1])
        return torch.cat([t] * reps, dim=1)[:, :length].contiguous()

    return contract.map_tensors(one, rows)


def other_length(length: int) -> int:
    """A second sequence length to check an export at: shorter by a third, or 2 for 1."""
    return length - max(1, length // 3) if length > 1 else 2
