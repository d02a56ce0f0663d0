"""Every mistake is a one-line ``UsageError`` and leaves no run, no version, an untouched model."""

from __future__ import annotations

import copy
import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import (
    PYTHON,
    all_runs,
    clone_state,
    mlp,
    registered_names,
    same_state,
    subprocess_env,
    weights_equal,
)
from IPython.core.error import UsageError

from aimodel_kernel.engine.core.errors import MissingDependency, require
from aimodel_kernel.engine.store.tracking import get_store


@pytest.fixture
def shell(ip, digits):
    """The shell with bad data of every kind beside the good data."""
    X, y = ip.user_ns["X"], ip.user_ns["y"]
    Xd, yd = digits
    with_nan, with_inf = X.copy(), X.copy()
    with_nan[10, 3] = np.nan
    with_inf[4, 0] = np.inf
    ip.user_ns.update(
        Xnan=with_nan, Xinf=with_inf, ynan=np.where(np.arange(len(y)) == 5, np.nan, y * 1.0),
        yone=np.zeros(len(y), dtype=int), text="not a model",
        frame=pd.DataFrame({"a": Xd[:, 0], "b": np.where(yd > 4, "hi", "lo")}),
        Xd=Xd, yd=yd,
    )
    try:
        import torch  # noqa: F401
    except ImportError:
        return ip
    ip.user_ns.update(net=mlp(), net3=mlp(n_out=3))
    return ip


CASES = [
    ("clf nope y", r"X 'nope' is not defined"),
    ("clf X nope", r"y 'nope' is not defined"),
    ("text X y", r"str is not a model"),
    ("clf X y[:-1]", r"X has 569 rows but y\[:-1\] has 568"),
    ("clf Xnan y", r"Xnan has 1 NaN or infinite values"),
    ("clf Xinf y", r"Xinf has 1 NaN or infinite values"),
    ("clf X ynan", r"ynan has 1 NaN or infinite values \(first at row 5\)"),
    ("clf X yone", r"y has a single class \(0\)"),
    ("clf X y --val 1.5", r"--val must be a fraction in \[0, 1\); got 1.5"),
    ("clf X y --seed -1", r"--seed must be in"),
    ("clf X y --bogus 3", r"unrecognized arguments: --bogus 3; see %train\? for the flags"),
    ("clf X y --task ranking", r"invalid choice: 'ranking'"),
    ("clf X y --epochs 3", r"--epochs applies to PyTorch models; LogisticRegression is a"),
    ("clf X y --resume", r"--resume applies to PyTorch models"),
    ("clf X y --name bad/name", r"invalid model name 'bad/name'"),
    ("clf X y --name 'has space'", r"invalid model name"),
    ("clf X y --class-weight balanced --val-data X y --val 0.2", r"either --val"),
    ("clf 'X[:, :' y", r"not a valid Python expression"),
    ("net Xd yd --epochs 0", r"--epochs must be a positive integer; got 0"),
    ("net Xd yd --lr -1", r"--lr must be > 0; got -1.0"),
    ("net Xd yd --batch-size 0", r"--batch-size must be a positive integer"),
    ("net Xd yd --early-stop 2", r"--early-stop watches a validation metric"),
    ("net frame yd", r"frame has non-numeric columns \('b'\)"),
    ("net3 Xd yd", r"outputs 3 values per row but y has 10 classes"),
    ("net X y", r"cannot take X of shape \(30,\) per row"),
    ("net Xd yd --resume", r"no interrupted Sequential run on this data"),
    ("net Xd yd --resume 0123456789abcdef0123456789abcdef", r"no run '0123456789abcdef"),
    ("net Xd yd --loss bce", r"--loss bce needs a binary target"),
]


