"""``%aimodel freeze`` / ``%aimodel check`` in a real in-process IPython."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from aimodel_kernel.display import view
from aimodel_kernel.display.lock_report import CheckReport, FreezeReport


def test_freeze_then_check_in_the_same_kernel(ip, tmp_path):
    ip.run_cell("r = %train clf X y --seed 3 --name cancer", store_history=True).raise_error()
    frozen = ip.run_line_magic("aimodel", "freeze")
    assert isinstance(frozen, FreezeReport)
    path = tmp_path / "aimodel.lock.json"  # the notebook is unknown: the default name, in cwd
    assert frozen.path == str(path) and path.exists()
    lock = json.loads(path.read_text())
    assert [r["magic"] for r in lock["runs"]] == ["%train clf X y --seed 3 --name cancer"]
    assert lock["packages"]["scikit-learn"] and lock["runs"][0]["data"]["X"] == "X"
    assert "1 run, 1 data fingerprint" in frozen.summary_line()
    view.validate(frozen.payload())

    checked = ip.run_line_magic("aimodel", "check")
    assert isinstance(checked, CheckReport) and not checked.mismatches
    assert checked.view_status() == "ok" and checked.summary_line().startswith(
        "this kernel matches aimodel.lock.json")
    view.validate(checked.payload())


def test_the_lock_goes_next_to_the_notebook(ip, tmp_path, monkeypatch):
    notebook = tmp_path / "nbs" / "01_demo.ipynb"
    notebook.parent.mkdir()
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))  # what Jupyter Server tells kernels
    report = ip.run_line_magic("aimodel", "freeze")
    assert report.path == str(notebook.parent / "01_demo.aimodel-lock.json")
    assert json.loads((notebook.parent / "01_demo.aimodel-lock.json").read_text())[
        "notebook"] == "01_demo.ipynb"
    assert not ip.run_line_magic("aimodel", "check").mismatches  # found at the same place
    other = ip.run_line_magic("aimodel", f"freeze {tmp_path / 'shared'}/")
    assert other.path == str(tmp_path / "shared" / "01_demo.aimodel-lock.json")


def test_a_colleagues_kernel_sees_every_mismatch_before_running(ip, tmp_path, cancer):
    ip.run_cell("%train clf X y --seed 3", store_history=True).raise_error()
    ip.run_line_magic("aimodel", "freeze")
    path = tmp_path / "aimodel.lock.json"
    lock = json.loads(path.read_text())
    lock["packages"]["numpy"] = "1.0.0"
    lock["platform"]["machine"] = "riscv128"
    path.write_text(json.dumps(lock, indent=2, sort_keys=True))
    for name in ("X", "y"):
        del ip.user_ns[name]  # nothing has run yet in the colleague's kernel
    report = ip.run_line_magic("aimodel", "check")
    assert {(m.what, m.name) for m in report.mismatches} == {("package", "numpy"),
                                                             ("platform", "machine")}
    assert report.view_status() == "warning"
    assert report.summary_line().startswith("2 mismatches with aimodel.lock.json: machine")
    assert "1 data set not checked yet" in report.summary_line()
    payload = report.payload()
    view.validate(payload)
    first = payload["sections"][0]
    assert first["title"] == "Mismatches" and len(first["rows"]) == 2
    assert first["rows"][0][4] == {"value": "mismatch", "text": "mismatch", "status": "bad"}
    assert "numpy" in report.text() and "riscv128" in report.html()
    X, y = cancer
    ip.user_ns.update(X=X, y=y)  # after the data cells ran: the data is compared too
    rows = {r.name: r for r in ip.run_line_magic("aimodel", "check").rows if r.what == "data"}
    assert rows["X, y"].status == "ok"
    ip.user_ns["X"] = X[::-1]
    rows = {r.name: r for r in ip.run_line_magic("aimodel", "check").rows if r.what == "data"}
    assert rows["X, y"].status == "mismatch"


def test_panel_runs_are_frozen_with_their_parameters(ip, tmp_path):
    from aimodel_kernel.widgets.experiment import ExperimentPanel

    panel = ExperimentPanel(ip, widget=True, background=False)
    panel.set(C=0.25, seed=1)
    panel.train_button.click()
    (run,) = json.loads(tmp_path.joinpath(ip.run_line_magic("aimodel", "freeze").path)
                        .read_text())["runs"]
    assert run["magic"] == "%train clf X y --seed 1"
    assert run["panel"] == {"model.C": 0.25, "train.seed": 1}


def test_usage_errors(ip, tmp_path):
    with pytest.raises(UsageError, match=r"no lock file at .*run %aimodel freeze"):
        ip.run_line_magic("aimodel", "check")
    with pytest.raises(UsageError, match=r"%aimodel\? for the flags"):
        ip.run_line_magic("aimodel", "thaw")
    (tmp_path / "notes.json").write_text("[]")
    with pytest.raises(UsageError, match="not an aimodel lock file"):
        ip.run_line_magic("aimodel", "check notes.json")
    assert not (tmp_path / "aimodel.lock.json").exists()
