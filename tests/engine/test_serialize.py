"""Pickle-free model files and their SHA-256 checks, through registered versions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import clone_state, mlp, run_artifact, weights_equal
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aimodel_kernel.engine.core.errors import ChecksumError, InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.registry import load_version, parse_ref, resolve
from aimodel_kernel.engine.store.serialize import (
    framework_of,
    load_model,
    save_model,
    sha256_file,
    verify,
)
from aimodel_kernel.engine.training.entry import train


def test_sklearn_version_loads_with_equal_predictions(store, cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    train(pipe, X, y, TrainConfig(name="cancer"))
    loaded = load_version("cancer/1")
    assert loaded is not pipe and type(loaded) is type(pipe)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    model_dir = run_artifact(store, resolve("cancer/1").run_id, "model")
    assert not list(model_dir.glob("*.pkl")) and not list(model_dir.glob("*.pickle"))


def test_torch_version_loads_as_program_and_into_a_module(store, digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    net = mlp()
    train(net, X, y, TrainConfig(epochs=1, seed=0, checkpoint=False, name="digits"))
    program = load_version("digits/1")
    net.eval()
    for rows in (1, 2, 7, 300):  # any batch size, not only the example's
        xb = torch.from_numpy(X[:rows])
        with torch.no_grad():
            assert torch.allclose(program(xb), net(xb), atol=1e-6), rows
    fresh = mlp(seed=99)
    assert not weights_equal(clone_state(fresh), clone_state(net))
    assert load_version("digits/1", into=fresh) is fresh
    assert weights_equal(clone_state(fresh), clone_state(net))


def test_weights_only_version_needs_into(store, digits):
    X, y = digits
    net = mlp()
    train(net, X, y, TrainConfig(epochs=1, checkpoint=False, export=False, name="plain"))
    with pytest.raises(InputError, match="into=model"):
        load_version("plain")
    assert weights_equal(clone_state(load_version("plain", into=mlp(seed=5))), clone_state(net))


@pytest.mark.parametrize("framework", ["sklearn", "torch"])
def test_changed_file_is_refused(store, cancer, digits, framework):
    if framework == "sklearn":
        model, (X, y), config = RandomForestClassifier(n_estimators=2), cancer, TrainConfig()
        filename = "model.skops"
    else:
        model, (X, y) = mlp(), digits
        config = TrainConfig(epochs=1, checkpoint=False, export=False)
        filename = "model.safetensors"
    result = train(model, X, y, TrainConfig(**{**config.to_dict(), "name": "m"}))
    stored = run_artifact(store, result.run_id, "model") / filename
    assert sha256_file(stored) == result.model_files[filename]
    with stored.open("ab") as f:
        f.write(b"\0")  # one byte appended after it was recorded
    with pytest.raises(ChecksumError, match=f"{filename} was changed after it was saved"):
        load_version("m/1")
    # a magic that loads a version shows it as a one-line UsageError
    from IPython.core.error import UsageError

    from aimodel_kernel.magics.resolve import usage_errors

    with pytest.raises(UsageError, match=r"refusing to load it$"):
        usage_errors(load_version)("m/1")
    stored.unlink()
    with pytest.raises(ChecksumError, match="missing"):
        load_version("m/1")


def test_save_and_verify_directly(tmp_path, cancer):
    X, y = cancer
    clf = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    saved = save_model(clf, tmp_path / "m", manifest={"task": "binary"})
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["files"] == saved.checksums and manifest["task"] == "binary"
    assert manifest["class"].endswith("RandomForestClassifier")
    verify(tmp_path / "m", saved.checksums)
    back = load_model(tmp_path / "m", saved.checksums)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    with pytest.raises(ChecksumError):
        load_model(tmp_path / "m", {"model.skops": "0" * 64})


def test_tied_weights_are_saved(tmp_path):
    torch = pytest.importorskip("torch")

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.out = torch.nn.Linear(4, 10, bias=False)
            self.out.weight = self.embed.weight

        def forward(self, x):
            return self.out(self.embed(x).mean(1))

    model = Tied()
    saved = save_model(model, tmp_path / "t", manifest={},
                       example_input=torch.randint(0, 10, (2, 3)))
    fresh = Tied()
    load_model(tmp_path / "t", saved.checksums, into=fresh)
    assert weights_equal(clone_state(fresh), clone_state(model))


def test_framework_and_refs():
    assert framework_of(LogisticRegression()) == "sklearn"
    assert framework_of(mlp()) == "torch"
    with pytest.raises(InputError, match="is not a model"):
        framework_of(np.zeros(3))
    assert parse_ref("a-b/3") == ("a-b", 3, None)
    assert parse_ref("a@champion") == ("a", None, "champion")
    with pytest.raises(InputError, match="not a version reference"):
        parse_ref("a/b/c")
