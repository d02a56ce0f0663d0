"""``compress()`` and its parts on real models and real data: pruning, ONNX export, onnxruntime
int8, checks against the original, latency, the choice within a budget, and bad input."""

# ruff: noqa: E402  (the imports below come after the importorskip checks)
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import clone_state, mlp, weights_equal

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from torch import nn

from aimodel_kernel.engine.compression.entry import compress
from aimodel_kernel.engine.compression.latency import measure, same_threads
from aimodel_kernel.engine.compression.onnx_export import export_torch, session
from aimodel_kernel.engine.compression.pruning import count_params, prune_global, prune_structured
from aimodel_kernel.engine.core.errors import ChecksumError, InputError, MissingDependency
from aimodel_kernel.engine.store.serialize import load_model, save_onnx
from aimodel_kernel.engine.versions.deltas import compression_deltas

VARIANTS = ["original", "onnx", "onnx-int8", "structured", "structured-onnx",
            "structured-onnx-int8"]


def _fit(net, X, y, epochs: int = 25):
    torch.manual_seed(0)
    opt = torch.optim.AdamW(net.parameters(), 5e-3)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        for i in range(0, len(xt), 128):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[i:i + 128]), yt[i:i + 128]).backward()
            opt.step()
    return net


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return X[:1200], y[:1200], X[1200:], y[1200:]


@pytest.fixture(scope="module")
def net(split):
    X, y, _, _ = split
    return _fit(mlp(hidden=32), X, y)


@pytest.fixture(scope="module")
def onnx_file(net, split, tmp_path_factory):
    """The digits MLP exported once with ``torch.onnx``."""
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    export_torch(net, torch.from_numpy(split[2][:4]), path)
    return path


@pytest.fixture(scope="module")
def full(net, split, tmp_path_factory):
    """Every PyTorch variant of the digits MLP, checked on 597 held-out digits."""
    _, _, Xt, yt = split
    before = clone_state(net)
    out = tmp_path_factory.mktemp("exports")
    result = compress(net, Xt, yt, structured=0.5, onnx=True, quantize="int8", max_drop=0.02,
                      log=False, repeats=5, out=out)
    return result, before, out


def test_every_variant_is_built_checked_and_timed(full, net, split):
    r, before, _ = full
    _, _, Xt, yt = split
    assert [v.name for v in r.variants] == VARIANTS
    assert all(v.ok for v in r.variants), [(v.name, v.reason) for v in r.variants]
    with torch.inference_mode():
        accuracy = float((net(torch.from_numpy(Xt)).argmax(1).numpy() == yt).mean())
    assert r.metric == "accuracy" and r.original.metrics["accuracy"] == accuracy
    assert accuracy > 0.85
    for v in r.variants:
        assert set(v.latency) == {1, 256}
        assert all(0 < lat.p50_ms <= lat.p95_ms for lat in v.latency.values())
        assert v.metric_drop == pytest.approx(accuracy - v.metrics["accuracy"])
        assert 0.0 <= v.agreement <= 1.0 and v.size_bytes > 0
    # the original is untouched: pruning and export work on copies, modes are restored
    assert weights_equal(before, clone_state(net)) and net.training


def test_onnx_matches_torch_and_int8_stays_close(full):
    r = full[0]
    onnx, int8 = r.variant("onnx"), r.variant("onnx-int8")
    assert onnx.max_abs_diff < 1e-4 and onnx.agreement == 1.0 and onnx.metric_drop == 0.0
    assert int8.agreement >= 0.9 and abs(int8.metric_drop) <= 0.05
    assert int8.size_bytes < onnx.size_bytes


def test_structured_variants_are_smaller(full):
    r = full[0]
    structured, original = r.variant("structured"), r.original
    assert structured.params < original.params and structured.sparsity == 0.0
    assert structured.details["layers"] == {"0": "32 -> 16 outputs"}
    assert r.variant("structured-onnx").size_bytes < r.variant("onnx").size_bytes


def test_choice_is_within_budget_and_written_for_serving(full, split):
    r, _, out = full
    _, _, Xt, _ = split
    chosen = r.variant(r.chosen)
    assert chosen.kind == "onnx" and chosen.metric_drop <= 0.02
    assert r.chosen in r.reason and "budget" in r.reason
    over = [v.name for v in r.variants[1:] if v.metric_drop > 0.02]
    assert all(name in r.reason for name in over)
    path = out / f"sequential-{r.chosen}.onnx"
    assert r.export_path == str(path.resolve()) and path.exists()
    sess = session(path)
    logits = sess.run(None, {sess.get_inputs()[0].name: Xt[:3]})[0]
    assert logits.shape == (3, 10)


