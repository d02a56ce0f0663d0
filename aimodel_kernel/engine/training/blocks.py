"""The blocks of a model: the repeated submodules that ``--strategy fsdp`` shards one by one and
``--activation-checkpointing`` wraps one by one (a transformer's layers, a stack's children).

Found in this order:

1. ``--blocks CLASSES``: every submodule whose class name is listed (a name that matches
   nothing is refused, naming the classes the model has);
2. a Hugging Face model's ``_no_split_modules`` (the classes transformers itself never splits
   across devices: ``GPT2Block``, ``LlamaDecoderLayer`` ...), when they occur;
3. the children of each ``nn.ModuleList`` / ``nn.Sequential`` holding at least two children of
   one class (``BertEncoder.layer``, a ``Sequential`` of residual blocks).

Only the outermost matches count: a block inside another block is not one of its own. torch is
imported inside the functions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.errors import InputError

MIN_REPEATS = 2  # children of one class that make a container a stack of blocks


def find_blocks(model: Any, classes: str | None = None) -> list[tuple[str, Any]]:
    """``(qualified name, module)`` of each block of ``model``, in module order.

    Parameters
    ----------
    model : torch.nn.Module
    classes : str, optional
        Comma-separated class names (``--blocks``); detected when not given.

    Returns
    -------
    list of (str, torch.nn.Module)
        Empty when the model has no repeated submodules (it is then one block: the root).

    Raises
    ------
    InputError
        A ``--blocks`` class name that no submodule has.
    """
    if classes is not None:
        wanted = [c.strip() for c in str(classes).split(",") if c.strip()]
        present = {type(m).__name__ for _, m in model.named_modules()}
        missing = [c for c in wanted if c not in present]
        if not wanted or missing:
            shown = ", ".join(sorted(present - {type(model).__name__})[:12])
            raise InputError(f"--blocks {classes}: {type(model).__name__} has no submodule of "
                             f"class {', '.join(missing) or repr(classes)}; its classes are: "
                             f"{shown}")
        return _outermost(model, lambda _, m: type(m).__name__ in wanted)
    hf = set(getattr(model, "_no_split_modules", None) or ())
    if hf:
        found = _outermost(model, lambda _, m: type(m).__name__ in hf)
        if found:
            return found
    stacks = _stack_children(model)
    return _outermost(model, lambda name, _: name in stacks)


def block_classes(blocks: list[tuple[str, Any]]) -> list[str]:
    """The distinct class names of ``blocks``, in order (for notes and records)."""
    return list(dict.fromkeys(type(m).__name__ for _, m in blocks))


def _stack_children(model: Any) -> set[str]:
    """Qualified names of the children of every container holding repeated classes."""
    from torch import nn

    names: set[str] = set()
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.ModuleList | nn.Sequential):
            continue
        counts = Counter(type(child).__name__ for child in module.children())
        for child_name, child in module.named_children():
            if counts[type(child).__name__] >= MIN_REPEATS and any(
                    True for _ in child.parameters()):
                names.add(f"{prefix}.{child_name}" if prefix else child_name)
    return names


def _outermost(model: Any, matches) -> list[tuple[str, Any]]:
    """The submodules (never the root) ``matches(name, module)`` accepts, leaving out those
    inside an accepted one."""
    found: list[tuple[str, Any]] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(f"{outer}.") for outer, _ in found):
            continue
        if matches(name, module):
            found.append((name, module))
    return found
