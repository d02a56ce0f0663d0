"""Property-based fuzzing of every magic: random models, data, flags and broken lines.

Each generated call must end in success or in a one-line ``UsageError``: no other exception,
no crash of the process, and a failed call changes nothing (no run left RUNNING, no new run or
version, no metric logged, every object of the notebook as it was).

The cases run in a child process (this file run as a script, one process for all of them) so
that a native crash (a signal) fails the test with the last input instead of killing pytest.
Hypothesis is derandomized (``derandomize=True``: the same cases on every run, in CI too) and
does not shrink (a failing case is printed as it was generated, and the run stays bounded).
The data are tiny (60 rows × 5 features) so the whole fuzz takes a few minutes on 2 cores.

Left out on purpose, because they cost seconds to minutes per call on any input: the
permutation and kernel SHAP explainers (``--method permutation|kernel``, numba compilation and
thousands of model calls per row), ``%train --devices 2..`` (a worker pool) and ``--nodes`` with
a rendezvous address (it waits for the other nodes). Their flags still appear with values that
are refused. Left out until fixed elsewhere (tests/magics/test_bad_input.py, PENDING, holds them
as strict xfails): ``%aimodel freeze`` to an unwritable path.
"""

from __future__ import annotations

import copy
import faulthandler
import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve()
TESTS = HERE.parents[1]
if str(TESTS) not in sys.path:  # run as a script: the conftest helpers
    sys.path.insert(0, str(TESTS))

from conftest import PYTHON, same_state, subprocess_env  # noqa: E402

#: generated calls per magic (hypothesis examples); the test requires at least MIN_CASES in all
EXAMPLES = {
    "train": 80, "evaluate": 90, "explain": 55, "fairness": 60, "compress": 22, "diff": 60,
    "reproduce": 10, "promote": 30, "versions": 30, "aimodel": 30, "workers": 20,
    "experiment": 30,
}
MIN_CASES = 500
TIMEOUT_S = 480  # the whole child (about 150 s on 2 shared cores)
CALL_LIMIT_S = 90  # one call: a hang ends the child with every thread's stack (faulthandler)


