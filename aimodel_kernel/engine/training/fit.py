"""Fitting a scikit-learn estimator in place, restored untouched if the fit fails."""

from __future__ import annotations

import copy
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.data import Data, TaskInfo
from ..core.errors import InputError
from ..core.events import EventCallback, StopFlag
from ..core.options import TrainConfig
from ..store.tracking import Store
from .split import rows


@dataclass
class SklearnPlan:
    """What :func:`run` needs, decided before the run is opened."""

    train: tuple[Any, Any]
    val: tuple[Any, Any] | None
    params: dict[str, Any]
    feature_names: list[str] | None
    input_spec: dict[str, Any]
    resume_run_id: str | None = None
    epochs: int = 1
    batches_per_epoch: int = 1
    start_epoch: int = 0
    example_input: Any = None
    notes: list[str] = field(default_factory=list)
    seeded: list[str] = field(default_factory=list)
    """The ``random_state`` parameters (of ``params``) that get the run's seed."""

    def extra_files(self, run_id: str) -> dict[str, Any]:
        return {}

    def resume_hint(self, run_id: str, outcome: Any) -> str:
        return "scikit-learn fits cannot resume; the estimator was left as it was before"


@dataclass
class SklearnOutcome:
    status: str = "finished"
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    epochs_completed: int = 1
    best_epoch: int | None = None
    stopped_early: bool = False
    checkpoint: str | None = None
    notes: list[str] = field(default_factory=list)


def find_resume_run(model: Any, config: TrainConfig, fp: dict, store: Store) -> None:
    raise InputError("--resume continues PyTorch training; scikit-learn fits cannot resume")


def prepare(model: Any, data: Data, val: Data | None, task: TaskInfo, config: TrainConfig,
            seed: int, train_idx, val_idx, store: Store, resume_run: Any) -> SklearnPlan:
    """Check the estimator against the options; decide parameter changes (not yet applied)."""
    if data.is_torch_data:
        raise InputError("a scikit-learn estimator needs arrays or a DataFrame, not a Dataset")
    if config.deterministic and config.seed is None:
        raise InputError("--deterministic needs --seed N for a scikit-learn estimator")
    params = planned_params(model, config, seed)
    train = rows(data, train_idx)
    validation = rows(data, val_idx) if val_idx is not None else None
    if val is not None:
        validation = (val.X, val.y)
    shape = list(getattr(data.X, "shape", [data.n_samples]))
    plan = SklearnPlan(train, validation, params, data.feature_names,
                       {"shape": [None, *shape[1:]], "columns": data.feature_names})
    states = _random_states(model)
    plan.seeded = [k for k in states if k in params]
    if plan.seeded:
        plan.notes.append(f"{', '.join(plan.seeded)} set to the run's seed {seed} (it was None), "
                          "so the fit can be repeated")
    kept = {k: v for k, v in states.items() if v is not None}
    if config.seed is not None and kept:
        own = ", ".join(f"{k}={_shown(v)}" for k, v in kept.items())
        plan.notes.append(f"kept the estimator's own {own}; --seed {seed} seeds the split and "
                          "every random_state left None")
    return plan


def planned_params(model: Any, config: TrainConfig, seed: int) -> dict[str, Any]:
    """The parameters training sets on ``model`` before fitting it.

    Parameters
    ----------
    model : scikit-learn estimator
    config : TrainConfig
        ``class_weight`` is applied to every ``class_weight`` parameter (nested ones too).
    seed : int
        The run's seed (``--seed``, or the one drawn and recorded): applied to every
        ``random_state`` parameter that is ``None``, so that the fit can be repeated. An
        explicit integer or ``RandomState`` of the user's is never replaced; a seed an earlier
        training of the same object applied counts as ``None`` (so each run draws its own).

    Returns
    -------
    dict
        ``get_params(deep=True)`` keys to the values set; the run's ``model.*`` parameters
        record them (:func:`~aimodel_kernel.engine.store.records.model_params`).

    Raises
    ------
    InputError
        ``--class-weight`` for an estimator without a ``class_weight`` parameter.
    """
    available = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    params: dict[str, Any] = {}
    if config.class_weight:
        keys = [k for k in available if k == "class_weight" or k.endswith("__class_weight")]
        if not keys:
            raise InputError(
                f"{type(model).__name__} has no class_weight parameter; drop --class-weight "
                "or resample the data"
            )
        params.update(dict.fromkeys(keys, config.class_weight))
    params.update({k: seed for k, v in _random_states(model).items() if v is None})
    return params


