"""Coerce numpy / pandas / scipy / torch / Dataset inputs, infer the task, fingerprint the data.

Nothing here imports torch unless the caller already did: an object can only be a tensor or a
``Dataset`` if ``torch`` is in ``sys.modules``.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .options import TASK_CHOICES, TASKS
from .plain import plain

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

    ``kind`` is one of ``array``, ``frame``, ``sparse``, ``tensor``, ``dataset``, ``loader``.
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



def _torch():
    return sys.modules.get("torch")


def is_tensor(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def is_dataset(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.utils.data.Dataset)


def is_loader(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.utils.data.DataLoader)


def is_frame(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame | pd.Series)


def is_sparse(obj: Any) -> bool:
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(obj)


def to_numpy(obj: Any) -> np.ndarray:
    """A numpy view of an array-like (tensor, pandas object, list); no copy when avoidable.

    Tensors of a dtype numpy lacks (``bfloat16``) come back as float32; a DataFrame whose
    columns are all numbers or booleans (which pandas would give as ``object``) as float64,
    missing values as NaN.
    """
    if is_tensor(obj):
        tensor = obj.detach().cpu()
        if tensor.layout != _torch().strided:
            raise InputError("a sparse tensor cannot be used as it is; pass X.to_dense()")
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16, float8 ...: no numpy dtype
            return tensor.float().numpy()
    if is_frame(obj):
        out = obj.to_numpy()
        if out.dtype.kind == "O" and _all_numeric(obj):
            return obj.to_numpy(dtype=np.float64, na_value=np.nan)
        return out
    return np.asarray(obj)


def _all_numeric(frame: Any) -> bool:
    dtypes = [frame.dtype] if frame.ndim == 1 else list(frame.dtypes)
    return bool(dtypes) and all(t.kind in "biuf" for t in dtypes)


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (never imports torch)."""
    torch = _torch()
    return torch is not None and isinstance(model, torch.nn.Module)


def _kind(X: Any) -> str:
    if is_loader(X):
        return "loader"
    if is_dataset(X):
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


def dataset_targets(dataset: Any) -> np.ndarray:
    """The targets of a map-style ``Dataset`` of ``(x, y)`` items, read once."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and _length(targets, "targets") == len(dataset):
        return to_numpy(targets).reshape(len(dataset), -1).squeeze(-1)
    first = dataset[0]
    if not isinstance(first, tuple | list) or len(first) != 2:
        raise InputError(
            f"{type(dataset).__name__} items must be (x, y) pairs to train with a target; "
            f"the first item is a {type(first).__name__}"
        )
    return np.stack([to_numpy(dataset[i][1]) for i in range(len(dataset))])


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
    X : array-like, DataFrame, sparse matrix, tensor, Dataset or DataLoader
        Features. For a Dataset or DataLoader the targets come from its ``(x, y)`` items. A
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
        or labels (datetimes, mixed types), missing target.
    """
    X = _as_rows(X, x_name)
    kind = _kind(X)
    if kind in ("dataset", "loader"):
        dataset = X.dataset if kind == "loader" else X
        iterable = isinstance(dataset, _torch().utils.data.IterableDataset)
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
        targets = _check_target(dataset_targets(dataset), y_name)
        return Data(X, targets, kind, len(dataset))

    n = _length(X, x_name)
    if n == 0:
        raise InputError(f"{x_name} is empty")
    _check_layout(X, kind, numeric=numeric, name=x_name)
    names = [str(c) for c in X.columns] if kind == "frame" and X.ndim == 2 else None
    _check_features(X, kind, numeric=numeric, allow_nan=allow_nan, name=x_name)
    if y is None:
        if require_y:
            raise InputError(f"no target given; pass it after {x_name}: MODEL {x_name} y")
        return Data(X, None, kind, n, names)
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
    return Data(X, y_arr, kind, n, names)


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


