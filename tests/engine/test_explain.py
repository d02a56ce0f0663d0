"""``explain()``: the explainer chosen per model type, values equal to shap's own on the same data,
LIME beside SHAP, sampling, and every bad input as a one-line error."""

from __future__ import annotations

import copy
import json
import subprocess
import textwrap

import numpy as np
import pytest
from conftest import PYTHON, mlp, subprocess_env
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from aimodel_kernel.engine.core.errors import InputError, NotFittedError
from aimodel_kernel.engine.explanation.choice import choose, split_pipeline
from aimodel_kernel.engine.explanation.entry import SlowExplanationWarning, explain

shap = pytest.importorskip("shap")


@pytest.fixture(scope="module")
def scaled_cancer(cancer):
    X, y = cancer
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def forest(cancer):
    X, y = cancer
    return RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


# -- which explainer ---------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "kind"), [
    (lambda: RandomForestClassifier(n_estimators=3, random_state=0), "tree"),
    (lambda: GradientBoostingClassifier(n_estimators=3), "tree"),
    (lambda: HistGradientBoostingClassifier(max_iter=3), "tree"),
    (lambda: RandomForestRegressor(n_estimators=3, random_state=0), "tree"),
    (lambda: LogisticRegression(max_iter=200), "linear"),
    (lambda: Ridge(), "linear"),
    (lambda: make_pipeline(StandardScaler(), LogisticRegression()), "linear"),
    (lambda: SVC(), "permutation"),
    (lambda: KNeighborsClassifier(), "permutation"),
], ids=["forest", "gradient-boosting", "hist-boosting", "forest-regressor", "logistic",
        "ridge", "pipeline-logistic", "svc", "knn"])
def test_explainer_choice_per_model_type(make, kind, scaled_cancer):
    X, y = scaled_cancer
    model = make().fit(X[:200], y[:200])
    est, pre = split_pipeline(model)
    choice = choose(est, "auto")
    assert choice.kind == kind
    assert type(est).__name__ in choice.reason
    assert (pre is not None) == hasattr(model, "steps")


def test_torch_module_gets_the_gradient_explainer():
    pytest.importorskip("torch")
    choice = choose(mlp(4, 3), "auto", is_torch=True)
    assert choice.kind == "gradient" and choice.name == "DeepExplainer"


@pytest.mark.parametrize(("method", "message"), [
    ("linear", "--method linear needs a linear model"),
    ("gradient", "--method gradient is for PyTorch modules"),
])
def test_a_method_that_does_not_fit_the_model_is_refused(method, message, forest):
    with pytest.raises(InputError, match=message):
        choose(forest, method)


def test_tree_method_on_a_model_shap_cannot_read_is_one_line(scaled_cancer):
    X, y = scaled_cancer
    lr = LogisticRegression(max_iter=200).fit(X, y)
    with pytest.raises(InputError, match="TreeExplainer cannot explain LogisticRegression"):
        explain(lr, X, method="tree", log=False)


# -- values equal shap's own -------------------------------------------------------------------
def test_forest_values_equal_a_direct_tree_explainer(forest, cancer):
    X, _ = cancer
    r = explain(forest, X, max_rows=120, seed=3, log=False)
    assert r.explainer == "TreeExplainer" and r.scope == "global" and r.method == "shap"
    assert r.sample_size == 120 and r.n_rows == len(X) and r.background_size == 0
    assert len(set(r.rows.tolist())) == 120 and r.output == "probability of class 1"
    direct = shap.TreeExplainer(forest)
    expected = direct.shap_values(X[r.rows])[:, :, 1]
    assert np.allclose(r.values, expected)
    assert r.base_value == pytest.approx(float(direct.expected_value[1]))
    assert np.allclose(r.base_values + r.values.sum(1), forest.predict_proba(X[r.rows])[:, 1])
    mean = np.abs(expected).mean(0)
    assert list(r.importance) == [r.features[j] for j in np.argsort(-mean, kind="stable")]
    assert r.importance[r.features[0]] == pytest.approx(mean[0])
    # a seeded sample, stated in the result
    again = explain(forest, X, max_rows=120, seed=3, log=False)
    other = explain(forest, X, max_rows=120, seed=4, log=False)
    assert np.array_equal(again.rows, r.rows) and not np.array_equal(other.rows, r.rows)
    assert any("seeded sample of 120 of 569 rows (seed 3)" in n for n in r.notes)


