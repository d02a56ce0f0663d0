"""Benchmark: ``explain()`` (what ``%explain rf X`` runs) against a direct ``shap.TreeExplainer``
call, and the default explainer against a model-agnostic one.

Run from the repository root::

    python benchmarks/bench_explain.py [--rows 1000] [--trees 200] [--depth 8] [--repeat 3]
                                       [--agnostic-rows 10]

A ``RandomForestClassifier`` (``--trees`` trees of depth ``--depth``) is fitted on 2,000 seeded
``make_classification`` rows with 20 features; ``--rows`` fresh seeded rows are explained.
``explain`` is the engine call (input checks, explainer choice, the SHAP values of the positive
class, importance; not logged), ``direct`` is ``shap.TreeExplainer(rf).shap_values(X)``; each
the best of ``--repeat`` warm runs. Target: explain / direct <= 1.2.

The model-agnostic line runs ``explain(..., method="permutation")`` (background 50 rows,
shap's default 500 evaluations a row) on ``--agnostic-rows`` rows after a one-row warm-up that
pays for shap's numba compilation, and is compared per row with the default (tree) explainer:
a full model-agnostic run on ``--rows`` rows would take that many times longer. Prints a table;
asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, machine, table

from aimodel_kernel.engine.explanation.entry import explain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows explained")
    parser.add_argument("--trees", type=int, default=200, help="trees in the forest")
    parser.add_argument("--depth", type=int, default=8, help="max_depth of the trees")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many warm runs")
    parser.add_argument("--agnostic-rows", type=int, default=10,
                        help="rows the model-agnostic explainer is timed on")
    args = parser.parse_args(argv)

    import shap
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=2000 + args.rows, n_features=20, n_informative=8,
                               random_state=0)
    X_fit, y_fit, X_test = X[:2000], y[:2000], X[2000:]
    rf = RandomForestClassifier(n_estimators=args.trees, max_depth=args.depth, random_state=0,
                                n_jobs=1).fit(X_fit, y_fit)

    def ours():
        return explain(rf, X_test, max_rows=args.rows, log=False)

    def direct():
        return shap.TreeExplainer(rf).shap_values(X_test)

    result = ours()  # warm: imports, shap's tree extension
    direct()
    t_ours = best_of(ours, args.repeat)
    t_direct = best_of(direct, args.repeat)

    k = args.agnostic_rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explain(rf, X_test[:1], method="permutation", log=False)  # numba compiles here
        start = time.perf_counter()
        slow = explain(rf, X_test[:k], method="permutation", max_rows=k, log=False)
        t_agnostic = time.perf_counter() - start
    per_row_tree = t_ours / len(result.rows)
    per_row_agnostic = t_agnostic / k

    print(f"{machine()}; random forest: {args.trees} trees, depth {args.depth}, 20 features; "
          f"{len(result.rows):,} rows explained; best of {args.repeat}")
    print(table(["what", "seconds", "ms a row", "ratio"], [
        [f"explain() ({result.explainer})", t_ours, per_row_tree * 1e3, t_ours / t_direct],
        ["direct shap.TreeExplainer(rf).shap_values(X)", t_direct,
         t_direct / len(result.rows) * 1e3, 1.0],
        [f"explain(method='permutation') on {k} rows ({slow.explainer})", t_agnostic,
         per_row_agnostic * 1e3, per_row_agnostic / per_row_tree],
    ]))
    print(f"ratio explain / direct = {t_ours / t_direct:.2f} (target <= 1.20)")
    print(f"model-agnostic / default explainer, per row = {per_row_agnostic / per_row_tree:,.0f}x "
          f"(a permutation run on all {len(result.rows):,} rows: about "
          f"{per_row_agnostic * len(result.rows):,.0f} s)")


if __name__ == "__main__":
    main()
