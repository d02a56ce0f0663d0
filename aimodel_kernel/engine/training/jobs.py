"""Where a training runs, decided in one place: a scikit-learn fit, the PyTorch loop in the
kernel, a warm pool of worker processes (``--devices N``), or several nodes (``--nodes N``).

:func:`job_for` returns a :class:`Job`; ``train()`` calls its three steps and never asks the
question again::

    job = job_for(framework, config)
    resume_run = job.find_resume_run(model, config, fingerprint, store)   # with --resume
    plan = job.prepare(model, data, val, task, config, seed, ...)         # every check
    outcome = job.run(model, plan, config, on_event=..., stop=..., run_id=...)
"""

from __future__ import annotations

import importlib
from typing import Any

from ..core.environment import FORMAT_PACKAGES
from ..core.options import TrainConfig


class Job:
    """One placement of a training: which modules hold its three steps.

    ``resume_module`` has ``find_resume_run``; ``steps_module`` has ``prepare`` and ``run``
    (both relative to this package, imported when a step runs so that a scikit-learn user
    never imports torch). Subclasses override a step where a placement adds to it.
    """

    resume_module = ""
    steps_module = ""
    packages: tuple[str, ...] = ()
    """Distributions recorded in the run's environment whether imported yet or not."""

    def _step(self, module: str, name: str) -> Any:
        return getattr(importlib.import_module(module, __package__), name)

    def find_resume_run(self, model: Any, config: TrainConfig, fp: dict, store: Any) -> Any:
        return self._step(self.resume_module, "find_resume_run")(model, config, fp, store)

    def prepare(self, model: Any, data: Any, val: Any, task: Any, config: TrainConfig,
                seed: int, train_idx: Any, val_idx: Any, store: Any, resume_run: Any) -> Any:
        return self._step(self.steps_module, "prepare")(
            model, data, val, task, config, seed, train_idx, val_idx, store, resume_run)

    def run(self, model: Any, plan: Any, config: TrainConfig, *, on_event: Any, stop: Any,
            run_id: str) -> Any:
        return self._step(self.steps_module, "run")(model, plan, config, on_event=on_event,
                                                     stop=stop, run_id=run_id)


class SklearnFit(Job):
    """Fit a scikit-learn estimator in place (:mod:`.fit`; it refuses ``--resume``)."""

    resume_module = steps_module = ".fit"
    packages = FORMAT_PACKAGES["sklearn"]


class InKernel(Job):
    """The PyTorch loop in the kernel's own process (:mod:`.torch_job`); also what an
    exported ``torchrun`` script is prepared with (it picks its backend where it runs)."""

    resume_module, steps_module = ".resume", ".torch_job"
    packages = FORMAT_PACKAGES["torch"]


class WorkerPool(InKernel):
    """``--devices N`` on one machine: the warm pool of workers (:mod:`.distributed.launch`)."""

    def prepare(self, model, data, val, task, config, seed, train_idx, val_idx, store,
                resume_run):
        from .distributed.launch import prepare_job

        plan = super().prepare(model, data, val, task, config, seed, train_idx, val_idx,
                               store, resume_run)
        plan.distributed_job = prepare_job(model, plan, config)
        return plan

    def run(self, model, plan, config, *, on_event, stop, run_id):
        from .distributed.launch import launch

        return launch(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)


class SeveralNodes(InKernel):
    """``--nodes N``: a one-shot launch that meets the other nodes (:mod:`.distributed.nodes`).

    Only the node that recorded an interrupted run has it (and its checkpoint): on the others
    :meth:`find_resume_run` returns ``None`` and their workers receive the checkpoint.
    """

    def find_resume_run(self, model, config, fp, store):
        from .distributed.nodes import find_resume_run_on_node

        return find_resume_run_on_node(model, config, fp, store)

    def prepare(self, model, data, val, task, config, seed, train_idx, val_idx, store,
                resume_run):
        from .distributed.launch import prepare_job
        from .distributed.nodes import check_rendezvous

        plan = super().prepare(model, data, val, task, config, seed, train_idx, val_idx,
                               store, resume_run)
        check_rendezvous(config)
        plan.distributed_job = prepare_job(model, plan, config, start_pool=False)
        return plan

    def run(self, model, plan, config, *, on_event, stop, run_id):
        from .distributed.nodes import launch

        return launch(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)


def job_for(framework: str, config: TrainConfig) -> Job:
    """The placement of a training of a ``framework`` model under ``config``.

    Parameters
    ----------
    framework : {"sklearn", "torch"}
    config : TrainConfig
        ``devices``, ``nodes`` and ``export_script`` decide; an export is prepared as an
        in-kernel job (the script picks its backend on the machine that runs it).

    Returns
    -------
    Job
    """
    if framework != "torch":
        return SklearnFit()
    if config.export_script or not config.distributed:
        return InKernel()
    return SeveralNodes() if config.nodes > 1 else WorkerPool()
