"""The server extension's REST handlers, through a real Jupyter server and a real MLflow store.

Every answer read here, 200 or error, is checked against ``api.v1.schema.json``.
"""

from __future__ import annotations

import json
import math
import shutil
from urllib.parse import urlencode

import pytest

# pytest-jupyter's server fixtures for this module only: its autouse fixtures (an event loop per
# test, server clean-up) would clash with Playwright's loop in the browser tests if enabled for
# the whole suite. The tests are plain functions that run the client's coroutines on its loop.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from tornado.httpclient import HTTPClientError

from aimodel_kernel.display import view
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store import tracking
from aimodel_kernel.engine.store.registry import promote
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.server import schema


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"aimodel_kernel": True}}}


@pytest.fixture
def project(jp_root_dir, template_db, monkeypatch):
    """``proj/`` under the server's root with two versions of ``m`` in its ``.aimodel/`` store."""
    folder = jp_root_dir / "proj"
    (folder / ".aimodel").mkdir(parents=True)
    shutil.copyfile(template_db, folder / ".aimodel" / "mlflow.db")
    monkeypatch.delenv("AIMODEL_HOME", raising=False)
    monkeypatch.chdir(folder)  # as a kernel started for a notebook in proj/ would be
    tracking._stores.clear()
    X, y = load_breast_cancer(return_X_y=True)
    for C in (1.0, 0.01):
        train(LogisticRegression(C=C, solver="liblinear"), X, y, TrainConfig(name="m", seed=0))
    promote("m/2", "champion")
    tracking._stores.clear()
    return folder


@pytest.fixture
def fetch(jp_fetch, jp_asyncio_loop):
    """``jp_fetch`` run to completion: an authenticated GET of ``/aimodel/api/<endpoint>``."""
    return lambda endpoint, **params: jp_asyncio_loop.run_until_complete(
        jp_fetch("aimodel", "api", endpoint, params=params))


