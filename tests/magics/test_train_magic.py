"""``%train`` in a real in-process IPython with the extension loaded."""

from __future__ import annotations

import base64
import json
import signal

import numpy as np
import pytest
from conftest import all_runs, clone_state, mlp, run_artifact, weights_equal

from aimodel_kernel.display.train_report import TrainReport


def test_cell_assignment_records_line_and_cell(ip):
    cell = "# fit the baseline\nr = %train clf X y --name cancer --val 0.2 --seed 3"
    outcome = ip.run_cell(cell, store_history=True)
    outcome.raise_error()
    r = ip.user_ns["r"]
    assert isinstance(r, TrainReport)
    assert hasattr(ip.user_ns["clf"], "classes_")  # the notebook's object was fitted
    assert r.status == "finished" and r.ref == "cancer/1" and r.seed == 3
    from aimodel_kernel.engine.store.tracking import get_store

    store = get_store()  # the default store of the working directory
    magic = run_artifact(store, r.run_id, "source/magic.txt").read_text()
    assert magic == "%train clf X y --name cancer --val 0.2 --seed 3"
    assert run_artifact(store, r.run_id, "source/cell.py").read_text() == cell
    assert store.run(r.run_id).data.tags["aimodel.magic"] == magic
    again = ip.run_line_magic("train", "clf X y --name cancer")
    assert again.version == 2


def test_result_object(ip):
    r = ip.run_line_magic("train", "clf X y --val 0.25")
    assert r.version is None and r.framework == "sklearn"
    assert r.metrics and all(
        isinstance(k, str) and type(v) is float for k, v in r.metrics.items()
    )
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["run_id"] == r.run_id and doc["status"] == "finished"
    bundle = r._repr_mimebundle_()
    assert bundle.keys() == {"text/plain", "text/html", "application/vnd.aimodel.train.v1+json"}
    assert "Fitted LogisticRegression (binary)" in bundle["text/plain"]
    assert "add --name to version it" in bundle["text/plain"]
    assert "<table>" in bundle["text/html"] and "val_accuracy" in bundle["text/html"]
    assert json.dumps(bundle["application/vnd.aimodel.train.v1+json"])
    assert repr(r) == r.text()


def test_torch_training_through_the_magic(ip, digits, capsys):
    pytest.importorskip("torch")
    X, y = digits
    net = mlp()
    before = clone_state(net)
    ip.user_ns.update(net=net, Xd=X[:1400], yd=y[:1400], Xv=X[1400:], yv=y[1400:])
    r = ip.run_line_magic(
        "train", "net Xd yd --epochs 3 --lr 0.01 --batch-size 32 --val-data Xv yv --seed 2 "
                 "--optimizer adam --no-checkpoint --name digits")
    assert ip.user_ns["net"] is net and not weights_equal(before, clone_state(net))
    assert r.epochs_completed == 3 and r.metrics["val_accuracy"] > 0.8
    assert r.config["batch_size"] == 32 and r.config["optimizer"] == "adam"
    assert r.config["checkpoint"] is False and r.ref == "digits/1"
    out = capsys.readouterr().out
    assert "digits: finished — epoch 3/3" in out  # the text progress fallback
    bundle = r._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    assert 'src="data:image/png;base64,' in bundle["text/html"]
    assert "Trained Sequential (multiclass, 10 classes) for 3 epochs" in bundle["text/plain"]
    quiet = ip.run_line_magic("train", "net Xd yd --epochs 1 --quiet --no-export")
    assert quiet.status == "finished" and "finished" not in capsys.readouterr().out


def test_expressions_as_arguments(ip):
    r = ip.run_line_magic("train", 'clf "X[:300]" y[:300]')
    assert r.fingerprint["n_samples"] == 300
    assert ip.user_ns["clf"].n_features_in_ == 30


class Interrupting:
    """Builds a module that presses Ctrl-C itself during the ``at``-th training step."""

    def __new__(cls, at: int):
        import torch

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                torch.manual_seed(0)
                self.body = mlp()
                self.steps = 0
                self.at = at

            def forward(self, x):
                if self.training and torch.is_grad_enabled():
                    self.steps += 1
                    if self.steps == self.at:
                        signal.raise_signal(signal.SIGINT)
                return self.body(x)

        return Net()


