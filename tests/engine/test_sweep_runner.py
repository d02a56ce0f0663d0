"""Sweep values, combinations and the sequential runner with its stop flag (no widgets)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.events import StopFlag
from aimodel_kernel.engine.training.sweep import (
    MAX_GRID,
    expand,
    new_sweep,
    parse_values,
    run_sweep,
    split_params,
)
from aimodel_kernel.engine.training.trial import copy_model, params_applied


@pytest.mark.parametrize(("text", "kind", "values"), [
    ("0.01, 0.1, 1", "float", [0.01, 0.1, 1.0]),
    ("1:10:3", "int", [1, 4, 7, 10]),
    ("1:9:3", "int", [1, 4, 7]),
    ("1:5", "any", [1, 2, 3, 4, 5]),
    ("0.1:0.5:0.1", "float", [0.1, 0.2, 0.3, 0.4, 0.5]),
    ("1e-4:1e-1:*10", "float", [0.0001, 0.001, 0.01, 0.1]),
    ("None, 3, 5", "int", [None, 3, 5]),
    ("lbfgs, 'liblinear'", "str", ["lbfgs", "liblinear"]),
    ("a:b, c", "str", ["a:b", "c"]),
    ("true, no", "bool", [True, False]),
    ("1, 1, 2", "int", [1, 2]),
    ("2e2", "int", [200]),
])
def test_values_from_text(text, kind, values):
    assert parse_values(text, kind) == values
    assert [type(v) for v in parse_values(text, kind)] == [type(v) for v in values]


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("", "float", "no values"),
    ("1:", "int", "not a range"),
    ("5:1", "int", "never reaches"),
    ("1:10:0", "int", "never reaches"),
    ("0.5, x", "float", "'x' is not a number"),
    ("1.5", "int", "not an integer"),
    ("0.5:2", "float", "give a step"),
    ("1:100000", "int", "at most"),
    ("0:1:*10", "float", "geometric"),
])
def test_bad_values_name_the_problem(text, kind, message):
    with pytest.raises(InputError, match=message):
        parse_values(text, kind, label="C")


def test_grid_and_seeded_random_sample():
    space = {"model.C": [0.1, 1, 10], "train.seed": [0, 1]}
    grid = expand(space)
    assert len(grid) == 6 and grid[0] == {"model.C": 0.1, "train.seed": 0}
    assert grid[1] == {"model.C": 0.1, "train.seed": 1}  # the last key changes fastest
    assert len({tuple(c.values()) for c in grid}) == 6
    sample = expand(space, mode="random", n=4, seed=7)
    assert len(sample) == 4 and all(c in grid for c in sample)
    assert len({tuple(c.values()) for c in sample}) == 4  # no repeats
    assert expand(space, mode="random", n=4, seed=7) == sample  # reproducible from the seed
    assert expand(space, mode="random", n=4, seed=8) != sample
    assert expand(space, mode="random", n=50, seed=0) == grid  # more than the grid: all of it


def test_huge_grids_are_sampled_without_building_them():
    space = {f"model.p{i}": list(range(10)) for i in range(6)}  # a million combinations
    with pytest.raises(InputError, match="random sample"):
        expand(space)
    sample = expand(space, mode="random", n=5, seed=0)
    assert len(sample) == 5 and MAX_GRID < 10**6
    with pytest.raises(InputError, match="at least 1"):
        expand(space, mode="random", n=0)


def test_split_params_by_prefix():
    assert split_params({"model.C": 1, "train.lr": 0.1}) == ({"C": 1}, {"lr": 0.1})
    with pytest.raises(InputError, match=r"model\. or train\."):
        split_params({"C": 1})


def _outcome(status="finished", ref=None, **metrics):
    return SimpleNamespace(status=status, run_id="r", ref=ref, metrics=metrics)


def test_runner_stops_between_runs_and_ranks_finished_runs():
    sweep = new_sweep(expand({"model.C": [1, 2, 3, 4]}), space={"model.C": [1, 2, 3, 4]},
                      name="m", mode="grid", seed=0)
    stop, seen = StopFlag(), []

    def train_one(trial):
        if trial.index == 2:
            stop.set("stopped")  # e.g. the Stop button pressed during run 2
        return _outcome(ref=f"m/{trial.index}", val_accuracy=trial.params["model.C"] / 10)

    run_sweep(sweep, train_one, stop=stop, on_trial=lambda t: seen.append((t.index, t.status)))
    assert [t.status for t in sweep.trials] == ["finished", "finished", "skipped", "skipped"]
    assert seen == [(1, "running"), (1, "finished"), (2, "running"), (2, "finished")]
    assert sweep.stopped and sweep.ranking() == ("val_accuracy", True)
    assert [t.index for t in sweep.ranked()] == [2, 1, 3, 4] and sweep.best().index == 2
    assert sweep.to_dict()["best"] == 2


def test_a_user_error_fails_one_run_a_bug_ends_the_sweep():
    space = {"model.C": [-1, 1, 2]}
    sweep = new_sweep(expand(space), space=space, name=None, mode="grid", seed=0)

    def train_one(trial):
        if trial.params["model.C"] < 0:
            raise InputError("C must be > 0")
        return _outcome(val_loss=1.0 / trial.params["model.C"])

    run_sweep(sweep, train_one, stop=StopFlag())
    assert [t.status for t in sweep.trials] == ["failed", "finished", "finished"]
    assert sweep.trials[0].error == "C must be > 0" and not sweep.stopped
    assert sweep.ranking() == ("val_loss", False) and sweep.best().params == {"model.C": 2}

    buggy = new_sweep(expand(space), space=space, name=None, mode="grid", seed=0)
    run_sweep(buggy, lambda trial: 1 / 0, stop=StopFlag())
    assert [t.status for t in buggy.trials] == ["failed", "skipped", "skipped"]
    assert "ZeroDivisionError" in buggy.notes[0]


def test_an_interrupted_run_stops_the_sweep():
    space = {"train.lr": [0.1, 0.01, 0.001]}
    sweep = new_sweep(expand(space), space=space, name=None, mode="grid", seed=0)
    run_sweep(sweep, lambda t: _outcome("interrupted"), stop=StopFlag())
    assert [t.status for t in sweep.trials] == ["interrupted", "skipped", "skipped"]


def test_copies_and_params_applied_leave_the_original_alone():
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, solver="liblinear")
    fresh = copy_model(clf, {"C": 0.5}, "sklearn")
    assert fresh is not clf and fresh.C == 0.5 and clf.C == 1.0
    with params_applied(clf, {"C": 0.25, "max_iter": 100}) as changed:
        assert changed == {"C": 0.25} and clf.C == 0.25  # max_iter was already 100
    assert clf.C == 0.25  # kept: the training it wrapped succeeded
    with pytest.raises(RuntimeError), params_applied(clf, {"C": 4.0}):
        raise RuntimeError("training failed")
    assert clf.C == 0.25  # put back
    with pytest.raises(InputError, match="no parameter 'gamma'"), params_applied(clf, {"gamma": 1}):
        pass
