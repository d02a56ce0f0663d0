"""One contract for what goes into a PyTorch model and what comes out, shared by every magic.

**In.** A batch of inputs is any nesting of tensors: a tensor (one positional argument), a tuple
or list (positional arguments: ``forward(x_num, x_cat)``), or a dict (keyword arguments, the
Hugging Face way: ``input_ids``, ``attention_mask`` ...). Dtypes are kept (token ids stay
integers); everything moves to the device together. A Dataset item is ``(inputs, target)``, or
a dict holding the target under ``labels`` (or ``label``); a dict without one is all inputs.

**Out.** A model returns a tensor, a tuple or list (the first element is the prediction), a
dict or a ``ModelOutput`` (``logits`` is the prediction; ``loss``, when the model computed one
because it was given ``labels``, is the loss to optimise).

Torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

TARGET_KEYS = ("labels", "label")
"""Where a dict item (or batch) carries its target, Hugging Face style."""

PREDICTION_KEYS = ("logits", "predictions", "prediction", "output", "outputs")
"""Where a dict or ``ModelOutput`` carries the predictions, in order of preference."""


def is_tensor(obj: Any) -> bool:
    """True for a ``torch.Tensor`` (without importing torch when nobody has)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def map_tensors(fn: Callable[[Any], Any], obj: Any) -> Any:
    """``obj`` with ``fn`` applied to every tensor in it (tuples, lists and dicts rebuilt)."""
    if is_tensor(obj):
        return fn(obj)
    if isinstance(obj, Mapping):  # a dict, a BatchEncoding, a ModelOutput: a plain dict back
        return {k: map_tensors(fn, v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(map_tensors(fn, v) for v in obj))
    if isinstance(obj, list | tuple):
        return type(obj)(map_tensors(fn, v) for v in obj)
    return obj


def tensors(obj: Any) -> list[Any]:
    """Every tensor in ``obj``, in order (dict values in key order)."""
    found: list[Any] = []
    map_tensors(lambda t: found.append(t) or t, obj)
    return found


def move(obj: Any, device: Any) -> Any:
    """Every tensor of ``obj`` on ``device`` (no copy when it is there already)."""
    return map_tensors(lambda t: t.to(device, non_blocking=True), obj)


def detach_cpu(obj: Any) -> Any:
    """Every tensor of ``obj`` detached and on the CPU."""
    return map_tensors(lambda t: t.detach().cpu(), obj)


def batch_len(inputs: Any) -> int:
    """Rows in a batch of inputs: the first dimension of its first tensor.

    Raises
    ------
    ValueError
        The inputs hold no tensor with a first dimension.
    """
    for t in tensors(inputs):
        if t.dim() > 0:
            return int(t.shape[0])
    raise ValueError("the inputs hold no tensor with a batch dimension")


def take(inputs: Any, index: Any) -> Any:
    """The rows ``index`` (a tensor of indices or a slice) of every tensor in ``inputs``."""
    return map_tensors(lambda t: t[index], inputs)


def call(model: Any, inputs: Any) -> Any:
    """``model`` applied to a batch: ``model(x)``, ``model(*xs)`` or ``model(**kwargs)``."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, list | tuple) and not hasattr(inputs, "_fields"):
        return model(*inputs)
    return model(inputs)


def split_item(item: Any, has_target: bool = True) -> tuple[Any, Any]:
    """``(inputs, target)`` of a Dataset item or a collated batch.

    A dict gives up its ``labels`` (or ``label``) entry as the target, the rest being inputs;
    a 2-tuple or 2-list is ``(inputs, target)``; anything else is inputs only (target
    ``None``), as is every item when ``has_target`` is false.
    """
    if not has_target:
        return item, None
    if isinstance(item, Mapping):
        for key in TARGET_KEYS:
            if key in item:
                return {k: v for k, v in item.items() if k != key}, item[key]
        return dict(item), None
    if isinstance(item, list | tuple) and not hasattr(item, "_fields") and len(item) == 2:
        return item[0], item[1]
    return item, None


def target_key(item: Any) -> str | None:
    """The key a dict item keeps its target under (``labels``/``label``), else ``None``."""
    if isinstance(item, Mapping):
        return next((k for k in TARGET_KEYS if k in item), None)
    return None


def predictions(out: Any) -> Any:
    """The prediction tensor of a model output: the tensor itself, the first element of a
    tuple or list, ``logits`` (or the first tensor) of a dict or ``ModelOutput``.

    Raises
    ------
    TypeError
        The output holds no tensor.
    """
    if is_tensor(out):
        return out
    if isinstance(out, Mapping) or _is_model_output(out):
        items = out if isinstance(out, Mapping) else out.__dict__
        for key in PREDICTION_KEYS:
            value = items.get(key) if isinstance(items, Mapping) else None
            if is_tensor(value):
                return value
        for key, value in items.items():
            if key != "loss" and is_tensor(value):
                return value
    elif isinstance(out, list | tuple) and out:
        return predictions(out[0])
    raise TypeError(f"a {type(out).__name__} output holds no prediction tensor")


def own_loss(out: Any) -> Any:
    """The loss a model computed itself (``out.loss`` / ``out["loss"]``), or ``None``."""
    if isinstance(out, Mapping):
        value = out.get("loss")
    elif _is_model_output(out):
        value = getattr(out, "loss", None)
    else:
        value = None
    return value if is_tensor(value) else None


def describe(inputs: Any) -> str:
    """A short description of a batch for messages: ``tensor (2, 16) int64``,
    ``dict(input_ids: (2, 16) int64, attention_mask: (2, 16) int64)``."""
    def one(t: Any) -> str:
        return f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" if is_tensor(t) \
            else type(t).__name__

    if isinstance(inputs, Mapping):
        return "dict(" + ", ".join(f"{k}: {one(v)}" for k, v in inputs.items()) + ")"
    if isinstance(inputs, list | tuple):
        return f"{type(inputs).__name__}(" + ", ".join(one(v) for v in inputs) + ")"
    return f"tensor {one(inputs)}" if is_tensor(inputs) else type(inputs).__name__


def _is_model_output(out: Any) -> bool:
    """A Hugging Face ``ModelOutput`` (an ordered dict subclass) or a dataclass-like output."""
    return type(out).__name__.endswith("Output") and hasattr(out, "__dict__")
