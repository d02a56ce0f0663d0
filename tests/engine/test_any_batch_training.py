"""``engine.train`` on any batch: dict inputs of a Hugging Face model (its own loss), tuple
inputs of a two-input model, Datasets of dicts and ``((a, b), y)`` pairs, a Hugging Face
``datasets.Dataset``, a padding ``collate_fn``; ``--loss`` / ``--optimizer`` callables,
learning-rate schedules, ``--freeze`` / ``--unfreeze-after`` / ``--lr-head``, ``--devices 2``."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from conftest import all_runs, clone_state, registered_names, run_artifact

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.training.schedules import lr_factor

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nn = torch.nn

FAST = {"checkpoint": False, "export": False}
N, T = 48, 12


def tiny_bert(seed: int = 0, dropout: float = 0.1):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, num_labels=2, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout)
    return transformers.BertForSequenceClassification(config)


def token_data(seed: int = 0):
    """Sequences whose label is whether token 7 occurs in them (learnable by a tiny BERT)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 100, (N, T), generator=g)
    y = torch.arange(N) % 2
    ids[y == 1, 3] = 7
    mask = torch.ones(N, T, dtype=torch.long)
    mask[::5, -3:] = 0
    return ids, mask, y.numpy()


def hand_loop(model, inputs: dict, y: np.ndarray, *, seed: int, epochs: int, batch_size: int,
              lr: float) -> list[float]:
    """The loop written by hand: HF's own loss, fused AdamW (what ``train`` and HF's Trainer
    use on CPU), a seeded permutation per epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=True)
    target = torch.as_tensor(y, dtype=torch.long)
    model.train()
    history = []
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=generator)
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            out = model(**{k: v[idx] for k, v in inputs.items()}, labels=target[idx])
            out.loss.backward()
            optimizer.step()
            total += float(out.loss.detach()) * len(idx)
        history.append(total / len(y))
    return history


def test_a_bert_on_a_dict_of_tensors_optimises_its_own_loss_as_a_hand_loop(store):
    ids, mask, y = token_data()
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-3, weight_decay=0.0, seed=11,
                         name="bert", **FAST)
    model = tiny_bert()
    result = train(model, {"input_ids": ids, "attention_mask": mask}, y, config)
    assert result.status == "finished" and result.version == 1
    reference = tiny_bert()
    expected = hand_loop(reference, {"input_ids": ids, "attention_mask": mask}, y, seed=11,
                         epochs=3, batch_size=16, lr=1e-3)
    np.testing.assert_allclose([h["loss"] for h in result.history], expected, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(clone_state(model).values(),
                                                 clone_state(reference).values(), strict=True))
    assert result.fingerprint["kind"] == "nested"
    assert result.fingerprint["inputs"] == {"X['input_ids']": [T], "X['attention_mask']": [T]}
    counts = result.parameters
    assert counts["trainable"] == counts["total"] == sum(p.numel() for p in model.parameters())
    assert result.metrics["trainable_parameters"] == counts["trainable"]


class DictItems(torch.utils.data.Dataset):
    def __init__(self, ids, mask, y, key="labels"):
        self.ids, self.mask, self.y, self.key = ids, mask, y, key

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], self.key: int(self.y[i])}


def test_a_bert_on_a_dataset_of_dicts_learns_and_records(store):
    ids, mask, y = token_data()
    model = tiny_bert(dropout=0.0)
    result = train(model, DictItems(ids, mask, y, key="label"), None,
                   TrainConfig(epochs=12, batch_size=8, lr=3e-3, seed=2, name="bert-ds", **FAST))
    losses = [h["loss"] for h in result.history]
    assert result.status == "finished" and losses[-1] < 0.5 * losses[0]
    assert result.fingerprint["kind"] == "dataset" and result.fingerprint["n_samples"] == N
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert (logits.argmax(1).numpy() == y).mean() > 0.9


def test_a_bert_on_a_hugging_face_dataset_in_the_torch_format(store):
    datasets = pytest.importorskip("datasets")
    ids, mask, y = token_data()
    ds = datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                                     "labels": y.tolist(), "text": ["t"] * N})
    with pytest.raises(InputError, match=r"not numbers \('text'\).*set_format"):
        train(tiny_bert(), ds, None, TrainConfig(epochs=1, **FAST))
    ds.set_format("torch", columns=["input_ids", "attention_mask", "labels"])
    model = tiny_bert(dropout=0.0)
    result = train(model, ds, None, TrainConfig(epochs=10, batch_size=8, lr=3e-3, seed=2,
                                                val=0.25, name="bert-hf", **FAST))
    losses = [h["loss"] for h in result.history]
    assert result.status == "finished" and losses[-1] < 0.5 * losses[0]
    assert "val_accuracy" in result.metrics
    assert ds.format["type"] == "torch"  # the user's dataset as it was


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(5, 4)
        self.num = nn.Linear(3, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, x_num, x_cat):
        return self.head(torch.cat([self.num(x_num), self.emb(x_cat)], dim=1))


def two_input_data():
    rng = np.random.default_rng(0)
    x_num = rng.normal(size=(80, 3))
    x_cat = rng.integers(0, 5, 80)
    y = (2 * x_num[:, 0] + 3 * (x_cat > 2) > 1.5).astype(int)
    return x_num, x_cat, y


class PairItems(torch.utils.data.Dataset):
    def __init__(self, x_num, x_cat, y):
        self.x_num = torch.as_tensor(x_num, dtype=torch.float32)
        self.x_cat, self.y = torch.as_tensor(x_cat), y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.x_num[i], self.x_cat[i]), int(self.y[i])


def test_a_two_input_model_from_a_tuple_and_from_pair_items(store):
    x_num, x_cat, y = two_input_data()
    config = TrainConfig(epochs=30, batch_size=16, lr=2e-2, seed=0, **FAST)
    model = TwoInputs()
    result = train(model, (x_num, x_cat), y, config)
    losses = [h["loss"] for h in result.history]
    assert result.status == "finished" and losses[-1] < 0.6 * losses[0]
    assert result.fingerprint["dtypes"]["X[1]"] == "int64"
    by_items = TwoInputs()
    result = train(by_items, PairItems(x_num, x_cat, y), None, config)
    assert result.status == "finished"
    assert result.history[-1]["loss"] < 0.6 * result.history[0]["loss"]


class TokenGRU(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, ids):
        _, h = self.rnn(self.emb(ids))
        return self.head(h[-1])


class Ragged(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(60):
            n = int(torch.randint(3, 9, (1,), generator=g))
            seq = torch.randint(2, 20, (n,), generator=g)
            if i % 2:
                seq[-1] = 1  # class 1 ends with token 1
            self.items.append((seq, i % 2))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def pad(batch):
    seqs, labels = zip(*batch, strict=True)
    return (nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_side="left"),
            torch.tensor(labels))


def test_an_embedding_gru_with_a_padding_collate_fn(store):
    loader = torch.utils.data.DataLoader(Ragged(), batch_size=10, shuffle=True, collate_fn=pad,
                                         generator=torch.Generator().manual_seed(0))
    model = TokenGRU()
    result = train(model, loader, None, TrainConfig(epochs=15, lr=2e-2, seed=0, **FAST))
    losses = [h["loss"] for h in result.history]
    assert result.status == "finished" and losses[-1] < 0.5 * losses[0]
    assert result.fingerprint["kind"] == "loader"


def test_a_loss_callable_and_an_optimizer_factory(store):
    x_num, x_cat, y = two_input_data()
    seen = []

    def focal(pred, target):
        seen.append((pred.shape, target.dtype))
        return nn.functional.cross_entropy(pred, target)

    factory = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    result = train(TwoInputs(), (x_num, x_cat), y,
                   TrainConfig(epochs=2, batch_size=40, seed=0, loss=focal, optimizer=factory,
                               name="custom", **FAST))
    assert seen[0] == (torch.Size([40, 2]), torch.long) and len(seen) == 4
    run = store.run(result.run_id)
    assert json.loads(run.data.params["train.loss"]).endswith(".focal")
    assert json.loads(run.data.params["train.optimizer"]) == "partial(torch.optim.sgd.SGD)"
    with pytest.raises(InputError, match="returned a int, not a torch optimizer"):
        train(TwoInputs(), (x_num, x_cat), y, TrainConfig(optimizer=lambda params: 3, **FAST))
    assert [r.info.status for r in all_runs(store)] == ["FINISHED"]


class RecordingSGD(torch.optim.SGD):
    """Records every group's learning rate at each step (what the step used)."""

    lrs: list

    def step(self, closure=None):
        RecordingSGD.lrs.append([g["lr"] for g in self.param_groups])
        return super().step(closure)


