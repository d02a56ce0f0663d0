"""Synthetic data with a known, injected disparity: a ground truth for fairness audits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import InputError


def make_biased_classification(
    n: int = 2000,
    *,
    disparity: float = 0.3,
    base_rate: float = 0.5,
    group_share: float = 0.5,
    n_features: int = 4,
    separation: float = 2.0,
    seed: int = 0,
) -> tuple[Any, np.ndarray]:
    """Binary labels whose positive rate differs between two groups by exactly ``disparity``.

    Each row belongs to group 1 (the favoured group, a share ``group_share`` of the rows) or
    group 0. Labels are drawn with ``P(y=1 | group=1) = base_rate + disparity / 2`` and
    ``P(y=1 | group=0) = base_rate - disparity / 2``, so the demographic parity difference of
    the labels is ``disparity`` in expectation. Feature ``f0`` is ``±separation`` (by label)
    plus standard normal noise, so a model predicts the label well (about 98 % accuracy at the
    default ``separation``) and inherits the disparity; the other features are noise. The
    ``group`` column is not needed to predict the label.

    Parameters
    ----------
    n : int
        Rows.
    disparity : float
        Injected difference of positive rates between the groups, in ``[0, 1)``.
    base_rate : float
        Mean of the two groups' positive rates.
    group_share : float
        Share of rows in group 1, in ``(0, 1)``.
    n_features : int
        Numeric features ``f0 ... f{n_features-1}`` (at least 1).
    separation : float
        Distance of ``f0`` from 0 for each label: larger makes the labels easier to predict.
    seed : int
        Seed of every random draw: the same arguments give the same data.

    Returns
    -------
    X : pandas.DataFrame
        Columns ``f0 ... f{n_features-1}`` (float) and ``group`` (int, 0 or 1).
    y : numpy.ndarray of int
        Labels 0 / 1.

    Raises
    ------
    InputError
        Rates outside ``[0, 1]``, a group share outside ``(0, 1)``, or fewer than 2 rows.
    """
    import pandas as pd

    rates = (base_rate - disparity / 2, base_rate + disparity / 2)
    if not 0 <= disparity < 1 or not all(0 <= r <= 1 for r in rates):
        raise InputError(f"disparity {disparity} with base_rate {base_rate} gives group rates "
                         f"{rates[0]:.3g} and {rates[1]:.3g}; both must lie in [0, 1]")
    if not 0 < group_share < 1:
        raise InputError(f"group_share must be in (0, 1); got {group_share}")
    if n < 2 or n_features < 1:
        raise InputError(f"need n >= 2 and n_features >= 1; got n={n}, n_features={n_features}")
    rng = np.random.default_rng(seed)
    group = (rng.random(n) < group_share).astype(np.int64)
    y = (rng.random(n) < np.where(group == 1, rates[1], rates[0])).astype(np.int64)
    features = rng.standard_normal((n, n_features))
    features[:, 0] += separation * (2 * y - 1)
    X = pd.DataFrame(features, columns=[f"f{i}" for i in range(n_features)])
    X["group"] = group
    return X, y