def _check_target(y: np.ndarray, name: str) -> np.ndarray:
    """``y`` checked: no missing values, numbers or labels of one type (an ``object`` array of
    numbers comes back numeric)."""
    if y.dtype.kind == "O":
        y = _uniform_target(y, name)
    kind = y.dtype.kind
    if kind in "mM":
        raise InputError(f"{name} holds {y.dtype} values; a target must be numbers or class "
                         f"labels: convert it first (e.g. {name}.astype('int64') or a label per "
                         "period)")
    if kind in "cV":
        raise InputError(f"{name} has dtype {y.dtype}; a target must be real numbers or class "
                         "labels")
    if kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            raise InputError(
                f"{name} has {int(bad.sum())} NaN or infinite values (first at row "
                f"{int(np.flatnonzero(bad)[0])}); drop or fill those rows first"
            )
    return y


def _uniform_target(y: np.ndarray, name: str) -> np.ndarray:
    import pandas as pd

    missing = np.flatnonzero(pd.isna(y))
    if len(missing):
        raise InputError(f"{name} has missing values (first at row {missing[0]}); drop them")
    values = y.tolist()
    types = {type(v) for v in values}
    if all(issubclass(t, bool | int | float) for t in types):
        return np.asarray(values)  # numbers held as objects: the numeric array they make
    if all(issubclass(t, str | bytes) for t in types):
        return y  # text labels stay as given (their fingerprint is recorded this way)
    kinds = ", ".join(sorted(t.__name__ for t in types)[:4])
    if len(types) == 1:
        raise InputError(f"{name} holds {kinds} values; a target must be numbers or text labels: "
                         "convert it first")
    raise InputError(f"{name} mixes value types ({kinds}); make its values one type, e.g. "
                     f"{name}.astype(str)")


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


def _hash_array(h: Any, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.kind == "O":
        h.update(repr(arr.tolist()).encode())
    elif arr.size == 0:
        return  # the header says it all (a memoryview of no bytes cannot be cast)
    elif arr.dtype.kind in "mM":  # datetimes: the int64 ticks (the unit is in the header)
        h.update(memoryview(arr.view(np.int64)).cast("B"))
    else:
        h.update(memoryview(arr).cast("B"))


def fingerprint(data: Data) -> dict[str, Any]:
    """Shape, dtypes and a SHA-256 of the training data, to recognise the same data later.

    Returns
    -------
    dict
        ``{"kind", "n_samples", "shape", "dtypes", "columns", "sha256"}``.
    """
    h = hashlib.sha256()
    X = data.X
    if data.kind == "frame":
        frame = X.to_frame() if X.ndim == 1 else X
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        h.update(repr(list(dtypes.items())).encode())
        for column in frame.columns:
            _hash_array(h, frame[column].to_numpy())
        shape = list(frame.shape)
    elif data.kind == "sparse":
        csr = X.tocsr()
        for part in (csr.data, csr.indices, csr.indptr):
            _hash_array(h, part)
        shape, dtypes = list(csr.shape), {"X": str(csr.dtype)}
    elif data.kind in ("dataset", "loader"):
        dataset = X.dataset if data.kind == "loader" else X
        first = to_numpy(dataset[0][0])
        for i in range(len(dataset)):
            _hash_array(h, to_numpy(dataset[i][0]))
        shape, dtypes = [len(dataset), *first.shape], {"X": str(first.dtype)}
    else:
        arr = to_numpy(X)
        _hash_array(h, arr)
        shape, dtypes = list(arr.shape), {"X": str(arr.dtype)}
    if data.y is not None:
        _hash_array(h, data.y)
        dtypes["y"] = str(data.y.dtype)
    return {
        "kind": data.kind,
        "n_samples": data.n_samples,
        "shape": shape,
        "dtypes": dtypes,
        "columns": data.feature_names,
        "sha256": h.hexdigest(),
    }


def take_rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of ``X`` in its own type (array, frame, sparse matrix or tensor)."""
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