def test_report_is_json_in_the_format_diff_reads(full):
    report = json.loads(json.dumps(full[0].report()))
    rows = {row["name"]: row for row in report["variants"]}
    assert set(rows) == set(VARIANTS)
    for key in ("size_bytes", "latency_ms_p50", "latency_ms_p95", "latency_ms_p50_b256",
                "latency_ms_p95_b256", "accuracy", "metric_drop", "agreement"):
        assert all(isinstance(row[key], int | float) for row in rows.values()), key
    assert rows["onnx-int8"]["speedup_b256"] > 0 and rows["onnx-int8"]["size_ratio"] > 0
    deltas = compression_deltas(report, report)
    assert set(deltas["variants"]) == set(VARIANTS)
    assert deltas["variants"]["onnx"]["size_bytes"]["delta"] == 0


def test_export_loads_in_onnxruntime_and_matches_torch(net, split, onnx_file):
    _, _, Xt, _ = split
    sess = session(onnx_file)
    for rows in (Xt[:1], Xt[:300]):  # the batch axis is dynamic
        got = sess.run(None, {sess.get_inputs()[0].name: rows})[0]
        with torch.inference_mode():
            want = net.eval()(torch.from_numpy(rows)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)
    net.train()


def test_debug_info_is_stripped_and_outputs_stay_identical(split, onnx_file, tmp_path):
    """torch's exporter writes source stack traces on every node; the saved file has none,
    internal names are short, and the model computes exactly what the full file does."""
    import onnx

    from aimodel_kernel.engine.compression.onnx_export import quantize_int8, strip_debug_info

    X, _, Xt, _ = split
    model = onnx.load(str(onnx_file))
    assert not any(n.metadata_props or n.doc_string for n in model.graph.node)
    int8 = tmp_path / "int8.onnx"
    quantize_int8(onnx_file, int8, X)
    quantized = onnx.load(str(int8))
    assert not any(n.metadata_props or n.name for n in quantized.graph.node)
    assert max(len(t.name) for t in quantized.graph.initializer) <= 4
    # the same graph with the exporter's debug info put back: bigger, same outputs
    full = tmp_path / "full.onnx"
    for node in quantized.graph.node:
        node.metadata_props.add(key="pkg.torch.onnx.stack_trace", value="x" * 500)
    onnx.save(quantized, str(full))
    name = session(full).get_inputs()[0].name
    before = session(full).run(None, {name: Xt[:50]})[0]
    size = full.stat().st_size
    strip_debug_info(full)
    assert full.stat().st_size < size - 400 * len(quantized.graph.node)
    after = session(full).run(None, {name: Xt[:50]})[0]
    np.testing.assert_array_equal(before, after)
    assert session(full).get_inputs()[0].name == name


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc, self.out = nn.Linear(16 * 4 * 4, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x.view(x.size(0), 1, 8, 8))))
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.out(torch.relu(self.fc(x.view(x.size(0), -1))))


def test_structured_pruning_removes_channels_and_the_model_still_runs(digits):
    X, _ = digits
    torch.manual_seed(1)
    cnn = SmallCNN().eval()
    example = torch.from_numpy(X[:8])
    before, _ = count_params(cnn)
    small, info = prune_structured(cnn, 0.5, example)
    assert small.conv1.out_channels == 4 and small.bn.num_features == 4
    assert small.conv2.in_channels == 4 and small.conv2.out_channels == 8
    assert small.fc.in_features == 8 * 16 and small.fc.out_features == 16
    assert info.params_after == count_params(small)[0] < before / 2
    assert cnn.conv1.out_channels == 8  # the original keeps its layers
    with torch.inference_mode():
        assert small(example).shape == cnn(example).shape == (8, 10)


def test_structured_pruning_refuses_a_model_with_nothing_to_cut():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

        def forward(self, x):
            return self.b(x + self.a(x))

    with pytest.raises(InputError, match="no Linear/Conv layer whose outputs feed"):
        prune_structured(Residual(), 0.5, torch.zeros(2, 64))


def test_pruned_variant_reports_real_sparsity(net, split):
    _, _, Xt, yt = split
    r = compress(net, Xt, yt, prune=0.5, log=False, repeats=5)
    assert [v.name for v in r.variants] == ["original", "pruned"]
    pruned = r.variant("pruned")
    assert pruned.ok and pruned.params == r.original.params
    assert 0.45 < pruned.sparsity < 0.5  # half the weights; the biases are kept
    assert pruned.metrics["accuracy"] > 0.5 and pruned.agreement > 0.5
    assert r.chosen is None or r.chosen == "pruned"
    assert r.export_path is None  # a PyTorch module is no ONNX file to serve


def test_global_pruning_zeroes_the_smallest_weights_of_a_copy():
    net = mlp()
    pruned, info = prune_global(net, 0.3)
    weights = torch.cat([pruned[0].weight.flatten(), pruned[2].weight.flatten()])
    assert float((weights == 0).float().mean()) == pytest.approx(0.3, abs=1e-3)
    assert info.nonzero_after == count_params(pruned)[1]
    assert count_params(net)[1] == count_params(net)[0]  # the original is dense


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class FixedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 2)

    def forward(self, x):
        return self.fc(x.view(8, 64))


