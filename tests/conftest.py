"""Shared fixtures: an isolated working directory, a real MLflow SQLite store, a real IPython.

Creating an MLflow SQLite database runs its migrations (seconds), so one template database is
built per session and copied into each test's ``.aimodel/`` folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with every migration applied and no experiment of ours."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("template")
    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # MLflow's own "Default" experiment points at ./mlruns: keep it here
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments()
        client.search_registered_models()
    return db


@pytest.fixture(scope="session", autouse=True)
def _template_cache(tmp_path_factory):
    """The migrated MLflow template new stores are copied from, kept for the session only
    (not in the user's ~/.cache)."""
    os.environ["AIMODEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("aimodel-cache"))
    yield
    os.environ.pop("AIMODEL_CACHE_DIR", None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test works in its own directory, with its own store settings."""
    from aimodel_kernel.engine.store import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("AIMODEL_SIGNING_KEY", "AIMODEL_TRUSTED_KEYS", "AIMODEL_REQUIRE_SIGNED",
                 "AIMODEL_TRUSTED_TYPES"):  # the user's signing and trust settings stay out
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIMODEL_HOME", str(tmp_path / ".aimodel"))
    tracking._stores.clear()
    yield
    tracking._stores.clear()


@pytest.fixture
def store(tmp_path, template_db):
    """The default embedded store ``<tmp>/.aimodel`` backed by a copy of the template DB."""
    from aimodel_kernel.engine.store.tracking import get_store

    home = tmp_path / ".aimodel"
    home.mkdir(exist_ok=True)
    shutil.copyfile(template_db, home / "mlflow.db")
    return get_store()


def all_runs(store) -> list:
    """Every run of the store, deleted ones included (what ``mlflow ui`` could show)."""
    from mlflow.entities import ViewType

    client = store.client
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000)


def registered_names(store) -> list[str]:
    return [m.name for m in store.client.search_registered_models()]


def run_artifact(store, run_id: str, path: str) -> Path:
    """The local file of a run's artifact in the embedded store."""
    local = store.download(run_id, path)
    assert local.exists(), path
    return local


def same_state(a, b) -> bool:
    """Two objects hold the same state, compared structurally (fitted parts included).

    Arrays compare by value (field by field for structured arrays such as tree nodes); other
    objects by their ``__getstate__`` (an estimator's ``__dict__``, a tree's arrays).
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.names:
            return all(same_state(a[name], b[name]) for name in a.dtype.names)
        equal_nan = a.dtype.kind in "fc"
        return bool(np.array_equal(a, b, equal_nan=equal_nan))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str | bytes | int | float | bool | type(None) | type | np.generic):
        return a == b or (a != a and b != b)
    state_a, state_b = a.__getstate__(), b.__getstate__()
    if state_a is None:
        return a == b
    return same_state(state_a, state_b)


def weights_equal(a: dict, b: dict) -> bool:
    """Two ``state_dict`` snapshots hold bitwise the same tensors."""
    return set(a) == set(b) and all(a[k].shape == b[k].shape and bool((a[k] == b[k]).all())
                                    for k in a)


def clone_state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- data ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)


def mlp(n_in: int = 64, n_out: int = 10, hidden: int = 32, seed: int = 0):
    """A small, seeded MLP."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


# -- IPython ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "aimodel_kernel")
    return ip


@pytest.fixture
def ip(_shell, store, cancer):
    """The in-process shell with the extension loaded and breast-cancer data and an estimator."""
    from sklearn.linear_model import LogisticRegression

    before = set(_shell.user_ns)
    X, y = cancer
    _shell.user_ns.update(X=X, y=y, clf=LogisticRegression(solver="liblinear"))
    yield _shell
    for name in set(_shell.user_ns) - before:
        del _shell.user_ns[name]
    for name in ("X", "y", "clf"):
        _shell.user_ns.pop(name, None)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra)
    return env


PYTHON = sys.executable
