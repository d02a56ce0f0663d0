"""Check numpy / pandas / scipy / torch / Dataset / nested inputs and infer the task.

Nothing here imports torch unless the caller already did (:mod:`.kinds`). What an input is
lives in :mod:`.kinds`, nested inputs' structure in :mod:`.nested`, targets read from Dataset
items in :mod:`.targets` and fingerprints in :mod:`.fingerprints`; their public names are
importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .fingerprints import fingerprint
from .kinds import (
    _torch,
    is_dataset,
    is_frame,
    is_hf_dataset,
    is_loader,
    is_sparse,
    is_tensor,
    is_torch_model,
    to_numpy,
)
from .nested import is_nested, leaves, map_leaves, split_target
from .options import TASK_CHOICES, TASKS
from .plain import plain
from .targets import check_target as _check_target
from .targets import dataset_targets

__all__ = [
    "TASKS", "Data", "TaskInfo", "allows_nan", "check_data", "dataset_targets", "fingerprint",
    "infer_task", "is_dataset", "is_frame", "is_hf_dataset", "is_loader", "is_sparse",
    "is_tensor", "is_torch_model", "take_rows", "to_numpy",
]

_MAX_CLASSES = 100


@dataclass(frozen=True)
class TaskInfo:
    """The learning task and, for classification, the sorted class labels."""

    task: str
    classes: tuple = ()

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": [plain(c) for c in self.classes]}


@dataclass
class Data:
    """Validated inputs: ``X`` as given (never copied), ``y`` as a 1-d numpy array or ``None``.

    ``kind`` is one of ``array``, ``frame``, ``sparse``, ``tensor``, ``nested`` (a tuple /
    list / dict of arrays or tensors: ``extras["inputs"]`` names its leaves), ``dataset``
    (also a Hugging Face ``datasets.Dataset``, then in the ``torch`` format), ``loader``.
    """

    X: Any
    y: np.ndarray | None
    kind: str
    n_samples: int
    feature_names: list[str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def is_torch_data(self) -> bool:
        return self.kind in ("dataset", "loader")


def _kind(X: Any) -> str:
    if is_nested(X):
        return "nested"
    if is_loader(X):
        return "loader"
    if is_dataset(X) or is_hf_dataset(X):
        return "dataset"
    if is_tensor(X):
        return "tensor"
    if is_frame(X):
        return "frame"
    if is_sparse(X):
        return "sparse"
    return "array"


def _length(obj: Any, name: str) -> int:
    if is_sparse(obj):
        return obj.shape[0]
    try:
        return len(obj)
    except TypeError:
        raise InputError(
            f"{name} has no length ({type(obj).__name__}); pass an array, DataFrame, tensor or a "
            "map-style Dataset"
        ) from None


def _as_rows(X: Any, name: str) -> Any:
    """``X`` in a form every later step can index: a list becomes an array, a sparse matrix
    of another format (COO, LIL, DOK ...) CSR, an array of non-native byte order (which torch
    cannot take) a native one. The user's object is never changed."""
    if isinstance(X, np.ndarray):
        if X.dtype.isnative or X.dtype.kind in "OUSV":
            return X
        return X.astype(X.dtype.newbyteorder("="))
    if isinstance(X, list | tuple):
        try:
            return np.asarray(X)
        except ValueError:  # numpy refuses ragged nesting
            raise InputError(
                f"{name} is a ragged {type(X).__name__} (its rows have different lengths); "
                "pass an array or DataFrame with the same features in every row"
            ) from None
    if is_sparse(X) and getattr(X, "format", "csr") not in ("csr", "csc"):
        return X.tocsr()
    return X