def test_linear_values_equal_a_direct_linear_explainer(scaled_cancer, iris):
    X, y = scaled_cancer
    lr = LogisticRegression(max_iter=500).fit(X, y)
    r = explain(lr, X, background=60, log=False)
    assert r.explainer == "LinearExplainer" and r.background_size == 60 and r.space == "log-odds"
    direct = shap.LinearExplainer(lr, X[r.background_rows])
    assert np.allclose(r.values, direct.shap_values(X[r.rows]))
    assert np.allclose(r.base_values + r.values.sum(1), lr.decision_function(X[r.rows]))
    # multiclass: --class picks the output
    Xi, yi = iris
    lr3 = LogisticRegression(max_iter=500).fit(Xi, yi)
    r3 = explain(lr3, Xi, target="2", log=False)
    assert r3.explained == [2] * len(Xi) and r3.output == "log-odds of class 2"
    full = shap.LinearExplainer(lr3, Xi[r3.background_rows]).shap_values(Xi)
    assert np.allclose(r3.values, full[:, :, 2])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # shap's own, on numpy 2
def test_torch_values_equal_a_direct_deep_explainer_and_the_module_is_untouched(digits):
    torch = pytest.importorskip("torch")
    X, _ = digits
    net = mlp(hidden=16)
    net.train()
    net[0].weight.grad = torch.ones_like(net[0].weight)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    r = explain(net, X[:200], max_rows=12, background=16, log=False)
    assert r.explainer == "DeepExplainer" and r.sample_size == 12 and r.background_size == 16
    assert r.output == "model output of each row's predicted class"
    with torch.no_grad():
        logits = net(torch.from_numpy(X[:200][r.rows])).numpy()
    assert r.explained == logits.argmax(1).tolist()
    background = torch.from_numpy(X[:200][r.background_rows])
    deep = shap.DeepExplainer(copy.deepcopy(net).eval(), background)
    full = deep.shap_values(torch.from_numpy(X[:200][r.rows]))
    picked = full[np.arange(12), :, logits.argmax(1)]
    assert np.allclose(r.values, picked, atol=1e-5)
    assert np.allclose(r.base_values + r.values.sum(1), logits.max(1), atol=1e-4)
    # the user's module: same mode, weights, parameters and gradients
    assert net.training and list(net.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert torch.equal(net[0].weight.grad, torch.ones_like(net[0].weight))


def test_multiclass_global_explains_each_rows_predicted_class(iris):
    X, y = iris
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    r = explain(rf, X, log=False)
    assert r.explained == rf.predict(X).tolist()
    full = shap.TreeExplainer(rf).shap_values(X)
    assert np.allclose(r.values, full[np.arange(len(X)), :, rf.predict(X)])


# -- one row -----------------------------------------------------------------------------------
def test_a_row_explains_its_predicted_class_and_adds_up(forest, cancer):
    X, _ = cancer
    negative = int(np.flatnonzero(forest.predict(X) == 0)[0])
    r = explain(forest, X, row=negative, log=False)
    assert r.scope == "local" and r.row == negative and r.prediction == 0
    assert r.explained == [0] and r.output == "probability of class 0"
    proba = forest.predict_proba(X[negative : negative + 1])[0]
    assert r.probability == pytest.approx(proba.max())
    assert r.base_value + r.values.sum() == pytest.approx(proba[0])
    assert np.allclose(r.data[0], X[negative])


def test_a_single_margin_explains_the_negative_class_negated(cancer):
    X, y = cancer
    gb = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    pos = explain(gb, X, target=1, max_rows=50, log=False)
    neg = explain(gb, X, target=0, max_rows=50, log=False)
    assert pos.space == "log-odds" and pos.output == "log-odds of class 1"
    assert np.allclose(neg.values, -pos.values) and neg.base_value == -pos.base_value
    assert np.allclose(pos.base_values + pos.values.sum(1), gb.decision_function(X[pos.rows]))


def test_lime_beside_shap_has_the_same_shape_and_is_seeded(forest, cancer):
    pytest.importorskip("lime")
    X, _ = cancer
    r = explain(forest, X, row=7, method="both", log=False)
    assert r.method == "shap" and r.lime is not None
    lime = r.lime
    assert lime.method == "lime" and lime.explainer == "LimeTabularExplainer"
    assert lime.values.shape == r.values.shape == (1, X.shape[1])
    assert lime.features == r.features and lime.explained == r.explained
    assert len(lime.conditions) == X.shape[1] and any(lime.conditions)
    assert 0 <= lime.score <= 1 and lime.background_size == 500
    again = explain(forest, X, row=7, method="lime", log=False)
    assert again.method == "lime" and np.array_equal(again.values, lime.values)
    json.dumps(r.to_dict())  # the whole result, LIME included, is JSON


def test_pipeline_is_explained_in_its_transformed_features():
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], 300),
                      "size": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = ((X["colour"] == "red") ^ (X["size"] > 0.5)).astype(int).to_numpy()
    pre = make_column_transformer((OneHotEncoder(), ["colour"]), remainder=StandardScaler())
    model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    r = explain(model, X, log=False)
    assert r.explainer == "LinearExplainer"
    assert r.features == list(model[:-1].get_feature_names_out())
    Z = model[:-1].transform(X)
    direct = shap.LinearExplainer(model[-1], Z[r.background_rows]).shap_values(Z[r.rows])
    assert np.allclose(r.values, direct)
    assert list(r.importance)[-1] == "remainder__noise"


