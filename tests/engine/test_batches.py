"""The batch contract (``core/batches.py``) on real models: tensors, several inputs, dict batches
and a Hugging Face ``ModelOutput`` from a tiny BERT built from a config."""

# ruff: noqa: E402  (the imports below come after the importorskip check)
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn

from aimodel_kernel.engine.core import batches


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num = nn.Linear(3, 4)
        self.cat = nn.Embedding(5, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x_num, x_cat):
        return self.head(self.num(x_num) + self.cat(x_cat))


def test_call_spreads_tuples_and_dicts_over_forward():
    model = TwoInputs().eval()
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 5, (6,))
    expected = model(x_num, x_cat)
    assert torch.equal(batches.call(model, (x_num, x_cat)), expected)
    assert torch.equal(batches.call(model, [x_num, x_cat]), expected)
    assert torch.equal(batches.call(model, {"x_num": x_num, "x_cat": x_cat}), expected)
    assert batches.batch_len({"x_num": x_num, "x_cat": x_cat}) == 6


def test_split_item_finds_the_target_of_pairs_and_dicts():
    x, y = torch.zeros(3), torch.tensor(1)
    assert batches.split_item((x, y)) == (x, y)
    inputs, target = batches.split_item({"input_ids": x, "labels": y})
    assert set(inputs) == {"input_ids"} and target is y
    assert batches.split_item({"input_ids": x}) == ({"input_ids": x}, None)
    assert batches.split_item(x)[1] is None
    assert batches.split_item((x, y), has_target=False) == ((x, y), None)
    assert batches.target_key({"label": y, "x": x}) == "label"


def test_moving_and_taking_rows_keeps_dtypes_and_nesting():
    batch = {"ids": torch.arange(8).reshape(4, 2), "mask": torch.ones(4, 2, dtype=torch.bool),
             "extra": (torch.randn(4, 3), 7)}
    moved = batches.move(batch, torch.device("cpu"))
    assert moved["ids"].dtype == torch.int64 and moved["mask"].dtype == torch.bool
    rows = batches.take(batch, torch.tensor([3, 1]))
    assert rows["ids"].tolist() == [[6, 7], [2, 3]] and rows["extra"][1] == 7
    assert len(batches.tensors(batch)) == 3
    assert batches.describe(batch).startswith("dict(ids: (4, 2) int64, mask: (4, 2) bool")


def test_predictions_and_own_loss_of_tensors_tuples_and_dicts():
    logits, loss = torch.randn(4, 3), torch.tensor(0.5)
    assert batches.predictions(logits) is logits
    assert batches.predictions((logits, torch.zeros(1))) is logits
    assert batches.predictions({"loss": loss, "logits": logits}) is logits
    assert batches.own_loss({"loss": loss, "logits": logits}) is loss
    assert batches.own_loss(logits) is None
    with pytest.raises(TypeError, match="no prediction tensor"):
        batches.predictions({"text": "no tensor here"})


def test_a_hugging_face_model_output():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32, num_labels=3)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    batch = {"input_ids": torch.randint(1, 50, (4, 10)),
             "attention_mask": torch.ones(4, 10, dtype=torch.int64),
             "labels": torch.tensor([0, 2, 1, 0])}
    inputs, target = batches.split_item(batch)
    out = batches.call(model, {**inputs, "labels": target})
    assert batches.predictions(out).shape == (4, 3)
    loss = batches.own_loss(out)
    assert loss is not None and loss.ndim == 0
    expected = nn.functional.cross_entropy(batches.predictions(out), target)
    assert torch.allclose(loss, expected)
    no_labels = batches.call(model, inputs)
    assert batches.own_loss(no_labels) is None
    assert torch.allclose(batches.predictions(no_labels), batches.predictions(out))
