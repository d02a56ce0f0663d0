"""Where runs are stored and what a run records, read back with MLflow's own client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import all_runs, mlp, run_artifact
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier

from aimodel_kernel.config import Settings
from aimodel_kernel.engine.core.errors import InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.registry import list_versions, resolve
from aimodel_kernel.engine.store.serialize import sha256_file
from aimodel_kernel.engine.store.tracking import check_model_name, get_store
from aimodel_kernel.engine.training.entry import train


def test_default_store_is_beside_the_notebook(tmp_path, monkeypatch, store, cancer):
    monkeypatch.delenv("AIMODEL_HOME")  # the plain default: .aimodel/ in the working directory
    from aimodel_kernel.engine.store import tracking

    tracking._stores.clear()
    default = get_store()
    assert default.home == tmp_path.resolve() / ".aimodel"
    assert default.uri == f"sqlite:///{tmp_path.resolve() / '.aimodel' / 'mlflow.db'}"
    result = train(RandomForestClassifier(n_estimators=3), *cancer, TrainConfig(name="rf"))
    artifacts = tmp_path / ".aimodel" / "artifacts"
    files = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert {"model.skops", "manifest.json", "environment.json", "fingerprint.json"} <= files
    assert not (tmp_path / "mlruns").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aimodel"]
    # what `mlflow ui --backend-store-uri sqlite:///.aimodel/mlflow.db` reads
    uri = f"sqlite:///{tmp_path / '.aimodel' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("aimodel")
    assert experiment.artifact_location == artifacts.resolve().as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id]
    assert runs[0].info.artifact_uri.startswith(artifacts.resolve().as_uri())
    assert client.get_model_version("rf", "1").run_id == result.run_id


def test_tracking_uri_redirects_the_store(tmp_path, monkeypatch, template_db, cancer):
    other = tmp_path / "elsewhere" / "shared.db"
    other.parent.mkdir()
    shutil.copyfile(template_db, other)
    uri = f"sqlite:///{other}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert get_store().uri == uri
    result = train(RandomForestClassifier(n_estimators=3), *cancer, TrainConfig(name="rf"))
    assert result.tracking_uri == uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert client.get_model_version("rf", "1").run_id == result.run_id
    assert not (tmp_path / ".aimodel" / "mlflow.db").exists()
    # artifacts go beside that database, not into ./mlruns
    assert not (tmp_path / "mlruns").exists()
    assert client.get_run(result.run_id).info.artifact_uri.startswith(
        (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri())
    explicit = Settings(tracking_uri=f"sqlite:///{tmp_path / 'x.db'}")
    assert get_store(explicit).uri.endswith("x.db") and not explicit.uses_embedded_store()


def test_a_torch_run_records_everything(store, digits):
    X, y = digits
    config = TrainConfig(epochs=3, lr=1e-2, val=0.2, seed=21, name="digits-mlp")
    result = train(mlp(), X, y, config, source={"line": "%train net X y", "cell": "x = 1"})
    run = store.run(result.run_id)
    params, tags = run.data.params, run.data.tags
    # every option, defaults included
    assert {f"train.{k}" for k in TrainConfig.field_names()} <= set(params)
    assert params["train.epochs"] == "3" and params["train.batch_size"] == "64"
    assert params["train.optimizer"] == '"adamw"' and params["train.seed"] == "21"
    assert params["model.class"] == "Sequential"
    assert int(params["model.parameters"]) == 64 * 32 + 32 + 32 * 10 + 10
    assert tags["aimodel.seed"] == "21" and tags["aimodel.deterministic"] == "false"
    assert tags["aimodel.framework"] == "torch" and tags["aimodel.task"] == "multiclass"
    assert tags["aimodel.model_class"] == "torch.nn.modules.container.Sequential"
    assert tags["aimodel.magic"] == "%train net X y"
    # per-epoch metrics, one entry per epoch
    for key in ("loss", "val_loss", "val_accuracy"):
        history = store.metric_history(result.run_id, key)
        assert [step for step, _ in history] == [1, 2, 3], key
        assert [v for _, v in history] == pytest.approx([h[key] for h in result.history])
    assert run.data.metrics["val_accuracy"] == pytest.approx(result.metrics["val_accuracy"])
    # the data it saw
    fingerprint = json.loads(run_artifact(store, result.run_id, "data/fingerprint.json")
                             .read_text())
    assert fingerprint == result.fingerprint and fingerprint["shape"] == [1797, 64]
    assert tags["aimodel.data.sha256"] == fingerprint["sha256"]
    assert json.loads(tags["aimodel.data.shape"]) == [1797, 64]
    # the environment it ran in
    env = json.loads(run_artifact(store, result.run_id, "environment.json").read_text())
    for package in ("numpy", "torch", "mlflow", "scikit-learn", "safetensors"):
        assert env["packages"][package], package
    assert env["packages"]["python"].count(".") == 2
    assert run_artifact(store, result.run_id, "source/magic.txt").read_text() == "%train net X y"
    assert run_artifact(store, result.run_id, "source/cell.py").read_text() == "x = 1"
    # the model files, each with its SHA-256
    model_dir = run_artifact(store, result.run_id, "model")
    assert {"model.safetensors", "model.pt2"} <= set(result.model_files)
    for name, digest in result.model_files.items():
        assert sha256_file(model_dir / name) == digest == tags[f"aimodel.sha256.{name}"]
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["framework"] == "torch" and manifest["files"] == result.model_files
    assert manifest["input"]["shape"] == [None, 64]
    size = sum((model_dir / n).stat().st_size for n in result.model_files)
    assert int(tags["aimodel.model_bytes"]) == size
    assert tags["aimodel.version"] == "1" and result.version == 1


def test_versions_count_up_and_resolve(store, cancer):
    X, y = cancer
    numbers = [train(RandomForestClassifier(n_estimators=2), X, y,
                     TrainConfig(name="cancer-rf")).version for _ in range(3)]
    train(RandomForestClassifier(n_estimators=2), X, y, TrainConfig(name="other"))
    assert numbers == [1, 2, 3]
    listed = list_versions("cancer-rf")
    assert [v.ref for v in listed.versions] == ["cancer-rf/1", "cancer-rf/2", "cancer-rf/3"]
    assert all(v.status == "FINISHED" and "train_accuracy" in v.metrics for v in listed.versions)
    assert len(list_versions().versions) == 4
    assert resolve("cancer-rf").version == 3
    assert resolve("cancer-rf/2").run_id == listed.versions[1].run_id
    store.set_alias("cancer-rf", "champion", 2)
    assert resolve("cancer-rf@champion").version == 2
    with pytest.raises(NotFoundError, match="no version 9"):
        resolve("cancer-rf/9")
    with pytest.raises(NotFoundError, match="known: cancer-rf, other"):
        list_versions("missing")
    json.dumps(listed.to_dict())


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-lead", "x" * 129, "semi;colon"])
def test_invalid_model_names(name):
    with pytest.raises(InputError, match="invalid model name"):
        check_model_name(name)
    with pytest.raises(InputError, match="invalid model name"):
        TrainConfig(name=name)


def test_store_helpers(store):
    run_id = store.start_run(run_name="t", params={"a": 1, "b": "x" * 7000}, tags={"t": "v"})
    store.log_bytes(run_id, b"\x00\x01", "blobs/raw.bin")
    assert run_artifact(store, run_id, "blobs/raw.bin").read_bytes() == b"\x00\x01"
    store.log_metrics(run_id, [("odd key(1)", 2.0, None)])
    run = store.run(run_id)
    assert run.data.metrics == {"odd key_1_": 2.0}
    assert len(run.data.params["b"]) == 6000  # clipped to MLflow's limit
    store.discard_run(run_id)
    runs = all_runs(store)
    assert runs[0].info.lifecycle_stage == "deleted" and runs[0].info.status == "FAILED"
    with pytest.raises(NotFoundError):
        store.run("0" * 32)
    assert isinstance(store.download(run_id, "blobs/raw.bin"), Path)
