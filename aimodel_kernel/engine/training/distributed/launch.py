"""Multi-process PyTorch training from the kernel, on ``torch.distributed.elastic``.

The kernel validates everything first (the same ``prepare`` as one-process training), pickles
the job by value with cloudpickle, and hands it to the warm pool of workers
(:mod:`~.pool`: started by the elastic launcher with spawn, so it works after CUDA was used
in the kernel; c10d rendezvous on loopback; gloo on CPU, NCCL on GPUs).
The kernel's main thread relays rank 0's progress events and turns Ctrl-C into a stop request
every rank agrees on.
"""

from __future__ import annotations

from typing import Any

from ...core import batches
from ...core.errors import InputError
from ...core.events import EventCallback, StopFlag
from ...core.options import TrainConfig
from ..torch_plan import TorchOutcome, TorchPlan
from .outcome import checkpoint_dir, outcome_of
from .pool import WorkerFailed, get_pool, shutdown_pool

__all__ = ["WorkerFailed", "choose_backend", "launch", "prepare_job", "shutdown_pool"]


def choose_backend(config: TrainConfig) -> str:
    """``gloo`` on CPU, ``nccl`` on GPUs; refuses what this machine cannot run (NCCL without
    GPUs, more NCCL processes than GPUs; more processes than CPU cores is refused by
    :meth:`TrainConfig.validate`)."""
    import torch

    backend = config.backend
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend == "auto":
        backend = "nccl" if gpus and config.device != "cpu" else "gloo"
    if backend == "nccl":
        if not gpus:
            raise InputError("--backend nccl needs CUDA GPUs and none is available; use gloo")
        if config.devices > gpus:
            raise InputError(f"--devices {config.devices} asks for more NCCL processes than the "
                             f"{gpus} GPU(s) of this machine (one per GPU); use --devices {gpus} "
                             "or fewer, or --backend gloo")
    return backend


def job_payload(model: Any, plan: TorchPlan, config: TrainConfig, backend: str,
                interval: float) -> bytes:
    """The job as cloudpickle bytes; say which part cannot be sent when pickling fails."""
    import cloudpickle

    from .worker import WorkerJob

    world = config.devices * config.nodes
    train, val = plan.train, plan.val
    job = WorkerJob(model=model, X=None, y=None, val_X=None, val_y=None, loss=plan.loss,
                    config=config, seed=plan.generator_seed, progress_interval=interval,
                    resume=plan.resume_state,
                    resume_from_peer=config.resume is not None and plan.resume_state is None)
    if hasattr(train, "X"):  # arrays / tensors, sharded per global batch (ShardedBatches)
        job.X, job.y = batches.detach_cpu(train.X), train.y.cpu()  # X: a tensor or nested
    else:  # a Dataset or DataLoader: a DistributedSampler per rank (dist_data.py)
        job.train_spec, note = _spec(train, config.batch_size, world, "the training data")
        job.notes.append(note)
    if val is not None and hasattr(val, "X"):
        job.val_X, job.val_y = batches.detach_cpu(val.X), val.y.cpu()
    elif val is not None:
        job.val_spec, _ = _spec(val, config.batch_size, 1, "the validation data")
    try:
        return cloudpickle.dumps(job)
    except Exception as exc:
        culprit = _unpicklable_attribute(model)
        where = f" (attribute {culprit!r} of the model)" if culprit else ""
        what = "the model" if culprit or job.train_spec is None else "the model or the data"
        raise InputError(f"{what} cannot be sent to worker processes{where}: "
                         f"{type(exc).__name__}: {exc}") from None


def _spec(batches: Any, batch_size: int, world: int, what: str) -> tuple[Any, str]:
    from .data import loader_spec

    return loader_spec(batches.source, is_loader=batches.is_loader, batch_size=batch_size,
                       world=world, what=what)


def _unpicklable_attribute(model: Any) -> str | None:
    import cloudpickle

    for name, value in vars(model).items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return name
    return None


def prepare_job(model: Any, plan: TorchPlan, config: TrainConfig, *,
                progress_interval: float = 0.2, start_pool: bool = True) -> tuple[str, bytes]:
    """The backend and the pickled job, checked before any run is opened.

    Once everything is checked, the warm pool of workers (one node) starts on its own thread
    (:func:`~.pool.get_pool` returns at once), so spawning the workers overlaps with opening
    and recording the run. Several nodes start no pool (``start_pool=False``): :mod:`.nodes`
    launches its workers itself.
    """
    backend = choose_backend(config)
    payload = job_payload(model, plan, config, backend, progress_interval)
    if start_pool:
        get_pool(config.devices, backend)
    return backend, payload


def launch(model: Any, plan: TorchPlan, config: TrainConfig, *, on_event: EventCallback,
           stop: StopFlag, run_id: str) -> TorchOutcome:
    """Train ``model`` on ``config.devices`` worker processes of this machine and load the
    result into it.

    The workers come from the warm pool (started on the first call). The module's weights
    before training are kept as the run's initial weights (``initial.safetensors``, recorded
    with the version so ``%reproduce`` can retrain it); after a divergence the module is left
    as it was.

    Raises
    ------
    WorkerFailed
        A rank raised or was killed; every worker has been stopped by then.
    """
    backend, payload = plan.distributed_job
    checkpoint = checkpoint_dir(plan, config, run_id)
    if plan.resume_state is None:  # what the workers start from, recorded as one process does
        plan.save_initial(model, run_id)
    result = get_pool(config.devices, backend).run(payload, on_event, stop, checkpoint)
    outcome = outcome_of(result, f"trained on {result['world']} processes ({backend})",
                         checkpoint)
    if outcome.status != "diverged":  # diverged: the module keeps the weights it started from
        model.load_state_dict(result["state"])
    return outcome
