"""What kind of object an input is (tensor, Dataset, DataLoader, frame, sparse matrix, Hugging
Face ``datasets.Dataset``), and its numpy view, without importing any library nobody imported.

An object can only be a tensor or a ``Dataset`` if ``torch`` is in ``sys.modules``, a frame if
``pandas`` is, and so on: a scikit-learn-only user never imports torch.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .errors import InputError


def _torch():
    return sys.modules.get("torch")


def is_tensor(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def is_dataset(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.utils.data.Dataset)


def is_hf_dataset(obj: Any) -> bool:
    """A Hugging Face ``datasets.Dataset`` (duck-typed: ``column_names`` and ``set_format``)."""
    return (hasattr(obj, "column_names") and hasattr(obj, "set_format")
            and hasattr(obj, "__getitem__") and hasattr(obj, "__len__"))


def is_loader(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.utils.data.DataLoader)


def is_frame(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame | pd.Series)


def is_sparse(obj: Any) -> bool:
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(obj)


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (never imports torch)."""
    torch = _torch()
    return torch is not None and isinstance(model, torch.nn.Module)


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
