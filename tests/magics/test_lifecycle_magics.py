"""``%reproduce``, ``%promote`` and ``%diff`` in a real in-process IPython."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import all_runs, clone_state, mlp, run_artifact, same_state, weights_equal
from IPython.core.error import UsageError
from sklearn.ensemble import RandomForestClassifier

from aimodel_kernel.display.diff_report import DiffReport
from aimodel_kernel.display.reproduce_report import ReproduceReport
from aimodel_kernel.engine.store.registry import list_versions, load_version, resolve
from aimodel_kernel.engine.store.tracking import get_store

TRAIN = "%train net X y --epochs 2 --seed 3 --deterministic --name m --quiet"


def _refs(name: str) -> list[str]:
    return [v.ref for v in list_versions(name).versions]


def _unchanged(store, refs: list[str], n_runs: int) -> None:
    """No new version, no new run (deleted ones included), nothing left RUNNING."""
    runs = all_runs(store)
    assert _refs("m") == refs
    assert len(runs) == n_runs
    assert not [run for run in runs if run.info.status == "RUNNING"]


@pytest.fixture
def torch_m(ip, digits):
    """Version ``m/1``: ``net`` trained deterministically on 300 digits named ``X`` and ``y``."""
    pytest.importorskip("torch")
    X, y = digits
    ip.user_ns.update(net=mlp(), X=X[:300], y=y[:300])
    ip.run_cell(TRAIN).raise_error()
    return ip


def test_reproduce_deterministic_torch_run(torch_m):
    ip = torch_m
    net = ip.user_ns["net"]
    before = clone_state(net)
    r = ip.run_line_magic("reproduce", "m/1")
    assert isinstance(r, ReproduceReport)
    assert r.identical_weights and r.identical_metrics and r.max_weight_difference == 0.0
    assert r.verdict == "reproduced: identical weights, identical metrics"
    assert r.original == "m/1" and r.reproduction == "m/2" and r.notes == []
    assert ip.user_ns["net"] is net and weights_equal(before, clone_state(net))
    v2 = resolve("m/2")
    assert v2.tags["aimodel.parent"] == "m/1" and v2.run_tags["aimodel.reproduces"] == "m/1"
    assert v2.run_tags["aimodel.reproduced_by"] == "%reproduce m/1"
    store = get_store()
    stored = [run_artifact(store, resolve(ref).run_id, "model/model.safetensors").read_bytes()
              for ref in ("m/1", "m/2")]
    assert stored[0] == stored[1]
    # the reproduction records the original's code, and its diff shows no code change
    assert v2.run_tags["aimodel.magic"] == TRAIN
    # the reproduction trains unnamed and is registered once it matches: only its train.name
    # (the registered model it was trained into) is not the original's
    assert r.diff.code == {"magic": [], "cell": []}
    assert set(r.diff.params) <= {"train.name"}
    assert r.diff.lineage["relation"] == "m/2 derives from m/1"
    text = r._repr_mimebundle_()["text/plain"]
    assert text.startswith("m/2 vs m/1: reproduced: identical weights, identical metrics")
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["verdict"] == r.verdict and doc["diff"]["b"] == "m/2"


def test_reproduce_sklearn_forest(ip, cancer):
    ip.user_ns["rf"] = RandomForestClassifier(n_estimators=8, max_depth=4)
    ip.run_cell("%train rf X y --seed 7 --name forest").raise_error()
    r = ip.run_line_magic("reproduce", "forest/1 --name forest-again")
    assert r.reproduction == "forest-again/1" and r.identical_metrics and r.identical_weights
    assert r.verdict == "reproduced: identical weights, identical metrics"
    first, second = load_version("forest/1"), load_version("forest-again/1")
    assert same_state(first, second)
    assert np.array_equal(first.predict_proba(cancer[0]), second.predict_proba(cancer[0]))


def test_non_deterministic_run_reports_honestly(torch_m):
    ip = torch_m
    ip.run_cell("%train net X y --epochs 2 --seed 4 --name nd --quiet").raise_error()
    r = ip.run_line_magic("reproduce", "nd/1 --tolerance 0")
    assert not r.deterministic
    assert r.notes == ["nd/1 was not trained with --deterministic; small differences are expected"]
    assert r.tolerance == 0.0
    assert r.identical_weights == (r.max_weight_difference == 0.0) == (r.differences == [])
    if r.identical_weights and r.identical_metrics:
        assert r.verdict == "reproduced: identical weights, identical metrics"
        assert r.reproduction == "nd/2" and _refs("nd") == ["nd/1", "nd/2"]
    else:  # which weights differ, by how much; and nothing registered
        assert r.verdict.startswith("not reproduced: ")
        assert r.identical_weights or "differs by up to" in r.verdict
        assert r.reproduction is None and _refs("nd") == ["nd/1"] and r.diff is None
        assert r.notes[-1].startswith("nothing was registered")
    assert r.notes[0] in r._repr_mimebundle_()["text/plain"]
    assert not [run for run in all_runs(get_store()) if run.info.status == "RUNNING"]


def test_reproduce_refusals_change_nothing(torch_m):
    ip = torch_m
    store = get_store()
    X = ip.user_ns["X"]
    n_runs = len(all_runs(store))
    changed = X.copy()
    changed[0, 0] += 1.0
    ip.user_ns.update(X2=changed, small=mlp(hidden=16))
    with pytest.raises(UsageError, match="this data is not what m/1 was trained on"):
        ip.run_line_magic("reproduce", "m/1 --data X2 y")
    with pytest.raises(UsageError, match="Sequential does not have the architecture of m/1"):
        ip.run_line_magic("reproduce", "m/1 --model small")
    with pytest.raises(UsageError, match=r"m has no version 7 \(versions: 1\)"):
        ip.run_line_magic("reproduce", "m/7")
    with pytest.raises(UsageError, match="no registered model 'nope'"):
        ip.run_line_magic("reproduce", "nope/1")
    with pytest.raises(UsageError, match=r"m/1 needs 'missing' \(model\), which is not defined"):
        ip.run_line_magic("reproduce", "m/1 --model missing")
    _unchanged(store, ["m/1"], n_runs)

    saved = {k: ip.user_ns.pop(k) for k in ("X", "y")}
    with pytest.raises(UsageError, match=r"needs 'X' \(X\), which is not defined here.*--data"):
        ip.run_line_magic("reproduce", "m/1")
    ip.user_ns["X"] = saved["X"]
    with pytest.raises(UsageError, match=r"needs 'y' \(y\).*pass --data X y"):
        ip.run_line_magic("reproduce", "m/1")
    ip.user_ns["y"] = saved["y"]
    _unchanged(store, ["m/1"], n_runs)

    stored = run_artifact(store, resolve("m/1").run_id, "model/model.safetensors")
    with stored.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(UsageError, match=r"model\.safetensors was changed after it was saved"):
        ip.run_line_magic("reproduce", "m/1")
    _unchanged(store, ["m/1"], n_runs)


CREDIT = """
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from aimodel_kernel.engine.fairness.datasets import load_german_credit

