"""``diff_versions`` on real versions in a real store, checked against direct computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import mlp, run_artifact
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression, Ridge

from aimodel_kernel.engine.core.errors import ChecksumError, InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.evaluation.metrics import evaluate
from aimodel_kernel.engine.store.registry import load_version, resolve
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.deltas import importance_shift, ordinal
from aimodel_kernel.engine.versions.diff import artifact_path, diff_versions
from aimodel_kernel.engine.versions.flips import classification_flips


def _source(C: float) -> dict[str, str]:
    return {"line": f"%train clf X y --name m  # C={C}",
            "cell": f"clf = LogisticRegression(C={C}, solver='liblinear')\n%train clf X y --name m"}


@pytest.fixture
def frame():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


@pytest.fixture
def pair(store, frame):
    """Versions m/1 (C=1.0) and m/2 (C=0.01) of a logistic regression, same data and seed."""
    X, y = frame
    models = []
    for C in (1.0, 0.01):
        clf = LogisticRegression(C=C, solver="liblinear")
        train(clf, X, y, TrainConfig(name="m", seed=0), source=_source(C))
        models.append(clf)
    return models


def test_what_changed_and_metric_deltas(pair, store):
    d = diff_versions("m/1", "m/2", log=False)
    assert (d.a, d.b) == ("m/1", "m/2")
    assert d.params == {"model.C": {"a": 1.0, "b": 0.01}}  # exactly C, nothing else
    cell = d.code["cell"]
    assert "-clf = LogisticRegression(C=1.0, solver='liblinear')" in cell
    assert "+clf = LogisticRegression(C=0.01, solver='liblinear')" in cell
    assert " %train clf X y --name m" in cell  # context line
    assert any(line.startswith("+%train") and "C=0.01" in line for line in d.code["magic"])
    assert d.data["same"] and d.data["a"]["columns"] == d.data["b"]["columns"]
    assert d.data["class_balance"]["0"] == {"a": 212, "b": 212, "a_share": 212 / 569,
                                            "b_share": 212 / 569}
    assert d.environment == {}
    assert d.lineage == {"a": [], "b": [], "relation": None}
    ma, mb = resolve("m/1").metrics, resolve("m/2").metrics
    assert set(d.metrics) == set(ma) | set(mb)
    for name, m in d.metrics.items():
        assert m["delta"] == pytest.approx(mb[name] - ma[name]), name
    assert d.metrics["train_accuracy"]["points"] and d.metrics["train_accuracy"]["higher_is_better"]
    ta, tb = (int(resolve(r).run_tags["aimodel.model_bytes"]) for r in ("m/1", "m/2"))
    assert d.model_size["delta"] == tb - ta
    delta_pt = (mb["train_accuracy"] - ma["train_accuracy"]) * 100
    assert d.summary.startswith(f"m/2 vs m/1: train accuracy {delta_pt:+.1f} pt")
    assert "1 parameter changed" in d.summary
    assert d.flips is None and d.logged_to is None
    assert set(d.timings) >= {"load", "predict", "compare"}
    json.dumps(d.to_dict(), allow_nan=False)


def test_flips_fixed_broke_and_logged_artifact(pair, store, frame):
    X, y = frame
    clf_a, clf_b = pair
    d = diff_versions("m/1", "m/2", X=X, y=y)
    pa, pb = clf_a.predict(X), clf_b.predict(X)
    changed = pa != pb
    f = d.flips
    assert f["n_flipped"] == changed.sum() > 0
    assert f["fixed"] == (changed & (pb == y)).sum()
    assert f["broke"] == (changed & (pa == y)).sum()
    assert f["fixed"] + f["broke"] + f["still_wrong"] == f["n_flipped"]
    assert np.asarray(f["matrix"]).sum() == f["n_flipped"]
    assert f["indices"] == np.flatnonzero(changed).tolist()
    assert f["accuracy_b"] == pytest.approx((pb == y).mean())
    assert f"{changed.sum()} of 569 predictions flipped ({f['fixed']} fixed, {f['broke']} broke)" \
        in d.summary
    assert d.logged_to == artifact_path("m/1", "m/2") == "diffs/m_1_vs_m_2.json"
    logged = json.loads(run_artifact(store, resolve("m/2").run_id, d.logged_to).read_text())
    assert logged["flips"] == f and logged["summary"] == d.summary
    assert d.timings["predict"] > 0


def test_evaluation_sections(pair, store, frame):
    X, y = frame
    results = [evaluate(clf, X[::3], y[::3], ci=True, n_boot=20) for clf in pair]
    d = diff_versions("m/1", "m/2", log=False)
    ea, eb = results
    acc = d.metrics["eval.accuracy"]
    assert acc["delta"] == pytest.approx(eb.metrics["accuracy"] - ea.metrics["accuracy"])
    assert acc["interval_a"] == list(ea.intervals["accuracy"])
    assert acc["interval_b"] == list(eb.intervals["accuracy"])
    assert d.metrics["eval.log_loss"]["higher_is_better"] is False
    recall = d.per_class["1"]["recall"]
    expected = eb.per_class["1"]["recall"] - ea.per_class["1"]["recall"]
    assert recall["delta"] == pytest.approx(expected)
    expected = np.asarray(eb.confusion) - np.asarray(ea.confusion)
    assert d.confusion == {"labels": [0, 1], "delta": expected.tolist()}
    assert d.summary.startswith("m/2 vs m/1: accuracy ")  # eval.accuracy is the headline


def test_importance_fairness_compression(pair, store):
    run_a, run_b = resolve("m/1").run_id, resolve("m/2").run_id
    features = ["mean radius", "mean texture", "mean area", "mean smoothness"]
    store.log_dict(run_a, {"method": "linear", "features": features,
                           "importance": [0.9, 0.5, 0.3, 0.1]}, "explain/importance.json")
    store.log_dict(run_b, {"method": "linear", "features": features,
                           "importance": [0.05, 0.5, 0.3, 0.6]}, "explain/importance.json")
    store.log_dict(run_a, {"summary": {"demographic_parity_difference": 0.2,
                                       "equalized_odds_ratio": 0.7}}, "fairness/report.json")
    store.log_dict(run_b, {"summary": {"demographic_parity_difference": 0.1,
                                       "equalized_odds_ratio": 0.9}}, "fairness/report.json")
    store.log_dict(run_a, {"variants": [{"name": "int8", "size_bytes": 1000,
                                         "latency_ms_p50": 2.0}]}, "compress/report.json")
    store.log_dict(run_b, {"variants": [{"name": "int8", "size_bytes": 800,
                                         "latency_ms_p50": 1.5, "backend": "onnx"},
                                        {"name": "pruned", "size_bytes": 700}]},
                   "compress/report.json")
    d = diff_versions("m/1", "m/2", log=False)
    imp = d.importance
    assert imp["headline"] == "'mean radius' fell from 1st to 4th"
    assert "'mean radius' fell from 1st to 4th" in d.summary
    moves = {m["feature"]: (m["rank_a"], m["rank_b"], m["change"]) for m in imp["moved"]}
    assert moves == {"mean radius": (1, 4, -3), "mean smoothness": (4, 1, 3)}
    assert imp["top_b"] == ["mean smoothness", "mean texture", "mean area", "mean radius"]
    dp = d.fairness["demographic_parity_difference"]
    assert dp["delta"] == pytest.approx(-0.1) and dp["higher_is_better"] is False
    assert d.fairness["equalized_odds_ratio"]["delta"] == pytest.approx(0.2)
    int8 = d.compression["variants"]["int8"]
    assert int8["size_bytes"]["delta"] == -200 and int8["latency_ms_p50"]["delta"] == -0.5
    assert "backend" not in int8 and d.compression["only_b"] == ["pruned"]


def test_importance_shift_and_ordinals_directly():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
    a = {"features": ["x", "y", "z"], "importance": [3, 2, 1]}
    assert importance_shift(a, a)["moved"] == [] and importance_shift(a, a)["headline"] is None
    assert importance_shift(a, {"features": ["x"], "importance": [1, 2]}) is None
    f = classification_flips(np.array(["a", "b", "c"]), np.array(["a", "c", "c"]), ["a", "b"],
                             np.array(["a", "c", "b"]))
    assert f["labels"] == ["a", "b", "c"] and f["n_flipped"] == 1 and f["fixed"] == 1


def test_lineage_and_different_models(pair, store, frame):
    X, y = frame
    clf = LogisticRegression(C=0.1, solver="liblinear")
    train(clf, X, y, TrainConfig(name="m", seed=0))
    store.set_tags(resolve("m/2").run_id, {"aimodel.parent": "m/1"})
    store.set_tags(resolve("m/3").run_id, {"aimodel.parent": "m/2"})
    d = diff_versions("m/1", "m/3", log=False)
    assert d.lineage["b"] == ["m/2", "m/1"] and d.lineage["a"] == []
    assert d.lineage["relation"] == "m/3 derives from m/1 (2 generations)"
    store.set_tags(resolve("m/1").run_id, {"aimodel.parent": "gone/4"})
    d = diff_versions("m/2", "m/3", log=False)
    assert d.lineage["a"] == ["m/1"] and d.lineage["unresolved"] == {"a": "gone/4", "b": "gone/4"}
    assert d.lineage["relation"] == "m/3 derives from m/2"
    # another registered model, another estimator class
    Xr, yr = X.iloc[:, :10], X.iloc[:, 10].to_numpy()
    train(Ridge(alpha=2.0), Xr, yr, TrainConfig(name="ridge", seed=0))
    d = diff_versions("m/1", "ridge", log=False)
    assert d.params["model.alpha"] == {"a": None, "b": 2.0, "only": "b"}
    assert d.params["model.C"]["only"] == "a"
    assert d.params["aimodel.task"] == {"a": "binary", "b": "regression"}
    assert not d.data["same"] and d.data["columns"]["removed"][:1] == ["radius error"]
    assert "different training data" in d.summary
    with pytest.raises(InputError, match="one is a classifier and the other a regressor"):
        diff_versions("m/1", "ridge", X=X, log=False)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_bad_input(pair, store, frame):
    X, y = frame
    with pytest.raises(NotFoundError, match="m has no version 9"):
        diff_versions("m/1", "m/9")
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        diff_versions("nope/1", "m/1")
    with pytest.raises(InputError, match=r"rows of shape \(5,\).*m/1 was trained on rows of shape"):
        diff_versions("m/1", "m/2", X=X.to_numpy()[:, :5])
    renamed = X.rename(columns={"mean radius": "radius"})
    with pytest.raises(InputError, match=r"missing \['mean radius'\].*not trained on \['radius'"):
        diff_versions("m/1", "m/2", X=renamed)
    with pytest.raises(InputError, match="has 569 rows but y has 10"):
        diff_versions("m/1", "m/2", X=X, y=y[:10])
    with pytest.raises(InputError, match="y was given without X"):
        diff_versions("m/1", "m/2", y=y)
    d = diff_versions("m/1", "m/2", X=X.to_numpy(), log=False)  # plain arrays: by shape
    assert d.flips["n_flipped"] > 0 and "fixed" not in d.flips


def test_tampered_model_file(pair, store, frame):
    X, _ = frame
    stored = run_artifact(store, resolve("m/2").run_id, "model") / "model.skops"
    with stored.open("ab") as f:
        f.write(b"\0")
    for kwargs in ({}, {"X": X}):
        with pytest.raises(ChecksumError, match=r"m/2: model\.skops was changed after it was"):
            diff_versions("m/1", "m/2", log=False, **kwargs)


def test_torch_versions(store, digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    for epochs in (1, 2):
        train(mlp(), X, y, TrainConfig(epochs=epochs, lr=1e-2, seed=0, checkpoint=False,
                                       name="d"))
    Xs, ys = X[:400], y[:400]
    d = diff_versions("d/1", "d/2", X=Xs, y=ys)
    assert d.params == {"train.epochs": {"a": 1, "b": 2}}
    with torch.no_grad():
        pa, pb = (load_version(r)(torch.from_numpy(Xs)).argmax(1).numpy() for r in ("d/1", "d/2"))
    changed = pa != pb
    assert d.flips["n_flipped"] == changed.sum()
    assert d.flips["fixed"] == (changed & (pb == ys)).sum()
    assert d.flips["broke"] == (changed & (pa == ys)).sum()
    assert np.asarray(d.flips["matrix"]).sum() == d.flips["n_flipped"]
    assert d.flips["labels"] == list(range(10))
    assert d.summary.startswith("d/2 vs d/1: loss ")
    json.dumps(d.to_dict(), allow_nan=False)


def test_section_metrics_stay_out_of_the_metric_deltas():
    from aimodel_kernel.engine.versions.deltas import metric_deltas

    a = {"eval.accuracy": 0.9, "compress.onnx.latency_ms_p50": 1.0, "explain.rows": 100.0}
    b = {"eval.accuracy": 0.95, "fairness.demographic_parity_difference": 0.1}
    deltas = metric_deltas(a, b)
    assert list(deltas) == ["eval.accuracy"]  # the others have sections of their own
    assert deltas["eval.accuracy"]["delta"] == pytest.approx(0.05)
