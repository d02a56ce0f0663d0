"""Store content is data, never code (issue 13, security).

Every attack here is built from a real file (a skops dump, a ``torch.export`` archive) by editing
what an attacker who can write the store would edit, and each test asserts both that the load was
refused with one line naming what failed and that the payload's marker file does not exist. Where
it matters, the test also shows that the payload is live: the unsafe way of loading (skops
trusting every type the file names, ``torch.export.load``) does run it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import mlp, run_artifact
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from aimodel_kernel.config import Settings
from aimodel_kernel.engine.core.errors import ChecksumError, InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store import trust
from aimodel_kernel.engine.store.registry import load_version, resolve
from aimodel_kernel.engine.store.serialize import (
    MANIFEST,
    PROGRAM_FILE,
    SKOPS_FILE,
    load_model,
    save_model,
    sha256_file,
)
from aimodel_kernel.engine.store.signing import SIGNATURE_FILE, generate_key
from aimodel_kernel.engine.store.torch_program import check_sym_expr, load_program
from aimodel_kernel.engine.store.trust import TrustError, is_sklearn_class, is_trusted
from aimodel_kernel.engine.training.entry import train

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

POLICY_ENV = ("AIMODEL_SIGNING_KEY", "AIMODEL_TRUSTED_KEYS", "AIMODEL_REQUIRE_SIGNED",
              "AIMODEL_TRUSTED_TYPES")


@pytest.fixture(autouse=True)
def _no_policy(monkeypatch):
    """Start every test with no signing key, no trusted keys, nothing required."""
    for name in POLICY_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    trust.untrust_types()


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PAYLOAD_RAN"
    assert not path.exists()
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- crafting files ------------------------------------------------------------------------------
def rewrite_zip(src: Path, dst: Path, edit=None, add: dict[str, bytes] | None = None) -> Path:
    """Copy zip ``src`` to ``dst``; ``edit(name, data)`` returns new bytes (or None: unchanged)."""
    with zipfile.ZipFile(src) as zin:
        items = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    prefix = items[0][0].split("/")[0] + "/" if "/" in items[0][0] else ""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name, data in items:
            new = edit(name[len(prefix):], data) if edit else None
            zout.writestr(name, data if new is None else new)
        for name, data in (add or {}).items():
            zout.writestr(prefix + name, data)
    return dst


def json_node(value) -> dict:
    return {"__class__": type(value).__name__, "__module__": "builtins",
            "__loader__": "JsonNode", "content": json.dumps(value), "is_json": True}


def call_node(module: str, name: str, *args) -> dict:
    """A skops node that calls ``module.name(*args)`` when constructed."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins",
                        "__loader__": "TupleNode", "content": [json_node(a) for a in args]}}


PAYLOADS = {
    "os.system": lambda m: ("os", "system", f"touch {m}"),
    "posix.system": lambda m: ("posix", "system", f"touch {m}"),
    "builtins.exec": lambda m: ("builtins", "exec", f"open({str(m)!r}, 'w').close()"),
}


def crafted_skops(real: Path, out: Path, module: str, name: str, arg: str, *,
                  nested: bool = False) -> Path:
    """``real`` with its root (or, ``nested``, one parameter of its root) replaced by a call."""
    def edit(member, data):
        if member != "schema.json":
            return None
        schema = json.loads(data)
        payload = call_node(module, name, arg)
        if nested:
            schema["content"]["content"]["C"] = payload
        else:
            keep = {k: schema[k] for k in ("protocol", "_skops_version") if k in schema}
            schema = {**payload, **keep}
        return json.dumps(schema).encode()

    return rewrite_zip(real, out, edit)


@pytest.fixture
def real_skops(tmp_path, cancer) -> Path:
    X, y = cancer
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    saved = save_model(clf[-1], tmp_path / "real", manifest={})
    return saved.directory / SKOPS_FILE