@pytest.mark.parametrize("schedule,warmup", [("constant", 0.2), ("linear", 0.0),
                                             ("cosine", 0.1), ("onecycle", 0.0)])
def test_each_lr_schedule_steps_per_optimizer_step(store, schedule, warmup):
    x_num, x_cat, y = two_input_data()
    RecordingSGD.lrs = []
    train(TwoInputs(), (x_num, x_cat), y,
          TrainConfig(epochs=3, batch_size=16, seed=0, lr_schedule=schedule, warmup=warmup,
                      optimizer=functools.partial(RecordingSGD, lr=0.05), **FAST))
    steps = 3 * 5
    factor = lr_factor(schedule, steps, warmup)
    np.testing.assert_allclose([lrs[0] for lrs in RecordingSGD.lrs],
                               [0.05 * factor(k) for k in range(steps)], rtol=1e-9)


def test_a_schedule_resumes_exactly(store):
    from aimodel_kernel.engine.core.events import BatchEnd, StopFlag

    x_num, x_cat, y = two_input_data()
    config = dict(epochs=4, batch_size=16, lr=0.05, seed=3, lr_schedule="cosine", warmup=0.2,
                  optimizer="sgd", checkpoint_every=0, export=False, deterministic=True)
    reference = TwoInputs()
    full = train(reference, (x_num, x_cat), y, TrainConfig(**config))
    stop = StopFlag()

    def on_event(event):
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == (2, 1):
            stop.set("test")

    net = TwoInputs()
    first = train(net, (x_num, x_cat), y, TrainConfig(**config), on_event=on_event, stop=stop)
    assert first.status == "interrupted" and first.epochs_completed == 2
    resumed = train(net, (x_num, x_cat), y, TrainConfig(**config, resume=first.run_id))
    assert resumed.status == "finished"
    np.testing.assert_allclose([h["loss"] for h in resumed.history],
                               [h["loss"] for h in full.history], rtol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(
        clone_state(net).values(), clone_state(reference).values(), strict=True))


