"""Mitigated classifiers that skops can save: what fairlearn learns, kept in plain attributes.

fairlearn's ``ThresholdOptimizer`` and ``ExponentiatedGradient`` hold pandas objects that skops
cannot write (``TypeError: no default __reduce__`` from pandas' internals), and pickle is not an
option. These two estimators fit with fairlearn and keep only numbers, strings and scikit-learn
estimators, so a mitigated model is saved and loaded pickle-free like any other version.

Both predict as fairlearn does: a randomized choice whose probability of the positive class is
``predict_proba(X)[:, 1]``. The random draws are seeded (``seed``), so the same rows in the same
order always get the same predictions.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from ..core.errors import InputError
from ..core.options import FAIRNESS_CONSTRAINTS
from .groups import sensitive_frame

THRESHOLD_CONSTRAINTS = FAIRNESS_CONSTRAINTS  # what --constraint takes (defined with the flags)
REDUCTION_MOMENTS = {"demographic_parity": "DemographicParity",
                     "equalized_odds": "EqualizedOdds",
                     "true_positive_rate_parity": "TruePositiveRateParity"}


def _binary(y: Any, classes: np.ndarray) -> np.ndarray:
    """Labels as 0 / 1, 1 for the positive class ``classes[1]`` (what fairlearn requires)."""
    return (np.asarray(y) == classes[1]).astype(np.int64)


def _draw(p_positive: np.ndarray, classes: np.ndarray, seed: int) -> np.ndarray:
    """The randomized prediction: positive with probability ``p_positive``, seeded."""
    u = np.random.default_rng(seed).random(len(p_positive))
    return classes[(p_positive >= u).astype(np.int64)]


class GroupThresholdClassifier(ClassifierMixin, BaseEstimator):
    """Per-group (randomized) thresholds on a fitted classifier's probability of the positive
    class, learnt by fairlearn's ``ThresholdOptimizer`` (``prefit=True``,
    ``predict_method="predict_proba"``).

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
        The model to post-process; never refitted (``estimator_`` is this object).
    sensitive : list of str
        Names of the sensitive features; at predict time they are read from the columns of
        ``X`` unless ``sensitive_features`` is passed.
    constraints : str
        ``demographic_parity``, ``equalized_odds`` or ``true_positive_rate_parity``.
    objective : str
        What the thresholds maximise under the constraint (``accuracy_score``).
    seed : int
        Seed of the randomized predictions.

    Attributes
    ----------
    rules_ : dict
        Group label -> ``{"p0", "operator0", "threshold0", "p1", "operator1", "threshold1"}``
        (and ``p_ignore``, ``prediction_constant`` when fairlearn set them): with probability
        ``p0`` predict positive when ``score operator0 threshold0``, else use rule 1. Rows of a
        group not seen in ``fit`` keep the base model's prediction.
    classes_ : ndarray
        The base model's classes; ``classes_[1]`` is the positive class.
    """

    def __init__(self, estimator: Any = None, *, sensitive: tuple[str, ...] = (),
                 constraints: str = "demographic_parity", objective: str = "accuracy_score",
                 seed: int = 0) -> None:
        self.estimator = estimator
        self.sensitive = sensitive
        self.constraints = constraints
        self.objective = objective
        self.seed = seed

    def _groups(self, X: Any, sensitive_features: Any) -> np.ndarray:
        source = sensitive_features if sensitive_features is not None else list(self.sensitive)
        try:
            return sensitive_frame(X, source, len(X), x_name="X").labels
        except InputError as exc:
            if sensitive_features is not None:
                raise
            raise InputError(f"this model sets thresholds by {list(self.sensitive)}: {exc}; or "
                             "pass sensitive_features=") from None

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> GroupThresholdClassifier:
        """Learn the thresholds on ``X, y`` with fairlearn (the base model stays as it is)."""
        from fairlearn.postprocessing import ThresholdOptimizer

        base = self.estimator  # prefit, as in fairlearn: the same object, never refitted
        classes = np.asarray(base.classes_)
        labels = self._groups(X, sensitive_features)
        optimizer = ThresholdOptimizer(estimator=base, constraints=self.constraints,
                                       objective=self.objective, prefit=True,
                                       predict_method="predict_proba")
        optimizer.fit(X, _binary(y, classes), sensitive_features=labels)
        rules = {str(group): rule for group, rule in _interpolation_items(optimizer)}
        self.estimator_, self.classes_, self.rules_ = base, classes, rules
        return self

    def predict_proba(self, X: Any, *, sensitive_features: Any = None) -> np.ndarray:
        """Probability of each class under the randomized thresholds, ``classes_`` order."""
        score = np.asarray(self.estimator_.predict_proba(X), dtype=float)[:, 1]
        labels = self._groups(X, sensitive_features)
        p = (score >= 0.5).astype(float)  # groups not seen in fit: the base model's prediction
        for group, r in self.rules_.items():
            rows = labels == group
            if not rows.any():
                continue
            s = score[rows]
            value = r["p0"] * _compare(s, r["operator0"], r["threshold0"]) + r["p1"] * _compare(
                s, r["operator1"], r["threshold1"])
            if "p_ignore" in r:
                value = r["p_ignore"] * r["prediction_constant"] + (1 - r["p_ignore"]) * value
            p[rows] = value
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any, *, sensitive_features: Any = None) -> np.ndarray:
        """Seeded randomized predictions (class labels)."""
        p = self.predict_proba(X, sensitive_features=sensitive_features)[:, 1]
        return _draw(p, self.classes_, self.seed)


def _compare(score: np.ndarray, operator: str, threshold: float) -> np.ndarray:
    return (score > threshold if operator == ">" else score < threshold).astype(float)


def _rule(bunch: Any) -> dict[str, Any]:
    """One group's interpolation (a fairlearn ``Bunch`` of ``ThresholdOperation``) as numbers."""
    rule = {"p0": float(bunch["p0"]), "operator0": bunch["operation0"].operator,
            "threshold0": float(bunch["operation0"].threshold), "p1": float(bunch["p1"]),
            "operator1": bunch["operation1"].operator,
            "threshold1": float(bunch["operation1"].threshold)}
    if "p_ignore" in bunch:
        rule["p_ignore"] = float(bunch["p_ignore"])
        rule["prediction_constant"] = float(bunch["prediction_constant"])
    return rule