def forge(store, run_id: str, folder: Path, *names: str) -> None:
    """What someone who can write the store does after changing files ``names``: list their new
    digests in the manifest and record every new digest on the run."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"].update({n: sha256_file(folder / n) for n in names})
    (folder / MANIFEST).write_text(json.dumps(manifest))
    store.set_tags(run_id, {f"aimodel.sha256.{n}": sha256_file(folder / n)
                            for n in (*names, MANIFEST)})


def folder_with(tmp_path: Path, name: str, files: dict[str, Path]) -> tuple[Path, dict]:
    folder = tmp_path / name
    folder.mkdir()
    for member, source in files.items():
        shutil.copyfile(source, folder / member)
    return folder, {member: sha256_file(folder / member) for member in files}


# -- skops: only an allow-list in our code -------------------------------------------------------
@pytest.mark.parametrize("target", sorted(PAYLOADS))
@pytest.mark.parametrize("nested", [False, True], ids=["root", "nested"])
def test_a_skops_file_that_calls_code_is_refused_and_nothing_runs(tmp_path, real_skops, marker,
                                                                   target, nested):
    module, name, arg = PAYLOADS[target](marker)
    bad = crafted_skops(real_skops, tmp_path / "bad.skops", module, name, arg, nested=nested)
    folder, digests = folder_with(tmp_path, "m", {SKOPS_FILE: bad})
    with pytest.raises(TrustError) as exc:
        load_model(folder, digests)  # the digests match: only the allow-list stands in the way
    assert f"names types that are not trusted: {target}" in one_line(exc)
    assert not marker.exists()
    # the payload is live: trusting what the file names (the old loader) runs it
    import skops.io as sio

    with contextlib.suppress(Exception):  # what the call returned is no model
        sio.load(bad, trusted=sio.get_untrusted_types(file=bad))
    assert marker.exists()


def test_a_crafted_skops_version_is_refused_on_every_load_path(store, cancer, marker):
    from IPython.core.error import UsageError

    from aimodel_kernel.engine.versions.diff import diff_versions
    from aimodel_kernel.engine.versions.reproduce import reproduce
    from aimodel_kernel.magics.resolve import usage_errors

    X, y = cancer
    train(RandomForestClassifier(n_estimators=3, random_state=0), X, y, TrainConfig(name="m"))
    train(RandomForestClassifier(n_estimators=4, random_state=0), X, y, TrainConfig(name="m"))
    record = resolve("m/2")
    stored = run_artifact(store, record.run_id, "model") / SKOPS_FILE
    crafted_skops(stored, stored.with_suffix(".new"), "os", "system", f"touch {marker}")
    stored.with_suffix(".new").replace(stored)
    forge(store, record.run_id, stored.parent, SKOPS_FILE)  # the digests match again
    with pytest.raises(TrustError, match=r"not trusted: os\.system") as exc:
        load_version("m/2")
    one_line(exc)
    with pytest.raises(ChecksumError, match=r"^m/2: .*not trusted: os\.system"):
        diff_versions("m/1", "m/2", X=X[:20], log=False)
    with pytest.raises(ChecksumError, match=r"not trusted: os\.system"):
        reproduce("m/2", X, y)
    with pytest.raises(UsageError, match=r"not trusted: os\.system.*refusing to load it"):
        usage_errors(load_version)("m/2")
    assert not marker.exists()
    assert [v.version for v in store.versions("m")] == [1, 2]  # the refusals recorded nothing


MODELS = {
    "forest": lambda: RandomForestClassifier(n_estimators=3, random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(n_estimators=3, random_state=0),
    "hist gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=3),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
    "calibrated": lambda: CalibratedClassifierCV(LogisticRegression(max_iter=300), cv=2),
    "function transformer": lambda: make_pipeline(SimpleImputer(), FunctionTransformer(np.abs),
                                                  StandardScaler(), Ridge()),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_scikit_learn_models_load_through_the_allow_list(tmp_path, cancer, kind):
    X, y = cancer
    model = MODELS[kind]().fit(X, y)
    saved = save_model(model, tmp_path / "m", manifest={})
    back = load_model(tmp_path / "m", saved.checksums)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_mitigated_models_new_and_old_paths_are_trusted():
    import inspect

    from aimodel_kernel.engine.fairness import mitigated_models

    ours = {f"{cls.__module__}.{cls.__qualname__}"
            for _, cls in inspect.getmembers(mitigated_models, inspect.isclass)
            if cls.__module__ == mitigated_models.__name__ and issubclass(cls, BaseEstimator)}
    assert ours and ours <= set(trust.OWN_TYPES)  # a new estimator there must be listed
    for name in ours:
        assert is_trusted(name)
        assert is_trusted(name.replace("fairness.mitigated_models", "fair_models"))


def test_scikit_learn_is_trusted_by_where_a_class_is_defined():
    assert is_sklearn_class("sklearn.ensemble._forest.RandomForestClassifier")
    assert is_sklearn_class("sklearn.calibration._SigmoidCalibration")
    assert not is_sklearn_class("sklearn.utils._param_validation.Integral")  # numbers.Integral
    assert not is_sklearn_class("sklearn.utils._testing.TempMemmap")  # test helpers
    assert not is_sklearn_class("sklearn.utils.check_array")  # a function
    assert not is_sklearn_class("sklearn.no_such_module.Thing")
    assert not is_sklearn_class("sklearnx.Thing")
    for name in ("builtins.exec", "os.system", "subprocess.Popen", "numpy.load"):
        assert not is_trusted(name), name


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own estimator: not trusted until registered."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


def test_a_users_class_loads_only_once_registered(tmp_path, cancer, monkeypatch):
    X, y = cancer
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=300)).fit(X, y)
    saved = save_model(model, tmp_path / "m", manifest={})
    name = f"{Doubler.__module__}.Doubler"
    with pytest.raises(TrustError, match=f"not trusted: {name}") as exc:
        load_model(tmp_path / "m", saved.checksums)
    assert "trust_types" in one_line(exc)
    assert name in trust.trust_types([Doubler])
    np.testing.assert_array_equal(load_model(tmp_path / "m", saved.checksums).predict(X),
                                  model.predict(X))
    trust.untrust_types([Doubler])
    with pytest.raises(TrustError):
        load_model(tmp_path / "m", saved.checksums)
    monkeypatch.setenv("AIMODEL_TRUSTED_TYPES", f"xgboost.sklearn.XGBClassifier, {name}")
    assert isinstance(load_model(tmp_path / "m", saved.checksums), type(model))
    monkeypatch.delenv("AIMODEL_TRUSTED_TYPES")
    settings = Settings(trusted_types=(name,))
    assert isinstance(load_model(tmp_path / "m", saved.checksums, settings=settings), type(model))
    with pytest.raises(ValueError, match="fully qualified"):
        trust.trust_types(["Doubler"])


def test_a_tree_pointing_outside_itself_is_refused_before_predict(tmp_path, cancer):
    import skops.io as sio

    X, y = cancer
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    tree = forest.estimators_[1].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**9  # predict would read far outside the node array
    tree.__setstate__({**state, "nodes": nodes})
    sio.dump(forest, tmp_path / SKOPS_FILE)
    folder, digests = folder_with(tmp_path, "m", {SKOPS_FILE: tmp_path / SKOPS_FILE})
    with pytest.raises(TrustError, match="malformed tree") as exc:
        load_model(folder, digests)
    one_line(exc)

    hist = HistGradientBoostingClassifier(max_iter=2).fit(X, y)
    predictor = hist._predictors[0][0]
    predictor.nodes["feature_idx"][0] = 10**6
    sio.dump(hist, tmp_path / "hist.skops")
    folder, digests = folder_with(tmp_path, "h", {SKOPS_FILE: tmp_path / "hist.skops"})
    with pytest.raises(TrustError, match="malformed tree"):
        load_model(folder, digests)


# -- torch: safetensors, and the program without any pickle path ---------------------------------
class Payload:
    """Unpickling it runs a shell command (what a crafted pickle member does)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def torch_payload(marker: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(Payload(f"touch {marker}"), buffer)
    return buffer.getvalue()


@pytest.fixture
def program(tmp_path) -> Path:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.BatchNorm1d(5),
                              torch.nn.Linear(5, 3)).eval()
    saved = save_model(net, tmp_path / "prog", manifest={}, example_input=torch.randn(4, 6))
    return saved.directory / PROGRAM_FILE


