"""DiffReport: the MIME bundle of %diff (text, HTML with sections, PNG, our JSON type)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from aimodel_kernel.display import view
from aimodel_kernel.display.diff_report import DiffReport
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.deltas import importance_shift, metric_deltas
from aimodel_kernel.engine.versions.diff import VersionDiff, diff_versions, summarize
from aimodel_kernel.engine.versions.flips import classification_flips

MIME = "application/vnd.aimodel.diff.v1+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _full_diff() -> VersionDiff:
    """A diff with every section filled, built from the engine's own helpers (no store)."""
    import numpy as np

    rng = np.random.default_rng(0)
    pa = rng.integers(0, 3, 200)
    pb = np.where(rng.random(200) < 0.2, rng.integers(0, 3, 200), pa)
    y = np.where(rng.random(200) < 0.8, pb, pa)
    d = VersionDiff("m/1", "m/2", "run-a", "run-b")
    d.params = {"model.C": {"a": 1.0, "b": 0.01}, "model.tol": {"a": None, "b": 1e-4, "only": "b"}}
    d.code = {"magic": [], "cell": ["--- m/1 cell", "+++ m/2 cell", "@@ -1 +1 @@",
                                     "-clf = LR(C=1.0)", "+clf = LR(C=0.01)"]}
    d.data = {"same": False, "a": {"sha256": "a" * 64, "shape": [100, 4]},
              "b": {"sha256": "b" * 64, "shape": [120, 4]},
              "class_balance": {"0": {"a": 50, "b": 70, "a_share": 0.5, "b_share": 70 / 120}}}
    d.environment = {"scikit-learn": {"a": "1.5.0", "b": "1.6.1"}}
    d.lineage = {"a": [], "b": ["m/1"], "relation": "m/2 derives from m/1"}
    d.metrics = metric_deltas({"eval.accuracy": 0.90, "eval.log_loss": 0.30, "fit_seconds": 0.1},
                              {"eval.accuracy": 0.912, "eval.log_loss": 0.25, "fit_seconds": 0.2},
                              {"intervals": {"accuracy": [0.85, 0.94]}},
                              {"intervals": {"accuracy": [0.87, 0.95]}})
    d.per_class = {"0": {"recall": {"a": 0.8, "b": 0.9, "delta": 0.1},
                         "support": {"a": 10, "b": 10, "delta": 0}}}
    d.confusion = {"labels": [0, 1], "delta": [[2, -2], [1, -1]]}
    d.flips = classification_flips(pa, pb, [0, 1, 2], y)
    d.importance = importance_shift(
        {"features": ["mean radius", "b", "c", "d"], "importance": [4, 3, 2, 1]},
        {"features": ["mean radius", "b", "c", "d"], "importance": [1, 3, 2, 4]})
    d.fairness = {"demographic_parity_difference": {"a": 0.2, "b": 0.1, "delta": -0.1,
                                                    "higher_is_better": False}}
    d.compression = {"variants": {"int8": {"size_bytes": {"a": 1000, "b": 800, "delta": -200,
                                                         "higher_is_better": False}}},
                     "only_a": [], "only_b": []}
    d.model_size = {"a": 1000, "b": 1500, "delta": 500, "ratio": 1.5}
    d.summary = summarize(d)
    return d


def test_every_section_renders():
    d = _full_diff()
    assert d.summary == (f"m/2 vs m/1: accuracy +1.2 pt, {d.flips['n_flipped']} of 200 predictions "
                         f"flipped ({d.flips['fixed']} fixed, {d.flips['broke']} broke), "
                         "'mean radius' fell from 1st to 4th, 2 parameters changed, "
                         "different training data")
    report = DiffReport(d)
    bundle = report._repr_mimebundle_()
    assert {"text/plain", "text/html", "image/png", MIME} <= set(bundle)
    assert json.loads(json.dumps(bundle[MIME], allow_nan=False))["data"] == d.to_dict()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    text = bundle["text/plain"]
    assert text.splitlines()[0] == d.summary
    for title in ("Changed parameters (2)", "Code", "Data (changed)", "Environment (1)",
                  "Lineage", "Metrics", "Per class", "Confusion change", "Prediction flips",
                  "Importance ranking", "Fairness", "Compression", "Model file size"):
        assert f"== {title}" in text, title
    assert "+clf = LR(C=0.01)" in text and "m/2 derives from m/1" in text
    assert "+1.2 pt" in text and "0.8500 – 0.9400" in text
    shown = ", ".join(str(i) for i in d.flips["indices"][:20])
    assert f"rows: {shown} … ({d.flips['n_flipped'] - 20} more)" in text
    html = bundle["text/html"]
    assert html.count("<details open>") == 13 and "<img" in html
    assert "<del>1</del>" in html and '<td class="good">0.0100</td>' in html
    assert '<span class="add">+clf = LR(C=0.01)</span>' in html
    assert '<span class="rem">-clf = LR(C=1.0)</span>' in html
    assert '<td class="good">+1.2 pt</td>' in html  # accuracy up
    assert '<td class="good">-0.05</td>' in html  # log loss down is good
    assert '<td class="bad">↓3</td>' in html and '<td class="good">↑3</td>' in html
    assert report.a == "m/1" and report.flips is d.flips  # attributes come from the result
    # the JSON view: the same sections, deltas as rich cells, the code as a diff
    payload = bundle[MIME]
    view.validate(payload)
    assert payload["summary"] == d.summary and payload["status"] == "ok"
    by_title = {sec["title"]: sec for sec in payload["sections"]}
    assert by_title["Code"]["type"] == "diff" and "+clf = LR(C=0.01)" in by_title["Code"]["text"]
    metrics = by_title["Metrics (2 changed)"]["rows"]
    assert metrics[0][3] == {"value": pytest.approx(0.012), "text": "+1.2 pt", "status": "good"}
    assert metrics[1][3]["status"] == "good"  # log loss down
    assert metrics[2][3]["status"] == "bad"  # slower fit, as the HTML colours it
    assert by_title["flip matrix (A's class → B's class)"]["sortable"] is False


