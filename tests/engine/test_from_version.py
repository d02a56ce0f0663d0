"""``%train --from NAME/V``: training starts from a recorded version's weights (a LoRA version
rebuilt as base + adapters), the new version's parent is that version, ``%diff`` shows it."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import all_runs, registered_names
from test_lora_versions import blocknet, predict, state

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from torch import nn

from aimodel_kernel.engine.core.errors import InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.adapters import BASE_TAG
from aimodel_kernel.engine.store.artifacts import MODEL_DIR
from aimodel_kernel.engine.store.registry import load_version, promote, resolve
from aimodel_kernel.engine.store.serialize import MANIFEST, WEIGHTS_FILE
from aimodel_kernel.engine.store.tracking import TAG
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.training.torch_plan import INITIAL_WEIGHTS
from aimodel_kernel.engine.versions.diff import diff_versions

FAST = {"checkpoint": False, "export": False}


@pytest.fixture
def rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    y = (X[:, 0] - X[:, 3] > 0).astype(np.int64)
    return X, y


def initial_weights(store, ref):
    from safetensors.torch import load_file

    record = resolve(ref)
    return load_file(str(store.download(record.run_id, MODEL_DIR) / INITIAL_WEIGHTS))


def test_training_starts_from_the_version_and_records_it_as_parent(store, rows):
    X, y = rows
    source = blocknet()
    train(source, X, y, TrainConfig(epochs=6, lr=1e-2, seed=0, name="src", **FAST))
    promote("src/1", "champion")
    trained = state(source)

    scratch = train(blocknet(seed=7), X, y, TrainConfig(epochs=1, lr=1e-2, seed=0, **FAST))
    net = blocknet(seed=7)
    result = train(net, X, y, TrainConfig(epochs=1, lr=1e-2, seed=0, start_from="src@champion",
                                          name="dst", **FAST))
    assert result.parent == "src/1" and any("started from src/1" in n for n in result.notes)
    start = initial_weights(store, "dst/1")  # the weights the run started from (step 0)
    assert set(start) == set(trained) and all(torch.equal(start[k], trained[k]) for k in start)
    assert result.history[0]["loss"] < scratch.history[0]["loss"]
    record = resolve("dst/1")
    assert record.tags[f"{TAG}parent"] == "src/1" and record.run_tags[f"{TAG}parent"] == "src/1"
    diff = diff_versions("src/1", "dst/1")
    assert diff.lineage["relation"] == "dst/1 derives from src/1"


def test_a_new_head_keeps_its_own_weights_and_mismatched_models_are_refused(store, rows):
    X, y = rows
    train(blocknet(), X, y, TrainConfig(epochs=2, seed=0, name="two", **FAST))
    three = blocknet(seed=3, classes=3)
    head = {k: v.clone() for k, v in three.state_dict().items() if k.startswith("classifier.")}
    y3 = np.arange(len(y)) % 3
    result = train(three, X, y3, TrainConfig(epochs=1, seed=0, start_from="two/1", name="tri",
                                             **FAST))
    (note,) = [n for n in result.notes if "keep the model's own values" in n]
    assert "classifier.weight" in note and "classifier.bias" in note
    start = initial_weights(store, "tri/1")
    assert all(torch.equal(start[k], v) for k, v in head.items())
    source = load_version("two/1", into=blocknet(seed=9))
    assert torch.equal(start["embed.weight"], source.embed.weight)

    class Other(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 16)
            self.b = nn.Linear(16, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    from sklearn.linear_model import LogisticRegression

    train(LogisticRegression(), X, y, TrainConfig(name="skl"))
    runs = len(all_runs(store))
    other = Other()
    before = state(other)
    for ref, error, message in [("two/1", InputError, r"only 0 of Other's 4 weights match"),
                                ("two/7", NotFoundError, "has no version 7"),
                                ("nope/1", NotFoundError, "no registered model"),
                                ("skl/1", InputError, "is a scikit-learn version")]:
        with pytest.raises(error, match=message):
            train(other, X, y, TrainConfig(epochs=1, start_from=ref, name="bad", **FAST))
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in before.items())
    assert len(all_runs(store)) == runs and "bad" not in registered_names(store)
    with pytest.raises(InputError):  # bad data after the weights went in: the model's own back
        train(other, X[:, :3], y, TrainConfig(epochs=1, start_from="two/1", **FAST))
    net = blocknet(seed=4)
    before = state(net)
    with pytest.raises(InputError):
        train(net, X[:, :3], y, TrainConfig(epochs=1, start_from="two/1", lora=2, **FAST))
    assert type(net.blocks[0].attn) is nn.Linear
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]


def test_from_a_lora_version_and_lora_over_a_parent(store, rows):
    X, y = rows
    lora_net = blocknet()
    train(lora_net, X, y, TrainConfig(epochs=3, lr=1e-2, seed=0, lora=4, name="lo", **FAST))
    merged = state(lora_net)

    full = blocknet(seed=2)  # full fine-tune from the LoRA version: base + adapters merged
    train(full, X, y, TrainConfig(epochs=1, seed=0, start_from="lo/1", name="ft", **FAST))
    start = initial_weights(store, "ft/1")
    assert all(torch.equal(start[k], merged[k]) for k in merged)

    bases = len([r for r in all_runs(store) if BASE_TAG in r.data.tags])
    child = blocknet(seed=6)  # LoRA again over the LoRA version: it is the base, no new file
    result = train(child, X, y, TrainConfig(epochs=2, lr=1e-2, seed=1, lora=2,
                                            start_from="lo/1", name="lo", **FAST))
    assert result.version == 2 and result.parent == "lo/1"
    assert len([r for r in all_runs(store) if BASE_TAG in r.data.tags]) == bases
    record = resolve("lo/2")
    manifest = json.loads((store.download(record.run_id, MODEL_DIR) / MANIFEST).read_text())
    assert manifest["lora"]["base"] == {"parent": "lo/1"}
    assert "base: lo/1" in record.tags[f"{TAG}lora"]
    rebuilt = load_version("lo/2", into=blocknet(seed=11))  # lo/1's base, lo/1, then lo/2
    assert torch.allclose(predict(rebuilt, X), predict(child, X), atol=1e-5)
    assert f"{TAG}sha256.{WEIGHTS_FILE}" not in record.run_tags  # adapters only