def _model_json(edit):
    def change(member, data):
        if member != "models/model.json":
            return None
        doc = json.loads(data)
        edit(doc)
        return json.dumps(doc).encode()
    return change


def _first_node(doc):
    return doc["graph_module"]["graph"]["nodes"][0]


def _pickled_weight(marker):
    def change(member, data):
        if member == "data/weights/model_weights_config.json":
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if member == "data/weights/weight_0":
            return torch_payload(marker)
        return None
    return change


def _custom_constant(member, data):
    if member == "data/constants/model_constants_config.json":
        return json.dumps({"config": {"obj": {"path_name": "custom_obj_0", "is_param": False,
                                              "use_pickle": False, "tensor_meta": None}}}).encode()
    return None


ATTACKS = {
    "pickled weight": (lambda m: {"edit": _pickled_weight(m)}, "as a pickle"),
    "guard code": (lambda m: {"edit": _model_json(lambda d: d.__setitem__(
        "guards_code", [f"__import__('os').system('touch {m}')"]))}, "guard code"),
    "target outside torch.ops": (lambda m: {"edit": _model_json(
        lambda d: _first_node(d).__setitem__("target", "torch.os.system"))},
        "not a torch operator"),
    "symbolic shape": (lambda m: {"edit": _model_json(lambda d: d["graph_module"]["graph"][
        "sym_int_values"].update({"s0": {"as_expr": {"expr_str": f"__import__('os').system("
                                                     f"'touch {m}')", "hint": None}}}))},
        "symbolic shape"),
    "name pasted into code": (lambda m: {"edit": _model_json(lambda d: _first_node(d).__setitem__(
        "name", f"x\nimport os; os.system('touch {m}')"))}, "not a plain name"),
    "shared library": (lambda m: {"add": {"data/aotinductor/model/model.so": b"\x7fELF"}},
                       "data/aotinductor/model/model.so"),
    "torchbind constant": (lambda m: {"edit": _custom_constant}, "not a raw tensor"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_crafted_program_is_refused_and_nothing_runs(tmp_path, program, marker, attack):
    make, message = ATTACKS[attack]
    bad = rewrite_zip(program, tmp_path / "bad" / PROGRAM_FILE, **make(marker))
    with pytest.raises(TrustError, match=message) as exc:
        load_program(bad)
    assert "refusing to load it" in one_line(exc)
    assert not marker.exists()


def test_the_pickle_payloads_are_live_under_torch_export_load(tmp_path, program, marker):
    """What the reader above refuses (or never reads) runs code under ``torch.export.load``."""
    import torch

    bad = rewrite_zip(program, tmp_path / "bad" / PROGRAM_FILE, _pickled_weight(marker))
    with contextlib.suppress(Exception):
        torch.export.load(bad)
    assert marker.exists()
    marker.unlink()
    samples = rewrite_zip(program, tmp_path / "samples" / PROGRAM_FILE,
                          lambda member, data: torch_payload(marker)
                          if member == "data/sample_inputs/model.pt" else None)
    load_program(samples)  # sample inputs are never read: it loads, and nothing runs
    assert not marker.exists()
    with contextlib.suppress(Exception):
        torch.export.load(samples)  # weights_only=True fails, then torch retries without
    assert marker.exists()


def test_a_program_loads_without_touching_any_unpickler(tmp_path, program, monkeypatch):
    import pickle

    import torch

    reference = torch.export.load(program).module()

    def tripwire(*args, **kwargs):
        raise AssertionError("an unpickler was called")

    for owner, name in ((torch, "load"), (torch.export, "load"), (pickle, "loads"),
                        (pickle, "load"), (torch._C, "_pickle_load_obj")):
        monkeypatch.setattr(owner, name, tripwire)
    stack = f"File \"x.py\", line 1, in f\n    import os; os.system('touch {tmp_path / 'M'}')"

    def add_stack(doc):
        _first_node(doc)["metadata"]["stack_trace"] = stack

    module = load_program(rewrite_zip(program, tmp_path / "meta" / PROGRAM_FILE,
                                      _model_json(add_stack)))
    x = torch.randn(9, 6)
    with torch.no_grad():
        assert torch.allclose(module(x), reference(x))
    assert not (tmp_path / "M").exists()


def test_symbolic_shapes_accept_what_torch_writes():
    check_sym_expr("Symbol('s31', positive=True, integer=True)")
    check_sym_expr("Mul(Integer(2), Symbol('s77', integer=True, positive=True))")
    check_sym_expr("FloorDiv(Symbol('s0', integer=True), Integer(3))")
    for bad in ("exec(chr(97))", "s0.__class__", "Symbol('x').__init__", "open('f')",
                "[x for x in ()]", "lambda: 0"):
        with pytest.raises(TrustError):
            check_sym_expr(bad)


def test_a_crafted_program_in_a_version_is_refused_but_its_weights_load(store, digits, marker):
    X, y = digits
    net = mlp()
    train(net, X, y, TrainConfig(epochs=1, checkpoint=False, name="t"))
    record = resolve("t/1")
    stored = run_artifact(store, record.run_id, "model") / PROGRAM_FILE
    bad = rewrite_zip(stored, stored.parent / "bad.pt2", _pickled_weight(marker))
    bad.replace(stored)
    forge(store, record.run_id, stored.parent, PROGRAM_FILE)
    with pytest.raises(TrustError, match="as a pickle"):
        load_version("t/1")
    assert not marker.exists()
    assert load_version("t/1", into=mlp(seed=3)) is not None  # safetensors weights still load


# -- the manifest and the loader choice ----------------------------------------------------------
def test_every_file_and_the_manifest_have_recorded_digests(store, cancer):
    X, y = cancer
    result = train(LogisticRegression(max_iter=300), X, y, TrainConfig(name="c"))
    record = resolve("c/1")
    folder = run_artifact(store, result.run_id, "model")
    for tags in (record.run_tags, record.tags):
        digests = {k[len("aimodel.sha256."):]: v for k, v in tags.items()
                   if k.startswith("aimodel.sha256.")}
        assert set(digests) == {p.name for p in folder.iterdir()} == {SKOPS_FILE, MANIFEST}
        assert all(sha256_file(folder / n) == d for n, d in digests.items())
    assert record.run_tags["aimodel.framework"] == "sklearn"
    assert json.loads((folder / MANIFEST).read_text())["run_id"] == result.run_id


def test_the_loader_is_what_the_record_names():
    from aimodel_kernel.engine.store.serialize import recorded_framework

    d = "0" * 64
    assert recorded_framework({"model.safetensors": d, "model.pt2": d, MANIFEST: d}) == "torch"
    assert recorded_framework({"model.onnx": d}) == "onnx"
    assert recorded_framework({SKOPS_FILE: d, "mitigation.json": d}, "sklearn") == "sklearn"
    with pytest.raises(TrustError, match=r"no digest for model\.skops"):
        recorded_framework({"model.safetensors": d}, "sklearn")
    with pytest.raises(TrustError, match="does not say which framework"):
        recorded_framework({SKOPS_FILE: d, "model.safetensors": d})
    with pytest.raises(TrustError, match="has no loader"):
        recorded_framework({SKOPS_FILE: d}, "pickle")


def _swap_in_skops(store, run_id: str, real: Path, marker: Path) -> Path:
    """Beside a torch version's files: a crafted skops file and a manifest naming sklearn."""
    folder = run_artifact(store, run_id, "model")
    crafted_skops(real, folder / SKOPS_FILE, "os", "system", f"touch {marker}")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["framework"] = "sklearn"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_the_manifest_cannot_choose_the_loader(store, digits, real_skops, marker):
    X, y = digits
    train(mlp(), X, y, TrainConfig(epochs=1, checkpoint=False, name="t"))
    record = resolve("t/1")
    folder = _swap_in_skops(store, record.run_id, real_skops, marker)
    # no database edit: the manifest's recorded digest no longer matches
    with pytest.raises(ChecksumError, match=r"manifest.json was changed after it was saved"):
        load_version("t/1")
    # with the database edited too, the record still names torch
    store.set_tags(record.run_id, {f"aimodel.sha256.{MANIFEST}": sha256_file(folder / MANIFEST),
                                   f"aimodel.sha256.{SKOPS_FILE}":
                                       sha256_file(folder / SKOPS_FILE)})
    with pytest.raises(TrustError, match=r"manifest\.json says framework 'sklearn' but the "
                                         r"record says 'torch'") as exc:
        load_version("t/1")
    one_line(exc)
    # and a record edited to say sklearn only reaches the allow-list
    store.set_tags(record.run_id, {"aimodel.framework": "sklearn"})
    with pytest.raises(TrustError, match=r"not trusted: os\.system"):
        load_version("t/1")
    assert not marker.exists()


def test_an_old_version_without_a_manifest_digest_loads_by_its_recorded_framework(
        store, digits, real_skops, marker):
    import torch

    X, y = digits
    net = mlp()
    train(net, X, y, TrainConfig(epochs=1, checkpoint=False, name="t"))
    record = resolve("t/1")
    store.client.delete_tag(record.run_id, f"aimodel.sha256.{MANIFEST}")  # as recorded before
    _swap_in_skops(store, record.run_id, real_skops, marker)
    program = load_version("t/1")  # the run's tag says torch: the skops file is never read
    net.eval()
    xb = torch.from_numpy(X[:5])
    with torch.no_grad():
        assert torch.allclose(program(xb), net(xb), atol=1e-6)
    assert not marker.exists()
    store.client.delete_tag(record.run_id, "aimodel.framework")  # older still: no tag either
    assert load_version("t/1", into=mlp(seed=4)) is not None  # the recorded files imply torch
    assert not marker.exists()


# -- signatures ---------------------------------------------------------------------------------
@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    return {"signer": folder / "signer.pem", "signer.pub": generate_key(folder / "signer.pem"),
            "other": folder / "other.pem", "other.pub": generate_key(folder / "other.pem")}


def _train_signed(monkeypatch, keys, cancer, name="s"):
    X, y = cancer
    monkeypatch.setenv("AIMODEL_SIGNING_KEY", str(keys["signer"]))
    result = train(LogisticRegression(max_iter=300), X, y, TrainConfig(name=name))
    monkeypatch.delenv("AIMODEL_SIGNING_KEY")
    return result


def test_a_signed_version_verifies_with_its_public_key(store, cancer, keys, monkeypatch):
    X, _ = cancer
    result = _train_signed(monkeypatch, keys, cancer)
    record = resolve("s/1")
    folder = run_artifact(store, result.run_id, "model")
    assert (folder / SIGNATURE_FILE).exists()
    assert record.run_tags[f"aimodel.sha256.{SIGNATURE_FILE}"] == sha256_file(
        folder / SIGNATURE_FILE)
    assert record.run_tags["aimodel.signed_by"] == record.tags["aimodel.signed_by"]
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["signer.pub"]))
    monkeypatch.setenv("AIMODEL_REQUIRE_SIGNED", "1")
    assert load_version("s/1").predict(X[:5]).shape == (5,)