# -- the parent: one pytest test ------------------------------------------------------------------
@pytest.mark.slow
def test_every_magic_survives_random_input(tmp_path, template_db):
    work, log, summary = tmp_path / "work", tmp_path / "cases.log", tmp_path / "summary.json"
    work.mkdir()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [PYTHON, str(HERE), str(work), str(template_db), str(log), str(summary)],
            cwd=work, env=subprocess_env(AIMODEL_HOME=str(work / ".aimodel")),
            capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        cases = log.read_text().splitlines() if log.exists() else []
        raise AssertionError(f"the fuzz did not end in {TIMEOUT_S} s; last case: "
                             f"{cases[-1] if cases else None}\n{exc.stderr!r:.4000}") from None
    seconds = time.perf_counter() - started
    cases = log.read_text().splitlines() if log.exists() else []
    last = cases[-1] if cases else "(no case started)"
    tail = f"\n--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    if "Timeout (0:" in done.stderr:  # faulthandler's watchdog: one call hung
        raise AssertionError(f"a call did not end in {CALL_LIMIT_S} s: {last}{tail}")
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise AssertionError(f"the fuzz process died of {name} during: {last}{tail}")
    assert done.returncode == 0, f"case {len(cases)}: {last}{tail}"
    result = json.loads(summary.read_text())
    counts = result["counts"]
    assert set(counts) == set(result["registered"]) == set(EXAMPLES), result
    generated = sum(c["calls"] for c in counts.values()) - sum(map(len, EXPLICIT.values()))
    assert generated >= MIN_CASES, counts
    for magic, c in counts.items():
        assert c["usage"] > 0, f"%{magic}: no generated call was refused: {c}"
        assert c["ok"] > 0, f"%{magic}: no generated call succeeded: {c}"
    print(f"{len(cases)} calls in {seconds:.0f} s: {counts}")


# -- the child: the notebook, its objects and the strategies ------------------------------------
N = 60


def notebook_data() -> dict[str, Any]:
    """Good and bad features and targets, named as in a notebook."""
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.datasets import load_breast_cancer

    Xall, yall = load_breast_cancer(return_X_y=True)
    rows = np.r_[np.flatnonzero(yall == 0)[: N // 2], np.flatnonzero(yall == 1)[: N // 2]]
    X = Xall[rows][:, :5]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = yall[rows]
    cols = ["a", "b", "c", "d", "e"]
    F = pd.DataFrame(X, columns=cols)
    sex = np.where(np.arange(N) % 2, "m", "f")
    dates = pd.date_range("2020-01-01", periods=N)
    ragged = [[1.0, 2.0], [3.0]] * (N // 2)
    return {
        "X": X, "y": y, "F": F, "yr": X[:, 0] * 2.0 + 0.1 * np.arange(N) / N,
        "Fs": F.assign(sex=sex), "s": sex, "s_short": sex[:10], "s_one": np.full(N, "f"),
        "Xdt": F.assign(a=dates), "ydt": dates.to_numpy(), "X0": np.empty((N, 0)),
        "F0": pd.DataFrame(index=range(N)), "coo": sp.coo_matrix(X), "csr": sp.csr_matrix(X),
        "lil": sp.lil_matrix(X), "Xl": X.tolist(), "X3": X[:, :3], "X7": np.hstack([X, X[:, :2]]),
        "Xi": (X * 10).astype(np.int64), "Xb": X > 0, "Xc": X.astype(np.complex64),
        "Xf16": X.astype(np.float16), "Xbe": X.astype(">f4"), "Fmiss": F.drop(columns=["e"]),
        "Fextra": F.assign(z=1.0),
        "Fren": F.rename(columns={"a": "A"}), "Fdup": pd.DataFrame(X, columns=list("aacde")),
        "Fmixed": pd.DataFrame(X, columns=[0, "b", "c", "d", "e"]), "Fobj": F.astype(object),
        "Fcat": F.assign(e=pd.Categorical(sex)), "Fint": F.round().astype({"a": "Int64"}),
        "Xnan": np.where(X > 1.5, np.nan, X), "Xinf": np.where(X > 1.5, np.inf, X),
        "Xhuge": X * 1e300, "X1d": X[:, 0], "X3d": X.reshape(N, 5, 1), "Xstr": X.astype(str),
        "Xobj": np.array([["u"] * 5] * N, dtype=object), "empty": np.empty((0, 5)),
        "ragged": ragged, "scalar": 5, "text": "not data", "none_": None, "d": {"a": 1},
        "yb": y.astype(bool), "yobj": y.astype(object), "ystr": np.where(y == 1, "p", "n"),
        "ymixed": np.array([0, "a"] * (N // 2), dtype=object), "yl": y.tolist(),
        "ynan": np.where(np.arange(N) == 3, np.nan, y * 1.0), "yinf": np.where(
            np.arange(N) == 4, np.inf, y * 1.0), "yone": np.zeros(N, int), "yshort": y[:-1],
        "y2d": np.c_[y, y], "y3": np.arange(N) % 3, "ycat": pd.Series(pd.Categorical(
            np.where(y == 1, "p", "n"))), "yna": pd.array([*y[:-1], None], dtype="Int64"),
    }


def torch_data(ns: dict[str, Any]) -> None:
    """Tensors, a Dataset and a DataLoader of the same rows."""
    import torch

    T = torch.from_numpy(ns["X"].astype(np.float32))
    Ty = torch.from_numpy(ns["y"])
    ds = torch.utils.data.TensorDataset(T, Ty)
    ns.update(T=T, Ty=Ty, Ti=T.long(), Tbf=T.bfloat16(), Tsp=T.to_sparse(), T3=T[:, :3],
              ds=ds, loader=torch.utils.data.DataLoader(ds, batch_size=16),
              xds=torch.utils.data.TensorDataset(T))


def mlp(n_in: int = 5, n_out: int = 2, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, n_out))


def fresh_models() -> dict[str, Any]:
    """Untrained models for ``%train`` (made again before every call)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression

    return {"lr_new": LogisticRegression(solver="liblinear"), "net_new": mlp(seed=1),
            "rf_new": RandomForestClassifier(n_estimators=3, random_state=0),
            "hgb_new": HistGradientBoostingClassifier(max_iter=3), "reg_new": LinearRegression(),
            "net1_new": mlp(n_out=1, seed=2)}


def notebook(ip: Any) -> dict[str, Any]:
    """The namespace: data, trained (and registered) models, untracked and unfitted ones."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    ns = notebook_data()
    torch_data(ns)
    ns.update(
        clf=LogisticRegression(solver="liblinear"), fclf=LogisticRegression(solver="liblinear"),
        rf=RandomForestClassifier(n_estimators=5, random_state=0), reg=LinearRegression(),
        net=mlp(), pipe=make_pipeline(
            make_column_transformer((OneHotEncoder(), ["sex"]), remainder="passthrough"),
            LogisticRegression(solver="liblinear")),
        raw=LogisticRegression(solver="liblinear").fit(ns["X"], ns["y"]),
        hgb=HistGradientBoostingClassifier(max_iter=3).fit(ns["X"], ns["y"]),
        net3=mlp(n_out=3, seed=3), unfit=LogisticRegression(), **fresh_models())
    ip.user_ns.update(ns)
    for line in ("clf X y --name c --seed 0", "fclf F y --name fc --seed 0",
                 "rf X y --name t --seed 0", "reg X yr --name r --seed 0",
                 "pipe Fs y --name p --seed 0",
                 "net X y --name n --seed 0 --epochs 2 --quiet"):
        ip.run_line_magic("train", line)
    return ns


# A pool is (usual values, odd values). A line is drawn "clean" (usual values only: it should
# mostly succeed), "mixed" (any value) or "wild" (any number of positionals, and now and then
# something that does not belong in a line), so both sides of the property are exercised.
MODELS = (["clf", "fclf", "rf", "reg", "net", "pipe"],
          ["raw", "hgb", "net3", "unfit", "text", "nothing", "none_", "X", "'clf'", "clf.coef_"])
FRESH = (["lr_new", "net_new", "rf_new", "hgb_new", "reg_new", "net1_new"],
         ["clf", "unfit", "text", "nothing", "X"])
XS = (["X", "F", "T", "Xl", "'X[::1]'"],
      ["Xdt", "X0", "F0", "coo", "csr", "lil", "X3", "X7", "Xi", "Xb", "Xc", "Xf16", "Xbe", "Fmiss",
       "Fextra", "Fren", "Fdup", "Fmixed", "Fobj", "Fcat", "Fint", "Ti", "Tbf", "Tsp", "T3",
       "Xnan", "Xinf", "Xhuge", "X1d", "X3d", "Xstr", "Xobj", "empty", "ragged", "scalar",
       "text", "none_", "d", "ds", "loader", "xds", "nothing", "'X[:10]'", "\"X[:, :3]\"",
       "X[:", "'X", "X[::-1]", "'X[:40]'", "F[['a','b']]", "Fs"])
YS = (["y", "yb"],
      ["yr", "yobj", "ystr", "ymixed", "yl", "ynan", "yinf", "yone", "yshort", "y2d", "y3",
       "ycat", "yna", "ydt", "Ty", "s", "text", "nothing", "'y[:10]'", "X"])
REFS = (["c/1", "fc/1", "n/1", "t/1", "p/1", "c", "n"],
        ["r/1", "c@champion", "ghost", "ghost/1", "c/99", "c/0", "c/-1", "'c/1", "c@", "/1",
         "bad/name/x", "'has space'", "c/1.5"])
INTS = (["1", "2", "3", "5", "20"],
        ["0", "-1", "200", "100000", "99999999999999999999", "1.5", "abc", "nan", "''"])
FLOATS = (["0.01", "0.2", "0.5", "0.8"],
          ["0", "1", "1.5", "-0.1", "nan", "inf", "1e-9", "abc"])
WORDS = (["fz", "fz2", "ok-name"],
         ["c", "'has space'", "bad/name", "x" * 300, "''", "champion"])
JUNK = ["--bogus", "--bogus 3", "extra", "'", '"', "\\", "# a comment", "--", "-x", "=", "%%"]
SWITCH = ([None], [])
MODES = ["clean", "mixed", "wild"]


def _p(*usual_odd: list[str]) -> tuple[list[str], list[str]]:
    return (usual_odd[0], usual_odd[1] if len(usual_odd) > 1 else [])


#: per magic: flag -> value pool (SWITCH: a flag without a value)
FLAGS: dict[str, dict[str, tuple[list[Any], list[Any]]]] = {
    "train": {
        "--name": WORDS, "--task": _p(["auto"], ["binary", "multiclass", "regression", "x"]),
        "--seed": INTS, "--class-weight": _p(["balanced"], ["even"]), "--val": FLOATS,
        "--deterministic": SWITCH, "--epochs": INTS, "--batch-size": INTS, "--lr": FLOATS,
        "--weight-decay": FLOATS, "--optimizer": _p(["adamw", "sgd"], ["lbfgs"]),
        "--momentum": FLOATS, "--loss": _p(["auto", "cross_entropy"], ["mse", "bce", "hinge"]),
        "--device": _p(["cpu"], ["cuda", "mps", "tpu"]), "--early-stop": INTS,
        "--monitor": _p(["val_loss", "loss"], ["acc"]),
        "--resume": _p([""], ["last", "0123456789abcdef" * 2, "nope"]),
        "--no-checkpoint": SWITCH, "--checkpoint-every": FLOATS, "--no-export": SWITCH,
        "--devices": _p([], ["0", "-1", "abc", "100000"]),
        "--backend": _p([], ["gloo", "nccl", "mpi"]), "--nodes": _p([], ["0", "2", "-3"]),
        "--node-rank": INTS, "--val-data": _p(["X y", "F y"], ["X", "ds", "X3 y", "X y y"]),
        "--quiet": SWITCH, "--export-script": _p([], ["job.py", "/proc/nope/job.py", "''"]),
    },
    "evaluate": {"--task": _p(["auto"], ["binary", "multiclass", "regression", "x"]),
                 "--cv": INTS, "--ci": SWITCH, "--n-boot": INTS, "--seed": INTS,
                 "--no-log": SWITCH},
    "explain": {
        "--row": INTS, "--method": _p(["auto", "tree", "linear", "gradient"],
                                      ["lime", "both", "magic"]),
        "--class": _p(["0", "1"], ["7", "p", "''"]), "--max-rows": INTS,
        "--background": INTS, "--seed": INTS, "--top": INTS, "--no-log": SWITCH},
    "fairness": {
        "--sensitive": _p(["s", "sex"], ["s_short", "s_one", "s,sex", "nothing", "a", "X", "''",
                                         ","]),
        "--task": _p(["auto"], ["binary", "regression", "multiclass"]),
        "--mitigate": _p(["threshold"], ["reduction", "magic"]),
        "--constraint": _p(["demographic_parity"], ["equalized_odds", "nope"]),
        "--name": WORDS, "--fit-data": _p(["X y"], ["X", "X y s", "X3 y", "F y s_short"]),
        "--ci": SWITCH, "--n-boot": _p(["20", "50"], INTS[0] + INTS[1]),
        "--min-group": INTS, "--ratio-threshold": FLOATS, "--difference-threshold": FLOATS,
        "--seed": INTS, "--no-log": SWITCH},
    "compress": {
        "--prune": FLOATS, "--structured": FLOATS, "--quantize": _p(["int8"], ["int4"]),
        "--onnx": SWITCH, "--max-drop": FLOATS, "--name": WORDS,
        "--out": _p(["out.onnx", "exports"], ["/proc/nope.onnx", "/dev/null/x", "''"]),
        "--calibrate": XS, "--threads": _p(["1"], ["0", "2", "100000", "-2"]),
        "--repeats": _p(["5"], ["0", "4", "abc"]), "--no-log": SWITCH},
    "diff": {"--data": _p(["X y", "F y", "X"], ["Xl", "X3 y", "Fren", "X y y", "T y", "ds"]),
             "--no-log": SWITCH},
    "reproduce": {"--data": _p(["X y"], ["X", "X3 y", "F y"]),
                  "--model": _p(["net"], ["clf", "nothing"]), "--name": WORDS,
                  "--tolerance": FLOATS},
    "promote": {}, "versions": {}, "workers": {}, "aimodel": {},
    "experiment": {"--val-data": _p(["X y"], ["X", "X y y", "nothing"]), "--name": WORDS,
                   "--sweep": SWITCH},
}
#: calls every run makes first (hypothesis' explicit phase): the root causes of issue 13
EXPLICIT: dict[str, list[str]] = {
    "train": ["lr_new 'X y", "net_new Xl yl --epochs 1", "lr_new X0 y", "lr_new Fdup y",
              "lr_new X ydt", "lr_new X ymixed", "net_new coo y"],
    "evaluate": ["net X3 y", "net Xi y", "net X yobj", "clf coo y", "fclf Fren y", "fclf Fmiss y",
                 "fclf Fextra y", "clf Fdup y", "clf Xdt y", "clf X0 y", "net Tbf y",
                 "net Tsp y", 'clf "X y', "clf X y --seed -1 --ci", "net Xbe y"],
    "explain": ["clf coo", "net Xi", "net X3", "clf X --seed -1", "clf X1d --row '3"],
    "fairness": ["fclf Fmiss y --sensitive s", "clf X y --sensitive s --seed -1 --ci",
                 "clf Fs y --sensitive sex", "net X3 y --sensitive s"],
    "compress": ["net --check X y --threads 100000", "net --check Ti y", "net --check X3 y",
                 "clf --check X y --out /proc/nope.onnx"],
    "diff": ["n/1 n/1 --data Xi y", "c/1 c/1 --data Fdup y", "fc/1 fc/1 --data Fren y",
             "p/1 p/1 --data F y", "c/1 'c/1"],
    "reproduce": ["c/1 --data X3 y"], "promote": ["c/1 'champion"], "versions": ["'c"],
    "aimodel": ["check 'lock.json"], "workers": ["'status"], "experiment": ["clf 'X y"],
}
#: a flag the magic cannot do without, and its values' pools
REQUIRED: dict[str, tuple[Any, ...]] = {"compress": ("--check", XS, YS),
                                        "fairness": ("--sensitive", FLAGS["fairness"][
                                            "--sensitive"])}
#: per magic: the positional arguments' pools, in order
POSITIONAL: dict[str, list[tuple[list[str], list[str]]]] = {
    "train": [FRESH, XS, YS], "evaluate": [MODELS, XS, YS], "explain": [MODELS, XS],
    "fairness": [MODELS, XS, YS], "compress": [MODELS], "diff": [REFS, REFS],
    "reproduce": [REFS], "promote": [REFS, _p(["champion", "staging"], ["'bad alias'", "x" * 99])],
    "versions": [_p(["c", "n"], ["ghost", "bad/name", "''", "'c"])],
    "aimodel": [_p(["freeze", "check"], ["thaw"]),
                _p(["lock.json"], ["sub/", "missing.json", "'open"])],
    "workers": [_p(["status", "shutdown"], ["restart"])],
    "experiment": [MODELS, XS, YS],
}


def line_strategy(magic: str) -> Any:
    """A random argument line for ``magic`` (see :data:`MODES`)."""
    from hypothesis import strategies as st

    positional, flags = POSITIONAL[magic], FLAGS[magic]

    def value(draw: Any, pool: tuple[list[Any], list[Any]], mode: str) -> Any:
        usual, odd = pool
        choices = usual if (mode == "clean" and usual) or not odd else usual + odd
        return draw(st.sampled_from(choices))

    @st.composite
    def line(draw: Any) -> str:
        mode = draw(st.sampled_from(MODES))
        count = len(positional) if mode != "wild" else draw(st.integers(0, len(positional)))
        parts = [value(draw, pool, mode) for pool in positional[:count]]
        required = REQUIRED.get(magic)  # a flag the magic needs: given unless wild
        if required and (mode != "wild" or draw(st.booleans())):
            parts += [required[0], *(value(draw, pool, mode) for pool in required[1:])]
        names = sorted(f for f, pool in flags.items()
                       if (mode != "clean" or pool[0]) and f not in (required or ()))
        for flag in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names \
                else []:
            parts.append(flag)
            v = value(draw, flags[flag], mode)
            if v is not None:
                parts.append(v)
        if mode == "wild" and draw(st.booleans()):
            parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(JUNK)))
        return " ".join(p for p in parts if p != "")

    return line()


# -- what a call must leave as it was ------------------------------------------------------------
def state_of(obj: Any) -> Any:
    """A copy of what ``obj`` holds, for :func:`same_as`."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return ("module", {k: v.detach().clone() for k, v in obj.state_dict().items()},
                obj.training)
    if torch is not None and isinstance(obj, torch.Tensor):
        return ("tensor", obj.detach().clone())
    data = (torch.utils.data.DataLoader, torch.utils.data.Dataset) if torch is not None else ()
    if data and isinstance(obj, data):
        return ("torch-data", [t.clone() for t in getattr(obj, "tensors", ())] or None)
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        return ("estimator", copy.deepcopy(obj.__dict__))
    if hasattr(obj, "copy") and hasattr(obj, "shape"):  # arrays, frames, sparse matrices
        return ("copy", obj.copy())
    return ("value", copy.deepcopy(obj))


def same_as(before: Any, obj: Any) -> bool:
    """Whether ``obj`` still holds what :func:`state_of` saved."""
    kind, saved = before[0], before[1]
    if kind == "module":
        now = obj.state_dict()
        return before[2] == obj.training and saved.keys() == now.keys() and all(
            saved[k].dtype == now[k].dtype and saved[k].shape == now[k].shape
            and bool((saved[k] == now[k]).all()) for k in saved)
    if kind == "tensor":
        import torch

        if saved.layout != torch.strided:
            saved, obj = saved.to_dense(), obj.to_dense()
        return saved.dtype == obj.dtype and saved.shape == obj.shape and bool(
            torch.equal(saved.float().nan_to_num(), obj.float().nan_to_num()))
    if kind == "torch-data":
        tensors = getattr(obj, "tensors", ())
        return saved is None or all(a.equal(b) for a, b in zip(saved, tensors, strict=True))
    if kind == "estimator":  # objects without a comparable state (a Generator, a loss): pickled
        return same_state(saved, obj.__dict__) or pickle.dumps(saved) == pickle.dumps(
            obj.__dict__)
    if kind == "copy":
        import pandas as pd
        import scipy.sparse as sp

        if isinstance(saved, pd.DataFrame | pd.Series):
            frames = [x if isinstance(x, pd.DataFrame) else x.to_frame() for x in (saved, obj)]
            return type(saved) is type(obj) and saved.equals(obj) and (
                list(frames[0].columns) == list(frames[1].columns)) and (
                frames[0].dtypes.astype(str).tolist() == frames[1].dtypes.astype(str).tolist())
        if isinstance(saved, pd.api.extensions.ExtensionArray):
            return type(saved) is type(obj) and pd.Series(saved).equals(pd.Series(obj))
        if sp.issparse(saved):
            return saved.format == obj.format and (saved != obj).nnz == 0
        return same_state(saved, obj)
    return same_state(saved, obj)


def store_state(store: Any) -> tuple[list, list, list]:
    """Active runs (with their latest metrics and metric count), the RUNNING runs, the model
    versions and the artifact files, read from the store's SQLite file and folder (an MLflow
    search per call would cost more than most calls)."""
    assert store.uri.startswith("sqlite:///"), store.uri
    db = sqlite3.connect(f"file:{store.uri.removeprefix('sqlite:///')}?mode=ro", uri=True)
    try:
        runs = db.execute("SELECT run_uuid, status, lifecycle_stage FROM runs").fetchall()
        metrics = dict(db.execute("SELECT run_uuid, count(*) FROM metrics GROUP BY run_uuid"))
        versions = sorted(db.execute("SELECT name, version FROM model_versions").fetchall())
    finally:
        db.close()
    active = sorted((run, status, metrics.get(run, 0)) for run, status, stage in runs
                    if stage == "active")
    running = [run for run, status, _ in runs if status == "RUNNING"]
    live = {run for run, _, _ in active}
    files = sorted(str(p) for p in (store.home / "artifacts").rglob("*")
                   if p.is_file() and live & set(p.parts))  # a deleted run keeps its files
    return active + files, running, versions


class Snapshot:
    """The notebook's objects and the store before a call, to say afterwards what changed."""

    def __init__(self, ip: Any, store: Any, names: Any = None) -> None:
        self.ip, self.store = ip, store
        if names is None:  # the user's objects (not IPython's own, not modules or classes)
            names = [n for n, v in ip.user_ns.items() if not n.startswith("_")
                     and n not in ip.user_ns_hidden and not isinstance(v, type | ModuleType)]
        self.objects = {n: ip.user_ns[n] for n in names}
        self.states = {n: state_of(obj) for n, obj in self.objects.items()}
        self.runs, _, self.versions = store_state(store)

    def changed(self, *, but: tuple[str, ...] = ()) -> list[str]:
        """Names whose object was replaced or changed (except ``but``)."""
        return [n for n, obj in self.objects.items() if n not in but and (
            self.ip.user_ns.get(n) is not obj or not same_as(self.states[n], obj))]

    def store_changes(self) -> tuple[list[str], list[str]]:
        """``(runs left RUNNING, what else changed in the store)``."""
        runs, running, versions = store_state(self.store)
        other = []
        if versions != self.versions:
            other.append(f"versions {sorted(set(versions) ^ set(self.versions))}")
        if runs != self.runs:
            diff = sorted(set(map(str, runs)) ^ set(map(str, self.runs)))
            other.append(f"runs or artifacts {diff[:4]}")
        return running, other


def check_call(ip: Any, store: Any, ns: dict[str, Any], magic: str, line: str,
               counts: Counter, log: Any) -> None:
    """Run one call and check what it leaves behind."""
    from IPython.core.error import UsageError

    log.write(f"%{magic} {line}\n")
    log.flush()
    before = Snapshot(ip, store, ns)
    ok = True
    faulthandler.dump_traceback_later(CALL_LIMIT_S, exit=True)
    try:
        ip.run_line_magic(magic, line)
    except UsageError as exc:
        ok = False
        message = str(exc)
        assert message.strip() and "\n" not in message, (
            f"%{magic} {line}: a UsageError of more than one line: {message!r}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    counts[f"{magic}.calls"] += 1
    counts[f"{magic}.{'ok' if ok else 'usage'}"] += 1
    running, other = before.store_changes()
    assert not running, f"%{magic} {line}: left runs RUNNING: {running}"
    if ok:
        trained = line.split()[0] if magic == "train" and line.split() else ""
        changed = before.changed(but=(trained,))
        assert not changed, f"%{magic} {line}: succeeded but changed {changed}"
        return
    assert not before.changed(), f"%{magic} {line}: refused, but changed {before.changed()}"
    assert not other, f"%{magic} {line}: refused, but the store changed: {other}"


def main(work: str, template_db: str, log_path: str, summary_path: str) -> int:
    """The child: a shell, the notebook's objects, then every magic's generated calls."""
    warnings.simplefilter("ignore")
    faulthandler.enable()  # a native crash prints the Python stack before the signal ends us
    os.chdir(work)
    os.environ["AIMODEL_HOME"] = str(Path(work) / ".aimodel")
    Path(work, ".aimodel").mkdir(exist_ok=True)
    shutil.copyfile(template_db, Path(work, ".aimodel", "mlflow.db"))
    from hypothesis import HealthCheck, Phase, example, given, settings
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from aimodel_kernel.engine.store.tracking import get_store

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "aimodel_kernel")
    ns = notebook(ip)
    store = get_store()
    registered = sorted(
        name for name, func in ip.magics_manager.magics["line"].items()
        if getattr(func, "__self__", None) is not None
        and type(func.__self__).__module__.startswith("aimodel_kernel."))
    counts: Counter = Counter()
    def fuzzer(magic: str, n: int, log: Any) -> Any:
        @settings(max_examples=n, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(line=line_strategy(magic))
        def fuzz(line: str) -> None:
            if magic == "train":  # %train trains its model: a new one for every call
                fresh = fresh_models()
                ns.update(fresh)
                ip.user_ns.update(fresh)
            check_call(ip, store, {k: ip.user_ns[k] for k in ns}, magic, line, counts, log)

        for line in reversed(EXPLICIT[magic]):
            fuzz = example(line=line)(fuzz)
        return fuzz

    with open(log_path, "a") as log:
        for magic, n in EXAMPLES.items():
            fuzzer(magic, n, log)()
    out = {m: {k: counts[f"{m}.{k}"] for k in ("calls", "ok", "usage")} for m in EXAMPLES}
    Path(summary_path).write_text(json.dumps({"counts": out, "registered": registered}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
