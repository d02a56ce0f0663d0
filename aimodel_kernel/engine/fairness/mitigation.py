"""Fairness mitigation: fit a mitigated model, audit it beside the original, and register it
as a new version whose parent is the original's version.

Everything that can be wrong with the input (and the fit itself) is checked before anything
is written, so bad input leaves no run, no version and no logged audit behind. The mitigated
model is a :mod:`.mitigated_models` estimator, saved pickle-free with skops like any scikit-learn
version (``engine.versions.load_version`` loads it back); ``model/mitigation.json`` holds the
per-group thresholds or the mixture weights in readable form.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Settings
from ..core import links
from ..core.data import TaskInfo, check_data, fingerprint
from ..core.environment import FORMAT_PACKAGES
from ..core.errors import InputError, require
from ..core.metric_names import delta, higher_is_better
from ..core.model_names import check_model_name
from ..core.options import MITIGATIONS
from ..core.prediction import check_labels, is_torch_model
from ..store import records
from ..store.recorder import Recording
from ..store.tracking import TAG, get_store
from .audits import FairnessResult, _audit_model, audit_predictions, log_audit, write_audit
from .groups import GroupData, check_groups, sensitive_frame
from .mitigated_models import (
    REDUCTION_MOMENTS,
    THRESHOLD_CONSTRAINTS,
    GroupThresholdClassifier,
    ReductionClassifier,
    takes_sample_weight,
)

METHODS = MITIGATIONS
CONSTRAINTS = THRESHOLD_CONSTRAINTS
MITIGATION_FILE = "mitigation.json"


@dataclass
class MitigationResult:
    """A mitigated model, its audit on the same rows as the original's, and its version."""

    method: str
    constraint: str
    model: Any
    before: dict[str, float]
    after: dict[str, float]
    after_audit: FairnessResult
    sensitive: list[str]
    fit_rows: int
    fit_on_audit_data: bool
    details: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    version: int | None = None
    run_id: str | None = None
    parent: str | None = None
    notes: list[str] = field(default_factory=list)
    tracking_uri: str | None = None

    @property
    def ref(self) -> str | None:
        """``name/version`` of the registered mitigated model."""
        return f"{self.name}/{self.version}" if self.version is not None else None

    def comparison(self) -> list[dict[str, Any]]:
        """Before / after rows of accuracy and each disparity, with the change."""
        return [{"metric": m, **delta(self.before.get(m), self.after.get(m)),
                 "higher_is_better": higher_is_better(m)}
                for m in [*self.before, *(k for k in self.after if k not in self.before)]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "constraint": self.constraint,
            "model_class": type(self.model).__name__, "name": self.name,
            "version": self.version, "ref": self.ref, "run_id": self.run_id,
            "parent": self.parent, "sensitive": self.sensitive, "fit_rows": self.fit_rows,
            "fit_on_audit_data": self.fit_on_audit_data, "before": self.before,
            "after": self.after, "comparison": self.comparison(), "details": self.details,
            "after_audit": self.after_audit.to_dict(), "notes": self.notes,
        }


# -- checks ------------------------------------------------------------------------------------
def _check_options(method: str, constraint: str, name: str | None) -> None:
    if method not in METHODS:
        raise InputError(f"--mitigate must be one of {', '.join(METHODS)}; got {method!r}")
    if constraint not in CONSTRAINTS:
        raise InputError(f"--constraint must be one of {', '.join(CONSTRAINTS)}; "
                         f"got {constraint!r}")
    if name is not None:
        check_model_name(name)


