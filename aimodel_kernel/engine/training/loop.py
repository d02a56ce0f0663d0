"""The single-process PyTorch training loop: lean per step, everything else once per epoch.

The per-step path is ``zero_grad -> forward -> loss -> backward -> step`` plus a list append and
a stop-flag check; the loss is summed once per epoch, so there is no device sync per step.
Divergence is checked on that per-epoch sum, and on the weights once training ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InputError
from ..core.events import BatchEnd, EpochEnd, EventCallback, StopFlag, ignore_event
from ..core.options import TrainConfig
from . import checkpoints, finetune
from .batching import LoaderBatches, TensorBatches, as_input_tensor, make_batches
from .freezing import Freezing
from .losses import LossAdapter

__all__ = ["LoaderBatches", "LoopOutcome", "LossAdapter", "TensorBatches", "as_input_tensor",
           "evaluate_batches", "make_batches", "make_optimizer", "make_scheduler_for",
           "resolve_device", "run_loop"]


@dataclass
class LoopOutcome:
    """What the loop did: per-epoch history and how it ended."""

    history: list[dict[str, float]] = field(default_factory=list)
    status: str = "finished"
    epochs_completed: int = 0
    best_epoch: int | None = None
    stopped_early: bool = False
    checkpoint_epoch: int | None = None
    steps: int = 0
    loop_seconds: float = 0.0
    diverged: str | None = None  # status "diverged": "loss is NaN", "loss is infinite" ...
    diverged_epoch: int | None = None
    notes: list[str] = field(default_factory=list)


def resolve_device(name: str):
    """The torch device for ``auto`` / ``cpu`` / ``cuda`` / ``mps``, refusing unavailable ones."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available; use cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device mps was asked for but MPS is not available; use cpu")
    return torch.device(name)


