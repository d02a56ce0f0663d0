"""One tiny BERT on dict batches through every magic, in a real in-process IPython against a
real store (issue 14): train (in full, then LoRA from the first version), evaluate, explain,
fairness, compress, diff, reproduce, versions. Each step asserts what the user would check."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import numpy as np
import pytest
from conftest import all_runs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("captum")
pytest.importorskip("onnxruntime")

from token_models import tiny_bert

from aimodel_kernel.engine.store.registry import load_version, resolve


def planted(n: int = 96, length: int = 10, seed: int = 0):
    """Token ids whose label is whether token 7 occurs, and a group column for %fairness."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 100, (n, length), generator=g)
    y = (torch.arange(n) % 2).numpy()
    rows = np.flatnonzero(y == 1)
    ids[rows, torch.randint(1, length, (len(rows),), generator=g)] = 7
    ids[:, 0] = 1
    group = np.where(np.arange(n) % 3 == 0, "a", "b")
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, y, group


@pytest.mark.slow
def test_a_tiny_bert_goes_through_every_magic(ip, store):
    X, y, group = planted()
    ip.user_ns.update(bert=tiny_bert(num_labels=2), X=X, y=y, group=group)
    run = ip.run_line_magic

    trained = run("train", "bert X y --epochs 8 --lr 3e-3 --batch-size 16 --seed 0 "
                           "--lr-schedule cosine --warmup 0.1 --deterministic --name tb --quiet")
    assert trained.version == 1 and trained.parameters["trainable"] == \
        trained.parameters["total"]
    evaluated = run("evaluate", "bert X y")
    assert evaluated.metrics["accuracy"] > 0.9  # the planted token is easy to find

    explained = run("explain", "bert X --max-rows 6 --steps 8")
    assert "captum" in explained.method.lower() and len(explained.tokens) == 6
    tops = [max(zip(t, a, strict=True), key=lambda p: p[1])[0]
            for t, a in zip(explained.tokens, explained.token_attributions, strict=True)]
    with_7 = [k for k, ids in enumerate(explained.tokens) if "7" in map(str, ids)]
    assert with_7 and all(str(tops[k]) == "7" for k in with_7)

    audit = run("fairness", "bert X y --sensitive group")
    assert {str(row["group"]) for row in audit.groups} == {"a", "b"}

    lora = run("train", "bert X y --from tb/1 --lora 4 --epochs 1 --lr 1e-3 --batch-size 16 "
                        "--seed 0 --name tbl --quiet")
    assert lora.parameters["trainable"] < 0.2 * lora.parameters["total"]
    assert resolve("tbl/1").tags.get("aimodel.parent") == "tb/1"
    rebuilt = load_version("tbl/1")  # base (the parent) + adapters, by the recorded class
    with torch.no_grad():
        assert torch.allclose(rebuilt(**X).logits, ip.user_ns["bert"].eval()(**X).logits,
                              atol=1e-5)

    diff = run("diff", "tb/1 tbl/1 --data X y --no-log")
    assert "tb/1" in diff.summary and diff.flips is not None
    assert diff.lineage  # tbl/1 derives from tb/1

    compressed = run("compress", "bert --onnx --check X y --repeats 5 --no-log")
    onnx = next(v for v in compressed.variants if v.name == "onnx")
    assert onnx.status == "ok" and onnx.agreement == 1.0

    reproduced = run("reproduce", "tb/1")
    assert reproduced.reproduced, reproduced.verdict

    listed = str(run("versions", ""))
    assert "tbl/1" in listed and "LoRA r=4" in listed
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]
