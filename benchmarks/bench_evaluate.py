"""Benchmark: ``evaluate_predictions`` against calling the same scikit-learn functions directly.

Run from the repository root::

    python benchmarks/bench_evaluate.py [--n 1000000] [--repeat 3]

1,000,000 seeded synthetic binary predictions. ``direct`` makes, one for one, the scikit-learn
calls ``evaluate_predictions`` makes for a binary task (accuracy, balanced accuracy, per-class
precision/recall/F1, ROC curve + AUC, log loss, confusion matrix, PR curve, calibration curve);
``naive`` computes the same headline numbers the way one usually does, one function per number
(macro and weighted averages by their own calls, ``roc_auc_score`` beside ``roc_curve``). Each is
timed best of ``--repeat``. The ratio target is ``evaluate / direct <= 1.2``. The render time is
that of the report's composite PNG. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aimodel_kernel.display.evaluation_report import EvaluationReport
from aimodel_kernel.engine.core.data import TaskInfo
from aimodel_kernel.engine.evaluation.metrics import evaluate_predictions


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, hard predictions and (n, 2) probabilities of a decent binary classifier."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    logit = 1.5 * (2 * y_true - 1) + rng.normal(0.0, 1.5, n)
    p1 = 1.0 / (1.0 + np.exp(-logit))
    y_score = np.column_stack([1.0 - p1, p1])
    return y_true, (p1 > 0.5).astype(np.int64), y_score


def direct(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray) -> dict:
    """The scikit-learn calls ``evaluate_predictions`` makes for a binary task, one for one."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        accuracy_score,
        auc,
        balanced_accuracy_score,
        confusion_matrix,
        log_loss,
        precision_recall_curve,
        precision_recall_fscore_support,
        roc_curve,
    )

    labels = [0, 1]
    p1 = y_score[:, 1]
    fpr, tpr, _ = roc_curve(y_true, p1, pos_label=1)
    return {
        "prf": precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0
        ),
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "roc_auc": auc(fpr, tpr),
        "log_loss": log_loss(y_true, y_score, labels=labels),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels),
        "pr": precision_recall_curve(y_true, p1, pos_label=1),
        "calibration": calibration_curve(y_true, p1, n_bins=10, pos_label=1),
    }


def naive(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray) -> dict:
    """The same numbers and curves, one scikit-learn function per number."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_curve,
        precision_recall_fscore_support,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    p1 = y_score[:, 1]
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "precision_macro": precision_score(y_true, y_pred, average="macro"),
        "recall_macro": recall_score(y_true, y_pred, average="macro"),
        "f1_macro": f1_score(y_true, y_pred, average="macro"),
        "f1_weighted": f1_score(y_true, y_pred, average="weighted"),
        "per_class": precision_recall_fscore_support(y_true, y_pred),
        "roc_auc": roc_auc_score(y_true, p1),
        "log_loss": log_loss(y_true, y_score),
        "confusion": confusion_matrix(y_true, y_pred),
        "roc": roc_curve(y_true, p1),
        "pr": precision_recall_curve(y_true, p1),
        "calibration": calibration_curve(y_true, p1, n_bins=10),
    }


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of predictions")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    y_true, y_pred, y_score = synthetic(args.n)
    task = TaskInfo("binary", (0, 1))
    direct(y_true, y_pred, y_score)  # warm imports and caches
    result = evaluate_predictions(y_true, y_pred, y_score, task=task)

    t_ours = best_of(args.repeat, lambda: evaluate_predictions(y_true, y_pred, y_score, task=task))
    t_direct = best_of(args.repeat, lambda: direct(y_true, y_pred, y_score))
    t_naive = best_of(args.repeat, lambda: naive(y_true, y_pred, y_score))
    t_render = best_of(args.repeat, lambda: EvaluationReport(result).figure_png())

    rows = [
        ("evaluate_predictions", t_ours, t_ours / t_direct),
        ("direct sklearn calls (same set)", t_direct, 1.0),
        ("naive sklearn calls (one per number)", t_naive, t_naive / t_direct),
        ("EvaluationReport PNG render", t_render, None),
    ]
    print(f"n = {args.n:,} binary predictions, best of {args.repeat}")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>8}  {'x direct':>8}")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 8}")
    for name, seconds, ratio in rows:
        shown = f"{ratio:8.2f}" if ratio is not None else f"{'':>8}"
        print(f"{name:<{width}}  {seconds:8.3f}  {shown}")
    print(f"ratio evaluate_predictions / direct = {t_ours / t_direct:.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
