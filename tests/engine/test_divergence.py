"""A training that diverges (loss NaN, weights not finite) stops with one line naming the learning
rate, ends its run FAILED, registers nothing and gives the module its starting weights back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import all_runs, clone_state, mlp, registered_names, weights_equal

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.events import EpochEnd, StopFlag
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training import checkpoints
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.training.record import TrainingDiverged

torch = pytest.importorskip("torch")

# plain SGD at lr 10 on standardised diabetes targets: the loss is NaN by the second epoch
EXPLODES = dict(epochs=5, lr=10.0, optimizer="sgd", seed=0, export=False, checkpoint_every=0)


class NaNStatistic(torch.nn.Module):
    """An MLP whose running statistic (a buffer, not used by the output) turns NaN at a given
    training step: the loss stays finite, the state does not."""

    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.body = mlp()
        self.register_buffer("stat", torch.zeros(3))
        self.at_step, self.steps = at_step, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.steps == self.at_step:
                self.stat.fill_(float("nan"))
        return self.body(x)


def _only_run(store):
    runs = all_runs(store)
    assert len(runs) == 1
    return runs[0]


def test_a_nan_loss_stops_training_fails_the_run_and_restores_the_module(store, diabetes):
    X, y = diabetes
    net = mlp(10, 1)
    before = clone_state(net)
    with pytest.raises(TrainingDiverged) as info:
        train(net, X, y, TrainConfig(**EXPLODES, name="diabetes"))
    message = str(info.value)
    assert isinstance(info.value, InputError) and "\n" not in message  # one line, a UsageError
    assert "diverged at epoch 2 (loss is NaN)" in message
    assert "lower --lr (now 10, try 1)" in message
    assert weights_equal(clone_state(net), before)  # the weights it started from
    assert net.training  # and its mode

    run = _only_run(store)
    assert run.info.status == "FAILED" and run.info.lifecycle_stage == "active"  # kept, to look at
    assert run.data.tags["aimodel.diverged"] == message
    assert registered_names(store) == [] and "aimodel.version" not in run.data.tags
    assert store.artifact(run.info.run_id, "model/manifest.json") is None  # no model files
    losses = store.metric_history(run.info.run_id, "loss")
    assert [step for step, _ in losses] == [1, 2]
    assert math.isfinite(losses[0][1]) and math.isnan(losses[1][1])
    # the checkpoint on disk is the last finite epoch, never the diverged one
    state = checkpoints.read(store.home / "checkpoints" / run.info.run_id)
    assert state.epoch == 0
    assert all(bool(torch.isfinite(t).all()) for t in state.model.values())


def test_weights_that_stop_being_finite_are_caught_with_a_finite_loss(store, digits):
    X, y = digits
    net = NaNStatistic(at_step=15)  # 600 rows / 64: step 15 is in the second epoch
    before = clone_state(net)
    with pytest.raises(TrainingDiverged, match=r"at epoch 4 \(weights are NaN or infinite\)"):
        train(net, X[:600], y[:600], TrainConfig(epochs=4, lr=1e-2, seed=0, export=False,
                                                 name="nan-stat"))
    assert weights_equal(clone_state(net), before)
    run = _only_run(store)
    assert run.info.status == "FAILED" and registered_names(store) == []
    losses = store.metric_history(run.info.run_id, "loss")
    assert len(losses) == 4 and all(math.isfinite(v) for _, v in losses)  # the loss was fine


def test_a_resumed_run_that_diverges_gives_back_its_checkpoint_and_cannot_be_resumed(store,
                                                                                     digits):
    X, y = digits
    X, y = X[:600], y[:600]  # 10 steps per epoch
    config = dict(epochs=4, lr=1e-2, seed=2, export=False)
    stop = StopFlag()

    def stop_after_first_epoch(event) -> None:
        if isinstance(event, EpochEnd):
            stop.set("test")

    net = NaNStatistic(at_step=15)  # its step count goes on in the resumed run: epoch 2
    stopped = train(net, X, y, TrainConfig(**config), on_event=stop_after_first_epoch, stop=stop)
    assert stopped.status == "interrupted" and stopped.epochs_completed == 1
    at_checkpoint = checkpoints.read(Path(stopped.checkpoint)).model
    net.body.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    with pytest.raises(TrainingDiverged, match=r"at epoch 4 .*lower --lr"):
        train(net, X, y, TrainConfig(**config, resume=stopped.run_id))
    assert weights_equal(clone_state(net), at_checkpoint)  # where the resumed training began
    assert store.run(stopped.run_id).info.status == "FAILED"
    with pytest.raises(InputError, match=r"diverged .* lower --lr instead of resuming"):
        train(net, X, y, TrainConfig(**config, resume=stopped.run_id))
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]


def test_the_magic_shows_one_line_and_leaves_the_module(ip, diabetes):
    from IPython.core.error import UsageError

    X, y = diabetes
    net = mlp(10, 1)
    before = clone_state(net)
    ip.user_ns.update(net=net, Xd=X, yd=np.asarray(y))
    with pytest.raises(UsageError, match=r"^training diverged at epoch \d+ \(loss is NaN\)"):
        ip.run_line_magic("train", "net Xd yd --epochs 5 --lr 10 --optimizer sgd --seed 0 "
                                   "--quiet --name d")
    assert weights_equal(clone_state(ip.user_ns["net"]), before)