@pytest.mark.parametrize(("line", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(shell, line, match):
    if line.startswith("net") and "net" not in shell.user_ns:
        pytest.skip("torch is not installed")
    model_name = line.split()[0]
    model = shell.user_ns.get(model_name)
    before = clone_state(model) if hasattr(model, "state_dict") else copy.deepcopy(
        getattr(model, "__dict__", None))
    with pytest.raises(UsageError, match=match) as caught:
        shell.run_line_magic("train", line)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    if hasattr(model, "state_dict"):
        assert weights_equal(before, clone_state(model))
    elif before is not None:
        assert same_state(before, model.__dict__)
        assert not hasattr(model, "classes_")
    store = get_store()
    assert not [r for r in all_runs(store) if r.info.status == "RUNNING"]
    assert not [r for r in all_runs(store) if r.info.lifecycle_stage == "active"]
    assert registered_names(store) == []


def test_refused_fit_leaves_a_deleted_failed_run(shell):
    from sklearn.ensemble import RandomForestClassifier

    shell.user_ns["bad"] = RandomForestClassifier(n_estimators=0)  # refused only by fit
    before = copy.deepcopy(shell.user_ns["bad"].__dict__)
    with pytest.raises(UsageError, match=r"RandomForestClassifier\.fit refused the data"):
        shell.run_line_magic("train", "bad X y --name never --seed 4")
    assert same_state(before, shell.user_ns["bad"].__dict__)
    runs = all_runs(get_store())
    assert [(r.info.status, r.info.lifecycle_stage) for r in runs] == [("FAILED", "deleted")]
    assert registered_names(get_store()) == []


def test_evaluate_refuses_an_unfitted_model(shell):
    before = copy.deepcopy(shell.user_ns["clf"].__dict__)
    with pytest.raises(UsageError, match="not fitted") as caught:
        shell.run_line_magic("evaluate", "clf X y")
    assert "\n" not in str(caught.value)
    assert same_state(before, shell.user_ns["clf"].__dict__)


def test_versions_of_unknown_or_invalid_names(shell):
    with pytest.raises(UsageError, match="no registered model 'ghost'"):
        shell.run_line_magic("versions", "ghost")
    with pytest.raises(UsageError, match="invalid model name"):
        shell.run_line_magic("versions", "no/such")


def test_missing_dependency_names_the_extra():
    with pytest.raises(MissingDependency) as caught:
        require("a_module_that_does_not_exist", extra="torch", purpose="PyTorch models")
    message = str(caught.value)
    assert "pip install 'aimodel-kernel[torch]'" in message
    assert message.startswith("a_module_that_does_not_exist is needed for PyTorch models")
    assert isinstance(caught.value, ImportError)
    with pytest.raises(MissingDependency, match="run: pip install other-dist"):
        require("a_module_that_does_not_exist", package="other-dist")


def test_without_torch_sklearn_training_still_works(tmp_path, template_db):
    (tmp_path / ".aimodel").mkdir()
    (tmp_path / ".aimodel" / "mlflow.db").write_bytes(template_db.read_bytes())
    script = textwrap.dedent("""
        import json, sys
        from importlib.abc import MetaPathFinder

        class NoTorch(MetaPathFinder):  # as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoTorch())

        from IPython.core.interactiveshell import InteractiveShell
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression

        from aimodel_kernel.engine.core.data import check_data, fingerprint
        from aimodel_kernel.engine.core.errors import MissingDependency, require
        from aimodel_kernel.engine.store.serialize import framework_of

        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "aimodel_kernel")
        X, y = load_breast_cancer(return_X_y=True)
        clf = LogisticRegression(solver="liblinear")
        ip.user_ns.update(X=X, y=y, clf=clf)
        r = ip.run_line_magic("train", "clf X y --name no-torch --val 0.2")
        v = ip.run_line_magic("versions", "no-torch")
        try:
            require("torch", extra="torch")
            message = ""
        except MissingDependency as exc:
            message = str(exc)
        print(json.dumps({
            "status": r.status, "ref": r.ref, "fitted": hasattr(clf, "classes_"),
            "versions": len(v.versions), "framework": framework_of(clf),
            "kind": check_data(X, y).kind, "sha": len(fingerprint(check_data(X, y))["sha256"]),
            "torch": "torch" in sys.modules, "message": message,
        }))
    """)
    done = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(AIMODEL_HOME=str(tmp_path / ".aimodel")),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "status": "finished", "ref": "no-torch/1", "fitted": True, "versions": 1,
        "framework": "sklearn", "kind": "array", "sha": 64, "torch": False,
        "message": "torch is needed but is not installed; run: pip install 'aimodel-kernel[torch]'",
    }
