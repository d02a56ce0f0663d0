"""The lock of ``%aimodel freeze`` and the comparison of ``%aimodel check``, on a real store."""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata

import numpy as np
import pytest

from aimodel_kernel.engine.core.errors import InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.lock import (
    build_lock,
    check,
    freeze,
    line_names,
    lock_path,
    packages_in_use,
    read_lock,
    recorded_runs,
)


def _train(X, y, line, **options):
    from sklearn.linear_model import LogisticRegression

    return train(LogisticRegression(solver="liblinear"), X, y, TrainConfig(**options),
                 source={"line": line, "cell": line})


def test_where_the_lock_goes(tmp_path):
    nb = tmp_path / "work" / "01_demo.ipynb"
    nb.parent.mkdir()
    assert lock_path(cwd=tmp_path) == tmp_path / "aimodel.lock.json"
    assert lock_path(notebook=str(nb), cwd=tmp_path) == nb.parent / "01_demo.aimodel-lock.json"
    assert lock_path(notebook="02_rel.ipynb", cwd=tmp_path) == tmp_path / "02_rel.aimodel-lock.json"
    assert lock_path("work", notebook=str(nb), cwd=tmp_path) == nb.parent / (
        "01_demo.aimodel-lock.json")  # a folder: the default name inside
    assert lock_path("x/my.json", cwd=tmp_path) == tmp_path / "x" / "my.json"
    assert lock_path(str(nb), cwd=tmp_path) == nb.parent / "01_demo.aimodel-lock.json"


def test_packages_in_use_follow_the_imports():
    base = packages_in_use({})
    assert set(base) == {"aimodel-kernel", "numpy", "scikit-learn", "mlflow"}
    assert base["numpy"] == metadata.version("numpy")
    with_pandas = packages_in_use({"pandas": object()})
    assert with_pandas["pandas"] == metadata.version("pandas")


def test_names_in_a_train_line():
    assert line_names("%train clf X_train y_train --seed 3") == {
        "model": "clf", "X": "X_train", "y": "y_train"}
    assert line_names("%train net ds --epochs 2  # a comment") == {
        "model": "net", "X": "ds", "y": None}
    assert line_names('%train clf "X[:100]" y') == {"model": "clf", "X": "X[:100]", "y": "y"}
    assert line_names("%reproduce a/1") == {}


def test_freeze_records_this_sessions_runs_deterministically(store, cancer, tmp_path):
    X, y = cancer
    _train(X, y, "%train clf X y --seed 3", seed=3, name="cancer")
    _train(X[:300], y[:300], "%train clf Xs ys")
    other = _train(X, y, "%train clf X y --seed 4  # from another notebook", seed=4)
    cells = ["X, y = load()", "r = %train clf X y --seed 3", "%train clf Xs ys"]
    path = tmp_path / "nb.aimodel-lock.json"
    result = freeze(path, store=store, notebook=str(tmp_path / "nb.ipynb"), since=0, cells=cells)
    lock = result.lock
    assert lock["notebook"] == "nb.ipynb" and lock["python"] == platform.python_version()
    assert [r["magic"] for r in lock["runs"]] == ["%train clf X y --seed 3", "%train clf Xs ys"]
    first, second = lock["runs"]
    assert first["seed"] == 3 and first["seed_in_line"] and first["name"] == "cancer"
    assert first["data"]["X"] == "X" and first["data"]["shape"] == [569, 30]
    assert first["data"]["sha256"] != second["data"]["sha256"]
    assert not second["seed_in_line"] and isinstance(second["seed"], int)
    assert any("drew seed" in n and f"--seed {second['seed']}" in n for n in result.notes)
    text = path.read_text()
    assert text.endswith("}\n") and json.loads(text) == lock
    assert text == json.dumps(lock, indent=2, sort_keys=True) + "\n"
    freeze(path, store=store, notebook=str(tmp_path / "nb.ipynb"), since=0, cells=cells)
    assert path.read_text() == text  # nothing changed: byte-identical, so git sees no diff
    assert other.run_id not in text and "run_id" not in text


def test_only_finished_runs_since_the_kernel_started(store, cancer):
    X, y = cancer
    _train(X, y, "%train clf X y --seed 1", seed=1)
    time.sleep(0.05)
    since = time.time()
    _train(X, y, "%train clf X y --seed 2", seed=2)
    with pytest.raises(InputError):
        _train(X, np.zeros(len(y)), "%train clf X zeros")  # one class: refused, run discarded
    runs = recorded_runs(store, since=since, cells=None)
    assert [r["magic"] for r in runs] == ["%train clf X y --seed 2"]


def test_no_store_no_runs_and_none_created(tmp_path):
    from aimodel_kernel.engine.store.tracking import get_store

    store = get_store()
    assert recorded_runs(store, since=0) == []
    assert not (tmp_path / ".aimodel").exists()


def test_check_reports_every_mismatch(store, cancer):
    X, y = cancer
    _train(X, y, "%train clf X y --seed 3", seed=3)
    _train(X, y, '%train clf "X[:, :5]" y', seed=5)
    lock = build_lock(runs=recorded_runs(store, since=0), notebook=None)
    same = check(lock, {"X": X, "y": y})
    assert not same.mismatches and not same.pending
    statuses = {(r.what, r.name): r.status for r in same.rows}
    assert statuses[("python", "python")] == "ok" and statuses[("package", "numpy")] == "ok"
    assert statuses[("data", "X, y")] == "ok"

    lock["packages"]["numpy"] = "0.0.1"
    lock["packages"]["not-a-real-package"] = "1.0"
    lock["python"] = "2.7.18"
    changed = check(lock, {"X": X[:, :10], "y": y})
    bad = {(r.what, r.name): r for r in changed.mismatches}
    assert set(bad) == {("package", "numpy"), ("package", "not-a-real-package"),
                        ("python", "python"), ("data", "X, y")}
    assert bad[("package", "numpy")].current == metadata.version("numpy")
    assert bad[("package", "not-a-real-package")].detail == "not installed"
    assert "shape [569, 10] here, [569, 30] when frozen" in bad[("data", "X, y")].detail

    fresh = check(lock, {})  # a colleague's kernel before anything ran
    pending = {r.name: r.detail for r in fresh.pending}
    assert "X is not defined yet" in pending["X, y"]
    (expression,) = [r for r in fresh.rows if r.name == "X[:, :5], y"]
    assert expression.status == "note" and "never evaluated" in expression.detail


def test_reading_a_lock(tmp_path):
    with pytest.raises(NotFoundError, match="run %aimodel freeze"):
        read_lock(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable lock"):
        read_lock(bad)
    bad.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not an aimodel lock"):
        read_lock(bad)
