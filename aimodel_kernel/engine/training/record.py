"""Recording a finished fit or loop on its open run: metrics, model files, version, run end.

Used by :func:`~aimodel_kernel.engine.training.entry.train` and by exported ``torchrun`` scripts
(:mod:`~aimodel_kernel.engine.training.distributed.export`), through the one
:class:`~aimodel_kernel.engine.store.recorder.Recording`.
"""

from __future__ import annotations

from typing import Any

from ..core.data import TaskInfo
from ..core.options import TrainConfig
from ..store.recorder import Recording
from ..store.tracking import TAG
from .result import TrainResult


def complete_run(recording: Recording, model: Any, plan: Any, config: TrainConfig,
                 outcome: Any, *, framework: str, task: TaskInfo, seed: int,
                 fingerprint: dict[str, Any], parent: str | None,
                 seconds: float) -> TrainResult:
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

    Returns
    -------
    TrainResult
        With the registered version when ``config.name`` is set. The run ends FINISHED (KILLED
        when training was interrupted), or FAILED when recording raises.
    """
    store, run_id = recording.store, recording.run_id
    result = TrainResult.of(model, outcome, run_id=run_id, tracking_uri=store.uri, config=config,
                            framework=framework, task=task, seed=seed, fingerprint=fingerprint,
                            parent=parent, seconds=seconds, name=config.name)
    with recording:
        # one value per epoch and metric: epochs before a resume were logged when it stopped,
        # and summary values already in the history are its last step, not a second entry
        rows = [
            (key, value, int(entry.get("epoch", 0)))
            for entry in outcome.history if int(entry.get("epoch", 0)) > plan.start_epoch
            for key, value in entry.items() if key != "epoch"
        ]
        per_epoch = {key for entry in outcome.history for key in entry}
        rows += [(key, value, None) for key, value in result.metrics.items()
                 if key not in per_epoch]
        store.log_metrics(run_id, rows)
        if result.status == "interrupted":
            result.resume_hint = plan.resume_hint(run_id, outcome)
            store.set_tags(run_id, {f"{TAG}checkpoint": outcome.checkpoint or ""})
            recording.end("KILLED")
            return result
        manifest = {"task": task.to_dict(), "feature_names": plan.feature_names,
                    "input": plan.input_spec}
        saved = recording.save_model(
            model, manifest=manifest, extra_files=plan.extra_files(run_id),
            example_input=plan.example_input if config.export else None)
        result.model_files = saved.checksums
        result.notes.extend(saved.warnings)
        if config.name:
            result.version = recording.register(config.name, task=task.task, parent=parent,
                                                data_sha256=fingerprint["sha256"])
    return result
