"""The REST API's response bodies follow ``aimodel_kernel/server/api.v1.schema.json``.

The example files in ``docs/api-examples/`` (written by ``scripts/make_api_examples.py``)
validate, one per body; bodies built now from a real store validate and have the examples'
shape; the schema refuses bodies that break it; the TypeScript checks in
``labextension/src/apitypes.ts`` name the same keys. The live handlers' answers are validated
in ``test_handlers.py`` (the server fixtures are imported into that file only).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import re
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from aimodel_kernel.engine.store.tracking import TAG, VersionRecord
from aimodel_kernel.server import schema
from aimodel_kernel.server.catalog import version_entry

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "api-examples"
GENERATOR = REPO / "scripts" / "make_api_examples.py"
APITYPES = REPO / "labextension" / "src" / "apitypes.ts"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_api_examples", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example(body: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{body}.json").read_text(encoding="utf-8"))


# -- the schema file ----------------------------------------------------------------------------
def test_the_schema_ships_with_the_package_and_is_a_valid_schema():
    text = resources.files("aimodel_kernel.server").joinpath(schema.SCHEMA_FILE).read_text()
    parsed = json.loads(text)
    assert parsed == schema.schema()
    jsonschema.Draft202012Validator.check_schema(parsed)
    assert set(parsed["$defs"]) >= set(schema.BODIES)


def test_an_unknown_body_name_is_refused():
    with pytest.raises(ValueError, match="unknown body"):
        schema.validate({}, "versions")  # type: ignore[arg-type]


# -- (a) the example files ----------------------------------------------------------------------
def test_examples_cover_every_body_and_validate():
    files = {p.stem: p for p in EXAMPLES.glob("*.json")}
    assert set(files) == set(schema.BODIES) == set(_generator().BODIES)
    for body, path in files.items():
        value = json.loads(path.read_text(encoding="utf-8"))
        schema.validate(value, body)
        whole = jsonschema.Draft202012Validator(schema.schema(), registry=schema.registry())
        whole.validate(value)  # the schema as a whole accepts any of the bodies
        others = [b for b in schema.BODIES if b != body]
        for other in others:  # each body is told apart from the others
            with pytest.raises(jsonschema.ValidationError):
                schema.validate(value, other)
        assert path.stat().st_size < 100_000, body


def test_examples_show_what_the_sidebar_and_the_diff_view_use():
    models = _example("models")
    assert models["store"] == {"uri": "sqlite:////home/jovyan/work/proj/.aimodel/mlflow.db",
                               "embedded": True}
    by_ref = {v["ref"]: v for m in models["models"] for v in m["versions"]}
    assert list(by_ref) == ["cancer-lr/2", "cancer-lr/1", "iris-tree/1"]  # newest first
    assert by_ref["cancer-lr/2"]["aliases"] == ["champion"]
    assert by_ref["cancer-lr/2"]["parent"] == "cancer-lr/1"
    assert (by_ref["cancer-lr/1"]["classes"], by_ref["iris-tree/1"]["classes"]) == (2, 3)
    assert by_ref["iris-tree/1"]["task"] == "multiclass"
    assert all(v["metrics"] and v["status"] == "FINISHED" for v in by_ref.values())
    diff = _example("diff")
    assert diff["payload"]["kind"] == "diff" and diff["png"].startswith("iVBOR")
    assert diff["payload"]["summary"].startswith("cancer-lr/2 vs cancer-lr/1")
    assert _example("error") == {"message": "cancer-lr has no version 9 (versions: 1, 2)",
                                 "reason": "Not Found"}
    text = "".join(p.read_text(encoding="utf-8") for p in EXAMPLES.glob("*.json"))
    assert "/tmp" not in text and "aimodel-api-examples-" not in text  # placeholders only


# -- (b) bodies built now, from a real store ----------------------------------------------------
@pytest.fixture(scope="module")
def fresh() -> dict[str, dict[str, Any]]:
    gen = _generator()
    with gen.temporary_root() as root:
        trained = gen.train_models(root)
        return gen.stable(gen.build_examples(root), root, trained)


def _shape(models: dict[str, Any]) -> list[tuple]:
    return [(m["name"], v["ref"], v["aliases"], v["parent"], v["model_type"], v["task"],
             v["classes"], sorted(v["metrics"]), v["status"], v["created"], v["run_id"])
            for m in models["models"] for v in m["versions"]]


def test_fresh_bodies_validate_and_have_the_examples_shape(fresh):
    for body in schema.BODIES:
        schema.validate(fresh[body], body)
    assert fresh["models"]["store"] == _example("models")["store"]
    assert _shape(fresh["models"]) == _shape(_example("models"))  # regeneration is stable
    assert fresh["error"] == _example("error")
    example = _example("diff")["payload"]
    assert [s["title"] for s in fresh["diff"]["payload"]["sections"]] == [
        s["title"] for s in example["sections"]]


def _record(**metrics: float) -> VersionRecord:
    return VersionRecord(name="m", version=3, run_id="r" * 32, created=1_700_000_000.5,
                         aliases=["champion"], metrics=metrics,
                         run_tags={f"{TAG}task": "binary", f"{TAG}classes": "[0, 1]",
                                   f"{TAG}model_class": "sklearn.linear_model.LogisticRegression"},
                         status="FINISHED")


def test_a_version_entry_is_valid_and_carries_non_finite_metrics_as_null():
    entry = version_entry(_record(val_accuracy=0.9, val_loss=math.nan, loss=-math.inf))
    assert entry["metrics"] == {"val_accuracy": 0.9, "val_loss": None, "loss": None}
    assert entry["created"] == "2023-11-14T22:13:20+00:00"
    assert (entry["classes"], entry["model_type"], entry["parent"]) == (2, "LogisticRegression",
                                                                         None)
    json.dumps(entry, allow_nan=False)  # strict JSON, as the handler writes it
    body = {"store": {"uri": "sqlite:///x/mlflow.db", "embedded": True},
            "models": [{"name": "m", "versions": [entry]}]}
    schema.validate(body, "models")


# -- (c) the schema refuses broken bodies -------------------------------------------------------
def _broken(body: str, change) -> dict[str, Any]:
    value = copy.deepcopy(_example(body))
    change(value)
    return value


def _version(value: dict[str, Any]) -> dict[str, Any]:
    return value["models"][0]["versions"][0]


@pytest.mark.parametrize(("body", "change"), [
    ("models", lambda b: b.pop("store")),
    ("models", lambda b: b["store"].update(embedded="yes")),
    ("models", lambda b: b["models"][0].update(description="drifted")),
    ("models", lambda b: b["models"][0].update(name="")),
    ("models", lambda b: _version(b).pop("classes")),
    ("models", lambda b: _version(b).update(classes=-1)),
    ("models", lambda b: _version(b).update(classes=2.5)),
    ("models", lambda b: _version(b).update(version=0)),
    ("models", lambda b: _version(b).update(ref="cancer-lr")),
    ("models", lambda b: _version(b).update(created="yesterday")),
    ("models", lambda b: _version(b).update(parent=1)),
    ("models", lambda b: _version(b)["metrics"].update(val_accuracy="0.9")),
    ("models", lambda b: _version(b).update(aliases=[None])),
    ("models", lambda b: _version(b).update(html="<b>")),
    ("diff", lambda b: b.update(png="not base64!")),
    ("diff", lambda b: b.pop("png")),
    ("diff", lambda b: b["payload"].update(kind="versions")),
    ("diff", lambda b: b["payload"].pop("summary")),
    ("diff", lambda b: b.update(extra=True)),
    ("error", lambda b: b.pop("message")),
    ("error", lambda b: b.update(reason=404)),
    ("error", lambda b: b.update(traceback=None)),
    ("error", lambda b: b.update(code=404)),
], ids=["models: no store", "models: embedded not a boolean", "models: description",
        "models: empty name", "version: no classes", "version: negative classes",
        "version: fractional classes", "version: version 0", "version: ref without version",
        "version: created not a date", "version: parent a number", "version: metric a string",
        "version: alias null", "version: unknown key", "diff: png not base64", "diff: no png",
        "diff: payload of another kind", "diff: payload without summary", "diff: unknown key",
        "error: no message", "error: reason a number", "error: traceback null",
        "error: unknown key"])
def test_schema_rejects_broken_bodies(body, change):
    schema.validate(_example(body), body)  # the unbroken body passes
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(_broken(body, change), body)


def test_a_body_without_png_and_an_error_with_a_traceback_are_valid():
    schema.validate({**_example("diff"), "png": None}, "diff")
    schema.validate({"message": "Unhandled error", "reason": None, "traceback": ""}, "error")


# -- (d) the TypeScript checks name the same keys -----------------------------------------------
def _ts_list(name: str) -> list[str]:
    source = APITYPES.read_text(encoding="utf-8")
    match = re.search(rf"const {name} = \[(.*?)\];", source, re.S)
    assert match, f"{name} not found in {APITYPES.name}"
    return re.findall(r"'([^']*)'", match[1])


@pytest.mark.parametrize(("definition", "required", "allowed"), [
    ("store", "STORE_KEYS", "STORE_KEYS"),
    ("version", "VERSION_KEYS", "VERSION_KEYS"),
    ("model", "MODEL_KEYS", "MODEL_KEYS"),
    ("models", "MODELS_KEYS", "MODELS_KEYS"),
    ("diff", "DIFF_KEYS", "DIFF_KEYS"),
    ("error", "ERROR_REQUIRED", "ERROR_KEYS"),
])
def test_typescript_checks_require_and_allow_the_schemas_keys(definition, required, allowed):
    spec = schema.schema()["$defs"][definition]
    assert spec["additionalProperties"] is False
    assert _ts_list(required) == spec["required"]
    assert _ts_list(allowed) == list(spec["properties"])


def test_typescript_patterns_are_the_schemas():
    source = APITYPES.read_text(encoding="utf-8")
    version = schema.schema()["$defs"]["version"]["properties"]
    png = schema.schema()["$defs"]["diff"]["properties"]["png"]
    for name, pattern in [("REF_PATTERN", version["ref"]["pattern"]),
                          ("CREATED_PATTERN", version["created"]["pattern"]),
                          ("BASE64_PATTERN", png["pattern"])]:
        match = re.search(rf"const {name} =\s*/(.*)/;", source)
        assert match, name
        assert match[1].replace("\\/", "/") == pattern, name