def _check_model(model: Any, method: str, task: TaskInfo) -> None:
    cls = type(model).__name__
    if not task.is_classification:
        raise InputError(
            f"--mitigate needs a binary classifier; {cls} is a regression model (its audit shows "
            "per-group errors: drop --mitigate, or reweight / retrain it yourself)")
    if is_torch_model(model):
        raise InputError(f"--mitigate works on scikit-learn classifiers; {cls} is a PyTorch "
                         "module (wrap it in a scikit-learn classifier with predict_proba)")
    if method == "threshold" and not callable(getattr(model, "predict_proba", None)):
        raise InputError(
            f"--mitigate threshold needs predict_proba; {cls} has none: use --mitigate reduction, "
            "or a classifier with probabilities (e.g. SVC(probability=True) or "
            "CalibratedClassifierCV)")
    if method == "reduction" and not takes_sample_weight(model):
        raise InputError(f"--mitigate reduction refits with sample weights and {cls}.fit takes "
                         "no sample_weight; use --mitigate threshold")


def _fit_rows(fit_data: Any, sensitive: Any, groups: GroupData, task: TaskInfo,
              min_group: int) -> tuple[Any, np.ndarray, GroupData]:
    """``(X, y, groups)`` to fit the mitigation on: ``fit_data`` when given."""
    X_fit, y_fit, s_fit = [*fit_data, None, None, None][:3]
    data = check_data(X_fit, y_fit, numeric=False, allow_nan=True, x_name="--fit-data X",
                      y_name="--fit-data y")
    if s_fit is None:
        columns_only = all(isinstance(s, str) for s in _as_list(sensitive))
        if not columns_only:
            raise InputError(
                "the sensitive feature is an array, so --fit-data needs its values for the fit "
                "rows too: --fit-data X_train y_train s_train")
        s_fit = sensitive
    fit_groups = sensitive_frame(data.X, s_fit, data.n_samples, x_name="--fit-data X")
    if len(fit_groups.names) != len(groups.names):
        raise InputError(f"--fit-data has {len(fit_groups.names)} sensitive features; the audit "
                         f"has {len(groups.names)} ({', '.join(groups.names)})")
    check_groups(fit_groups, min_group)
    check_labels(data.y, task, "--fit-data y")
    return data.X, data.y, fit_groups


def _as_list(sensitive: Any) -> list[Any]:
    if isinstance(sensitive, str):
        return [s for s in sensitive.split(",") if s.strip()]
    return list(sensitive) if isinstance(sensitive, list | tuple) else [sensitive]