def check_data(
    X: Any,
    y: Any = None,
    *,
    numeric: bool = True,
    allow_nan: bool = False,
    require_y: bool = True,
    x_name: str = "X",
    y_name: str = "y",
) -> Data:
    """Validate ``X`` and ``y`` and wrap them in :class:`Data`.

    Parameters
    ----------
    X : array-like, DataFrame, sparse matrix, tensor, nested inputs, Dataset or DataLoader
        Features. Nested inputs (kind ``nested``) are a tuple of arrays / tensors (positional
        inputs of ``forward(a, b)``) or a dict of them (keyword inputs, e.g. ``input_ids``,
        ``attention_mask``), one row per sample in every leaf; a dict may carry the target
        under ``labels`` / ``label`` instead of ``y``. For a Dataset (also a Hugging Face
        ``datasets.Dataset``, used in the ``torch`` format) or DataLoader the targets come
        from its items: ``(x, y)`` or ``((a, b), y)`` pairs, or dicts with ``labels``. A
        list becomes an array, a sparse matrix in another format than CSR/CSC a CSR matrix and
        an array of non-native byte order a native one (``Data.X``); anything else is kept as
        given, never copied.
    y : array-like, optional
        Targets, one per row of ``X``. An ``object`` array of numbers becomes a numeric array.
    numeric : bool
        Inputs for a PyTorch model: every feature numeric, dense rows.
    allow_nan : bool
        Accept NaN in ``X`` (estimators that handle missing values). ``y`` never may.
    require_y : bool
        Raise when no target can be found.
    x_name, y_name : str
        Names used in error messages (the user's variable names).

    Returns
    -------
    Data

    Raises
    ------
    InputError
        Mismatched lengths, NaN or infinite values, non-numeric columns (``numeric``), no
        feature columns, duplicate column names, a ragged list, a target that is not numbers
        or labels (datetimes, mixed types), missing target; nested leaves with different row
        counts (naming them); a Hugging Face dataset column that is not numbers.
    """
    if is_nested(X):
        return _check_nested(X, y, numeric=numeric, allow_nan=allow_nan, require_y=require_y,
                             x_name=x_name, y_name=y_name)
    X = _as_rows(X, x_name)
    kind = _kind(X)
    if kind in ("dataset", "loader"):
        return _check_dataset(X, y, kind, require_y=require_y, x_name=x_name, y_name=y_name)

    n = _length(X, x_name)
    if n == 0:
        raise InputError(f"{x_name} is empty")
    _check_layout(X, kind, numeric=numeric, name=x_name)
    names = [str(c) for c in X.columns] if kind == "frame" and X.ndim == 2 else None
    _check_features(X, kind, numeric=numeric, allow_nan=allow_nan, name=x_name)
    return _with_target(Data(X, None, kind, n, names), y, require_y=require_y, x_name=x_name,
                        y_name=y_name)


def _with_target(data: Data, y: Any, *, require_y: bool, x_name: str, y_name: str) -> Data:
    """``data`` with ``y`` checked as its target (one value per row)."""
    n = data.n_samples
    if y is None:
        if require_y:
            raise InputError(f"no target given; pass it after {x_name}: MODEL {x_name} y")
        return data
    y_arr = to_numpy(_as_rows(y, y_name)) if not is_sparse(y) else np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr[:, 0]
    if y_arr.ndim != 1:
        raise InputError(f"{y_name} must be one value per row; it has shape {y_arr.shape}")
    if len(y_arr) != n:
        raise InputError(
            f"{x_name} has {n} rows but {y_name} has {len(y_arr)}; pass one target per row"
        )
    y_arr = _check_target(y_arr, y_name)
    data.y = y_arr
    return data


def _check_dataset(X: Any, y: Any, kind: str, *, require_y: bool, x_name: str,
                   y_name: str) -> Data:
    """A map-style Dataset (torch or Hugging Face) or a DataLoader over one."""
    dataset = X.dataset if kind == "loader" else X
    torch = _torch()
    iterable = torch is not None and isinstance(dataset, torch.utils.data.IterableDataset)
    if iterable or not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise InputError(
            f"{x_name} is an iterable-style dataset; pass a map-style Dataset (with __len__ "
            "and __getitem__) so it can be split, shuffled, sharded over --devices "
            "processes and fingerprinted"
        )
    if y is not None:
        raise InputError(f"{x_name} is a {kind} that yields targets; do not also pass {y_name}")
    if len(dataset) == 0:
        raise InputError(f"{x_name} is empty")
    if is_hf_dataset(dataset) and kind == "dataset":
        dataset = X = _torch_formatted(dataset, x_name)
    try:
        targets = _check_target(dataset_targets(dataset), y_name)
    except InputError:
        if require_y:
            raise
        targets = None
    return Data(X, targets, kind, len(dataset))