_SEEDED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Per estimator object trained here: the seeds training put into its ``random_state``
parameters that were ``None``. The object keeps them (it holds the parameters it was trained
with, and its saved version repeats the fit), yet the user left them ``None``: a later training
of the same object seeds them again instead of keeping them as if they were the user's."""


def _random_states(model: Any) -> dict[str, Any]:
    """Every ``random_state`` parameter of ``model`` (nested ones as ``step__random_state``);
    ``None`` where the user left it ``None`` and an earlier training seeded it."""
    available = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    ours = _seeds_applied(model)
    return {k: None if k in ours and _same_value(v, ours[k]) else v
            for k, v in available.items() if k.split("__")[-1] == "random_state"}


def _seeds_applied(model: Any) -> dict[str, Any]:
    try:
        return _SEEDED.get(model) or {}
    except TypeError:  # not weak-referenceable or not hashable: nothing was remembered
        return {}


def _remember_seeds(model: Any, plan: SklearnPlan) -> None:
    """After a successful fit: which ``random_state`` values were the run's seed."""
    try:
        if plan.seeded:
            _SEEDED[model] = {k: plan.params[k] for k in plan.seeded}
        else:
            _SEEDED.pop(model, None)
    except TypeError:
        pass


def _same_value(value: Any, seed: Any) -> bool:
    return isinstance(value, int | np.integer) and int(value) == int(seed)


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, int | np.integer) else type(value).__name__


def run(model: Any, plan: SklearnPlan, config: TrainConfig, *, on_event: EventCallback,
        stop: StopFlag, run_id: str) -> SklearnOutcome:
    """Fit in place; on any exception (or Ctrl-C) restore the estimator exactly as it was."""
    before = snapshot(model)
    t0 = time.perf_counter()
    try:
        if plan.params:
            model.set_params(**plan.params)
        model.fit(*plan.train)
        _remember_seeds(model, plan)
    except KeyboardInterrupt:
        restore(model, before)
        return SklearnOutcome(status="interrupted", epochs_completed=0)
    except ValueError as exc:
        restore(model, before)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{type(model).__name__}.fit refused the data: {first}") from exc
    except BaseException:
        restore(model, before)
        raise
    seconds = time.perf_counter() - t0
    metric = "accuracy" if _is_classifier(model) else "r2"
    metrics = {"fit_seconds": seconds, f"train_{metric}": float(model.score(*plan.train))}
    if plan.val is not None:
        metrics[f"val_{metric}"] = float(model.score(*plan.val))
    return SklearnOutcome(metrics=metrics, history=[], notes=list(plan.notes))


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return is_classifier(model) or (hasattr(model, "classes_") and np.ndim(model.classes_) == 1)


def snapshot(model: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Copies of the attributes of ``model`` and of every estimator nested in its parameters
    (a pipeline's steps, a column transformer's transformers), to restore them in place.

    A nested estimator stays the same object in the copies, so restoring puts the user's own
    step objects back (unchanged), not copies of them.
    """
    owners = [model, *_nested_estimators(model)]
    memo: dict[int, Any] = {id(owner): owner for owner in owners}
    return [(owner, copy.deepcopy(owner.__dict__, memo)) for owner in owners]


def restore(model: Any, state: list[tuple[Any, dict[str, Any]]]) -> None:
    """Put back the attributes :func:`snapshot` copied, object by object."""
    for owner, attributes in state:
        owner.__dict__.clear()
        owner.__dict__.update(attributes)


def _nested_estimators(model: Any) -> list[Any]:
    """Estimators among ``model``'s deep parameters (each once), ``model`` excluded."""
    if not hasattr(model, "get_params"):
        return []
    found: dict[int, Any] = {}
    for value in model.get_params(deep=True).values():
        if (hasattr(value, "get_params") and not isinstance(value, type)
                and value is not model and hasattr(value, "__dict__")):
            found.setdefault(id(value), value)
    return list(found.values())
