"""Sensitive features: from column names of ``X`` or named arrays to one group label per row,
with the checks an audit needs (a column that exists, two or more groups, none too small)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.data import is_frame, is_tensor, to_numpy
from ..core.errors import InputError
from ..core.plain import plain

SEPARATOR = ", "
MAX_LISTED = 5
MANY_GROUPS = 20


@dataclass
class GroupData:
    """The sensitive features of some rows and the group (intersection) of each row."""

    names: list[str]
    frame: Any  # pandas.DataFrame, one column per sensitive feature, RangeIndex
    labels: np.ndarray  # the group label of each row, e.g. "female, <25"
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> feature values
    rank: dict[str, int] = field(default_factory=dict)  # label -> position in sorted order

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def description(self) -> str:
        return " × ".join(repr(n) for n in self.names)

    def labels_of(self, index: Any) -> list[str]:
        """Group labels of a (multi-)index of group values, such as ``MetricFrame.by_group``'s."""
        return [label_of(v if isinstance(v, tuple) else (v,)) for v in index]


def label_of(values: tuple) -> str:
    """The group label of one combination of feature values."""
    return SEPARATOR.join(str(plain(v)) for v in values)


def _items(sensitive: Any) -> list[tuple[str | None, Any]]:
    """``(name, values-or-None)`` pairs; ``None`` values mean the column ``name`` of ``X``."""
    if isinstance(sensitive, str):
        names = [s.strip() for s in sensitive.split(",") if s.strip()]
        if not names:
            raise InputError("--sensitive names no feature; give a column of X, e.g. "
                             "--sensitive sex")
        return [(n, None) for n in names]
    if isinstance(sensitive, Mapping):
        return [(str(k), None if v is None or isinstance(v, str) else v)
                for k, v in sensitive.items()]
    if is_frame(sensitive):
        if sensitive.ndim == 1:
            return [(str(sensitive.name) if sensitive.name is not None else None, sensitive)]
        return [(str(c), sensitive[c]) for c in sensitive.columns]
    if isinstance(sensitive, list | tuple) and sensitive and all(
        isinstance(s, str) or is_frame(s) or isinstance(s, np.ndarray) or is_tensor(s)
        or (isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str))
        for s in sensitive
    ):
        out: list[tuple[str | None, Any]] = []
        for s in sensitive:
            if isinstance(s, str):
                out += _items(s)
            elif isinstance(s, tuple):
                out.append((s[0], s[1]))
            else:
                out += _items(s) if is_frame(s) else [(None, s)]
        return out
    return [(None, sensitive)]


def sensitive_frame(X: Any, sensitive: Any, n: int, *, x_name: str = "X") -> GroupData:
    """The sensitive features of the rows of ``X`` and each row's group.

    Parameters
    ----------
    X : DataFrame or array-like
        The features; sensitive features named as strings are columns of this DataFrame.
    sensitive : str, sequence, mapping, Series, DataFrame or array
        ``"sex"`` or ``"sex,age_band"`` (columns of ``X``); a list of column names and/or named
        arrays (``pandas.Series`` or ``(name, values)`` pairs); a mapping ``name -> values``
        (``None`` for a column of ``X``); or one array. A list of strings always names columns.
        Several features give intersectional groups (``"female, <25"``).
    n : int
        Rows of ``X``.
    x_name : str
        The user's name of ``X``, for messages.

    Returns
    -------
    GroupData

    Raises
    ------
    InputError
        A column ``X`` does not have, an array of another length, or missing values.
    """
    import pandas as pd

    columns: dict[str, Any] = {}
    for i, (name, values) in enumerate(_items(sensitive)):
        if values is None:
            values = _column(X, name, x_name)
        name = name or ("sensitive" if i == 0 else f"sensitive_{i}")
        arr = to_numpy(values)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InputError(f"sensitive feature {name!r} must be one value per row; it has "
                             f"shape {arr.shape}")
        if len(arr) != n:
            raise InputError(f"sensitive feature {name!r} has {len(arr)} values but {x_name} "
                             f"has {n} rows; pass the values of the same rows")
        missing = pd.isna(arr)
        if missing.any():
            raise InputError(f"sensitive feature {name!r} has {int(missing.sum())} missing values "
                             f"(first at row {int(np.flatnonzero(missing)[0])}); fill them "
                             "(e.g. 'unknown') or drop those rows")
        if name in columns:
            raise InputError(f"sensitive feature {name!r} is given twice")
        dtype = getattr(values, "dtype", None)
        # an ordered (categorical) column keeps its order in the group tables
        columns[name] = (pd.Categorical(values).remove_unused_categories()
                         if str(dtype) == "category" else arr)
    if not columns:
        raise InputError("no sensitive feature given; name a column of X, e.g. --sensitive sex")
    frame = pd.DataFrame(columns)
    rows = zip(*(np.asarray(col).tolist() for col in columns.values()), strict=True)
    values: dict[str, dict[str, Any]] = {}
    labels = []
    for row in rows:
        label = label_of(row)
        labels.append(label)
        if label not in values:
            values[label] = dict(zip(columns, (plain(v) for v in row), strict=True))
    return GroupData(list(columns), frame, np.asarray(labels, dtype=object), values,
                     _ranks(values, columns))


