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


# -- issue 13: inputs every magic gets wrong, refused or made usable before a library sees them --
def test_lists_ragged_lists_and_sparse_formats(cancer):
    X, y = cancer
    data = check_data(X[:20].tolist(), y[:20].tolist())
    assert data.kind == "array" and isinstance(data.X, np.ndarray) and data.X.shape == (20, 30)
    with pytest.raises(InputError, match="rows is a ragged list"):
        check_data([[1.0, 2.0], [3.0]], [0, 1], x_name="rows")
    for matrix in (sp.coo_matrix(X), sp.lil_matrix(X), sp.dok_matrix(X), sp.coo_array(X)):
        data = check_data(matrix, y, numeric=False)
        assert data.kind == "sparse" and data.X.format == "csr"
        assert matrix.format != "csr"  # the user's matrix is as it was
    assert check_data(sp.csc_matrix(X), y, numeric=False).X.format == "csc"
    with pytest.raises(InputError, match=r"sparse matrix; a PyTorch model takes dense rows"):
        check_data(sp.csr_matrix(X), y, numeric=True)
    big = X.astype(">f8")
    assert check_data(big, y).X.dtype.isnative and np.array_equal(check_data(big, y).X, X)


def test_no_features_and_column_names_that_cannot_name_features(cancer):
    X, y = cancer
    for empty in (np.empty((569, 0)), pd.DataFrame(index=range(569)), sp.csr_matrix((569, 0))):
        with pytest.raises(InputError, match=r"X has no features \(shape \(569, 0\)\)"):
            check_data(empty, y, numeric=False)
    with pytest.raises(InputError, match="X is a single str, not rows of features"):
        check_data("abc", [0, 1, 0], numeric=False)
    dup = pd.DataFrame(X[:, :3], columns=["a", "b", "a"])
    with pytest.raises(InputError, match=r"duplicate column names \('a'\)"):
        check_data(dup, y)
    mixed = pd.DataFrame(X[:, :3], columns=[0, "b", "c"])
    with pytest.raises(InputError, match=r"mixed types \(int, str\)"):
        check_data(mixed, y)
    assert check_data(pd.DataFrame(X[:, :3]), y).feature_names == ["0", "1", "2"]  # all ints


def test_targets_of_one_kind(cancer):
    X, y = cancer
    numbers = check_data(X, y.astype(object)).y
    assert numbers.dtype.kind == "i" and np.array_equal(numbers, y)
    text = np.where(y == 1, "p", "n").astype(object)
    assert check_data(X, text).y.dtype == object  # text labels keep their recorded fingerprint
    with pytest.raises(InputError, match=r"y mixes value types \(int, str\)"):
        check_data(X, np.array([0, "a"] * 284 + [1], dtype=object))
    with pytest.raises(InputError, match=r"holds datetime64\[ns\] values; a target must be"):
        check_data(X, pd.date_range("2020", periods=569).to_numpy())
    with pytest.raises(InputError, match="has dtype complex128"):
        check_data(X, y + 1j)
    with pytest.raises(InputError, match=r"(NaN or infinite|missing) values \(first at row 568\)"):
        check_data(X, pd.array([*y[:-1], None], dtype="Int64"))
    with pytest.raises(InputError, match="holds Timestamp values"):
        check_data(X, pd.Series(pd.date_range("2020", periods=569, tz="UTC")).to_numpy(object))


def test_fingerprints_of_datetimes_and_frames_of_every_dtype():
    dates = pd.date_range("2020-01-01", periods=6)
    frame = pd.DataFrame({"t": dates, "d": dates - dates[0], "x": np.arange(6.0),
                          "c": pd.Categorical(list("abcabc")), "n": pd.array([1, 2, None] * 2,
                                                                              dtype="Int64")})
    def fp(rows):
        return fingerprint(check_data(rows, [0, 1] * 3, numeric=False, allow_nan=True))

    first = fp(frame)
    assert first == fp(frame.copy())
    assert first["dtypes"]["t"] == "datetime64[ns]" and first["dtypes"]["d"] == "timedelta64[ns]"
    later = frame.assign(t=dates + pd.Timedelta(seconds=1))
    assert fp(later)["sha256"] != first["sha256"]


def test_to_numpy_of_tensors_and_frames_numpy_would_give_as_objects():
    from aimodel_kernel.engine.core.data import to_numpy

    mixed = pd.DataFrame({"flag": [True, False], "x": [0.5, 1.5], "n": pd.array([1, None],
                                                                                dtype="Int64")})
    out = to_numpy(mixed)
    assert out.dtype == np.float64 and np.isnan(out[1, 2]) and out[0, 0] == 1.0
    torch = pytest.importorskip("torch")
    assert to_numpy(torch.ones(2, 3, dtype=torch.bfloat16)).dtype == np.float32
    with pytest.raises(InputError, match=r"a sparse tensor cannot be used as it is"):
        to_numpy(torch.eye(3).to_sparse())


