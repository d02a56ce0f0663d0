"""Sweeps from the panel: grid and seeded random runs, the leaderboard, diffs, Stop."""

from __future__ import annotations

import json
import time

import pytest
from conftest import all_runs, mlp, run_artifact

from aimodel_kernel.display import view
from aimodel_kernel.engine.training.sweep import expand
from aimodel_kernel.widgets.experiment import ExperimentPanel

ipywidgets = pytest.importorskip("ipywidgets")


@pytest.fixture
def panel(ip, cancer):
    X, y = cancer
    ip.user_ns.update(X=X[:400], y=y[:400], Xv=X[400:], yv=y[400:])
    p = ExperimentPanel(ip, widget=True, background=False)
    p.X_val_choice.value, p.y_val_choice.value = "Xv", "yv"
    return p


def active_runs(store):
    return [r for r in all_runs(store) if r.info.lifecycle_stage == "active"]


def test_grid_sweep_fills_a_sortable_leaderboard(panel, ip, store):
    clf = ip.user_ns["clf"]
    panel.set_sweep(C="0.001, 1", max_iter="50:100:50")
    panel.train_button.click()
    runs = active_runs(store)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {(r.data.params["model.C"], r.data.params["model.max_iter"]) for r in runs} == {
        ("0.001", "50"), ("0.001", "100"), ("1.0", "50"), ("1.0", "100")}
    assert {r.data.tags["aimodel.magic"] for r in runs} == {
        "%train clf X y --val-data Xv yv --name clf-sweep --seed 0"}  # the sweep's seed
    assert {r.data.tags["aimodel.panel"] for r in runs} == {"sweep"}
    assert not hasattr(clf, "coef_") and clf.C == 1.0  # copies were trained, not clf
    assert sorted(panel.models) == [1, 2, 3, 4] and all(
        hasattr(m, "coef_") for m in panel.models.values())
    first = next(r for r in runs if r.data.tags["aimodel.sweep.run"] == "1/4")
    cell = run_artifact(store, first.info.run_id, "source/cell.py").read_text()
    assert "clf = sklearn.base.clone(clf).set_params(C=0.001, max_iter=50)" in cell

    board = panel.leaderboard
    header = board.report.header()
    assert header[:5] == ["#", "version", "status", "C", "max_iter"]
    assert header[5] == "val_accuracy" and board.sort_by.value == "val_accuracy"
    scores = [row[5] for row in board.rows()]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    best = panel.job.sweep.best()
    assert board.rows()[0][1] == best.ref and best.params["model.C"] == 1.0
    board.sort_by.value = "#"
    assert [row[0] for row in board.rows()] == [1, 2, 3, 4]
    assert "<table>" in board.table.value and "onclick" in board.table.value

    payload = board.report.payload()
    view.validate(payload)
    (section,) = payload["sections"]
    assert payload["kind"] == "leaderboard" and section["sortable"]
    best_cells = [c for c in section["rows"][0] if isinstance(c, dict)]
    assert best_cells == [{"value": best.metrics["val_accuracy"],
                           "text": best_cells[0]["text"], "status": "good"}]
    assert panel.static_bundle()["image/png"]  # the ranking plot


def test_selecting_two_rows_shows_their_diff(panel, store):
    panel.set_sweep(C="0.001, 1")
    panel.train_button.click()
    refs = [value for _, value in panel.leaderboard.select.options]
    assert sorted(refs) == ["clf-sweep/1", "clf-sweep/2"]
    panel.leaderboard.select.value = (refs[0],)
    assert "select a second" in panel.leaderboard.diff_output.outputs[0]["text"]
    panel.leaderboard.select.value = tuple(refs)
    (shown,) = panel.leaderboard.diff_output.outputs
    diff = shown["data"]["application/vnd.aimodel.diff.v1+json"]["data"]
    assert (diff["a"], diff["b"]) == ("clf-sweep/1", "clf-sweep/2")  # older run first
    assert "model.C" in diff["params"] and diff["flips"] is not None  # on the validation rows
    assert diff["logged_to"] is None  # browsing leaves no artifacts behind


def test_random_sample_is_seeded(panel, store):
    panel.set_sweep(C="0.01, 0.1, 1, 10", max_iter="50, 100")
    panel.sampling.value, panel.n_runs.value, panel.sweep_seed.value = "random", 3, 5
    panel.train_button.click()
    space = {"model.C": [0.01, 0.1, 1.0, 10.0], "model.max_iter": [50, 100]}
    expected = expand(space, mode="random", n=3, seed=5)
    assert [t.params for t in panel.job.sweep.trials] == expected
    assert len(active_runs(store)) == 3
    assert "random sample (seed 5)" in panel.leaderboard.report.summary_line()


def test_a_failing_run_is_shown_and_the_sweep_goes_on(panel, store):
    panel.set_sweep(C="-1, 1")
    panel.train_button.click()
    trials = panel.job.sweep.trials
    assert [t.status for t in trials] == ["failed", "finished"]
    assert "fit refused" in trials[0].error
    assert [r.info.status for r in active_runs(store)] == ["FINISHED"]  # the bad run discarded
    report = panel.leaderboard.report
    assert report.view_status() == "warning" and "run 1 failed" in report.text()


def test_bad_sweep_text_runs_nothing(panel, store):
    panel.set_sweep(max_iter="ten")
    panel.train_button.click()
    assert panel.message == "max_iter: 'ten' is not an integer" and not active_runs(store)
    panel.model_form.set_sweep(max_iter="")
    panel.train_button.click()
    assert "at least one parameter" in panel.message and not active_runs(store)


def test_stop_during_a_torch_sweep_ends_it_after_the_current_batch(ip, digits, store):
    pytest.importorskip("torch")
    X, y = digits
    ip.user_ns.update(net=mlp(), Xd=X[:1200], yd=y[:1200], Xdv=X[1200:], ydv=y[1200:])
    panel = ExperimentPanel(ip, widget=True, background=True)
    panel.model_choice.value, panel.X_choice.value = "net", "Xd"
    panel.X_val_choice.value, panel.y_val_choice.value = "Xdv", "ydv"
    panel.set(epochs=10, batch_size=32)
    panel.set_sweep(lr="0.01, 0.003, 0.001, 0.0003")
    panel.train_button.click()
    trials = lambda: panel.job.sweep.trials  # noqa: E731
    end = time.monotonic() + 120
    while not (trials()[0].status == "finished" and trials()[1].status == "running"):
        assert time.monotonic() < end and panel.running
        time.sleep(0.005)
    panel.set(epochs=10)  # the panel stays usable while the sweep runs
    panel.stop_button.click()
    assert panel.wait(timeout=120)
    assert [t.status for t in trials()] == ["finished", "interrupted", "skipped", "skipped"]
    runs = active_runs(store)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]  # none RUNNING
    assert json.loads(runs[0].data.tags["aimodel.panel.params"])["train.lr"] in (0.01, 0.003)
    assert panel.job.sweep.stopped and "stopped" in panel.leaderboard.report.summary_line()
    assert panel.leaderboard.report.view_status() == "warning"
