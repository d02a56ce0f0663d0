"""How long the first ``%train`` in a fresh Jupyter kernel takes.

Run: python benchmarks/bench_first_call.py [--runs 3] [--before PATH] [--breakdown]

Each measurement starts a real Jupyter kernel (``jupyter_client``, the ``python3`` kernel of
this environment) in a fresh folder and runs, cell by cell, each sent when the previous one is
done: ``%load_ext aimodel_kernel``; a data cell (import scikit-learn, load breast cancer, make a
``LogisticRegression``); then ``%train clf X y --name m`` twice. A cell's time is from sending
it to the kernel being idle again (its report displayed), as a user sees it. Scenarios:

* fresh store / existing store: no ``.aimodel/`` yet, or one an earlier kernel created;
* right away: each cell is sent as soon as the previous one is done (a "Run all"); after the
  warm-up: the ``%train`` cell is sent once the warm-up has finished (a user who takes that
  long to type it; the time waited is reported, and the data cell ran first either way);
* warm-up off (``AIMODEL_WARMUP=0``); a machine whose template cache is empty (the first store
  ever created there pays MLflow's migrations once, in the warm-up or in ``%train``).

``--before PATH`` runs the same cells against another checkout of the package (e.g. ``git
archive HEAD aimodel_kernel | tar -x -C PATH`` of the code before the change) for the
before/after table; ``--after PATH`` measures a copy instead of this checkout (a snapshot, when
others are editing the working tree).

Targets (issue 13): first ``%train`` of a small scikit-learn model in a fresh kernel <= 1.5 s on
a fresh store and <= 1.0 s on an existing one; ``%load_ext`` still <= 0.15 s with nothing heavy
imported before it returns. The last columns compare the first ``%train`` with the second in
the same kernel (the same work, warm).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, median, table

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("mlflow", "sklearn", "skops", "torch", "sqlalchemy", "alembic", "pandas")
LOAD = ("%load_ext aimodel_kernel\nimport sys as _s\n"
        f"_heavy = sorted({{m.split('.')[0] for m in _s.modules}} & set({HEAVY!r}))")
DATA = ("from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "clf = LogisticRegression(solver='liblinear')")
TRAIN = "%train clf X y --name m"
STATUS = ("import json as _j\ntry:\n    from aimodel_kernel.engine.store import warmup as _w\n"
          "    print(_j.dumps(_w.status()))\nexcept ImportError:\n    print('null')")


def run(client, code: str, timeout: float = 300) -> tuple[float, str]:
    """Seconds from sending ``code`` to the kernel being idle, and the text it printed."""
    t0 = time.perf_counter()
    msg_id = client.execute(code)
    text = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "error":
            raise RuntimeError(f"{code!r}: {content['ename']}: {content['evalue']}")
        if kind == "stream":
            text.append(content["text"])
        if kind == "status" and content["execution_state"] == "idle":
            return time.perf_counter() - t0, "".join(text)


BREAKDOWN = r"""
import json, sys, tempfile, time
from pathlib import Path
marks = {}


def mark(name, fn):
    t0 = time.perf_counter()
    fn()
    marks[name] = time.perf_counter() - t0


mark("import scikit-learn (the data cell does)", lambda: __import__("sklearn.linear_model"))
mark("import mlflow", lambda: __import__("mlflow"))
mark("import MLflow's SQL tracking + registry stores", lambda: (
    __import__("mlflow.store.tracking.sqlalchemy_store"),
    __import__("mlflow.store.model_registry.sqlalchemy_store")))
folder = Path(tempfile.mkdtemp())


def migrate():
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    SqlAlchemyStore(f"sqlite:///{folder / 'fresh.db'}", str(folder / "artifacts"))


mark("MLflow's migrations of a new database", migrate)


def reopen():
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    SqlAlchemyStore._engine_map.clear()
    SqlAlchemyStore(f"sqlite:///{folder / 'fresh.db'}", str(folder / "artifacts"))


mark("opening an existing database (schema check)", reopen)
if sys.argv[1] == "fast":
    from aimodel_kernel.engine.store.fast_imports import import_skops_io
    mark("import skops.io without torch (fast_imports)", import_skops_io)
else:
    mark("import skops.io (imports torch)", lambda: __import__("skops.io"))
marks["torch imported"] = "torch" in sys.modules
print(json.dumps(marks))
"""


def breakdown(repo: Path, runs: int) -> None:
    """Where a first ``%train``'s seconds go, one part after the other in fresh processes."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(repo))
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        for way in ("plain", "fast"):
            out = subprocess.run([sys.executable, "-c", BREAKDOWN, way], env=env, text=True,
                                 capture_output=True, check=True, timeout=600)
            for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                if not isinstance(value, bool):
                    rows.setdefault(key, []).append(value)
    print(table(["part (fresh process, in this order)", f"seconds (median of {runs})"],
                [[k, median(v)] for k, v in rows.items()]))


