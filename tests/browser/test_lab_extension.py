"""End to end in JupyterLab + Chromium: our renderer, the Models sidebar, a diff, the status bar."""

from __future__ import annotations

import nbformat
import pytest
from lab_fixtures import *  # noqa: F403 - fixtures lab, browser, page
from lab_fixtures import SHOTS

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext aimodel_kernel",
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_breast_cancer(return_X_y=True)\n"
    "clf = LogisticRegression(C=1.0, solver='liblinear')",
    "%train clf X y --name cancer-lr",
    "%evaluate clf X y",
    "clf.set_params(C=0.01)\n%train clf X y --name cancer-lr",
]
LAB_REPORT = "[data-aimodel-renderer='lab']"


def write_notebook(folder, name: str, cells: list[str]) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    (folder / name).write_text(nbformat.writes(nb))
    return name


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.open_url(name))
    page.wait_for_function("(name) => { const w = window.jupyterapp "
                           "&& window.jupyterapp.shell.currentWidget; "
                           "return w && w.context && w.context.path === name "
                           "&& w.sessionContext; }", arg=name, timeout=90_000)
    page.wait_for_function("() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
                           " return s.session && s.session.kernel "
                           "&& s.session.kernel.connectionStatus === 'connected'; }",
                           timeout=90_000)


def run_all(page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def test_reports_sidebar_and_diff(page, lab):
    open_notebook(page, lab, write_notebook(lab.root, "demo.ipynb", CELLS))
    run_all(page)
    evaluation = page.locator(f".aimodel-report-evaluation{LAB_REPORT}")
    evaluation.wait_for(timeout=180_000)
    # our renderer drew it, not the text/html fallback of the same bundle
    assert "cancer-lr" in evaluation.inner_text() or "LogisticRegression" in evaluation.inner_text()
    assert page.locator(".jp-OutputArea-output div.aimodel-report:not([data-aimodel-renderer])"
                        ).count() == 0
    assert evaluation.locator("table").count() >= 2
    page.locator(f".aimodel-report-train{LAB_REPORT}").nth(1).wait_for(timeout=180_000)

    page.evaluate("() => window.jupyterapp.commands.execute('aimodel:open-models')")
    newest = page.locator("li.aimodel-version[data-ref='cancer-lr/2']")
    newest.wait_for(timeout=60_000)
    oldest = page.locator("li.aimodel-version[data-ref='cancer-lr/1']")
    oldest.locator("input[type=checkbox]").check()
    newest.locator("input[type=checkbox]").check()
    page.locator("[data-action='open-diff']").click()
    diff = page.locator(f".aimodel-report-diff{LAB_REPORT}")
    diff.wait_for(timeout=60_000)
    summary = diff.locator(".aimodel-summary").inner_text()
    assert summary.startswith("cancer-lr/2 vs cancer-lr/1"), summary
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "diff-from-models-sidebar.png"))


PANEL_CELLS = [
    "%load_ext aimodel_kernel",
    "import torch\nfrom torch import nn\nfrom sklearn.datasets import load_digits\n"
    "X, y = load_digits(return_X_y=True)\nX = (X / 16.0).astype('float32')\n"
    "torch.manual_seed(0)\n"
    "net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))",
    "panel = %experiment net X y --name digits-panel\npanel.set(epochs=40)\npanel",
]


def test_experiment_panel_trains_with_live_status(page, lab):
    open_notebook(page, lab, write_notebook(lab.root, "panel.ipynb", PANEL_CELLS))
    run_all(page)
    train = page.locator(".jp-OutputArea-output .widget-button", has_text="Train")
    train.wait_for(timeout=180_000)
    train.click()
    # the kernel pushes progress: the status bar shows the epoch while the panel trains
    status = page.locator(".aimodel-status")
    status.filter(has_text="epoch").wait_for(timeout=120_000)
    done = page.locator(".jp-OutputArea-output", has_text="Trained Sequential")
    done.first.wait_for(timeout=180_000)
    text = done.first.inner_text()
    assert "for 40 epochs" in text and "registered digits-panel/1" in text, text
    # the panel's result is rendered by our renderer inside the widget's output
    page.locator(f".aimodel-report-train{LAB_REPORT}").first.wait_for(timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "experiment-panel-trained.png"))
