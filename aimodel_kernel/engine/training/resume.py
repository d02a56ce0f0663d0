"""``--resume``: find the interrupted run and check its checkpoint fits the model and options."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import InputError
from ..core.options import TrainConfig
from ..store.owners import ALIVE, DEAD, UNKNOWN, Owner
from ..store.tracking import TAG, Store
from . import checkpoints
from .record import DIVERGED
from .torch_plan import TorchPlan


def find_resume_run(model: Any, config: TrainConfig, fp: dict, store: Store) -> Any:
    """The interrupted run ``config.resume`` names (``"last"``: the newest on this data).

    ``"last"`` is the newest KILLED run on the same data and model class that has a checkpoint
    and no version: a run stopped with Ctrl-C, or one whose kernel died
    (:func:`~aimodel_kernel.engine.store.owners.mark_dead_runs` has marked it KILLED by then).
    A run id may also name a RUNNING run whose owner is dead, or that recorded no owner; a run
    still training in a live process is refused.

    Raises
    ------
    InputError
        No such run, a run on other data or of another model class, a finished or diverged
        run, or one still training elsewhere.
    """
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if config.resume == "last":
        runs = store.search_runs(
            f"tags.`{TAG}data.sha256` = '{fp['sha256']}' and tags.`{TAG}model_class` = '{cls}' "
            "and attributes.status = 'KILLED'", max_results=_LAST_CANDIDATES)
        root = checkpoints.checkpoint_root(store.home)
        unfinished = [r for r in runs if f"{TAG}version" not in r.data.tags]
        resumable = [r for r in unfinished
                     if checkpoints.has_checkpoint(root / r.info.run_id)]
        if not resumable:
            name = type(model).__name__
            if unfinished:
                raise InputError(f"the interrupted {name} run on this data has no checkpoint "
                                 "to resume from (it stopped before its first one was "
                                 "written); train again without --resume")
            raise InputError(f"no interrupted {name} run on this data to resume; give the run "
                             "id: --resume RUN_ID")
        run = resumable[0]
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
    run_id = run.info.run_id
    if run.info.status == "FINISHED":
        raise InputError(f"run {run_id} finished; there is nothing to resume")
    if DIVERGED in run.data.tags:
        raise InputError(f"run {run_id} diverged (its loss or weights stopped being finite); "
                         "train again with a lower --lr instead of resuming it")
    if run.info.status == "RUNNING":
        owner = Owner.from_tags(run.data.tags)
        state = owner.state() if owner is not None else DEAD
        if owner == Owner.current():
            raise InputError(f"run {run_id} is training in this kernel right now; wait for it "
                             "to end (or stop it) before resuming it")
        if state == ALIVE:
            raise InputError(f"run {run_id} is still training in another process "
                             f"({owner.describe()}); stop it there first")
        if state == UNKNOWN:
            raise InputError(f"run {run_id} is RUNNING in {owner.describe()}, which this "
                             "machine cannot check; resume it there, or stop it there first")
    return run


_SAME_ON_RESUME = ("epochs", "optimizer", "lr", "weight_decay", "momentum", "batch_size", "loss")
"""Options a resumed run must repeat (the optimizer's state would silently keep its own lr)."""

_LAST_CANDIDATES = 20
"""``--resume`` with no id looks at this many of the newest interrupted runs."""


def prepare_resume(plan: TorchPlan, model: Any, config: TrainConfig, run: Any) -> None:
    state = checkpoints.read(plan.checkpoint_root / run.info.run_id)
    ours = model.state_dict()
    mismatch = [k for k in ours if k not in state.model or state.model[k].shape != ours[k].shape]
    if mismatch or set(state.model) - set(ours):
        raise InputError(f"the checkpoint of run {run.info.run_id} does not fit this model "
                         f"(first differing weight: {(mismatch or sorted(state.model))[0]})")
    for key in _SAME_ON_RESUME:
        recorded = run.data.params.get(f"train.{key}")
        if recorded is None:
            continue
        value = json.loads(recorded)
        if getattr(config, key) != value:
            # the checkpoint continues that training: its optimizer state, its batches, and
            # the options recorded with the run (which cannot change)
            raise InputError(f"run {run.info.run_id} was started with --{key.replace('_', '-')} "
                             f"{value}; resume it with the same value")
    plan.resume_run_id = run.info.run_id
    plan.resume_state = state
    plan.start_epoch = state.epoch + 1
