"""Preparing and running one-process PyTorch training: checks, devices, seeds, restore.

:func:`prepare` is shared by every placement (the worker pool and several nodes add their job
to its plan, :mod:`.jobs`); :func:`run` trains in the kernel's own process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.data import Data, TaskInfo
from ..core.errors import InputError
from ..core.events import EventCallback, StopFlag, stop_on_sigint
from ..core.options import TrainConfig
from ..store.tracking import Store
from . import checkpoints
from .determinism import deterministic
from .loop import (
    LossAdapter,
    as_input_tensor,
    make_batches,
    make_optimizer,
    resolve_device,
    run_loop,
)
from .resume import prepare_resume
from .torch_plan import TorchOutcome, TorchPlan


def _first_rows(data: Data, n: int = 2):
    """A small input batch for checking the model and for ``torch.export``."""
    import torch

    if data.is_torch_data:
        dataset = data.X.dataset if data.kind == "loader" else data.X
        return torch.stack([torch.as_tensor(dataset[i][0]) for i in range(min(n, len(dataset)))])
    from ..core.data import take_rows

    return as_input_tensor(take_rows(data.X, np.arange(min(n, data.n_samples))))


def _output_dim(model: Any, example: Any, device: Any, x_name: str = "X") -> int:
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(example.to(device))
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{type(model).__name__} cannot take {x_name} of shape "
            f"{tuple(example.shape[1:])} per row: {first}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise InputError(
            f"{type(model).__name__}.forward returned a {type(out).__name__}; it must return a "
            "tensor of outputs (e.g. logits) for training"
        )
    if out.shape[0] != example.shape[0]:
        raise InputError(
            f"{type(model).__name__} returned {out.shape[0]} rows for {example.shape[0]} inputs"
        )
    return 1 if out.ndim == 1 else int(np.prod(out.shape[1:]))


def prepare(model: Any, data: Data, val: Data | None, task: TaskInfo, config: TrainConfig,
            seed: int, train_idx, val_idx, store: Store, resume_run: Any) -> TorchPlan:
    """Check the model against the data and options; find the checkpoint to resume."""

    device = resolve_device(config.device)
    if data.kind == "loader" and (config.val or train_idx is not None):
        raise InputError("--val cannot split a DataLoader; pass --val-data with a second loader")
    example = _first_rows(data)
    out_dim = _output_dim(model, example, device)
    loss = LossAdapter(task, config, out_dim, data.y, device)
    if val is not None:
        _output_dim(model, _first_rows(val), device, "the validation X")
    make_optimizer(model, config)  # raises for a model with nothing to train
    train = make_batches(data, train_idx, loss.targets, config, device)
    val_batches = None
    if val is not None:
        val_batches = make_batches(val, None, loss.targets, config, device)
    elif val_idx is not None:
        val_batches = make_batches(data, val_idx, loss.targets, config, device)
    plan = TorchPlan(
        device=device, loss=loss, train=train, val=val_batches, generator_seed=seed,
        checkpoint_root=checkpoints.checkpoint_root(store.home), feature_names=data.feature_names,
        input_spec={"shape": [None, *example.shape[1:]], "dtype": str(example.dtype)},
        example_input=example.cpu(), epochs=config.epochs, batches_per_epoch=len(train),
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
    writer = None
    if config.checkpoint:
        writer = checkpoints.CheckpointWriter(plan.checkpoint_root / run_id,
                                              min_interval=config.checkpoint_every)
    devices = [plan.device.index or 0] if plan.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), deterministic(config.deterministic), \
                stop_on_sigint(stop):
            torch.manual_seed(plan.generator_seed)
            if plan.resume_state is None:
                plan.save_initial(model, run_id)
            model.to(plan.device)
            optimizer = make_optimizer(model, config)
            generator = torch.Generator().manual_seed(plan.generator_seed)
            meta = None
            if plan.resume_state is not None:
                state = plan.resume_state
                model.load_state_dict(state.model)
                optimizer.load_state_dict(state.optimizer)
                torch.set_rng_state(state.rng["torch"])
                generator.set_state(state.rng["shuffle"])
                meta = state.meta
            outcome = run_loop(
                model, plan.train, plan.val, plan.loss, optimizer, config,
                generator=generator, on_event=on_event, stop=stop, writer=writer,
                start_epoch=plan.start_epoch, resume_meta=meta,
            )
            if outcome.status == "diverged":  # its weights are not finite: give the start back
                plan.restore_start(model, run_id)
    finally:
        if writer is not None:
            writer.close()
        model.to(home_device)
        model.train(was_training)
    last = outcome.history[-1] if outcome.history else {}
    metrics = {k: v for k, v in last.items() if k != "epoch"}
    if outcome.best_epoch is not None:
        best = outcome.history[outcome.best_epoch - 1]
        metrics.update({f"best_{k}": v for k, v in best.items() if k.startswith("val_")})
    metrics["train_seconds"] = outcome.loop_seconds
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
    )
