"""``evaluate()`` (and the prediction under it) on models that do not take one float matrix: a
tiny BERT on a dict X and on Datasets of dicts, a two-input model on a tuple X, an Embedding +
GRU on a padding DataLoader, an image CNN; metrics equal scikit-learn's on predictions computed
by hand. Bad input is refused in one line, naming the input, before anything is recorded."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import numpy as np
import pytest
from conftest import all_runs, registered_names
from sklearn import metrics as skm

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from token_models import (
    DictItems,
    GRUClassifier,
    Sequences,
    SmallCNN,
    TwoInputs,
    labels_for,
    logits_of,
    pad_collate,
    tiny_bert,
    token_batch,
)

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.prediction import predict
from aimodel_kernel.engine.core.torch_inputs import as_model_input, input_batches
from aimodel_kernel.engine.evaluation.metrics import evaluate


def _expected(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = logits.argmax(axis=1)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    return {"accuracy": skm.accuracy_score(y, pred),
            "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0),
            "log_loss": skm.log_loss(y, proba, labels=sorted(set(y)))}


def _assert_metrics(result, expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-9), key


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


@pytest.fixture(scope="module")
def tokens():
    batch = token_batch(48)
    return batch, labels_for(48)


def test_ids_stay_integers_and_floats_take_the_model_dtype():
    batch = {"input_ids": np.arange(6).reshape(2, 3), "pixels": np.ones((2, 3), np.float64),
             "flags": torch.tensor([[True], [False]])}
    out = as_model_input(batch, torch.device("cpu"), torch.float32)
    assert out["input_ids"].dtype == torch.int64
    assert out["pixels"].dtype == torch.float32
    pair = as_model_input((np.ones((2, 2)), torch.arange(2)), torch.device("cpu"), torch.float64)
    assert isinstance(pair, tuple) and pair[0].dtype == torch.float64 and pair[1].dtype == \
        torch.int64


def test_a_bert_on_a_dict_x_gives_sklearn_s_metrics(bert, tokens):
    batch, y = tokens
    result = evaluate(bert, batch, y, log=False)
    _assert_metrics(result, _expected(logits_of(bert, batch), y))


def test_a_dict_x_holding_labels_needs_no_y(bert, tokens):
    batch, y = tokens
    result = evaluate(bert, {**batch, "labels": torch.as_tensor(y)}, log=False)
    _assert_metrics(result, _expected(logits_of(bert, batch), y))


def test_a_dataset_of_dict_items_gives_the_same_metrics(bert, tokens):
    batch, y = tokens
    result = evaluate(bert, DictItems(batch, y), log=False)
    _assert_metrics(result, _expected(logits_of(bert, batch), y))


def test_a_hugging_face_dataset_in_the_torch_format(bert, tokens):
    datasets = pytest.importorskip("datasets")
    batch, y = tokens
    hf = datasets.Dataset.from_dict({**{k: v.tolist() for k, v in batch.items()},
                                     "labels": y.tolist()})
    hf.set_format("torch")
    result = evaluate(bert, hf, log=False)
    _assert_metrics(result, _expected(logits_of(bert, batch), y))


def test_predictions_are_made_in_batches_with_the_same_result(bert, tokens):
    batch = tokens[0]
    whole = predict(bert, batch, batch_size=1024)
    small = predict(bert, batch, batch_size=5)
    np.testing.assert_allclose(small.y_score, whole.y_score, atol=1e-6)
    assert len(list(input_batches(batch, 5))) == 10


def test_a_two_input_model_on_a_tuple_x():
    rng = np.random.default_rng(0)
    x_num = rng.normal(size=(60, 5)).astype(np.float32)
    x_cat = rng.integers(0, 7, 60)
    y = labels_for(60)
    model = TwoInputs().eval()
    result = evaluate(model, (x_num, x_cat), y, log=False)
    _assert_metrics(result, _expected(
        logits_of(model, (torch.from_numpy(x_num), torch.from_numpy(x_cat))), y))


def test_a_gru_on_a_padding_data_loader():
    data = Sequences(40)
    loader = torch.utils.data.DataLoader(data, batch_size=8, collate_fn=pad_collate)
    model = GRUClassifier().eval()
    logits, y = [], []
    for ids, labels in loader:  # by hand, batch by batch as the loader pads them
        logits.append(logits_of(model, ids))
        y.append(labels.numpy())
    y = np.concatenate(y)
    result = evaluate(model, loader, log=False)
    _assert_metrics(result, _expected(np.concatenate(logits), y))


def test_an_image_cnn_on_n_c_h_w_tensors(digits):
    X, y = digits
    images = torch.from_numpy(X[:200].reshape(-1, 1, 8, 8))
    model = SmallCNN().eval()
    result = evaluate(model, images, y[:200], log=False)
    _assert_metrics(result, _expected(logits_of(model, images), y[:200]))


# -- recorded versions ----------------------------------------------------------------------------
@pytest.fixture
def recorded_bert(store, tokens):
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    batch, y = tokens
    model = tiny_bert()
    train(model, {**batch, "labels": torch.as_tensor(y)}, None,
          TrainConfig(epochs=1, batch_size=16, name="bert", seed=0))
    return model


def test_a_recorded_bert_logs_its_evaluation_and_a_refusal_logs_nothing(recorded_bert, tokens,
                                                                          store):
    batch, y = tokens
    (run,) = store.client.search_runs([store.experiment_id])
    before = dict(run.data.metrics)
    with pytest.raises(InputError, match=r"^bert cannot take X_test: input_ids of shape"):
        evaluate(recorded_bert, {**batch, "input_ids": batch["input_ids"].float()}, y,
                 name="bert", x_name="X_test")
    assert dict(store.run(run.info.run_id).data.metrics) == before
    result = evaluate(recorded_bert, batch, y, name="bert")
    assert result.logged
    _assert_metrics(result, _expected(logits_of(recorded_bert, batch), y))
    logged = store.run(run.info.run_id).data.metrics
    assert logged["eval.accuracy"] == pytest.approx(result.metrics["accuracy"])


def test_reproducing_versions_trained_on_dict_and_tuple_inputs(recorded_bert, tokens, store):
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train
    from aimodel_kernel.engine.versions.reproduce import reproduce

    batch, y = tokens
    again = reproduce("bert/1", {**batch, "labels": torch.as_tensor(y)}, model=tiny_bert())
    assert again.reproduced, again.verdict
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60, 5)).astype(np.float32), rng.integers(0, 7, 60))
    train(TwoInputs(), X, labels_for(60), TrainConfig(epochs=2, name="two", seed=0))
    assert reproduce("two/1", X, labels_for(60), model=TwoInputs()).reproduced
    other = (X[0], (X[1] + 1) % 7)
    with pytest.raises(InputError, match="not what two/1 was trained on"):
        reproduce("two/1", other, labels_for(60), model=TwoInputs())


# -- refusals ----------------------------------------------------------------------------------
def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_float_ids_are_refused_naming_the_input(bert, tokens, store):
    batch, y = tokens
    bad = {**batch, "input_ids": batch["input_ids"].float()}
    with pytest.raises(InputError) as exc:
        evaluate(bert, bad, y, name="bert", x_name="X_test")
    text = _one_line(exc)
    assert text.startswith("bert cannot take X_test: input_ids of shape (12,) float32 per row")
    assert all_runs(store) == [] and registered_names(store) == []


def test_a_dict_missing_an_input_the_forward_needs_is_refused(bert, tokens, store):
    batch, y = tokens
    with pytest.raises(InputError) as exc:
        evaluate(bert, {"attention_mask": batch["attention_mask"]}, y, x_name="X")
    text = _one_line(exc)
    assert text.startswith("BertForSequenceClassification cannot take X: attention_mask of "
                           "shape (12,) int64 per row: ValueError")
    assert all_runs(store) == []


def test_a_wrong_width_of_one_input_is_refused(store):
    rng = np.random.default_rng(0)
    with pytest.raises(InputError) as exc:
        evaluate(TwoInputs(), (rng.normal(size=(20, 4)), rng.integers(0, 7, 20)),
                 labels_for(20), x_name="pair")
    text = _one_line(exc)
    assert text.startswith("TwoInputs cannot take pair: pair[0] of shape (4,) float32 per row, "
                           "pair[1] of shape () int64 per row: RuntimeError: mat1 and mat2")
    assert all_runs(store) == []


def test_a_scikit_learn_model_refuses_a_dict_x(cancer, tokens):
    from sklearn.linear_model import LogisticRegression

    X, y = cancer
    clf = LogisticRegression(max_iter=5000).fit(X[:, :5], y)
    with pytest.raises(InputError, match="scikit-learn model"):
        evaluate(clf, tokens[0], tokens[1], log=False)
