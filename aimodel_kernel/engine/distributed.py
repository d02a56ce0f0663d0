"""Multi-process PyTorch training from the kernel, on ``torch.distributed.elastic``.

The kernel validates everything first (the same ``prepare`` as one-process training), pickles
the job by value with cloudpickle, and starts ``devices`` workers with the elastic launcher
(spawn, so it works after CUDA was used in the kernel; c10d rendezvous on loopback; gloo on CPU,
NCCL on GPUs). The launch runs on a helper thread while the kernel's main thread relays rank 0's
progress events and turns Ctrl-C into a stop request every rank agrees on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue as queue_mod
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from .errors import InputError
from .events import EventCallback, StopFlag, stop_on_sigint
from .options import TrainConfig
from .torch_training import TorchOutcome, TorchPlan


class WorkerFailed(RuntimeError):
    """A worker process failed: its rank, and its traceback or the signal that ended it.

    Not an input error: the message carries the worker's own traceback, shown in the cell.
    """

    def __init__(self, message: str, rank: int, details: str = "") -> None:
        super().__init__(f"{message}\n\n{details}" if details else message)
        self.rank = rank
        self.details = details


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
                    loss=plan.loss, config=config, seed=plan.generator_seed, backend=backend,
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
    return backend, _payload(model, plan, config, backend, progress_interval)


def launch(model: Any, plan: TorchPlan, config: TrainConfig, *, on_event: EventCallback,
           stop: StopFlag, run_id: str) -> TorchOutcome:
    """Train ``model`` on ``config.devices`` worker processes and load the result into it.

    Raises
    ------
    WorkerFailed
        A rank raised or was killed; every other worker has been stopped by then.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .dist_worker import worker_main

    backend, payload = plan.distributed_job
    ctx = multiprocessing.get_context("spawn")
    events, stop_request = ctx.Queue(), ctx.Event()
    logs = Path(tempfile.mkdtemp(prefix="aimodel-dist-"))
    launch_config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=config.devices, run_id=uuid.uuid4().hex,
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
        monitor_interval=0.1, start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=str(logs), redirects=Std.ALL),
    )
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["results"] = elastic_launch(launch_config, worker_main)(
                payload, events, stop_request)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="aimodel-elastic-launch", daemon=True)
    with stop_on_sigint(stop), _quiet_launcher():
        thread.start()
        while thread.is_alive() or not events.empty():
            if stop.is_set():
                stop_request.set()
            try:
                on_event(events.get(timeout=0.05))
            except queue_mod.Empty:
                continue
    thread.join()
    events.close()
    error = outcome.get("error")
    if isinstance(error, ChildFailedError):
        raise _worker_failed(error, logs) from None
    if error is not None:
        raise error
    result = outcome["results"][0]
    model.load_state_dict(result["state"])
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
        stopped_early=loop.stopped_early, checkpoint=None, checkpoint_epoch=None,
        notes=[f"trained on {result['world']} processes ({backend})"],
    )


@contextlib.contextmanager
def _quiet_launcher():
    """The launcher logs each failure at length and warns that, on a helper thread, it cannot
    install signal handlers; we report failures ourselves and the kernel's main thread handles
    Ctrl-C, so its log is kept to critical messages while it runs."""
    loggers = [logging.getLogger(name) for name in (
        "torch.distributed.elastic.multiprocessing.api",
        "torch.distributed.elastic.multiprocessing.errors",
        "torch.distributed.elastic.agent.server.api",
    )]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _worker_failed(error: Any, logs: Path) -> WorkerFailed:
    """The first failed rank, with its traceback (or the signal that killed it)."""
    rank, failure = min(error.failures.items())
    if failure.signal_name() != "<N/A>" and failure.exitcode < 0:
        what = f"was killed by {failure.signal_name()} (out of memory, or killed from outside?)"
        details = _stderr_tail(logs, failure.local_rank)
    else:
        data = failure.error_file_data if isinstance(failure.error_file_data, dict) else {}
        message = data.get("message", failure.message)
        if isinstance(message, dict):
            extra = message.get("extraInfo", {})
            message = extra.get("py_callstack") or message.get("message", "")
        details = str(message).strip() or _stderr_tail(logs, failure.local_rank)
        last = [ln for ln in details.splitlines() if ln.strip()]
        what = f"raised {last[-1].strip()}" if last else f"exited with code {failure.exitcode}"
    return WorkerFailed(f"rank {rank} {what}; all workers were stopped", rank, details)


def _stderr_tail(logs: Path, local_rank: int, lines: int = 30) -> str:
    files = sorted(logs.rglob(f"attempt_*/{local_rank}/stderr.log"))
    if not files:
        return ""
    text = files[-1].read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])