def _torch_formatted(dataset: Any, name: str) -> Any:
    """A Hugging Face dataset in the ``torch`` format (the user's object is not changed), every
    input column numbers."""
    columns = list(dataset.format.get("columns") or dataset.column_names)
    features = getattr(dataset, "features", None) or {}
    text = [c for c in columns if c in features and _holds_text(features[c])]
    if text:
        shown = ", ".join(repr(c) for c in text[:4])
        keep = [c for c in columns if c not in text]
        raise InputError(f"{name} has columns that are not numbers ({shown}); a model takes "
                         f"tensors: {name}.set_format('torch', columns={keep!r}) or "
                         f"{name} = {name}.remove_columns([{shown}])")
    if dataset.format.get("type") == "torch":
        return dataset
    return dataset.with_format("torch", columns=columns)


def _holds_text(feature: Any) -> bool:
    """Whether a ``datasets`` feature (a ``Value``, or a ``List`` / ``Sequence`` of one) holds
    strings or other values that are not numbers."""
    inner = feature
    for _ in range(4):  # List(List(Value)) ...
        nested = getattr(inner, "feature", None)
        if nested is None:
            break
        inner = nested
    dtype = getattr(inner, "dtype", None)
    if isinstance(dtype, str):
        return dtype in ("string", "large_string", "binary", "large_binary") \
            or dtype.startswith(("timestamp", "date", "time", "duration"))
    return False


def _check_nested(X: Any, y: Any, *, numeric: bool, allow_nan: bool, require_y: bool,
                  x_name: str, y_name: str) -> Data:
    """A tuple / list / dict of arrays or tensors: every leaf checked, one row count for all."""
    if isinstance(X, Mapping):
        inputs, inner_y, key = split_target(X)
        if inner_y is not None:
            if y is not None:
                raise InputError(f"{x_name} holds the target under {key!r}; do not also pass "
                                 f"{y_name}")
            if not inputs:
                raise InputError(f"{x_name} holds only {key!r}; add the model's inputs")
            X, y, y_name = inputs, inner_y, f"{x_name}[{key!r}]"
    rows: dict[str, int] = {}

    def check_leaf(name: str, leaf: Any) -> Any:
        if isinstance(leaf, list | tuple):
            try:
                leaf = np.asarray(leaf)
            except ValueError:
                raise InputError(f"{name} is ragged (its rows have different lengths); pad it "
                                 "(a tokenizer's padding=True, return_tensors='pt')") from None
        leaf = _as_rows(leaf, name)
        kind = _kind(leaf)
        if kind in ("dataset", "loader", "sparse") or not hasattr(leaf, "__len__"):
            raise InputError(f"{name} is a {type(leaf).__name__}; nested inputs take arrays, "
                             "tensors or DataFrames (one row per sample)")
        _check_layout(leaf, kind, numeric=numeric, name=name)
        _check_features(leaf, kind, numeric=numeric, allow_nan=allow_nan, name=name)
        rows[name] = _length(leaf, name)
        return leaf

    X = map_leaves(check_leaf, X, x_name)
    counts = set(rows.values())
    if len(counts) > 1:
        (a, na), (b, nb) = _two_counts(rows)
        raise InputError(f"{a} has {na} rows but {b} has {nb}; every input needs one row per "
                         "sample")
    n = counts.pop()
    if n == 0:
        raise InputError(f"{x_name} is empty")
    data = _with_target(Data(X, None, "nested", n), y, require_y=require_y, x_name=x_name,
                        y_name=y_name)
    data.extras["inputs"] = [name for name, _ in leaves(X, x_name)]
    return data


def _two_counts(rows: dict[str, int]) -> tuple[tuple[str, int], tuple[str, int]]:
    """The first leaf and the first leaf with another row count."""
    items = list(rows.items())
    first = items[0]
    other = next(item for item in items if item[1] != first[1])
    return first, other


