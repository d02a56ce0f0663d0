"""``%explain`` in a real in-process IPython: logging onto the ``%train`` run, the rendered
bundle, ``%diff`` reading what it logged, and bad input as a ``UsageError`` that changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import all_runs, run_artifact
from IPython.core.error import UsageError

from aimodel_kernel.display.explain_report import ExplainReport
from aimodel_kernel.engine.store.registry import resolve
from aimodel_kernel.engine.store.tracking import get_store
from aimodel_kernel.magics.explain import ExplainMagics

pytest.importorskip("shap")


@pytest.fixture
def trained(ip):
    """``clf`` (logistic regression on the breast-cancer data) trained as version ``lr/1``."""
    ip.run_cell("%train clf X y --name lr").raise_error()
    return ip


def _artifacts(store, run_id: str, folder: str) -> list[str]:
    return sorted(a.path for a in store.client.list_artifacts(run_id, folder))


def test_explain_after_train_logs_onto_the_run(trained):
    r = trained.run_line_magic("explain", "clf X --top 5")
    assert isinstance(r, ExplainReport) and r.logged
    assert r.explainer == "LinearExplainer" and r.sample_size == 569
    store = get_store()
    version = resolve("lr/1")
    assert r.run_id == version.run_id
    top = list(r.importance)[:5]
    metrics = store.run(version.run_id).data.metrics
    logged = {k[len("explain.importance."):]: v for k, v in metrics.items()
              if k.startswith("explain.importance.")}
    assert logged == pytest.approx({f: r.importance[f] for f in top})
    assert metrics["explain.rows"] == 569 and metrics["explain.background"] == 100
    doc = json.loads(run_artifact(store, version.run_id, "explain/importance.json").read_text())
    assert doc["method"] == "shap.LinearExplainer"
    assert doc["features"] == list(r.importance) and len(doc["features"]) == 30
    assert doc["importance"] == pytest.approx(list(r.importance.values()))
    png = run_artifact(store, version.run_id, "explain/plots.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png == r.png()
    assert "explanation" in trained.run_line_magic("versions", "lr").text()  # recorded


def test_a_local_explanation_logs_under_its_row(trained):
    pytest.importorskip("lime")
    r = trained.run_line_magic("explain", "clf X --row 3 --method both")
    assert r.logged and r.scope == "local" and r.lime is not None
    assert r.artifact_dir == "explain/local/row_3"
    store = get_store()
    assert _artifacts(store, r.run_id, "explain/local/row_3") == [
        "explain/local/row_3/explanation.json", "explain/local/row_3/plots.png"]
    doc = json.loads(run_artifact(store, r.run_id, "explain/local/row_3/explanation.json")
                     .read_text())
    assert doc["row"] == 3 and doc["lime"]["method"] == "lime"
    assert np.allclose(doc["values"], r.values)
    # a local explanation leaves the global record alone
    assert store.artifact(r.run_id, "explain/importance.json") is None


def test_report_bundle(ip, cancer):
    from sklearn.ensemble import RandomForestClassifier

    X, y = cancer
    ip.user_ns["rf"] = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    r = ip.run_line_magic("explain", "rf X --max-rows 100 --top 4")
    assert not r.logged  # fitted outside %train: nothing to log onto
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png",
                           "application/vnd.aimodel.explain.v1+json"}
    text = bundle["text/plain"]
    assert text.startswith("TreeExplainer on a seeded sample of 100 of 569 rows: explains the "
                           "probability of class 1")
    assert "26 more features in r.importance" in text
    top = list(r.importance)[:4]
    assert all(f in text and f in bundle["text/html"] for f in top)
    assert "<table>" in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]
    payload = bundle["application/vnd.aimodel.explain.v1+json"]
    doc = payload["data"]
    assert payload["sections"][0]["title"] == "Top features"
    assert [row[0] for row in payload["sections"][0]["rows"]] == top
    assert doc["explainer"] == "TreeExplainer" and doc["sample_size"] == 100
    assert "values" not in doc and list(doc["importance"]) == list(r.importance)
    assert r.to_dict()["values"] == r.values.tolist()  # the full result stays on r
    json.dumps(doc)


def test_diff_compares_two_versions_explanations(trained):
    ip = trained
    ip.run_line_magic("explain", "clf X")
    from sklearn.ensemble import RandomForestClassifier

    ip.user_ns["clf"] = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    ip.run_cell("%train clf X y --name lr").raise_error()
    forest = ip.run_line_magic("explain", "clf X")
    d = ip.run_line_magic("diff", "lr/1 lr/2 --no-log")
    assert d.importance is not None
    assert d.importance["method_a"] == "shap.LinearExplainer"
    assert d.importance["method_b"] == "shap.TreeExplainer"
    assert d.importance["top_b"] == list(forest.importance)[:10]


@pytest.mark.parametrize(("line", "message"), [
    ("clf X --row 569", "--row 569 is out of range: X has 569 rows, so --row takes 0 to 568"),
    ("clf X --method lime", "--method lime explains one row (LIME is local)"),
    ("clf X --class 7", "--class '7' is not a class of clf"),
    ("clf X --method tree", "TreeExplainer cannot explain LogisticRegression"),
    ("clf X --method gradient", "--method gradient is for PyTorch modules"),
    ("clf X --top 0", "--top must be a whole number of at least 1"),
    ("clf nothing", "X 'nothing' is not defined in the notebook"),
    ("clf X --method magic", "argument --method: invalid choice"),
])
def test_bad_input_is_a_usage_error_that_changes_nothing(trained, line, message):
    store = get_store()
    runs = all_runs(store)
    run_id = resolve("lr/1").run_id
    metrics = dict(store.run(run_id).data.metrics)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        trained.run_line_magic("explain", line)
    assert len(all_runs(store)) == len(runs)
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]
    assert store.run(run_id).data.metrics == metrics
    assert _artifacts(store, run_id, "explain") == []


def test_unfitted_model_and_no_log(ip):
    from sklearn.ensemble import RandomForestClassifier

    ip.user_ns["fresh"] = RandomForestClassifier()
    with pytest.raises(UsageError, match="fresh is not fitted; train it first: %train fresh X y"):
        ip.run_line_magic("explain", "fresh X")
    ip.run_cell("%train clf X y --name lr").raise_error()
    r = ip.run_line_magic("explain", "clf X --no-log --max-rows 50")
    assert not r.logged and r.sample_size == 50
    run_id = resolve("lr/1").run_id
    assert not any(k.startswith("explain.") for k in get_store().run(run_id).data.metrics)


def test_help_shows_examples():
    doc = ExplainMagics.explain.__doc__
    assert "Examples" in doc and "%explain clf X_test --row 17" in doc
    assert "--method both" in doc


def test_the_slow_explainer_warning_shows_even_where_warnings_are_filtered(ip):
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    from aimodel_kernel.engine.explanation.entry import SlowExplanationWarning

    X, y = load_iris(return_X_y=True)
    ip.user_ns.update(svc=SVC().fit(X, y), Xi=np.repeat(X, 2, axis=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")  # what a once-per-place filter does to a repeat
        r = ip.run_line_magic("explain", "svc Xi --method kernel --max-rows 205 --background 4")
    shown = [w for w in caught if issubclass(w.category, SlowExplanationWarning)]
    assert len(shown) == 1 and "KernelExplainer on 205 rows: about" in str(shown[0].message)
    assert "--max-rows 102 is quicker" in str(shown[0].message)
    assert r.sample_size == 205 and r.explainer == "KernelExplainer"
