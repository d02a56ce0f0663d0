"""What a distributed training returns to the kernel: rank 0's result as a
:class:`~.torch_plan.TorchOutcome`, and where rank 0 keeps the run's checkpoints.

Shared by the worker pool (:mod:`.launch`), several nodes (:mod:`.nodes`) and exported
scripts (:mod:`.export`).
"""

from __future__ import annotations

from typing import Any

from ...core.options import TrainConfig
from ..torch_plan import TorchOutcome, TorchPlan


def checkpoint_dir(plan: TorchPlan, config: TrainConfig, run_id: str) -> str | None:
    """Where rank 0 writes the run's checkpoints (the one-process place), or ``None``."""
    return str(plan.checkpoint_root / run_id) if config.checkpoint else None


def outcome_of(result: dict[str, Any], note: str, checkpoint: str | None = None) -> TorchOutcome:
    """The :class:`TorchOutcome` of rank 0's result: its last epoch's metrics, throughput
    summed over ranks, the world size, the checkpoint rank 0 kept in ``checkpoint``, and a
    divergence (status ``"diverged"``: the kernel keeps the module's own weights then)."""
    loop = result["outcome"]
    last = loop.history[-1] if loop.history else {}
    metrics = {k: v for k, v in last.items() if k != "epoch"}
    if "samples_per_second" in metrics:
        metrics["samples_per_second"] *= result["world"]
    metrics["train_seconds"] = loop.loop_seconds
    metrics["world_size"] = float(result["world"])
    counts = result.get("parameters")  # finetune.ParameterCounts (absent from older workers)
    if counts is not None:
        metrics["trainable_parameters"] = float(counts.trainable)
        metrics["total_parameters"] = float(counts.total)
    return TorchOutcome(
        status=loop.status, history=loop.history, metrics=metrics,
        epochs_completed=loop.epochs_completed, best_epoch=loop.best_epoch,
        stopped_early=loop.stopped_early,
        checkpoint=checkpoint if result.get("checkpoint_epoch") is not None else None,
        checkpoint_epoch=result.get("checkpoint_epoch"),
        notes=[note, *result.get("notes", []), *getattr(loop, "notes", [])],
        diverged=getattr(loop, "diverged", None),
        diverged_epoch=getattr(loop, "diverged_epoch", None), parameters=counts,
    )
