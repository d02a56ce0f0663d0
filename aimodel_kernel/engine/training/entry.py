"""``train()``: validate, open a run, fit (scikit-learn) or loop (PyTorch), record, register.

Everything that can be wrong with the input is checked before the run is created, so bad input
leaves no run, no version and an untouched model behind. Where the training runs (the kernel,
a pool of worker processes, several nodes) is decided once, by :func:`.jobs.job_for`.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ...config import Settings
from ..core.data import allows_nan, check_data, fingerprint, infer_task
from ..core.errors import InputError
from ..core.events import EventCallback, RunStarted, StopFlag, TrainingEnd, ignore_event
from ..core.inputs import check_model_input
from ..core.links import ModelLink, remember
from ..core.options import TrainConfig
from ..store import records
from ..store.owners import mark_dead_runs, owner_tags
from ..store.recorder import Recording
from ..store.serialize import framework_of
from ..store.tracking import TAG, get_store
from .jobs import job_for
from .record import TrainingDiverged, complete_run, divergence_message
from .result import TrainResult
from .split import split_indices

if TYPE_CHECKING:
    from .distributed.export import ExportReport


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
    register: bool = True,
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
        Receives :mod:`~aimodel_kernel.engine.core.events` while training runs.
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
    register : bool
        Register the trained model as a version of ``config.name`` (default). ``False``
        records the run under that name but registers nothing (``%reproduce`` compares first).

    Returns
    -------
    TrainResult
        Or, with ``config.export_script``, an :class:`~.distributed.export.ExportReport`: the
        ``torchrun`` script and job file were written and nothing was trained or recorded.

    Raises
    ------
    InputError
        Anything wrong with the model, data or options; nothing is recorded then.
    TrainingDiverged
        An :class:`InputError`: the loss or the weights stopped being finite (a learning rate
        too high, most often). The run is kept, FAILED, with its loss history and the tag
        ``aimodel.diverged``; no version is registered, and the module holds the weights it
        started from.

    Notes
    -----
    Before training, RUNNING runs of the store whose owning process on this machine has died
    are marked KILLED
    (:func:`~aimodel_kernel.engine.store.owners.mark_dead_runs`), so ``--resume`` finds them.
    """
    config = config or TrainConfig()
    config.validate()
    framework = framework_of(model)
    stop = stop or StopFlag()
    job = job_for(framework, config)
    allow_nan = framework == "sklearn" and allows_nan(model)
    data = check_data(
        X, y, numeric=framework == "torch", allow_nan=allow_nan, x_name=names[0], y_name=names[1]
    )
    if framework == "sklearn":  # PyTorch models get their trial forward pass in prepare()
        check_model_input(model, data, x_name=names[0], fitting=True)
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
        if framework == "sklearn":
            check_model_input(model, val, x_name="validation X", fitting=True)
    store = get_store(settings)
    if config.resume:  # a run whose kernel died while training is KILLED now: resumable
        mark_dead_runs(store)
    resume_run = job.find_resume_run(model, config, fp, store) if config.resume else None
    if resume_run is not None:
        seed = int(resume_run.data.tags[f"{TAG}seed"])
    else:
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    train_idx, val_idx = split_indices(data, task, config.val, seed)
    transfer = _transfer(model, config, settings) if framework == "torch" else None
    if transfer is not None:  # --from weights loaded, LoRA adapters injected: undone on error
        transfer.apply(model, seed)
        parent = parent or transfer.parent
    try:
        plan = job.prepare(model, data, val, task, config, seed, train_idx, val_idx, store,
                           resume_run)
    except BaseException:
        if transfer is not None:
            transfer.undo(model)
        raise
    if not config.resume and not config.export_script:  # after every check: bad input
        mark_dead_runs(store)                            # changes nothing

    if plan.resume_run_id:
        # this process owns it from now on: recorded before it is RUNNING again, so no other
        # kernel mistakes the resumed run for the dead one
        store.set_tags(plan.resume_run_id, owner_tags())
        recording = Recording.reopen(store, plan.resume_run_id)
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
            from .distributed.export import write_export

            return write_export(model, plan, config, store=store, params=params, tags=run_tags,
                                fingerprint=fp, source=source, task=task, seed=seed,
                                parent=parent)
        recording = Recording.start(store, run_name=config.name or type(model).__name__,
                                    params=params, tags={**run_tags, **owner_tags()})
    run_id = recording.run_id
    started = time.perf_counter()
    try:
        if not plan.resume_run_id:
            recording.log_inputs(fp, source, packages=job.packages)
        on_event(RunStarted(run_id, plan.epochs, plan.batches_per_epoch, plan.start_epoch))
        outcome = job.run(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)
        adapter = None
        if transfer is not None:  # the adapters merged into the user's module (LoRA)
            saves = getattr(outcome, "records", True) and outcome.status not in (
                "interrupted", "diverged")
            adapter = transfer.finish(model, outcome.status, store=store, saves=saves)
    except InputError:
        if transfer is not None:
            transfer.undo(model)
        recording.discard()
        raise
    except BaseException:
        if transfer is not None:
            transfer.undo(model)
        recording.end("KILLED" if stop.is_set() else "FAILED")
        raise
    if not getattr(outcome, "records", True):  # a worker node of a multi-node run: the node
        recording.discard()                    # with global rank 0 records it (nodes.py)
        if outcome.status == "diverged":
            raise TrainingDiverged(divergence_message(outcome, config))
        result = TrainResult.of(model, outcome, run_id="", tracking_uri=store.uri, config=config,
                                framework=framework, task=task, seed=seed, fingerprint=fp,
                                parent=parent, seconds=time.perf_counter() - started, name=None)
        on_event(TrainingEnd(result.status, result.epochs_completed, ""))
        return result
    result = complete_run(recording, model, plan, config, outcome, framework=framework,
                          task=task, seed=seed, fingerprint=fp, parent=parent,
                          seconds=time.perf_counter() - started, register=register,
                          adapter=adapter)
    if transfer is not None:
        result.notes[:0] = transfer.notes
    on_event(TrainingEnd(result.status, result.epochs_completed, result.resume_hint or ""))
    remember(model, ModelLink(run_id, store.uri, task, framework, result.name, result.version,
                              tuple(data.feature_names) if data.feature_names else None))
    return result


def _transfer(model: Any, config: TrainConfig, settings: Settings | None) -> Any:
    """The checked ``--from`` / ``--lora`` steps of a PyTorch training, or ``None``."""
    if config.lora is None and not config.start_from:
        return None
    if config.lora is not None and config.export_script:
        raise InputError("--lora cannot be exported with --export-script yet; train here (or "
                         "with --devices N)")
    from .transfer import Transfer

    return Transfer.check(model, config, settings)
