"""Fitting a scikit-learn estimator in place, restored untouched if the fit fails."""

from __future__ import annotations

import copy
import time
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
    if config.seed is not None:
        params.update({k: seed for k in available if k.split("__")[-1] == "random_state"})
    train = rows(data, train_idx)
    validation = rows(data, val_idx) if val_idx is not None else None
    if val is not None:
        validation = (val.X, val.y)
    shape = list(getattr(data.X, "shape", [data.n_samples]))
    return SklearnPlan(train, validation, params, data.feature_names,
                       {"shape": [None, *shape[1:]], "columns": data.feature_names})


def run(model: Any, plan: SklearnPlan, config: TrainConfig, *, on_event: EventCallback,
        stop: StopFlag, run_id: str) -> SklearnOutcome:
    """Fit in place; on any exception (or Ctrl-C) restore the estimator exactly as it was."""
    before = snapshot(model)
    t0 = time.perf_counter()
    try:
        if plan.params:
            model.set_params(**plan.params)
        model.fit(*plan.train)
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
    return SklearnOutcome(metrics=metrics, history=[])


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return is_classifier(model) or (hasattr(model, "classes_") and np.ndim(model.classes_) == 1)


def snapshot(model: Any) -> dict[str, Any]:
    """A deep copy of an estimator's attributes, to restore it if fitting fails."""
    return copy.deepcopy(model.__dict__)


def restore(model: Any, state: dict[str, Any]) -> None:
    """Put back the attributes :func:`snapshot` copied."""
    model.__dict__.clear()
    model.__dict__.update(state)
