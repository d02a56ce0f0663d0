"""Every tutorial notebook runs headless, end to end, in a real kernel (nbclient)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    target = workdir / path.name
    shutil.copy(path, target)
    nb = nbformat.read(target, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AIMODEL_HOME", raising=False)
    nb = execute(path, tmp_path)
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert (tmp_path / ".aimodel" / "mlflow.db").exists()
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_quickstart_shows_reports_and_versions(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AIMODEL_HOME", raising=False)
    nb = execute(Path(__file__).parent.parent / "notebooks" / "01_quickstart.ipynb", tmp_path)
    results = [o for o in outputs(nb) if o.output_type == "execute_result"]
    kinds = {k for o in results for k in o["data"] if k.startswith("application/vnd.aimodel.")}
    assert {"application/vnd.aimodel.train.v1+json", "application/vnd.aimodel.evaluation.v1+json",
            "application/vnd.aimodel.versions.v1+json"} <= kinds
    assert all("text/html" in o["data"] and "text/plain" in o["data"] for o in results)
    # the live progress widget is replaced by a static summary once training ends
    widget_view = "application/vnd.jupyter.widget-view+json"
    live = [o for o in outputs(nb) if widget_view in o.get("data", {})]
    assert not live
    versions = next(o for o in results if "application/vnd.aimodel.versions.v1+json" in o["data"])
    listed = versions["data"]["application/vnd.aimodel.versions.v1+json"]["data"]["versions"]
    assert {(v["name"], v["version"]) for v in listed} == {("cancer-rf", 1), ("digits-mlp", 1)}
