"""What a click on the panel's Train button runs: the same :func:`~..engine.training.train`
as ``%train``, recorded with the ``%train`` line (and cell) that would do the same.

One training trains the notebook's object itself, as ``%train`` does: the parameters edited in
the panel are set on the estimator when Train is pressed (and put back if training fails), and
the recorded cell says so (``clf.set_params(C=0.5)`` before the ``%train`` line). A sweep trains
a fresh copy per run (``clone`` with the run's parameters, or a deep copy of the module as it was
when Train was pressed), so every run starts from the same state and the notebook's object is
left as it was.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..engine.core.errors import InputError
from ..engine.core.events import EventCallback, StopFlag, ignore_event
from ..engine.core.options import TrainConfig, flags_for
from ..engine.store.serialize import framework_of
from ..engine.training.sweep import SweepResult, Trial, expand, new_sweep, split_params
from ..engine.training.trial import copy_model, params_applied
from .sweep import panel_tags

NONE = "(none)"  # the dropdown entry for "no validation data" / "no y"


@dataclass
class Job:
    """One click on Train, with every name resolved and every option checked."""

    model_name: str
    model: Any
    framework: str
    X_name: str
    X: Any
    y_name: str | None
    y: Any
    val_names: tuple[str, ...] = ()
    val_data: tuple[Any, Any] | None = None
    name: str | None = None
    model_params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    sweep: SweepResult | None = None
    base: Any = None
    sweep_id: str = ""
    models: dict[int, Any] = field(default_factory=dict)


def _value(panel: Any, choice: Any, role: str, required: bool = True) -> tuple[str | None, Any]:
    name = choice.value
    if name in (None, NONE):
        if required:
            raise InputError(f"choose {role} (none suitable? create it, then press Refresh)")
        return None, None
    if name not in panel.ns:
        raise InputError(f"{role} {name!r} is no longer defined; press Refresh")
    return name, panel.ns[name]


def prepare_job(panel: Any) -> Job:
    """What a click on Train would run, from the panel's widgets: every choice resolved and
    every value checked (:class:`InputError` otherwise), before anything is trained."""
    model_name, model = _value(panel, panel.model_choice, "a model")
    X_name, X = _value(panel, panel.X_choice, "X")
    y_name, y = _value(panel, panel.y_choice, "y", required=False)
    Xv_name, Xv = _value(panel, panel.X_val_choice, "validation X", required=False)
    yv_name, yv = _value(panel, panel.y_val_choice, "validation y", required=False)
    framework = framework_of(model)
    model_params = {k[6:]: v for k, v in (panel.model_form.changed().items()
                                          if panel.model_form else [])}
    options = {k[6:]: v for k, v in panel.options_form.changed().items()}
    name = panel.name_text.value.strip() or None
    val_names = tuple(n for n in (Xv_name, yv_name) if n)
    job = Job(model_name, model, framework, X_name, X, y_name, y, val_names,
              (Xv, yv) if Xv_name else None, name, model_params, options)
    if options.get("val") and job.val_data is not None:
        raise InputError("give either a validation fraction (val) or validation data, "
                         "not both")
    TrainConfig(**options, name=name)  # bad options fail here, before anything runs
    if panel.sweep_mode.value:
        _prepare_sweep(panel, job)
    return job


def _prepare_sweep(panel: Any, job: Job) -> None:
    space = {k: v for form in panel._forms() for k, v in form.space().items()}
    if not space:
        raise InputError("sweep: type values in at least one parameter's sweep field, e.g. "
                         "0.01, 0.1, 1 or 1:10:3")
    mode, seed = panel.sampling.value, panel.sweep_seed.value
    combos = expand(space, mode=mode, n=panel.n_runs.value if mode == "random" else None,
                    seed=seed)
    if job.name is None:
        job.name = f"{job.model_name}-sweep"
        panel.name_text.value = job.name
    job.sweep = new_sweep(combos, space=space, name=job.name, mode=mode, seed=seed)
    job.sweep_id = uuid.uuid4().hex[:8]
    if job.framework == "torch":  # every run starts from the weights of now
        job.base = copy.deepcopy(job.model)
    else:
        from sklearn.base import clone

        job.base = clone(job.model)


def magic_line(job: Job, options: dict[str, Any]) -> str:
    """The ``%train`` line that trains like this job (options left at their default omitted)."""
    parts = ["%train", job.model_name, job.X_name, *([job.y_name] if job.y_name else [])]
    if job.val_names:
        parts += ["--val-data", *job.val_names]
    if job.name:
        parts += ["--name", job.name]
    return " ".join(parts + flags_for(options))


def _kwargs(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def source_for(job: Job, line: str, model_params: dict[str, Any],
               trial: Trial | None = None) -> dict[str, str]:
    """``{"line", "cell"}`` recorded with the run: the ``%train`` line, and a cell that does
    what the panel did before it (set parameters, or make the sweep's copy)."""
    m = job.model_name
    cell = []
    if trial is not None and job.sweep is not None:
        total = len(job.sweep.trials)
        cell.append(f"# %experiment sweep {job.sweep_id}: run {trial.index} of {total}, on a "
                    f"copy ({m} itself is unchanged)")
        if job.framework == "torch":
            cell.append(f"{m} = copy.deepcopy({m})")
        else:
            cell.append(f"{m} = sklearn.base.clone({m})"
                        + (f".set_params({_kwargs(model_params)})" if model_params else ""))
    elif model_params:
        cell.append(f"{m}.set_params({_kwargs(model_params)})")
    cell.append(line)
    return {"line": line, "cell": "\n".join(cell)}


def _chosen(model_params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {**{f"model.{k}": v for k, v in model_params.items()},
            **{f"train.{k}": v for k, v in options.items()}}


def train_single(job: Job, *, stop: StopFlag, on_event: EventCallback = ignore_event,
                 settings: Settings | None = None) -> Any:
    """Train the notebook's model itself with the panel's parameters; return the
    :class:`~..engine.training.TrainResult`."""
    from ..engine.training.entry import train

    config = TrainConfig(**job.options, name=job.name)
    with params_applied(job.model, job.model_params) as changed:
        line = magic_line(job, job.options)
        return train(job.model, job.X, job.y, config, val_data=job.val_data, on_event=on_event,
                     stop=stop, source=source_for(job, line, changed), settings=settings,
                     names=(job.X_name, job.y_name or "y"),
                     tags=panel_tags("train", _chosen(changed, job.options)))


def train_trial(job: Job, trial: Trial, *, stop: StopFlag,
                on_event: EventCallback = ignore_event, settings: Settings | None = None) -> Any:
    """Train one sweep run on a fresh copy of the model (kept in ``job.models``)."""
    from ..engine.training.entry import train

    assert job.sweep is not None
    swept_params, swept_options = split_params(trial.params)
    model_params = {**job.model_params, **swept_params}
    options = {**job.options, **swept_options}
    if options.get("seed") is None:  # the same split and shuffling for every run
        options["seed"] = job.sweep.seed
    config = TrainConfig(**options, name=job.name)
    fresh = copy_model(job.base, model_params, job.framework)
    line = magic_line(job, options)
    tags = panel_tags("sweep", _chosen(model_params, options), sweep_id=job.sweep_id,
                      sweep_run=f"{trial.index}/{len(job.sweep.trials)}")
    result = train(fresh, job.X, job.y, config, val_data=job.val_data, on_event=on_event,
                   stop=stop, source=source_for(job, line, model_params, trial),
                   settings=settings, names=(job.X_name, job.y_name or "y"), tags=tags)
    job.models[trial.index] = fresh
    return result


def evaluate_on_validation(job: Job, settings: Settings | None = None) -> Any:
    """``%evaluate MODEL X_val y_val`` after a single training: the report (logged on the run),
    or ``None`` without validation data."""
    if job.val_data is None:
        return None
    from ..display.evaluation_report import EvaluationReport
    from ..engine.evaluation.metrics import evaluate
    from ..engine.store.tracking import get_store, log_result_artifact

    store = get_store(settings)
    result = evaluate(job.model, *job.val_data, log=True, store=store, name=job.model_name)
    report = EvaluationReport(result)
    if result.logged:
        png = report.png()
        if png:
            log_result_artifact(result, "plots.png", png, store=store)
    return report
