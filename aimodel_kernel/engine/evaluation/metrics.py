"""Metrics and curves (scikit-learn's own functions), cross-validation and bootstrap intervals.

Only a model ``%train`` produced is logged (onto its run); otherwise mlflow is never imported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ..core import links
from ..core.data import TaskInfo
from ..core.errors import InputError
from ..core.inputs import check_count, check_seed, first_line
from ..core.plain import jsonable
from ..core.prediction import Predictions, check_labels, is_torch_model, predict, prepare
from ..store.artifacts import EVALUATION
from ..store.tracking import store_for

MAX_CURVE_POINTS = 500
MAX_PLOT_POINTS = 2000
CLASSIFICATION_SCORERS = {m: m for m in ("accuracy", "balanced_accuracy", "precision_macro",
                                          "recall_macro", "f1_macro", "f1_weighted")}
REGRESSION_SCORERS = {"mae": "neg_mean_absolute_error", "rmse": "neg_root_mean_squared_error",
                      "r2": "r2"}


@dataclass
class EvaluationResult:
    """Metrics of one model on one data set, with curves, and optional CV and intervals."""

    artifact_dir: ClassVar[str] = "evaluation"  # where its files go on the run
    task: TaskInfo
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    labels: list[Any] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, Any] | None = None
    intervals: dict[str, tuple[float, float]] | None = None
    n_samples: int = 0
    model_name: str = ""
    run_id: str | None = None
    logged: bool = False
    notes: list[str] = field(default_factory=list)
    tracking_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN becomes ``None``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tracking_uri"}
        return jsonable({**out, "task": self.task.to_dict()})



def _thin(*arrays: np.ndarray, limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """Evenly spaced points of a curve (first and last kept), as float lists."""
    m = len(arrays[0])
    if m > limit:
        idx = np.unique(np.linspace(0, m - 1, limit).round().astype(np.int64))
        arrays = tuple(a[idx] for a in arrays)
    return [np.asarray(a, dtype=float).tolist() for a in arrays]


# -- metrics ---------------------------------------------------------------------------------
def _one_vs_rest(y_true, task) -> list[tuple[int, Any]]:
    """(score column, label) of each curve: the positive class for binary, else each present."""
    if task.task == "binary":
        return [(1, task.classes[1])]
    present = set(np.unique(y_true).tolist())
    return [(j, c) for j, c in enumerate(task.classes) if c in present]


def _roc(y_true, scores, task, *, keep_curves):
    """Per-class one-vs-rest ROC (one curve for binary) and its AUC, from one roc_curve each."""
    from sklearn.metrics import auc, roc_curve

    aucs, curves = {}, []
    for j, label in _one_vs_rest(y_true, task):
        fpr, tpr, _ = roc_curve(y_true, scores[:, j], pos_label=label)
        aucs[label] = float(auc(fpr, tpr))
        if keep_curves:
            fpr_l, tpr_l = _thin(fpr, tpr)
            curves.append({"label": str(label), "fpr": fpr_l, "tpr": tpr_l, "auc": aucs[label]})
    return (float(np.average(list(aucs.values()))) if aucs else math.nan), aucs, curves


def _classification(y_true, y_pred, y_score, task, kind, *, full: bool):
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        log_loss,
        precision_recall_fscore_support,
    )

    labels = list(task.classes)
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "precision_macro": float(np.nanmean(p)),
        "recall_macro": float(np.nanmean(r)),
        "f1_macro": float(np.nanmean(f)),
        "f1_weighted": float(np.average(f, weights=support)),
    }
    extra: dict[str, Any] = {"prf": (p, r, f, support), "aucs": {}, "roc": []}
    if y_score is not None:
        metrics["roc_auc"], extra["aucs"], extra["roc"] = _roc(
            y_true, y_score, task, keep_curves=full
        )
        if kind == "proba":
            metrics["log_loss"] = float(log_loss(y_true, y_score, labels=labels))
    return metrics, extra


def _regression(y_true, y_pred):
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def _classification_curves(y_true, y_score, task, kind) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve

    pr = []
    for j, label in _one_vs_rest(y_true, task):
        precision, recall, _ = precision_recall_curve(y_true, y_score[:, j], pos_label=label)
        precision_l, recall_l = _thin(precision, recall)
        pr.append({"label": str(label), "precision": precision_l, "recall": recall_l})
    curves: dict[str, Any] = {"pr": pr}
    if task.task == "binary" and kind == "proba":
        true, pred = calibration_curve(y_true, y_score[:, 1], n_bins=10, pos_label=task.classes[1])
        curves["calibration"] = {"prob_pred": pred.tolist(), "prob_true": true.tolist()}
    return curves


def evaluate_predictions(
    y_true: Any, y_pred: Any, y_score: Any = None, *, task: TaskInfo, score_kind: str = "proba"
) -> EvaluationResult:
    """Metrics and curves of given predictions (no model involved).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels (classification) or values (regression).
    y_score : array-like of shape (n, n_classes), optional
        Class scores in ``task.classes`` order; for binary also ``(n,)`` for the positive class.
    task : TaskInfo
        The task, with the class labels for classification.
    score_kind : {"proba", "decision"}
        ``decision`` scores feed ROC curves and AUC only.

    Returns
    -------
    EvaluationResult
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_score is not None:
        y_score = np.asarray(y_score, dtype=float)
        if y_score.ndim == 1:
            y_score = np.column_stack([1.0 - y_score, y_score])
    _check_predictions(y_true, y_pred, y_score, task)
    with _fast_sklearn(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _evaluate_checked(y_true, y_pred, y_score, task, score_kind)
        except ValueError as exc:  # scikit-learn's own refusal of these targets
            raise InputError(f"scikit-learn cannot compute the metrics on these rows: "
                             f"{first_line(exc)}") from None
    result.notes.extend(dict.fromkeys(str(w.message) for w in caught))  # sklearn's, once each
    return result


def _fast_sklearn():
    """Inputs are checked once here, so scikit-learn need not re-check them in every call."""
    import sklearn

    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


def _check_predictions(y_true, y_pred, y_score, task) -> None:
    if len(y_pred) != len(y_true):
        raise InputError(f"{len(y_true)} true values but {len(y_pred)} predictions")
    if y_score is not None and y_score.shape != (n := len(y_true), task.n_classes):
        raise InputError(f"scores have shape {y_score.shape}; expected ({n}, {task.n_classes})")
    for what, arr in (("predictions", y_pred), ("scores", y_score), ("true values", y_true)):
        if arr is not None and arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise InputError(f"the {what} contain NaN or infinite values")


def _evaluate_checked(y_true, y_pred, y_score, task, score_kind) -> EvaluationResult:
    n = len(y_true)
    if not task.is_classification:
        result = EvaluationResult(task, _regression(y_true, y_pred), n_samples=n)
        idx = np.arange(n) if n <= MAX_PLOT_POINTS else np.sort(
            np.random.default_rng(0).choice(n, MAX_PLOT_POINTS, replace=False)
        )
        yt, yp = y_true[idx].astype(float), y_pred[idx].astype(float)
        result.curves["residuals"] = {
            "y_true": yt.tolist(), "y_pred": yp.tolist(), "residual": (yt - yp).tolist()
        }
        return result
    from sklearn.metrics import confusion_matrix

    metrics, extra = _classification(y_true, y_pred, y_score, task, score_kind, full=True)
    p, r, f, support = extra["prf"]
    per_class = {
        str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                 "support": int(support[i])}
        | ({"roc_auc": extra["aucs"][c]} if task.task != "binary" and c in extra["aucs"] else {})
        for i, c in enumerate(task.classes)
    }
    confusion = confusion_matrix(y_true, y_pred, labels=list(task.classes))
    curves = {} if y_score is None else {
        "roc": extra["roc"], **_classification_curves(y_true, y_score, task, score_kind)
    }
    return EvaluationResult(task, metrics, per_class, confusion.tolist(), list(task.classes),
                            curves, n_samples=n)


