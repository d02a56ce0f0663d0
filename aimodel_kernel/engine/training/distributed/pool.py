"""A warm pool of distributed workers, started once by the elastic launcher and kept for reuse.

The first ``%train --devices N`` pays for starting N processes (spawn, importing torch, joining
the process group); later calls with the same N and backend send their job to the same workers.
A failed job tears the pool down (the launcher stops every worker) and the next call builds a
new one. :func:`shutdown_pool` ends it on request, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import queue as queue_mod
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from ...core.events import EventCallback, StopFlag, stop_on_sigint


class WorkerFailed(RuntimeError):
    """A worker process failed: its rank, and its traceback or the signal that ended it.

    Not an input error: the message carries the worker's own traceback, shown in the cell.
    """

    def __init__(self, message: str, rank: int, details: str = "") -> None:
        super().__init__(f"{message}\n\n{details}" if details else message)
        self.rank = rank
        self.details = details


class WorkerPool:
    """``devices`` worker processes in one process group, waiting for jobs.

    Parameters
    ----------
    devices : int
        Processes on this machine.
    backend : {"gloo", "nccl"}
    """

    def __init__(self, devices: int, backend: str) -> None:
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        from .worker import pool_main

        self.devices, self.backend = devices, backend
        ctx = multiprocessing.get_context("spawn")
        self.job_queues = [ctx.Queue() for _ in range(devices)]
        self.events, self.results, self.stop_request = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.logs = Path(tempfile.mkdtemp(prefix="aimodel-workers-"))
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=devices, run_id=uuid.uuid4().hex,
            rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
            monitor_interval=0.1, start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=str(self.logs), redirects=Std.ALL),
        )
        self.error: BaseException | None = None
        self.jobs = 0

        def serve() -> None:
            try:
                elastic_launch(config, pool_main)(
                    self.job_queues, self.events, self.results, self.stop_request, backend)
            except KeyboardInterrupt:  # interrupt_launcher: keep no traceback (it holds the store)
                pass
            except BaseException as exc:
                self.error = exc

        with quiet_launcher():
            self.thread = threading.Thread(target=serve, name="aimodel-workers", daemon=True)
            self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def run(self, payload: bytes, on_event: EventCallback, stop: StopFlag,
            checkpoint_dir: str | None = None) -> dict[str, Any]:
        """Send one job to every rank, relay rank 0's events, return rank 0's result.

        Parameters
        ----------
        payload : bytes
            The pickled :class:`~aimodel_kernel.engine.training.distributed.worker.WorkerJob`.
        on_event : callable
            Receives rank 0's progress events, on this thread.
        stop : StopFlag
            Set (or the first Ctrl-C) to stop every rank after the same step.
        checkpoint_dir : str, optional
            Where rank 0 writes the run's checkpoints.

        Raises
        ------
        WorkerFailed
            A rank raised or was killed; the pool is gone by then.
        KeyboardInterrupt
            A second Ctrl-C: the workers are stopped at once and the pool is ended.
        """
        self.stop_request.clear()
        for q in self.job_queues:
            q.put((payload, checkpoint_dir))
        self.jobs += 1
        try:
            with stop_on_sigint(stop), quiet_launcher():
                while True:
                    if stop.is_set():
                        self.stop_request.set()
                    self._relay(on_event, timeout=0.05)
                    with contextlib.suppress(queue_mod.Empty):
                        result = self.results.get_nowait()
                        break
                    if not self.alive():
                        self._relay(on_event, timeout=0.0)
                        raise self._failure()
        except BaseException:
            if self.alive():  # left mid-job: these workers cannot take another job
                interrupt_launcher(self.thread)
            self.shutdown()
            raise
        while self._relay(on_event, timeout=0.05):  # events still in the pipe
            pass
        return result

    def _relay(self, on_event: EventCallback, timeout: float) -> bool:
        try:
            event = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue_mod.Empty:
            return False
        on_event(event)
        return True

    def _failure(self) -> BaseException:
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

        self.thread.join()
        error, self.error = self.error, None
        if isinstance(error, ChildFailedError):
            failure: BaseException = worker_failed(error, self.logs)
        else:
            failure = error or WorkerFailed("the worker pool stopped unexpectedly", -1)
        self.shutdown()  # the workers are gone: free the queues and the logs now
        return failure

    def shutdown(self, timeout: float = 30.0) -> None:
        """Ask every worker to leave, wait for the launcher to finish, and free what the pool
        holds in this process: the queues' pipes and feeder threads, the semaphores of the
        queues and of the stop event (named semaphores in ``/dev/shm`` with spawn, otherwise
        unlinked only when garbage collection finalizes them), and the folder of the
        workers' logs and error files. Safe to call more than once."""
        if self.alive():
            for q in self.job_queues:
                q.put(None)
            self.thread.join(timeout)
        if self.alive():  # a worker that does not leave: stop the launch (it stops them all)
            interrupt_launcher(self.thread)
        release([*self.job_queues, self.events, self.results, self.stop_request])
        self.job_queues, self.events, self.results, self.stop_request = [], None, None, None
        shutil.rmtree(self.logs, ignore_errors=True)


