"""Benchmark: ``diff_versions`` (what ``%diff A B X y`` runs) on two random-forest versions.

Run from the repository root::

    python benchmarks/bench_diff.py [--rows 10000] [--trees 100 200] [--repeat 3]

Two ``RandomForestClassifier`` versions (different ``n_estimators``) are trained on 2,000 seeded
``make_classification`` rows and registered in a throw-away store; the diff predicts on
``--rows`` fresh seeded rows with labels. Shown: the wall time of a cold first diff (imports
included), the best of ``--repeat`` warm diffs with their breakdown (load = resolve + read
artifacts + SHA-256 check + pickle-free load of both models, predict, compare, log, render = the
report's MIME bundle with its PNG), and the direct baseline: ``load_version`` twice, two
``predict`` calls and ``!=``. Target: the warm diff plus render under 2 s. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="prediction rows")
    parser.add_argument("--trees", type=int, nargs=2, default=(100, 200),
                        help="n_estimators of version 1 and 2")
    parser.add_argument("--repeat", type=int, default=3, help="warm diffs; the best is shown")
    args = parser.parse_args(argv)
    scratch = tempfile.TemporaryDirectory(prefix="aimodel-bench-", ignore_cleanup_errors=True)
    with scratch as home:
        os.environ["AIMODEL_HOME"] = str(Path(home) / ".aimodel")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        run(args)


def run(args: argparse.Namespace) -> None:
    """Train the two versions in the throw-away store, then time the diffs."""

    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from aimodel_kernel.display.diff_report import DiffReport
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.core.prediction import predict
    from aimodel_kernel.engine.store.registry import load_version
    from aimodel_kernel.engine.training.entry import train
    from aimodel_kernel.engine.versions.diff import diff_versions

    X, y = make_classification(n_samples=2_000 + args.rows, n_features=20, n_informative=8,
                               n_classes=3, random_state=0)
    X_train, y_train, X_new, y_new = X[:2_000], y[:2_000], X[2_000:], y[2_000:]
    for trees in args.trees:
        forest = RandomForestClassifier(n_estimators=trees, max_depth=10, random_state=0,
                                        n_jobs=1)
        train(forest, X_train, y_train, TrainConfig(name="forest", seed=0))

    def run_diff() -> tuple[object, float]:
        start = time.perf_counter()
        d = diff_versions("forest/1", "forest/2", X=X_new, y=y_new)
        mid = time.perf_counter()
        DiffReport(d)._repr_mimebundle_()
        end = time.perf_counter()
        d.timings["render"] = end - mid
        return d, end - start

    def direct() -> float:
        start = time.perf_counter()
        a, b = load_version("forest/1"), load_version("forest/2")
        changed = predict(a, X_new).y_pred != predict(b, X_new).y_pred
        int(changed.sum())
        return time.perf_counter() - start

    _, cold = run_diff()
    warm = [run_diff() for _ in range(args.repeat)]
    best, total = min(warm, key=lambda pair: pair[1])
    baseline = min(direct() for _ in range(args.repeat))

    t = best.timings
    rows = [[step, t.get(step, 0.0)] for step in ("load", "predict", "compare", "log", "render")]
    rows.append(["total (diff + render)", total])
    rows.append(["direct: load_version x2 + predict x2 + !=", baseline])
    rows.append(["cold first diff (imports included)", cold])
    print(f"{machine()}; {args.rows:,} rows, forests of {args.trees[0]} vs {args.trees[1]} "
          f"trees; best of {args.repeat}")
    print(best.summary)
    print(table(["step", "seconds"], rows))
    print(f"total {total:.3f} s (target < 2 s); diff / direct = {total / baseline:.2f}")


if __name__ == "__main__":
    main()