def _check_layout(X: Any, kind: str, *, numeric: bool, name: str) -> None:
    """Rows of at least one feature; for a DataFrame, one name per column."""
    if kind == "sparse" and numeric:
        raise InputError(f"{name} is a sparse matrix; a PyTorch model takes dense rows: pass "
                         f"{name}.toarray()")
    shape = tuple(X.shape) if kind in ("frame", "sparse", "tensor") else np.shape(to_numpy(X))
    if not shape:
        raise InputError(f"{name} is a single {type(X).__name__}, not rows of features; pass an "
                         "array, DataFrame or tensor with one row per sample")
    if len(shape) >= 2 and 0 in shape[1:]:
        raise InputError(f"{name} has no features (shape {shape}); pass at least one column")
    if kind != "frame" or X.ndim != 2:
        return
    columns = X.columns
    duplicated = list(dict.fromkeys(columns[columns.duplicated()].tolist()))
    if duplicated:
        shown = ", ".join(repr(c) for c in duplicated[:5])
        raise InputError(f"{name} has duplicate column names ({shown}); give every column its "
                         f"own name (e.g. {name}.columns = [...]) so each feature is one column")
    text = [isinstance(c, str) for c in columns]
    if any(text) and not all(text):
        kinds = ", ".join(sorted({type(c).__name__ for c in columns}))
        raise InputError(f"{name} has column names of mixed types ({kinds}); make them all "
                         f"strings: {name}.columns = {name}.columns.astype(str)")


def _check_features(X: Any, kind: str, *, numeric: bool, allow_nan: bool, name: str) -> None:
    if kind == "frame":
        frame = X.to_frame() if X.ndim == 1 else X
        non_numeric = [
            str(c) for c, t in frame.dtypes.items() if t.kind not in "biuf" and t != "boolean"
        ]
        if numeric and non_numeric:
            shown = ", ".join(repr(c) for c in non_numeric[:5])
            raise InputError(
                f"{name} has non-numeric columns ({shown}); encode them (e.g. pd.get_dummies) "
                "or use a scikit-learn pipeline with an encoder"
            )
        values = frame.drop(columns=non_numeric).to_numpy(dtype=float, na_value=np.nan)
    elif kind == "sparse":
        values = X.data
    else:
        values = to_numpy(X)
        if values.dtype.kind not in "biufc":
            if numeric:
                raise InputError(
                    f"{name} has dtype {values.dtype}, which a PyTorch model cannot take; "
                    "convert it to numbers first"
                )
            return
    if values.dtype.kind in "fc":
        bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
        if bad.any():
            what = "infinite" if allow_nan else "NaN or infinite"
            raise InputError(
                f"{name} has {int(bad.sum())} {what} values; impute or drop them (or use a "
                "scikit-learn pipeline with SimpleImputer)"
            )


def infer_task(y: np.ndarray, task: str = "auto") -> TaskInfo:
    """Infer ``binary``, ``multiclass`` or ``regression`` from the target, or check ``task``.

    Integer-valued targets with at most 100 distinct values (and fewer than half as many values
    as rows) are classes; other numbers are a regression target.

    Raises
    ------
    InputError
        A classification target with a single class, or an unknown ``task``.
    """
    if task not in TASK_CHOICES:
        raise InputError(f"--task must be one of auto, {', '.join(TASKS)}; got {task!r}")
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise InputError(f"a regression target must be numeric; y has dtype {y.dtype}")
        return TaskInfo("regression")
    classes = np.unique(y)
    if task == "auto":
        integral = y.dtype.kind in "biuOUS" or (
            y.dtype.kind == "f" and bool(np.all(np.mod(classes, 1) == 0))
        )
        few = len(classes) <= _MAX_CLASSES and len(classes) < max(0.5 * len(y), 3)
        if y.dtype.kind in "fiu" and not (integral and few):
            return TaskInfo("regression")
    if len(classes) < 2:
        raise InputError(
            f"y has a single class ({plain(classes[0])!r}); a classifier needs at least two"
        )
    inferred = "binary" if len(classes) == 2 else "multiclass"
    if task == "binary" and inferred != "binary":
        raise InputError(f"--task binary needs two classes; y has {len(classes)}")
    return TaskInfo(inferred if task == "auto" else task, tuple(plain(c) for c in classes))


def take_rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of ``X`` in its own type (array, frame, sparse matrix or tensor); of
    nested inputs, those rows of every leaf (the same container back)."""
    if is_nested(X):
        return map_leaves(lambda _, leaf: take_rows(leaf, index), X)
    if is_frame(X):
        return X.iloc[index]
    if is_tensor(X):
        torch = _torch()
        return X[torch.as_tensor(index, dtype=torch.long, device=X.device)]
    return X[index]


def allows_nan(model: Any) -> bool:
    """Whether a scikit-learn estimator takes NaN features (never for a PyTorch module)."""
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:  # a torch module or an object without tags
        return False
