"""``%train ... --export-script PATH``: a ``torchrun`` script instead of training in the kernel.

The kernel checks everything as for ``--devices N`` (the same ``prepare``), then writes two
files: ``PATH`` (a short Python script) and ``<stem>.job.pkl`` beside it (the cloudpickled
:class:`~.worker.WorkerJob` plus what the run records). The script's SHA-256 of the job file
is checked before anything is unpickled. Each process the launcher starts joins the process
group (``env://``), trains with :func:`~.worker.run_job` like ``--devices N`` does, and rank 0
records the run and the version through :func:`~..record.complete_run`.
Nothing is recorded in the kernel: the run exists once the script runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import html
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import InputError
from ...core.events import EpochEnd, Event, RunStarted
from ...core.options import TrainConfig
from ...store.tracking import TAG, Store

JOB_SUFFIX = ".job.pkl"


@dataclass
class ExportReport:
    """What ``--export-script`` wrote and how to run it.

    Attributes
    ----------
    script, job_file : str
        Absolute paths of the script and of its job file.
    sha256 : str
        SHA-256 of the job file, also written into the script.
    nproc : int
        Processes per node in :attr:`command` (``--devices``).
    command : str
        The ``torchrun`` line that runs the script.
    tracking_uri : str
        Where the script records the run (``MLFLOW_TRACKING_URI`` overrides it there).
    job_bytes : int
        Size of the job file.
    """

    script: str
    job_file: str
    sha256: str
    nproc: int
    command: str
    tracking_uri: str
    job_bytes: int

    def summary(self) -> str:
        return (f"Wrote {self.script} and {Path(self.job_file).name} "
                f"({self.job_bytes / 1e6:.1f} MB, sha256 {self.sha256[:12]}); nothing was "
                f"trained. Run: {self.command}  (records in {self.tracking_uri})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(str(v))}</code>"
                       "</td></tr>" for k, v in self.to_dict().items())
        return {
            "text/plain": self.summary(),
            "text/html": f"<p>{html.escape(self.summary())}</p><table>{rows}</table>",
            "application/json": self.to_dict(),
        }


@dataclass
class ExportedPlan:
    """The part of a ``TorchPlan`` that recording reads, carried inside the job file."""

    feature_names: list[str] | None
    input_spec: dict[str, Any]
    example_input: Any
    start_epoch: int = 0
    initial: str | None = None  # rank 0's initial weights, saved when the script starts

    def extra_files(self, run_id: str) -> dict[str, Path]:
        from ..torch_plan import INITIAL_WEIGHTS

        initial = getattr(self, "initial", None)  # job files exported before it existed
        return {INITIAL_WEIGHTS: Path(initial)} if initial and Path(initial).exists() else {}

    def resume_hint(self, run_id: str, outcome: Any) -> str:
        return (f"stopped after epoch {outcome.epochs_completed}; an exported script keeps "
                "no checkpoints: run it again")


def write_export(model: Any, plan: Any, config: TrainConfig, *, store: Store,
                 params: dict[str, str], tags: dict[str, str], fingerprint: dict[str, Any],
                 source: dict[str, str] | None, task: Any, seed: int,
                 parent: str | None) -> ExportReport:
    """Write the script and its job file for ``config.export_script``; open no run.

    Parameters
    ----------
    model : torch.nn.Module
        The untrained model, pickled by value into the job file (it stays untouched).
    plan : TorchPlan
        From ``torch_job.prepare`` (data batches, loss, example input).
    config : TrainConfig
        ``config.export_script`` is the script's path; ``config.devices`` the default
        processes per node.
    store : Store
        Its tracking URI is written into the script.
    params, tags, fingerprint, source, task, seed, parent
        What ``train()`` would record when opening and finishing the run.

    Returns
    -------
    ExportReport

    Raises
    ------
    InputError
        A Dataset input, an unpicklable model, several nodes, or a path that cannot be written.
    """
    from .launch import job_payload

    if getattr(config, "nodes", 1) > 1:
        raise InputError("--export-script writes a script for torchrun, which places the "
                         "processes itself: leave out --nodes and use torchrun --nnodes")
    script, job_file = _paths(config.export_script)
    recorded = dataclasses.replace(config, export_script=None)
    worker_job = job_payload(model, plan, recorded, config.backend, 1.0)
    bundle = {
        "format": 1, "job": worker_job, "config": recorded,
        "params": {**params, "train.export_script": json.dumps(None)},
        "tags": {**tags, f"{TAG}export_script": str(script)},
        "run_name": config.name or type(model).__name__,
        "fingerprint": fingerprint, "source": source, "task": task, "seed": seed,
        "parent": parent,
        "plan": ExportedPlan(plan.feature_names, plan.input_spec, plan.example_input),
    }
    import cloudpickle

    data = cloudpickle.dumps(bundle)
    digest = hashlib.sha256(data).hexdigest()
    command = (f"torchrun --nproc-per-node {config.devices} "
               f"{shlex.quote(str(script))}")
    text = _SCRIPT.format(
        when=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command, job=job_file.name, uri=store.uri,
        line=_docstring_safe((source or {}).get("line") or "(engine call)"),
        job_repr=repr(job_file.name), sha=digest, uri_repr=repr(store.uri),
        home_repr=repr(str(store.home)))
    try:
        _write_atomic(job_file, data)
        _write_atomic(script, text.encode())
    except OSError as exc:
        raise InputError(f"--export-script {config.export_script}: cannot write "
                         f"({exc.strerror or exc})") from None
    return ExportReport(script=str(script), job_file=str(job_file), sha256=digest,
                        nproc=config.devices, command=command, tracking_uri=store.uri,
                        job_bytes=len(data))


def _paths(path: str) -> tuple[Path, Path]:
    script = Path(path).expanduser().resolve()
    if script.is_dir():
        raise InputError(f"--export-script {path} is a folder; give a file name like train.py")
    if not script.parent.is_dir():
        raise InputError(f"--export-script {path}: folder {script.parent} does not exist")
    if not os.access(script.parent, os.W_OK):
        raise InputError(f"--export-script {path}: folder {script.parent} is not writable")
    stem = script.name[:-3] if script.name.endswith(".py") else script.name
    return script, script.with_name(stem + JOB_SUFFIX)


def _docstring_safe(text: str) -> str:
    return " ".join(text.replace("\\", "/").replace('"' * 3, "'" * 3).split())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- what the exported script calls ------------------------------------------------------------
def pick_backend(config: TrainConfig) -> str:
    """``config.backend``, with ``auto`` resolved on the machine that runs the script."""
    import torch

    if config.backend != "auto":
        return config.backend
    return "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"


def worker_device(backend: str) -> Any:
    """This process's device (its local GPU under NCCL), as ``--devices`` workers choose it."""
    from .worker import worker_device_for

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return worker_device_for(backend, int(os.environ.get("LOCAL_RANK", 0)), local_world)