@pytest.fixture
def default_sigint():
    """Start from Python's own SIGINT handler (a kernel's), whatever earlier tests left."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_interrupts_and_resume_continues(ip, digits, default_sigint):
    pytest.importorskip("torch")
    X, y = digits
    net = Interrupting(at=12)  # 600 rows / batch 64 = 10 steps per epoch: stops in epoch 2
    ip.user_ns.update(net=net, Xd=X[:600], yd=y[:600])
    line = "net Xd yd --epochs 3 --seed 1 --deterministic --lr 0.01 --no-export --name dg"
    r = ip.run_line_magic("train", line)
    assert r.status == "interrupted" and r.epochs_completed == 1 and r.version is None
    assert r.resume_hint == (
        f"net holds the weights of epoch 1. Continue with: %train {line} --resume {r.run_id}"
    )
    text = r._repr_mimebundle_()["text/plain"]
    assert "Interrupted" in text and "no version registered" in text and r.resume_hint in text
    from aimodel_kernel.engine.store.tracking import get_store

    store = get_store()
    assert store.run(r.run_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = ip.run_line_magic("train", r.resume_hint.split("%train ", 1)[1])
    assert resumed.run_id == r.run_id and resumed.status == "finished"
    assert resumed.epochs_completed == 3 and resumed.ref == "dg/1"
    reference = Interrupting(at=-1)
    ip.user_ns["ref"] = reference
    ip.run_line_magic("train", "ref Xd yd --epochs 3 --seed 1 --deterministic --lr 0.01 "
                               "--no-export --no-checkpoint")
    assert weights_equal(clone_state(net.body), clone_state(reference.body))
    assert not [run for run in all_runs(store) if run.info.status == "RUNNING"]


def test_interrupt_in_first_epoch_then_resume_last(ip, digits):
    pytest.importorskip("torch")
    from IPython.core.error import UsageError

    X, y = digits
    net = Interrupting(at=3)
    before = clone_state(net)
    ip.user_ns.update(net=net, Xd=X[:600], yd=y[:600])
    r = ip.run_line_magic("train", "net Xd yd --epochs 2 --no-export")
    assert r.status == "interrupted" and r.epochs_completed == 0
    assert weights_equal(before, clone_state(net))
    assert r.resume_hint == ("net is unchanged (no epoch finished); there is no checkpoint to "
                             "resume from. Train again with: %train net Xd yd --epochs 2 "
                             "--no-export")
    with pytest.raises(UsageError, match="no checkpoint"):
        ip.run_line_magic("train", "net Xd yd --epochs 2 --no-export --resume")
    net.steps, net.at = 0, 13
    stopped = ip.run_line_magic("train", "net Xd yd --epochs 2 --no-export")
    assert stopped.epochs_completed == 1 and "--resume" in stopped.resume_hint
    resumed = ip.run_line_magic("train", "net Xd yd --epochs 2 --no-export --resume")
    assert resumed.run_id == stopped.run_id and resumed.epochs_completed == 2


def test_help_has_examples(ip):
    doc = ip.find_line_magic("train").__doc__
    assert "%train clf X_train y_train --name cancer-rf" in doc
    for flag in ("--epochs", "--val", "--early-stop", "--resume", "--name", "--deterministic"):
        assert flag in doc
    assert "%versions digits-mlp" in ip.find_line_magic("versions").__doc__


def test_configured_home(ip, tmp_path, template_db):
    import shutil

    home = tmp_path / "elsewhere"
    home.mkdir()
    shutil.copyfile(template_db, home / "mlflow.db")
    ip.run_line_magic("config", f"AimodelMagics.home = {str(home)!r}")
    try:
        r = ip.run_line_magic("train", "clf X y --name configured")
    finally:
        ip.run_line_magic("config", "AimodelMagics.home = ''")
    assert r.tracking_uri == f"sqlite:///{home.resolve() / 'mlflow.db'}"
    assert list((home / "artifacts").rglob("model.skops"))
    assert np.array_equal(ip.user_ns["clf"].classes_, [0, 1])


def test_a_trailing_comment_on_a_magic_line_is_ignored(ip):
    from aimodel_kernel.magics.resolve import strip_comment

    assert strip_comment("clf X y --name m  # the baseline") == "clf X y --name m"
    assert strip_comment('clf "X[:, 0]" y') == 'clf "X[:, 0]" y'
    assert strip_comment("clf X y --name 'a#b'") == "clf X y --name 'a#b'"
    result = ip.run_line_magic("train", "clf X y --name commented  # first try")
    assert result.ref == "commented/1"
