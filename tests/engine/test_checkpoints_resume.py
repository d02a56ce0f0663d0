"""Stopping PyTorch training (stop flag, Ctrl-C), its checkpoint, and resuming it exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import all_runs, clone_state, mlp, registered_names, subprocess_env, weights_equal

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.events import BatchEnd, EpochEnd, StopFlag
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training import checkpoints
from aimodel_kernel.engine.training.entry import train

torch = pytest.importorskip("torch")

CONFIG = dict(epochs=3, lr=1e-2, batch_size=64, val=0.2, seed=4, deterministic=True, export=False)


@pytest.fixture
def data(digits):
    X, y = digits
    return X[:600], y[:600]


def _stop_at(stop: StopFlag, epoch: int, batch: int):
    """An event callback that sets ``stop`` at batch ``batch`` of 0-based ``epoch``."""
    seen = []

    def on_event(event) -> None:
        seen.append(event)
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == (epoch, batch):
            stop.set("test")

    on_event.seen = seen
    return on_event


def _interrupted(data, name=None):
    net = mlp()
    stop = StopFlag()
    on_event = _stop_at(stop, epoch=1, batch=2)
    result = train(net, *data, TrainConfig(**CONFIG, name=name), on_event=on_event, stop=stop)
    return net, result, on_event.seen


def test_interrupt_keeps_last_epoch_then_resume_matches_uninterrupted(store, data):
    reference = mlp()
    train(reference, *data, TrainConfig(**CONFIG))
    one_epoch = mlp()
    train(one_epoch, *data, TrainConfig(**{**CONFIG, "epochs": 1}))

    net, result, seen = _interrupted(data, name="digits")
    assert result.status == "interrupted" and result.epochs_completed == 1
    assert result.version is None and registered_names(store) == []
    assert [e.epoch for e in seen if isinstance(e, EpochEnd)] == [1]
    assert any(isinstance(e, BatchEnd) and e.epoch == 1 for e in seen)  # epoch 2 had begun
    assert "--resume" in result.resume_hint and "epoch 2" in result.resume_hint
    run = store.run(result.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["aimodel.checkpoint"] == result.checkpoint
    # the model holds exactly the weights of the last completed epoch ...
    assert weights_equal(clone_state(net), clone_state(one_epoch))
    # ... which are also the checkpoint's
    state = checkpoints.read(Path(result.checkpoint))
    assert state.epoch == 0 and weights_equal(state.model, clone_state(net))
    assert state.meta["history"][0]["epoch"] == 1

    resumed = train(net, *data, TrainConfig(**CONFIG, name="digits", resume=result.run_id))
    assert resumed.run_id == result.run_id and resumed.status == "finished"
    assert resumed.epochs_completed == 3 and resumed.version == 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    after = clone_state(net)
    expected = clone_state(reference)
    assert all(torch.allclose(after[k], expected[k], rtol=0, atol=1e-6) for k in expected)
    assert weights_equal(after, expected)
    assert store.run(result.run_id).info.status == "FINISHED"
    assert [step for step, _ in store.metric_history(result.run_id, "loss")] == [1, 2, 3]
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]


def test_resume_last_and_refusals(store, data):
    X, y = data
    net, result, _ = _interrupted(data)
    with pytest.raises(InputError, match="different data"):
        train(net, X[:-5], y[:-5], TrainConfig(**CONFIG, resume=result.run_id))
    with pytest.raises(InputError, match="--epochs 3"):
        train(net, X, y, TrainConfig(**{**CONFIG, "epochs": 4}, resume=result.run_id))
    with pytest.raises(InputError, match="does not fit this model"):
        train(mlp(hidden=8), X, y, TrainConfig(**CONFIG, resume=result.run_id))
    with pytest.raises(InputError, match="--optimizer adamw; resume it with the same value"):
        train(net, X, y, TrainConfig(**CONFIG, optimizer="sgd", resume=result.run_id))
    with pytest.raises(InputError, match=r"--lr 0\.01; resume it with the same value"):
        train(net, X, y, TrainConfig(**{**CONFIG, "lr": 0.5}, resume=result.run_id))
    assert store.run(result.run_id).info.status == "KILLED"  # refusals leave it resumable
    resumed = train(net, X, y, TrainConfig(**CONFIG, resume="last"))
    assert resumed.run_id == result.run_id and resumed.epochs_completed == 3
    with pytest.raises(InputError, match="nothing to resume"):
        train(net, X, y, TrainConfig(**CONFIG, resume=result.run_id))
    with pytest.raises(InputError, match="no interrupted"):
        train(net, X, y, TrainConfig(**CONFIG, resume="last"))
    assert len(all_runs(store)) == 1


def test_sigint_stops_after_the_batch(store, data):
    net = mlp()
    one_epoch = mlp()
    train(one_epoch, *data, TrainConfig(**{**CONFIG, "epochs": 1, "checkpoint": False}))
    handler = signal.getsignal(signal.SIGINT)

    def on_event(event) -> None:
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == (1, 0):
            signal.raise_signal(signal.SIGINT)  # what the notebook's stop button sends

    result = train(net, *data, TrainConfig(**CONFIG), on_event=on_event)
    assert result.status == "interrupted" and result.epochs_completed == 1
    assert store.run(result.run_id).info.status == "KILLED"
    assert weights_equal(clone_state(net), clone_state(one_epoch))
    assert signal.getsignal(signal.SIGINT) is handler


def test_second_sigint_raises_keyboard_interrupt(store, data):
    def on_event(event) -> None:
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == (0, 1):
            signal.raise_signal(signal.SIGINT)  # asks to stop after this batch
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C: stop now

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(mlp(), *data, TrainConfig(**CONFIG), on_event=on_event)
    runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"]
    assert signal.getsignal(signal.SIGINT) is handler


def test_checkpoint_roundtrip_and_missing(tmp_path):
    net = mlp(8, 2, hidden=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
    net(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(3)
    mirror = checkpoints.StateMirror()
    mirror.capture(2, net, optimizer, generator)
    state = mirror.snapshot({"best": 0.5})
    checkpoints.write(tmp_path / "ck", state)
    back = checkpoints.read(tmp_path / "ck")
    assert back.epoch == 2 and back.meta == {"best": 0.5}
    assert weights_equal(back.model, clone_state(net))
    fresh = torch.optim.AdamW(mlp(8, 2, hidden=4).parameters(), lr=0.1)
    fresh.load_state_dict(back.optimizer)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"],
                       optimizer.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(back.rng["shuffle"], generator.get_state())
    with pytest.raises(InputError, match="no checkpoint"):
        checkpoints.read(tmp_path / "missing")


def test_state_mirror_copies_into_the_same_buffers():
    net = mlp(8, 2, hidden=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(3)

    def step():
        optimizer.zero_grad()
        net(torch.randn(4, 8)).sum().backward()
        optimizer.step()

    mirror = checkpoints.StateMirror()
    mirror.capture(-1, net, optimizer, generator)  # before any step: no optimizer state yet
    step()
    mirror.capture(0, net, optimizer, generator)
    weights = {k: v.data_ptr() for k, v in mirror.model.items()}
    moments = [t.data_ptr() for t in mirror._buffers]
    at_epoch_0 = clone_state(net)
    step()  # training goes on: the mirror keeps epoch 0
    assert weights_equal(mirror.model, at_epoch_0)
    assert not weights_equal(clone_state(net), at_epoch_0)
    mirror.capture(1, net, optimizer, generator)
    assert weights_equal(mirror.model, clone_state(net))
    # no new allocation on later captures: the same buffers were overwritten
    assert {k: v.data_ptr() for k, v in mirror.model.items()} == weights
    assert [t.data_ptr() for t in mirror._buffers] == moments
    # a snapshot lends the writer these very buffers (no third copy of a large model's state),
    # and the next capture waits until the writer gives them back
    import threading

    snap = mirror.snapshot({})
    assert snap.epoch == 1 and snap.lender is mirror
    assert {k: v.data_ptr() for k, v in snap.model.items()} == weights
    step()
    capture = threading.Thread(target=mirror.capture, args=(2, net, optimizer, generator))
    capture.start()
    capture.join(0.2)
    assert capture.is_alive() and mirror.epoch == 1  # blocked: the buffers are being written
    mirror.release()
    capture.join(5)
    assert not capture.is_alive() and mirror.epoch == 2
    assert weights_equal(mirror.model, clone_state(net))


def test_without_checkpoints_the_mirror_keeps_no_optimizer_state():
    net = mlp(8, 2, hidden=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    net(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    mirror = checkpoints.StateMirror(optimizer=False)
    mirror.capture(0, net, optimizer, torch.Generator().manual_seed(0))
    assert weights_equal(mirror.model, clone_state(net)) and mirror._buffers == []
    with pytest.raises(RuntimeError, match="keeps no optimizer state"):
        mirror.snapshot({})


def test_checkpoint_cadence_is_time_based_and_zero_means_every_epoch(store, digits, monkeypatch):
    X, y = digits
    written: list[int] = []
    real_write = checkpoints.write

    def recording_write(directory, state):  # the real writer, noting which epochs reach disk
        written.append(state.epoch)
        real_write(directory, state)

    monkeypatch.setattr(checkpoints, "write", recording_write)
    train(mlp(), X[:256], y[:256], TrainConfig(epochs=4, checkpoint_every=0, seed=1))
    every_epoch = list(written)
    written.clear()
    train(mlp(), X[:256], y[:256], TrainConfig(epochs=4, checkpoint_every=3600, seed=1))
    # the background writer coalesces: with 0 it was asked after each epoch, so the last
    # epoch is on disk; with an hour between writes a short run writes none
    assert every_epoch and every_epoch[-1] == 3
    assert written == []
    with pytest.raises(InputError, match="checkpoint-every"):
        TrainConfig(checkpoint_every=-1)


WRITER = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path

    import torch

    from aimodel_kernel.engine.training import checkpoints

    def state(epoch):
        value = float(epoch)
        return checkpoints.TrainState(
            epoch=epoch, model={"w": torch.full((64, 64), value)},
            optimizer={"state": {}, "param_groups": [{"lr": value, "params": [0]}]},
            rng={"shuffle": torch.full((4,), value)}, meta={"history": [{"epoch": epoch + 1}]})

    directory = Path(sys.argv[1])
    checkpoints.write(directory, state(0))
    real_replace, calls = os.replace, []

    def replace(src, dst):  # the second rename from here on never happens: the process dies
        calls.append(dst)
        if len(calls) == 2:
            print("stalled", flush=True)
            time.sleep(600)
        real_replace(src, dst)

    os.replace = replace
    checkpoints.write(directory, state(1))
    checkpoints.write(directory, state(2))
''')


def _consistent(state) -> bool:
    """Weights, RNG, optimizer and history all belong to the checkpoint's own epoch."""
    e = state.epoch
    return (bool((state.model["w"] == e).all()) and bool((state.rng["shuffle"] == e).all())
            and state.optimizer["param_groups"][0]["lr"] == e
            and state.meta["history"][-1]["epoch"] == e + 1)


