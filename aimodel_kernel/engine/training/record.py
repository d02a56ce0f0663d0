"""Recording a finished fit or loop on its open run: metrics, model files, version, run end.

Used by :func:`~aimodel_kernel.engine.training.entry.train` and by exported ``torchrun`` scripts
(:mod:`~aimodel_kernel.engine.training.distributed.export`), through the one
:class:`~aimodel_kernel.engine.store.recorder.Recording`.
"""

from __future__ import annotations

from typing import Any

from ..core.data import TaskInfo
from ..core.errors import InputError
from ..core.options import TrainConfig
from ..store.recorder import Recording
from ..store.tracking import TAG
from .result import TrainResult

DIVERGED = f"{TAG}diverged"
"""The tag holding a diverged run's one-line reason."""


class TrainingDiverged(InputError):
    """The loss or the weights stopped being finite; the run ended FAILED with no version."""


def divergence_message(outcome: Any, config: TrainConfig) -> str:
    """One line for a diverged training: where, what, and the likely cure (the learning rate)."""
    lr = config.lr
    return (f"training diverged at epoch {outcome.diverged_epoch} ({outcome.diverged}): the "
            f"learning rate is most likely too high for this model and data; lower --lr (now "
            f"{lr:g}, try {lr / 10:g}), or scale X if its values are large. The run is marked "
            "FAILED, nothing was registered, and the model holds the weights it started from")


def complete_run(recording: Recording, model: Any, plan: Any, config: TrainConfig,
                 outcome: Any, *, framework: str, task: TaskInfo, seed: int,
                 fingerprint: dict[str, Any], parent: str | None,
                 seconds: float, register: bool = True, adapter: Any = None) -> TrainResult:
    """Record a finished fit or loop on its open run and end the run.

    Parameters
    ----------
    recording : Recording
        The RUNNING run the training reported to.
    model : object
        The trained model, saved as the run's model files.
    plan : object
        ``start_epoch``, ``feature_names``, ``input_spec``, ``example_input``,
        ``extra_files(run_id)`` and ``resume_hint(run_id, outcome)`` of the training.
    config : TrainConfig
    outcome : TorchOutcome or the scikit-learn outcome
        Status, history and metrics of the training.
    framework, task, seed, fingerprint, parent, seconds
        What :class:`TrainResult` reports.
    register : bool
        Register the version under ``config.name`` (``%reproduce`` registers itself, only
        after comparing).
    adapter : store.adapters.Adapter, optional
        ``--lora``: the adapters (already merged into ``model``). The version saves only them
        and the head over their recorded base, or with ``--merge`` the merged full weights;
        either way its manifest and tags describe the LoRA configuration.

    Returns
    -------
    TrainResult
        With the registered version when ``config.name`` is set. The run ends FINISHED (KILLED
        when training was interrupted), or FAILED when recording raises.

    Raises
    ------
    TrainingDiverged
        The training diverged (status ``"diverged"``): its metrics are logged, the run ends
        FAILED with the reason in the ``aimodel.diverged`` tag, and nothing is saved or
        registered.
    """
    store, run_id = recording.store, recording.run_id
    result = TrainResult.of(model, outcome, run_id=run_id, tracking_uri=store.uri, config=config,
                            framework=framework, task=task, seed=seed, fingerprint=fingerprint,
                            parent=parent, seconds=seconds, name=config.name)
    with recording:
        # one value per epoch and metric: epochs before a resume were logged when it stopped
        # (unless its kernel died: then they come from the checkpoint's history now), and
        # summary values already in the history are its last step, not a second entry
        logged = ({step for step, _ in store.metric_history(run_id, "loss")}
                  if plan.start_epoch else set())
        rows = [
            (key, value, int(entry.get("epoch", 0)))
            for entry in outcome.history
            if int(entry.get("epoch", 0)) > plan.start_epoch
            or int(entry.get("epoch", 0)) not in logged
            for key, value in entry.items() if key != "epoch"
        ]
        per_epoch = {key for entry in outcome.history for key in entry}
        rows += [(key, value, None) for key, value in result.metrics.items()
                 if key not in per_epoch]
        store.log_metrics(run_id, rows)
        if result.status == "diverged":  # the history shows the loss up to the divergence
            message = divergence_message(outcome, config)
            store.set_tags(run_id, {DIVERGED: message})
            recording.end("FAILED")
            raise TrainingDiverged(message)
        if result.status == "interrupted":
            result.resume_hint = plan.resume_hint(run_id, outcome)
            store.set_tags(run_id, {f"{TAG}checkpoint": outcome.checkpoint or ""})
            recording.end("KILLED")
            return result
        manifest = {"task": task.to_dict(), "feature_names": plan.feature_names,
                    "input": plan.input_spec}
        extra = plan.extra_files(run_id)
        lora_tags: dict[str, str] = {}
        if adapter is not None:  # the start of a LoRA run is the wrapped module: not kept
            from .torch_plan import INITIAL_WEIGHTS

            extra.pop(INITIAL_WEIGHTS, None)
            lora_tags = adapter.tags()
            store.set_tags(run_id, lora_tags)
        if adapter is not None and not adapter.merged:
            saved = recording.save_model(model, manifest=manifest, extra_files=extra,
                                         adapter=adapter)
        else:
            if adapter is not None:
                manifest["lora"] = adapter.config()
            saved = recording.save_model(
                model, manifest=manifest, extra_files=extra,
                example_input=plan.example_input if config.export else None)
        result.model_files = saved.checksums
        result.notes.extend(saved.warnings)
        if config.name and register:
            result.version = recording.register(config.name, task=task.task, parent=parent,
                                                data_sha256=fingerprint["sha256"],
                                                tags=lora_tags)
    return result