# -- bootstrap and cross-validation ----------------------------------------------------------
def bootstrap_intervals(
    y_true: np.ndarray, pred: Predictions, *, n_boot: int = 200, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of the headline metrics over ``n_boot`` seeded resamples."""
    rng = np.random.default_rng(seed)
    n, task = len(y_true), pred.task
    draws: dict[str, list[float]] = {}
    with warnings.catch_warnings(), _fast_sklearn():
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            yt, yp = y_true[idx], pred.y_pred[idx]
            if task.is_classification:
                score = None if pred.y_score is None else pred.y_score[idx]
                if len(np.unique(yt)) < 2:
                    continue
                metrics, _ = _classification(yt, yp, score, task, pred.score_kind, full=False)
            else:
                metrics = _regression(yt, yp)
            for name, value in metrics.items():
                draws.setdefault(name, []).append(value)
    return {
        name: tuple(float(v) for v in np.nanpercentile(values, [2.5, 97.5]))
        for name, values in draws.items()
        if np.isfinite(values).any()
    }


def cross_validation(
    model: Any, X: Any, y: np.ndarray, task: TaskInfo, *, k: int, seed: int = 0
) -> dict[str, Any]:
    """K-fold scores of a clone of ``model``: per metric mean, std and folds."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

    scoring = dict(REGRESSION_SCORERS)
    if task.is_classification:
        scoring = dict(CLASSIFICATION_SCORERS)
        proba = hasattr(model, "predict_proba")
        if proba or (task.task == "binary" and hasattr(model, "decision_function")):
            scoring["roc_auc"] = "roc_auc" if task.task == "binary" else "roc_auc_ovr"
        if proba:
            scoring["log_loss"] = "neg_log_loss"
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    try:
        scores = cross_validate(clone(model), X, y, cv=splitter, scoring=scoring,
                                error_score="raise")
    except ValueError as exc:  # a fold the estimator (or a scorer) refuses
        raise InputError(f"--cv {k}: {type(model).__name__} failed on a fold: "
                         f"{first_line(exc)}") from None
    folds = {n: np.asarray(scores[f"test_{n}"], float) * (-1 if s.startswith("neg_") else 1)
             for n, s in scoring.items()}  # neg_* scorers back to the metric itself
    metrics = {n: {"mean": float(f.mean()), "std": float(f.std()), "folds": f.tolist()}
               for n, f in folds.items()}
    return {"k": k, "splitter": type(splitter).__name__, "seed": seed, "metrics": metrics}


def _check_cv(k: Any, y: np.ndarray, task: TaskInfo, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= n:
        raise InputError(f"--cv must be a whole number from 2 to the number of rows ({n}); got {k}")
    if task.is_classification:
        labels, counts = np.unique(y, return_counts=True)
        i = int(counts.argmin())
        if k > counts[i]:
            raise InputError(
                f"--cv {k} is more folds than the smallest class has rows (class "
                f"{labels[i].item()!r}: {counts[i]}); use --cv {max(2, int(counts[i]))} or less"
            )
    return int(k)


# -- evaluate --------------------------------------------------------------------------------
def evaluate(
    model: Any, X: Any, y: Any = None, *, task: str = "auto", cv: int | None = None,
    ci: bool = False, n_boot: int = 200, seed: int = 0, log: bool = True, store: Any = None,
    name: str | None = None, x_name: str = "X", y_name: str = "y",
) -> EvaluationResult:
    """Evaluate a fitted model on ``X, y``; optionally cross-validate and bootstrap intervals.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
    X : array-like, DataFrame, sparse matrix, tensor, Dataset or DataLoader
    y : array-like, optional
        Targets; omit for a Dataset or DataLoader of ``(x, y)`` items.
    task : {"auto", "binary", "multiclass", "regression"}
    cv : int, optional
        Also run K-fold cross-validation of a clone (scikit-learn models only).
    ci : bool
        Add 95% bootstrap intervals of the headline metrics.
    n_boot, seed : int
        Bootstrap resamples and the seed of the resampling and of the CV shuffling.
    log : bool
        Log onto the model's run when ``%train`` produced the model.
    store : Store, optional
        Tracking store to log to (the default store otherwise).
    name, x_name, y_name : str, optional
        The user's names of the model and the data, for messages.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError
        Bad data or options, rows the model cannot take (checked before it predicts), or
        scikit-learn's own refusal of them, in one line; nothing is logged then.
    NotFittedError
        An unfitted scikit-learn estimator.
    """
    if is_torch_model(model) and cv is not None:
        raise InputError(
            "--cv works for scikit-learn models; for a PyTorch model evaluate a held-out set "
            "(or use %train with a validation split)"
        )
    check_seed(seed)
    check_count(n_boot, "--n-boot")
    data, info = prepare(model, X, y, task=task, name=name, x_name=x_name, y_name=y_name)
    k = _check_cv(cv, data.y, info, data.n_samples) if cv is not None else None
    pred = predict(model, data.X, task=info, name=name, x_name=x_name)
    if pred.task != info:
        check_labels(data.y, pred.task)
    result = evaluate_predictions(
        data.y, pred.y_pred, pred.y_score, task=pred.task, score_kind=pred.score_kind or "proba"
    )
    result.model_name = type(model).__name__
    result.notes.extend(pred.notes)
    if ci:
        result.intervals = bootstrap_intervals(data.y, pred, n_boot=n_boot, seed=seed)
    if k is not None:
        result.cv = cross_validation(model, data.X, data.y, pred.task, k=k, seed=seed)
    if log:
        _log(model, result, store)
    return result



def _log(model: Any, result: EvaluationResult, store: Any) -> None:
    link = links.lookup(model)
    if link is None:
        return
    rows = [(f"eval.{k}", v, None) for k, v in result.metrics.items() if math.isfinite(v)]
    if result.cv:
        rows += [(f"eval.cv.{k}", v["mean"], None) for k, v in result.cv["metrics"].items()]
    result.run_id, result.tracking_uri = link.run_id, link.tracking_uri
    try:
        target = store_for(link.tracking_uri, store)
        target.log_metrics(link.run_id, rows)
        result.logged = True
        target.log_dict(link.run_id, result.to_dict(), EVALUATION)
    except Exception as exc:  # the evaluation is worth keeping even when the store is down
        result.logged = False
        result.notes.append(f"not logged to run {link.run_id}: {exc}")
        warnings.warn(f"could not log the evaluation to run {link.run_id}: {exc}", stacklevel=3)