# -- mitigate ----------------------------------------------------------------------------------
def mitigate(
    model: Any, X: Any, y: Any, *, sensitive: Any, task: str = "auto",
    method: str = "threshold",
    constraint: str = "demographic_parity", name: str | None = None,
    fit_data: tuple[Any, ...] | None = None, seed: int = 0, ci: bool = False,
    n_boot: int = 200, ratio_threshold: float = 0.8, difference_threshold: float = 0.1,
    min_group: int = 20, log: bool = True, settings: Settings | None = None,
    source: dict[str, str] | None = None, model_name: str | None = None, x_name: str = "X",
) -> FairnessResult:
    """Audit ``model``, fit a mitigated model and register it as a new version.

    Parameters
    ----------
    model : fitted scikit-learn classifier (binary)
        Not changed: threshold mitigation copies it, reduction trains clones.
    X, y : array-like or DataFrame
        The audit data; the before / after comparison is made on these rows.
    sensitive : str, sequence or mapping
        As in :func:`~.audits.audit`.
    task : {"auto", "binary", "regression"}
        As in :func:`~.audits.audit`; mitigation needs a binary classifier.
    method : {"threshold", "reduction"}
        fairlearn's ``ThresholdOptimizer`` (per-group thresholds on ``predict_proba``) or
        ``ExponentiatedGradient`` (a reweighted, randomized mixture of retrained clones).
    constraint : {"demographic_parity", "equalized_odds", "true_positive_rate_parity"}
    name : str, optional
        Registered name of the mitigated model (default: the original's name + ``-fair``).
    fit_data : (X_fit, y_fit[, sensitive_fit]), optional
        Rows to fit the mitigation on (training data); the audit data when omitted, which
        makes the "after" numbers optimistic (a note says so).
    seed : int
        Seed of the randomized predictions and of the bootstrap.
    ci, n_boot, ratio_threshold, difference_threshold, min_group
        As in :func:`~.audits.audit`.
    log : bool
        Log the audit on the original's run and register the mitigated model; with ``False``
        nothing is written and the mitigated model is only returned.
    settings : Settings, optional
        Store location.
    source : dict, optional
        ``{"line", "cell"}`` of the magic, recorded with the new version.
    model_name, x_name : str, optional
        The user's names of the model and of ``X``.

    Returns
    -------
    FairnessResult
        The original's audit, with ``mitigation`` (a :class:`MitigationResult`).

    Raises
    ------
    InputError
        Bad options, a model the method cannot mitigate, or bad data; nothing is written then.
    """
    require("fairlearn", extra="fairness", purpose="fairness mitigation")
    _check_options(method, constraint, name)
    before, groups, data = _audit_model(
        model, X, y, sensitive=sensitive, task=task, name=model_name, x_name=x_name, ci=ci,
        n_boot=n_boot, seed=seed, ratio_threshold=ratio_threshold,
        difference_threshold=difference_threshold, min_group=min_group)
    task = before.task
    _check_model(model, method, task)
    link = links.lookup(model)
    name = name or _default_name(link, model_name)
    notes = []
    if fit_data is None:
        X_fit, y_fit, fit_groups = data.X, data.y, groups
        notes.append("the mitigation was fitted on the audit data, so its 'after' numbers are "
                     "optimistic; pass --fit-data X_train y_train to fit on training rows")
    else:
        X_fit, y_fit, fit_groups = _fit_rows(fit_data, sensitive, groups, task, min_group)
    mitigated = _fit(model, method, constraint, groups.names, X_fit, y_fit, fit_groups, seed)
    kwargs = {"sensitive_features": groups.frame} if method == "threshold" else {}
    y_after = mitigated.predict(data.X, **kwargs)
    after = audit_predictions(data.y, y_after, groups, task=task, ci=ci, n_boot=n_boot,
                              seed=seed, ratio_threshold=ratio_threshold,
                              difference_threshold=difference_threshold, min_group=min_group)
    after.model_name = type(mitigated).__name__
    result = MitigationResult(
        method=method, constraint=constraint, model=mitigated, before=dict(before.summary),
        after=dict(after.summary), after_audit=after, sensitive=list(groups.names),
        fit_rows=len(y_fit), fit_on_audit_data=fit_data is None,
        details=_details(mitigated, method, constraint, task, seed), name=name,
        parent=f"{link.name}/{link.version}" if link and link.name and link.version else None,
        notes=notes)
    before.mitigation = result
    if log:
        log_audit(model, before)
        _register(result, X_fit, y_fit, task, settings, source, data.feature_names)
    else:
        result.notes.append("--no-log: the mitigated model was not registered")
    return before


def _default_name(link: Any, model_name: str | None) -> str:
    if link is not None and link.name:
        return f"{link.name}-fair"
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "-", model_name or "").strip("-.") or "model"
    return f"{base[:100]}-fair"


def _fit(model: Any, method: str, constraint: str, names: list[str], X: Any, y: np.ndarray,
         groups: GroupData, seed: int) -> Any:
    if method == "threshold":  # a copy: retraining the notebook's model later changes nothing
        mitigated: Any = GroupThresholdClassifier(copy.deepcopy(model), sensitive=tuple(names),
                                                  constraints=constraint, seed=seed)
    else:
        mitigated = ReductionClassifier(model, sensitive=tuple(names), constraints=constraint,
                                        seed=seed)
    try:
        return mitigated.fit(X, y, sensitive_features=groups.frame)
    except ValueError as exc:  # fairlearn's complaints about these rows (e.g. one label only)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"fairlearn could not fit the {method} mitigation on these rows: "
                         f"{first}") from None


