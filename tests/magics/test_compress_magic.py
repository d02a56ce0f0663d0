"""``%compress`` in a real in-process IPython, against a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import all_runs, clone_state, mlp, registered_names, run_artifact, weights_equal
from IPython.core.error import UsageError

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from aimodel_kernel.display.compress_report import CompressReport
from aimodel_kernel.engine.store.registry import list_versions, load_version, resolve
from aimodel_kernel.engine.store.serialize import sha256_file
from aimodel_kernel.engine.store.tracking import get_store

BUNDLE = ("text/plain", "text/html", "image/png", "application/vnd.aimodel.compress.v1+json")


@pytest.fixture
def digits_ns(ip, digits):
    """``net`` trained by ``%train ... --name digits`` (version digits/1), with test rows."""
    X, y = digits
    ip.user_ns.update(net=mlp(hidden=32), Xtr=X[:1200], ytr=y[:1200], Xt=X[1200:],
                      yt=y[1200:])
    ip.run_cell("%train net Xtr ytr --epochs 8 --lr 5e-3 --seed 0 --name digits --quiet"
                ).raise_error()
    return ip


def test_compress_registers_each_variant_with_its_parent(digits_ns):
    ip = digits_ns
    store = get_store()
    net = ip.user_ns["net"]
    before = clone_state(net)
    r = ip.run_line_magic(
        "compress", "net --onnx --quantize int8 --check Xt yt --max-drop 0.05 --repeats 5")
    assert isinstance(r, CompressReport)
    assert [v.name for v in r.variants] == ["original", "onnx", "onnx-int8"]
    assert all(v.ok for v in r.variants)
    assert weights_equal(before, clone_state(net))
    # each variant is a version of digits-compressed whose parent is digits/1
    assert r.versions == ["digits-compressed/1", "digits-compressed/2"] and r.parent == "digits/1"
    Xt = ip.user_ns["Xt"]
    for v in r.variants[1:]:
        record = resolve(v.version)
        assert record.tags["aimodel.parent"] == "digits/1"
        assert record.run_tags["aimodel.compress.variant"] == v.name
        assert record.status == "FINISHED" and record.run_tags["aimodel.framework"] == "onnx"
        stored = run_artifact(store, record.run_id, "model/model.onnx")
        assert record.run_tags["aimodel.sha256.model.onnx"] == sha256_file(stored)
        assert stored.stat().st_size == v.size_bytes
        loaded = load_version(v.version)
        import torch

        with torch.inference_mode():
            logits = net.eval()(torch.from_numpy(Xt)).numpy()
        net.train()
        agree = float((loaded.predict(Xt) == logits.argmax(1)).mean())
        assert agree == pytest.approx(v.agreement)
    # the original's run holds the measurements, under compress.*
    original = resolve("digits/1")
    assert original.metrics["compress.onnx-int8.agreement"] == r.variant("onnx-int8").agreement
    assert "compress.onnx.latency_ms_p50_b256" in original.metrics
    report = json.loads(run_artifact(store, original.run_id, "compress/report.json").read_text())
    assert [row["name"] for row in report["variants"]] == ["original", "onnx", "onnx-int8"]
    assert report["variants"][2]["version"] == "digits-compressed/2"
    assert r.logged and r.run_id == original.run_id
    listed = ip.run_line_magic("versions", "digits")
    assert "compression" in listed.text()
    # the chosen file is where serving can take it from
    assert Path(r.export_path) == (Path(".aimodel") / "exports"
                                   / f"digits-compressed-{r.chosen}.onnx").resolve()
    assert Path(r.export_path).read_bytes() == run_artifact(
        store, resolve(r.variant(r.chosen).version).run_id, "model/model.onnx").read_bytes()
    d = ip.run_line_magic("diff", "digits/1 digits-compressed/1 --data Xt yt --no-log")
    assert d.flips["n_flipped"] == round((1 - r.variant("onnx").agreement) * len(Xt))


@pytest.fixture
def plain_ns(ip, digits):
    """An untracked ``net`` (not from %train) fitted on 1,200 digits, with test rows."""
    import torch

    X, y = digits
    torch.manual_seed(0)
    net = mlp(hidden=32)
    opt = torch.optim.AdamW(net.parameters(), 1e-2)
    xt, yt = torch.from_numpy(X[:1200]), torch.from_numpy(y[:1200])
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    ip.user_ns.update(net=net, Xt=X[1200:], yt=y[1200:])
    return ip


def test_report_bundle_and_text(plain_ns):
    ip = plain_ns
    r = ip.run_line_magic("compress", "net --structured 0.25 --check Xt yt --repeats 5 --no-log")
    bundle = r._repr_mimebundle_()
    assert set(BUNDLE) <= set(bundle)
    payload = json.loads(json.dumps(bundle["application/vnd.aimodel.compress.v1+json"],
                                    allow_nan=False))
    doc = payload["data"]
    assert [row["name"] for row in doc["variants"]] == ["original", "structured"]
    assert doc["variants"][1]["params"] < doc["variants"][0]["params"]
    text = bundle["text/plain"]
    assert text.startswith("Sequential: 1 variant checked on 597 rows (accuracy, 1 thread)")
    assert "structured" in text and "p50 b256 ms" in text
    assert "<table>" in bundle["text/html"] and "p95 b1 ms" in bundle["text/html"]
    assert r.versions == [] and not r.logged  # --no-log


def test_sklearn_onnx_without_logging(ip, cancer, tmp_path):
    store = get_store()
    ip.run_line_magic("train", "clf X y --name cancer")
    n_runs = len(all_runs(store))
    out = tmp_path / "serve" / "model.onnx"
    r = ip.run_line_magic("compress", f"clf --onnx --check X y --out {out} --no-log --repeats 5")
    assert [v.name for v in r.variants] == ["original", "onnx"]
    onnx = r.variant("onnx")
    assert onnx.agreement >= 0.99 and onnx.max_abs_diff < 1e-3
    assert r.chosen == "onnx" and Path(r.export_path) == out.resolve() and out.exists()
    assert len(all_runs(store)) == n_runs and registered_names(store) == ["cancer"]
    X, _ = cancer
    import onnxruntime

    sess = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    labels = sess.run(None, {"X": X.astype(np.float32)})[0]
    assert float((labels == ip.user_ns["clf"].predict(X)).mean()) == onnx.agreement


def test_bad_input_is_a_usage_error_that_changes_nothing(plain_ns):
    ip = plain_ns
    store = get_store()
    import torch
    from sklearn.ensemble import RandomForestClassifier

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x) if x.mean() > 0 else self.fc(-x)

    forest = RandomForestClassifier(n_estimators=3, max_depth=2).fit(
        ip.user_ns["Xt"], ip.user_ns["yt"])
    ip.user_ns.update(branchy=Branchy(), forest=forest, Xbad=ip.user_ns["Xt"][:, :40])
    cases = {
        "net --prune 1.5 --check Xt yt": "--prune is the fraction of weights to remove",
        "net --structured 0 --check Xt yt": "strictly between 0 and 1",
        "net --onnx --check Xbad yt": r"Xbad \(rows of shape \(40,\)\) does not fit net",
        "net --onnx": "--check X y is required",
        "net --onnx --check Xt": "--check takes X and y",
        "net --quantize int4 --check Xt yt": "argument --quantize: invalid choice",
        "forest --prune 0.5 --check Xt yt": "--prune applies to PyTorch models",
        "forest --quantize int8 --check Xt yt": "RandomForestClassifier has no int8 path",
        "branchy --onnx --check Xt yt": "Branchy cannot be exported to ONNX: data-dependent",
        "nothing --onnx --check Xt yt": "model 'nothing' is not defined",
        "net --onnx --check Xt yt --name 'bad name'": "invalid model name",
    }
    for line, message in cases.items():
        with pytest.raises(UsageError, match=message) as info:
            ip.run_line_magic("compress", line)
        assert "\n" not in str(info.value), line
    assert all_runs(store) == [] and registered_names(store) == []
    assert not (Path(".aimodel") / "exports").exists()
    ip.run_line_magic("compress", "net --structured 0.5 --check Xt yt --name small --repeats 5")
    assert [v.ref for v in list_versions("small").versions] == ["small/1"]  # then it works


def test_help_has_examples(ip):
    doc = ip.find_line_magic("compress").__doc__
    assert "Examples" in doc and "%compress net --prune 0.5 --quantize int8 --onnx" in doc
