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
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
    return db


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test works in its own directory, with its own store settings."""
    from aimodel_kernel.engine import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIMODEL_HOME", str(tmp_path / ".aimodel"))
    tracking._stores.clear()
    yield
    tracking._stores.clear()


@pytest.fixture
def store(tmp_path, template_db):
    """The default embedded store ``<tmp>/.aimodel`` backed by a copy of the template DB."""
    from aimodel_kernel.engine.tracking import get_store

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


def state_equal(a: dict, b: dict) -> bool:
    """Two ``__dict__`` / ``state_dict`` snapshots hold the same keys and values."""
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if hasattr(x, "detach"):
            if not (hasattr(y, "detach") and x.shape == y.shape and bool((x == y).all())):
                return False
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x, dtype=object), np.asarray(y, dtype=object)):
                return False
        elif hasattr(x, "get_params"):
            if type(x) is not type(y) or not state_equal(vars(x), vars(y)):
                return False
        elif isinstance(x, list | tuple) and x and hasattr(x[0], "get_params"):
            if len(x) != len(y) or not all(
                state_equal(vars(p), vars(q)) for p, q in zip(x, y, strict=True)
            ):
                return False
        elif x != y:
            return False
    return True


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
    _shell.user_ns.update(X=X, y=y, clf=LogisticRegression(max_iter=2000))
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