def test_freeze_unfreeze_after_and_lr_head(store):
    ids, mask, y = token_data()
    model = tiny_bert(dropout=0.0)
    model.bert.pooler.dense.bias.requires_grad_(False)  # the user's own flag, given back
    before = clone_state(model)
    RecordingSGD.lrs = []
    result = train(model, {"input_ids": ids, "attention_mask": mask}, y,
                   TrainConfig(epochs=1, batch_size=16, lr=1e-2, seed=0, optimizer=RecordingSGD,
                               freeze="bert.embeddings.*,bert.encoder.layer.0.*", lr_head=0.1,
                               **FAST))
    after = clone_state(model)
    frozen = [k for k in before if k.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["bert.encoder.layer.1.output.dense.weight"],
                           after["bert.encoder.layer.1.output.dense.weight"])
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert RecordingSGD.lrs[0] == [1e-2, 0.1]  # backbone, head
    assert result.parameters["trainable"] < result.parameters["total"]
    frozen_count = sum(p.numel() for n, p in model.named_parameters()
                       if n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")))
    assert result.parameters["trainable"] == result.parameters["total"] - frozen_count - 32
    assert all(p.requires_grad for n, p in model.named_parameters()
               if n != "bert.pooler.dense.bias")
    assert not model.bert.pooler.dense.bias.requires_grad

    model = tiny_bert(dropout=0.0)
    start = clone_state(model)
    epoch_one = {}

    def on_event(event):
        if type(event).__name__ == "EpochEnd" and event.epoch == 1:
            epoch_one.update(clone_state(model))

    result = train(model, {"input_ids": ids, "attention_mask": mask}, y,
                   TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=0,
                               freeze="bert.embeddings.*", unfreeze_after=1, **FAST),
                   on_event=on_event)
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(epoch_one[key], start[key])  # frozen through epoch 1
    assert not torch.equal(clone_state(model)[key], start[key])  # trained in epoch 2
    assert any("unfroze" in note for note in result.notes)


