"""Fairness audit: per-group metrics with fairlearn's ``MetricFrame``, disparities, checks
against thresholds, and bootstrap intervals. Mitigation is in :mod:`.mitigation`.

Only a model ``%train`` produced is logged (onto its run, as ``fairness.*`` metrics and
``fairness/report.json``); otherwise mlflow is never imported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, ClassVar

import numpy as np

from ..core import links
from ..core.data import TaskInfo
from ..core.errors import InputError, require
from ..core.inputs import check_seed, first_line
from ..core.plain import jsonable
from ..core.prediction import check_labels, predict, prepare
from ..store.artifacts import FAIRNESS, RunFiles
from ..store.tracking import store_for
from .groups import GroupData, check_groups, sensitive_frame
from .intervals import bootstrap

CLASSIFICATION_METRICS = ("count", "selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision")
REGRESSION_METRICS = ("count", "mae", "rmse", "mean_prediction", "mean_true")
# (summary metric, rule, threshold key): the checks each audit makes
CLASSIFICATION_CHECKS = (
    ("demographic_parity_ratio", ">=", "ratio"),  # the four-fifths rule at 0.8
    ("demographic_parity_difference", "<=", "difference"),
    ("equal_opportunity_difference", "<=", "difference"),
    ("equalized_odds_difference", "<=", "difference"),
)
REGRESSION_CHECKS = (("mae_ratio", ">=", "ratio"),)
MIN_RATE_ROWS = 5  # fewer positive (negative) rows than this make a group's TPR (FPR) shaky
ARTIFACT = FAIRNESS


@dataclass
class FairnessResult:
    """A fairness audit of one model's predictions on one data set, by sensitive groups.

    ``groups`` has one entry per group (intersections when several sensitive features are
    given): ``{"group": label, "values": {feature: value}, <metric>: float ...}``. ``summary``
    holds the disparities compared across versions by ``%diff``; ``checks`` says which pass the
    thresholds.
    """

    artifact_dir: ClassVar[str] = "fairness"  # where its files go on the run
    task: TaskInfo
    sensitive: list[str]
    n_samples: int
    overall: dict[str, float]
    groups: list[dict[str, Any]]
    summary: dict[str, float]
    checks: list[dict[str, Any]]
    thresholds: dict[str, float]
    positive_label: Any = None
    intervals: dict[str, Any] | None = None
    model_name: str = ""
    run_id: str | None = None
    logged: bool = False
    notes: list[str] = field(default_factory=list)
    mitigation: Any = None
    tracking_uri: str | None = None

    @property
    def failed(self) -> list[str]:
        """Names of the checks that fail."""
        return [c["metric"] for c in self.checks if c["passed"] is False]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN becomes ``None``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("tracking_uri", "mitigation")}
        out["task"] = self.task.to_dict()
        out["mitigation"] = None if self.mitigation is None else self.mitigation.to_dict()
        return jsonable(out)


# -- metrics -----------------------------------------------------------------------------------
def _metric_functions(task: TaskInfo) -> dict[str, Any]:
    from fairlearn.metrics import (
        count,
        false_negative_rate,
        false_positive_rate,
        mean_prediction,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import (
        accuracy_score,
        mean_absolute_error,
        precision_score,
        root_mean_squared_error,
    )

    if not task.is_classification:
        return {"count": count, "mae": mean_absolute_error, "rmse": root_mean_squared_error,
                "mean_prediction": mean_prediction,
                "mean_true": lambda y_true, y_pred: float(np.mean(y_true))}
    pos = task.classes[1]
    return {
        "count": count,
        "selection_rate": partial(selection_rate, pos_label=pos),
        "accuracy": accuracy_score,
        "tpr": partial(true_positive_rate, pos_label=pos),
        "fpr": partial(false_positive_rate, pos_label=pos),
        "fnr": partial(false_negative_rate, pos_label=pos),
        "precision": partial(precision_score, pos_label=pos, zero_division=np.nan),
    }


def _summaries(by_group: Any, overall: Any, task: TaskInfo) -> dict[str, float]:
    """Disparities from the per-group table (a DataFrame: one row per group)."""
    def spread(metric: str) -> float:
        col = by_group[metric].astype(float)
        return float(col.max() - col.min())

    def ratio(metric: str) -> float:
        col = by_group[metric].astype(float)
        top = col.max()
        return float(col.min() / top) if top > 0 else math.nan

    if not task.is_classification:
        return {"mae": float(overall["mae"]), "mae_gap": spread("mae"),
                "mae_ratio": ratio("mae"), "rmse_gap": spread("rmse"),
                "mean_prediction_gap": spread("mean_prediction")}
    return {
        "accuracy": float(overall["accuracy"]),
        "demographic_parity_difference": spread("selection_rate"),
        "demographic_parity_ratio": ratio("selection_rate"),
        "equal_opportunity_difference": spread("tpr"),
        "equalized_odds_difference": max(spread("tpr"), spread("fpr")),
        "accuracy_difference": spread("accuracy"),
    }


def _checks(summary: dict[str, float], thresholds: dict[str, float], task: TaskInfo) -> list:
    out = []
    for metric, rule, key in CLASSIFICATION_CHECKS if task.is_classification else REGRESSION_CHECKS:
        value, limit = summary.get(metric, math.nan), thresholds[key]
        passed = None if not math.isfinite(value) else (
            value >= limit if rule == ">=" else value <= limit)
        out.append({"metric": metric, "value": value, "rule": rule, "threshold": limit,
                    "passed": passed})
    return out


def _group_notes(groups: list[dict[str, Any]], y_true: np.ndarray, labels: np.ndarray,
                 task: TaskInfo) -> list[str]:
    if not task.is_classification:
        return []
    notes = []
    positive = y_true == task.classes[1]
    for g in groups:
        rows = labels == g["group"]
        n_pos, n_neg = int(positive[rows].sum()), int((~positive[rows]).sum())
        if n_pos < MIN_RATE_ROWS or n_neg < MIN_RATE_ROWS:
            notes.append(f"group {g['group']!r} has {n_pos} positive and {n_neg} negative rows: "
                         "its TPR/FNR and FPR are uncertain")
    return notes


# -- audit -------------------------------------------------------------------------------------
def check_binary(task: TaskInfo) -> None:
    """Raise :class:`InputError` for a multiclass task (regression and binary are audited)."""
    if task.task == "multiclass":
        raise InputError(
            f"fairness metrics (selection rate, TPR, FPR) need a binary classifier; this one has "
            f"{task.n_classes} classes: audit one class against the rest (train on y == CLASS)")


def check_thresholds(*, ratio: float, difference: float, min_group: int, n_boot: int) -> None:
    """Raise :class:`InputError` for thresholds outside their ranges."""
    if not 0 < ratio <= 1:
        raise InputError(f"--ratio-threshold must be in (0, 1] (0.8 is the four-fifths rule); "
                         f"got {ratio}")
    if not 0 <= difference <= 1:
        raise InputError(f"--difference-threshold must be in [0, 1]; got {difference}")
    if isinstance(min_group, bool) or int(min_group) != min_group or min_group < 1:
        raise InputError(f"--min-group must be a whole number of rows >= 1; got {min_group}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 10:
        raise InputError(f"--n-boot must be a whole number >= 10; got {n_boot}")


def audit_predictions(
    y_true: Any, y_pred: Any, groups: Any, *, task: TaskInfo, ci: bool = False,
    n_boot: int = 200, seed: int = 0, ratio_threshold: float = 0.8,
    difference_threshold: float = 0.1, min_group: int = 20,
) -> FairnessResult:
    """Audit given predictions by sensitive groups (no model involved).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels (classification, binary) or values (regression).
    groups : GroupData, array-like, Series, DataFrame or list of named arrays
        The sensitive features of the same rows (see :func:`~.groups.sensitive_frame`).
    task : TaskInfo
        ``binary`` or ``regression``; the positive class is ``task.classes[1]``.
    ci : bool
        Add 95% bootstrap intervals (``n_boot`` resamples, seeded by ``seed``).
    ratio_threshold, difference_threshold : float
        A ratio below, or a difference above, its threshold fails its check.
    min_group : int
        Smallest group size measured.

    Returns
    -------
    FairnessResult

    Raises
    ------
    InputError
        A multiclass task, a single group, or groups smaller than ``min_group``.
    """
    require("fairlearn", extra="fairness", purpose="fairness metrics")
    from fairlearn.metrics import MetricFrame

    check_binary(task)
    check_thresholds(ratio=ratio_threshold, difference=difference_threshold,
                     min_group=min_group, n_boot=n_boot)
    check_seed(seed)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if not isinstance(groups, GroupData):
        groups = sensitive_frame(None, groups, len(y_true), x_name="the data")
    if not len(y_true) == len(y_pred) == groups.n_samples:
        raise InputError(f"{len(y_true)} true values, {len(y_pred)} predictions and "
                         f"{groups.n_samples} sensitive rows: they must be the same rows")
    check_groups(groups, min_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's undefined-metric warnings: NaN is the answer
        try:
            frame = MetricFrame(metrics=_metric_functions(task), y_true=y_true, y_pred=y_pred,
                                sensitive_features=groups.frame)
        except ValueError as exc:  # scikit-learn's or fairlearn's refusal of these rows
            raise InputError(f"the per-group metrics cannot be computed on these rows: "
                             f"{first_line(exc)}") from None
    by_group, overall = frame.by_group, frame.overall
    order = groups.labels_of(by_group.index)
    table = sorted(({"group": label, "values": groups.values[label],
                     **{m: _number(by_group[m].iloc[i], m) for m in by_group.columns}}
                    for i, label in enumerate(order)), key=lambda g: groups.rank[g["group"]])
    order = [g["group"] for g in table]
    summary = _summaries(by_group, overall, task)
    thresholds = {"ratio": float(ratio_threshold), "difference": float(difference_threshold),
                  "min_group": int(min_group)}
    result = FairnessResult(
        task=task, sensitive=list(groups.names), n_samples=len(y_true),
        overall={m: _number(overall[m], m) for m in overall.index}, groups=table,
        summary=summary, checks=_checks(summary, thresholds, task), thresholds=thresholds,
        positive_label=task.classes[1] if task.is_classification else None,
    )
    result.notes.extend(_group_notes(table, y_true, groups.labels, task))
    if ci:
        where = {label: i for i, label in enumerate(order)}
        codes = np.fromiter((where[g] for g in groups.labels), np.int64, len(groups.labels))
        result.intervals = bootstrap(y_true, y_pred, codes, len(order), task, n_boot=n_boot,
                                     seed=seed)
        result.notes.append(
            f"95% percentile bootstrap intervals ({n_boot} resamples, seed {seed}); gaps and "
            "ratios between groups are biased away from parity in resamples, so a value near "
            "parity can lie outside its interval")
    return result


def _number(value: Any, metric: str) -> float | int:
    return int(value) if metric == "count" else float(value)


def audit(
    model: Any, X: Any, y: Any, *, sensitive: Any, task: str = "auto", ci: bool = False,
    n_boot: int = 200, seed: int = 0, ratio_threshold: float = 0.8,
    difference_threshold: float = 0.1, min_group: int = 20, log: bool = True,
    store: Any = None, name: str | None = None, x_name: str = "X",
) -> FairnessResult:
    """Audit a fitted model's predictions on ``X, y`` by the groups of ``sensitive``.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
    X : array-like, DataFrame or tensor
    y : array-like
        True labels (binary classification) or values (regression).
    sensitive : str, sequence or mapping
        Column names of ``X`` and/or named arrays (see :func:`~.groups.sensitive_frame`);
        several give intersectional groups.
    task : {"auto", "binary", "regression"}
        ``binary`` on a regression model is refused.
    ci, n_boot, seed, ratio_threshold, difference_threshold, min_group
        As in :func:`audit_predictions`.
    log : bool
        Log onto the model's run when ``%train`` produced the model.
    store : Store, optional
        Tracking store to log to (the default store otherwise).
    name, x_name : str, optional
        The user's names of the model and of ``X``, for messages.

    Returns
    -------
    FairnessResult
    """
    require("fairlearn", extra="fairness", purpose="fairness metrics")
    result = _audit_model(model, X, y, sensitive=sensitive, task=task, ci=ci, n_boot=n_boot,
                          seed=seed, ratio_threshold=ratio_threshold,
                          difference_threshold=difference_threshold, min_group=min_group,
                          name=name, x_name=x_name)[0]
    if log:
        log_audit(model, result, store)
    return result


def _audit_model(model: Any, X: Any, y: Any, *, sensitive: Any, task: str, name: str | None,
                 x_name: str, **options: Any) -> tuple[FairnessResult, GroupData, Any]:
    """The audit, its groups and the validated data; nothing is logged."""
    from ..core.prediction import resolve_task

    if task in ("binary", "multiclass"):
        try:
            known = resolve_task(model, None, "auto")
        except InputError:
            known = None
        if known is not None and not known.is_classification:
            raise InputError(
                f"classification fairness metrics (selection rate, TPR, FPR) need a classifier; "
                f"{type(model).__name__} is a regression model: drop --task to audit its "
                "per-group errors (MAE, RMSE)")
    check_thresholds(ratio=options["ratio_threshold"], difference=options["difference_threshold"],
                     min_group=options["min_group"], n_boot=options["n_boot"])
    check_seed(options["seed"])
    data, info = prepare(model, X, y, task=task, name=name, x_name=x_name)
    groups = sensitive_frame(data.X, sensitive, data.n_samples, x_name=x_name)
    check_binary(info)
    check_groups(groups, options["min_group"])
    pred = predict(model, data.X, task=info, x_name=x_name, name=name)
    if pred.task != info:
        check_labels(data.y, pred.task)
    result = audit_predictions(data.y, pred.y_pred, groups, task=pred.task, **options)
    result.model_name = type(model).__name__
    result.notes.extend(pred.notes)
    return result, groups, data


# -- tracking ----------------------------------------------------------------------------------
def report_document(result: FairnessResult, previous: dict[str, Any] | None = None) -> dict:
    """``fairness/report.json``: the latest audit, plus the summary of every sensitive set
    audited on the run under ``audits`` (keyed by the features, e.g. ``"sex,age_band"``)."""
    doc = result.to_dict()
    audits = dict((previous or {}).get("audits") or {})
    audits[",".join(result.sensitive)] = doc["summary"]
    doc["audits"] = audits
    return doc


def log_audit(model: Any, result: FairnessResult, store: Any = None) -> None:
    """Log ``fairness.*`` metrics and ``fairness/report.json`` on the run that trained
    ``model``; nothing when no ``%train`` run is linked to it. A store failure becomes a note."""
    link = links.lookup(model)
    if link is None:
        return
    result.run_id, result.tracking_uri = link.run_id, link.tracking_uri
    write_audit(store_for(link.tracking_uri, store), link.run_id, result)


def write_audit(store: Any, run_id: str, result: FairnessResult) -> None:
    """Write the audit onto ``run_id`` of ``store`` (see :func:`log_audit`)."""
    rows = [(f"fairness.{k}", v, None) for k, v in result.summary.items() if math.isfinite(v)]
    try:
        previous = RunFiles(store, run_id).json(ARTIFACT)
        store.log_metrics(run_id, rows)
        result.run_id, result.logged = run_id, True
        store.log_dict(run_id, report_document(result, previous), ARTIFACT)
    except Exception as exc:  # the audit is worth keeping even when the store is down
        result.logged = False
        result.notes.append(f"not logged to run {run_id}: {exc}")
        warnings.warn(f"could not log the fairness audit to run {run_id}: {exc}", stacklevel=3)
