"""Which SHAP explainer suits a model, and its values for the rows asked about.

``TreeExplainer`` for tree ensembles (scikit-learn trees, forests and boosting; XGBoost, LightGBM
and CatBoost models), ``LinearExplainer`` for linear models, ``DeepExplainer`` (DeepLIFT, a
gradient-based method) for PyTorch modules, and a model-agnostic ``PermutationExplainer`` on a
bounded, seeded background sample for everything else. A scikit-learn ``Pipeline`` is explained
in the feature space its final step sees: the earlier steps transform the rows and name the
features (``get_feature_names_out``), and the explainer is chosen for the final step.

shap and torch are imported inside functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.data import TaskInfo
from ..core.errors import InputError, require
from ..core.plain import plain

KINDS = ("tree", "linear", "gradient", "permutation", "kernel")
NAMES = {"tree": "TreeExplainer", "linear": "LinearExplainer", "gradient": "DeepExplainer",
         "permutation": "PermutationExplainer", "kernel": "KernelExplainer"}
BACKGROUND = {"tree": 0, "linear": 100, "gradient": 100, "permutation": 50, "kernel": 50}
SLOW = ("gradient", "permutation", "kernel")  # cost grows per row: timed, and warned about
WARN_ROWS = 200  # a slow explainer on more rows than this warns with the expected time
WARN_SECONDS = 30.0  # ... as does one expected to take longer than this
_TREE_MODULES = ("xgboost", "lightgbm", "catboost")


class SlowExplanationWarning(UserWarning):
    """A model-agnostic or per-row explainer is about to take a while; says how long."""


@dataclass
class Choice:
    """The explainer picked for a model, and why."""

    kind: str
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return NAMES[self.kind]


def shap_module() -> Any:
    return require("shap", extra="explain", purpose="SHAP explanations")


def split_pipeline(model: Any) -> tuple[Any, Any | None]:
    """``(final estimator, earlier steps)`` of a scikit-learn Pipeline; ``(model, None)`` else."""
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or len(steps) < 2:
        return model, None
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return model, None
    final = steps[-1][1]
    if final is None or final == "passthrough":
        return model, None
    return final, model[:-1]


def _is_tree(est: Any) -> bool:
    if type(est).__module__.split(".")[0] in _TREE_MODULES:
        return True
    from sklearn import ensemble, tree

    kinds = (tree.BaseDecisionTree, ensemble.RandomForestClassifier, ensemble.RandomForestRegressor,
             ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor,
             ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor,
             ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor,
             ensemble.IsolationForest)
    return isinstance(est, kinds)


def _is_linear(est: Any) -> bool:
    module = type(est).__module__
    linear = module.startswith("sklearn.linear_model") or type(est).__name__ in (
        "LinearSVC", "LinearSVR")
    return linear and hasattr(est, "coef_") and hasattr(est, "intercept_")


def choose(est: Any, method: str = "auto", *, is_torch: bool = False) -> Choice:
    """The explainer for ``est`` (a model, or a pipeline's final step).

    Parameters
    ----------
    est : fitted estimator or torch.nn.Module
    method : {"auto", "tree", "linear", "gradient", "permutation", "kernel"}
        ``auto`` picks by model type; any other value is checked against the model.
    is_torch : bool
        ``est`` is a PyTorch module.

    Returns
    -------
    Choice

    Raises
    ------
    InputError
        A method that does not fit the model (``tree`` for a linear model, ...).
    """
    cls = type(est).__name__
    if method in ("permutation", "kernel"):
        return Choice(method, f"--method {method} (model-agnostic)")
    if is_torch:
        if method not in ("auto", "gradient"):
            raise InputError(f"--method {method} does not fit {cls}, a PyTorch module; use "
                             "gradient (the default), permutation or kernel")
        return Choice("gradient", f"{cls} is a PyTorch module: DeepLIFT gradients")
    if method == "gradient":
        raise InputError(f"--method gradient is for PyTorch modules; {cls} is not one (use auto)")
    if method == "tree" or (method == "auto" and _is_tree(est)):
        return Choice("tree", f"{cls} is a tree model" if _is_tree(est) else "--method tree")
    if method == "linear" and not _is_linear(est):
        raise InputError(f"--method linear needs a linear model with coef_; {cls} is not one")
    if _is_linear(est):
        return Choice("linear", f"{cls} is a linear model")
    return Choice("permutation", f"{cls} is neither a tree nor a linear model: model-agnostic "
                                 "fallback")


# -- the model's outputs ---------------------------------------------------------------------
def _frame_for(est: Any) -> Callable[[np.ndarray], Any]:
    """Rows as the estimator was fitted: a DataFrame with its column names when it has them."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        return lambda Z: Z
    import pandas as pd

    return lambda Z: pd.DataFrame(Z, columns=names)


def score_function(est: Any, task: TaskInfo, *, is_torch: bool, proba_only: bool = False):
    """``(f, output_labels, space)``: what a model-agnostic explainer calls on rows.

    Classification uses ``predict_proba`` (one output per class), else ``decision_function``;
    regression ``predict``. PyTorch modules give softmax probabilities.

    Raises
    ------
    InputError
        A classifier without the scores the method needs.
    """
    if is_torch:
        from ..core.prediction import predict

        if not task.is_classification:
            return (lambda Z: predict(est, Z, task=task).y_pred), [None], "prediction"
        return (lambda Z: predict(est, Z, task=task).y_score), list(task.classes), "probability"
    frame = _frame_for(est)
    if not task.is_classification:
        return (lambda Z: np.asarray(est.predict(frame(Z)), float)), [None], "prediction"
    labels = [plain(c) for c in np.asarray(est.classes_).tolist()]
    if hasattr(est, "predict_proba"):
        return (lambda Z: est.predict_proba(frame(Z))), labels, "probability"
    cls = type(est).__name__
    if proba_only:
        raise InputError(f"{cls} has no predict_proba, which LIME needs for a classifier; use "
                         "--method auto (SHAP) or a model with probabilities (e.g. "
                         "SVC(probability=True))")
    if hasattr(est, "decision_function"):
        out = labels if len(labels) > 2 else labels[1:]
        return (lambda Z: est.decision_function(frame(Z))), out, "decision function"
    raise InputError(f"{cls} has neither predict_proba nor decision_function: there is no "
                     "score to explain")

