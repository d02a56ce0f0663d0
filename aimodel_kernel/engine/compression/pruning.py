"""Pruning of PyTorch modules, always on a copy: global unstructured magnitude pruning, and
structured pruning that removes whole neurons / channels so the layers really become smaller.

Structured pruning follows the module's ``torch.fx`` graph: a ``Linear`` or ``Conv`` layer whose
outputs reach exactly one other ``Linear`` / ``Conv`` layer through element-wise activations,
dropout, pooling, batch norm or a flatten loses its least important outputs, and the next layer
loses the matching inputs. A layer whose outputs are the model's outputs, or feed a residual
sum, a concatenation or anything else, is kept whole.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from ..core.batches import is_tensor
from ..core.errors import InputError


def check_amount(value: float | None, flag: str) -> float | None:
    """``value`` when it is a fraction strictly between 0 and 1 (or ``None``).

    Raises
    ------
    InputError
        Amounts of 0, 1 or outside that range.
    """
    if value is None:
        return None
    if not isinstance(value, int | float) or not 0.0 < float(value) < 1.0 or math.isnan(value):
        raise InputError(f"{flag} is the fraction of weights to remove, strictly between 0 and 1 "
                         f"(e.g. {flag} 0.5); got {value}")
    return float(value)


@dataclass
class PruneInfo:
    """What a pruning pass did: parameter counts before / after and per-layer shapes."""

    method: str
    amount: float
    params_before: int
    params_after: int
    nonzero_after: int
    layers: dict[str, str] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        """Share of the remaining parameters that are exactly zero."""
        return 1.0 - self.nonzero_after / self.params_after if self.params_after else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "amount": self.amount,
                "params_before": self.params_before, "params_after": self.params_after,
                "nonzero_after": self.nonzero_after, "sparsity": self.sparsity,
                "layers": dict(self.layers)}


def count_params(model: Any) -> tuple[int, int]:
    """``(total, nonzero)`` parameter counts of a module."""
    total = nonzero = 0
    for p in model.parameters():
        total += p.numel()
        nonzero += int((p != 0).sum())
    return total, nonzero


def _weighted_layers(model: Any) -> list[tuple[str, Any]]:
    from torch import nn

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def prune_global(model: Any, amount: float) -> tuple[Any, PruneInfo]:
    """A copy of ``model`` whose smallest-magnitude weights, ranked across every ``Linear`` and
    ``Conv`` layer together, are set to zero (biases and other parameters are kept).

    Parameters
    ----------
    model : torch.nn.Module
    amount : float
        Fraction of those weights to zero, in (0, 1).

    Returns
    -------
    (torch.nn.Module, PruneInfo)
        The pruned copy (same shapes: the sparsity is real, the tensors stay dense).
    """
    import torch

    before, _ = count_params(model)
    pruned = copy.deepcopy(model)
    layers = _weighted_layers(pruned)
    if not layers:
        raise InputError(f"--prune: {type(model).__name__} has no Linear or Conv layer to prune")
    with torch.no_grad():
        flat = torch.cat([m.weight.detach().abs().reshape(-1).float() for _, m in layers])
        k = round(amount * flat.numel())
        mask = torch.ones_like(flat, dtype=torch.bool)
        if k:
            mask[torch.topk(flat, k, largest=False).indices] = False
        start = 0
        info = {}
        for name, m in layers:
            n = m.weight.numel()
            keep = mask[start : start + n].reshape(m.weight.shape)
            m.weight.mul_(keep.to(m.weight.dtype))
            info[name or "model"] = f"{1 - keep.float().mean().item():.0%} zero"
            start += n
    after, nonzero = count_params(pruned)
    return pruned, PruneInfo("global magnitude", amount, before, after, nonzero, info)


# -- structured ------------------------------------------------------------------------------
_PASS_MODULES = (
    "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "ELU", "SELU", "Hardswish",
    "Hardtanh", "Mish", "Softplus", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "Identity", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
)
_PASS_FUNCTIONS = (
    "relu", "relu6", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "elu", "selu", "hardswish",
    "mish", "softplus", "dropout", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
    "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "contiguous",
)
_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


@dataclass
class _Cut:
    producer: str
    consumer: str
    norms: list[str]
    block: int  # consumer inputs per producer output (a flatten of C x H x W gives H*W)


def _flatten_block(node: Any, module: Any = None) -> int | None:
    """Inputs per channel after a flatten node, or ``None`` when it does not flatten from the
    channel axis (axis 1) on."""
    shape = getattr(node.args[0], "meta", {}).get("tensor_meta") if node.args else None
    shape = getattr(shape, "shape", None)
    if shape is None:
        return None
    block = math.prod(shape[2:]) if len(shape) > 2 else 1
    name = getattr(node.target, "__name__", str(node.target))
    if module is not None:
        return block if module.start_dim == 1 and module.end_dim == -1 else None
    if name == "flatten":
        start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
        end = node.kwargs.get("end_dim", node.args[2] if len(node.args) > 2 else -1)
        return block if start == 1 and end == -1 else None
    if node.op == "call_method" and name in ("view", "reshape"):
        rest = node.args[1:]
        return block if len(rest) == 2 and rest[1] == -1 else None
    return None


def _reads_shape(node: Any) -> bool:
    """``x.size(0)`` / ``x.shape`` read a shape, not values (as in ``x.view(x.size(0), -1)``)."""
    name = getattr(node.target, "__name__", str(node.target))
    return (node.op == "call_method" and name in ("size", "dim")) or (
        node.op == "call_function" and name == "getattr" and node.args[1:] == ("shape",))


def _follow(node: Any, modules: dict[str, Any], uses: dict[str, int]) -> _Cut | None:
    """From a producer layer's node to the single layer consuming its outputs, if any."""
    from torch import nn

    norms: list[str] = []
    block = 1
    current = node
    while True:
        users = [u for u in current.users if not _reads_shape(u)]
        if len(users) != 1:
            return None
        nxt = users[0]
        if not nxt.args or nxt.args[0] is not current:
            return None
        if nxt.op == "call_module":
            mod = modules[nxt.target]
            kind = type(mod).__name__
            if isinstance(mod, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
                if uses[nxt.target] != 1 or getattr(mod, "groups", 1) != 1:
                    return None
                if block != 1 and not isinstance(mod, nn.Linear):
                    return None
                return _Cut(node.target, nxt.target, norms, block)
            if kind in _NORMS and uses[nxt.target] == 1 and getattr(mod, "affine", True):
                norms.append(nxt.target)
            elif kind == "Flatten":
                flat = _flatten_block(nxt, mod)
                if flat is None:
                    return None
                block *= flat
            elif kind not in _PASS_MODULES:
                return None
        elif nxt.op in ("call_function", "call_method"):
            name = getattr(nxt.target, "__name__", str(nxt.target))
            if name in ("flatten", "view", "reshape"):
                flat = _flatten_block(nxt)
                if flat is None:
                    return None
                block *= flat
            elif name not in _PASS_FUNCTIONS:
                return None
        else:
            return None
        current = nxt


def prunable_cuts(model: Any, example: Any) -> list[_Cut]:
    """The producer -> consumer layer pairs of ``model`` that structured pruning can cut.

    Raises
    ------
    InputError
        The module cannot be traced with ``torch.fx`` (Python control flow on tensor values).
    """
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        gm = torch.fx.symbolic_trace(model)
        ShapeProp(gm).propagate(example)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"--structured needs the layer graph of {type(model).__name__}, but "
                         f"torch.fx cannot trace its forward ({type(exc).__name__}: {first})"
                         ) from None
    modules = dict(gm.named_modules())
    uses: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            uses[node.target] = uses.get(node.target, 0) + 1
    cuts = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or uses[node.target] != 1:
            continue
        mod = modules[node.target]
        if not isinstance(mod, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d
                          | torch.nn.Conv3d) or getattr(mod, "groups", 1) != 1:
            continue
        meta = node.meta.get("tensor_meta")
        if isinstance(mod, torch.nn.Linear) and meta is not None and len(meta.shape) != 2:
            continue  # outputs on the last axis of a 3-d tensor: no channel axis to flatten
        cut = _follow(node, modules, uses)
        if cut is not None:
            cuts.append(cut)
    return cuts


