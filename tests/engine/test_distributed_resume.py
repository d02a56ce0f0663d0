"""Checkpoints and --resume for --devices 2 (gloo): Ctrl-C keeps the last epoch, resume finishes
the same MLflow run with the weights of an uninterrupted run, bit for bit."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import all_runs, clone_state, subprocess_env, weights_equal
from safetensors.torch import load_file
from test_multinode import free_port, node_store
from torch import nn

from aimodel_kernel.engine.core.events import EpochEnd
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training import checkpoints
from aimodel_kernel.engine.training.entry import train

pytestmark = pytest.mark.slow

CONFIG = dict(epochs=8, batch_size=64, lr=1e-2, seed=5, devices=2, deterministic=True,
              export=False, checkpoint_every=3600)  # no write while training: only on stop


class SlowDropoutNet(nn.Module):
    """Dropout draws from each rank's RNG; a short sleep per step lets a stop land mid-run."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(64, 10))

    def forward(self, x):
        time.sleep(0.002)
        return self.body(x)


@pytest.fixture(autouse=True, scope="module")
def _no_pool_after_this_module():
    yield
    from aimodel_kernel.engine.training.distributed.pool import shutdown_pool

    shutdown_pool()


def ctrl_c_after_epoch(epoch: int):
    """An event callback that presses Ctrl-C (a real SIGINT, handled as in the kernel's main
    thread) when rank 0 reports the end of ``epoch``."""
    seen: list[int] = []

    def on_event(event) -> None:
        if type(event) is EpochEnd:
            seen.append(event.epoch)
            if event.epoch == epoch:
                signal.raise_signal(signal.SIGINT)

    on_event.seen = seen
    return on_event


def test_ctrl_c_then_resume_equals_an_uninterrupted_run_bit_for_bit(store, digits):
    X, y = digits
    reference = SlowDropoutNet()
    train(reference, X, y, TrainConfig(**CONFIG, checkpoint=False))

    net = SlowDropoutNet()
    handler = signal.getsignal(signal.SIGINT)
    on_event = ctrl_c_after_epoch(1)
    stopped = train(net, X, y, TrainConfig(**CONFIG, name="ddp"), on_event=on_event)
    assert signal.getsignal(signal.SIGINT) is handler
    done = stopped.epochs_completed
    assert stopped.status == "interrupted" and 1 <= done < CONFIG["epochs"]
    assert on_event.seen[-1] == done  # every rank stopped inside the next epoch
    run = store.run(stopped.run_id)
    assert run.info.status == "KILLED" and stopped.version is None
    assert run.data.tags["aimodel.checkpoint"] == stopped.checkpoint
    assert "--resume" in stopped.resume_hint and f"epoch {done + 1}" in stopped.resume_hint

    # rank 0 wrote the one-process checkpoint format: the unwrapped module, at the last epoch
    state = checkpoints.read(Path(stopped.checkpoint))
    assert state.epoch == done - 1
    assert set(state.model) == set(net.state_dict())  # no DDP "module." prefix
    assert weights_equal(state.model, clone_state(net))  # what the user's module holds
    assert state.meta["world_size"] == 2 and state.meta["sampler_epoch"] == done
    assert [h["epoch"] for h in state.meta["history"]] == list(range(1, done + 1))
    assert state.optimizer["state"][0]["exp_avg"].shape == net.body[0].weight.shape

    resumed = train(net, X, y, TrainConfig(**CONFIG, name="ddp", resume=stopped.run_id))
    assert resumed.run_id == stopped.run_id and resumed.status == "finished"
    assert resumed.epochs_completed == CONFIG["epochs"] and resumed.version == 1
    assert [h["epoch"] for h in resumed.history] == list(range(1, CONFIG["epochs"] + 1))
    # same data order (shuffle state), same dropout masks (seeded per rank and epoch), same
    # optimizer moments, and a two-rank all-reduce is one exact addition: equal bit for bit
    assert weights_equal(clone_state(net), clone_state(reference))

    runs = all_runs(store)
    assert len(runs) == 2 and not [r for r in runs if r.info.status == "RUNNING"]
    assert store.run(stopped.run_id).info.status == "FINISHED"
    steps = [step for step, _ in store.metric_history(stopped.run_id, "loss")]
    assert steps == list(range(1, CONFIG["epochs"] + 1))  # one MLflow run, every epoch once


def test_checkpoint_every_0_writes_each_epoch_and_resume_last_finds_the_run(store, digits):
    X, y = digits
    X, y = X[:512], y[:512]
    config = dict(CONFIG, epochs=3, checkpoint_every=0)
    net = SlowDropoutNet()
    first = train(net, X, y, TrainConfig(**config))
    state = checkpoints.read(Path(first.checkpoint))
    assert first.status == "finished" and state.epoch == 2  # the last epoch reached disk

    stopped = train(SlowDropoutNet(), X, y, TrainConfig(**dict(config, epochs=40)),
                    on_event=ctrl_c_after_epoch(1))
    assert stopped.status == "interrupted"
    again = SlowDropoutNet()
    resumed = train(again, X, y, TrainConfig(**dict(config, epochs=40), resume="last"))
    assert resumed.run_id == stopped.run_id and resumed.epochs_completed == 40


