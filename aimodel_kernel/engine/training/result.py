"""What :func:`~aimodel_kernel.engine.training.entry.train` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.data import TaskInfo


@dataclass
class TrainResult:
    """The outcome of :func:`train`: status, metrics, history and where it was recorded."""

    model_class: str
    framework: str
    task: TaskInfo
    status: str
    run_id: str
    tracking_uri: str
    seed: int
    config: dict[str, Any]
    fingerprint: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_completed: int = 0
    seconds: float = 0.0
    name: str | None = None
    version: int | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    checkpoint: str | None = None
    resume_hint: str | None = None
    model_files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    parent: str | None = None
    parameters: dict[str, int] | None = None  # PyTorch: {"trainable", "total"} parameters

    @classmethod
    def of(cls, model: Any, outcome: Any, *, run_id: str, tracking_uri: str, config: Any,
           framework: str, task: TaskInfo, seed: int, fingerprint: dict[str, Any],
           parent: str | None, seconds: float, name: str | None) -> TrainResult:
        """The result of a fit or loop ``outcome`` (its status, history, metrics, epochs)."""
        return cls(
            model_class=type(model).__name__, framework=framework, task=task,
            status=outcome.status, run_id=run_id, tracking_uri=tracking_uri, seed=seed,
            config=config.to_dict(), fingerprint=fingerprint, history=outcome.history,
            metrics=outcome.metrics, epochs_completed=outcome.epochs_completed, seconds=seconds,
            name=name, best_epoch=getattr(outcome, "best_epoch", None),
            stopped_early=getattr(outcome, "stopped_early", False),
            checkpoint=getattr(outcome, "checkpoint", None), notes=list(outcome.notes),
            parent=parent, parameters=_counts(getattr(outcome, "parameters", None)))

    @property
    def ref(self) -> str | None:
        """``name/version`` when the model was registered."""
        return f"{self.name}/{self.version}" if self.version is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_class": self.model_class,
            "framework": self.framework,
            "task": self.task.to_dict(),
            "status": self.status,
            "run_id": self.run_id,
            "tracking_uri": self.tracking_uri,
            "seed": self.seed,
            "config": self.config,
            "fingerprint": self.fingerprint,
            "metrics": self.metrics,
            "history": self.history,
            "epochs_completed": self.epochs_completed,
            "seconds": self.seconds,
            "name": self.name,
            "version": self.version,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "checkpoint": self.checkpoint,
            "resume_hint": self.resume_hint,
            "model_files": self.model_files,
            "notes": self.notes,
            "parent": self.parent,
            "parameters": self.parameters,
        }


def _counts(counts: Any) -> dict[str, int] | None:
    """A ``ParameterCounts`` as ``{"trainable", "total"}`` (``None`` stays ``None``)."""
    if counts is None:
        return None
    return {"trainable": int(counts.trainable), "total": int(counts.total)}
