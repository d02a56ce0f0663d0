"""``compress()`` of token models: an Embedding + GRU on padded int64 ids and a tiny BERT on a
dict of ``input_ids`` / ``attention_mask``. The ONNX export keeps int64 inputs, names dict
inputs by their keys, has dynamic batch and sequence dimensions, and gives PyTorch's outputs at
other batch sizes and sequence lengths; int8 is onnxruntime's dynamic quantization. Bad input
is refused in one line before anything is recorded."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import numpy as np
import pytest
from conftest import all_runs, registered_names

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from token_models import GRUClassifier, labels_for, logits_of, tiny_bert, token_batch

from aimodel_kernel.engine.compression.entry import compress
from aimodel_kernel.engine.compression.onnx_export import export_torch, session
from aimodel_kernel.engine.core.errors import InputError

TOL = 1e-4


def _padded_ids(n: int = 64, length: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    return ids * (torch.arange(length)[None, :] < lengths[:, None])


@pytest.fixture(scope="module")
def gru():
    return GRUClassifier().eval()


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


def _run(path, feeds):
    return session(path).run(None, feeds)[0]


def test_a_gru_exports_int64_ids_with_dynamic_batch_and_length(gru, tmp_path):
    path = tmp_path / "gru.onnx"
    export_torch(gru, _padded_ids(4), path)
    (spec,) = session(path).get_inputs()
    assert spec.type == "tensor(int64)"
    assert all(isinstance(d, str) for d in spec.shape)  # both dimensions symbolic
    for n, length in ((1, 10), (5, 4), (3, 17)):
        ids = _padded_ids(n, length, seed=n)
        np.testing.assert_allclose(_run(path, {spec.name: ids.numpy()}), logits_of(gru, ids),
                                   atol=TOL)


def test_a_bert_exports_its_dict_inputs_by_name(bert, tmp_path):
    path = tmp_path / "bert.onnx"
    export_torch(bert, token_batch(4), path)
    specs = session(path).get_inputs()
    assert [s.name for s in specs] == ["input_ids", "attention_mask"]
    assert {s.type for s in specs} == {"tensor(int64)"}
    for n, length in ((1, 12), (3, 7), (2, 20)):
        batch = token_batch(n, length, seed=n)
        np.testing.assert_allclose(_run(path, {k: v.numpy() for k, v in batch.items()}),
                                   logits_of(bert, batch), atol=TOL)


def test_compressing_a_gru_checks_two_lengths_and_quantizes_dynamically(gru, store):
    X, y = _padded_ids(64), labels_for(64, classes=2)
    result = compress(gru, X, y, onnx=True, quantize="int8", repeats=5, name="gru-small")
    rows = {v.name: v for v in result.variants}
    assert list(rows) == ["original", "onnx", "onnx-int8"]
    assert rows["onnx"].ok and rows["onnx"].max_abs_diff < TOL and rows["onnx"].agreement == 1
    checks = result.export_checks["max_abs_diff"]
    assert set(checks) == {"batch 1", "sequence length 7"} and max(checks.values()) < TOL
    int8 = rows["onnx-int8"]
    assert int8.ok, int8.reason
    assert int8.details["int8"] == "dynamic" and int8.agreement >= 0.9
    assert any("dynamic quantization" in n for n in result.notes)
    # the recorded ONNX version predicts like the module, on ids of another length
    onnx_model = load_model_of(store, rows["onnx"].version)
    short = _padded_ids(6, 5, seed=3)
    np.testing.assert_array_equal(onnx_model.predict(short), logits_of(gru, short).argmax(1))


def load_model_of(store, ref: str):
    from aimodel_kernel.engine.store.registry import load_version

    return load_version(ref)


def test_compressing_a_bert_on_a_dict_x(bert, store):
    batch, y = token_batch(48), labels_for(48)
    result = compress(bert, {**batch, "labels": torch.as_tensor(y)}, None, onnx=True,
                      quantize="int8", prune=0.3, repeats=5)
    rows = {v.name: v for v in result.variants}
    assert rows["onnx"].ok and rows["onnx"].max_abs_diff < TOL
    assert rows["original"].metrics["accuracy"] == pytest.approx(
        float(np.mean(logits_of(bert, batch).argmax(1) == y)))
    assert set(result.export_checks["max_abs_diff"]) == {"batch 1", "sequence length 8"}
    assert rows["onnx-int8"].ok, rows["onnx-int8"].reason
    assert rows["pruned"].ok and rows["pruned-onnx"].ok
    assert rows["pruned"].details["sparsity"] > 0.2


def test_diff_data_between_two_bert_versions_on_a_dict_x(bert, store):
    from aimodel_kernel.engine.versions.diff import diff_versions

    batch, y = token_batch(48), labels_for(48)
    result = compress(bert, batch, y, onnx=True, quantize="int8", repeats=5, name="bert-small")
    rows = {v.name: v for v in result.variants}
    a, b = rows["onnx"].version, rows["onnx-int8"].version
    assert a and b
    check = token_batch(30, 9, seed=5)  # other rows, another padded length
    y_check = labels_for(30, seed=2)
    diff = diff_versions(a, b, X=check, y=y_check, log=False)
    pred_a = load_model_of(store, a).predict(check)
    pred_b = load_model_of(store, b).predict(check)
    np.testing.assert_array_equal(pred_a, logits_of(bert, check).argmax(1))
    assert diff.flips["n_flipped"] == int(np.sum(pred_a != pred_b))
    assert diff.flips["n_rows"] == 30
    # the same rows as a Dataset of dict items (labels inside): the same flips
    from token_models import DictItems

    from_items = diff_versions(a, b, X=DictItems(check, y_check), log=False)
    assert from_items.flips["n_flipped"] == diff.flips["n_flipped"]
    assert from_items.flips == diff.flips
    with pytest.raises(InputError, match=r"^bert-small/1 cannot predict on X: the ONNX model "
                                         r"takes attention_mask, which the rows lack \(they "
                                         r"have input_ids\)$"):
        diff_versions(a, b, X={"input_ids": check["input_ids"]}, log=False)


def test_diff_data_between_a_pruned_torch_version_and_an_onnx_one(bert, store):
    from aimodel_kernel.engine.versions.diff import diff_versions

    batch, y = token_batch(32), labels_for(32)
    result = compress(bert, batch, y, prune=0.6, onnx=True, repeats=5, name="bert-pruned")
    rows = {v.name: v for v in result.variants}
    assert rows["pruned"].version and rows["onnx"].version
    pruned = load_model_of(store, rows["pruned"].version)  # rebuilt from the recorded files
    check = token_batch(24, 9, seed=4)
    expected = int(np.sum(logits_of(pruned, check).argmax(1) != logits_of(bert, check).argmax(1)))
    diff = diff_versions(rows["onnx"].version, rows["pruned"].version, X=check, log=False)
    assert expected > 0  # 60 % of the weights pruned changes some predictions
    assert diff.flips["n_rows"] == 24 and diff.flips["n_flipped"] == expected


def test_a_two_input_model_exports_named_inputs_and_calibrates_static_int8(store):
    from token_models import TwoInputs

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(80, 5)).astype(np.float32), rng.integers(0, 7, 80))
    model = TwoInputs().eval()
    result = compress(model, X, labels_for(80), onnx=True, quantize="int8", repeats=5)
    rows = {v.name: v for v in result.variants}
    assert rows["onnx"].ok and rows["onnx"].max_abs_diff < TOL
    assert set(result.export_checks["max_abs_diff"]) == {"batch 1"}  # no token ids
    int8 = rows["onnx-int8"]
    assert int8.ok, int8.reason
    assert int8.details["int8"] == "static" and int8.agreement >= 0.9
    assert any("calibrated on the first 80 check rows" in n for n in result.notes)


def test_a_dataloader_with_a_padding_collate_fn_is_the_check_set(gru, store):
    from token_models import Sequences, pad_collate

    sequences = Sequences(48)
    loader = torch.utils.data.DataLoader(sequences, batch_size=8, collate_fn=pad_collate)
    result = compress(gru, loader, None, onnx=True, repeats=5)
    rows = {v.name: v for v in result.variants}
    assert result.n_check == 48
    assert rows["onnx"].ok and rows["onnx"].max_abs_diff < TOL
    ids, y = pad_collate(sequences.items)  # what the loader's own collate makes of every item
    expected = float(np.mean(logits_of(gru, ids).argmax(1) == y.numpy()))
    assert rows["original"].metrics["accuracy"] == pytest.approx(expected)


def test_a_dataset_of_dicts_and_a_hugging_face_dataset_are_check_sets(bert, store):
    datasets = pytest.importorskip("datasets")
    from token_models import DictItems

    batch, y = token_batch(32), labels_for(32)
    expected = float(np.mean(logits_of(bert, batch).argmax(1) == y))
    hf = datasets.Dataset.from_dict({**{k: v.tolist() for k, v in batch.items()},
                                     "labels": y.tolist()})
    hf.set_format("torch")
    for X in (DictItems(batch, y), hf):
        result = compress(bert, X, None, onnx=True, repeats=5, log=False)
        rows = {v.name: v for v in result.variants}
        assert rows["onnx"].ok and rows["onnx"].max_abs_diff < TOL
        assert rows["original"].metrics["accuracy"] == pytest.approx(expected)


def test_ragged_items_without_a_padding_collate_are_refused_in_one_line(gru, store):
    from token_models import Sequences

    with pytest.raises(InputError, match=r"^the items of seqs cannot be stacked into one batch "
                                         r"\(.*\); pass a DataLoader whose collate_fn pads them"):
        compress(gru, Sequences(16), None, onnx=True, name="never",
                 names=("gru", "seqs", "seqs' targets"))
    with pytest.raises(InputError, match=r"yields its targets; pass --check X alone"):
        compress(gru, Sequences(16), labels_for(16, 2), onnx=True, name="never")
    assert all_runs(store) == [] and registered_names(store) == []


# -- refusals ----------------------------------------------------------------------------------
def test_float_ids_are_refused_before_anything_is_recorded(bert, store):
    batch = token_batch(16)
    bad = {**batch, "input_ids": batch["input_ids"].float()}
    with pytest.raises(InputError) as exc:
        compress(bert, bad, labels_for(16), onnx=True, name="never",
                 names=("bert", "Xb", "yb"))
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith("bert cannot take Xb: input_ids of shape (12,) float32")
    assert all_runs(store) == [] and registered_names(store) == []


def test_structured_pruning_of_dict_inputs_is_refused_in_one_line(bert, store):
    with pytest.raises(InputError, match=r"^--structured traces a model taking one tensor; "
                                         r"BertForSequenceClassification takes several "
                                         r"\(input_ids, attention_mask\): use --prune$"):
        compress(bert, token_batch(16), labels_for(16), structured=0.5, name="never")
    assert all_runs(store) == [] and registered_names(store) == []


def test_a_dict_missing_a_key_is_refused_naming_what_it_has(bert, store):
    with pytest.raises(InputError, match=r"cannot take X: attention_mask of shape \(12,\) "
                                         r"int64 per row: ValueError"):
        compress(bert, {"attention_mask": token_batch(16)["attention_mask"]}, labels_for(16),
                 onnx=True, name="never")
    assert all_runs(store) == []