def test_a_writer_killed_between_two_renames_leaves_a_whole_checkpoint(tmp_path):
    """A real process is SIGKILLed at the second rename it makes: with one file per checkpoint
    that is inside the next write, so the previous checkpoint is whole (the earlier two-file
    format paired the new weights with the old metadata here)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    directory = tmp_path / "ck"
    writer = subprocess.Popen([sys.executable, str(script), str(directory)],
                              env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "stalled"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.communicate()
    state = checkpoints.read(directory)
    assert _consistent(state) and state.epoch == 1  # the first write completed, whole
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]  # the dead write's
    mirror = checkpoints.StateMirror()
    net = mlp(8, 2, hidden=4)
    mirror.capture(5, net, torch.optim.SGD(net.parameters(), lr=0.1),
                   torch.Generator().manual_seed(0))
    checkpoints.write(directory, mirror.snapshot({"history": [{"epoch": 6}]}))
    assert sorted(p.name for p in directory.iterdir()) == [checkpoints.TENSORS]  # tidied
    assert checkpoints.read(directory).epoch == 5


def test_a_checkpoint_of_the_earlier_two_file_format_still_reads(tmp_path):
    from safetensors.torch import save_file

    directory = tmp_path / "old"
    directory.mkdir()
    save_file({"model.w": torch.ones(2, 2), "rng.shuffle": torch.zeros(3)},
              str(directory / checkpoints.TENSORS))
    (directory / checkpoints.META).write_text(json.dumps({
        "epoch": 3, "meta": {"history": []},
        "structure": {"model": {"__dict__": [["w", {"__tensor__": "model.w"}]]},
                      "optimizer": {"__dict__": [["state", {"__dict__": []}],
                                                 ["param_groups", []]]},
                      "rng": {"__dict__": [["shuffle", {"__tensor__": "rng.shuffle"}]]}}}))
    state = checkpoints.read(directory)
    assert state.epoch == 3 and torch.equal(state.model["w"], torch.ones(2, 2))
    checkpoints.write(directory, state)  # rewritten in the one-file format
    assert not (directory / checkpoints.META).exists()
    assert checkpoints.read(directory).epoch == 3


def test_a_costly_checkpoint_spaces_out_the_next_ones(tmp_path):
    """Writes of a large model's state are not due before COST_RATIO times the last write's
    duration, so they stay a small share of the training time; --checkpoint-every 0 still asks
    for every epoch."""
    import time

    from aimodel_kernel.engine.training.checkpoints import CheckpointWriter

    writer = CheckpointWriter(tmp_path / "c", min_interval=0.01)
    try:
        time.sleep(0.02)
        assert writer.due()  # a cheap (so far: no) write: the interval alone decides
        writer.last_write_seconds = 0.01  # as measured after a write of 10 ms
        writer._last_submit = time.monotonic()
        time.sleep(0.05)
        assert not writer.due()  # 0.05 s < 20 x 10 ms
        time.sleep(0.2)
        assert writer.due()
        every = CheckpointWriter(tmp_path / "e", min_interval=0)
        every.last_write_seconds = 10.0
        assert every.due()
        every.close()
    finally:
        writer.close()