def _interpolation_items(optimizer: Any):
    thresholder = optimizer.interpolated_thresholder_
    return ((group, _rule(bunch)) for group, bunch in thresholder.interpolation_dict.items())



class ReductionClassifier(ClassifierMixin, BaseEstimator):
    """A randomized mixture of classifiers trained by fairlearn's ``ExponentiatedGradient``
    under a fairness constraint (scikit-learn estimators that take ``sample_weight``).

    Parameters
    ----------
    estimator : scikit-learn classifier (or a Pipeline ending in one)
        Cloned and refitted on reweighted data; the given object is not changed.
    sensitive : list of str
        Names of the sensitive features, read from the columns of ``X`` in ``fit`` unless
        ``sensitive_features`` is passed. Predicting does not need them.
    constraints : str
        ``demographic_parity``, ``equalized_odds`` or ``true_positive_rate_parity``.
    eps, max_iter : float, int
        fairlearn's allowed constraint violation and iteration limit.
    seed : int
        Seed of the randomized predictions.

    Attributes
    ----------
    estimators_ : list
        The fitted classifiers with a non-zero weight.
    weights_ : list of float
        Their weights (summing to 1): the probability each one makes a row's prediction.
    classes_ : ndarray
        The labels of ``y``; ``classes_[1]`` is the positive class.
    """

    def __init__(self, estimator: Any = None, *, sensitive: tuple[str, ...] = (),
                 constraints: str = "demographic_parity", eps: float = 0.01,
                 max_iter: int = 50, seed: int = 0) -> None:
        self.estimator = estimator
        self.sensitive = sensitive
        self.constraints = constraints
        self.eps = eps
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> ReductionClassifier:
        """Train the mixture with fairlearn's ``ExponentiatedGradient``."""
        from fairlearn import reductions

        classes = np.unique(np.asarray(y))
        if len(classes) != 2:
            raise InputError(f"the reduction needs two classes in y; it has {len(classes)}")
        source = sensitive_features if sensitive_features is not None else list(self.sensitive)
        labels = sensitive_frame(X, source, len(X), x_name="X").labels
        moment = getattr(reductions, REDUCTION_MOMENTS[self.constraints])()
        reduction = reductions.ExponentiatedGradient(
            clone(self.estimator), constraints=moment, eps=self.eps, max_iter=self.max_iter,
            sample_weight_name=sample_weight_name(self.estimator))
        reduction.fit(X, _binary(y, classes), sensitive_features=labels)
        weights = reduction.weights_
        kept = [(reduction.predictors_[i], float(weights[i])) for i in weights.index
                if weights[i] > 0]
        total = sum(w for _, w in kept)
        self.estimators_ = [est for est, _ in kept]
        self.weights_ = [w / total for _, w in kept]
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each class: the weight of the members that predict it."""
        p = np.zeros(len(X))
        for est, w in zip(self.estimators_, self.weights_, strict=True):
            p += w * (np.asarray(est.predict(X)) == 1)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Seeded randomized predictions (class labels)."""
        return _draw(self.predict_proba(X)[:, 1], self.classes_, self.seed)


def sample_weight_name(estimator: Any) -> str:
    """``sample_weight``, or ``<last step>__sample_weight`` for a Pipeline."""
    steps = getattr(estimator, "steps", None)
    return f"{steps[-1][0]}__sample_weight" if steps else "sample_weight"


def takes_sample_weight(estimator: Any) -> bool:
    """Whether ``fit`` of the (final step of the) estimator accepts ``sample_weight``."""
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    try:
        return "sample_weight" in inspect.signature(final.fit).parameters
    except (TypeError, ValueError):
        return False
