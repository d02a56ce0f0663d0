"""Multi-process training on torch.distributed (gloo, 2 CPU processes), started from the engine."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import all_runs, clone_state, weights_equal
from safetensors.torch import load_file
from torch import nn

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.distributed.launch import WorkerFailed
from aimodel_kernel.engine.training.entry import train

pytestmark = pytest.mark.slow


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def full_loss(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=torch.float32))
        return float(nn.functional.cross_entropy(out, torch.as_tensor(y)))


def workers() -> set[int]:
    """Live spawned worker processes whose parent is this one (any left behind shows here).

    Python's own multiprocessing resource tracker, started once per interpreter, is not one.
    """
    me = str(os.getpid())
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.add(int(proc.name))
    return found


class RaisesOnRank1(nn.Module):
    """A notebook-style model whose forward fails in one worker only."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = mlp()

    def forward(self, x):
        if os.environ.get("RANK") == "1":
            raise ValueError("boom in rank 1")
        return self.inner(x)


class KilledOnRank1(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = mlp()

    def forward(self, x):
        if os.environ.get("RANK") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(x)


def test_two_processes_reach_the_loss_of_one_with_the_same_global_batch(store, digits):
    X, y = digits
    one, two = mlp(), mlp()
    config = {"epochs": 3, "batch_size": 64, "lr": 1e-2, "seed": 1}
    train(one, X, y, TrainConfig(**config))
    result = train(two, X, y, TrainConfig(**config, devices=2, name="ddp"))
    # same data, same global batches, gradients averaged over the two halves: same training,
    # up to float summation order and the uneven split of the last batch
    assert full_loss(two, X, y) == pytest.approx(full_loss(one, X, y), rel=0.05)
    assert full_loss(two, X, y) < 0.7 * full_loss(mlp(), X, y)  # it learned
    assert result.metrics["world_size"] == 2.0
    run = store.run(result.run_id)
    assert run.data.params["train.devices"] == "2" and run.info.status == "FINISHED"
    assert result.version == 1
    # the weights the workers started from are recorded with the version, as for one process
    assert "aimodel.sha256.initial.safetensors" in run.data.tags
    initial = load_file(str(store.download(result.run_id, "model/initial.safetensors")))
    assert weights_equal(initial, clone_state(mlp()))


def test_a_failing_rank_is_reported_with_its_traceback_and_nothing_is_left(store, digits):
    X, y = digits
    before = workers()
    with pytest.raises(WorkerFailed) as info:
        train(RaisesOnRank1(), X, y, TrainConfig(epochs=2, devices=2, name="bad"))
    assert info.value.rank == 1
    assert "boom in rank 1" in str(info.value) and "Traceback" in str(info.value)
    assert workers() <= before  # no worker outlives the call
    assert [r.info.status for r in all_runs(store)] == ["FAILED"]
    assert not store.model_names()


def test_a_killed_rank_is_reported_as_killed(store, digits):
    X, y = digits
    before = workers()
    with pytest.raises(WorkerFailed, match="rank 1 was killed by SIGKILL"):
        train(KilledOnRank1(), X, y, TrainConfig(epochs=2, devices=2))
    assert workers() <= before


def test_nccl_without_gpus_and_an_unpicklable_model_start_nothing(store, digits):
    X, y = digits
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="nccl needs CUDA"):
            train(mlp(), X, y, TrainConfig(devices=2, backend="nccl"))
    model = mlp()
    model.lock = __import__("threading").Lock()  # cannot be pickled
    with pytest.raises(InputError, match="attribute 'lock'"):
        train(model, X, y, TrainConfig(devices=2))
    assert not all_runs(store)


@pytest.fixture(autouse=True, scope="module")
def _no_pool_after_this_module():
    yield
    from aimodel_kernel.engine.training.distributed.pool import shutdown_pool

    shutdown_pool()


def test_a_second_call_reuses_the_warm_workers(store, digits):
    from aimodel_kernel.engine.training.distributed.pool import pool_status, shutdown_pool

    X, y = digits
    shutdown_pool()
    train(mlp(), X, y, TrainConfig(epochs=1, devices=2))
    first = workers()
    assert len(first) == 2 and pool_status()["jobs"] == 1
    train(mlp(1), X, y, TrainConfig(epochs=1, devices=2))
    assert workers() == first  # the same two processes trained the second job
    assert pool_status() == {"devices": 2, "backend": "gloo", "jobs": 2, "alive": True}
    assert shutdown_pool() and not workers()


