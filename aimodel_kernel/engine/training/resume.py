"""``--resume``: find the interrupted run and check its checkpoint fits the model and options."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import InputError
from ..core.options import TrainConfig
from ..store.tracking import TAG, Store
from . import checkpoints
from .torch_plan import TorchPlan


def find_resume_run(model: Any, config: TrainConfig, fp: dict, store: Store) -> Any:
    """The interrupted run ``config.resume`` names (``"last"``: the newest on this data).

    Raises
    ------
    InputError
        No such run, a run on other data or of another model class, or a finished run.
    """
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if config.resume == "last":
        runs = store.search_runs(
            f"tags.`{TAG}data.sha256` = '{fp['sha256']}' and tags.`{TAG}model_class` = '{cls}' "
            "and attributes.status = 'KILLED'", max_results=1)
        if not runs:
            raise InputError(
                f"no interrupted {type(model).__name__} run on this data to resume; "
                "give the run id: --resume RUN_ID"
            )
        run = runs[0]
    else:
        run = store.run(config.resume)
        if run.data.tags.get(f"{TAG}data.sha256") != fp["sha256"]:
            raise InputError(
                f"run {config.resume} was trained on different data (its fingerprint does not "
                "match); resume with the same X and y"
            )
        if run.data.tags.get(f"{TAG}model_class") != cls:
            raise InputError(f"run {config.resume} trained a "
                             f"{run.data.tags.get(f'{TAG}model_class')}, not a {cls}")
    if run.info.status == "FINISHED":
        raise InputError(f"run {run.info.run_id} finished; there is nothing to resume")
    return run


def prepare_resume(plan: TorchPlan, model: Any, config: TrainConfig, run: Any) -> None:
    state = checkpoints.read(plan.checkpoint_root / run.info.run_id)
    ours = model.state_dict()
    mismatch = [k for k in ours if k not in state.model or state.model[k].shape != ours[k].shape]
    if mismatch or set(state.model) - set(ours):
        raise InputError(f"the checkpoint of run {run.info.run_id} does not fit this model "
                         f"(first differing weight: {(mismatch or sorted(state.model))[0]})")
    recorded_epochs = json.loads(run.data.params.get("train.epochs", "0"))
    if config.epochs != recorded_epochs:
        raise InputError(f"run {run.info.run_id} was started with --epochs {recorded_epochs}; "
                         "resume it with the same value")
    plan.resume_run_id = run.info.run_id
    plan.resume_state = state
    plan.start_epoch = state.epoch + 1
