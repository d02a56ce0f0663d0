"""Multi-process training on torch.distributed (gloo, 2 CPU processes), started from the engine."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import all_runs
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