# -- the model against its rows (core/inputs.py) ---------------------------------------------
def test_an_estimator_against_the_columns_and_width_it_was_fitted_on(cancer):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from aimodel_kernel.engine.core.inputs import check_model_input

    X, y = cancer
    cols = [f"f{i}" for i in range(5)]
    frame = pd.DataFrame(X[:, :5], columns=cols)
    model = LogisticRegression(max_iter=500).fit(frame, y)

    def check(rows, **kwargs):
        check_model_input(model, check_data(rows, numeric=False, require_y=False), **kwargs)

    check(frame)
    with pytest.raises(InputError, match=r"\(missing \['f4'\] \(1\)\); pass the columns"):
        check(frame.drop(columns="f4"))
    with pytest.raises(InputError, match=r"\(the same columns in a different order\)"):
        check(frame[cols[::-1]])
    with pytest.raises(InputError, match="Xt has 4 columns but clf was trained on 5 features"):
        check(X[:, :4], name="clf", x_name="Xt")
    with pytest.raises(InputError, match=r"one value per row \(shape \(569,\)\).*reshape\(-1, 1\)"):
        check(X[:, 0])
    with pytest.raises(InputError, match=r"shape \(569, 5, 1\); LogisticRegression takes rows"):
        check(X[:, :5, None])
    with pytest.raises(InputError, match=r"non-numeric columns \('f0'\); LogisticRegression"):
        check(frame.assign(f0=["a"] * 569))
    check(frame.astype(object))  # numbers held as objects are numbers
    hgb = HistGradientBoostingClassifier(max_iter=3).fit(X[:, :5], y)
    with pytest.raises(InputError, match=r"takes dense rows, not a sparse matrix"):
        check_model_input(hgb, check_data(sp.csr_matrix(X[:, :5]), numeric=False,
                                          require_y=False))
    categories = pd.DataFrame({"c": pd.Categorical(np.where(y == 1, "p", "n")), "x": X[:, 0]})
    hgb_cat = HistGradientBoostingClassifier(max_iter=3).fit(categories, y)
    check_model_input(hgb_cat, check_data(categories, numeric=False, require_y=False))


def test_a_pipeline_encodes_its_own_input(cancer):
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from aimodel_kernel.engine.core.inputs import check_model_input, refusals

    X, y = cancer
    frame = pd.DataFrame({"s": np.where(np.arange(569) % 2, "m", "f"), "x": X[:, 0]})
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["s"]), remainder="passthrough"),
                         LogisticRegression()).fit(frame, y)
    check_model_input(pipe, check_data(frame, numeric=False, require_y=False))
    unseen = frame.assign(s="x")
    with pytest.raises(InputError, match=r"^pipe cannot take Xn: Found unknown categories"), \
            refusals(pipe, x_name="Xn", name="pipe"):
        pipe.predict(unseen)
    with pytest.raises(ZeroDivisionError), refusals(pipe):  # not a refusal: a bug stays a bug
        _ = 1 / 0


def test_a_module_gets_a_trial_forward_pass(digits):
    torch = pytest.importorskip("torch")
    from conftest import mlp

    from aimodel_kernel.engine.core import links
    from aimodel_kernel.engine.core.data import TaskInfo
    from aimodel_kernel.engine.core.inputs import check_model_input

    X, _ = digits
    net = mlp()
    net.train()
    check_model_input(net, check_data(X, numeric=True, require_y=False))
    assert net.training  # its mode is given back
    with pytest.raises(InputError, match=r"^X \(rows of shape \(32,\)\) does not fit net: "
                                         r"RuntimeError: mat1 and mat2 shapes"):
        check_model_input(net, check_data(X[:, :32], require_y=False), name="net")
    with pytest.raises(InputError, match=r"X holds int64 values: pass floats"):
        check_model_input(net, check_data((X * 16).astype(np.int64), require_y=False))
    check_model_input(net, check_data(X > 0.5, require_y=False))  # booleans as %train feeds them

    class Fixed(torch.nn.Module):  # runs on its one batch size only: the batch it will get
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 2)

        def forward(self, x):
            return self.fc(x.view(8, 64))

    check_model_input(Fixed(), check_data(X[:8], require_y=False))

    class Text(torch.nn.Module):
        def forward(self, x):
            return "no tensor"

    with pytest.raises(InputError, match=r"Text\.forward returned a str; it must return a tensor"):
        check_model_input(Text(), check_data(X, require_y=False))
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    links.remember(net, links.ModelLink("run", "uri", TaskInfo("multiclass", tuple(range(10))),
                                        "torch", feature_names=tuple(frame.columns)))
    check_model_input(net, check_data(frame, require_y=False))
    renamed = frame.rename(columns={"p0": "q0"})
    with pytest.raises(InputError, match=r"missing \['p0'\] \(1\), not trained on \['q0'\]"):
        check_model_input(net, check_data(renamed, require_y=False))


def test_seeds_and_counts():
    from aimodel_kernel.engine.core.inputs import check_count, check_seed

    check_seed(0), check_seed(2**32 - 1), check_seed(None), check_count(1, "--n")
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(InputError, match=r"--seed must be in \[0, 2\*\*32\)"):
            check_seed(bad)
    with pytest.raises(InputError, match="--n must be a whole number from 1 to 4; got 5"):
        check_count(5, "--n", 1, 4)
