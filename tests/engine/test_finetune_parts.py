"""Transfer-learning parts on real modules: learning-rate schedules, freezing by patterns,
head learning rates and LoRA adapters (PEFT) on a tiny BERT built from a config."""

# ruff: noqa: E402  (the imports below come after the importorskip check)
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.training import finetune
from aimodel_kernel.engine.training.schedules import lr_factor, make_scheduler


def tiny_bert(num_labels: int = 2) -> nn.Module:
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32, num_labels=num_labels)
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def test_schedules_warm_up_then_decay_to_zero():
    total = 100
    linear = lr_factor("linear", total, warmup=0.1)
    assert linear(0) == pytest.approx(1 / 11) and linear(9) == pytest.approx(10 / 11)
    assert linear(10) == pytest.approx(1.0) and linear(99) == pytest.approx(1 / 90, abs=1e-9)
    cosine = lr_factor("cosine", total)
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) < 1e-12
    assert lr_factor("constant", total)(77) == 1.0
    one = lr_factor("onecycle", total)
    assert one(0) == pytest.approx(1 / 25) and one(30) == pytest.approx(1.0)
    assert one(99) < 0.01 and max(one(s) for s in range(total)) == pytest.approx(1.0)
    for bad in (("poly", 10, 0.0), ("linear", 10, 1.0), ("linear", 0, 0.0)):
        with pytest.raises(InputError):
            lr_factor(*bad)


def test_the_scheduler_scales_every_group_and_resumes_at_its_step():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD([{"params": [model.weight], "lr": 0.1},
                           {"params": [model.bias], "lr": 1.0}])
    sched = make_scheduler(opt, "cosine", 10, warmup=0.2)
    for _ in range(5):
        opt.step()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[1] == pytest.approx(10 * lrs[0])
    factor = lr_factor("cosine", 10, 0.2)(5)
    assert lrs[0] == pytest.approx(0.1 * factor)
    again = torch.optim.SGD([{"params": [model.weight], "lr": 0.1},
                             {"params": [model.bias], "lr": 1.0}])
    resumed = make_scheduler(again, "cosine", 10, warmup=0.2)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.get_last_lr() == pytest.approx(sched.get_last_lr())
    assert not math.isnan(lrs[0])


def test_freeze_by_patterns_and_count_trainable_parameters():
    model = tiny_bert()
    before = finetune.parameter_counts(model)
    frozen = finetune.freeze(model, ["bert.embeddings.*", "bert.encoder.layer.[0].*"])
    after = finetune.parameter_counts(model)
    assert frozen and all(n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
                          for n in frozen)
    assert after.total == before.total and after.trainable < before.trainable
    assert after.trainable == before.total - sum(
        p.numel() for n, p in model.named_parameters() if n in set(frozen))
    assert "trainable" in after.describe()
    finetune.unfreeze(model, frozen)
    assert finetune.parameter_counts(model) == before
    with pytest.raises(InputError, match="matches no parameter"):
        finetune.freeze(model, ["encoder.nothing.*"])
    with pytest.raises(InputError, match="every parameter"):
        finetune.freeze(model, ["*"])


def test_the_head_gets_its_own_learning_rate():
    model = tiny_bert()
    assert finetune.head_prefixes(model) == ["classifier"]
    groups = finetune.parameter_groups(model, 1e-4, 1e-3)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[1]["lr"] == 1e-3 and len(groups[1]["params"]) == 2  # classifier weight, bias
    assert len(finetune.parameter_groups(model, 1e-4, None)) == 1


def test_lora_trains_adapters_and_the_head_only():
    pytest.importorskip("peft")
    model = tiny_bert()
    targets = finetune.lora_targets(model)
    assert {"query", "value"} <= set(targets) and "classifier" not in targets
    wrapped = finetune.apply_lora(model, 4)
    counts = finetune.parameter_counts(wrapped)
    assert 0 < counts.fraction < 0.5
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    batch = {"input_ids": torch.randint(1, 60, (3, 8)), "labels": torch.tensor([0, 1, 1])}
    out = wrapped(**batch)
    out.loss.backward()
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if p.requires_grad)


def test_lora_refuses_recurrent_layers_and_unknown_targets():
    pytest.importorskip("peft")

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.gru = nn.GRU(4, 4, batch_first=True)
            self.fc = nn.Linear(4, 2)

    model = Recurrent()
    with pytest.raises(InputError, match="GRU layer, which LoRA"):
        finetune.apply_lora(model, 2, targets=["gru"])
    with pytest.raises(InputError, match="names no module"):
        finetune.apply_lora(model, 2, targets=["nope"])
    with pytest.raises(InputError, match="no attention or MLP Linear"):
        finetune.apply_lora(model, 2)
    with pytest.raises(InputError, match="at least 1"):
        finetune.apply_lora(model, 0)
