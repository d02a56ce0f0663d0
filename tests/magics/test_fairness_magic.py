"""``%fairness`` in a real in-process IPython: the audit logged on the ``%train`` run, the
mitigated child version, and every bad input as a one-line ``UsageError`` that changes nothing."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest
from conftest import all_runs, run_artifact, same_state
from IPython.core.error import UsageError

from aimodel_kernel.display.fairness_report import FairnessReport
from aimodel_kernel.engine.fairness.mitigated_models import GroupThresholdClassifier
from aimodel_kernel.engine.store.registry import list_versions, load_version, resolve
from aimodel_kernel.engine.store.tracking import get_store

pytest.importorskip("fairlearn")

SETUP = """
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC
from aimodel_kernel.engine.fairness.datasets import (GERMAN_CATEGORICAL, GERMAN_NUMERIC,
                                            load_german_credit)

X, y = load_german_credit()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
encode = lambda: make_column_transformer(
    (OneHotEncoder(handle_unknown="ignore"), list(GERMAN_CATEGORICAL)),
    (StandardScaler(), list(GERMAN_NUMERIC)))
clf = make_pipeline(encode(), LogisticRegression(max_iter=1000))
svm = make_pipeline(encode(), LinearSVC())
knn = make_pipeline(encode(), KNeighborsClassifier())
reg = make_pipeline(encode(), Ridge())
y_amount = X_train["credit_amount"].to_numpy() / 1000.0
men = (X_test["sex"] == "male").to_numpy()
X_men, y_men = X_test[men], y_test[men]
grp = (X_test["age"].to_numpy() >= 35).astype(int)
grp_short = grp[:10]
"""


@pytest.fixture
def credit(ip):
    """German credit split, ``credit/1`` trained from ``clf``, and models for bad input."""
    ip.run_cell(SETUP).raise_error()
    ip.run_cell("%train clf X_train y_train --name credit --seed 0").raise_error()
    ip.run_cell("%train svm X_train y_train --name credit-svm --seed 0").raise_error()
    ip.run_cell("knn.fit(X_train, y_train); reg.fit(X_train, y_amount)").raise_error()
    return ip


def test_audit_logged_on_the_train_run(credit):
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    ip = credit
    r = ip.run_line_magic("fairness", "clf X_test y_test --sensitive sex")
    assert isinstance(r, FairnessReport)
    clf, X_test, y_test = (ip.user_ns[k] for k in ("clf", "X_test", "y_test"))
    pred, sex = clf.predict(X_test), X_test["sex"]
    assert r.summary["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_test, pred, sensitive_features=sex), abs=1e-12)
    assert r.summary["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_test, pred, sensitive_features=sex), abs=1e-12)
    assert [g["group"] for g in r.groups] == ["female", "male"]
    assert sum(g["count"] for g in r.groups) == len(y_test) == r.n_samples
    # the MIME bundle: text, HTML with the failing checks marked, a PNG, our JSON
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png",
                           "application/vnd.aimodel.fairness.v1+json"}
    payload = json.loads(json.dumps(bundle["application/vnd.aimodel.fairness.v1+json"]))
    doc = payload["data"]
    assert payload["summary"] == bundle["text/plain"].splitlines()[0]
    checks = payload["sections"][0]
    verdicts = [row[-1] for row in checks["rows"][:len(r.checks)]]
    assert sum(v["status"] == "bad" for v in verdicts) == sum(c["passed"] is False
                                                              for c in r.checks)
    assert payload["status"] == ("warning" if r.failed else "ok")
    assert doc["summary"]["demographic_parity_ratio"] == pytest.approx(
        r.summary["demographic_parity_ratio"])
    assert doc["sensitive"] == ["sex"] and doc["mitigation"] is None
    failing = sum(c["passed"] is False for c in r.checks)
    assert bundle["text/html"].count('<tr class="fail">') == failing
    assert bundle["text/plain"].startswith("Pipeline on 300 rows by sex (2 groups; binary")
    # logged on credit/1's run: metrics, the report %diff reads, the plots
    record = resolve("credit/1")
    assert r.logged and r.run_id == record.run_id
    for name, value in r.summary.items():
        assert record.metrics[f"fairness.{name}"] == pytest.approx(value)
    store = get_store()
    report = json.loads(run_artifact(store, record.run_id, "fairness/report.json").read_text())
    assert report["summary"] == pytest.approx(r.summary) and report["audits"]["sex"]
    assert run_artifact(store, record.run_id, "fairness/plots.png").read_bytes()[:4] == b"\x89PNG"
    versions = ip.run_line_magic("versions", "credit")
    assert "fairness" in versions._repr_mimebundle_()["text/plain"]


def test_intersectional_audit_with_intervals_and_an_array_variable(credit):
    ip = credit
    r = ip.run_line_magic("fairness", "clf X_test y_test --sensitive sex,age_band --min-group 10 "
                                      "--ci --n-boot 50 --no-log")
    assert [g["group"] for g in r.groups][:4] == ["female, <25", "female, 25-34",
                                                  "female, 35-49", "female, 50+"]
    assert set(r.intervals["summary"]) == set(r.summary) and len(r.intervals["groups"]) == 8
    assert not r.logged and "fairness.accuracy" not in resolve("credit/1").metrics
    r = ip.run_line_magic("fairness", "clf X_test y_test --sensitive grp --no-log")
    assert r.sensitive == ["grp"] and [g["group"] for g in r.groups] == ["0", "1"]


def test_threshold_mitigation_makes_a_child_version(credit):
    ip = credit
    clf = ip.user_ns["clf"]
    state = copy.deepcopy(clf.__dict__)
    r = ip.run_line_magic("fairness", "clf X_test y_test --sensitive age_band --mitigate "
                                      "threshold --name credit-fair --fit-data X_train y_train")
    m = r.mitigation
    assert m.ref == "credit-fair/1" and m.parent == "credit/1"
    assert m.after["demographic_parity_difference"] < m.before["demographic_parity_difference"]
    text = r._repr_mimebundle_()["text/plain"]
    assert "Mitigation: threshold (demographic_parity), fitted on 700 fit rows; registered " \
           "credit-fair/1 (parent credit/1)" in text
    html = r._repr_mimebundle_()["text/html"]
    assert "Before / after" in html and '<td class="good">' in html
    assert same_state(clf.__dict__, state)  # the original model is untouched
    record = resolve("credit-fair/1")
    assert record.tags["aimodel.parent"] == "credit/1"
    assert record.run_tags["aimodel.magic"].startswith("%fairness clf X_test")
    X_test = ip.user_ns["X_test"]
    loaded = load_version("credit-fair/1")
    assert isinstance(loaded, GroupThresholdClassifier)
    assert np.array_equal(loaded.predict(X_test), m.model.predict(X_test))
    # the mitigated model's run has its own fairness report: %diff shows the change, for
    # audits of the same sensitive feature on both sides
    d = ip.run_line_magic("diff", "credit/1 credit-fair/1")
    change = d.fairness["age_band: demographic_parity_difference"]
    assert change["delta"] == pytest.approx(m.after["demographic_parity_difference"]
                                            - m.before["demographic_parity_difference"])
    assert d.lineage["relation"] == "credit-fair/1 derives from credit/1"
    # the mitigated model evaluates like any model and logs onto its own run
    ip.user_ns["fair"] = m.model
    e = ip.run_line_magic("evaluate", "fair X_test y_test")
    assert e.run_id == record.run_id and e.metrics["accuracy"] == pytest.approx(
        m.after["accuracy"])


def _snapshot(ip):
    store = get_store()
    runs = all_runs(store)
    return (sorted(v.ref for v in list_versions().versions),
            sorted((r.info.run_id, r.info.status, tuple(sorted(r.data.metrics)))
                   for r in runs),
            {k: copy.deepcopy(ip.user_ns[k].__dict__) for k in ("clf", "svm", "knn", "reg")})


BAD = [
    ("clf X_test y_test --sensitive gender",
     r"^X_test has no column 'gender' \(its columns: sex, job, housing, saving_accounts"),
    ("clf X_men y_men --sensitive sex", r"has a single group \('male'\) in these 209 rows"),
    ("clf X_test y_test --sensitive sex,age_band --min-group 30",
     r"groups are smaller than --min-group 30 and cannot be measured: 'female, 50\+' "
     r"\(11 rows\), 'female, 35-49' \(13 rows\)"),
    ("clf X_test y_test --sensitive grp_short", r"'grp_short' has 10 values but X_test has 300"),
    ("svm X_test y_test --sensitive sex --mitigate threshold",
     r"--mitigate threshold needs predict_proba; Pipeline has none: use --mitigate reduction"),
    ("knn X_test y_test --sensitive sex --mitigate reduction",
     r"--mitigate reduction refits with sample weights and Pipeline.fit takes no sample_weight"),
    ("reg X_test y_test --sensitive sex --task binary",
     r"classification fairness metrics .* need a classifier; Pipeline is a regression model"),
    ("reg X_train y_amount --sensitive sex --mitigate threshold",
     r"--mitigate needs a binary classifier; Pipeline is a regression model"),
    ("clf X_test y_test --sensitive sex --constraint equalized_odds",
     r"--constraint applies with --mitigate"),
    ("clf X_test y_test --sensitive sex --ratio-threshold 1.5",
     r"--ratio-threshold must be in \(0, 1\]"),
    ("clf X_test y_test --sensitive sex --mitigate threshold --name 'bad name'",
     r"invalid model name"),
    ("clf X_test y_test --sensitive sex --mitigate threshold --fit-data X_train",
     r"--fit-data takes X_train y_train"),
]


def test_bad_input_is_a_usage_error_and_changes_nothing(credit):
    # one shell for every case (a fixture per case would cost a second each)
    for line, message in BAD:
        before = _snapshot(credit)
        with pytest.raises(UsageError, match=message) as caught:
            credit.run_line_magic("fairness", line)
        assert "\n" not in str(caught.value), line
        after = _snapshot(credit)
        assert after[:2] == before[:2], line  # no version, run or metric; nothing RUNNING
        for name, state in before[2].items():
            assert same_state(after[2][name], state), (line, name)


def test_fairlearn_missing_is_a_usage_error(credit, monkeypatch):
    monkeypatch.setitem(sys.modules, "fairlearn", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"^fairlearn is needed for fairness metrics but is not "
                                         r"installed; run: pip install 'aimodel-kernel\[fairness"):
        credit.run_line_magic("fairness", "clf X_test y_test --sensitive sex")


def test_help_has_examples(ip):
    help_text = ip.magics_manager.magics["line"]["fairness"].__doc__
    assert "Examples" in help_text and "%fairness clf X_test y_test --sensitive sex" in help_text
    assert "--mitigate" in help_text and "--ratio-threshold" in help_text