def test_a_file_changed_after_signing_is_refused(store, cancer, keys, monkeypatch):
    X, y = cancer
    result = _train_signed(monkeypatch, keys, cancer)
    folder = run_artifact(store, result.run_id, "model")
    # a store writer swaps in another (harmless-looking) model and fixes the digest
    other = save_model(LogisticRegression(C=0.01, max_iter=300).fit(X, y), Path("o"), manifest={})
    shutil.copyfile(other.directory / SKOPS_FILE, folder / SKOPS_FILE)
    store.set_tags(result.run_id, {f"aimodel.sha256.{SKOPS_FILE}":
                                   sha256_file(folder / SKOPS_FILE)})
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["signer.pub"]))
    with pytest.raises(TrustError, match=r"model.skops differs from what was signed") as exc:
        load_version("s/1")  # a trusted key is configured: a signed version is checked
    one_line(exc)


def test_an_edited_manifest_breaks_the_signature(store, cancer, keys, monkeypatch):
    result = _train_signed(monkeypatch, keys, cancer)
    folder = run_artifact(store, result.run_id, "model")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["task"] = {"task": "regression"}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    store.set_tags(result.run_id, {f"aimodel.sha256.{MANIFEST}": sha256_file(folder / MANIFEST)})
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["signer.pub"]))
    with pytest.raises(TrustError, match=r"manifest.json differs from what was signed"):
        load_version("s/1")


