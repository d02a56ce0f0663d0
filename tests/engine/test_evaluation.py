"""engine.evaluation and engine.prediction on real data, checked against scikit-learn itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from aimodel_kernel.engine.core import links
from aimodel_kernel.engine.core.data import TaskInfo
from aimodel_kernel.engine.core.errors import InputError, NotFittedError
from aimodel_kernel.engine.core.prediction import predict
from aimodel_kernel.engine.evaluation.metrics import (
    MAX_CURVE_POINTS,
    MAX_PLOT_POINTS,
    evaluate,
    evaluate_predictions,
)
from aimodel_kernel.engine.store.tracking import log_result_artifact

ROOT = Path(__file__).resolve().parents[2]


def _split(loader, **kw):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, **kw)


@pytest.fixture(scope="module")
def cancer_split():
    X_tr, X_te, y_tr, y_te = _split(load_breast_cancer, stratify=load_breast_cancer().target)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_tr, y_tr)
    return model, X_tr, X_te, y_tr, y_te


@pytest.fixture(scope="module")
def digits_split():
    X_tr, X_te, y_tr, y_te = _split(load_digits)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=300))
    model.fit(X_tr, y_tr)
    return model, X_tr, X_te, y_tr, y_te


@pytest.fixture(scope="module")
def diabetes_split():
    X_tr, X_te, y_tr, y_te = _split(load_diabetes)
    return Ridge(alpha=0.1).fit(X_tr, y_tr), X_tr, X_te, y_tr, y_te


# -- metric values are scikit-learn's ---------------------------------------------------------
def test_binary_metrics_equal_sklearn(cancer_split):
    model, _, X, _, y = cancer_split
    r = evaluate(model, X, y)
    pred, proba = model.predict(X), model.predict_proba(X)
    assert r.task == TaskInfo("binary", (0, 1))
    assert r.metrics["accuracy"] == skm.accuracy_score(y, pred)
    assert r.metrics["balanced_accuracy"] == skm.balanced_accuracy_score(y, pred)
    assert r.metrics["precision_macro"] == skm.precision_score(y, pred, average="macro")
    assert r.metrics["recall_macro"] == skm.recall_score(y, pred, average="macro")
    assert r.metrics["f1_macro"] == skm.f1_score(y, pred, average="macro")
    assert r.metrics["f1_weighted"] == skm.f1_score(y, pred, average="weighted")
    assert r.metrics["roc_auc"] == skm.roc_auc_score(y, proba[:, 1])
    assert r.metrics["log_loss"] == skm.log_loss(y, proba)
    assert r.confusion == skm.confusion_matrix(y, pred).tolist()
    f1 = skm.f1_score(y, pred, average=None)
    assert [r.per_class[str(c)]["f1"] for c in (0, 1)] == f1.tolist()
    assert [r.per_class[str(c)]["support"] for c in (0, 1)] == np.bincount(y).tolist()
    fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
    assert r.curves["roc"][0]["fpr"] == fpr.tolist() and r.curves["roc"][0]["tpr"] == tpr.tolist()
    prob_true, prob_pred = calibration_curve(y, proba[:, 1], n_bins=10)
    assert r.curves["calibration"]["prob_true"] == prob_true.tolist()
    assert r.curves["calibration"]["prob_pred"] == prob_pred.tolist()
    assert r.n_samples == len(y) and r.model_name == "Pipeline"
    assert r.run_id is None and r.logged is False and r.cv is None and r.intervals is None


def test_multiclass_metrics_equal_sklearn(digits_split):
    model, _, X, _, y = digits_split
    r = evaluate(model, X, y)
    pred, proba = model.predict(X), model.predict_proba(X)
    assert r.task.task == "multiclass" and r.labels == list(range(10))
    assert r.metrics["accuracy"] == skm.accuracy_score(y, pred)
    assert r.metrics["f1_macro"] == skm.f1_score(y, pred, average="macro")
    assert r.metrics["f1_weighted"] == skm.f1_score(y, pred, average="weighted")
    assert r.metrics["roc_auc"] == skm.roc_auc_score(y, proba, multi_class="ovr")
    assert r.metrics["log_loss"] == skm.log_loss(y, proba)
    assert r.confusion == skm.confusion_matrix(y, pred).tolist()
    assert len(r.curves["roc"]) == len(r.curves["pr"]) == 10
    assert r.per_class["3"]["roc_auc"] == skm.roc_auc_score(y == 3, proba[:, 3])
    assert "calibration" not in r.curves


def test_regression_metrics_equal_sklearn(diabetes_split):
    model, _, X, _, y = diabetes_split
    r = evaluate(model, X, y)
    pred = model.predict(X)
    assert r.task.task == "regression"
    assert r.metrics == {
        "mae": skm.mean_absolute_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }
    assert r.confusion is None and r.per_class == {}
    assert np.allclose(r.curves["residuals"]["residual"], y - pred)


def test_string_labels_and_decision_function(cancer_split):
    _, X_tr, X, y_tr, y = cancer_split
    names = np.array(["benign", "malignant"])
    model = make_pipeline(StandardScaler(), LinearSVC()).fit(X_tr, names[y_tr])
    r = evaluate(model, X, names[y])
    assert r.labels == ["benign", "malignant"]
    assert r.metrics["roc_auc"] == skm.roc_auc_score(names[y], model.decision_function(X))
    assert "log_loss" not in r.metrics and "calibration" not in r.curves
    assert any("decision_function" in note for note in r.notes)


def test_curves_and_plot_data_are_thinned():
    rng = np.random.default_rng(1)
    n = 30_000
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    r = evaluate_predictions(y, (p1 > 0.5).astype(int), p1, task=TaskInfo("binary", (0, 1)))
    assert r.metrics["roc_auc"] == skm.roc_auc_score(y, p1)
    assert len(r.curves["roc"][0]["fpr"]) <= MAX_CURVE_POINTS
    assert len(r.curves["pr"][0]["precision"]) <= MAX_CURVE_POINTS
    assert r.curves["roc"][0]["fpr"][0] == 0.0 and r.curves["roc"][0]["fpr"][-1] == 1.0
    yr = rng.normal(size=n)
    yp = yr + rng.normal(size=n)
    rr = evaluate_predictions(yr, yp, task=TaskInfo("regression"))
    assert len(rr.curves["residuals"]["y_true"]) == MAX_PLOT_POINTS
    assert rr.metrics["r2"] == skm.r2_score(yr, yp)


# -- cross-validation and bootstrap -----------------------------------------------------------
def test_cv_equals_cross_validate_and_leaves_model_alone(cancer_split):
    model, X_tr, _, y_tr, _ = cancer_split
    coef = model[-1].coef_.copy()
    r = evaluate(model, X_tr, y_tr, cv=4, seed=3)
    expected = cross_validate(
        clone(model), X_tr, y_tr,
        cv=StratifiedKFold(4, shuffle=True, random_state=3),
        scoring=["accuracy", "roc_auc", "neg_log_loss", "f1_macro"],
    )
    cv = r.cv["metrics"]
    assert r.cv["k"] == 4 and r.cv["splitter"] == "StratifiedKFold"
    assert cv["accuracy"]["folds"] == expected["test_accuracy"].tolist()
    assert cv["roc_auc"]["folds"] == expected["test_roc_auc"].tolist()
    assert cv["f1_macro"]["folds"] == expected["test_f1_macro"].tolist()
    assert cv["log_loss"]["folds"] == (-expected["test_neg_log_loss"]).tolist()
    assert cv["accuracy"]["mean"] == expected["test_accuracy"].mean()
    assert cv["accuracy"]["std"] == expected["test_accuracy"].std()
    check_is_fitted(model)
    assert np.array_equal(model[-1].coef_, coef)


def test_cv_regression_uses_kfold(diabetes_split):
    model, X_tr, _, y_tr, _ = diabetes_split
    r = evaluate(model, X_tr, y_tr, cv=3)
    expected = cross_validate(
        clone(model), X_tr, y_tr, cv=KFold(3, shuffle=True, random_state=0),
        scoring=["r2", "neg_root_mean_squared_error"],
    )
    assert r.cv["splitter"] == "KFold"
    assert r.cv["metrics"]["r2"]["folds"] == expected["test_r2"].tolist()
    rmse = (-expected["test_neg_root_mean_squared_error"]).tolist()
    assert r.cv["metrics"]["rmse"]["folds"] == rmse


def test_bootstrap_intervals_are_seeded_and_contain_the_estimate(cancer_split, diabetes_split):
    model, _, X, _, y = cancer_split
    a = evaluate(model, X, y, ci=True, n_boot=40, seed=7)
    b = evaluate(model, X, y, ci=True, n_boot=40, seed=7)
    c = evaluate(model, X, y, ci=True, n_boot=40, seed=8)
    assert a.intervals == b.intervals and a.intervals != c.intervals
    assert set(a.intervals) == set(a.metrics)
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"):
        lo, hi = a.intervals[name]
        assert lo <= a.metrics[name] <= hi, name
    model, _, X, _, y = diabetes_split
    r = evaluate(model, X, y, ci=True, n_boot=40)
    for name in ("mae", "rmse", "r2"):
        lo, hi = r.intervals[name]
        assert lo < r.metrics[name] < hi, name


# -- bad input --------------------------------------------------------------------------------
def test_unfitted_model_raises_not_fitted(cancer_split):
    _, _, X, _, y = cancer_split
    with pytest.raises(NotFittedError, match=r"^clf is not fitted; train it first: %train clf"):
        evaluate(LogisticRegression(), X, y, name="clf")
    with pytest.raises(NotFittedError):
        predict(LogisticRegression(), X)


@pytest.mark.parametrize(
    "case, match",
    [
        ("lengths", "rows but y has"),
        ("nan", "NaN"),
        ("single_class", "single class"),
        ("unknown_label", "labels the model does not know: 7"),
        ("cv_too_large", "smallest class"),
        ("cv_one", "--cv must be"),
        ("task", "does not fit this model"),
    ],
)
def test_bad_input_raises_input_error(cancer_split, case, match):
    model, _, X, _, y = cancer_split
    X, y = X.copy(), y.copy()
    kwargs = {}
    if case == "lengths":
        y = y[:-1]
    elif case == "nan":
        X[3, 2] = np.nan
    elif case == "single_class":
        X, y = X[y == 1], y[y == 1]
    elif case == "unknown_label":
        y[0] = 7
    elif case == "cv_too_large":
        X, y = X[:60], np.r_[np.zeros(57, int), np.ones(3, int)]
        kwargs["cv"] = 4
    elif case == "cv_one":
        kwargs["cv"] = 1
    elif case == "task":
        kwargs["task"] = "regression"
    with pytest.raises(InputError, match=match):
        evaluate(model, X, y, **kwargs)


def test_nan_allowed_for_estimators_that_take_it(cancer_split):
    _, X_tr, X, y_tr, y = cancer_split
    X_tr, X = X_tr.copy(), X.copy()
    X_tr[::7, 0] = np.nan
    X[::5, 0] = np.nan
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X_tr, y_tr)
    r = evaluate(model, X, y)
    assert r.metrics["accuracy"] == skm.accuracy_score(y, model.predict(X))


# -- PyTorch ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _mlp(torch, n_in, n_out, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, 32), torch.nn.ReLU(), torch.nn.Linear(32, n_out)
    )


def _fit_a_little(torch, model, X, y, loss_fn, steps=40):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt = torch.as_tensor(X, dtype=torch.float32)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(xt), y).backward()
        opt.step()
    return model


def test_torch_multiclass_matches_manual_forward(torch, digits_split):
    _, X_tr, X, y_tr, y = digits_split
    X_tr, X = X_tr / 16.0, X / 16.0
    model = _fit_a_little(
        torch, _mlp(torch, 64, 10), X_tr, torch.as_tensor(y_tr), torch.nn.CrossEntropyLoss()
    )
    model.train()
    with torch.no_grad():
        logits = model(torch.as_tensor(X, dtype=torch.float32))
    p = predict(model, X, batch_size=100)  # float64 numpy in, batched
    assert model.training  # mode restored
    assert np.array_equal(p.y_pred, logits.argmax(1).numpy())
    assert np.allclose(p.y_score, logits.double().softmax(1).numpy(), atol=1e-6)
    r = evaluate(model, X, y)
    assert r.metrics["accuracy"] == skm.accuracy_score(y, p.y_pred)
    assert r.metrics["accuracy"] > 0.5
    assert r.metrics["roc_auc"] == skm.roc_auc_score(y, p.y_score, multi_class="ovr")
    assert r.metrics["log_loss"] == skm.log_loss(y, p.y_score)
    model.eval()
    predict(model, torch.as_tensor(X))  # a float64 tensor works too
    assert not model.training


def test_torch_binary_single_logit_and_datasets(torch, cancer_split):
    _, X_tr, X, y_tr, y = cancer_split
    scaler = StandardScaler().fit(X_tr)
    X_tr, X = scaler.transform(X_tr), scaler.transform(X)
    model = _fit_a_little(
        torch, _mlp(torch, 30, 1), X_tr, torch.as_tensor(y_tr, dtype=torch.float32)[:, None],
        torch.nn.BCEWithLogitsLoss(),
    )
    with torch.no_grad():
        logit = model(torch.as_tensor(X, dtype=torch.float32))[:, 0]
    r = evaluate(model, X, y)
    assert r.task == TaskInfo("binary", (0, 1))
    p = predict(model, X, task=r.task)
    assert np.array_equal(p.y_pred, (logit > 0).long().numpy())
    assert np.allclose(p.y_score[:, 1], logit.double().sigmoid().numpy())
    assert r.metrics["roc_auc"] == skm.roc_auc_score(y, p.y_score[:, 1])
    data = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    shuffled = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
    for source in (data, shuffled):
        assert evaluate(model, source).metrics == pytest.approx(r.metrics, rel=1e-9)


def test_torch_regression_and_token_ids(torch, diabetes_split):
    _, _, X, _, y = diabetes_split
    model = _mlp(torch, 10, 1)
    r = evaluate(model, X, y)
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=torch.float32))[:, 0].double().numpy()
    assert r.metrics["rmse"] == skm.root_mean_squared_error(y, out)
    torch.manual_seed(0)
    embed = torch.nn.Sequential(
        torch.nn.Embedding(50, 4), torch.nn.Flatten(), torch.nn.Linear(4 * 6, 3)
    )
    ids = np.random.default_rng(0).integers(0, 50, (40, 6))
    labels = np.arange(40) % 3
    r = evaluate(embed, ids, labels)  # int64 ids must not be cast to float
    assert r.task.n_classes == 3 and r.n_samples == 40


def test_torch_output_shape_must_fit_the_task(torch, digits_split):
    _, _, X, _, y = digits_split
    with pytest.raises(InputError, match=r"shape \(\d+, 3\).*multiclass with 10 classes"):
        evaluate(_mlp(torch, 64, 3), X, y)
    with pytest.raises(InputError, match="--cv works for scikit-learn models"):
        evaluate(_mlp(torch, 64, 10), X, y, cv=3)
    r = evaluate(_mlp(torch, 64, 10), X[y < 4], y[y < 4])  # class indices widen to the output
    assert r.labels == list(range(10))
    assert r.per_class["7"]["support"] == 0 and len(r.curves["roc"]) == 4


# -- results, logging, imports ----------------------------------------------------------------
def test_to_dict_is_json(cancer_split, digits_split, diabetes_split):
    for model, _, X, _, y in (cancer_split, digits_split, diabetes_split):
        r = evaluate(model, X, y, ci=True, n_boot=20, cv=3)
        text = json.dumps(r.to_dict(), allow_nan=False)
        back = json.loads(text)
        assert back["metrics"] == r.metrics and back["task"]["task"] == r.task.task


class _FakeStore:
    def __init__(self):
        self.calls = []

    def log_metrics(self, run_id, rows):
        self.calls.append(("metrics", run_id, list(rows)))

    def log_dict(self, run_id, obj, path):
        json.dumps(obj, allow_nan=False)
        self.calls.append(("dict", run_id, path))

    def log_bytes(self, run_id, data, path):
        self.calls.append(("bytes", run_id, path, data))


def test_logs_onto_the_run_of_a_tracked_model(cancer_split):
    _, X_tr, X, y_tr, y = cancer_split
    model = LogisticRegression(max_iter=5000).fit(X_tr, y_tr)
    links.remember(model, links.ModelLink("run123", "sqlite:///x", TaskInfo("binary", (0, 1)),
                                          "sklearn"))
    store = _FakeStore()
    r = evaluate(model, X, y, store=store)
    assert r.logged and r.run_id == "run123"
    kind, run_id, rows = store.calls[0]
    assert (kind, run_id) == ("metrics", "run123")
    assert ("eval.accuracy", r.metrics["accuracy"], None) in rows
    assert store.calls[1] == ("dict", "run123", "evaluation/report.json")
    assert log_result_artifact(r, "plots.png", b"\x89PNG", store=store)
    assert store.calls[2] == ("bytes", "run123", "evaluation/plots.png", b"\x89PNG")
    unlogged = evaluate(model, X, y, log=False)
    assert not unlogged.logged and not log_result_artifact(unlogged, "p.png", b"")


def test_untracked_sklearn_evaluation_imports_neither_mlflow_nor_torch():
    code = textwrap.dedent(
        """
        import sys
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from aimodel_kernel.engine.evaluation.metrics import evaluate
        X, y = load_breast_cancer(return_X_y=True)
        model = LogisticRegression(solver="liblinear").fit(X, y)
        r = evaluate(model, X, y, ci=True, n_boot=3)
        assert not r.logged
        assert "mlflow" not in sys.modules, "mlflow imported"
        assert "torch" not in sys.modules, "torch imported"
        """
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
