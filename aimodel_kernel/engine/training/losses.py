"""What a PyTorch training optimises: the model's own loss (a Hugging Face model given
``labels``), a built-in loss on the model's predictions, or the user's ``fn(predictions,
target)``; and how targets and predictions are shaped for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import batches
from ..core.data import TaskInfo
from ..core.errors import InputError
from ..core.options import TrainConfig


class LossAdapter:
    """The loss of one training, and how model outputs and targets are shaped for it.

    Parameters
    ----------
    task : TaskInfo
    config : TrainConfig
        ``config.loss``: ``auto``, a built-in name, or a callable ``fn(predictions, target)``
        (an ``nn.Module`` too).
    out_dim : int
        Prediction values per row (``batches.predictions`` of a trial forward pass).
    y : numpy.ndarray
        The training targets (for ``--class-weight balanced``).
    device : torch.device
    own_loss : bool
        The model computes its own loss when given ``labels`` (dict inputs); with
        ``--loss auto`` that loss is optimised.
    """

    def __init__(self, task: TaskInfo, config: TrainConfig, out_dim: int, y: np.ndarray, device,
                 *, own_loss: bool = False):
        import torch
        from torch import nn

        self.task = task
        classes = np.asarray(task.classes) if task.is_classification else None
        self.classes = classes
        kind = config.loss
        # the model's own loss knows no class weights: --class-weight uses ours
        self.own = bool(own_loss) and kind == "auto" and config.class_weight is None
        if callable(kind) and not isinstance(kind, str):
            self.kind = "custom"
            self.fn = kind.to(device) if isinstance(kind, nn.Module) else kind
            self.targets_as = ("value" if classes is None else
                               "binary" if out_dim == 1 else "index")
            if self.targets_as == "index" and out_dim != len(classes):
                raise InputError(f"the model outputs {out_dim} values per row but y has "
                                 f"{len(classes)} classes; make the last layer output "
                                 f"{len(classes)}")
            return
        if kind == "auto":
            if task.task == "regression":
                kind = "mse"
            elif out_dim == 1 and task.task == "binary":
                kind = "bce"
            else:
                kind = "cross_entropy"
        self.kind = kind
        self.targets_as = {"cross_entropy": "index", "bce": "binary"}.get(kind, "value")
        weight = None
        if config.class_weight == "balanced" and classes is not None:
            from sklearn.utils.class_weight import compute_class_weight

            w = compute_class_weight("balanced", classes=classes, y=y)
            weight = torch.tensor(w, dtype=torch.float32, device=device)
        if kind == "cross_entropy":
            if classes is None:
                raise InputError("--loss cross_entropy needs a classification target")
            if out_dim != len(classes):
                raise InputError(
                    f"the model outputs {out_dim} values per row but y has {len(classes)} "
                    f"classes; make the last layer output {len(classes)}"
                )
            self.fn = nn.CrossEntropyLoss(weight=weight)
        elif kind == "bce":
            if task.task != "binary" or out_dim != 1:
                raise InputError("--loss bce needs a binary target and a model with 1 output")
            pos = None if weight is None else weight[1:] / weight[:1]
            self.fn = nn.BCEWithLogitsLoss(pos_weight=pos)
        else:
            if out_dim != 1:
                raise InputError(
                    f"regression needs a model with 1 output per row; this one outputs {out_dim}"
                )
            self.fn = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}[kind]()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a job file written by an earlier version (--export-script) holds an adapter from
        # before the model's own loss and custom losses: it used neither
        state.setdefault("own", False)
        state.setdefault("targets_as", {"cross_entropy": "index", "bce": "binary"}.get(
            state.get("kind"), "value"))
        self.__dict__.update(state)

    def targets(self, y: np.ndarray):
        """Targets as the loss wants them: class indices, 0/1 floats, or float values."""
        import torch

        if self.targets_as == "index":
            idx = np.searchsorted(self.classes, y) if self.classes.dtype.kind != "O" else (
                np.array([list(self.classes).index(v) for v in y])
            )
            return torch.as_tensor(idx, dtype=torch.long)
        if self.targets_as == "binary":
            return torch.as_tensor(y == self.classes[1], dtype=torch.float32)
        return torch.as_tensor(np.asarray(y, dtype=np.float32))

    def __call__(self, out, yb):
        """The loss of predictions ``out`` against targets ``yb``."""
        if self.targets_as != "index":
            out = out.reshape(yb.shape)
        return self.fn(out, yb)

    def forward(self, model: Any, xb: Any, yb: Any) -> tuple[Any, Any]:
        """``(loss, predictions)`` of one batch: the model's own loss when it computes one
        (``labels`` passed in its keyword inputs), else this loss on its predictions."""
        if self.own and isinstance(xb, Mapping):
            out = batches.call(model, {**xb, "labels": yb})
            loss = batches.own_loss(out)
            if loss is not None:
                return loss, batches.predictions(out)
            out = batches.predictions(out)
        else:
            out = batches.predictions(batches.call(model, xb))
        return self(out, yb), out

    def correct(self, out, yb) -> Any:
        """Number of correct predictions in a batch (classification), as a tensor."""
        if self.targets_as == "index":
            return (out.argmax(dim=1) == yb).sum()
        return ((out.reshape(yb.shape) > 0).float() == yb).sum()


def computes_own_loss(model: Any, example: Any, target: Any) -> bool:
    """Whether ``model`` returns a loss of its own for dict inputs ``example`` given ``labels``
    ``target`` (a Hugging Face model does); a model refusing ``labels`` does not."""
    import torch

    if not isinstance(example, Mapping):
        return False
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = batches.call(model, {**example, "labels": target})
    except (TypeError, ValueError, RuntimeError, IndexError):
        return False
    finally:
        model.train(was_training)
    return batches.own_loss(out) is not None
