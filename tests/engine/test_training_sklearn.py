"""``engine.train`` on real scikit-learn estimators and a real MLflow store."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import all_runs, registered_names, same_state
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train


def test_fits_in_place_and_records(store, cancer):
    X, y = cancer
    clf = RandomForestClassifier(n_estimators=5, max_depth=3)
    result = train(clf, X, y, TrainConfig(val=0.25, seed=7))
    assert hasattr(clf, "classes_") and len(clf.estimators_) == 5
    assert result.status == "finished" and result.framework == "sklearn"
    assert result.task.task == "binary" and result.version is None
    assert 0.8 < result.metrics["val_accuracy"] <= 1.0
    assert result.metrics["train_accuracy"] >= result.metrics["val_accuracy"] - 0.1
    run = store.run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.n_estimators"] == "5" and params["model.max_depth"] == "3"
    assert params["model.criterion"] == '"gini"'  # a default, recorded too
    assert params["train.val"] == "0.25" and params["train.seed"] == "7"
    assert params["train.class_weight"] == "null"
    assert "train.epochs" not in params  # PyTorch-only options are not recorded here
    assert run.data.metrics["val_accuracy"] == pytest.approx(result.metrics["val_accuracy"])


def test_seed_sets_random_state_and_is_recorded(store, cancer):
    X, y = cancer
    clf = RandomForestClassifier(n_estimators=3)
    result = train(clf, X, y, TrainConfig(seed=123))
    assert clf.random_state == 123
    run = store.run(result.run_id)
    assert run.data.tags["aimodel.seed"] == "123"
    assert run.data.params["model.random_state"] == "123"
    again = RandomForestClassifier(n_estimators=3)
    train(again, X, y, TrainConfig(seed=123))
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


def test_pipeline_with_sparse_input(store, cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(max_iter=500))
    result = train(pipe, sp.csr_matrix(X), y, TrainConfig(val=0.2, seed=0))
    assert result.fingerprint["kind"] == "sparse"
    assert hasattr(pipe[-1], "coef_") and result.metrics["val_accuracy"] > 0.9
    params = store.run(result.run_id).data.params
    assert params["model.logisticregression__max_iter"] == "500"
    assert params["model.standardscaler"] == '"StandardScaler"'  # JSON, like every value
    steps = [["standardscaler", "StandardScaler"], ["logisticregression", "LogisticRegression"]]
    assert json.loads(params["model.steps"]) == steps


def test_dataframe_with_strings_in_pipeline(store):
    rng = np.random.default_rng(0)
    n = 200
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    frame = pd.DataFrame({"colour": colour, "size": size})
    target = np.where((colour == "red") | (size > 1), "yes", "no")
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["colour"]), remainder="passthrough"),
        LogisticRegression(),
    )
    result = train(pipe, frame, target, TrainConfig(val=0.2, seed=1))
    assert result.task.classes == ("no", "yes")
    assert result.fingerprint["columns"] == ["colour", "size"]
    assert result.metrics["val_accuracy"] > 0.7
    assert set(pipe.predict(frame.head())) <= {"yes", "no"}


def test_nan_allowed_only_where_the_estimator_takes_it(store, cancer):
    X, y = cancer
    holes = X.copy()
    holes[::7, 3] = np.nan
    hgb = HistGradientBoostingClassifier(max_iter=10)
    assert train(hgb, holes, y).status == "finished"
    assert hasattr(hgb, "n_iter_")
    logreg = LogisticRegression()
    with pytest.raises(InputError, match="NaN"):
        train(logreg, holes, y)
    assert not hasattr(logreg, "coef_")
    assert len(all_runs(store)) == 1  # only the successful fit recorded a run


def test_regression_reports_r2(store, diabetes):
    X, y = diabetes
    result = train(Ridge(alpha=0.1), X, y, TrainConfig(val=0.2, seed=0))
    assert result.task.task == "regression"
    assert {"train_r2", "val_r2"} <= set(result.metrics)
    assert result.metrics["val_r2"] > 0.2


def test_class_weight(store, cancer):
    X, y = cancer
    clf = LogisticRegression(solver="liblinear")
    result = train(clf, X, y, TrainConfig(class_weight="balanced"))
    assert clf.class_weight == "balanced"
    assert store.run(result.run_id).data.params["train.class_weight"] == '"balanced"'
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    train(pipe, X, y, TrainConfig(class_weight="balanced"))
    assert pipe[-1].class_weight == "balanced"
    with pytest.raises(InputError, match="no class_weight"):
        train(Ridge(), X, y, TrainConfig(class_weight="balanced"))


def test_failed_fit_restores_the_estimator(store, cancer):
    X, y = cancer
    clf = RandomForestClassifier(n_estimators=3, max_depth=2)
    first = train(clf, X, y, TrainConfig(name="restore"))
    proba = clf.predict_proba(X)
    estimators = clf.estimators_
    clf.set_params(n_estimators=0)  # refused by fit, not by set_params
    before = copy.deepcopy(clf.__dict__)
    with pytest.raises(InputError, match=r"RandomForestClassifier\.fit refused the data"):
        train(clf, X, 1 - y, TrainConfig(name="restore", seed=5, class_weight="balanced"))
    assert same_state(clf.__dict__, before)
    assert clf.class_weight is None and clf.random_state == first.seed  # the seed it trained with
    assert not same_state(clf.__dict__, {**before, "class_weight": "balanced"})
    assert len(clf.estimators_) == 3 and clf.estimators_ is not estimators  # restored copy
    clf.set_params(n_estimators=3)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    runs = all_runs(store)
    assert len(runs) == 2 and not [r for r in runs if r.info.status == "RUNNING"]
    failed = [r for r in runs if r.info.status != "FINISHED"]
    assert len(failed) == 1 and failed[0].info.lifecycle_stage == "deleted"
    assert [v.version for v in store.versions("restore")] == [1]


def test_resume_and_dataset_refused(store, cancer):
    X, y = cancer
    clf = LogisticRegression()
    with pytest.raises(InputError, match="cannot resume"):
        train(clf, X, y, TrainConfig(resume="last"))
    with pytest.raises(InputError, match="--deterministic needs --seed"):
        train(clf, X, y, TrainConfig(deterministic=True))
    assert not hasattr(clf, "coef_") and not all_runs(store)
    assert registered_names(store) == []


def test_result_object_is_plain(store, cancer):
    X, y = cancer
    result = train(LogisticRegression(solver="liblinear"), X, y, TrainConfig(val=0.2, name="plain"))
    assert result.ref == "plain/1"
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in result.metrics.items())
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["task"] == {"task": "binary", "classes": [0, 1]}
    assert doc["version"] == 1 and doc["model_files"].keys() == {"model.skops"}