def test_a_file_added_after_signing_is_refused(store, cancer, keys, monkeypatch):
    result = _train_signed(monkeypatch, keys, cancer)
    folder = run_artifact(store, result.run_id, "model")
    (folder / "extra.py").write_text("import os\n")
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["signer.pub"]))
    with pytest.raises(TrustError, match=r"extra\.py was added after signing"):
        load_version("s/1")


def test_unsigned_or_foreign_versions_are_refused_when_signatures_are_required(
        store, cancer, keys, monkeypatch):
    from IPython.core.error import UsageError

    from aimodel_kernel.engine.versions.diff import diff_versions
    from aimodel_kernel.magics.resolve import usage_errors

    X, y = cancer
    train(LogisticRegression(max_iter=300), X, y, TrainConfig(name="u"))
    _train_signed(monkeypatch, keys, cancer, name="u")
    assert load_version("u/1") is not None  # nothing required: unsigned loads
    monkeypatch.setenv("AIMODEL_REQUIRE_SIGNED", "1")
    with pytest.raises(TrustError, match="no trusted public keys are configured"):
        load_version("u/2")
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["signer.pub"]))
    assert load_version("u/2") is not None
    with pytest.raises(TrustError, match="the version is not signed") as exc:
        load_version("u/1")
    one_line(exc)
    with pytest.raises(UsageError, match=r"not signed and \$AIMODEL_REQUIRE_SIGNED is set"):
        usage_errors(load_version)("u/1")
    with pytest.raises(ChecksumError, match=r"^u/1: the version is not signed"):
        diff_versions("u/1", "u/2", X=X[:10], log=False)
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", str(keys["other.pub"]))
    with pytest.raises(TrustError, match="signed by a key that is not trusted"):
        load_version("u/2")
    # the signing key's own public key is always trusted
    monkeypatch.setenv("AIMODEL_SIGNING_KEY", str(keys["signer"]))
    assert load_version("u/2") is not None


