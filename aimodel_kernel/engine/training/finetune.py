"""Transfer learning on a pretrained module: freezing by name patterns, a separate learning rate
for the new head, and LoRA adapters (PEFT).

Parameter names are the module's own (``model.named_parameters()``), matched with shell-style
globs (``bert.embeddings.*``, ``bert.encoder.layer.[0-3].*``), so what a user writes is what
``print(model)`` shows.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError, require

HEAD_NAMES = ("classifier", "score", "head", "lm_head", "fc", "out", "output_layer")
"""Child modules that are a model's task head (Hugging Face uses ``classifier``/``score``)."""

LORA_LAYER_HINTS = ("query", "key", "value", "q_proj", "k_proj", "v_proj", "o_proj",
                    "out_proj", "qkv", "attn", "attention", "dense", "fc1", "fc2", "mlp",
                    "up_proj", "down_proj", "gate_proj", "intermediate", "output")
"""Names of the linear layers of attention and MLP blocks, LoRA's default targets."""

UNSUPPORTED_BY_LORA = ("GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell")


@dataclass(frozen=True)
class ParameterCounts:
    """How many parameters a module has and how many of them train."""

    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def describe(self) -> str:
        return (f"{self.trainable:,} of {self.total:,} parameters trainable "
                f"({100 * self.fraction:.2f} %)")


def parameter_counts(model: Any) -> ParameterCounts:
    """Trainable and total parameters of ``model`` (shared tensors counted once)."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return ParameterCounts(trainable, total)


def matching(model: Any, patterns: list[str]) -> list[str]:
    """Parameter names matching any of ``patterns``, in the module's order.

    Raises
    ------
    InputError
        A pattern matches no parameter (the message shows a few names to pick from).
    """
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            shown = ", ".join(_examples(names))
            raise InputError(f"--freeze pattern {pattern!r} matches no parameter of "
                             f"{type(model).__name__} (names look like: {shown})")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _examples(names: list[str], n: int = 4) -> list[str]:
    picks = [names[0], names[len(names) // 2], names[-1]] if names else []
    return list(dict.fromkeys(picks))[:n]


def freeze(model: Any, patterns: list[str]) -> list[str]:
    """Stop the gradients of the parameters matching ``patterns``; return their names.

    Raises
    ------
    InputError
        A pattern matches nothing, or everything would be frozen.
    """
    names = set(matching(model, patterns))
    params = dict(model.named_parameters())
    if names == set(params):
        raise InputError("--freeze would freeze every parameter: nothing would train; "
                         "leave the head out of the patterns")
    for name in names:
        params[name].requires_grad_(False)
    return [n for n in params if n in names]


def unfreeze(model: Any, names: list[str]) -> None:
    """Let the named parameters train again (``--unfreeze-after``)."""
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(True)


def head_prefixes(model: Any) -> list[str]:
    """Names of the task head's child modules (``classifier``, ``score``, ``fc`` ...), or the
    last child with parameters when none has such a name."""
    children = [(name, child) for name, child in model.named_children()
                if any(True for _ in child.parameters())]
    heads = [name for name, _ in children if name in HEAD_NAMES]
    if not heads and children:
        heads = [children[-1][0]]
    return heads


def parameter_groups(model: Any, lr: float, lr_head: float | None) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``lr_head``, the rest (the backbone) at ``lr``.

    Only trainable parameters are included; without ``lr_head`` there is one group.
    """
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if lr_head is None:
        return [{"params": [p for _, p in trainable], "lr": lr}]
    prefixes = tuple(f"{h}." for h in head_prefixes(model))
    head = [p for n, p in trainable if n.startswith(prefixes)]
    body = [p for n, p in trainable if not n.startswith(prefixes)]
    if not head:
        raise InputError("--lr-head: no trainable head found (a child module named "
                         f"{', '.join(HEAD_NAMES[:3])} ...)")
    groups = [{"params": head, "lr": lr_head, "name": "head"}]
    if body:
        groups.insert(0, {"params": body, "lr": lr, "name": "backbone"})
    return groups


def lora_targets(model: Any) -> list[str]:
    """LoRA's default targets: the ``nn.Linear`` layers inside attention and MLP blocks (by
    their names), never the task head."""
    from torch import nn

    heads = tuple(head_prefixes(model))
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or not name or name.split(".")[0] in heads:
            continue
        leaf_path = name.lower()
        if any(hint in leaf_path for hint in LORA_LAYER_HINTS):
            found.append(name.rsplit(".", 1)[-1])
    return sorted(set(found))


def check_lora_targets(model: Any, targets: list[str]) -> None:
    """Refuse targets PEFT cannot adapt (recurrent layers) or that name no module."""
    by_leaf: dict[str, list[Any]] = {}
    for name, module in model.named_modules():
        by_leaf.setdefault(name.rsplit(".", 1)[-1], []).append(module)
    for target in targets:
        modules = by_leaf.get(target)
        if not modules:
            raise InputError(f"--lora-targets {target!r} names no module of "
                             f"{type(model).__name__}")
        bad = [type(m).__name__ for m in modules if type(m).__name__ in UNSUPPORTED_BY_LORA]
        if bad:
            raise InputError(f"--lora-targets {target!r} is a {bad[0]} layer, which LoRA (PEFT) "
                             "cannot adapt; target its Linear layers, or fine-tune without --lora")


def apply_lora(model: Any, r: int, *, alpha: float | None = None,
               targets: list[str] | None = None, dropout: float = 0.0) -> Any:
    """``model`` wrapped with LoRA adapters of rank ``r`` (PEFT): only the adapters and the
    task head train.

    Parameters
    ----------
    model : torch.nn.Module
    r : int
        The adapters' rank.
    alpha : float, optional
        The scaling numerator (``2 * r`` by default).
    targets : list of str, optional
        Module names (last part) to adapt; :func:`lora_targets` by default.
    dropout : float

    Returns
    -------
    peft.PeftModel
        Sharing its weights with ``model``.

    Raises
    ------
    InputError
        ``r`` below 1, no target found, or a target PEFT cannot adapt.
    """
    if r < 1:
        raise InputError(f"--lora takes a rank of at least 1; got {r}")
    peft = require("peft", extra="hf", purpose="LoRA fine-tuning")
    chosen = targets or lora_targets(model)
    if not chosen:
        raise InputError(f"--lora found no attention or MLP Linear layers in "
                         f"{type(model).__name__}; name them with --lora-targets")
    check_lora_targets(model, chosen)
    config = peft.LoraConfig(r=r, lora_alpha=alpha if alpha is not None else 2 * r,
                             lora_dropout=dropout, target_modules=chosen,
                             modules_to_save=head_prefixes(model))
    return peft.get_peft_model(model, config)
