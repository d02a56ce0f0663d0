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
    ("net X y", r"cannot take X of shape \(30,\) per row|X \(rows of shape \(30,\)\) does not fit"),
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


# -- issue 13: every bad input, every magic ------------------------------------------------------
# One test per root cause the fuzz run found (tests/magics/test_fuzz.py generates the rest).
# Each refused call must be a one-line UsageError that changes nothing (Snapshot: the notebook's
# objects, the store's runs, metrics, artifacts and versions).
AIMODEL_MAGICS = ("train", "evaluate", "versions", "workers", "explain", "fairness", "compress",
                  "diff", "reproduce", "promote", "aimodel", "experiment")


@pytest.fixture
def nb(ip):
    """A notebook of tiny data (tests/magics/test_fuzz.py's) with untrained models."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from test_fuzz import mlp as tiny_mlp
    from test_fuzz import notebook_data, torch_data

    ns = notebook_data()
    torch_data(ns)
    ns.update(
        clf=LogisticRegression(solver="liblinear"), fclf=LogisticRegression(solver="liblinear"),
        net=tiny_mlp(), lr=LogisticRegression(solver="liblinear"), fresh=tiny_mlp(seed=4),
        pipe=make_pipeline(make_column_transformer((OneHotEncoder(), ["sex"]),
                                                   remainder="passthrough"),
                           LogisticRegression(solver="liblinear")),
        dropper=make_pipeline(make_column_transformer(("drop", ["a"]), remainder="passthrough"),
                              LogisticRegression(solver="liblinear")),
        hgb=HistGradientBoostingClassifier(max_iter=3).fit(ns["X"], ns["y"]),
        hgb_new=HistGradientBoostingClassifier(max_iter=3))
    ns["Fs_new"] = ns["Fs"].assign(sex=np.where(np.arange(len(ns["y"])) % 3, "m", "x"))
    ip.user_ns.update(ns)
    return ip


def _trained(ip, *lines):
    for line in lines:
        ip.run_line_magic("train", f"{line} --seed 0 --quiet")
    return ip


def refused(ip, magic, line, match):
    """``%magic line`` is a one-line UsageError matching ``match`` that changes nothing."""
    from test_fuzz import Snapshot

    before = Snapshot(ip, get_store())
    with pytest.raises(UsageError, match=match) as caught:
        ip.run_line_magic(magic, line)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    running, other = before.store_changes()
    assert not running and not other, (line, running, other)
    assert not before.changed(), (line, before.changed())
    return message


def test_an_unclosed_quote_is_a_usage_error_in_every_magic(nb):
    registered = {name for name, fn in nb.magics_manager.magics["line"].items()
                  if type(getattr(fn, "__self__", None)).__module__.startswith("aimodel_kernel.")}
    assert registered == set(AIMODEL_MAGICS)
    for magic in AIMODEL_MAGICS:
        refused(nb, magic, "clf 'X y", rf"No closing quotation \(close every quote.*%{magic}\?")
        refused(nb, magic, 'clf X "y', "No closing quotation")
    refused(nb, "train", "clf X y \\", r"unrecognized arguments: \\; see %train\? for")


def test_datetime_features_and_targets(nb):
    _trained(nb, "clf X y --name c")
    refused(nb, "train", "lr X ydt", r"ydt holds datetime64\[ns\] values; a target must be")
    refused(nb, "evaluate", "clf X ydt", r"ydt holds datetime64\[ns\] values")
    refused(nb, "evaluate", "clf Xdt y", r"non-numeric columns \('a' \(datetime64\[ns\]\)\); "
                                         "clf takes numbers")
    refused(nb, "explain", "clf Xdt", "non-numeric columns")
    refused(nb, "fairness", "clf Xdt y --sensitive s", r"Xdt has non-numeric columns \('a'")
    # a pipeline that drops the datetime column trains: its data fingerprint hashes datetimes
    r = nb.run_line_magic("train", "dropper Xdt y --name dates --quiet")
    assert r.ref == "dates/1" and r.fingerprint["dtypes"]["a"] == "datetime64[ns]"
    assert nb.run_line_magic("evaluate", "dropper Xdt y --no-log").metrics["accuracy"] > 0.5


def test_no_feature_columns_and_duplicate_or_mixed_column_names(nb):
    _trained(nb, "clf X y --name c")
    for magic, line in (("train", "lr X0 y"), ("train", "lr F0 y"), ("evaluate", "clf X0 y")):
        refused(nb, magic, line, r"has no features \(shape \(60, 0\)\); pass at least one column")
    for magic, line in (("train", "lr Fdup y"), ("evaluate", "clf Fdup y"),
                        ("explain", "clf Fdup"), ("diff", "c/1 c/1 --data Fdup y")):
        refused(nb, magic, line, r"duplicate column names \('a'\); give every column its own")
    refused(nb, "train", "lr Fmixed y", r"column names of mixed types \(int, str\); make them "
                                        r"all strings: Fmixed.columns = Fmixed.columns.astype")


def test_sparse_matrices_of_any_format(nb):
    _trained(nb, "clf X y --name c")
    assert nb.run_line_magic("explain", "clf coo --no-log").values.shape == (60, 5)  # COO
    assert nb.run_line_magic("evaluate", "clf lil y --no-log").n_samples == 60  # LIL
    refused(nb, "train", "fresh coo y", r"coo is a sparse matrix; a PyTorch model takes dense "
                                        r"rows: pass coo.toarray\(\)")
    refused(nb, "evaluate", "hgb csr y", r"hgb takes dense rows, not a sparse matrix: pass "
                                         r"csr.toarray\(\)")
    refused(nb, "evaluate", "net Tsp y", r"a sparse tensor cannot be used as it is; pass "
                                         r"X.to_dense\(\)")


def test_lists_object_targets_and_bfloat16_for_pytorch(nb):
    r = nb.run_line_magic("train", "net Xl yl --epochs 2 --quiet --name listed")
    assert r.ref == "listed/1"
    assert nb.run_line_magic("evaluate", "net X yobj --no-log").metrics["accuracy"] >= 0
    assert nb.run_line_magic("evaluate", "net Tbf y --no-log").n_samples == 60
    assert nb.run_line_magic("evaluate", "net Xb y --no-log").n_samples == 60  # as %train feeds
    refused(nb, "evaluate", "net X ymixed", r"ymixed mixes value types \(int, str\); make its "
                                            r"values one type, e.g. ymixed.astype\(str\)")
    refused(nb, "train", "fresh ragged y", "ragged is a ragged list")


def test_a_pytorch_model_of_another_width_or_dtype(nb):
    _trained(nb, "net X y --name n --epochs 2")
    shape = r"\(rows of shape \(3,\)\) does not fit net: RuntimeError: mat1 and mat2 shapes"
    refused(nb, "evaluate", "net X3 y", "X3 " + shape)
    refused(nb, "explain", "net X3", "X3 " + shape)
    refused(nb, "fairness", "net X3 y --sensitive s", "X3 " + shape)
    refused(nb, "compress", "net --check X3 y --onnx", "X3 " + shape)
    ints = r"must have the same dtype.*; X holds int64 values: pass floats"
    refused(nb, "evaluate", "net Xi y", ints.replace("X holds", "Xi holds"))
    refused(nb, "explain", "net Xi", ints.replace("X holds", "Xi holds"))
    refused(nb, "compress", "net --check Ti y", ints.replace("X holds", "Ti holds"))
    refused(nb, "diff", "n/1 n/1 --data Xi y", "n/1 cannot predict on X: X .*" + ints)


def test_columns_other_than_the_training_columns(nb):
    _trained(nb, "fclf F y --name fc")
    for x, detail in (("Fmiss", r"\(missing \['e'\] \(1\)\)"),
                      ("Fextra", r"\(not trained on \['z'\] \(1\)\)"),
                      ("Fren", r"\(missing \['a'\] \(1\), not trained on \['A'\] \(1\)\)"),
                      ("'F[[\"b\", \"a\", \"c\", \"d\", \"e\"]]'",
                       r"\(the same columns in a different order\)")):
        expected = rf"has columns .* but fclf was trained on .* {detail}; pass the columns"
        refused(nb, "evaluate", f"fclf {x} y", expected)
        refused(nb, "explain", f"fclf {x}", expected)
        refused(nb, "fairness", f"fclf {x} y --sensitive s", expected)
        refused(nb, "compress", f"fclf --check {x} y --onnx", expected)
        refused(nb, "diff", f"fc/1 fc/1 --data {x} y", "trained on")
    refused(nb, "evaluate", "fclf X3 y", "X3 has 3 columns but fclf was trained on 5 features")


def test_scikit_learns_own_refusals_are_one_line_errors(nb):
    _trained(nb, "pipe Fs y --name p")
    unknown = r"pipe cannot take (X|Fs_new): Found unknown categories \['x'\] in column 0"
    refused(nb, "evaluate", "pipe Fs_new y", unknown)
    refused(nb, "fairness", "pipe Fs_new y --sensitive s", unknown)
    refused(nb, "diff", "p/1 p/1 --data Fs_new y",
            r"p/1 cannot take X: Found unknown categories \['x'\]")
    refused(nb, "explain", "pipe Fs_new", r"the pipeline's earlier steps cannot transform these "
                                          r"rows: Found unknown categories")


def test_seeds_counts_threads_and_paths_out_of_range(nb):
    _trained(nb, "clf X y --name c")
    for magic, line in (("evaluate", "clf X y --ci --seed -1"), ("explain", "clf X --seed -1"),
                        ("fairness", "clf X y --sensitive s --ci --seed -1"),
                        ("evaluate", "clf X y --seed 4294967296")):
        refused(nb, magic, line, r"--seed must be in \[0, 2\*\*32\); got")
    refused(nb, "evaluate", "clf X y --ci --n-boot 0", "--n-boot must be a whole number of at")
    refused(nb, "compress", "clf --check X y --onnx --threads 100000",
            r"--threads 100000 is more than the \d+ cores this kernel may use")
    refused(nb, "compress", "clf --check X y --onnx --out /proc/nope/model.onnx",
            r"--out /proc/nope/model.onnx: /proc is not a writable folder|cannot write")
    refused(nb, "compress", "clf --check X y --onnx --calibrate X3",
            r"the calibration rows have shape \(3,\)")


def test_too_many_threads_no_longer_crash_the_kernel(tmp_path, template_db):
    """``--threads 100000`` used to end the process with SIGSEGV inside libgomp (torch's OpenMP
    pool); in a child process, so a regression cannot take pytest down with it."""
    (tmp_path / ".aimodel").mkdir()
    (tmp_path / ".aimodel" / "mlflow.db").write_bytes(template_db.read_bytes())
    script = textwrap.dedent("""
        import json
        from IPython.core.error import UsageError
        from IPython.core.interactiveshell import InteractiveShell
        from sklearn.datasets import load_breast_cancer
        import torch

        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "aimodel_kernel")
        X, y = load_breast_cancer(return_X_y=True)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(30, 2))
        ip.user_ns.update(X=X.astype("float32"), y=y, net=net)
        try:
            ip.run_line_magic("compress", "net --check X y --onnx --threads 100000")
            message = None
        except UsageError as exc:
            message = str(exc)
        print(json.dumps({"message": message, "threads": torch.get_num_threads()}))
    """)
    done = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(AIMODEL_HOME=str(tmp_path / ".aimodel")),
                          timeout=180)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["message"].startswith("--threads 100000 is more than the ")
    assert out["threads"] < 100000


def test_usage_errors_are_one_line_whatever_the_engine_says():
    from aimodel_kernel.engine.core.errors import InputError
    from aimodel_kernel.magics.resolve import usage_errors

    @usage_errors
    def magic():
        raise InputError("X cannot be used: Expected unique column names, got:\n- 'a' 2 times\n")

    with pytest.raises(UsageError) as caught:
        magic()
    assert str(caught.value) == "X cannot be used: Expected unique column names, got: - 'a' 2 times"


# Inputs whose fix lives outside the magics' input checks (%train's estimator check in
# training/entry.py, the lock writer).
ELSEWHERE = [
    ("train", "lr Xdt y", r"Xdt has non-numeric columns \('a' \(datetime64"),
    ("train", "hgb_new csr y", r"takes dense rows, not a sparse matrix: pass csr"),
    ("aimodel", "freeze /proc/nope/lock.json", r"/proc/nope"),
]


@pytest.mark.parametrize(("magic", "line", "match"), ELSEWHERE)
def test_inputs_checked_by_train_and_the_lock_writer(nb, magic, line, match):
    refused(nb, magic, line, match)
