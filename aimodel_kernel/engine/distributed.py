"""Multi-process PyTorch training from the kernel, on ``torch.distributed.elastic``.

The kernel validates everything first (the same ``prepare`` as one-process training), pickles
the job by value with cloudpickle, and hands it to the warm pool of workers
(:mod:`~aimodel_kernel.engine.worker_pool`: started by the elastic launcher with spawn, so it
works after CUDA was used in the kernel; c10d rendezvous on loopback; gloo on CPU, NCCL on GPUs).
The kernel's main thread relays rank 0's progress events and turns Ctrl-C into a stop request
every rank agrees on.
"""

from __future__ import annotations

from typing import Any

from .errors import InputError
from .events import EventCallback, StopFlag
from .options import TrainConfig
from .torch_training import TorchOutcome, TorchPlan
from .worker_pool import WorkerFailed, get_pool, shutdown_pool

__all__ = ["WorkerFailed", "choose_backend", "launch", "prepare_job", "shutdown_pool"]


def choose_backend(config: TrainConfig) -> str:
    """``gloo`` on CPU, ``nccl`` on GPUs; refuses what this machine cannot run."""
    import torch

    backend = config.backend
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend == "auto":
        backend = "nccl" if gpus and config.device != "cpu" else "gloo"
    if backend == "nccl":
        if not gpus:
            raise InputError("--backend nccl needs CUDA GPUs and none is available; use gloo")
        if config.devices > gpus:
            raise InputError(f"--devices {config.devices} but this machine has {gpus} GPU(s)")
    return backend


def _payload(model: Any, plan: TorchPlan, config: TrainConfig, backend: str,
             interval: float) -> bytes:
    """The job as cloudpickle bytes; say which part cannot be sent when pickling fails."""
    import cloudpickle

    from .dist_worker import WorkerJob

    train = plan.train
    if not hasattr(train, "X"):
        raise InputError("--devices N trains on arrays, DataFrames or tensors; pass the data as "
                         "X and y rather than a Dataset/DataLoader for now")
    val = plan.val
    job = WorkerJob(model=model, X=train.X.cpu(), y=train.y.cpu(),
                    val_X=val.X.cpu() if val is not None else None,
                    val_y=val.y.cpu() if val is not None else None,
                    loss=plan.loss, config=config, seed=plan.generator_seed,
                    progress_interval=interval)
    try:
        return cloudpickle.dumps(job)
    except Exception as exc:
        culprit = _unpicklable_attribute(model)
        where = f" (attribute {culprit!r} of the model)" if culprit else ""
        raise InputError(f"the model cannot be sent to worker processes{where}: "
                         f"{type(exc).__name__}: {exc}") from None


def _unpicklable_attribute(model: Any) -> str | None:
    import cloudpickle

    for name, value in vars(model).items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return name
    return None


def prepare_job(model: Any, plan: TorchPlan, config: TrainConfig,
                progress_interval: float = 0.2) -> tuple[str, bytes]:
    """The backend and the pickled job, checked before any run is opened."""
    backend = choose_backend(config)
    if config.nodes > 1:  # several nodes: multinode.py
        from .multinode import check_rendezvous

        check_rendezvous(config)
    return backend, _payload(model, plan, config, backend, progress_interval)


def launch(model: Any, plan: TorchPlan, config: TrainConfig, *, on_event: EventCallback,
           stop: StopFlag, run_id: str) -> TorchOutcome:
    """Train ``model`` on ``config.devices`` worker processes and load the result into it.

    The workers come from the warm pool (started on the first call).

    Raises
    ------
    WorkerFailed
        A rank raised or was killed; every worker has been stopped by then.
    """
    if config.nodes > 1:  # several nodes: a one-shot launch, no warm pool (multinode.py)
        from .multinode import launch as launch_nodes

        return launch_nodes(model, plan, config, on_event=on_event, stop=stop, run_id=run_id)
    backend, payload = plan.distributed_job
    result = get_pool(config.devices, backend).run(payload, on_event, stop)
    model.load_state_dict(result["state"])
    return outcome_of(result, f"trained on {result['world']} processes ({backend})")


def outcome_of(result: dict[str, Any], note: str) -> TorchOutcome:
    """The :class:`TorchOutcome` of rank 0's result: its last epoch's metrics, throughput
    summed over ranks, and the world size."""
    loop = result["outcome"]
    last = loop.history[-1] if loop.history else {}
    metrics = {k: v for k, v in last.items() if k != "epoch"}
    if "samples_per_second" in metrics:
        metrics["samples_per_second"] *= result["world"]
    metrics["train_seconds"] = loop.loop_seconds
    metrics["world_size"] = float(result["world"])
    return TorchOutcome(
        status=loop.status, history=loop.history, metrics=metrics,
        epochs_completed=loop.epochs_completed, best_epoch=loop.best_epoch,
        stopped_early=loop.stopped_early, checkpoint=None, checkpoint_epoch=None, notes=[note],
    )
