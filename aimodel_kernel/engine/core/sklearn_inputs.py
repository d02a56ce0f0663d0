"""A scikit-learn estimator against its rows: rows × features, numbers unless it encodes its
input, sparse only where accepted, the fitted width and columns; a refusal of scikit-learn's own
checks as one line (:func:`refusals`). scikit-learn is imported only for its own models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .data import Data, to_numpy
from .errors import InputError
from .messages import first_line
from .messages import label as label_of


# -- columns -----------------------------------------------------------------------------------
def _few(names: list[Any], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', …' if len(names) > limit else ''}] ({len(names)})"


def column_difference(columns: list[str], trained: list[str]) -> str:
    """How ``columns`` differ from ``trained``: what is missing, what is new, or the order."""
    missing = [c for c in trained if c not in columns]
    extra = [c for c in columns if c not in trained]
    if not missing and not extra:
        return "the same columns in a different order"
    return ", ".join(part for part in (
        f"missing {_few(missing)}" if missing else "",
        f"not trained on {_few(extra)}" if extra else "",
    ) if part)


def check_columns(columns: list[str] | None, trained: Any, *, x_name: str, model: str) -> None:
    """Raise :class:`InputError` when the DataFrame columns ``columns`` are not the columns
    ``model`` (a name for the message) was trained on, in the same order."""
    if columns is None or trained is None:
        return
    trained = [str(c) for c in trained]
    if not trained or columns == trained:
        return
    raise InputError(
        f"{x_name} has columns {_few(columns)} but {model} was trained on {_few(trained)} "
        f"({column_difference(columns, trained)}); pass the columns it was trained on, in that "
        "order")


# -- scikit-learn ------------------------------------------------------------------------------
def refused(model: Any, exc: BaseException, *, x_name: str = "X",
            name: str | None = None) -> InputError:
    """The one-line error for an estimator whose own checks refused ``x_name``."""
    return InputError(f"{label_of(model, name)} cannot take {x_name}: {first_line(exc)}")


@contextlib.contextmanager
def refusals(model: Any, *, x_name: str = "X", name: str | None = None) -> Iterator[None]:
    """Turn a ``ValueError`` from the library inside the block (scikit-learn's own input
    checks) into one-line :class:`InputError`; ours pass through unchanged."""
    try:
        yield
    except InputError:
        raise
    except ValueError as exc:
        raise refused(model, exc, x_name=x_name, name=name) from None


_WRAPPED = ("estimator", "base_estimator", "best_estimator_", "estimator_")


def encodes_its_input(model: Any, depth: int = 0) -> bool:
    """Whether ``model`` may take non-numeric or one-dimensional input: a Pipeline /
    ColumnTransformer / FeatureUnion (its first steps encode), an estimator that takes text,
    or a wrapper of one (search, calibration, a mitigated model)."""
    if any(hasattr(model, a) for a in ("steps", "transformers", "transformer_list")):
        return True
    try:
        from sklearn.utils import get_tags

        tags = get_tags(model).input_tags
        if tags.string or tags.dict or not tags.two_d_array:
            return True
    except Exception:  # not a scikit-learn estimator: its own rules
        return True
    if depth < 3:
        for attr in _WRAPPED:
            inner = getattr(model, attr, None)
            if inner is not None and inner is not model and hasattr(inner, "fit") \
                    and encodes_its_input(inner, depth + 1):
                return True
    return False


def _takes_sparse(model: Any) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(model).input_tags.sparse)
    except Exception:
        return True


def _takes_categories(model: Any) -> bool:
    """Estimators with a ``categorical_features`` parameter (histogram gradient boosting, ...)
    read pandas categories themselves."""
    try:
        return "categorical_features" in model.get_params(deep=False)
    except Exception:
        return False


def _non_numeric(X: Any, kind: str, categories: bool = False) -> list[str]:
    """Columns (or the dtype) of ``X`` that a numeric estimator cannot take."""
    if kind == "frame":
        frame = X.to_frame() if X.ndim == 1 else X
        bad = []
        for column, dtype in frame.dtypes.items():
            if dtype.kind in "biuf" or (categories and str(dtype) == "category"):
                continue
            if dtype.kind == "O" and not _all_numbers(frame[column]):
                bad.append(f"{column!r}")
            elif dtype.kind != "O":
                bad.append(f"{column!r} ({dtype})")
        return bad
    if kind in ("sparse", "tensor"):
        return []
    arr = to_numpy(X)
    if arr.dtype.kind in "USVmM" or (arr.dtype.kind == "O" and not _all_numbers(arr)):
        return [f"dtype {arr.dtype}"]
    return []


def _all_numbers(values: Any) -> bool:
    try:
        np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def check_sklearn_rows(model: Any, data: Data, *, name: str | None, x_name: str,
                   fitting: bool) -> None:
    label = label_of(model, name)
    if getattr(model, "takes_nested_inputs", False) and (
            data.kind == "nested" or data.is_torch_data):
        return  # an ONNX export of a PyTorch model: its inputs by name, batch by batch
    if data.is_torch_data or data.kind == "nested":
        raise InputError(f"{label} is a scikit-learn model: pass {x_name} as an array or "
                         f"DataFrame, not a torch {data.kind}")
    X, kind = data.X, data.kind
    shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(to_numpy(X))
    if not encodes_its_input(model):
        if len(shape) == 1:
            fix = f"{x_name}.to_frame()" if kind == "frame" else f"{x_name}.reshape(-1, 1)"
            raise InputError(f"{x_name} has one value per row (shape {shape}); {label} takes "
                             f"rows × features: pass {fix} for a single feature")
        if len(shape) > 2:
            raise InputError(f"{x_name} has shape {shape}; {label} takes rows × features: "
                             f"flatten each row, e.g. {x_name}.reshape(len({x_name}), -1)")
        if kind == "sparse" and not _takes_sparse(model):
            raise InputError(f"{label} takes dense rows, not a sparse matrix: pass "
                             f"{x_name}.toarray()")
        bad = _non_numeric(X, kind, categories=_takes_categories(model))
        if bad:
            raise InputError(
                f"{x_name} has non-numeric columns ({', '.join(bad[:5])}); {label} takes "
                "numbers: encode them (e.g. pd.get_dummies, or datetimes as numbers) or use a "
                "Pipeline with an encoder")
    if fitting:
        return
    try:
        n_in = getattr(model, "n_features_in_", None)
        names_in = getattr(model, "feature_names_in_", None)
    except Exception:  # a Pipeline whose first step has none
        n_in = names_in = None
    if kind == "frame" and names_in is not None:
        check_columns(data.feature_names, list(names_in), x_name=x_name, model=label)
    if isinstance(n_in, int | np.integer) and len(shape) == 2 and shape[1] != n_in:
        raise InputError(f"{x_name} has {shape[1]} columns but {label} was trained on {n_in} "
                         "features; pass the columns it was trained on")