_pool: WorkerPool | None = None


def get_pool(devices: int, backend: str) -> WorkerPool:
    """The warm pool for ``devices`` and ``backend``, started (or restarted) when needed."""
    global _pool
    if _pool is not None and (not _pool.alive() or (_pool.devices, _pool.backend)
                              != (devices, backend)):
        shutdown_pool()
    if _pool is None:
        _pool = WorkerPool(devices, backend)
    return _pool


def release(objects: list[Any]) -> None:
    """Free multiprocessing queues and events now instead of at garbage collection.

    A queue is closed and its feeder thread joined, then both ends of its pipe are closed
    (``Queue.close`` leaves them open in a process that never put anything on it). The
    finalizers multiprocessing registered for these objects and their semaphores (the
    ``sem_unlink`` of each spawn-context semaphore, a queue's feeder shutdown) are run now,
    once, as garbage collection would run them.
    """
    from multiprocessing import connection, queues, synchronize, util

    found: list[Any] = []
    pipes: list[Any] = []

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, synchronize.SemLock):
            found.append(obj)
        elif isinstance(obj, connection.Connection):
            pipes.append(obj)
        elif depth and type(obj).__module__.startswith("multiprocessing"):
            found.append(obj)
            for value in vars(obj).values():
                walk(value, depth - 1)

    for obj in objects:
        if obj is None:
            continue
        if isinstance(obj, queues.Queue):
            with contextlib.suppress(Exception):
                obj.close()
                obj.join_thread()
        walk(obj, 3)
    for pipe in pipes:
        with contextlib.suppress(OSError):
            pipe.close()
    ids = {id(obj) for obj in found}
    registry = getattr(util, "_finalizer_registry", {})
    for finalizer in list(registry.values()):
        ref = getattr(finalizer, "_weakref", None)
        target = ref() if ref is not None else None
        if target is not None and id(target) in ids:
            with contextlib.suppress(Exception):
                finalizer()  # runs once, and leaves the registry


def pool_status() -> dict[str, Any] | None:
    """``{"devices", "backend", "jobs", "alive"}`` of the warm pool, or ``None``."""
    if _pool is None:
        return None
    return {"devices": _pool.devices, "backend": _pool.backend, "jobs": _pool.jobs,
            "alive": _pool.alive()}


def shutdown_pool() -> bool:
    """End the warm pool's workers; ``False`` when there was none."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return False
    pool.shutdown()
    return True


atexit.register(shutdown_pool)


def interrupt_launcher(thread: threading.Thread, timeout: float = 60.0) -> bool:
    """End an elastic launch running on ``thread`` now, as Ctrl-C ends one in a main thread.

    ``KeyboardInterrupt`` is raised inside the thread (``PyThreadState_SetAsyncExc``; it lands
    at the thread's next Python instruction, within the agent's one-second polling). The agent's
    ``run`` then stops its workers (SIGTERM, SIGKILL after its shutdown timeout) and the launch
    closes its rendezvous; the thread's target must swallow the ``KeyboardInterrupt`` without
    keeping its traceback, so the rendezvous store and its port are freed. Returns whether the
    thread ended within ``timeout`` seconds.
    """
    import ctypes

    if thread.is_alive() and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(KeyboardInterrupt))
    thread.join(timeout)
    return not thread.is_alive()


@contextlib.contextmanager
def quiet_launcher():
    """The launcher logs each failure at length and warns that, on a helper thread, it cannot
    install signal handlers; we report failures ourselves and the kernel's main thread handles
    Ctrl-C, so its log is kept to critical messages meanwhile."""
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


def worker_failed(error: Any, logs: Path) -> WorkerFailed:
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
