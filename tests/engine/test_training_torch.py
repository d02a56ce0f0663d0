"""``engine.train`` on real PyTorch modules (MLP, CNN, GRU) and real small data."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import all_runs, clone_state, mlp, weights_equal

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"checkpoint": False, "export": False}


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.head(x.flatten(1))


class RowsGRU(nn.Module):
    """Reads an 8x8 digit as 8 steps of 8 features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.GRU(8, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _accuracy(net, X, y) -> float:
    with torch.no_grad():
        return float((net(torch.as_tensor(X)).argmax(1).numpy() == y).mean())


def test_trains_the_users_object_in_place(store, digits):
    X, y = digits
    net = mlp()
    before = clone_state(net)
    params = list(net.parameters())
    result = train(net, X, y, TrainConfig(epochs=4, lr=1e-2, val=0.2, seed=0, **FAST))
    assert next(iter(net.parameters())) is params[0]  # the same tensors, updated in place
    assert not weights_equal(before, clone_state(net))
    assert result.status == "finished" and result.epochs_completed == 4
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.metrics["val_accuracy"] > 0.8
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert net.training  # left in the mode it was in
    assert _accuracy(net, X, y) > 0.8


def test_regression(store, diabetes):
    X, y = diabetes
    net = mlp(10, 1)
    result = train(net, X, y, TrainConfig(epochs=5, lr=1e-2, val=0.2, seed=0, **FAST))
    assert result.task.task == "regression"
    assert {"val_loss", "val_mae"} <= set(result.metrics) and "val_accuracy" not in result.metrics
    assert result.history[-1]["loss"] < result.history[0]["loss"]


@pytest.mark.parametrize("outputs", [1, 2])
def test_binary_with_one_or_two_outputs(store, cancer, outputs):
    X, y = cancer
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    net = mlp(30, outputs, hidden=16)
    result = train(net, X, y, TrainConfig(epochs=5, lr=1e-2, val=0.25, seed=0, **FAST))
    assert result.task.task == "binary"
    assert result.metrics["val_accuracy"] > 0.85
    with torch.no_grad():
        out = net(torch.from_numpy(X))
    pred = (out[:, 0] > 0).long() if outputs == 1 else out.argmax(1)
    assert (pred.numpy() == y).mean() > 0.85


def test_conv_net_on_images(store, digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    net = SmallCNN()
    result = train(net, images, y, TrainConfig(epochs=3, lr=1e-2, val=0.2, seed=0, **FAST))
    assert result.fingerprint["shape"] == [len(y), 1, 8, 8]
    assert result.metrics["val_accuracy"] > 0.8


def test_recurrent_net_on_sequences(store, digits):
    X, y = digits
    sequences = X.reshape(-1, 8, 8)
    net = RowsGRU()
    result = train(net, sequences, y, TrainConfig(epochs=4, lr=1e-2, val=0.2, seed=0, **FAST))
    assert result.metrics["val_accuracy"] > 0.8
    assert result.history[-1]["loss"] < result.history[0]["loss"]


@pytest.mark.parametrize("kind", ["array", "frame", "tensor", "dataset", "loader"])
def test_input_kinds(store, digits, kind):
    X, y = digits
    tx, ty = torch.from_numpy(X), torch.from_numpy(y)
    inputs = {
        "array": (X, y),
        "frame": (pd.DataFrame(X, columns=[f"p{i}" for i in range(64)]), pd.Series(y)),
        "tensor": (tx, ty),
        "dataset": (torch.utils.data.TensorDataset(tx, ty), None),
        "loader": (torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tx, ty),
                                               batch_size=128, shuffle=True), None),
    }[kind]
    net = mlp()
    before = clone_state(net)
    result = train(net, *inputs, TrainConfig(epochs=2, lr=1e-2, seed=0, **FAST))
    assert result.fingerprint["kind"] == kind
    assert result.epochs_completed == 2 and not weights_equal(before, clone_state(net))
    assert _accuracy(net, X, y) > 0.6
    if kind == "frame":
        assert result.fingerprint["columns"][:2] == ["p0", "p1"]


def test_early_stopping_restores_the_best_weights(store, diabetes):
    X, y = diabetes
    Xv, yv = X[300:], y[300:]
    net = mlp(10, 1)
    config = TrainConfig(epochs=30, lr=0.5, optimizer="sgd", early_stop=2, seed=0, **FAST)
    result = train(net, X[:300], y[:300], config, val_data=(Xv, yv))
    assert result.stopped_early and result.epochs_completed < 30
    best = result.history[result.best_epoch - 1]["val_loss"]
    assert best == min(h["val_loss"] for h in result.history)
    assert result.history[-1]["val_loss"] > best
    with torch.no_grad():
        mse = float(((net(torch.from_numpy(Xv))[:, 0] - torch.from_numpy(yv)) ** 2).mean())
    assert mse == pytest.approx(best, rel=1e-5)
    assert result.metrics["best_val_loss"] == pytest.approx(best)


