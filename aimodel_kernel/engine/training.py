"""``train()``: validate, open a run, fit (scikit-learn) or loop (PyTorch), record, register.

Everything that can be wrong with the input is checked before the run is created, so bad input
leaves no run, no version and an untouched model behind.
"""

from __future__ import annotations

import copy
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from . import records
from .data import Data, TaskInfo, check_data, fingerprint, infer_task, take_rows
from .errors import InputError
from .events import EventCallback, RunStarted, StopFlag, TrainingEnd, ignore_event
from .links import ModelLink, remember
from .options import TrainConfig
from .serialize import framework_of, save_model
from .tracking import MODEL_DIR, TAG, Store, get_store

if TYPE_CHECKING:
    from .export_script import ExportReport


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
            parent=parent)

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
        }


def train(
    model: Any,
    X: Any,
    y: Any = None,
    config: TrainConfig | None = None,
    *,
    val_data: tuple[Any, Any] | None = None,
    on_event: EventCallback = ignore_event,
    stop: StopFlag | None = None,
    source: dict[str, str] | None = None,
    settings: Settings | None = None,
    names: tuple[str, str] = ("X", "y"),
    parent: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult | ExportReport:
    """Train ``model`` in place on ``X``, ``y`` and record the run (and a version) in MLflow.

    Parameters
    ----------
    model : scikit-learn estimator or torch.nn.Module
        Fitted / trained in place: afterwards the object holds the trained state.
    X, y : array-like, DataFrame, sparse matrix, tensor; or X a Dataset / DataLoader and y None
        Training data.
    config : TrainConfig, optional
        Options; defaults when omitted.
    val_data : (X_val, y_val), optional
        Explicit validation data instead of a ``config.val`` split.
    on_event : callable, optional
        Receives :mod:`~aimodel_kernel.engine.events` while training runs.
    stop : StopFlag, optional
        Set it to end training after the current batch (PyTorch) with the last epoch's weights.
    source : dict, optional
        ``{"line": magic line, "cell": cell source}`` recorded with the run.
    settings : Settings, optional
        Store location; the process-wide settings by default.
    names : (str, str)
        The user's names for X and y, used in error messages.
    parent : str, optional
        ``NAME/VERSION`` this model derives from (fine-tuning, reproduction, mitigation ...).
    tags : dict, optional
        Extra run tags.

    Returns
    -------
    TrainResult
        Or, with ``config.export_script``, an :class:`~.export_script.ExportReport`: the
        ``torchrun`` script and job file were written and nothing was trained or recorded.

    Raises
    ------
    InputError
        Anything wrong with the model, data or options; nothing is recorded then.
    """
    config = config or TrainConfig()
    config.validate()
    framework = framework_of(model)
    stop = stop or StopFlag()
    if framework == "torch":
        from . import torch_training as job
    else:
        from . import sklearn_training as job

    allow_nan = framework == "sklearn" and _allows_nan(model)
    data = check_data(
        X, y, numeric=framework == "torch", allow_nan=allow_nan, x_name=names[0], y_name=names[1]
    )
    task = infer_task(data.y, config.task)
    fp = fingerprint(data)
    if task.is_classification:
        labels, counts = np.unique(data.y, return_counts=True)
        fp["class_counts"] = {str(k): int(n) for k, n in zip(labels, counts, strict=True)}
    val = None
    watches_val = config.early_stop is not None and config.monitor.startswith("val")
    if watches_val and not config.val and val_data is None:
        raise InputError("--early-stop watches a validation metric: add --val 0.2 or "
                         "--val-data X_val y_val (or --monitor loss)")
    if val_data is not None:
        if config.val:
            raise InputError("give either --val (a fraction) or --val-data, not both")
        val = check_data(*val_data, numeric=framework == "torch", allow_nan=allow_nan,
                         x_name="validation X", y_name="validation y")
    store = get_store(settings)
    resume_run = job.find_resume_run(model, config, fp, store) if config.resume else None
    if resume_run is not None:
        seed = int(resume_run.data.tags[f"{TAG}seed"])
    else:
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    train_idx, val_idx = split_indices(data, task, config.val, seed)
    plan = job.prepare(model, data, val, task, config, seed, train_idx, val_idx, store,
                       resume_run)

    if plan.resume_run_id:
        run_id = plan.resume_run_id
        store.reopen_run(run_id)
    else:
        params = {
            **records.train_params(config, framework, seed),
            **records.model_params(model, framework, getattr(plan, "params", None)),
        }
        run_tags = records.run_tags(model=model, framework=framework, task=task,
                                    fingerprint=fp, seed=seed, config=config, source=source)
        if parent:
            run_tags[f"{TAG}parent"] = parent
        run_tags.update(tags or {})
        if config.export_script:  # write a torchrun script + job file instead of training
            from .export_script import write_export

            return write_export(model, plan, config, store=store, params=params, tags=run_tags,
                                fingerprint=fp, source=source, task=task, seed=seed,
                                parent=parent)
        run_id = store.start_run(run_name=config.name or type(model).__name__, params=params,
                                 tags=run_tags)
    started = time.perf_counter()
    try:
        if not plan.resume_run_id:
            record_inputs(store, run_id, fp, source)
        on_event(RunStarted(run_id, plan.epochs, plan.batches_per_epoch, plan.start_epoch))
        outcome = job.run(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)
    except InputError:
        store.discard_run(run_id)
        raise
    except BaseException:
        store.end_run(run_id, "KILLED" if stop.is_set() else "FAILED")
        raise
    if not getattr(outcome, "records", True):  # a worker node of a multi-node run: the node
        store.discard_run(run_id)              # with global rank 0 records it (multinode.py)
        result = TrainResult.of(model, outcome, run_id="", tracking_uri=store.uri, config=config,
                                framework=framework, task=task, seed=seed, fingerprint=fp,
                                parent=parent, seconds=time.perf_counter() - started, name=None)
        on_event(TrainingEnd(result.status, result.epochs_completed, ""))
        return result
    result = complete_run(store, model, plan, config, outcome, run_id=run_id,
                          framework=framework, task=task, seed=seed, fingerprint=fp,
                          parent=parent, seconds=time.perf_counter() - started)
    on_event(TrainingEnd(result.status, result.epochs_completed, result.resume_hint or ""))
    remember(model, ModelLink(run_id, store.uri, task, framework, result.name, result.version,
                              tuple(data.feature_names) if data.feature_names else None))
    return result


def _allows_nan(model: Any) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:
        return False


def split_indices(
    data: Data, task: TaskInfo, val: float, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Train / validation row indices for a ``val`` fraction (stratified for classes)."""
    if not val:
        return None, None
    n = data.n_samples
    n_val = round(n * val)
    if n_val < 1 or n - n_val < 1:
        raise InputError(f"--val {val} leaves an empty split of {n} rows; use a fraction like 0.2")
    from sklearn.model_selection import train_test_split

    stratify = None
    if task.is_classification:
        _, counts = np.unique(data.y, return_counts=True)
        if counts.min() >= 2 and n_val >= len(counts):
            stratify = data.y
    idx = np.arange(n)
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(va)


def rows(data: Data, index: np.ndarray | None) -> tuple[Any, Any]:
    """``(X, y)`` restricted to ``index`` (all rows when ``None``)."""
    if index is None:
        return data.X, data.y
    return take_rows(data.X, index), data.y[index]


def record_inputs(store: Store, run_id: str, fp: dict, source: dict[str, str] | None) -> None:
    """Log the data fingerprint, the environment and the magic line / cell source on a run."""
    store.log_dict(run_id, fp, "data/fingerprint.json")
    store.log_dict(run_id, records.environment(), "environment.json")
    if source:
        if source.get("cell"):
            store.log_text(run_id, source["cell"], "source/cell.py")
        if source.get("line"):
            store.log_text(run_id, source["line"], "source/magic.txt")


def complete_run(store: Store, model: Any, plan: Any, config: TrainConfig, outcome: Any, *,
                 run_id: str, framework: str, task: TaskInfo, seed: int,
                 fingerprint: dict[str, Any], parent: str | None,
                 seconds: float) -> TrainResult:
    """Record a finished fit or loop on its open run and end the run.

    Also used by exported ``torchrun`` scripts (:mod:`~aimodel_kernel.engine.export_script`).

    Parameters
    ----------
    store : Store
        The store holding the RUNNING run ``run_id``.
    model : object
        The trained model, saved as the run's model files.
    plan : object
        ``start_epoch``, ``feature_names``, ``input_spec``, ``example_input``,
        ``extra_files(run_id)`` and ``resume_hint(run_id, outcome)`` of the training.
    config : TrainConfig
    outcome : TorchOutcome or the scikit-learn outcome
        Status, history and metrics of the training.
    run_id, framework, task, seed, fingerprint, parent, seconds
        What :class:`TrainResult` reports.

    Returns
    -------
    TrainResult
        With the registered version when ``config.name`` is set. The run ends FINISHED (KILLED
        when training was interrupted), or FAILED when recording raises.
    """
    result = TrainResult.of(model, outcome, run_id=run_id, tracking_uri=store.uri, config=config,
                            framework=framework, task=task, seed=seed, fingerprint=fingerprint,
                            parent=parent, seconds=seconds, name=config.name)
    try:
        _finish(store, model, result, plan, config, outcome)
    except BaseException:
        store.end_run(run_id, "FAILED")
        raise
    return result


def _finish(store: Store, model: Any, result: TrainResult, plan: Any, config: TrainConfig,
            outcome: Any) -> None:
    run_id = result.run_id
    # one value per epoch and metric: epochs before a resume were logged when it stopped, and
    # summary values already in the history are its last step, not a second entry at step 0
    rows_ = [
        (key, value, int(entry.get("epoch", 0)))
        for entry in outcome.history if int(entry.get("epoch", 0)) > plan.start_epoch
        for key, value in entry.items() if key != "epoch"
    ]
    per_epoch = {key for entry in outcome.history for key in entry}
    rows_ += [(key, value, None) for key, value in result.metrics.items()
              if key not in per_epoch]
    store.log_metrics(run_id, rows_)
    if result.status == "interrupted":
        result.resume_hint = plan.resume_hint(run_id, outcome)
        store.set_tags(run_id, {f"{TAG}checkpoint": outcome.checkpoint or ""})
        store.end_run(run_id, "KILLED")
        return
    with tempfile.TemporaryDirectory(prefix="aimodel-model-") as tmp:
        manifest = {"task": result.task.to_dict(), "run_id": run_id,
                    "feature_names": plan.feature_names, "input": plan.input_spec}
        saved = save_model(model, Path(tmp), manifest=manifest,
                           example_input=plan.example_input if config.export else None,
                           extra_files=plan.extra_files(run_id))
        store.log_dir(run_id, tmp, MODEL_DIR)
    result.model_files = saved.checksums
    result.notes.extend(saved.warnings)
    store.set_tags(run_id, {
        **{f"{TAG}sha256.{name}": digest for name, digest in saved.checksums.items()},
        f"{TAG}model_bytes": str(saved.size_bytes),
    })
    store.log_metrics(run_id, [("model_bytes", float(saved.size_bytes), None)])
    if config.name:
        version_tags = {
            f"{TAG}task": result.task.task, f"{TAG}data.sha256": result.fingerprint["sha256"],
            **{f"{TAG}sha256.{n}": d for n, d in saved.checksums.items()},
        }
        if result.parent:
            version_tags[f"{TAG}parent"] = result.parent
        result.version = store.register_version(config.name, run_id, tags=version_tags)
        store.set_tags(run_id, {f"{TAG}version": str(result.version)})
    store.end_run(run_id, "FINISHED")


def snapshot(model: Any) -> dict[str, Any]:
    """A deep copy of an estimator's attributes, to restore it if fitting fails."""
    return copy.deepcopy(model.__dict__)


def restore(model: Any, state: dict[str, Any]) -> None:
    model.__dict__.clear()
    model.__dict__.update(state)