Xc, yc = load_german_credit()
def pipeline(final):
    categories = ["sex", "housing", "saving_accounts", "checking_account", "purpose", "age_band"]
    numbers = ["job", "credit_amount", "duration", "age"]
    return make_pipeline(make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), categories), (StandardScaler(), numbers)), final)
credit = pipeline(RandomForestClassifier(n_estimators=10, max_depth=5))
"""


def test_reproduce_a_one_hot_pipeline_trained_without_seed(ip):
    ip.run_cell(CREDIT).raise_error()
    ip.run_cell("%train credit Xc yc --val 0.2 --name credit --quiet").raise_error()
    r = ip.run_line_magic("reproduce", "credit/1")
    assert r.verdict == "reproduced: identical weights, identical metrics"
    assert r.reproduction == "credit/2" and r.differences == [] and r.diff is not None
    assert r._repr_mimebundle_()["text/plain"].startswith(
        "credit/2 vs credit/1: reproduced: identical weights, identical metrics")
    assert r.payload()["status"] == "ok"
    titles = [s["title"] for s in r.sections()]
    assert titles[0] == "Comparison" and "What differs" not in titles


def test_a_reproduction_that_differs_registers_nothing(ip):
    ip.run_cell(CREDIT).raise_error()
    ip.run_cell("lr = pipeline(LogisticRegression(C=1.0, max_iter=500))\n"
                "other = pipeline(LogisticRegression(C=0.1, max_iter=500))").raise_error()
    ip.run_cell("%train lr Xc yc --name credit-lr --quiet").raise_error()
    store = get_store()
    n_runs = len(all_runs(store))
    r = ip.run_line_magic("reproduce", "credit-lr/1 --model other")
    assert isinstance(r, ReproduceReport) and not r.reproduced
    assert r.reproduction is None and r.diff is None
    assert [v.ref for v in list_versions("credit-lr").versions] == ["credit-lr/1"]
    assert len(all_runs(store)) == n_runs + 1
    assert not [run for run in all_runs(store) if run.info.status == "RUNNING"]
    assert not hasattr(ip.user_ns["other"][-1], "coef_")  # the notebook's object untouched
    bundle = r._repr_mimebundle_()
    text = bundle["text/plain"]
    assert text.startswith("the retrained model vs credit-lr/1: not reproduced: "
                           "steps[logisticregression].C differs by 0.9 (1 vs 0.1)")
    assert "steps[logisticregression].coef_" in text and "differs by up to" in text
    assert "nothing was registered" in text
    payload = r.payload()
    assert payload["status"] == "warning"
    table = next(s for s in payload["sections"] if s["title"] == "What differs")
    assert ["steps[logisticregression].C", "differs by 0.9 (1 vs 0.1)"] in table["rows"]
    assert "steps[logisticregression].coef_" in bundle["text/html"]
    with pytest.raises(UsageError, match="credit-lr/1 is a Pipeline; pass an estimator of that "
                                         "class, not a LogisticRegression"):
        ip.run_line_magic("reproduce", "credit-lr/1 --model clf")
    with pytest.raises(UsageError, match=r"needs 'nothing' \(model\), which is not defined"):
        ip.run_line_magic("reproduce", "credit-lr/1 --model nothing")
    assert len(all_runs(store)) == n_runs + 1


def test_refusals_are_one_line(torch_m):
    ip = torch_m
    ip.user_ns["X2"] = ip.user_ns["X"][:10]
    for line in ("m/1 --data X2 y", "m/3", "m/1 --bogus"):
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("reproduce", line)
        assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_promote_and_diff_by_alias(torch_m):
    ip = torch_m
    ip.run_line_magic("reproduce", "m/1")
    shown = ip.run_line_magic("promote", "m/1 champion")
    assert [v.aliases for v in shown.versions] == [["champion"], []]
    listed = ip.run_line_magic("versions", "m")
    assert listed.versions[0].aliases == ["champion"] and listed.versions[1].aliases == []
    d = ip.run_line_magic("diff", "m@champion m/2 --no-log")
    assert (d.a, d.b) == ("m/1", "m/2")
    for line, message in (("m/1 v1", "invalid alias 'v1'"),
                          ("m/1 bad-alias!", "invalid alias 'bad-alias!'"),
                          ("m/9 staging", "m has no version 9"),
                          ("gone/1 staging", "no registered model 'gone'")):
        with pytest.raises(UsageError, match=message):
            ip.run_line_magic("promote", line)
    with pytest.raises(UsageError, match="invalid alias '\"bad alias\"'"):
        ip.run_line_magic("promote", 'm/1 "bad alias"')
    with pytest.raises(UsageError, match="unrecognized arguments: alias"):
        ip.run_line_magic("promote", "m/1 bad alias")
    assert [v.aliases for v in list_versions("m").versions] == [["champion"], []]
    ip.run_line_magic("promote", "m/2 champion")  # an alias moves
    assert resolve("m@champion").ref == "m/2"


@pytest.fixture
def two_forests(ip):
    """Versions ``c/1`` and ``c/2`` of a small forest on the breast-cancer data."""
    for depth in (1, 4):
        ip.user_ns["rf"] = RandomForestClassifier(n_estimators=6, max_depth=depth)
        ip.run_line_magic("train", "rf X y --seed 0 --name c")
    return ip


def test_diff_magic_flips_and_logging(two_forests, cancer):
    ip = two_forests
    store = get_store()
    X, y = cancer
    d = ip.run_line_magic("diff", "c/1 c/2 --data X y --no-log")
    assert isinstance(d, DiffReport)
    pa, pb = load_version("c/1").predict(X), load_version("c/2").predict(X)
    changed = pa != pb
    assert d.flips["n_flipped"] == changed.sum() > 0
    assert d.flips["fixed"] == (changed & (pb == y)).sum()
    assert d.flips["broke"] == (changed & (pa == y)).sum()
    assert d.logged_to is None
    run_b = resolve("c/2").run_id
    assert store.artifact(run_b, "diffs") is None
    assert isinstance(d.summary, str) and d.summary.startswith("c/2 vs c/1: ")
    doc = d.to_dict()
    assert json.loads(json.dumps(doc))["summary"] == d.summary
    assert doc["params"] == {"model.max_depth": {"a": 1, "b": 4}}

    ip.run_cell("d = %diff c/1 c/2").raise_error()
    logged = ip.user_ns["d"]
    assert logged.logged_to == "diffs/c_1_vs_c_2.json"
    saved = json.loads(run_artifact(store, run_b, logged.logged_to).read_text())
    assert saved["summary"] == logged.summary and saved["flips"] is None
    assert store.artifact(resolve("c/1").run_id, "diffs") is None  # only on B's run


def test_diff_magic_usage_errors(two_forests):
    ip = two_forests
    with pytest.raises(UsageError, match=r"unrecognized arguments: --bogus.*see %diff\? for"):
        ip.run_line_magic("diff", "c/1 c/2 --bogus")
    with pytest.raises(UsageError, match="--data takes X and optionally y"):
        ip.run_line_magic("diff", "c/1 c/2 --data X y y")
    with pytest.raises(UsageError, match="--data X 'nothing' is not defined"):
        ip.run_line_magic("diff", "c/1 c/2 --data nothing")
    with pytest.raises(UsageError, match="c has no version 3"):
        ip.run_line_magic("diff", "c/1 c/3")
    assert get_store().artifact(resolve("c/2").run_id, "diffs") is None


@pytest.mark.parametrize("name", ["reproduce", "diff", "promote"])
def test_help_has_examples(ip, name):
    magic = ip.find_line_magic(name)
    assert "Examples" in magic.__doc__ and f"%{name} " in magic.__doc__
