"""Preparing and running one-process PyTorch training: checks, devices, seeds, restore.

:func:`prepare` is shared by every placement (the worker pool and several nodes add their job
to its plan, :mod:`.jobs`); :func:`run` trains in the kernel's own process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import batches
from ..core.data import Data, TaskInfo, take_rows, to_numpy
from ..core.errors import InputError
from ..core.events import EventCallback, StopFlag, stop_on_sigint
from ..core.memory import release_memory
from ..core.options import TrainConfig
from ..store.tracking import Store
from . import checkpoints
from .determinism import deterministic
from .finetune import parameter_counts
from .freezing import Freezing
from .loop import as_input_tensor, make_batches, make_optimizer, resolve_device, run_loop
from .losses import LossAdapter, computes_own_loss
from .resume import prepare_resume
from .torch_plan import TorchOutcome, TorchPlan


def _first_rows(data: Data, n: int = 2) -> tuple[Any, np.ndarray]:
    """A small input batch (for checking the model and for ``torch.export``) and its raw
    targets: a Dataset's first items collated as its loader would (the loader's
    ``collate_fn``, else the default collate), else the first rows as the loop batches them."""
    import torch

    if data.is_torch_data:
        dataset = data.X.dataset if data.kind == "loader" else data.X
        collate = getattr(data.X, "collate_fn", None) if data.kind == "loader" else None
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        xb, yb = batches.split_item((collate or torch.utils.data.default_collate)(items))
        return xb, (to_numpy(yb) if yb is not None else data.y[: len(items)])
    rows = np.arange(min(n, data.n_samples))
    return as_input_tensor(take_rows(data.X, rows)), data.y[rows]


def _output_dim(model: Any, example: Any, device: Any, x_name: str = "X") -> int:
    """Prediction values per row of a trial forward pass (a tensor, the first of a tuple, the
    ``logits`` of a dict or ``ModelOutput``)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = batches.call(model, batches.move(example, device))
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shown = (f"of shape {tuple(example.shape[1:])} per row" if batches.is_tensor(example)
                 else f"as {batches.describe(example)}")
        raise InputError(f"{type(model).__name__} cannot take {x_name} {shown}: {first}"
                         ) from None
    finally:
        model.train(was_training)
    try:
        pred = batches.predictions(out)
    except TypeError:
        raise InputError(
            f"{type(model).__name__}.forward returned a {type(out).__name__}; it must return a "
            "tensor of outputs (e.g. logits), a tuple, a dict or a ModelOutput with logits"
        ) from None
    rows = batches.batch_len(example)
    if pred.ndim == 0 or pred.shape[0] != rows:
        got = pred.shape[0] if pred.ndim else "a scalar"
        raise InputError(f"{type(model).__name__} returned {got} rows for {rows} inputs")
    return 1 if pred.ndim == 1 else int(np.prod(pred.shape[1:]))


def _input_spec(example: Any) -> dict[str, Any]:
    """``{shape, dtype}`` of the model's input (the batch dimension ``None``); for nested
    inputs one per input under ``inputs`` (dict keys, or positions of a tuple)."""
    def one(t: Any) -> dict[str, Any]:
        return {"shape": [None, *t.shape[1:]], "dtype": str(t.dtype)}

    if batches.is_tensor(example):
        return one(example)
    if isinstance(example, Mapping):
        return {"inputs": {str(k): one(v) for k, v in example.items() if batches.is_tensor(v)},
                "kind": "dict"}
    return {"inputs": {str(i): one(v) for i, v in enumerate(example) if batches.is_tensor(v)},
            "kind": "tuple"}


def prepare(model: Any, data: Data, val: Data | None, task: TaskInfo, config: TrainConfig,
            seed: int, train_idx, val_idx, store: Store, resume_run: Any) -> TorchPlan:
    """Check the model against the data and options; find the checkpoint to resume."""

    device = resolve_device(config.device)
    if data.kind == "loader" and (config.val or train_idx is not None):
        raise InputError("--val cannot split a DataLoader; pass --val-data with a second loader")
    if config.unfreeze_after is not None and config.devices * config.nodes > 1:
        raise InputError("--unfreeze-after changes what trains mid-run, which "
                         "DistributedDataParallel cannot follow; train in one process, or "
                         "leave the parameters frozen (--freeze alone)")
    Freezing(model, config).check(model)  # patterns matching nothing: refused here
    example, first_y = _first_rows(data)
    out_dim = _output_dim(model, example, device)
    loss = LossAdapter(task, config, out_dim, data.y, device)
    if loss.kind != "custom" and config.loss == "auto" and config.class_weight is None:
        loss.own = computes_own_loss(model, batches.move(example, device),
                                     loss.targets(first_y).to(device))
    if val is not None:
        _output_dim(model, _first_rows(val)[0], device, "the validation X")
    freezing = Freezing(model, config)
    freezing.apply(model)
    try:
        make_optimizer(model, config)  # raises for a model with nothing to train
    finally:
        freezing.restore(model)
    train = make_batches(data, train_idx, loss.targets, config, device)
    val_batches = None
    if val is not None:
        val_batches = make_batches(val, None, loss.targets, config, device)
    elif val_idx is not None:
        val_batches = make_batches(data, val_idx, loss.targets, config, device)
    plan = TorchPlan(
        device=device, loss=loss, train=train, val=val_batches, generator_seed=seed,
        checkpoint_root=checkpoints.checkpoint_root(store.home), feature_names=data.feature_names,
        input_spec=_input_spec(example), example_input=batches.detach_cpu(example),
        epochs=config.epochs, batches_per_epoch=len(train),
    )
    if resume_run is not None:
        prepare_resume(plan, model, config, resume_run)
    return plan


