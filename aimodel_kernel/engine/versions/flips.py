"""Behaviour comparisons of two versions, on plain data: prediction flips on given rows (and the
input checks they need), metric directions, importance-ranking shifts, fairness and compression
deltas. Used by :func:`~aimodel_kernel.engine.versions.diff.diff_versions`; no store access here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.batches import split_item
from ..core.data import (
    Data,
    TaskInfo,
    check_data,
    is_dataset,
    is_frame,
    is_loader,
    is_sparse,
    to_numpy,
)
from ..core.errors import InputError
from ..core.inputs import check_columns
from ..core.kinds import is_hf_dataset
from ..core.nested import is_nested, leaves
from ..core.plain import plain

REGRESSION_RTOL = 1e-6
REGRESSION_ATOL = 1e-9



def feature_layout(X: Any) -> tuple[list[int], list[str] | None]:
    """The per-row shape of ``X`` and its column names (DataFrames only)."""
    if is_loader(X) or is_dataset(X):
        dataset = X.dataset if is_loader(X) else X
        first = dataset[0]
        first = first[0] if isinstance(first, tuple | list) else first
        return list(to_numpy(first).shape), None
    if is_frame(X):
        frame = X.to_frame() if X.ndim == 1 else X
        return [frame.shape[1]], [str(c) for c in frame.columns]
    if is_sparse(X):
        return list(X.shape[1:]), None
    shape = getattr(X, "shape", None)
    return list(shape[1:] if shape is not None else np.shape(X)[1:]), None


def check_features(X: Any, ref: str, recorded: dict[str, Any], x_name: str = "X") -> None:
    """Raise :class:`InputError` unless ``X`` has the columns / feature shape ``ref`` trained on.

    Parameters
    ----------
    X : array-like, DataFrame, sparse matrix, tensor, Dataset or DataLoader
    ref : str
        The version, named in the message.
    recorded : dict
        The version's data fingerprint (``shape``, ``columns``).
    """
    given, trained = input_layout(X), recorded.get("inputs")
    if given is not None or trained:
        _check_inputs(given, trained, ref, recorded, x_name)
        return
    row_shape, columns = feature_layout(X)
    check_columns(columns, recorded.get("columns"), x_name=x_name, model=ref)
    want_shape = list(recorded.get("shape") or [])[1:]
    if want_shape and row_shape != want_shape:
        raise InputError(
            f"{x_name} has rows of shape {tuple(row_shape)} ({_count(row_shape)} features) but "
            f"{ref} was trained on rows of shape {tuple(want_shape)} ({_count(want_shape)} "
            "features)"
        )


def input_layout(X: Any) -> dict[str, tuple[list[int], str]] | None:
    """``{input name: (row shape, dtype kind)}`` of several inputs (a tuple or dict X, or a
    Dataset whose items hold several), named as fingerprints name them (``X['input_ids']``,
    ``X[0]``); ``None`` for one input."""
    if is_loader(X) or is_dataset(X) or is_hf_dataset(X):
        dataset = X.dataset if is_loader(X) else X
        first = split_item(dataset[0])[0]
        if not is_nested(first):
            return None
        return {name: (list(to_numpy(leaf).shape), to_numpy(leaf).dtype.kind)
                for name, leaf in leaves(first)}
    if not is_nested(X):
        return None
    return {name: (list(to_numpy(leaf).shape[1:]), to_numpy(leaf).dtype.kind)
            for name, leaf in leaves(X)}


def _check_inputs(given: dict[str, tuple[list[int], str]] | None,
                  trained: dict[str, list[int]] | None, ref: str, recorded: dict[str, Any],
                  x_name: str) -> None:
    """Several inputs against what ``ref`` trained on: the same names; the same row shape for
    floating inputs (token ids may be padded to another length)."""
    if given is None:
        raise InputError(f"{x_name} is one input but {ref} was trained on several "
                         f"({', '.join(trained or {})}); pass them as it was")
    if trained is None:
        if recorded.get("shape"):  # trained on one array of rows
            raise InputError(f"{x_name} is several inputs ({', '.join(given)}) but {ref} was "
                             f"trained on one, of rows of shape "
                             f"{tuple(recorded['shape'][1:])}")
        return
    missing = [n for n in trained if n not in given]
    if missing:
        raise InputError(f"{x_name} lacks {', '.join(missing)}, which {ref} was trained on "
                         f"(it has {', '.join(given)})")
    for name, (shape, kind) in given.items():
        want = trained.get(name)
        if want is not None and kind in "fc" and list(want) != shape:
            raise InputError(f"{name} has rows of shape {tuple(shape)} but {ref} was trained "
                             f"on rows of shape {tuple(want)}")


def _count(shape: list[int]) -> int:
    return int(np.prod(shape)) if shape else 1


def check_rows(X: Any, y: Any, *, numeric: bool, allow_nan: bool) -> Data:
    """Validate ``X`` (and ``y``: one per row) for prediction; targets of a Dataset are read."""
    if X is None:
        if y is not None:
            raise InputError("y was given without X: pass the rows to predict on as well")
        raise InputError("no rows given to compare predictions on")
    return check_data(X, y, numeric=numeric, allow_nan=allow_nan, require_y=False)


def check_tasks(ref_a: str, task_a: TaskInfo, ref_b: str, task_b: TaskInfo) -> None:
    """Raise :class:`InputError` when one version classifies and the other regresses."""
    if task_a.is_classification != task_b.is_classification:
        raise InputError(
            f"cannot compare predictions of {ref_a} ({task_a.task}) with {ref_b} "
            f"({task_b.task}): one is a classifier and the other a regressor"
        )


def _positions(values: np.ndarray, index: dict[Any, int], missing: int = -1) -> np.ndarray:
    """Each value's position in ``index`` (``missing`` when absent), via the unique values."""
    uniq, inverse = np.unique(values, return_inverse=True)
    lookup = np.array([index.get(plain(v), missing) for v in uniq], dtype=np.int64)
    return lookup[inverse.reshape(-1)]


