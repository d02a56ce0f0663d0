"""LIME for one row: a seeded ``LimeTabularExplainer`` whose weights come back in the same shape
as SHAP values (one per feature), so the two can be set side by side. ``lime`` is imported here,
inside the function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.data import TaskInfo
from ..core.errors import require
from .choice import score_function

NUM_SAMPLES = 5000


@dataclass
class LimeValues:
    """One row's LIME explanation, laid out like SHAP values."""

    values: np.ndarray  # (1, n_features): the local linear model's weights
    base_value: float  # its intercept
    conditions: list[str]  # per feature, the rule LIME weighed ("" when it has no weight)
    score: float  # R² of the local fit
    local_prediction: float  # the local model's prediction for the row
    space: str  # "probability" or "prediction"


def lime_values(
    est: Any, row: np.ndarray, background: np.ndarray, task: TaskInfo, label: Any,
    feature_names: list[str], *, seed: int = 0, is_torch: bool = False,
    num_samples: int = NUM_SAMPLES,
) -> LimeValues:
    """LIME weights of every feature for one row.

    Parameters
    ----------
    est : fitted estimator or torch.nn.Module
        The model as the explanation space sees it (a pipeline's final step).
    row : np.ndarray of shape (1, n_features)
    background : np.ndarray of shape (m, n_features)
        Rows whose statistics LIME samples perturbations from.
    task : TaskInfo
    label : class label to explain (``None`` for regression)
    feature_names : list of str
    seed : int
        LIME's ``random_state``.
    is_torch : bool
    num_samples : int
        Perturbed samples LIME fits its local model on.

    Returns
    -------
    LimeValues

    Raises
    ------
    MissingDependency
        ``lime`` is not installed.
    InputError
        A classifier without ``predict_proba``.
    """
    lime_tabular = require("lime.lime_tabular", extra="explain", purpose="LIME explanations",
                           package="lime")
    f, labels, space = score_function(est, task, is_torch=is_torch, proba_only=True)
    classification = task.is_classification
    explainer = lime_tabular.LimeTabularExplainer(
        np.asarray(background, float), mode="classification" if classification else "regression",
        feature_names=list(feature_names),
        class_names=[str(c) for c in labels] if classification else None,
        discretize_continuous=True, random_state=seed,
    )
    key = labels.index(label) if classification else 1
    explanation = explainer.explain_instance(
        np.asarray(row, float)[0], f, labels=(key,), num_features=len(feature_names),
        num_samples=num_samples,
    )
    weights = np.zeros((1, len(feature_names)))
    conditions = [""] * len(feature_names)
    for (j, weight), (rule, _) in zip(explanation.as_map()[key], explanation.as_list(label=key),
                                      strict=True):
        weights[0, int(j)] = float(weight)
        conditions[int(j)] = rule
    local = np.asarray(explanation.local_pred, float).reshape(-1)
    return LimeValues(weights, float(explanation.intercept[key]), conditions,
                      float(explanation.score), float(local[0]) if local.size else float("nan"),
                      space)
