"""``reproduce``: retrain a recorded version into a new one and compare, in a real store."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import (
    all_runs,
    clone_state,
    mlp,
    registered_names,
    run_artifact,
    same_state,
    weights_equal,
)
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from aimodel_kernel.engine.core.data import check_data, fingerprint, infer_task
from aimodel_kernel.engine.core.errors import ChecksumError, InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.fairness.datasets import load_german_credit
from aimodel_kernel.engine.store import records
from aimodel_kernel.engine.store.recorder import Recording
from aimodel_kernel.engine.store.registry import list_versions, load_version, resolve
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.reproduce import (
    Difference,
    ReproduceResult,
    compare_state,
    describe,
    recorded_config,
    reproduce,
)


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


# -- scikit-learn as users train it: pipelines with categories, no --seed -----------------------
CATEGORIES = ["sex", "housing", "saving_accounts", "checking_account", "purpose", "age_band"]
NUMBERS = ["job", "credit_amount", "duration", "age"]


@pytest.fixture(scope="module")
def credit():
    """German credit: a DataFrame with string and categorical columns, and 0/1 risk."""
    return load_german_credit()


def credit_pipeline(final):
    return make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), CATEGORIES),
                                (StandardScaler(), NUMBERS)),
        final)


@pytest.mark.parametrize("final", [
    lambda: RandomForestClassifier(n_estimators=12, max_depth=6),
    lambda: LogisticRegression(C=0.5, max_iter=500),
], ids=["forest", "logistic"])
def test_pipeline_with_one_hot_categories_trained_without_seed_reproduces(store, credit, final):
    X, y = credit
    pipe = credit_pipeline(final())
    first = train(pipe, X, y, TrainConfig(val=0.2, name="credit"))
    seed = first.seed
    # the drawn seed is applied to the random_state left None, and recorded as used
    assert pipe[-1].random_state == seed
    key = f"{type(pipe[-1]).__name__.lower()}__random_state"
    assert any(key in note and str(seed) in note for note in first.notes)
    params = store.run(first.run_id).data.params
    assert params[f"model.{key}"] == str(seed) and params["train.seed"] == str(seed)
    r = reproduce("credit/1", X, y)
    assert r.verdict == "reproduced: identical weights, identical metrics"
    assert r.reproduced and r.differences == [] and r.notes == []
    assert r.reproduction == "credit/2" and _refs("credit") == ["credit/1", "credit/2"]
    again = load_version("credit/2")
    assert again[-1].random_state == seed
    assert compare_state(load_version("credit/1"), again) == []
    np.testing.assert_array_equal(pipe.predict_proba(X), again.predict_proba(X))
    b = resolve("credit/2")
    assert b.params[f"model.{key}"] == str(seed) and b.run_tags["aimodel.seed"] == str(seed)
    assert b.run_tags["aimodel.reproduced"] == "true" and b.tags["aimodel.parent"] == "credit/1"
    # registered after the comparison, with the version tags training itself would give it
    a = resolve("credit/1")
    assert set(b.tags) == {*a.tags, "aimodel.parent"} and b.tags["aimodel.data.sha256"] == a.tags[
        "aimodel.data.sha256"]
    assert {k: v for k, v in b.tags.items() if k.startswith("aimodel.sha256.")} == {
        k: v for k, v in b.run_tags.items() if k.startswith("aimodel.sha256.")}
    assert _nothing_running(store)


def test_explicit_random_state_is_kept_in_training_and_reproduction(store, cancer):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=7)
    first = train(forest, X, y, TrainConfig(name="rf"))
    assert forest.random_state == 7
    assert store.run(first.run_id).data.params["model.random_state"] == "7"
    assert not any("random_state" in note for note in first.notes)  # nothing was changed
    r = reproduce("rf/1", X, y)
    assert r.verdict == "reproduced: identical weights, identical metrics"
    assert load_version("rf/2").random_state == 7
    # --seed seeds the split and what is None, never the estimator's own random_state
    seeded = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=7)
    second = train(seeded, X, y, TrainConfig(seed=3, val=0.2, name="rf"))
    assert seeded.random_state == 7
    assert "kept the estimator's own random_state=7; --seed 3 seeds the split" in \
        " ".join(second.notes)
    assert reproduce("rf/3", X, y).reproduction == "rf/4"
    assert load_version("rf/4").random_state == 7


def test_each_training_of_an_unseeded_estimator_gets_its_own_seed(store, cancer):
    """The seed a training put into a random_state the user left None is not the user's: the
    next training of the same object seeds it again (or with --seed), unless the user set it."""
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=3, max_depth=2)
    first = train(forest, X, y, TrainConfig(name="rf"))
    assert forest.random_state == first.seed
    second = train(forest, X, y, TrainConfig(seed=first.seed + 1, name="rf"))
    assert forest.random_state == second.seed == first.seed + 1
    assert second.notes == [f"random_state set to the run's seed {second.seed} (it was None), "
                            "so the fit can be repeated"]
    forest.set_params(random_state=5)  # the user's own choice from now on
    third = train(forest, X, y, TrainConfig(seed=9, name="rf"))
    assert forest.random_state == 5 and "kept the estimator's own random_state=5" in \
        third.notes[0]
    assert [reproduce(f"rf/{v}", X, y).reproduced for v in (1, 2, 3)] == [True] * 3
    assert [load_version(f"rf/{v}").random_state for v in (4, 5, 6)] == [
        first.seed, second.seed, 5]


def test_a_failed_fit_puts_the_users_own_steps_back(store, cancer):
    """Seeding and fitting change nested steps in place; a failure restores those objects."""
    X, y = cancer
    scaler, forest = StandardScaler(), RandomForestClassifier(n_estimators=0)  # fit refuses 0
    pipe = make_pipeline(scaler, forest)
    with pytest.raises(InputError, match=r"Pipeline\.fit refused the data"):
        train(pipe, X, y, TrainConfig(name="broken"))
    assert pipe.steps[0][1] is scaler and pipe.steps[1][1] is forest
    assert forest.random_state is None and not hasattr(scaler, "mean_")
    assert "broken" not in registered_names(store)
    assert _nothing_running(store)


def test_a_different_retraining_reports_in_words_and_registers_nothing(store, credit):
    X, y = credit
    train(credit_pipeline(LogisticRegression(C=1.0, max_iter=500)), X, y,
          TrainConfig(name="credit"))
    n_runs = len(all_runs(store))
    # what a changed library would do, for real: the retrained estimator learns other weights
    other = credit_pipeline(LogisticRegression(C=0.2, max_iter=500))
    before = other.get_params(deep=True)["logisticregression__C"]
    r = reproduce("credit/1", X, y, model=other)
    assert not r.reproduced and r.reproduction is None and not r.identical_weights
    assert r.verdict.startswith(
        "not reproduced: steps[logisticregression].C differs by 0.8 (1 vs 0.2); ")
    paths = [d.path for d in r.differences]
    assert "steps[logisticregression].coef_" in paths
    coef = next(d for d in r.differences if d.path == "steps[logisticregression].coef_")
    assert coef.text.startswith("differs by up to ") and coef.magnitude > 1e-3
    assert r.max_weight_difference >= coef.magnitude
    assert "parameters differ from the record: logisticregression__C 1.0 -> 0.2" in r.notes
    assert r.notes[-1] == f"nothing was registered; the retrained model is in run {r.run_id}"
    # nothing registered, nothing RUNNING, the user's estimator untouched
    assert _refs("credit") == ["credit/1"] and _nothing_running(store)
    assert len(all_runs(store)) == n_runs + 1
    run = store.run(r.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["aimodel.reproduced"] == "false"
    assert run.data.tags["aimodel.reproduction_verdict"] == r.verdict
    assert not hasattr(other[-1], "coef_") and other.get_params()["logisticregression__C"] \
        == before
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["reproduced"] is False and doc["reproduction"] is None
    assert {"path": "steps[logisticregression].C", "text": "differs by 0.8 (1 vs 0.2)",
            "magnitude": pytest.approx(0.8)} in doc["differences"]
    # a tolerance does not accept a difference of parameters and weights this large
    assert not reproduce("credit/1", X, y, model=other, tolerance=1e-3).reproduced
    assert _refs("credit") == ["credit/1"]


def test_sklearn_refusals_start_no_run(store, credit):
    X, y = credit
    train(credit_pipeline(RandomForestClassifier(n_estimators=4)), X, y,
          TrainConfig(name="credit"))
    n_runs = len(all_runs(store))
    with pytest.raises(InputError, match="this data is not what credit/1 was trained on"):
        reproduce("credit/1", X.iloc[:900], y[:900])
    with pytest.raises(InputError, match="credit/1 is a Pipeline; pass an estimator of that "
                                         "class, not a RandomForestClassifier"):
        reproduce("credit/1", X, y, model=RandomForestClassifier())
    with pytest.raises(InputError, match="--tolerance must be a number >= 0"):
        reproduce("credit/1", X, y, tolerance=-1.0)
    with pytest.raises(InputError, match="invalid model name 'no spaces please'"):
        reproduce("credit/1", X, y, name="no spaces please")
    assert len(all_runs(store)) == n_runs and _refs("credit") == ["credit/1"]


def test_a_version_trained_unseeded_is_refused(store, cancer):
    """A version recorded before seeds were applied (random_state None) cannot be repeated."""
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=4, max_depth=3).fit(X, y)
    data = check_data(X, y)
    task = infer_task(data.y)
    fp = fingerprint(data)
    config = TrainConfig(name="old")
    with Recording.start(store, run_name="old", params={
            **records.train_params(config, "sklearn", 11),
            **records.model_params(forest, "sklearn")},
            tags=records.run_tags(model=forest, framework="sklearn", task=task, fingerprint=fp,
                                  seed=11, config=config, source=None)) as rec:
        rec.log_inputs(fp, None)
        rec.save_model(forest, manifest={"task": task.to_dict()})
        rec.register("old", task=task.task, data_sha256=fp["sha256"])
    n_runs = len(all_runs(store))
    with pytest.raises(InputError, match=r"old/1 was trained with random_state=None, before "
                                         r"%train applied its seed"):
        reproduce("old/1", X, y)
    assert len(all_runs(store)) == n_runs and _refs("old") == ["old/1"]


# -- comparing fitted state ---------------------------------------------------------------------
def _texts(a, b) -> list[str]:
    return [str(d) for d in compare_state(a, b)]


def test_compare_state_in_words(cancer):
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3)).fit(X, y)
        full = make_pipeline(StandardScaler(), LogisticRegression(max_iter=100)).fit(X, y)
    texts = _texts(short, full)
    n_iter = int(full[-1].n_iter_[0])
    assert texts[0] == "steps[logisticregression].max_iter differs (3 vs 100)"
    assert f"steps[logisticregression].n_iter_ differs (3 vs {n_iter})" in texts
    coef = next(d for d in compare_state(short, full) if d.path.endswith(".coef_"))
    assert coef.text == f"differs by up to {coef.magnitude:.3g}" and coef.magnitude > 0
    assert compare_state(short, short) == [] and compare_state(full, full) == []
    assert _texts(short, RandomForestClassifier()) == [
        "the model is a Pipeline vs a RandomForestClassifier"]


def test_compare_state_skips_timings(cancer):
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = cancer

    def search(depths):
        return GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": depths},
                            cv=3).fit(X, y)

    a, b = search([1, 2]), search([1, 2])
    assert a.cv_results_["mean_fit_time"].tolist() != b.cv_results_["mean_fit_time"].tolist()
    assert compare_state(a, b) == []  # fit and score times, refit_time_: the machine's
    texts = _texts(a, search([1, 3]))
    assert texts[0] == "param_grid['max_depth'][1] differs (2 vs 3)"


def test_compare_state_of_categories_objects_and_types():
    frame = pd.DataFrame({"colour": ["red", "blue", None, "red"], "n": [1.0, 2.0, 3.0, 4.0]})
    other = frame.assign(colour=["red", "green", None, "red"])

    def encoder(data):  # dtype=np.float64 is a class: compared as one, not by its state
        return make_column_transformer((OneHotEncoder(dtype=np.float64), ["colour"]),
                                       remainder="passthrough").fit(data)

    assert compare_state(encoder(frame), encoder(frame)) == []
    texts = _texts(encoder(frame), encoder(other))
    assert "transformers_[onehotencoder].categories_[0][0] differs ('blue' vs 'green')" in texts
    objects = np.array(["a", np.nan, None, 3], dtype=object)
    assert compare_state(objects, objects.copy()) == []  # NaN equals NaN, None equals None
    assert _texts(objects, np.array(["a", np.nan, None, 4], dtype=object)) == [
        "[3] differs (3 vs 4)"]
    assert _texts({"dtype": np.float64}, {"dtype": np.float32}) == [
        "['dtype'] differs (numpy.float64 vs numpy.float32)"]


def test_compare_state_of_dicts_sparse_and_random_states():
    a = {"m": sp.csr_matrix(np.array([[0.0, 1.0], [2.0, 0.0]])), "k": 1, "gone": [1]}
    b = {"m": sp.csr_matrix(np.array([[0.0, 1.5], [2.0, 0.0]])), "k": 1, "new": "x"}
    assert _texts(a, b) == ["['gone'] only in the original", "['new'] only in the retrained model",
                            "['m'] differs by up to 0.5"]
    explicit = sp.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2, 2])),
                             shape=(2, 2))
    assert compare_state(explicit, sp.csr_matrix(np.array([[0.0, 1.0], [0.0, 0.0]]))) == []
    assert _texts(sp.csr_matrix((2, 3)), sp.csr_matrix((3, 2))) == [
        "the model has shape (2, 3) vs (3, 2)"]
    rng = np.random.RandomState(0)
    assert compare_state(rng, np.random.RandomState(0)) == []
    rng.rand()
    assert _texts({"r": rng}, {"r": np.random.RandomState(0)}) == [
        "['r'] differs (a RandomState in another state)"]
    loop: dict = {"x": np.arange(3)}
    loop["self"] = loop
    twin: dict = {"x": np.arange(3)}
    twin["self"] = twin
    assert compare_state(loop, twin) == []  # cycles end
    assert _texts(np.array([1.0, np.nan]), np.array([1.0, 2.0])) == [
        "the model differs ([1, nan] vs [1, 2])"]  # NaN against a number: not a degree
    assert _texts(np.zeros(6), np.array([0, 0, 0, np.inf, 0, 0])) == [
        "the model differs in 1 of 6 values"]
    assert _texts(np.arange(10), np.arange(1, 11)) == ["the model differs in 10 of 10 values"]


def test_describe_and_tolerance():
    diffs = [Difference("coef_", "differs by up to 3.2e-05", 3.2e-05),
             Difference("n_iter_", "differs (12 vs 14)")]
    assert describe(diffs) == "coef_ differs by up to 3.2e-05; n_iter_ differs (12 vs 14)"
    assert describe(diffs * 3).endswith("; and 3 more differences")
    result = ReproduceResult("m/1", None, "r", identical_weights=False,
                             max_weight_difference=3.2e-05, identical_metrics=True,
                             tolerance=1.0, differences=diffs)
    # a tolerance accepts a difference of degree, never a count or shape that differs
    assert not result.reproduced
    assert result.verdict == ("not reproduced: coef_ differs by up to 3.2e-05; n_iter_ differs "
                              "(12 vs 14)")
    result.differences = diffs[:1]
    assert result.reproduced and result.verdict.startswith("reproduced within tolerance")