def _details(mitigated: Any, method: str, constraint: str, task: TaskInfo,
             seed: int) -> dict[str, Any]:
    """What ``model/mitigation.json`` records: enough to read (and redo) the mitigation."""
    out: dict[str, Any] = {
        "method": method, "constraint": constraint, "seed": seed,
        "positive_label": task.classes[1], "sensitive": list(mitigated.sensitive),
        "base_model_class": type(mitigated.estimator).__name__,
        "randomized": "predict draws the positive class with probability predict_proba[:, 1], "
                      f"from numpy.random.default_rng({seed})",
    }
    if method == "threshold":
        out["fairlearn"] = "ThresholdOptimizer(prefit=True, predict_method='predict_proba', " \
                           f"constraints={constraint!r}, objective='accuracy_score')"
        out["rules"] = mitigated.rules_
    else:
        out["fairlearn"] = f"ExponentiatedGradient(constraints={REDUCTION_MOMENTS[constraint]}())"
        out["weights"] = list(mitigated.weights_)
        out["members"] = [type(m).__name__ for m in mitigated.estimators_]
    return out


# -- registration ------------------------------------------------------------------------------
def _register(result: MitigationResult, X_fit: Any, y_fit: np.ndarray, task: TaskInfo,
              settings: Settings | None, source: dict[str, str] | None,
              feature_names: list[str] | None) -> None:
    """Record the mitigated model as a run and a new version (FAILED run and no version when
    anything goes wrong)."""
    store = get_store(settings)
    model, name = result.model, result.name
    fp = fingerprint(check_data(X_fit, y_fit, numeric=False, allow_nan=True))
    labels, counts = np.unique(y_fit, return_counts=True)
    fp["class_counts"] = {str(k): int(n) for k, n in zip(labels, counts, strict=True)}
    params = {  # the base model's parameters, so a diff with the original shows the mitigation
        **records.model_params(model.estimator, "sklearn"),
        "fairness.method": json.dumps(result.method),
        "fairness.constraint": json.dumps(result.constraint),
        "fairness.sensitive": json.dumps(result.sensitive),
        "fairness.seed": json.dumps(result.details["seed"]),
        "fairness.fit_rows": json.dumps(result.fit_rows),
    }
    cls = type(model)
    tags = {
        f"{TAG}framework": "sklearn", f"{TAG}model_class": f"{cls.__module__}.{cls.__qualname__}",
        f"{TAG}task": task.task, f"{TAG}classes": json.dumps(list(task.classes)),
        f"{TAG}data.sha256": fp["sha256"], f"{TAG}data.shape": json.dumps(fp["shape"]),
        f"{TAG}seed": str(result.details["seed"]), f"{TAG}name": name,
        f"{TAG}mitigation": result.method, f"{TAG}parent": result.parent,
        f"{TAG}magic": (source or {}).get("line"),
    }
    with Recording.start(store, run_name=name, params=params, tags=tags) as recording:
        run_id = recording.run_id
        recording.log_inputs(fp, source, packages=(*FORMAT_PACKAGES["sklearn"], "fairlearn"))
        with tempfile.TemporaryDirectory(prefix="aimodel-mitigation-") as tmp:
            extra = Path(tmp) / MITIGATION_FILE
            extra.write_text(json.dumps(result.details, indent=2, default=str))
            manifest = {"task": task.to_dict(), "feature_names": feature_names,
                        "mitigation": {k: result.details[k] for k in ("method", "constraint")}}
            recording.save_model(model, manifest=manifest, extra_files={MITIGATION_FILE: extra})
        after = result.after_audit
        after.tracking_uri = store.uri
        write_audit(store, run_id, after)
        result.version = recording.register(name, task=task.task, data_sha256=fp["sha256"],
                                            parent=result.parent)
    result.run_id, result.tracking_uri = run_id, store.uri
    links.remember(model, links.ModelLink(run_id, store.uri, task, "sklearn", name,
                                          result.version,
                                          tuple(feature_names) if feature_names else None))