def test_bad_nested_inputs_and_freeze_patterns_are_refused_before_anything_is_recorded(store):
    ids, mask, y = token_data()
    with pytest.raises(InputError, match=r"X\['input_ids'\] has 48 rows but "
                                         r"X\['attention_mask'\] has 40"):
        train(tiny_bert(), {"input_ids": ids, "attention_mask": mask[:40]}, y,
              TrainConfig(name="bad", **FAST))
    with pytest.raises(InputError, match=r"--freeze pattern 'encoder\.\*' matches no parameter"):
        train(tiny_bert(), {"input_ids": ids, "attention_mask": mask}, y,
              TrainConfig(freeze="encoder.*", name="bad", **FAST))
    model = tiny_bert()
    with pytest.raises(InputError, match="--freeze would freeze every parameter"):
        train(model, {"input_ids": ids, "attention_mask": mask}, y,
              TrainConfig(freeze="*", name="bad", **FAST))
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(InputError, match="--unfreeze-after changes what trains"):
        train(tiny_bert(), {"input_ids": ids, "attention_mask": mask}, y,
              TrainConfig(freeze="bert.embeddings.*", unfreeze_after=1, devices=2, **FAST))
    assert all_runs(store) == [] and registered_names(store) == []


def test_loss_and_optimizer_names_from_the_namespace_in_the_magic(ip, store):
    x_num, x_cat, y = two_input_data()
    ip.user_ns.update(X=(x_num, x_cat), y=y, net=TwoInputs(), not_callable=3,
                      my_loss=nn.CrossEntropyLoss(),
                      sgd=functools.partial(torch.optim.SGD, lr=0.1))
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--loss 'not_callable' is a int, not callable"):
        ip.run_line_magic("train", "net X y --loss not_callable --no-checkpoint --quiet")
    with pytest.raises(UsageError, match="--optimizer 'nadam' is neither one of"):
        ip.run_line_magic("train", "net X y --optimizer nadam --no-checkpoint --quiet")
    assert all_runs(store) == []
    report = ip.run_line_magic("train", "net X y --loss my_loss --optimizer sgd --epochs 1 "
                                        "--no-checkpoint --quiet")
    assert report.status == "finished"
    params = store.run(report.run_id).data.params
    assert json.loads(params["train.loss"]) == "torch.nn.modules.loss.CrossEntropyLoss"


def test_devices_2_with_dict_batches_ends_with_the_recorded_weights(store):
    from safetensors.torch import load_file

    ids, mask, y = token_data()
    model = tiny_bert(dropout=0.0)
    result = train(model, DictItems(ids, mask, y), None,
                   TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=1, devices=2,
                               name="bert-ddp", **FAST))
    assert result.status == "finished" and result.version == 1
    saved = load_file(str(run_artifact(store, result.run_id, "model/model.safetensors")))
    state = clone_state(model)
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert result.metrics["world_size"] == 2.0


def test_devices_2_with_a_hugging_face_dataset(store):
    datasets = pytest.importorskip("datasets")
    ids, mask, y = token_data()
    ds = datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                                     "labels": y.tolist()})
    ds.set_format("torch")
    model = tiny_bert(dropout=0.0)
    result = train(model, ds, None, TrainConfig(epochs=6, batch_size=16, lr=3e-3, seed=1,
                                                devices=2, name="bert-hf-ddp", **FAST))
    assert result.status == "finished" and result.metrics["world_size"] == 2.0
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]
    assert result.fingerprint["kind"] == "dataset" and result.fingerprint["n_samples"] == N
    with torch.no_grad():  # the notebook's model holds the trained weights
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert (logits.argmax(1).numpy() == y).mean() > 0.8
