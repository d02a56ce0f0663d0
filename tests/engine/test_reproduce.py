"""``reproduce``: retrain a recorded version into a new one and compare, in a real store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import all_runs, clone_state, mlp, run_artifact, same_state, weights_equal
from sklearn.ensemble import RandomForestClassifier

from aimodel_kernel.engine.core.errors import ChecksumError, InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.registry import list_versions, load_version, resolve
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.reproduce import ReproduceResult, recorded_config, reproduce


def _refs(name: str) -> list[str]:
    return [v.ref for v in list_versions(name).versions]


def _nothing_running(store) -> bool:
    return not [run for run in all_runs(store) if run.info.status == "RUNNING"]


@pytest.fixture
def rows(digits):
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture
def torch_version(store, rows):
    """Version ``t/1``: a small MLP, 2 deterministic epochs, seed 3, no export."""
    pytest.importorskip("torch")
    X, y = rows
    config = TrainConfig(epochs=2, seed=3, deterministic=True, lr=1e-2, checkpoint=False,
                         export=False, name="t")
    train(mlp(), X, y, config, source={"line": "%train net X y", "cell": "net = mlp()\n%train"})
    return resolve("t/1")


def test_sklearn_forest_reproduces_identically(store, cancer):
    X, y = cancer
    train(RandomForestClassifier(n_estimators=8, max_depth=4), X, y,
          TrainConfig(seed=5, val=0.2, name="rf"))
    r = reproduce("rf/1", X, y, source={"line": "%reproduce rf/1"})
    assert r.original == "rf/1" and r.reproduction == "rf/2"
    assert r.identical_weights and r.max_weight_difference == 0.0
    assert r.identical_metrics and r.metric_differences == {}
    assert r.verdict == "reproduced: identical weights, identical metrics"
    assert r.notes == []  # scikit-learn: no note about determinism
    first, second = load_version("rf/1"), load_version("rf/2")
    assert first.random_state == second.random_state == 5
    assert same_state(first, second)
    a, b = resolve("rf/1"), resolve("rf/2")
    assert {k: a.metrics[k] for k in ("train_accuracy", "val_accuracy")} == {
        k: b.metrics[k] for k in ("train_accuracy", "val_accuracy")}
    assert b.run_tags["aimodel.reproduces"] == "rf/1" and b.tags["aimodel.parent"] == "rf/1"
    assert b.run_tags["aimodel.reproduced_by"] == "%reproduce rf/1"
    assert json.loads(json.dumps(r.to_dict()))["verdict"] == r.verdict


def test_torch_reproduction_copies_the_given_module(torch_version, store, rows):
    X, y = rows
    net = mlp(seed=9)  # other starting weights: the recorded initial ones are loaded into a copy
    before = clone_state(net)
    r = reproduce("t/1", X, y, model=net, tolerance=0.0)
    assert weights_equal(before, clone_state(net))
    assert r.reproduction == "t/2" and r.deterministic and r.notes == []
    assert r.identical_weights and r.identical_metrics and r.max_weight_difference == 0.0
    assert r.verdict == "reproduced: identical weights, identical metrics"
    from safetensors.torch import load_file

    files = [run_artifact(store, resolve(ref).run_id, "model/model.safetensors")
             for ref in ("t/1", "t/2")]
    assert files[0].read_bytes() == files[1].read_bytes()
    assert weights_equal(*(load_file(str(f)) for f in files))
    # the recorded code is the original's, so the reproduction's code is the same
    assert (run_artifact(store, r.run_id, "source/cell.py").read_text()
            == run_artifact(store, torch_version.run_id, "source/cell.py").read_text())


def test_recorded_config(torch_version):
    config = recorded_config(torch_version, name="other")
    assert (config.epochs, config.seed, config.deterministic, config.lr) == (2, 3, True, 1e-2)
    assert config.checkpoint is False and config.export is False
    assert config.name == "other" and config.resume is None


def test_torch_refusals_change_nothing(torch_version, store, rows):
    X, y = rows
    with pytest.raises(InputError, match="t/1 is a PyTorch model: pass a module"):
        reproduce("t/1", X, y)
    with pytest.raises(InputError, match=r"RandomForestClassifier is not a torch\.nn\.Module"):
        reproduce("t/1", X, y, model=RandomForestClassifier())
    with pytest.raises(InputError, match="Sequential does not have the architecture of t/1"):
        reproduce("t/1", X, y, model=mlp(hidden=16))
    other = X.copy()
    other[0, 0] += 1.0
    with pytest.raises(InputError, match="this data is not what t/1 was trained on"):
        reproduce("t/1", other, y, model=mlp())
    with pytest.raises(InputError, match="this data is not what t/1 was trained on"):
        reproduce("t/1", X[:200], y[:200], model=mlp())
    with pytest.raises(NotFoundError, match="t has no version 4"):
        reproduce("t/4", X, y, model=mlp())
    assert _refs("t") == ["t/1"] and _nothing_running(store)


@pytest.mark.parametrize("stored", ["initial.safetensors", "model.safetensors"])
def test_tampered_torch_files_are_refused_before_training(torch_version, store, rows, stored):
    X, y = rows
    path = run_artifact(store, torch_version.run_id, f"model/{stored}")
    with path.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ChecksumError, match=rf"{stored.replace('.', '[.]')} was changed after"):
        reproduce("t/1", X, y, model=mlp())
    assert _refs("t") == ["t/1"] and _nothing_running(store)
    assert len(all_runs(store)) == 1  # not even a deleted run was started


def test_tampered_sklearn_file_is_refused(store, cancer):
    X, y = cancer
    train(RandomForestClassifier(n_estimators=4, max_depth=3), X, y, TrainConfig(seed=1,
                                                                                 name="rf"))
    path = run_artifact(store, resolve("rf/1").run_id, "model/model.skops")
    with path.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ChecksumError, match=r"model\.skops was changed after"):
        reproduce("rf/1", X, y)
    assert _refs("rf") == ["rf/1"] and _nothing_running(store)


def _result(diff: float, metrics: dict | None = None, tolerance: float = 1e-6):
    return ReproduceResult(original="m/1", reproduction="m/2", run_id="r",
                           identical_weights=diff == 0.0, max_weight_difference=diff,
                           identical_metrics=not metrics, metric_differences=metrics or {},
                           tolerance=tolerance)


def test_verdicts():
    assert _result(0.0).verdict == "reproduced: identical weights, identical metrics"
    assert _result(5e-7).verdict == ("reproduced within tolerance: weights differ by at most "
                                     "5e-07 (tolerance 1e-06)")
    assert _result(1e-3).verdict == "not reproduced: weights differ by up to 0.001"
    assert _result(5e-7, {"loss": (0.5, 0.25)}).verdict == (
        "not reproduced: weights differ by up to 5e-07; loss 0.5 -> 0.25")
    assert _result(float("inf")).verdict.startswith("not reproduced: weights differ by up to inf")
    doc = _result(0.0, {"loss": (1.0, 2.0)}).to_dict()
    assert doc["metric_differences"] == {"loss": [1.0, 2.0]} and doc["diff"] is None
    assert np.isfinite(doc["tolerance"])
