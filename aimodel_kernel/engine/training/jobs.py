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

from typing import Any

from ..core.environment import FORMAT_PACKAGES
from ..core.options import TrainConfig


class Job:
    """One placement of a training. Subclasses override what differs."""

    packages: tuple[str, ...] = ()
    """Distributions recorded in the run's environment whether imported yet or not."""

    def find_resume_run(self, model: Any, config: TrainConfig, fp: dict, store: Any) -> Any:
        raise NotImplementedError

    def prepare(self, model: Any, data: Any, val: Any, task: Any, config: TrainConfig,
                seed: int, train_idx: Any, val_idx: Any, store: Any, resume_run: Any) -> Any:
        raise NotImplementedError

    def run(self, model: Any, plan: Any, config: TrainConfig, *, on_event: Any, stop: Any,
            run_id: str) -> Any:
        raise NotImplementedError


class SklearnFit(Job):
    """Fit a scikit-learn estimator in place (:mod:`.fit`)."""

    packages = FORMAT_PACKAGES["sklearn"]

    def find_resume_run(self, model, config, fp, store):
        from .fit import find_resume_run

        return find_resume_run(model, config, fp, store)

    def prepare(self, model, data, val, task, config, seed, train_idx, val_idx, store,
                resume_run):
        from .fit import prepare

        return prepare(model, data, val, task, config, seed, train_idx, val_idx, store,
                       resume_run)

    def run(self, model, plan, config, *, on_event, stop, run_id):
        from .fit import run

        return run(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)


class InKernel(Job):
    """The PyTorch loop in the kernel's own process (:mod:`.torch_job`); also what an
    exported ``torchrun`` script is prepared with (it picks its backend where it runs)."""

    packages = FORMAT_PACKAGES["torch"]

    def find_resume_run(self, model, config, fp, store):
        from .resume import find_resume_run

        return find_resume_run(model, config, fp, store)

    def prepare(self, model, data, val, task, config, seed, train_idx, val_idx, store,
                resume_run):
        from .torch_job import prepare

        return prepare(model, data, val, task, config, seed, train_idx, val_idx, store,
                       resume_run)

    def run(self, model, plan, config, *, on_event, stop, run_id):
        from .torch_job import run

        return run(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)


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
