"""The single-process PyTorch training loop: lean per step, everything else once per epoch.

The per-step path is ``zero_grad -> forward -> loss -> backward -> step`` plus a list append and
a stop-flag check; the loss is summed once per epoch, so there is no device sync per step.
Divergence is checked on that per-epoch sum, and on the weights once training ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.data import Data, TaskInfo, take_rows, to_numpy
from ..core.errors import InputError
from ..core.events import BatchEnd, EpochEnd, EventCallback, StopFlag, ignore_event
from ..core.options import TrainConfig
from . import checkpoints


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


class TensorBatches:
    """In-memory data as tensors on the device, batched by slicing a seeded permutation."""

    def __init__(self, X: Any, y: np.ndarray, target_fn, batch_size: int, device) -> None:

        self.X = as_input_tensor(X).to(device)
        self.y = target_fn(y).to(device)
        self.n = len(self.X)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch(self, generator) -> Iterator[tuple[Any, Any]]:
        import torch

        perm = torch.randperm(self.n, generator=generator).to(self.X.device)
        bs, X, y = self.batch_size, self.X, self.y
        for i in range(0, self.n, bs):
            idx = perm[i : i + bs]
            yield X[idx], y[idx]

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        bs = max(self.batch_size, 1024)
        for i in range(0, self.n, bs):
            yield self.X[i : i + bs], self.y[i : i + bs]


class LoaderBatches:
    """A map-style Dataset (or a user's DataLoader) with targets mapped for the loss."""

    def __init__(self, source: Any, target_fn, batch_size: int, device, *, is_loader: bool):
        self.source, self.target_fn, self.device = source, target_fn, device
        self.batch_size, self.is_loader = batch_size, is_loader

    def __len__(self) -> int:
        if self.is_loader:
            return len(self.source)
        return math.ceil(len(self.source) / self.batch_size)

    def _loader(self, generator, shuffle: bool):
        import torch

        if self.is_loader:
            return self.source
        return torch.utils.data.DataLoader(
            self.source, batch_size=self.batch_size, shuffle=shuffle, generator=generator
        )

    def epoch(self, generator) -> Iterator[tuple[Any, Any]]:
        for xb, yb in self._loader(generator, True):
            yield xb.to(self.device), self.target_fn(to_numpy(yb)).to(self.device)

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        return self.epoch(None) if self.is_loader else self._iter_ordered()

    def _iter_ordered(self):
        for xb, yb in self._loader(None, False):
            yield xb.to(self.device), self.target_fn(to_numpy(yb)).to(self.device)


def as_input_tensor(X: Any):
    """Features as a tensor: floating data as float32, integers (token ids) as int64."""
    import torch

    if isinstance(X, torch.Tensor):
        return X.float() if X.is_floating_point() and X.dtype == torch.float64 else X
    arr = to_numpy(X)
    if arr.dtype.kind == "b" or (arr.dtype.kind == "f" and arr.dtype != np.float32):
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(arr))


def make_batches(data: Data, index: np.ndarray | None, target_fn, config: TrainConfig, device):
    """Batches over the rows ``index`` of ``data`` (all rows when ``None``)."""
    import torch

    if data.kind == "loader":
        return LoaderBatches(data.X, target_fn, config.batch_size, device, is_loader=True)
    if data.kind == "dataset":
        ds = data.X if index is None else torch.utils.data.Subset(data.X, index.tolist())
        return LoaderBatches(ds, target_fn, config.batch_size, device, is_loader=False)
    X = data.X if index is None else take_rows(data.X, index)
    y = data.y if index is None else data.y[index]
    return TensorBatches(X, y, target_fn, config.batch_size, device)


class LossAdapter:
    """The loss function and how model outputs and targets are shaped for it."""

    def __init__(self, task: TaskInfo, config: TrainConfig, out_dim: int, y: np.ndarray, device):
        import torch
        from torch import nn

        self.task = task
        classes = np.asarray(task.classes) if task.is_classification else None
        self.classes = classes
        kind = config.loss
        if kind == "auto":
            if task.task == "regression":
                kind = "mse"
            elif out_dim == 1 and task.task == "binary":
                kind = "bce"
            else:
                kind = "cross_entropy"
        self.kind = kind
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

    def targets(self, y: np.ndarray):
        """Targets as the loss wants them: class indices, 0/1 floats, or float values."""
        import torch

        if self.kind == "cross_entropy":
            idx = np.searchsorted(self.classes, y) if self.classes.dtype.kind != "O" else (
                np.array([list(self.classes).index(v) for v in y])
            )
            return torch.as_tensor(idx, dtype=torch.long)
        if self.kind == "bce":
            return torch.as_tensor(y == self.classes[1], dtype=torch.float32)
        return torch.as_tensor(np.asarray(y, dtype=np.float32))

    def __call__(self, out, yb):
        if self.kind != "cross_entropy":
            out = out.reshape(yb.shape)
        return self.fn(out, yb)

    def correct(self, out, yb) -> Any:
        """Number of correct predictions in a batch (classification), as a tensor."""
        if self.kind == "cross_entropy":
            return (out.argmax(dim=1) == yb).sum()
        return ((out.reshape(yb.shape) > 0).float() == yb).sum()


def make_optimizer(model: Any, config: TrainConfig):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters (all requires_grad=False)")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def evaluate_batches(model: Any, batches: Any, loss: LossAdapter) -> dict[str, float]:
    """Validation loss and accuracy (classification) or MAE (regression)."""
    import torch

    was_training = model.training
    model.eval()
    total = n = 0.0
    correct = abs_err = 0.0
    with torch.inference_mode():
        for xb, yb in batches.ordered():
            out = model(xb)
            total += float(loss(out, yb)) * len(yb)
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
    boundary = checkpoints.StateMirror()  # the state at the last epoch end: what a stop restores
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
        for b, (xb, yb) in enumerate(train.epoch(generator)):
            optimizer.zero_grad(set_to_none=True)
            batch_loss = loss(model(xb), yb)
            batch_loss.backward()
            optimizer.step()
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