class ConsoleProgress:
    """Rank 0's event sink in a script: one line per epoch on stdout."""

    def __init__(self) -> None:
        self.epochs = 0

    def put(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.epochs = event.epochs
        elif isinstance(event, EpochEnd):
            shown = ", ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
            print(f"epoch {event.epoch}/{self.epochs}: {shown}", flush=True)


class ExportRecorder:
    """Rank 0's recording: opens the run like ``train()`` does and finishes it with
    :func:`~aimodel_kernel.engine.training.record.complete_run`."""

    def __init__(self, bundle: dict[str, Any], tracking_uri: str, home: str) -> None:
        from ....config import Settings

        self.bundle = bundle
        self.store = Store(Settings(home=Path(home), tracking_uri=tracking_uri))
        self.recording: Any = None
        self.started = 0.0

    @property
    def run_id(self) -> str | None:
        return self.recording.run_id if self.recording is not None else None

    def start(self, world: int, model: Any = None) -> str:
        """Open the RUNNING run (``train.devices`` is the world size actually launched), owned
        by this process; with ``model`` (rank 0's, before training) keep its weights as the
        run's initial weights, recorded with the version as ``%train --devices`` does."""
        from ...core.environment import FORMAT_PACKAGES
        from ...store.owners import owner_tags
        from ...store.recorder import Recording
        from ..checkpoints import checkpoint_root, write_tensors
        from ..torch_plan import INITIAL_WEIGHTS

        b = self.bundle
        params = {**b["params"], "train.devices": json.dumps(world)}
        self.recording = Recording.start(self.store, run_name=b["run_name"], params=params,
                                         tags={**b["tags"], **owner_tags()})
        self.started = time.perf_counter()
        try:
            self.recording.log_inputs(b["fingerprint"], b["source"],
                                      packages=FORMAT_PACKAGES["torch"])
            if model is not None:
                from ...store.serialize import untie

                path = checkpoint_root(self.store.home) / self.recording.run_id / INITIAL_WEIGHTS
                write_tensors(path, untie({k: v.detach().cpu().contiguous()
                                           for k, v in model.state_dict().items()}))
                b["plan"].initial = str(path)
        except BaseException:
            self.fail()
            raise
        return self.recording.run_id

    def fail(self) -> None:
        if self.recording is not None:
            self.recording.end("FAILED")

    def finish(self, model: Any, result: dict[str, Any], backend: str) -> Any:
        """Load rank 0's weights into ``model``, record metrics, model files and version."""
        from ..record import complete_run
        from .outcome import outcome_of

        b = self.bundle
        model.to("cpu").load_state_dict(result["state"])
        outcome = outcome_of(
            result, f"trained on {result['world']} processes ({backend}) by an exported script")
        return complete_run(self.recording, model, b["plan"], b["config"], outcome,
                            framework="torch", task=b["task"], seed=b["seed"],
                            fingerprint=b["fingerprint"], parent=b["parent"],
                            seconds=time.perf_counter() - self.started)


_SCRIPT = '''#!/usr/bin/env python
"""Distributed training exported by aimodel-kernel (``%train ... --export-script``), {when}.

Run it unchanged:

    {command}

or from any launcher that sets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), e.g. ``torchrun --nnodes M --nproc-per-node N --rdzv-endpoint
HOST:PORT`` on each node of a cluster job. ``python`` on its own runs it in one process.

REQUIRES aimodel-kernel installed on every node (with its torch, mlflow and cloudpickle), the
same versions as where this was exported: the job file holds the model, data, loss and options
pickled by cloudpickle, and training runs
aimodel_kernel.engine.training.distributed.worker.run_job, the code of ``%train --devices N``.
``{job}`` must sit beside this script; its SHA-256 is checked before it is loaded.
Rank 0 records the run and the model version in {uri}
(set MLFLOW_TRACKING_URI to record elsewhere).

Exported from: {line}
"""

import hashlib
import os
import socket
import sys
import threading
from pathlib import Path

JOB_FILE = Path(__file__).resolve().with_name({job_repr})
JOB_SHA256 = "{sha}"
TRACKING_URI = {uri_repr}
STORE_HOME = {home_repr}


def read_job() -> bytes:
    try:
        data = JOB_FILE.read_bytes()
    except OSError as exc:
        sys.exit(f"cannot read the job file {{JOB_FILE}}: {{exc.strerror}}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != JOB_SHA256:
        sys.exit(f"job file {{JOB_FILE}} has SHA-256 {{digest}}, not the exported "
                 f"{{JOB_SHA256}}: it was changed or replaced; refusing to load it "
                 "(export the script again)")
    return data


def single_process_defaults() -> None:
    """Without a launcher: a world of one on this machine."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def main() -> int:
    payload = read_job()
    single_process_defaults()
    import cloudpickle
    import torch.distributed as dist

    from aimodel_kernel.engine.training.distributed.worker import run_job
    from aimodel_kernel.engine.training.distributed.export import (
        ConsoleProgress, ExportRecorder, pick_backend, worker_device)

    bundle = cloudpickle.loads(payload)
    job = cloudpickle.loads(bundle["job"])
    backend = pick_backend(job.config)
    dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        recorder = None
        if rank == 0:
            recorder = ExportRecorder(bundle, os.environ.get("MLFLOW_TRACKING_URI")
                                      or TRACKING_URI, STORE_HOME)
            run_id = recorder.start(world, job.model)
            print(f"run {{run_id}}: {{world}} processes ({{backend}})", flush=True)
        try:
            result = run_job(job, ConsoleProgress(), threading.Event(), worker_device(backend))
        except BaseException:
            if recorder is not None:
                recorder.fail()
            raise
        if recorder is not None:
            done = recorder.finish(job.model, result, backend)
            where = f"registered {{done.ref}}" if done.ref else "not registered"
            print(f"{{done.status}}: run {{done.run_id}}, {{where}}", flush=True)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
