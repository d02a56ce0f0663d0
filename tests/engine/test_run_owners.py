"""Runs record the process that owns them; a run whose kernel died while training is marked KILLED
on the next use, and ``--resume`` continues it.

The end-to-end test uses real processes: one trains (a slow loop, a checkpoint every epoch) and
is SIGKILLed mid-run; another resumes the run, with ``--resume`` and no run id, and ends with the
weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import PYTHON, all_runs, subprocess_env

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.store import owners
from aimodel_kernel.engine.store.owners import Owner, mark_dead_runs, owner_tags
from aimodel_kernel.engine.training import checkpoints

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc to tell a live owner from a dead one")


def _run_with(store, tags: dict[str, str]) -> str:
    """A real RUNNING run of the store with the given owner tags."""
    return store.start_run(run_name="probe", params={}, tags=tags)


def _exited_pid() -> int:
    """The pid of a process that has just exited (and been reaped)."""
    child = subprocess.Popen([PYTHON, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_is_recorded_and_recognised():
    me = Owner.current()
    assert me.pid == os.getpid() and me.started and me.boot and me.pidns
    assert Owner.from_tags(owner_tags()) == me
    assert me.state() == owners.ALIVE
    assert Owner.from_tags({}) is None and Owner.from_tags({owners.HOST: "h"}) is None


def test_dead_reused_and_foreign_owners(store):
    me = Owner.current()
    dead = Owner(**{**me.__dict__, "pid": _exited_pid()})
    reused = Owner(**{**me.__dict__, "started": "1"})  # our pid, started at another time
    other_host = Owner(**{**me.__dict__, "host": me.host + "-elsewhere", "pid": dead.pid})
    other_ns = Owner(**{**me.__dict__, "pidns": "pid:[1]", "pid": dead.pid})
    rebooted = Owner(**{**me.__dict__, "boot": "another-boot", "pid": dead.pid})
    assert dead.state() == owners.DEAD and reused.state() == owners.DEAD
    assert other_host.state() == owners.UNKNOWN and other_ns.state() == owners.UNKNOWN
    assert rebooted.state() == (owners.DEAD if me.machine else owners.UNKNOWN)

    ids = {name: _run_with(store, o.tags()) for name, o in [
        ("dead", dead), ("reused", reused), ("other_host", other_host), ("other_ns", other_ns),
        ("mine", me)]}
    ids["legacy"] = _run_with(store, {})  # recorded before owners were: left alone
    marked = mark_dead_runs(store)
    assert sorted(marked) == sorted([ids["dead"], ids["reused"]])
    status = {name: store.run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"dead": "KILLED", "reused": "KILLED", "other_host": "RUNNING",
                      "other_ns": "RUNNING", "mine": "RUNNING", "legacy": "RUNNING"}
    why = store.run(ids["dead"]).data.tags[owners.KILLED_BECAUSE]
    assert f"pid {dead.pid} on {me.host}" in why and f"by pid {me.pid}" in why
    assert mark_dead_runs(store) == []  # once
    for run_id in ids.values():
        store.end_run(run_id, "FINISHED")


def test_resume_refuses_a_run_that_is_still_training(store, digits):
    from conftest import mlp

    from aimodel_kernel.engine.core.events import EpochEnd, StopFlag
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    X, y = digits
    X, y = X[:256], y[:256]
    stop = StopFlag()

    def stop_after_first_epoch(event) -> None:
        if isinstance(event, EpochEnd):
            stop.set("test")

    config = dict(epochs=3, seed=1, export=False)
    stopped = train(mlp(), X, y, TrainConfig(**config), on_event=stop_after_first_epoch,
                    stop=stop)
    run_id = stopped.run_id
    assert store.run(run_id).data.tags[owners.PID] == str(os.getpid())
    # as if another kernel of this machine had resumed it and were training it now
    sleeper = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    try:
        alive = Owner(**{**Owner.current().__dict__, "pid": sleeper.pid,
                         "started": owners._start_time(sleeper.pid)})
        store.set_tags(run_id, alive.tags())
        store.reopen_run(run_id)
        with pytest.raises(InputError, match=f"still training in another process "
                                             rf"\(pid {sleeper.pid} on "):
            train(mlp(), X, y, TrainConfig(**config, resume=run_id))
        with pytest.raises(InputError, match="no interrupted"):  # RUNNING is not interrupted
            train(mlp(), X, y, TrainConfig(**config, resume="last"))
        assert store.run(run_id).info.status == "RUNNING"
    finally:
        sleeper.kill()
        sleeper.wait()
    resumed = train(mlp(), X, y, TrainConfig(**config, resume="last"))  # its owner is gone
    assert resumed.run_id == run_id and resumed.status == "finished"
    assert store.run(run_id).data.tags[owners.PID] == str(os.getpid())  # ours since the resume


SCRIPT = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train


    class SlowNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            time.sleep(0.02)
            return self.body(x)


    X, y = load_digits(return_X_y=True)
    X, y = (X[:256] / 16.0).astype(np.float32), y[:256]
    CONFIG = dict(epochs=30, batch_size=64, lr=1e-2, seed=3, deterministic=True, export=False,
                  checkpoint_every=0)
    if sys.argv[1] == "train":
        train(SlowNet(), X, y, TrainConfig(**CONFIG, name="slow"))  # SIGKILLed before the end
    else:
        net = SlowNet()
        result = train(net, X, y, TrainConfig(**CONFIG, name="slow", resume="last"))
        reference = SlowNet()
        train(reference, X, y, TrainConfig(**CONFIG, checkpoint=False))
        same = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                     reference.state_dict().values()))
        print(json.dumps({"run_id": result.run_id, "status": result.status,
                          "version": result.version, "epochs": result.epochs_completed,
                          "history": [h["epoch"] for h in result.history], "same": same}))
''')


def test_a_killed_kernels_run_is_marked_killed_and_resumed_by_another_process(store, tmp_path):
    script = tmp_path / "slow_training.py"
    script.write_text(SCRIPT)
    env = subprocess_env()
    trainer = subprocess.Popen([PYTHON, str(script), "train"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        run, deadline = None, time.monotonic() + 240
        while time.monotonic() < deadline and trainer.poll() is None:
            runs = [r for r in all_runs(store) if r.info.status == "RUNNING"]
            directory = store.home / "checkpoints" / runs[0].info.run_id if runs else None
            if (directory is not None and checkpoints.has_checkpoint(directory)
                    and checkpoints.read(directory).epoch >= 2):
                run = runs[0]
                break
            time.sleep(0.05)
        assert run is not None, trainer.communicate(timeout=5)
        assert run.data.tags[owners.PID] == str(trainer.pid)
        assert mark_dead_runs(store) == []  # its owner is alive: not ours to end
        os.kill(trainer.pid, signal.SIGKILL)
    finally:
        trainer.kill()
        trainer.communicate()
    assert trainer.returncode == -signal.SIGKILL
    assert store.run(run.info.run_id).info.status == "RUNNING"  # what the dead kernel left

    resumer = subprocess.run([PYTHON, str(script), "resume"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumer.returncode == 0, resumer.stderr[-3000:]
    out = json.loads(resumer.stdout.strip().splitlines()[-1])
    assert out["run_id"] == run.info.run_id and out["status"] == "finished"
    assert out["epochs"] == 30 and out["history"] == list(range(1, 31)) and out["version"] == 1
    assert out["same"]  # resumed from its last checkpoint: the uninterrupted run's weights
    finished = store.run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert f"pid {trainer.pid} on" in finished.data.tags[owners.KILLED_BECAUSE]
    assert finished.data.tags[owners.PID] != str(trainer.pid)  # the resuming process owned it
    assert [step for step, _ in store.metric_history(run.info.run_id, "loss")] == list(
        range(1, 31))
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]