def probe(repo: Path, folder: Path, *, wait: bool, warmup: bool, cache: Path) -> dict:
    from jupyter_client.manager import start_new_kernel

    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("AIMODEL_HOME", None)
    env["PYTHONPATH"] = str(repo)
    env["AIMODEL_CACHE_DIR"] = str(cache)
    env["AIMODEL_WARMUP"] = "1" if warmup else "0"
    km, client = start_new_kernel(kernel_name="python3", cwd=str(folder), env=env)
    try:
        load, _ = run(client, LOAD)
        _, heavy = run(client, "import json as _j; print(_j.dumps(_heavy))")
        data, _ = run(client, DATA)
        waited = 0.0
        if wait:
            t0 = time.perf_counter()
            while True:
                _, out = run(client, STATUS)
                status = json.loads(out.strip().splitlines()[-1])
                if status is None or status["finished"]:
                    break
                time.sleep(0.2)
            waited = time.perf_counter() - t0
        first, _ = run(client, TRAIN)
        second, _ = run(client, TRAIN)
        _, out = run(client, STATUS)
        status = json.loads(out.strip().splitlines()[-1])
    finally:
        km.shutdown_kernel(now=True)
    return {"load": load, "data": data, "waited": waited, "first": first, "second": second,
            "heavy": json.loads(heavy.strip().splitlines()[-1]),
            "warmup_seconds": status["seconds"] if status else 0.0}


def scenario(repo: Path, *, existing: bool, wait: bool, warmup: bool, cold_cache: bool,
             runs: int, cache: Path) -> dict:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            run_cache = folder / "cache" if cold_cache else cache
            if existing:  # a store created (and used) by an earlier kernel
                probe(repo, folder, wait=True, warmup=warmup, cache=run_cache)
            results.append(probe(repo, folder, wait=wait, warmup=warmup, cache=run_cache))
    keys = ("load", "data", "waited", "first", "second", "warmup_seconds")
    summary = {k: median([r[k] for r in results]) for k in keys}
    summary["heavy"] = sorted({m for r in results for m in r["heavy"]})
    summary["each"] = [round(r["first"], 2) for r in results]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of the code before the change")
    parser.add_argument("--after", type=Path, default=ROOT,
                        help="the checkout to measure (default: this one)")
    parser.add_argument("--breakdown", action="store_true",
                        help="only time the parts of a first call, one after the other")
    args = parser.parse_args()
    after = args.after
    if args.breakdown:
        print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
        breakdown(after, args.runs)
        return
    cache = Path(tempfile.mkdtemp(prefix="aimodel-bench-cache-"))
    with tempfile.TemporaryDirectory() as tmp:  # builds the template in `cache`
        probe(after, Path(tmp), wait=True, warmup=True, cache=cache)

    def plan(existing: bool, wait: bool, warmup: bool, cold_cache: bool = False) -> dict:
        return dict(existing=existing, wait=wait, warmup=warmup, cold_cache=cold_cache)

    plans = []
    if args.before:
        plans += [("before", args.before, plan(False, False, False)),
                  ("before", args.before, plan(True, False, False))]
    plans += [
        ("after, warm-up off", after, plan(False, False, False)),
        ("after, warm-up off", after, plan(True, False, False)),
        ("after, right away", after, plan(False, False, True)),
        ("after, right away", after, plan(True, False, True)),
        ("after, after the warm-up", after, plan(False, True, True)),
        ("after, after the warm-up", after, plan(True, True, True)),
        ("after, right away, empty template cache", after, plan(False, False, True, True)),
        ("after, warm-up off, empty template cache", after, plan(False, False, False, True)),
    ]
    rows = []
    for label, repo, opts in plans:
        s = scenario(repo, runs=args.runs, cache=cache, **opts)
        store = "existing" if opts["existing"] else "fresh"
        rows.append([label, store, s["load"], s["data"], s["waited"], s["first"],
                     " ".join(map(str, s["each"])), s["second"], s["first"] / s["second"],
                     s["warmup_seconds"], ", ".join(s["heavy"]) or "none"])
        print(f"  {label} / {store}: first {s['first']:.2f} s", file=sys.stderr, flush=True)
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(table(["code", "store", "%load_ext cell (s)", "data cell (s)", "waited (s)",
                 f"first %train (s, median of {args.runs})", "each run", "second %train (s)",
                 "first / second", "warm-up work (s)", "heavy modules after %load_ext"], rows))


if __name__ == "__main__":
    main()