def _ranks(values: dict[str, dict[str, Any]], columns: dict[str, Any]) -> dict[str, int]:
    """Groups sorted by feature values; categorical columns in their categories' order."""
    import pandas as pd

    orders = {name: {c: i for i, c in enumerate(col.categories)}
              for name, col in columns.items() if isinstance(col, pd.Categorical)}

    def key(label: str) -> tuple:
        return tuple((orders[n][v], "") if n in orders else (0, v)
                     for n, v in values[label].items())

    try:
        ordered = sorted(values, key=key)
    except TypeError:  # values of mixed types in one column
        ordered = sorted(values)
    return {label: i for i, label in enumerate(ordered)}


def _column(X: Any, name: str | None, x_name: str) -> Any:
    if not is_frame(X) or X.ndim != 2:
        raise InputError(
            f"{x_name} has no column names ({type(X).__name__}), so it has no column {name!r}; "
            "pass a DataFrame, or name an array variable that holds the sensitive feature")
    if name not in X.columns:
        shown = ", ".join(str(c) for c in list(X.columns)[:30])
        more = f" … ({len(X.columns)} in all)" if len(X.columns) > 30 else ""
        raise InputError(f"{x_name} has no column {name!r} (its columns: {shown}{more}); name a "
                         f"column of {x_name} or an array variable with one value per row")
    return X[name]


def check_groups(groups: GroupData, min_group: int) -> None:
    """Raise :class:`InputError` unless there are two or more groups of ``min_group`` rows.

    The message names the single group, or every group that is too small (the smallest
    first), and how to fix it.
    """
    counts = Counter(groups.labels.tolist())
    if len(counts) == 1:
        (label,) = counts
        raise InputError(
            f"sensitive feature {groups.description} has a single group ({label!r}) in these "
            f"{groups.n_samples} rows; a fairness audit compares two or more groups")
    small = sorted(((c, g) for g, c in counts.items() if c < min_group), key=lambda t: t[0])
    if not small:
        return
    listed = ", ".join(f"{g!r} ({c} rows)" for c, g in small[:MAX_LISTED])
    if len(small) > MAX_LISTED:
        listed += f" and {len(small) - MAX_LISTED} more"
    hint = "use more rows, coarser groups, or a lower --min-group"
    if len(counts) > MANY_GROUPS:
        widest = max(groups.names, key=lambda c: groups.frame[c].nunique())
        hint = (f"{widest!r} has {groups.frame[widest].nunique()} distinct values: bin it "
                "(e.g. an age_band column) or " + hint)
    raise InputError(f"{len(small)} of {len(counts)} groups are smaller than --min-group "
                     f"{min_group} and cannot be measured: {listed}; {hint}")