def test_a_stop_request_ends_every_rank_with_the_last_epochs_weights(store, digits):
    from aimodel_kernel.engine.core.events import EpochEnd, StopFlag

    X, y = digits
    stop = StopFlag()
    seen: list[int] = []

    def on_event(event):
        if type(event) is EpochEnd:
            seen.append(event.epoch)
            stop.set("test")  # the notebook's stop button, as the kernel sees it

    model = mlp()
    result = train(model, X, y, TrainConfig(epochs=50, batch_size=32, devices=2, name="ddp"),
                   on_event=on_event, stop=stop)
    assert result.status == "interrupted"
    assert 1 <= result.epochs_completed < 50
    assert seen[-1] == result.epochs_completed  # the weights are those of a finished epoch
    assert store.run(result.run_id).info.status == "KILLED"
    assert not store.model_names()  # no version for an interrupted run
    assert full_loss(model, X, y) < full_loss(mlp(), X, y)  # the module holds trained weights


def test_a_diverging_run_fails_with_one_line_and_leaves_the_module(store, diabetes):
    from aimodel_kernel.engine.training.distributed.pool import pool_status
    from aimodel_kernel.engine.training.record import TrainingDiverged

    X, y = diabetes
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    before = clone_state(net)
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch \d+ \(loss is NaN\).*--lr "
                                               r"\(now 10"):
        train(net, X, y, TrainConfig(epochs=5, lr=10.0, optimizer="sgd", seed=0, devices=2,
                                     name="ddp"))
    assert weights_equal(clone_state(net), before)
    assert [r.info.status for r in all_runs(store)] == ["FAILED"]
    assert not store.model_names()
    assert pool_status()["alive"]  # every rank stopped at the same epoch: the pool goes on


def _fds() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(found)


def _semaphores(pool) -> list[Path]:
    """The /dev/shm files of the named semaphores inside the pool's queues and stop event."""
    from multiprocessing import synchronize

    names: list[str] = []

    def walk(obj, depth):
        if isinstance(obj, synchronize.SemLock):
            names.append(obj._semlock.name)
        elif depth and type(obj).__module__.startswith("multiprocessing"):
            for value in vars(obj).values():
                walk(value, depth - 1)

    for obj in (*pool.job_queues, pool.events, pool.results, pool.stop_request):
        walk(obj, 3)
    return [Path("/dev/shm") / f"sem.{name.lstrip('/')}" for name in names]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="Linux: named semaphores in /dev/shm")
def test_shutting_the_pool_down_frees_its_pipes_semaphores_and_temp_files(store, digits):
    from aimodel_kernel.engine.training.distributed.pool import get_pool, shutdown_pool

    X, y = digits
    X, y = X[:256], y[:256]
    shutdown_pool()
    train(mlp(), X, y, TrainConfig(epochs=1, devices=2))  # once per process: the resource
    shutdown_pool()                                      # tracker, the store's connection
    before = _fds()
    train(mlp(), X, y, TrainConfig(epochs=1, devices=2))
    pool = get_pool(2, "gloo")  # the warm pool that trained it
    semaphores, logs = _semaphores(pool), pool.logs
    assert len(semaphores) >= 10 and all(p.exists() for p in semaphores)
    assert logs.is_dir() and any(logs.rglob("stderr.log"))
    assert len(_fds()) > len(before)
    assert shutdown_pool() and not workers()
    assert _fds() == before  # no pipe left open until garbage collection
    assert [p for p in semaphores if p.exists()] == []
    assert not logs.exists()  # aimodel-workers-*: logs and error files


def test_a_two_process_version_reproduces_from_its_initial_weights(store, digits):
    from aimodel_kernel.engine.versions.reproduce import reproduce

    X, y = digits
    X, y = X[:600], y[:600]
    train(mlp(), X, y, TrainConfig(epochs=2, seed=3, devices=2, deterministic=True,
                                   export=False, name="ddp"))
    result = reproduce("ddp/1", X, y, model=mlp(seed=123))  # other weights: the record's win
    assert result.identical_weights and result.identical_metrics, result.verdict
    assert store.run(result.run_id).data.params["train.devices"] == "2"