def make_optimizer(model: Any, config: TrainConfig):
    """The optimizer over ``model``'s trainable parameters: ``--optimizer`` by name, or the
    user's factory ``fn(params)``; with ``--lr-head`` the head in a group of its own.

    Raises
    ------
    InputError
        Nothing to train, or a factory that returns no optimizer.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters (all requires_grad=False)")
    groups = finetune.parameter_groups(model, config.lr, config.lr_head)
    if callable(config.optimizer) and not isinstance(config.optimizer, str):
        optimizer = config.optimizer(groups if config.lr_head is not None else params)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"--optimizer {getattr(config.optimizer, '__name__', '')!s} "
                             f"returned a {type(optimizer).__name__}, not a torch optimizer; "
                             "pass a factory fn(params) -> torch.optim.Optimizer")
        return optimizer
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, weight_decay=config.weight_decay)
    fused = fused_kernel(model, params)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, **fused)


def fused_kernel(model: Any, params: list[Any]) -> dict[str, bool]:
    """``{"fused": True}`` when torch's fused optimizer kernel takes every parameter (floating,
    dense gradients, all on the CPU or all on one kind of GPU), else ``{}``.

    The fused AdamW updates every tensor in one kernel instead of a loop over them: on these
    2-core CPUs its step over MiniLM's 22 M parameters takes 8 ms instead of 110 ms (the
    default of Hugging Face's ``Trainer``, ``adamw_torch_fused``, for the same reason). Results
    match the unfused step to float32 rounding, not bit for bit.
    """
    from torch import nn

    kinds = {p.device.type for p in params}
    if len(kinds) != 1 or not kinds <= {"cpu", "cuda"}:
        return {}
    if not all(p.is_floating_point() for p in params):
        return {}
    if any(isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse for m in model.modules()):
        return {}  # sparse gradients: only the unfused step takes them
    return {"fused": True}


def make_scheduler_for(optimizer: Any, config: TrainConfig, steps_per_epoch: int,
                       steps_done: int = 0) -> Any:
    """``--lr-schedule`` / ``--warmup`` over all ``epochs x steps_per_epoch`` optimizer steps
    (``None`` for a constant rate without warm-up). ``steps_done`` steps in (a resumed run,
    whose optimizer state holds each group's ``initial_lr``), it continues exactly there."""
    if config.lr_schedule == "constant" and not config.warmup:
        return None
    from torch.optim.lr_scheduler import LambdaLR

    from .schedules import lr_factor

    factor = lr_factor(config.lr_schedule, config.epochs * max(1, steps_per_epoch),
                       config.warmup)
    if steps_done:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        return LambdaLR(optimizer, factor, last_epoch=steps_done - 1)
    return LambdaLR(optimizer, factor)


def evaluate_batches(model: Any, source: Any, loss: LossAdapter) -> dict[str, float]:
    """Validation loss and accuracy (classification) or MAE (regression)."""
    import torch

    was_training = model.training
    model.eval()
    total = n = 0.0
    correct = abs_err = 0.0
    with torch.inference_mode():
        for xb, yb in source.ordered():
            batch_loss, out = loss.forward(model, xb, yb)
            total += float(batch_loss) * len(yb)
            n += len(yb)
            if loss.task.is_classification:
                correct += float(loss.correct(out, yb))
            else:
                abs_err += float((out.reshape(yb.shape) - yb).abs().sum())
    model.train(was_training)
    metrics = {"val_loss": total / n}
    if loss.task.is_classification:
        metrics["val_accuracy"] = correct / n
    else:
        metrics["val_mae"] = abs_err / n
    return metrics


def _monitor_value(config: TrainConfig, metrics: dict[str, float]) -> tuple[float, bool]:
    """The monitored value and whether higher is better."""
    if config.monitor == "loss":
        return metrics["loss"], False
    if config.monitor == "val_loss":
        return metrics["val_loss"], False
    key = "val_accuracy" if "val_accuracy" in metrics else "val_mae"
    return metrics[key], key == "val_accuracy"


def _epoch_loss(losses: list[Any], sizes: list[int], distributed: bool) -> tuple[float, str | None]:
    """The epoch's mean training loss, and what is wrong when it is not finite.

    The detached per-batch losses are summed once per epoch (the epoch's one device sync).
    Under DDP the sum and the row count travel in one all-reduce, so every rank reports the
    loss over all rows and every rank decides alike whether training diverged (a rank that
    stopped alone would leave the others waiting in their next collective).
    """
    import torch

    weights = torch.tensor(sizes, dtype=torch.float32, device=losses[0].device)
    stats = torch.stack([(torch.stack(losses).float() * weights).sum(), weights.sum()])
    if distributed:
        import torch.distributed as dist

        dist.all_reduce(stats)
    total, rows = stats.tolist()
    loss = total / rows
    if math.isnan(loss):
        return loss, "loss is NaN"
    if math.isinf(loss):
        return loss, "loss is infinite"
    return loss, None


def _state_finite(module: Any) -> bool:
    """Whether every floating tensor of the module's state (weights and buffers) is finite.

    Checked once, when training ends: a pass over every weight is not free, and a weight that
    stops being finite makes the next epoch's loss NaN anyway. What this catches is a last
    epoch's weights, or a buffer the loss never reads (a batch norm's running statistics).
    Under DDP every rank holds the same state, so every rank decides alike. One norm per
    tensor and one sync: a finite norm means every element is finite; a tensor whose norm is
    not (a NaN, an infinity, or an overflow of huge values) is then checked element by element.
    """
    import torch

    tensors = [t.detach() for t in module.state_dict().values() if t.is_floating_point()]
    if not tensors:
        return True
    norms = torch.stack([torch.linalg.vector_norm(t).float() for t in tensors])
    finite = torch.isfinite(norms).tolist()
    return all(ok or bool(torch.isfinite(t).all()) for t, ok in zip(tensors, finite, strict=True))


def _meta(out: LoopOutcome, best: Any, best_epoch: Any, waited: int) -> dict[str, Any]:
    """The loop's own state saved with a checkpoint (history and early-stopping counters)."""
    return {"history": list(out.history), "best": best, "best_epoch": best_epoch,
            "waited": waited}


def run_loop(
    model: Any,
    train: Any,
    val: Any | None,
    loss: LossAdapter,
    optimizer: Any,
    config: TrainConfig,
    *,
    generator: Any,
    on_event: EventCallback,
    stop: StopFlag,
    writer: checkpoints.CheckpointWriter | None,
    start_epoch: int = 0,
    resume_meta: dict[str, Any] | None = None,
    freezing: Freezing | None = None,
) -> LoopOutcome:
    """Train ``model`` for epochs ``start_epoch .. config.epochs - 1``.

    On ``stop`` the loop ends after the current batch and restores the weights of the last
    completed epoch. With ``early_stop`` the best epoch's weights are restored at the end. An
    epoch whose loss is not finite, or a state that is not finite when training ends, ends it
    with status ``"diverged"`` (:attr:`LoopOutcome.diverged` says what); the module is left
    as it is then, for the caller to restore.
    Batches with a ``set_epoch(epoch)`` method get it at each epoch start (a
    ``DistributedSampler``'s reshuffle); for a ``DistributedDataParallel`` model the wrapped
    module's state is what is captured, checkpointed and restored.

    The forward pass and loss are ``loss.forward`` (the model's own loss, or ours on its
    predictions). ``--lr-schedule`` / ``--warmup`` step once per optimizer step, continuing at
    step ``start_epoch x len(train)`` on resume. ``freezing`` (``--freeze``, already applied)
    releases its parameters at the start of epoch ``--unfreeze-after``, with a note.
    """
    import torch

    # a DistributedDataParallel wrapper trains; its module's state is what is kept and restored
    inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    distributed = inner is not model
    set_epoch = getattr(train, "set_epoch", None)  # a DistributedSampler's reshuffle, seeding
    meta = resume_meta or {}
    out = LoopOutcome(history=list(meta.get("history", [])), epochs_completed=start_epoch)
    best = meta.get("best")
    best_epoch = meta.get("best_epoch")
    waited = meta.get("waited", 0)
    best_state = None
    # before the first capture: the scheduler adds initial_lr to the optimizer's groups
    scheduler = make_scheduler_for(optimizer, config, len(train), start_epoch * len(train))
    # the state at the last epoch end: what a stop restores (and, with checkpoints, writes)
    boundary = checkpoints.StateMirror(optimizer=writer is not None)
    boundary.capture(start_epoch - 1, inner, optimizer, generator)
    report_batches = on_event is not ignore_event
    model.train()
    loop_start = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        losses, sizes = [], []
        seen = 0
        if set_epoch is not None:
            set_epoch(epoch)
        if freezing is not None and freezing.due(epoch):
            out.notes.append(freezing.release(inner, optimizer, scheduler))
        for b, (xb, yb) in enumerate(train.epoch(generator)):
            optimizer.zero_grad(set_to_none=True)
            batch_loss, _ = loss.forward(model, xb, yb)
            batch_loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(batch_loss.detach())
            sizes.append(len(yb))
            seen += len(yb)
            if report_batches:
                on_event(BatchEnd(epoch, b, seen, None))
            if stop.is_set():
                break
        out.steps += len(losses)
        if stop.is_set():
            inner.load_state_dict(boundary.model)
            out.status = "interrupted"
            if writer is not None and boundary.epoch >= start_epoch:
                writer.submit(boundary.snapshot(_meta(out, best, best_epoch, waited)))
            break
        epoch_loss, problem = _epoch_loss(losses, sizes, distributed)
        if problem is not None:  # no checkpoint, no best weights, no event for this epoch
            out.history.append({"epoch": epoch + 1, "loss": epoch_loss})
            out.status, out.diverged, out.diverged_epoch = "diverged", problem, epoch + 1
            break
        metrics = {"loss": epoch_loss}
        if val is not None:
            metrics.update(evaluate_batches(model, val, loss))
        seconds = time.perf_counter() - t0
        metrics["samples_per_second"] = seen / seconds if seconds > 0 else float("nan")
        out.history.append({"epoch": epoch + 1, **metrics})
        out.epochs_completed = epoch + 1
        boundary.capture(epoch, inner, optimizer, generator)

        improved = False
        if config.early_stop is not None:
            value, higher = _monitor_value(config, metrics)
            improved = best is None or (value > best if higher else value < best)
            if improved:
                best, best_epoch, waited = value, epoch + 1, 0
                best_state = {k: v.clone() for k, v in boundary.model.items()}
            else:
                waited += 1
        if writer is not None and writer.due():
            writer.submit(boundary.snapshot(_meta(out, best, best_epoch, waited)))
        on_event(EpochEnd(epoch + 1, metrics, seconds, metrics["samples_per_second"]))
        if config.early_stop is not None and waited >= config.early_stop:
            out.stopped_early = True
            break
    out.loop_seconds = time.perf_counter() - loop_start
    if out.status == "diverged":
        return out
    if config.early_stop is not None and best_epoch is not None:
        if best_state is not None:
            inner.load_state_dict(best_state)
        out.best_epoch = best_epoch
    if out.status == "finished" and not _state_finite(inner):
        out.status, out.diverged = "diverged", "weights are NaN or infinite"
        out.diverged_epoch = out.epochs_completed
    return out
