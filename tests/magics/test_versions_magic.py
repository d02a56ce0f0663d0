"""``%versions``: the registered versions of a model, as a table with text and HTML views."""

from __future__ import annotations

import json

from aimodel_kernel.display.versions_report import VersionsReport


def test_versions_of_one_model_and_of_all(ip):
    ip.run_line_magic("train", "clf X y --name cancer --val 0.2")
    ip.run_line_magic("train", "clf X[:400] y[:400] --name cancer")
    ip.run_line_magic("train", "clf X y --name other")
    v = ip.run_line_magic("versions", "cancer")
    assert isinstance(v, VersionsReport)
    assert [r.ref for r in v.versions] == ["cancer/1", "cancer/2"]
    assert "val_accuracy" in v.versions[0].metrics and "val_accuracy" not in v.versions[1].metrics
    assert v.versions[0].run_tags["aimodel.data.sha256"] != v.versions[1].run_tags[
        "aimodel.data.sha256"]
    text = v._repr_mimebundle_()["text/plain"]
    assert text.startswith("2 versions of cancer in sqlite:///")
    assert "cancer/1" in text and "LogisticRegression" in text and "binary (2)" in text
    bundle = v._repr_mimebundle_()
    assert bundle["text/html"].count("<tr>") == 3  # header + two versions
    payload = bundle["application/vnd.aimodel.versions.v1+json"]
    doc = payload["data"]
    assert json.loads(json.dumps(doc))["name"] == "cancer" and len(doc["versions"]) == 2
    # the lab's view: one sortable table, the same columns as the HTML, times and sizes numeric
    (table,) = payload["sections"]
    assert [c["name"] for c in table["columns"]] == list(VersionsReport.header)
    assert table["sortable"] and [row[0] for row in table["rows"]] == ["cancer/1", "cancer/2"]
    created = table["rows"][0][2]
    assert created["value"] == v.versions[0].created and created["text"] in text
    kinds = {c["name"]: c["kind"] for c in table["columns"]}
    assert kinds["created"] == kinds["size"] == "number"
    everything = ip.run_line_magic("versions", "")
    assert sorted(r.ref for r in everything.versions) == ["cancer/1", "cancer/2", "other/1"]
    assert "all registered models" in everything.text()


def test_no_versions_yet(ip):
    v = ip.run_line_magic("versions", "")
    assert v.versions == [] and v.text().startswith("0 versions of all registered models")
    assert "<table>" not in v._repr_mimebundle_()["text/html"]