def get_json(fetch, endpoint: str, **params):
    """The JSON body of a 200 answer, checked against the schema of ``endpoint``'s body."""
    response = fetch(endpoint, **params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    schema.validate(body, endpoint)
    return body


def error_of(fetch, endpoint: str, **params) -> tuple[int, dict]:
    """The status and JSON body of an error answer, the body checked against the schema."""
    with pytest.raises(HTTPClientError) as info:
        fetch(endpoint, **params)
    assert info.value.response.headers["Content-Type"].startswith("application/json")
    body = json.loads(info.value.response.body)
    schema.validate(body, "error")
    return info.value.code, body


def test_models_lists_the_notebook_directorys_store(fetch, project):
    body = get_json(fetch, "models", dir="proj")
    assert body["store"]["embedded"] is True
    assert body["store"]["uri"].endswith("proj/.aimodel/mlflow.db")
    [model] = body["models"]
    assert model["name"] == "m"
    newest, oldest = model["versions"]
    assert (newest["ref"], oldest["ref"]) == ("m/2", "m/1")
    assert newest["aliases"] == ["champion"] and oldest["aliases"] == []
    assert newest["model_type"] == "LogisticRegression" and newest["task"] == "binary"
    assert newest["status"] == "FINISHED" and len(newest["run_id"]) == 32
    assert 0.5 < newest["metrics"]["train_accuracy"] <= 1.0
    assert newest["metrics"]["train_accuracy"] != oldest["metrics"]["train_accuracy"]


def test_a_non_finite_metric_is_sent_as_null(fetch, project):
    store = tracking.get_store()
    store.log_metrics(store.versions("m")[1].run_id, [("val_loss", math.nan, 0)])
    body = get_json(fetch, "models", dir="proj")
    newest, oldest = body["models"][0]["versions"]
    assert newest["metrics"]["val_loss"] is None and "val_loss" not in oldest["metrics"]
    assert newest["classes"] == 2


def test_a_fault_is_a_500_with_a_json_error_body(fetch, project, monkeypatch):
    from aimodel_kernel.server import handlers

    def broken(settings):
        raise RuntimeError("a fault deep down")

    monkeypatch.setattr(handlers, "list_models", broken)
    code, body = error_of(fetch, "models", dir="proj")
    assert code == 500
    assert "deep down" not in json.dumps(body)  # the fault is logged, not sent


def test_a_directory_without_a_store_is_empty_and_stays_so(fetch, project, jp_root_dir):
    (jp_root_dir / "other").mkdir()
    body = get_json(fetch, "models", dir="other")
    assert body["models"] == []
    assert not (jp_root_dir / "other" / ".aimodel").exists()  # reading created nothing


def test_tracking_uri_of_the_server_environment_wins(fetch, project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / '.aimodel' / 'mlflow.db'}")
    body = get_json(fetch, "models", dir="")
    assert body["store"]["embedded"] is False
    assert [m["name"] for m in body["models"]] == ["m"]


def test_diff_is_the_diff_report_and_logs_nothing(fetch, project):
    body = get_json(fetch, "diff", dir="proj", a="m/1", b="m@champion")
    payload = body["payload"]
    view.validate(payload)
    assert payload["kind"] == "diff"
    assert payload["summary"].startswith("m/2 vs m/1")
    assert payload["data"]["params"] == {"model.C": {"a": 1.0, "b": 0.01}}
    assert body["png"] is None or body["png"].startswith("iVBOR")
    tracking._stores.clear()
    store = tracking.get_store()
    run_b = store.versions("m")[1].run_id
    assert store.artifact(run_b, "diffs/m_1_vs_m_2.json") is None


@pytest.mark.parametrize("params", [
    {"dir": "../"}, {"dir": "proj/../.."}, {"dir": "/etc"}, {"dir": "~"}, {"dir": "proj\\x"},
    {"dir": "missing"}, {"dir": "proj/.aimodel/mlflow.db"},
])
def test_bad_directories_get_400(fetch, project, params):
    code, body = error_of(fetch, "models", **params)
    assert code == 400, body
    assert body["message"] and "Traceback" not in body["message"]


def test_a_link_out_of_the_root_gets_400(fetch, project, jp_root_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (jp_root_dir / "escape").symlink_to(outside, target_is_directory=True)
    code, body = error_of(fetch, "models", dir="escape")
    assert code == 400 and "outside" in body["message"]


@pytest.mark.parametrize(("params", "code"), [
    ({"dir": "proj", "a": "m/1"}, 400),                       # b missing
    ({"dir": "proj", "a": "m/1", "b": "../../etc/passwd"}, 400),
    ({"dir": "proj", "a": "bad name!", "b": "m/2"}, 400),
    ({"dir": "proj", "a": "m/1", "b": "m/9"}, 404),
    ({"dir": "proj", "a": "nope/1", "b": "m/2"}, 404),
])
def test_bad_version_references(fetch, project, params, code):
    got, body = error_of(fetch, "diff", **params)
    assert got == code, body
    assert "\n" not in body["message"]


def test_a_tampered_model_file_gets_409(fetch, project):
    store = tracking.get_store()
    run = store.versions("m")[0].run_id
    for path in (store.local_artifact_root() or project).rglob("*"):
        if run in str(path) and path.is_file() and path.suffix in (".skops",):
            path.write_bytes(path.read_bytes() + b"x")
            break
    else:
        pytest.fail("no model file found to tamper with")
    code, body = error_of(fetch, "diff", dir="proj", a="m/1", b="m/2")
    assert code == 409
    assert "sha-256" in body["message"].lower() or "checksum" in body["message"].lower()


@pytest.mark.parametrize("endpoint", ["models", "diff"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "token not-the-token"}])
def test_unauthenticated_requests_get_403(fetch, http_server_client, jp_base_url,
                                          jp_asyncio_loop, project, endpoint, headers):
    query = urlencode({"dir": "proj", "a": "m/1", "b": "m/2"})
    response = jp_asyncio_loop.run_until_complete(http_server_client.fetch(
        f"{jp_base_url}aimodel/api/{endpoint}?{query}", headers=headers, raise_error=False))
    assert response.code == 403
    assert b"m/1" not in response.body and b"train_accuracy" not in response.body


def test_a_root_the_server_abbreviates_with_a_tilde(tmp_path, monkeypatch):
    from aimodel_kernel.server.store_location import settings_for

    monkeypatch.delenv("AIMODEL_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "work" / "nb").mkdir(parents=True)
    assert settings_for("~/work", "nb").resolved_home() == tmp_path / "work" / "nb" / ".aimodel"


# -- reading never creates, stays inside the root, keeps few stores open -------------------------
def test_a_diff_in_a_folder_without_a_store_is_404_and_creates_nothing(fetch, project,
                                                                     jp_root_dir):
    (jp_root_dir / "empty").mkdir()
    code, body = error_of(fetch, "diff", dir="empty", a="m/1", b="m/2")
    assert code == 404 and "no store" in body["message"]
    assert list((jp_root_dir / "empty").iterdir()) == []


@pytest.mark.parametrize("linked", [".aimodel", ".aimodel/mlflow.db", ".aimodel/artifacts"])
def test_a_store_linked_out_of_the_root_gets_400(fetch, project, jp_root_dir, tmp_path_factory,
                                                 linked):
    """A folder of the root whose store (or its database, or its artifacts) is a link to a
    store outside the root is refused, as a linked folder is."""
    outside = tmp_path_factory.mktemp("outside") / "store"
    shutil.copytree(project / ".aimodel", outside)
    folder = jp_root_dir / "linked"
    folder.mkdir()
    if linked == ".aimodel":
        (folder / ".aimodel").symlink_to(outside, target_is_directory=True)
    else:
        (folder / ".aimodel").mkdir()
        shutil.copytree(project / ".aimodel", folder / ".aimodel", dirs_exist_ok=True)
        part = folder / linked
        shutil.rmtree(part) if part.is_dir() else part.unlink()
        part.symlink_to(outside / part.name, target_is_directory=part.name == "artifacts")
    for endpoint, params in (("models", {}), ("diff", {"a": "m/1", "b": "m/2"})):
        code, body = error_of(fetch, endpoint, dir="linked", **params)
        assert code == 400 and "outside the server's root" in body["message"], body
    # a link that stays inside the root is a store like any other
    (jp_root_dir / "inside").mkdir()
    (jp_root_dir / "inside" / ".aimodel").symlink_to(project / ".aimodel",
                                                     target_is_directory=True)
    assert [m["name"] for m in get_json(fetch, "models", dir="inside")["models"]] == ["m"]


def test_a_copied_project_is_read_from_the_copy(fetch, project, jp_root_dir):
    """The copy's database records the original's paths; the server (which writes nothing)
    reads the copy's files, so a changed original does not matter."""
    shutil.copytree(project, jp_root_dir / "copy")
    for model_file in (project / ".aimodel" / "artifacts").rglob("model.skops"):
        model_file.write_bytes(model_file.read_bytes() + b"x")
    body = get_json(fetch, "diff", dir="copy", a="m/1", b="m/2")
    assert body["payload"]["data"]["params"] == {"model.C": {"a": 1.0, "b": 0.01}}
    code, _ = error_of(fetch, "diff", dir="proj", a="m/1", b="m/2")
    assert code == 409  # the original's files were changed, and only the original reads them


def test_polling_many_folders_keeps_few_stores_open(fetch, project, jp_root_dir):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folders = [f"p{i}" for i in range(tracking.MAX_OPEN_STORES + 3)]
    for name in folders:
        shutil.copytree(project, jp_root_dir / name)
        assert [m["name"] for m in get_json(fetch, "models", dir=name)["models"]] == ["m"]
    assert len(tracking._stores) <= tracking.MAX_OPEN_STORES
    open_dbs = {uri for uri in SqlAlchemyStore._engine_map if str(jp_root_dir) in uri}
    assert len(open_dbs) <= tracking.MAX_OPEN_STORES
    assert not any(f"/{folders[0]}/" in uri for uri in open_dbs)  # the oldest was closed