def prune_structured(model: Any, amount: float, example: Any) -> tuple[Any, PruneInfo]:
    """A smaller copy of ``model`` with a fraction of the neurons / channels of each prunable
    layer removed, together with the inputs of the next layer that read them.

    Outputs are ranked by the L2 norm of their incoming weights times the L2 norm of the
    outgoing weights that read them; the lowest ``amount`` of each layer go (one always stays).

    Parameters
    ----------
    model : torch.nn.Module
    amount : float
        Fraction of each prunable layer's outputs to remove, in (0, 1).
    example : torch.Tensor
        A small input batch, to trace shapes and to check the pruned copy still runs.

    Returns
    -------
    (torch.nn.Module, PruneInfo)

    Raises
    ------
    InputError
        No layer can be cut, or the module cannot be traced.
    """
    import torch

    if not is_tensor(example):
        names = ", ".join(map(str, example)) if isinstance(example, dict) else \
            f"{len(example)} positional inputs"
        raise InputError(f"--structured traces a model taking one tensor; "
                         f"{type(model).__name__} takes several ({names}): use --prune")
    if not is_tensor(example):
        names = ", ".join(map(str, example)) if isinstance(example, dict) else \
            f"{len(example)} positional inputs"
        raise InputError(f"--structured traces a model taking one tensor; "
                         f"{type(model).__name__} takes several ({names}): use --prune")
    before, _ = count_params(model)
    pruned = copy.deepcopy(model)
    was_training = pruned.training
    pruned.eval()
    cuts = prunable_cuts(pruned, example)
    if not cuts:
        raise InputError(
            f"--structured: {type(model).__name__} has no Linear/Conv layer whose outputs feed "
            "exactly one other Linear/Conv layer (through activations, pooling, batch norm or a "
            "flatten), so no neuron or channel can be removed; use --prune instead")
    plans = []
    with torch.no_grad():
        for cut in cuts:
            prod, cons = pruned.get_submodule(cut.producer), pruned.get_submodule(cut.consumer)
            n = prod.weight.shape[0]
            incoming = prod.weight.reshape(n, -1).norm(dim=1)
            outgoing = cons.weight.transpose(0, 1).reshape(n, -1).norm(dim=1)
            score = incoming * outgoing
            keep_n = max(1, n - round(amount * n))
            keep = torch.sort(torch.topk(score, keep_n).indices).values
            plans.append((cut, keep))
        info = {}
        for cut, keep in plans:
            prod, cons = pruned.get_submodule(cut.producer), pruned.get_submodule(cut.consumer)
            old = prod.weight.shape[0]
            _take_outputs(prod, keep)
            for norm in cut.norms:
                _take_norm(pruned.get_submodule(norm), keep)
            cols = (keep[:, None] * cut.block + torch.arange(cut.block)).reshape(-1)
            _take_inputs(cons, cols)
            info[cut.producer] = f"{old} -> {len(keep)} outputs"
        try:
            with torch.inference_mode():
                out_a, out_b = model.eval()(example), pruned(example)
        except Exception as exc:
            raise InputError(f"--structured: the pruned {type(model).__name__} no longer runs "
                             f"({type(exc).__name__}: {str(exc)[:160]}); its forward probably "
                             "hard-codes a layer width") from None
        finally:
            model.train(was_training)
        if getattr(out_a, "shape", None) != getattr(out_b, "shape", None):
            raise InputError("--structured changed the output shape of "
                             f"{type(model).__name__}; its forward hard-codes a layer width")
    pruned.train(was_training)
    after, nonzero = count_params(pruned)
    return pruned, PruneInfo("structured", amount, before, after, nonzero, info)


def _take_outputs(layer: Any, keep: Any) -> None:
    from torch import nn

    layer.weight = nn.Parameter(layer.weight.detach()[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[keep].clone())
    if isinstance(layer, nn.Linear):
        layer.out_features = len(keep)
    else:
        layer.out_channels = len(keep)


def _take_inputs(layer: Any, cols: Any) -> None:
    from torch import nn

    layer.weight = nn.Parameter(layer.weight.detach()[:, cols].clone())
    if isinstance(layer, nn.Linear):
        layer.in_features = len(cols)
    else:
        layer.in_channels = len(cols)


def _take_norm(norm: Any, keep: Any) -> None:
    from torch import nn

    for name in ("weight", "bias"):
        value = getattr(norm, name)
        if value is not None:
            setattr(norm, name, nn.Parameter(value.detach()[keep].clone()))
    for name in ("running_mean", "running_var"):
        value = getattr(norm, name)
        if value is not None:
            setattr(norm, name, value[keep].clone())
    norm.num_features = len(keep)