# -- model-agnostic ----------------------------------------------------------------------------
def test_kernel_warns_with_the_expected_time_before_many_rows(iris):
    X, y = iris
    Xbig = np.repeat(X, 2, axis=0)
    svc = SVC().fit(X, y)  # no predict_proba: the decision function is explained
    with pytest.warns(SlowExplanationWarning, match=r"KernelExplainer on 210 rows: about"):
        r = explain(svc, Xbig, method="kernel", max_rows=210, background=5, log=False)
    assert r.explainer == "KernelExplainer" and r.sample_size == 210
    assert r.space == "decision function" and r.values.shape == (210, 4)
    decision = svc.decision_function(Xbig[r.rows])
    picked = decision[np.arange(210), np.searchsorted(svc.classes_, r.explained)]
    assert np.allclose(r.base_values + r.values.sum(1), picked, atol=1e-6)


def test_permutation_fallback_adds_up_to_the_probability(iris):
    X, y = iris
    knn = KNeighborsClassifier().fit(X, y)
    r = explain(knn, X, max_rows=8, background=10, log=False)
    assert r.explainer == "PermutationExplainer" and "fallback" in r.reason
    assert r.background_size == 10 and r.space == "probability"
    proba = knn.predict_proba(X[r.rows])
    picked = proba[np.arange(8), np.searchsorted(knn.classes_, r.explained)]
    assert np.allclose(r.base_values + r.values.sum(1), picked, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"row": 569}, r"--row 569 is out of range: X has 569 rows, so --row takes 0 to 568"),
    ({"row": -1}, r"--row -1 is out of range"),
    ({"method": "lime"}, r"--method lime explains one row"),
    ({"method": "fancy"}, r"--method must be one of"),
    ({"target": "7"}, r"--class '7' is not a class of RandomForestClassifier"),
    ({"top": 0}, r"--top must be a whole number of at least 1"),
    ({"max_rows": 0}, r"--max-rows must be"),
])
def test_bad_options_are_one_line_errors(kwargs, message, forest, cancer):
    with pytest.raises(InputError, match=message):
        explain(forest, cancer[0], log=False, **kwargs)


def test_bad_models_and_data_are_one_line_errors(cancer, diabetes):
    import pandas as pd

    X, y = cancer
    with pytest.raises(NotFittedError, match="clf is not fitted"):
        explain(RandomForestClassifier(), X, name="clf", log=False)
    ridge = Ridge().fit(*diabetes)
    with pytest.raises(InputError, match="--class applies to classifiers; Ridge does regression"):
        explain(ridge, diabetes[0], target="1", log=False)
    frame = pd.DataFrame({"a": ["x", "y"] * 5, "b": np.arange(10.0)})
    with pytest.raises(InputError, match=r"non-numeric columns \('a'\); SHAP and LIME need"):
        explain(Ridge().fit(np.c_[np.arange(10.0), np.arange(10.0)], np.arange(10.0)), frame,
                log=False)
    svc = SVC().fit(X[:100], y[:100])
    with pytest.raises(InputError, match="SVC has no predict_proba, which LIME needs"):
        explain(svc, X[:100], row=0, method="lime", log=False)


def test_missing_shap_or_lime_is_a_one_line_missing_dependency(tmp_path):
    script = textwrap.dedent("""
        import sys
        blocked = set(sys.argv[1:])

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError(f"No module named {name!r}")

        sys.meta_path.insert(0, Block())
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from aimodel_kernel.engine.core.errors import MissingDependency
        from aimodel_kernel.engine.explanation.entry import explain

        X = np.random.default_rng(0).normal(size=(40, 3))
        lr = LogisticRegression().fit(X, X[:, 0] > 0)
        for kwargs in ({}, {"row": 0, "method": "lime"}):
            try:
                explain(lr, X, log=False, **kwargs)
            except MissingDependency as exc:
                print(exc)
            else:
                print("no error")
    """)
    env = subprocess_env(AIMODEL_HOME=str(tmp_path / ".aimodel"))
    done = subprocess.run([PYTHON, "-c", script, "shap", "lime"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines == [
        "shap is needed for SHAP explanations but is not installed; run: pip install "
        "'aimodel-kernel[explain]'",
        "lime is needed for LIME explanations but is not installed; run: pip install "
        "'aimodel-kernel[explain]'",
    ]
