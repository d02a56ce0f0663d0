"""Fingerprints of training data: shape, dtypes and a SHA-256 of the content, to recognise the
same data later (``--resume``, ``%reproduce``, ``%aimodel check``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .batches import split_item
from .kinds import is_hf_dataset, to_numpy
from .nested import leaves


def hash_array(h: Any, arr: np.ndarray) -> None:
    """Feed ``arr``'s dtype, shape and bytes to the hash ``h``."""
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


def _hash_value(h: Any, obj: Any) -> None:
    """Feed a Dataset item's inputs (a tensor, a tuple / list or dict of them) to ``h``."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            h.update(f"{key!s}:".encode())
            _hash_value(h, value)
    elif isinstance(obj, list | tuple) and not isinstance(obj, str):
        h.update(f"{type(obj).__name__}{len(obj)}".encode())
        for value in obj:
            _hash_value(h, value)
    else:
        hash_array(h, to_numpy(obj))


def _spec(obj: Any, name: str = "X") -> dict[str, tuple[list[int], str]]:
    """``{leaf name: (shape, dtype)}`` of one item's inputs."""
    if isinstance(obj, Mapping):
        out: dict[str, tuple[list[int], str]] = {}
        for key, value in obj.items():
            out.update(_spec(value, f"{name}[{key!r}]"))
        return out
    if isinstance(obj, list | tuple) and not isinstance(obj, str):
        out = {}
        for i, value in enumerate(obj):
            out.update(_spec(value, f"{name}[{i}]"))
        return out
    arr = to_numpy(obj)
    return {name: (list(arr.shape), str(arr.dtype))}


def _hash_hf_columns(h: Any, dataset: Any) -> None:
    """A Hugging Face dataset's format columns, one column at a time (fast: no item loop)."""
    for column in dataset.format.get("columns") or dataset.column_names:
        h.update(f"{column}:".encode())
        values = dataset.with_format("numpy", columns=[column])[column]
        arr = values if isinstance(values, np.ndarray) else None
        if arr is None:
            try:
                arr = np.asarray(values)
            except ValueError:  # ragged rows
                arr = None
        if arr is not None and arr.dtype.kind != "O":
            hash_array(h, arr)
        else:
            for value in values:
                hash_array(h, np.asarray(value))


def fingerprint(data: Any) -> dict[str, Any]:
    """Shape, dtypes and a SHA-256 of the training data (a :class:`~.data.Data`).

    Returns
    -------
    dict
        ``{"kind", "n_samples", "shape", "dtypes", "columns", "sha256"}``; for nested inputs
        and Datasets of several inputs also ``"inputs"``: ``{leaf name: shape per row}``, with
        ``shape`` just ``[n_samples]`` and ``dtypes`` per leaf.
    """
    h = hashlib.sha256()
    X = data.X
    inputs = None
    if data.kind == "frame":
        frame = X.to_frame() if X.ndim == 1 else X
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        h.update(repr(list(dtypes.items())).encode())
        for column in frame.columns:
            hash_array(h, frame[column].to_numpy())
        shape = list(frame.shape)
    elif data.kind == "sparse":
        csr = X.tocsr()
        for part in (csr.data, csr.indices, csr.indptr):
            hash_array(h, part)
        shape, dtypes = list(csr.shape), {"X": str(csr.dtype)}
    elif data.kind == "nested":
        dtypes, inputs = {}, {}
        for name, leaf in leaves(X):
            arr = to_numpy(leaf)
            h.update(f"{name}:".encode())
            hash_array(h, arr)
            dtypes[name], inputs[name] = str(arr.dtype), list(arr.shape[1:])
        shape = [data.n_samples]
    elif data.kind in ("dataset", "loader"):
        dataset = X.dataset if data.kind == "loader" else X
        first = split_item(dataset[0])[0]
        spec = _spec(first)
        if is_hf_dataset(dataset):
            _hash_hf_columns(h, dataset)
        else:
            for i in range(len(dataset)):
                _hash_value(h, split_item(dataset[i])[0])
        if list(spec) == ["X"]:
            shape, dtypes = [len(dataset), *spec["X"][0]], {"X": spec["X"][1]}
        else:
            shape = [len(dataset)]
            dtypes = {name: dtype for name, (_, dtype) in spec.items()}
            inputs = {name: s for name, (s, _) in spec.items()}
    else:
        arr = to_numpy(X)
        hash_array(h, arr)
        shape, dtypes = list(arr.shape), {"X": str(arr.dtype)}
    if data.y is not None:
        hash_array(h, data.y)
        dtypes["y"] = str(data.y.dtype)
    out = {
        "kind": data.kind,
        "n_samples": data.n_samples,
        "shape": shape,
        "dtypes": dtypes,
        "columns": data.feature_names,
        "sha256": h.hexdigest(),
    }
    if inputs is not None:
        out["inputs"] = inputs
    return out