def run(model: Any, plan: TorchPlan, config: TrainConfig, *, on_event: EventCallback,
        stop: StopFlag, run_id: str) -> TorchOutcome:
    """Train on the plan's device inside a forked RNG; the model returns to its own device.

    A training that diverges (:func:`.loop.run_loop` finds an epoch's loss, or the final
    weights, not finite) gives the module back the weights it started from and returns the
    status ``"diverged"``; :func:`.record.complete_run` then ends the run FAILED.
    """
    import torch

    first_param = next(model.parameters())
    home_device = first_param.device
    was_training = model.training
    freezing = Freezing(model, config)  # the user's requires_grad flags, given back after
    writer = None
    if config.checkpoint:
        writer = checkpoints.CheckpointWriter(plan.checkpoint_root / run_id,
                                              min_interval=config.checkpoint_every)
    devices = [plan.device.index or 0] if plan.device.type == "cuda" else []
    optimizer = None
    try:
        with torch.random.fork_rng(devices=devices), deterministic(config.deterministic), \
                stop_on_sigint(stop):
            torch.manual_seed(plan.generator_seed)
            if plan.resume_state is None:
                plan.save_initial(model, run_id)
            model.to(plan.device)
            freezing.apply(model)
            counts = parameter_counts(model)
            optimizer = make_optimizer(model, config)
            generator = torch.Generator().manual_seed(plan.generator_seed)
            meta = None
            if plan.resume_state is not None:
                state = plan.resume_state
                model.load_state_dict(state.model)
                if freezing.due(plan.start_epoch):  # resumed after --unfreeze-after
                    freezing.release(model, optimizer)
                optimizer.load_state_dict(state.optimizer)
                torch.set_rng_state(state.rng["torch"])
                generator.set_state(state.rng["shuffle"])
                meta = state.meta
            outcome = run_loop(
                model, plan.train, plan.val, plan.loss, optimizer, config,
                generator=generator, on_event=on_event, stop=stop, writer=writer,
                start_epoch=plan.start_epoch, resume_meta=meta, freezing=freezing,
            )
            if outcome.status == "diverged":  # its weights are not finite: give the start back
                plan.restore_start(model, run_id)
    finally:
        if writer is not None:
            writer.close()
        freezing.restore(model)
        model.zero_grad(set_to_none=True)  # the last step's gradients: as large as the weights
        model.to(home_device)
        model.train(was_training)
        optimizer = None  # its moments (twice the weights, for Adam) before the heap is trimmed
        release_memory()
    last = outcome.history[-1] if outcome.history else {}
    metrics = {k: v for k, v in last.items() if k != "epoch"}
    if outcome.best_epoch is not None:
        best = outcome.history[outcome.best_epoch - 1]
        metrics.update({f"best_{k}": v for k, v in best.items() if k.startswith("val_")})
    metrics["train_seconds"] = outcome.loop_seconds
    metrics["trainable_parameters"] = float(counts.trainable)
    metrics["total_parameters"] = float(counts.total)
    checkpoint_dir = plan.checkpoint_root / run_id if writer is not None else None
    written = writer.written_epoch if writer is not None else None
    if written is None and plan.resume_state is not None:
        written = plan.resume_state.epoch
    return TorchOutcome(
        status=outcome.status, history=outcome.history, metrics=metrics,
        epochs_completed=outcome.epochs_completed, best_epoch=outcome.best_epoch,
        stopped_early=outcome.stopped_early,
        checkpoint=str(checkpoint_dir) if checkpoint_dir else None, checkpoint_epoch=written,
        diverged=outcome.diverged, diverged_epoch=outcome.diverged_epoch,
        notes=list(outcome.notes), parameters=counts,
    )