def test_settings_read_the_policy_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AIMODEL_TRUSTED_KEYS", os.pathsep.join(["a.pub", "", "b.pub"]))
    monkeypatch.setenv("AIMODEL_REQUIRE_SIGNED", "yes")
    s = Settings()
    assert [p.name for p in s.resolved_trusted_keys()] == ["a.pub", "b.pub"]
    assert s.requires_signed() and not Settings(require_signed=False).requires_signed()
    assert Settings(trusted_keys=()).resolved_trusted_keys() == ()
    assert Settings().resolved_signing_key() is None
    public = generate_key(tmp_path / "k.pem")
    assert public == tmp_path / "k.pub" and b"PUBLIC KEY" in public.read_bytes()
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(InputError, match="exists"):
        generate_key(tmp_path / "k.pem")  # a key is never overwritten


# -- ONNX ------------------------------------------------------------------------------------------
def _onnx_file(path: Path, *, external: str | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 3],
                                np.array([1.0, 2.0, 3.0], dtype=np.float32).tobytes(), raw=True)
    if external is not None:
        onnx.external_data_helper.set_external_data(weight, location=external)
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_an_onnx_model_reading_external_files_is_refused(tmp_path):
    from aimodel_kernel.engine.store.serialize import ONNX_FILE

    good, digests = folder_with(tmp_path, "good", {ONNX_FILE: _onnx_file(tmp_path / "g.onnx")})
    out = load_model(good, digests).run(np.zeros((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(out, [[1.0, 2.0, 3.0]] * 2)
    (tmp_path / "secret.bin").write_bytes(np.arange(3, dtype=np.float32).tobytes())
    bad, digests = folder_with(tmp_path, "bad", {
        ONNX_FILE: _onnx_file(tmp_path / "b.onnx", external="../secret.bin")})
    with pytest.raises(TrustError, match="reads tensor 'w' from an external file") as exc:
        load_model(bad, digests)
    one_line(exc)


def test_the_signing_policy_of_a_settings_object_applies_to_every_call(store, cancer, keys):
    """Settings passed to a call sign and check as the environment variables do, also when the
    store was opened before with other settings (one store object serves both calls)."""
    X, y = cancer
    home = store.settings.resolved_home()
    train(LogisticRegression(max_iter=300), X, y, TrainConfig(name="p"))  # opens the store
    signer = Settings(home=home, signing_key=keys["signer"])
    train(LogisticRegression(max_iter=300), X, y, TrainConfig(name="p"), settings=signer)
    assert (run_artifact(store, resolve("p/2").run_id, "model") / SIGNATURE_FILE).exists()
    assert not (run_artifact(store, resolve("p/1").run_id, "model") / SIGNATURE_FILE).exists()
    strict = Settings(home=home, trusted_keys=(keys["signer.pub"],), require_signed=True)
    assert load_version("p/2", settings=strict).predict(X[:3]).shape == (3,)
    with pytest.raises(TrustError, match="the version is not signed"):
        load_version("p/1", settings=strict)
    foreign = Settings(home=home, trusted_keys=(keys["other.pub"],), require_signed=True)
    with pytest.raises(TrustError, match="signed by a key that is not trusted"):
        load_version("p/2", settings=foreign)
    assert load_version("p/1") is not None  # the default settings require nothing


def test_config_aimodel_magics_sets_the_signing_policy(ip, keys):
    from IPython.core.error import UsageError

    ip.run_line_magic("config", f"AimodelMagics.signing_key = {str(keys['signer'])!r}")
    ip.run_line_magic("train", "clf X y --name cfg")
    ip.run_line_magic("config", "AimodelMagics.signing_key = ''")
    ip.run_line_magic("train", "clf X y --name cfg")
    ip.run_line_magic("config", f"AimodelMagics.trusted_keys = [{str(keys['signer.pub'])!r}]")
    ip.run_line_magic("config", "AimodelMagics.require_signed = True")
    try:
        assert "cfg/1" in str(ip.run_line_magic("versions", "cfg"))
        ip.run_line_magic("diff", "cfg/1 cfg/1 --data X y --no-log")  # signed: loads
        with pytest.raises(UsageError, match="cfg/2: the version is not signed"):
            ip.run_line_magic("diff", "cfg/1 cfg/2 --data X y --no-log")
    finally:
        ip.run_line_magic("config", "AimodelMagics.require_signed = None")
        ip.run_line_magic("config", "AimodelMagics.trusted_keys = None")
