"""Input checks, task inference and the data fingerprint (engine.data), on real small data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from aimodel_kernel.engine.core.data import check_data, fingerprint, infer_task, take_rows
from aimodel_kernel.engine.core.errors import InputError


def test_task_inference(cancer, digits, diabetes):
    assert infer_task(cancer[1]).task == "binary"
    info = infer_task(digits[1])
    assert info.task == "multiclass" and info.classes == tuple(range(10))
    assert infer_task(diabetes[1]).task == "regression"
    assert infer_task(np.array(["a", "b", "a", "c"])).classes == ("a", "b", "c")
    assert infer_task(np.array([0.0, 1.0, 1.0, 0.0, 1.0])).task == "binary"


def test_single_class_and_task_mismatch_refused():
    with pytest.raises(InputError, match="single class"):
        infer_task(np.zeros(10, dtype=int))
    with pytest.raises(InputError, match="two classes"):
        infer_task(np.arange(30) % 3, "binary")
    with pytest.raises(InputError, match="numeric"):
        infer_task(np.array(["a", "b"]), "regression")


def test_check_data_kinds(cancer):
    X, y = cancer
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    assert check_data(X, y).kind == "array"
    data = check_data(frame, pd.Series(y))
    assert data.kind == "frame" and data.feature_names == ["a", "b", "c"]
    assert check_data(sp.csr_matrix(X), y, numeric=False).kind == "sparse"
    assert check_data(X, y.reshape(-1, 1)).y.ndim == 1


def test_check_data_refusals(cancer):
    X, y = cancer
    with pytest.raises(InputError, match="569 rows but y has 568"):
        check_data(X, y[:-1])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        check_data(bad, y)
    assert check_data(bad, y, allow_nan=True).n_samples == len(y)
    bad[4, 1] = np.inf
    with pytest.raises(InputError, match="infinite"):
        check_data(bad, y, allow_nan=True)
    with pytest.raises(InputError, match="NaN"):
        check_data(X, np.where(np.arange(len(y)) == 7, np.nan, y.astype(float)))
    with pytest.raises(InputError, match="non-numeric columns"):
        check_data(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}), [0, 1])
    with pytest.raises(InputError, match="empty"):
        check_data(np.empty((0, 3)), np.empty(0))
    with pytest.raises(InputError, match="no target"):
        check_data(X, None)


def test_fingerprint_is_stable_and_sensitive(cancer):
    X, y = cancer
    first = fingerprint(check_data(X, y))
    assert first == fingerprint(check_data(X.copy(), y.copy()))
    assert first["shape"] == [569, 30] and first["n_samples"] == 569
    changed = X.copy()
    changed[0, 0] += 1e-9
    assert fingerprint(check_data(changed, y))["sha256"] != first["sha256"]
    assert fingerprint(check_data(X, 1 - y))["sha256"] != first["sha256"]
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    fp = fingerprint(check_data(frame, [0, 1, 0], numeric=False))
    assert fp["columns"] == ["a", "s"] and fp["dtypes"]["a"] == "float64"


def test_take_rows_keeps_type(cancer):
    X, _ = cancer
    idx = np.array([0, 5, 9])
    assert isinstance(take_rows(pd.DataFrame(X), idx), pd.DataFrame)
    assert sp.issparse(take_rows(sp.csr_matrix(X), idx))
    np.testing.assert_array_equal(take_rows(X, idx), X[idx])


def test_torch_inputs(digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    tx, ty = torch.from_numpy(X), torch.from_numpy(y)
    assert check_data(tx, ty).kind == "tensor"
    ds = torch.utils.data.TensorDataset(tx, ty)
    data = check_data(ds)
    assert data.kind == "dataset" and np.array_equal(data.y, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=32)
    assert check_data(loader).kind == "loader"
    with pytest.raises(InputError, match="do not also pass"):
        check_data(ds, y)
    assert fingerprint(check_data(ds))["sha256"] == fingerprint(check_data(loader))["sha256"]