def test_explicit_validation_data(store, digits):
    X, y = digits
    net = mlp()
    result = train(net, X[:1200], y[:1200], TrainConfig(epochs=2, lr=1e-2, seed=0, **FAST),
                   val_data=(X[1200:], y[1200:]))
    assert result.metrics["val_accuracy"] == pytest.approx(_accuracy(net, X[1200:], y[1200:]))
    assert result.fingerprint["n_samples"] == 1200
    with pytest.raises(InputError, match="either --val"):
        train(net, X, y, TrainConfig(val=0.2, **FAST), val_data=(X, y))


def test_deterministic_runs_are_bitwise_equal(store, digits):
    X, y = digits
    config = dict(epochs=2, lr=1e-2, val=0.2, seed=11, deterministic=True, **FAST)
    first, second = mlp(seed=1), mlp(seed=1)
    a = train(first, X, y, TrainConfig(**config))
    b = train(second, X, y, TrainConfig(**config))
    assert weights_equal(clone_state(first), clone_state(second))
    assert a.history[-1]["loss"] == b.history[-1]["loss"]
    third = mlp(seed=1)
    train(third, X, y, TrainConfig(**{**config, "seed": 12}))
    assert not weights_equal(clone_state(first), clone_state(third))
    assert not torch.are_deterministic_algorithms_enabled()  # switched back afterwards


def test_seed_does_not_disturb_global_rng(store, digits):
    X, y = digits
    net = mlp()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train(net, X[:200], y[:200], TrainConfig(epochs=1, seed=3, **FAST))
    assert torch.equal(torch.rand(3), expected)


def test_balanced_class_weight_changes_training(store, cancer):
    X, y = cancer
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    keep = np.flatnonzero((y == 1) | (np.arange(len(y)) % 4 == 0))  # fewer malignant rows
    X, y = X[keep], y[keep]
    common = dict(epochs=2, lr=1e-2, seed=0, deterministic=True, **FAST)
    plain, weighted = mlp(30, 2, seed=0), mlp(30, 2, seed=0)
    train(plain, X, y, TrainConfig(**common))
    result = train(weighted, X, y, TrainConfig(class_weight="balanced", **common))
    assert not weights_equal(clone_state(plain), clone_state(weighted))
    assert store.run(result.run_id).data.params["train.class_weight"] == '"balanced"'


def test_output_size_must_match_classes(store, digits):
    X, y = digits
    net = mlp(n_out=3)
    before = clone_state(net)
    with pytest.raises(InputError, match="outputs 3 values per row but y has 10 classes"):
        train(net, X, y, TrainConfig(epochs=1, **FAST))
    with pytest.raises(InputError, match="cannot take X of shape"):
        train(mlp(n_in=5), X, y, TrainConfig(epochs=1, **FAST))
    assert weights_equal(before, clone_state(net)) and not all_runs(store)


def test_devices_are_bounded_by_the_cpu_cores_of_this_machine(ip, store, digits):
    import os

    from IPython.core.error import UsageError

    cpus = os.cpu_count()
    for devices in (cpus + 1, 1_000_000):
        with pytest.raises(InputError, match=rf"^--devices {devices} asks for more worker "
                                             rf"processes than the {cpus} CPU cores of this "
                                             rf"machine; use --devices {cpus} or fewer"):
            TrainConfig(devices=devices, batch_size=2_000_000)
    TrainConfig(devices=cpus)
    TrainConfig(devices=cpus + 1, batch_size=1024, export_script="train.py")  # runs elsewhere
    X, y = digits
    net = mlp()
    before = clone_state(net)
    ip.user_ns.update(net=net, Xd=X, yd=y)
    with pytest.raises(UsageError, match=r"^--devices 1000000 asks for more worker processes"):
        ip.run_line_magic("train", "net Xd yd --devices 1000000 --quiet")
    assert weights_equal(before, clone_state(net)) and not all_runs(store)


def test_training_leaves_no_gradients_and_gives_memory_back(store, digits):
    """The last step's gradients (as large as the weights) are dropped, and the freed heap is
    returned to the system (glibc's malloc_trim): a kernel's resident size is what a Binder or
    JupyterHub limit counts."""
    from aimodel_kernel.engine.core import memory

    X, y = digits
    net = mlp()
    train(net, X, y, TrainConfig(epochs=1, checkpoint=False, export=False))
    assert all(p.grad is None for p in net.parameters())
    if sys.platform.startswith("linux"):
        assert memory._trim() is not None  # glibc here: the trim is really called
    memory.release_memory()  # and is harmless to call again
