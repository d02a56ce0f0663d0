"""Training across several machines (``--nodes N --node-rank R --rdzv HOST:PORT``).

Every node runs the same ``%train`` line in its own kernel, on its own copy of the data, with
the same ``--seed``. Each kernel validates and pickles its job as for ``--devices`` (the same
``prepare``), then starts a one-shot elastic launch of ``devices`` processes that meet the
other nodes' processes in the launcher's c10d rendezvous at ``HOST:PORT``: no warm pool, since
the group spans machines. ``--node-rank 0`` hosts the rendezvous store, so it must run on
``HOST``; the global ranks themselves are assigned by the rendezvous, so ``--node-rank`` only
decides who hosts the store. The rendezvous id is derived from the training rows, the model
class, its parameter shapes and the options (or given with ``--rdzv-id``), so kernels that
would train different things never join the same group.

Global rank 0 streams progress to its kernel and writes the checkpoints; the local rank 0 of
every node returns the trained weights, so every kernel ends with the trained model. Only the
kernel whose node hosts global rank 0 records the run and version (:attr:`TorchOutcome.records`
is false elsewhere). ``--resume RUN_ID`` on every node continues such a run: the node whose
kernel has it sends its checkpoint to the others and records again. Ctrl-C while this node
still waits in the rendezvous abandons the wait at once (:class:`RendezvousStopped`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import multiprocessing
import pickle
import queue as queue_mod
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from ...core import batches
from ...core.errors import InputError, NotFoundError
from ...core.events import EventCallback, StopFlag, stop_on_sigint
from ...core.options import TrainConfig, split_endpoint
from ...store.tracking import Store
from ..resume import find_resume_run
from ..torch_plan import TorchOutcome, TorchPlan
from .outcome import checkpoint_dir, outcome_of
from .pool import WorkerFailed, interrupt_launcher, quiet_launcher, release, worker_failed

JOIN_TIMEOUT = 600
"""Seconds a node waits in the rendezvous for the other nodes before giving up."""

STOP_GRACE = 5.0
"""Seconds a stop in the rendezvous waits for the launch to end before returning anyway."""

WORKER_NODE_NOTE = "worker node: the run is recorded by the node with global rank 0"

# config fields that may differ between nodes without changing what is trained
_PER_NODE = ("node_rank", "rdzv_id", "device", "name", "checkpoint", "checkpoint_every",
             "export")


def check_rendezvous(config: TrainConfig) -> None:
    """Refuse, before anything starts, a rendezvous this node cannot take part in.

    Node 0 hosts the store: ``HOST`` must be an address of this machine and ``PORT`` free.
    Other nodes only need ``HOST`` to resolve.

    Raises
    ------
    InputError
        With a one-line reason.
    """
    host, port = split_endpoint(config.rdzv or "")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InputError(f"--rdzv host {host!r} cannot be resolved: {exc.strerror}") from None
    if config.node_rank != 0:
        return
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"--rdzv port {port} is already in use on {host}; node 0 "
                                 "hosts the rendezvous there, so pick a free port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InputError(f"--node-rank 0 hosts the rendezvous, so it must run on "
                                 f"{host} (--rdzv); this machine has no such address") from None
            raise InputError(f"--rdzv {config.rdzv}: cannot listen there ({exc.strerror})"
                             ) from None


def find_resume_run_on_node(model: Any, config: TrainConfig, fp: dict, store: Store) -> Any:
    """``--resume`` with several nodes: this node's run when it recorded it, else ``None``.

    The node that recorded the run (it hosted global rank 0) holds its checkpoint; its
    workers send it to the others, and its kernel records the resumed run again.
    """
    single = dataclasses.replace(config, nodes=1, node_rank=0, rdzv=None, rdzv_id=None)
    try:
        return find_resume_run(model, single, fp, store)
    except NotFoundError:
        return None
    except InputError:
        if config.resume == "last":  # no interrupted run here: another node has it
            return None
        raise


def rendezvous_id(model: Any, plan: TorchPlan, config: TrainConfig) -> str:
    """``config.rdzv_id``, or one every node derives alike from what it is about to train."""
    if config.rdzv_id:
        return config.rdzv_id
    import torch

    digest = hashlib.sha256()
    options = {k: v for k, v in config.to_dict().items() if k not in _PER_NODE}
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    digest.update(repr(shapes).encode())
    train = plan.train
    if hasattr(train, "X"):  # in-memory inputs (a tensor, a tuple or dict of them) and targets
        for tensor in batches.tensors((train.X, train.y)):
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8)
                          .numpy().tobytes())
    else:  # a Dataset / DataLoader: its class, length and first item(s)
        dataset = train.source.dataset if train.is_loader else train.source
        digest.update(f"{type(dataset).__qualname__}:{len(dataset)}".encode())
        for tensor in batches.tensors(plan.example_input):
            digest.update(repr(tensor[:1].tolist()).encode())
    return f"aimodel-{digest.hexdigest()[:32]}"


def launch(model: Any, plan: TorchPlan, config: TrainConfig, *, on_event: EventCallback,
           stop: StopFlag, run_id: str) -> TorchOutcome:
    """Train with the other nodes and load the trained weights into ``model``.

    Raises
    ------
    WorkerFailed
        A rank on this node failed, or the rendezvous or another node did; this node's
        workers have been stopped by then.
    """
    backend, payload = plan.distributed_job
    checkpoint = checkpoint_dir(plan, config, run_id)
    if plan.resume_state is None:
        plan.save_initial(model, run_id)  # global rank 0's, on the node that records the run
    result = _run(payload, backend, config, rendezvous_id(model, plan, config), on_event, stop,
                  checkpoint)
    outcome = outcome_of(
        result, f"trained on {result['world']} processes over {config.nodes} nodes ({backend})",
        checkpoint)
    if outcome.status != "diverged":
        model.load_state_dict(result["state"])
    if not result["records"]:
        outcome.notes.append(WORKER_NODE_NOTE)
        _forget(plan.initial_weights(run_id))  # this node's run is discarded
    outcome.records = result["records"]
    return outcome


def _forget(path: Path) -> None:
    """Remove a file and its folder when that leaves the folder empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _run(payload: bytes, backend: str, config: TrainConfig, rdzv_id: str,
         on_event: EventCallback, stop: StopFlag, checkpoint: str | None) -> dict[str, Any]:
    """One elastic launch of this node's workers; relay events; return local rank 0's result.

    A stop (the first Ctrl-C) before this node's workers have joined the process group ends
    the wait in the rendezvous at once (:class:`RendezvousStopped`); after that it stops every
    rank collectively. Any exception out of the wait (a second Ctrl-C) ends the launch, its
    workers and its rendezvous store before it propagates.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .worker import job_main

    ctx = multiprocessing.get_context("spawn")
    events, results, stop_request, joined = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    logs = Path(tempfile.mkdtemp(prefix="aimodel-node-"))
    launch_config = LaunchConfig(
        min_nodes=config.nodes, max_nodes=config.nodes, nproc_per_node=config.devices,
        run_id=rdzv_id, rdzv_backend="c10d", rdzv_endpoint=config.rdzv,
        rdzv_configs={"is_host": config.node_rank == 0, "join_timeout": JOIN_TIMEOUT},
        max_restarts=0, monitor_interval=0.1, start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=str(logs), redirects=Std.ALL),
    )
    error: list[BaseException] = []

    def serve() -> None:
        try:
            elastic_launch(launch_config, job_main)(payload, events, results, stop_request,
                                                    backend, joined, checkpoint)
        except KeyboardInterrupt:  # interrupt_launcher: keep no traceback (it holds the store)
            pass
        except BaseException as exc:
            error.append(exc)

    def relay(timeout: float) -> bool:
        try:
            event = events.get(timeout=timeout) if timeout else events.get_nowait()
        except queue_mod.Empty:
            return False
        on_event(event)
        return True

    result = None
    thread = threading.Thread(target=serve, name="aimodel-node", daemon=True)
    try:
        with stop_on_sigint(stop), quiet_launcher():
            thread.start()
            while result is None:
                if stop.is_set():
                    if not joined.is_set():  # still waiting for the other nodes
                        raise RendezvousStopped(config)
                    stop_request.set()
                relay(0.05)
                with contextlib.suppress(queue_mod.Empty):
                    result = results.get_nowait()
                if result is None and not thread.is_alive():
                    while relay(0.0):
                        pass
                    raise _failure(error, logs)
            while relay(0.05):  # events still in the pipe
                pass
            thread.join()
    except RendezvousStopped:
        # node 0 frees its store within a second; a node still connecting to a host that is
        # not there is inside a C++ call: it started no worker, and the KeyboardInterrupt
        # pending in its thread ends that thread when the attempt returns (<= 60 s)
        interrupt_launcher(thread, timeout=STOP_GRACE)
        raise
    except BaseException:
        if thread.is_alive():
            interrupt_launcher(thread)
        raise
    finally:
        if not thread.is_alive():  # (a thread still connecting to a missing host keeps them)
            release([events, results, stop_request, joined])
            shutil.rmtree(logs, ignore_errors=True)  # a failure has read it by now
    return pickle.loads(result)


class RendezvousStopped(InputError):
    """Ctrl-C (or a stop) while this node waited in the rendezvous: nothing was trained.

    An :class:`InputError`, so ``train()`` discards the run it opened and the magic shows one
    line: the workers never started, and the rendezvous store and its port are gone.
    """

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(f"stopped while waiting at the rendezvous {config.rdzv} for the other "
                         f"nodes of --nodes {config.nodes}; nothing was trained or recorded "
                         "(start the other nodes with the same line, then run this one again)")


def _failure(error: list[BaseException], logs: Path) -> BaseException:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    exc = error[0] if error else None
    if isinstance(exc, ChildFailedError):
        return worker_failed(exc, logs)
    if exc is None:
        return WorkerFailed("the workers of this node stopped without a result", -1)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return WorkerFailed(f"the multi-node launch failed: {type(exc).__name__}: {first}", -1)