def test_unchanged_sections_are_closed_and_nothing_to_plot():
    d = VersionDiff("m/1", "m/1", "run", "run")
    d.code = {"magic": [], "cell": []}
    d.lineage = {"a": [], "b": [], "relation": None}
    d.data = {"same": True, "a": {"sha256": "a" * 64, "shape": [10, 2]},
              "b": {"sha256": "a" * 64, "shape": [10, 2]}}
    d.summary = summarize(d)
    assert d.summary == "m/1 vs m/1: the same run"
    report = DiffReport(d)
    html = report.html()
    assert "<details open>" not in html and html.count("<details>") == 6
    assert "no change" in html and "same training data" in report.text()
    assert report.figure_png() is None
    assert "image/png" not in report._repr_mimebundle_()
    sections = report.payload()["sections"]
    assert sections and not any(sec["open"] for sec in sections)
    assert {sec["text"] for sec in sections if sec["type"] == "text"} >= {"no change"}


def test_real_diff_bundle_renders_fast(store):
    X, y = load_breast_cancer(return_X_y=True)
    for C in (1.0, 0.05):
        train(LogisticRegression(C=C, solver="liblinear"), X, y, TrainConfig(name="m", seed=0))
    d = diff_versions("m/1", "m/2", X=X, y=y)
    report = DiffReport(d)
    report.figure_png()  # warm matplotlib
    start = time.perf_counter()
    bundle = DiffReport(d)._repr_mimebundle_()
    assert time.perf_counter() - start < 1.0  # target 0.5 s; slack for a shared CPU
    assert bundle[MIME]["data"]["flips"]["n_flipped"] == d.flips["n_flipped"]
    assert "logged as diffs/m_1_vs_m_2.json on m/2" in bundle["text/html"]
    assert bundle["text/plain"].startswith("m/2 vs m/1: train accuracy")


@pytest.mark.parametrize("kind", ["regression"])
def test_regression_flips_text(kind):
    from aimodel_kernel.engine.versions.flips import regression_changes

    d = VersionDiff("r/1", "r/2", "a", "b")
    d.flips = regression_changes([1.0, 2.0, 3.0], [1.0, 2.5, 2.0], [1.0, 2.4, 3.0])
    d.summary = summarize(d)
    assert d.summary.startswith("r/2 vs r/1: 2 of 3 predictions changed")
    assert "(1 closer, 1 further from y)" in d.summary
    text = DiffReport(d).text()
    assert "closer to y 1, further 1" in text and "max 1" in text


def test_metrics_recorded_on_one_side_only_are_not_counted_as_changed():
    d = VersionDiff("m/1", "m/2", "run-a", "run-b")
    d.metrics = metric_deltas({"train_accuracy": 0.9, "eval.accuracy": 0.9, "eval.r2": 0.5},
                              {"train_accuracy": 0.9, "eval.accuracy": 0.92}, {}, {})
    d.summary = summarize(d)
    payload = DiffReport(d).payload()
    titles = [sec["title"] for sec in payload["sections"]]
    assert "Metrics (1 changed, 1 only on m/1)" in titles, titles
    d.metrics = metric_deltas({"train_accuracy": 0.9}, {"train_accuracy": 0.9, "eval.r2": 0.5},
                              {}, {})
    titles = [sec["title"] for sec in DiffReport(d).payload()["sections"]]
    assert "Metrics (0 changed, 1 only on m/2)" in titles, titles


def test_view_section_titles_are_unique():
    titles = [sec["title"] for sec in DiffReport(_full_diff()).payload()["sections"]]
    assert len(titles) == len(set(titles)), titles
