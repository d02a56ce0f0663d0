"""``%evaluate``, ``%compress`` and ``%diff --data`` of a tiny BERT on a dict X (and ``%compress``
of a GRU on a padding DataLoader), in a real
in-process IPython against a real store: the dict may carry its labels (no y), and errors name
the variables the user typed."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import numpy as np
import pytest
from conftest import all_runs, registered_names
from IPython.core.error import UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from token_models import labels_for, logits_of, tiny_bert, token_batch


@pytest.fixture
def bert_ns(ip):
    batch, y = token_batch(40), labels_for(40)
    ip.user_ns.update(bert=tiny_bert(), enc=batch, y_enc=y,
                      enc_lab={**batch, "labels": torch.as_tensor(y)},
                      bad_ids={**batch, "input_ids": batch["input_ids"].float()})
    return ip


def test_evaluate_a_dict_holding_labels_needs_no_y(bert_ns):
    ip = bert_ns
    report = ip.run_line_magic("evaluate", "bert enc_lab --no-log")
    pred = logits_of(ip.user_ns["bert"], ip.user_ns["enc"]).argmax(1)
    assert report.metrics["accuracy"] == pytest.approx(float(np.mean(pred == ip.user_ns["y_enc"])))


def test_evaluate_names_the_variable_and_the_input_in_one_line(bert_ns):
    with pytest.raises(UsageError, match=r"^bert cannot take bad_ids: input_ids of shape "
                                         r"\(12,\) float32 per row, attention_mask of shape "
                                         r"\(12,\) int64 per row: RuntimeError: .*; pass "
                                         r"input_ids as integer ids \(e.g. .long\(\)\)$"):
        bert_ns.run_line_magic("evaluate", "bert bad_ids y_enc")


def test_compress_and_diff_a_bert_on_a_dict_x(bert_ns):
    ip = bert_ns
    report = ip.run_line_magic("compress", "bert --onnx --check enc_lab --repeats 5 --name bc")
    rows = {v.name: v for v in report.variants}
    assert rows["onnx"].ok and rows["onnx"].max_abs_diff < 1e-4
    assert registered_names_of(ip) == ["bc"]
    diff = ip.run_line_magic("diff", f"{rows['onnx'].version} {rows['onnx'].version} "
                             "--data enc y_enc --no-log")
    assert diff.flips["n_flipped"] == 0 and diff.flips["n_rows"] == 40


def registered_names_of(ip):
    from aimodel_kernel.engine.store.tracking import get_store

    return registered_names(get_store())


def test_compress_refuses_float_ids_before_recording_anything(bert_ns):
    from aimodel_kernel.engine.store.tracking import get_store

    with pytest.raises(UsageError, match=r"^bert cannot take bad_ids: input_ids of shape"):
        bert_ns.run_line_magic("compress", "bert --onnx --check bad_ids y_enc --name never")
    assert all_runs(get_store()) == [] and registered_names(get_store()) == []


def test_compress_checks_on_a_padding_dataloader_alone(ip):
    from token_models import GRUClassifier, Sequences, pad_collate

    ip.user_ns.update(gru=GRUClassifier().eval(), loader=torch.utils.data.DataLoader(
        Sequences(32), batch_size=8, collate_fn=pad_collate), y=labels_for(32, 2))
    report = ip.run_line_magic("compress", "gru --onnx --check loader --repeats 5 --no-log")
    rows = {v.name: v for v in report.variants}
    assert report.n_check == 32 and rows["onnx"].ok and rows["onnx"].max_abs_diff < 1e-4
    with pytest.raises(UsageError, match=r"^loader yields its targets; pass --check loader alone"):
        ip.run_line_magic("compress", "gru --onnx --check loader y --no-log")