def test_unexportable_models_give_a_clear_error_and_write_nothing(split, tmp_path, store):
    _, _, Xt, yt = split
    with pytest.raises(InputError) as err:
        compress(DataDependent(), Xt, yt, onnx=True, out=tmp_path / "x", repeats=5)
    message = str(err.value)
    assert "DataDependent cannot be exported to ONNX: data-dependent control flow" in message
    assert "in forward: if x.sum() > 0:" in message and "\n" not in message
    with pytest.raises(InputError, match="fixes the batch size"):
        compress(FixedBatch(), Xt[:8], [0, 1] * 4, onnx=True, out=tmp_path / "x", repeats=5)
    assert not (tmp_path / "x").exists()
    assert store.client.search_runs([store.experiment_id]) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"prune": 1.5}, r"--prune is the fraction .* got 1.5"),
    ({"prune": 0.0}, "strictly between 0 and 1"),
    ({"structured": 1}, "--structured is the fraction"),
    ({"quantize": "int4"}, "int8 only"),
    ({"max_drop": -0.1}, "--max-drop"),
    ({"threads": 0}, "--threads"),
])
def test_bad_options(net, split, kwargs, match):
    _, _, Xt, yt = split
    with pytest.raises(InputError, match=match):
        compress(net, Xt, yt, log=False, **kwargs)


def test_check_data_of_the_wrong_shape(net, split):
    _, _, Xt, yt = split
    with pytest.raises(InputError, match=r"X \(rows of shape \(32,\)\) does not fit model"):
        compress(net, Xt[:, :32], yt, onnx=True, log=False)
    with pytest.raises(InputError, match="has 597 rows but y has 10"):
        compress(net, Xt, yt[:10], onnx=True, log=False)


def test_missing_onnxruntime_names_the_extra(net, split, monkeypatch):
    _, _, Xt, yt = split
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'aimodel-kernel\[compress\]'"):
        compress(net, Xt, yt, onnx=True, log=False)


# -- scikit-learn ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_onnx_and_int8(split, tmp_path):
    from sklearn.neural_network import MLPClassifier

    X, y, Xt, yt = split
    clf = MLPClassifier((32,), max_iter=40, random_state=0).fit(X, y)
    r = compress(clf, Xt, yt, onnx=True, quantize="int8", log=False, repeats=5, out=tmp_path)
    assert [v.name for v in r.variants] == ["original", "onnx", "onnx-int8"]
    accuracy = float((clf.predict(Xt) == yt).mean())
    assert r.original.metrics["accuracy"] == accuracy
    onnx = r.variant("onnx")
    assert onnx.agreement >= 0.995 and onnx.max_abs_diff < 1e-3
    assert r.variant("onnx-int8").agreement >= 0.9 and r.variant("onnx-int8").ok


def test_sklearn_without_an_int8_path(cancer, split):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression

    X, y = cancer
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    with pytest.raises(InputError, match="RandomForestClassifier has no int8 path"):
        compress(forest, X, y, quantize="int8", log=False)
    with pytest.raises(InputError, match="--prune applies to PyTorch models"):
        compress(forest, X, y, prune=0.5, log=False)
    r = compress(forest, X, y, log=False, repeats=5)  # no flags: ONNX, int8 where there is one
    assert [v.name for v in r.variants] == ["original", "onnx"]
    assert any("no int8 variant" in n for n in r.notes)
    assert r.variant("onnx").agreement >= 0.99
    Xr = X[:, :5]
    target = Xr @ np.arange(1, 6) + 0.1
    reg = LinearRegression().fit(Xr, target)
    r = compress(reg, Xr, target, onnx=True, log=False, repeats=5)
    assert r.metric == "r2" and set(r.variant("onnx").metrics) == {"r2", "rmse"}
    assert r.variant("onnx").metric_drop == pytest.approx(0.0, abs=1e-4)


# -- parts -------------------------------------------------------------------------------------
def test_same_threads_restores_the_thread_count():
    before = torch.get_num_threads()
    with same_threads(1):
        assert torch.get_num_threads() == 1
        timings = measure(lambda x: x * 2, {1: np.ones(1), 256: np.ones(256)}, repeats=7,
                          warmup=2)
    assert torch.get_num_threads() == before
    assert {b: t.calls for b, t in timings.items()} == {1: 7, 256: 7}


def test_onnx_model_files_are_checksummed(net, split, onnx_file, tmp_path):
    _, _, Xt, _ = split
    saved = save_onnx(onnx_file, tmp_path / "saved", manifest={
        "task": {"task": "multiclass", "classes": list(range(10))}, "source_framework": "torch"})
    model = load_model(tmp_path / "saved", saved.checksums)
    with torch.inference_mode():
        want = net.eval()(torch.from_numpy(Xt)).argmax(1).numpy()
    net.train()
    assert np.array_equal(model.predict(Xt), want)
    assert np.allclose(model.predict_proba(Xt[:5]).sum(axis=1), 1.0)
    with open(tmp_path / "saved" / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ChecksumError, match=r"model\.onnx was changed"):
        load_model(tmp_path / "saved", saved.checksums)
