"""Every report's JSON MIME payload follows ``report.v1.schema.json``.

The example files in ``docs/report-examples/`` (written by ``scripts/make_report_examples.py``)
validate and cover every report kind; reports made now from real data validate and survive
strict JSON; the schema refuses payloads that break it; the view agrees with the HTML.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import pkgutil
from html import escape
from pathlib import Path

import jsonschema
import pytest

import aimodel_kernel.display
from aimodel_kernel.display import view
from aimodel_kernel.display.compress_report import CompressReport
from aimodel_kernel.display.mime import mime_type
from aimodel_kernel.display.report import Report
from aimodel_kernel.display.reproduce_report import ReproduceReport
from aimodel_kernel.display.tables import fmt, html_table, text_table
from aimodel_kernel.engine.compression.result import CompressResult, Variant
from aimodel_kernel.engine.core.data import TaskInfo
from aimodel_kernel.engine.versions.reproduce import ReproduceResult

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "report-examples"
GENERATOR = REPO / "scripts" / "make_report_examples.py"


def _generator():
    spec = importlib.util.spec_from_file_location("make_report_examples", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report_kinds() -> set[str]:
    """The ``kind`` of every Report subclass in the display package."""
    for info in pkgutil.iter_modules(aimodel_kernel.display.__path__):
        importlib.import_module(f"aimodel_kernel.display.{info.name}")
    found, todo = set(), list(Report.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls.kind)
        todo += cls.__subclasses__()
    return found


def _example(kind: str) -> dict:
    return json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))


# -- (a) the example files ----------------------------------------------------------------------
def test_examples_cover_every_report_kind_and_validate():
    kinds = _report_kinds()
    assert len(kinds) >= 8 and "report" not in kinds
    files = {p.stem: p for p in EXAMPLES.glob("*.json")}
    assert set(files) == kinds
    assert set(_generator().KINDS) == kinds
    for kind, path in files.items():
        payload = json.loads(path.read_text(encoding="utf-8"))
        view.validate(payload)
        assert payload["kind"] == kind and payload["sections"], kind
        assert path.stat().st_size < 250_000, kind


# -- (b) reports made now, from real data -------------------------------------------------------
@pytest.fixture(scope="module")
def fresh(_shell):
    """One report of every kind from the example generator, against a temporary store."""
    gen = _generator()
    with gen.temporary_store():
        return gen.build_reports(_shell)


def test_fresh_reports_validate_and_are_strict_json(fresh):
    assert set(fresh) == _report_kinds()
    for kind, report in fresh.items():
        bundle = report._repr_mimebundle_()
        payload = bundle[mime_type(kind)]
        view.validate(payload)
        strict = json.loads(json.dumps(payload, allow_nan=False))
        assert strict["kind"] == kind and strict["title"] == type(report).title != "Report"
        assert strict["summary"] == bundle["text/plain"].splitlines()[0], kind
        assert strict["data"].keys() <= report.to_dict().keys(), kind
        # the report's own hooks do not hide the result's attributes of the same name
        if hasattr(report.result, "notes"):
            assert report.notes is report.result.notes, kind
        if hasattr(report.result, "status"):
            assert report.status == report.result.status, kind


def test_fresh_views_show_what_the_html_shows(fresh):
    """Every table cell of the view, as shown, is in the HTML: one row builder feeds both."""
    for kind, report in fresh.items():
        html = report.html()
        for section in report.payload()["sections"]:
            if section["type"] != "table":
                assert escape(section["text"].splitlines()[0]) in html or \
                    section["text"] == "no change", (kind, section["title"])
                continue
            for row in section["rows"]:
                for cell in row:
                    assert escape(fmt(cell)) in html, (kind, section["title"], cell)


def test_fresh_statuses_and_rich_cells(fresh):
    payloads = {kind: report.payload() for kind, report in fresh.items()}
    fairness = fresh["fairness"]
    assert payloads["fairness"]["status"] == ("warning" if fairness.failed else "ok")
    checks = payloads["fairness"]["sections"][0]
    assert [c["name"] for c in checks["columns"]][-1] == "result"
    bad = [row[-1] for row in checks["rows"] if isinstance(row[-1], dict)
           and row[-1].get("status") == "bad"]
    assert len(bad) == len(fairness.failed)
    assert payloads["reproduce"]["status"] == "ok"  # a deterministic sklearn refit
    diff = payloads["diff"]
    code = next(s for s in diff["sections"] if s["title"] == "Code")
    assert code["type"] == "diff" and "+clf = LogisticRegression" in code["text"]
    metrics = next(s for s in diff["sections"] if s["title"].startswith("Metrics"))
    accuracy = next(row for row in metrics["rows"] if row[0] == "eval.accuracy")
    delta = fresh["diff"].metrics["eval.accuracy"]["delta"]
    assert accuracy[3]["value"] == pytest.approx(delta)
    assert accuracy[3]["status"] == ("good" if delta > 0 else "bad")
    (versions,) = payloads["versions"]["sections"]
    created = [c["kind"] for c in versions["columns"]][2]
    assert created == "number" and all(isinstance(r[2]["value"], float) for r in versions["rows"])
    explain = payloads["explain"]["data"]
    assert "values" not in explain and "importance" in explain  # per-row arrays stay on r


# -- statuses of results that did not go well ---------------------------------------------------
def test_a_failed_reproduction_is_a_warning():
    result = ReproduceResult("m/1", "m/2", "run", identical_weights=False,
                             max_weight_difference=0.25, identical_metrics=False,
                             metric_differences={"val_accuracy": (0.91, 0.87)})
    payload = ReproduceReport(result).payload()
    view.validate(payload)
    assert payload["status"] == "warning" and payload["summary"].startswith(
        "m/2 vs m/1: not reproduced")
    weights = payload["sections"][0]["rows"][0]
    assert weights == ["identical weights", {"value": False, "text": "no", "status": "bad"}]


def test_compression_where_every_variant_failed_is_an_error():
    variants = [Variant("original", "torch", size_bytes=2048, params=100, nonzero_params=100),
                Variant("onnx", "onnx", status="failed", reason="export failed")]
    result = CompressResult("Net", "torch", TaskInfo("binary", (0, 1)), "accuracy", variants,
                            max_drop=0.01, reason="no variant completed: nothing to choose")
    report = CompressReport(result)
    payload = report.payload()
    view.validate(payload)
    assert payload["status"] == "error"
    failed = payload["sections"][0]["rows"][1]
    assert failed[0] == "onnx" and failed[-1] == {"value": "failed: export failed",
                                                  "status": "bad"}
    assert "failed: export failed" in report.text()
    variants.append(Variant("onnx-int8", "onnx"))
    assert CompressReport(result).payload()["status"] == "warning"  # one failed, none chosen


# -- (c) the schema refuses broken payloads -----------------------------------------------------
def _broken(change) -> dict:
    payload = copy.deepcopy(_example("diff"))
    change(payload)
    return payload


def _table(payload: dict) -> dict:
    return next(s for s in payload["sections"] if s["type"] == "table")


@pytest.mark.parametrize("change", [
    lambda p: p.pop("summary"),
    lambda p: p.update(status="fine"),
    lambda p: p.update(version=2),
    lambda p: p["sections"].append({"type": "chart", "title": "x", "text": "", "open": True}),
    lambda p: _table(p)["rows"][0].__setitem__(1, {"value": 1, "status": "great"}),
    lambda p: _table(p)["rows"][0].__setitem__(1, [1, 2]),
    lambda p: _table(p)["columns"][0].update(kind="date"),
    lambda p: _table(p).pop("sortable"),
    lambda p: p.update(extra=True),
], ids=["no summary", "bad status", "version 2", "unknown section type", "bad cell status",
        "list cell", "bad column kind", "table without sortable", "unknown key"])
def test_schema_rejects_broken_payloads(change):
    view.validate(_example("diff"))  # the unbroken payload passes
    with pytest.raises(jsonschema.ValidationError):
        view.validate(_broken(change))


# -- rich cells in the HTML and text tables -----------------------------------------------------
def test_rich_cells_render_as_text_with_their_status_and_sort_value():
    rows = [["a", view.cell(0.0123, text="+1.2 pt", status="good")],
            ["b", view.cell(float("nan"), text="n/a")]]
    html = html_table(["metric", "change"], rows, sortable=True)
    assert '<td class="good" data-v="0.0123">+1.2 pt</td>' in html
    assert "<td>n/a</td>" in html  # NaN is null: no sort value
    assert '<td class="good">+1.2 pt</td>' in html_table(["metric", "change"], rows)
    assert text_table(["metric", "change"], rows).splitlines()[2].endswith("+1.2 pt")
    assert fmt(view.cell(1234)) == "1,234"