def test_a_second_ctrl_c_ends_every_worker_at_once(store, digits):
    from test_distributed import workers

    from aimodel_kernel.engine.training.distributed.pool import pool_status

    X, y = digits
    before = workers()

    def on_event(event) -> None:
        if type(event) is EpochEnd and event.epoch == 1:
            signal.raise_signal(signal.SIGINT)  # stop after this step ...
            signal.raise_signal(signal.SIGINT)  # ... no: stop now

    with pytest.raises(KeyboardInterrupt):
        train(SlowDropoutNet(), X, y, TrainConfig(**CONFIG), on_event=on_event)
    assert workers() <= before  # the launcher's agent stopped them; none is left mid-job
    assert pool_status()["alive"] is False  # the next call builds a new pool
    assert [r.info.status for r in all_runs(store)] == ["KILLED"]


NODE = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    from safetensors.torch import save_file
    from torch import nn
    from aimodel_kernel.engine.core.events import EpochEnd, StopFlag
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    class Slow(nn.Module):  # defined in __main__: sent to the workers by value
        def __init__(self):
            super().__init__()
            torch.manual_seed(100)  # the same start on both nodes
            self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1),
                                      nn.Linear(32, 10))
        def forward(self, x):
            time.sleep(0.005)
            return self.body(x)

    if __name__ == "__main__":
        data, rank, rdzv, out, mode = sys.argv[1:6]
        d = np.load(data)
        stop = StopFlag()
        def on_event(event):  # only the recording node hears rank 0; the stop is collective
            if mode == "stop" and type(event) is EpochEnd and event.epoch == 1:
                stop.set("test")
        resume = mode.split(":", 1)[1] if mode.startswith("resume:") else None
        config = TrainConfig(epochs=6, batch_size=64, lr=1e-2, seed=7, nodes=2,
                             node_rank=int(rank), rdzv=rdzv, export=False, deterministic=True,
                             checkpoint=mode != "reference", checkpoint_every=3600,
                             resume=resume)
        model = Slow()
        r = train(model, d["X"], d["y"], config, on_event=on_event, stop=stop)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  out + ".safetensors")
        json.dump({"run_id": r.run_id, "status": r.status, "done": r.epochs_completed,
                   "checkpoint": r.checkpoint}, open(out + ".json", "w"))
""")


def two_nodes(tmp_path: Path, homes: list[Path], data: Path, mode: str) -> list[dict]:
    """Run NODE as node 0 and node 1 on loopback; their reports, weights under ``.weights``."""
    rdzv = f"127.0.0.1:{free_port()}"
    procs = []
    for rank in (0, 1):
        out = tmp_path / f"{mode.split(':')[0]}{rank}"
        env = subprocess_env(AIMODEL_HOME=str(homes[rank]))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", NODE, str(data), str(rank), rdzv, str(out), mode],
            cwd=homes[rank].parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        logs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)
    reports = []
    for rank in (0, 1):
        out = tmp_path / f"{mode.split(':')[0]}{rank}"
        report = json.loads(Path(f"{out}.json").read_text())
        report["weights"] = load_file(f"{out}.safetensors")
        reports.append(report)
    return reports


def test_two_nodes_stop_and_resume_like_an_uninterrupted_two_node_run(tmp_path, template_db,
                                                                     digits):
    X, y = digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X[:640], y=y[:640])
    homes = []
    for rank in (0, 1):
        home = tmp_path / f"node{rank}" / ".aimodel"
        home.mkdir(parents=True)
        shutil.copyfile(template_db, home / "mlflow.db")
        homes.append(home)

    reference = two_nodes(tmp_path, homes, data, "reference")
    stopped = two_nodes(tmp_path, homes, data, "stop")
    assert {r["status"] for r in stopped} == {"interrupted"}
    recorder = next(i for i, r in enumerate(stopped) if r["run_id"])
    run_id, done = stopped[recorder]["run_id"], stopped[recorder]["done"]
    assert 1 <= done < 6 and stopped[1 - recorder]["run_id"] == ""
    state = checkpoints.read(Path(stopped[recorder]["checkpoint"]))
    assert state.epoch == done - 1 and state.meta["world_size"] == 2

    # both kernels run the same line with --resume RUN_ID; only the recorder has that run
    resumed = two_nodes(tmp_path, homes, data, f"resume:{run_id}")
    assert [r["status"] for r in resumed] == ["finished", "finished"]
    assert resumed[recorder]["run_id"] == run_id and resumed[1 - recorder]["run_id"] == ""
    expected = reference[0]["weights"]
    for r in resumed:
        assert weights_equal(r["weights"], expected)

    store = node_store(homes[recorder])
    assert store.run(run_id).info.status == "FINISHED"
    assert [s for s, _ in store.metric_history(run_id, "loss")] == list(range(1, 7))
    assert not node_store(homes[1 - recorder]).search_runs("")  # discarded on the other node