def classification_flips(
    pred_a: np.ndarray, pred_b: np.ndarray, labels: list[Any], y: np.ndarray | None = None
) -> dict[str, Any]:
    """Rows whose predicted class changed from ``pred_a`` to ``pred_b``.

    Parameters
    ----------
    pred_a, pred_b : ndarray of shape (n,)
        Class predictions of version A and B.
    labels : list
        Class labels (rows and columns of the flip matrix); predicted values outside it are added.
    y : ndarray of shape (n,), optional
        True labels: counts flips that fixed or broke a correct prediction.

    Returns
    -------
    dict
        ``n_rows``, ``n_flipped``, ``labels``, ``matrix`` (A's class -> B's class counts),
        ``indices`` (all changed rows), and with ``y`` ``fixed``, ``broke``, ``still_wrong``,
        ``accuracy_a``, ``accuracy_b``.
    """
    labels = [plain(c) for c in labels]
    for extra in (np.unique(pred_a), np.unique(pred_b)):
        labels += [v for v in (plain(c) for c in extra) if v not in labels]
    index = {c: i for i, c in enumerate(labels)}
    ia, ib = _positions(pred_a, index), _positions(pred_b, index)
    flipped = ia != ib
    k = len(labels)
    matrix = np.bincount(ia[flipped] * k + ib[flipped], minlength=k * k).reshape(k, k)
    out: dict[str, Any] = {
        "kind": "classification",
        "n_rows": len(ia),
        "n_flipped": int(flipped.sum()),
        "labels": labels,
        "matrix": matrix.tolist(),
        "indices": np.flatnonzero(flipped).tolist(),
    }
    if y is not None:
        iy = _positions(np.asarray(y), index, missing=-2)
        ok_a, ok_b = ia == iy, ib == iy
        out.update(
            fixed=int((flipped & ok_b).sum()),
            broke=int((flipped & ok_a).sum()),
            still_wrong=int((flipped & ~ok_a & ~ok_b).sum()),
            accuracy_a=float(ok_a.mean()),
            accuracy_b=float(ok_b.mean()),
        )
    return out


def regression_changes(
    pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray | None = None
) -> dict[str, Any]:
    """Rows whose predicted value changed (beyond float noise) from ``pred_a`` to ``pred_b``.

    Returns
    -------
    dict
        ``n_rows``, ``n_flipped`` (changed rows), ``indices``, ``mean_abs_change``,
        ``max_abs_change``, and with ``y`` ``improved``, ``worsened``, ``rmse_a``, ``rmse_b``.
    """
    a, b = np.asarray(pred_a, float), np.asarray(pred_b, float)
    changed = ~np.isclose(a, b, rtol=REGRESSION_RTOL, atol=REGRESSION_ATOL)
    change = np.abs(b - a)
    out: dict[str, Any] = {
        "kind": "regression",
        "n_rows": len(a),
        "n_flipped": int(changed.sum()),
        "indices": np.flatnonzero(changed).tolist(),
        "mean_abs_change": float(change.mean()) if len(a) else 0.0,
        "max_abs_change": float(change.max()) if len(a) else 0.0,
    }
    if y is not None:
        yt = np.asarray(y, float)
        err_a, err_b = np.abs(a - yt), np.abs(b - yt)
        out.update(
            improved=int((changed & (err_b < err_a)).sum()),
            worsened=int((changed & (err_b > err_a)).sum()),
            rmse_a=float(np.sqrt(np.mean(err_a**2))),
            rmse_b=float(np.sqrt(np.mean(err_b**2))),
        )
    return out


def union_labels(task_a: TaskInfo, task_b: TaskInfo) -> list[Any]:
    """A's classes, then B's classes A does not have."""
    labels = list(task_a.classes)
    return labels + [c for c in task_b.classes if c not in labels]


def compare_predictions(
    pred_a: np.ndarray, pred_b: np.ndarray, task_a: TaskInfo, task_b: TaskInfo,
    y: np.ndarray | None = None,
) -> dict[str, Any]:
    """Flips (classification) or changed values (regression) between two prediction arrays."""
    if task_a.is_classification:
        return classification_flips(pred_a, pred_b, union_labels(task_a, task_b), y)
    return regression_changes(pred_a, pred_b, y)



# -- metric conventions --------------------------------------------------------------------------


# -- metrics and evaluation reports ------------------------------------------------------------


# -- summary parts ----------------------------------------------------------------------


def flip_text(f: dict[str, Any]) -> str:
    """The summary's flips part, e.g. ``37 of 360 predictions flipped (29 fixed, 8 broke)``."""
    n, k = f["n_rows"], f["n_flipped"]
    if f["kind"] == "regression":
        text = f"{k:,} of {n:,} predictions changed (mean |change| {f['mean_abs_change']:.3g})"
        if "improved" in f:
            text += f" ({f['improved']:,} closer, {f['worsened']:,} further from y)"
        return text
    text = f"{k:,} of {n:,} predictions flipped"
    if "fixed" in f:
        text += f" ({f['fixed']:,} fixed, {f['broke']:,} broke)"
    return text
