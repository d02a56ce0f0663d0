"""EvaluationReport: the MIME bundle of %evaluate (text, HTML, PNG, our JSON type)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aimodel_kernel.display.evaluation_report import EvaluationReport
from aimodel_kernel.engine.core.data import TaskInfo
from aimodel_kernel.engine.evaluation.metrics import evaluate, evaluate_predictions

MIME = "application/vnd.aimodel.evaluation.v1+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(bundle: dict) -> bytes:
    return base64.b64decode(bundle["image/png"])


@pytest.fixture(scope="module")
def binary_result():
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:400], y[:400])
    return evaluate(model, X[400:], y[400:], cv=3, ci=True, n_boot=30)


def test_binary_bundle_has_every_representation(binary_result):
    report = EvaluationReport(binary_result)
    bundle = report._repr_mimebundle_()
    assert {"text/plain", "text/html", "image/png", MIME} <= set(bundle)
    assert _png(bundle).startswith(PNG_MAGIC)
    assert json.loads(json.dumps(bundle[MIME], allow_nan=False))["data"] == binary_result.to_dict()
    text = bundle["text/plain"]
    first = text.splitlines()[0]
    assert first.startswith("Pipeline on 169 rows (binary): accuracy 0.9")
    assert "ROC AUC" in first and "3-fold CV" in first
    assert "95% CI" in text and "CV mean ± std (3 folds)" in text
    html = bundle["text/html"]
    for part in ("Metrics", "Per class", "Confusion matrix", "95% CI", "CV mean", "<img"):
        assert part in html
    assert report.metrics is binary_result.metrics  # attributes come from the result
    assert report.png() is report.png()  # rendered once


def test_multiclass_and_regression_reports():
    X, y = load_digits(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X[:1200], y[:1200])
    bundle = EvaluationReport(evaluate(clf, X[1200:], y[1200:]))._repr_mimebundle_()
    assert _png(bundle).startswith(PNG_MAGIC) and "(multiclass)" in bundle["text/plain"]
    assert "ROC AUC" in bundle["text/html"]  # per-class AUC column
    X, y = load_diabetes(return_X_y=True)
    reg = Ridge().fit(X[:300], y[:300])
    bundle = EvaluationReport(evaluate(reg, X[300:], y[300:]))._repr_mimebundle_()
    assert _png(bundle).startswith(PNG_MAGIC)
    assert "(regression): R² " in bundle["text/plain"]
    assert "Confusion" not in bundle["text/html"]


def test_html_escapes_labels_and_works_without_scores():
    labels = ("<b>bold</b>", "x & y")
    y_true = np.array([labels[i % 2] for i in range(40)])
    y_pred = y_true.copy()
    y_pred[:5] = labels[1]
    result = evaluate_predictions(y_true, y_pred, task=TaskInfo("binary", labels))
    bundle = EvaluationReport(result)._repr_mimebundle_()
    html = bundle["text/html"]
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "x &amp; y" in html
    assert _png(bundle).startswith(PNG_MAGIC)  # confusion matrix only
    assert bundle["text/plain"].startswith("predictions on 40 rows (binary): accuracy 0.925")
