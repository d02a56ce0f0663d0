"""The one check of a model against the rows it is about to get, made before any library sees
them, and the translation of a library's refusal into one line.

:func:`check_model_input` is what every magic that predicts (``%evaluate``, ``%explain``,
``%fairness``, ``%compress --check``, ``%diff --data``) runs after :func:`.data.check_data`:

* a PyTorch module gets a trial forward pass on (at most) two rows, in eval mode under
  ``inference_mode``, converted exactly as the prediction will convert them
  (:func:`trial_forward`; ``%train`` makes the same check before it trains);
* a scikit-learn estimator is compared with what it was fitted on: ``n_features_in_``,
  ``feature_names_in_`` (missing, extra, renamed or reordered columns), rows × features,
  numbers (unless a Pipeline or an estimator that takes text does the encoding), sparse input
  only where it is accepted;
* a model ``%train`` recorded is compared with the columns it was trained on.

A refusal that still comes from the library afterwards (a ``ValueError`` of scikit-learn's own
checks, a PyTorch shape error in a later batch) becomes an :class:`InputError` of one line
through :func:`refusals` / :func:`forward_refused`. Nothing here imports torch or scikit-learn
unless the model is one of theirs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import links
from .data import (
    Data,
    is_dataset,
    is_frame,
    is_loader,
    is_tensor,
    is_torch_model,
    take_rows,
    to_numpy,
)
from .errors import InputError

SEED_LIMIT = 2**32
MAX_MESSAGE = 200  # characters of a library's message quoted in ours
#: what a module's forward raises for input it cannot take (as ``%train``'s check)
FORWARD_ERRORS = (RuntimeError, TypeError, ValueError, IndexError)
TRIAL_ROWS = 2
PREDICT_BATCH = 1024  # rows per forward pass when predicting (core/prediction.py)


# -- messages and options --------------------------------------------------------------------
def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined by spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def first_line(exc: BaseException, limit: int = MAX_MESSAGE) -> str:
    """The first line of an exception's message (its type name when it has none), shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_seed(seed: Any, flag: str = "--seed") -> None:
    """Raise :class:`InputError` unless ``seed`` is a whole number in ``[0, 2**32)`` (what
    numpy's and torch's generators take)."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not (
            0 <= seed < SEED_LIMIT):
        raise InputError(f"{flag} must be in [0, 2**32); got {seed}")


def check_count(value: Any, flag: str, minimum: int = 1, maximum: int | None = None) -> None:
    """Raise :class:`InputError` unless ``value`` is a whole number in ``[minimum, maximum]``."""
    whole = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if whole and value >= minimum and (maximum is None or value <= maximum):
        return
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
    raise InputError(f"{flag} must be a whole number {bounds}; got {value!r}")


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _label(model: Any, name: str | None) -> str:
    return name or type(model).__name__


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


# -- PyTorch -----------------------------------------------------------------------------------
def module_device_dtype(model: Any) -> tuple[Any, Any]:
    """The device of a module's first parameter and its first floating dtype."""
    import torch

    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    floats = [p.dtype for p in params if p.is_floating_point()]
    return device, floats[0] if floats else torch.float32


def as_model_input(batch: Any, device: Any, dtype: Any) -> Any:
    """A batch as the module gets it: floats (and booleans, as ``%train`` feeds them) in the
    module's floating dtype, integers as int64 (token ids), on the module's device."""
    import torch

    if not is_tensor(batch):
        arr = np.asarray(batch)
        if arr.dtype.kind not in "biufc":
            raise InputError(f"a PyTorch model cannot take inputs of dtype {arr.dtype}")
        if arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        elif not arr.dtype.isnative:  # torch takes native byte order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
        batch = torch.from_numpy(np.ascontiguousarray(arr))
    if batch.is_floating_point():
        batch = batch.to(dtype)
    elif batch.dtype not in (torch.bool, torch.uint8) and not batch.is_complex():
        batch = batch.long()
    return batch.to(device, non_blocking=True)


def set_mode(model: Any, *, training: bool) -> None:
    """``model.train(training)``; a loaded ``torch.export`` program has no modes to set."""
    with contextlib.suppress(NotImplementedError):
        model.train(training)


def batches(X: Any, batch_size: int) -> Iterator[Any]:
    """Input batches (tensors or arrays) of ``X`` in row order; a Dataset / DataLoader yields
    the ``x`` of its ``(x, y)`` items."""
    if is_loader(X) or is_dataset(X):
        import torch

        dataset = X.dataset if is_loader(X) else X
        kwargs: dict[str, Any] = {"batch_size": batch_size, "shuffle": False}
        if is_loader(X):
            kwargs["collate_fn"] = X.collate_fn
            kwargs["batch_size"] = X.batch_size or batch_size
        for batch in torch.utils.data.DataLoader(dataset, **kwargs):
            yield batch[0] if isinstance(batch, tuple | list) else batch
        return
    data = X if is_tensor(X) else to_numpy(X)
    for start in range(0, len(data), batch_size):
        yield data[start : start + batch_size]


def forward_refused(model: Any, example: Any, exc: BaseException, *, x_name: str = "X",
                    name: str | None = None) -> InputError:
    """The one-line error for a module that could not run on ``example``."""
    shape = tuple(getattr(example, "shape", ())[1:])
    message = (f"{x_name} (rows of shape {shape}) does not fit {_label(model, name)}: "
               f"{type(exc).__name__}: {first_line(exc)}")
    dtype = getattr(example, "dtype", None)
    if is_tensor(example) and not (example.is_floating_point() or example.is_complex()):
        message += (f"; {x_name} holds {str(dtype).removeprefix('torch.')} values: pass floats "
                    f"(e.g. {x_name}.astype('float32')) unless the model takes ids")
    return InputError(message)


def trial_forward(model: Any, example: Any, *, x_name: str = "X", name: str | None = None,
                  unwrap: bool = True) -> Any:
    """Run ``model`` once on ``example`` (a small batch already on its device) in eval mode
    under ``inference_mode``, restoring its mode; the output tensor.

    Parameters
    ----------
    model : torch.nn.Module
    example : torch.Tensor
        Two rows (or fewer) of the real input, converted as the model will get them.
    x_name, name : str, optional
        The user's names of the data and the model, for messages.
    unwrap : bool
        Take ``.logits`` of an output object and the first element of a tuple (as prediction
        does); ``False`` requires a tensor (training).

    Returns
    -------
    torch.Tensor

    Raises
    ------
    InputError
        The module cannot take the rows (shape, dtype), returns no tensor, or returns another
        number of rows.
    """
    import torch

    label = _label(model, name)
    was_training = getattr(model, "training", False)
    set_mode(model, training=False)
    try:
        with torch.inference_mode():
            out = model(example)
    except FORWARD_ERRORS as exc:
        raise forward_refused(model, example, exc, x_name=x_name, name=name) from None
    finally:
        set_mode(model, training=was_training)
    if unwrap:
        out = getattr(out, "logits", out)
        if isinstance(out, tuple | list) and out:
            out = out[0]
    if not isinstance(out, torch.Tensor):
        raise InputError(f"{label}.forward returned a {type(out).__name__}; it must return a "
                         "tensor of outputs (e.g. logits)")
    if out.ndim == 0 or out.shape[0] != example.shape[0]:
        rows = out.shape[0] if out.ndim else "a scalar"
        raise InputError(f"{label} returned {rows} rows for {example.shape[0]} inputs; its "
                         "forward must keep the batch dimension first")
    return out


def _first_batch(data: Data, rows: int) -> Any:
    if data.is_torch_data:
        return next(iter(batches(data.X, rows)))
    example = take_rows(data.X, np.arange(min(rows, data.n_samples)))
    return to_numpy(example) if is_frame(example) else example


def _check_torch(model: Any, data: Data, *, name: str | None, x_name: str) -> None:
    if data.kind == "sparse":
        raise InputError(f"{x_name} is a sparse matrix; a PyTorch model takes dense rows: pass "
                         f"{x_name}.toarray()")
    device, dtype = module_device_dtype(model)
    example = as_model_input(_first_batch(data, TRIAL_ROWS), device, dtype)
    try:
        trial_forward(model, example, x_name=x_name, name=name)
    except InputError as first:
        if data.n_samples <= TRIAL_ROWS:
            raise
        try:  # a module that only runs on the batch it will get (a fixed batch size)
            batch = as_model_input(_first_batch(data, PREDICT_BATCH), device, dtype)
            trial_forward(model, batch, x_name=x_name, name=name)
        except InputError:
            raise first from None  # the two-row error is the one to show


# -- scikit-learn ------------------------------------------------------------------------------
def refused(model: Any, exc: BaseException, *, x_name: str = "X",
            name: str | None = None) -> InputError:
    """The one-line error for an estimator whose own checks refused ``x_name``."""
    return InputError(f"{_label(model, name)} cannot take {x_name}: {first_line(exc)}")


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


def _check_sklearn(model: Any, data: Data, *, name: str | None, x_name: str,
                   fitting: bool) -> None:
    label = _label(model, name)
    if data.is_torch_data:
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


# -- the shared check --------------------------------------------------------------------------
def check_model_input(model: Any, data: Data, *, name: str | None = None, x_name: str = "X",
                      fitting: bool = False) -> None:
    """Check that ``model`` can take the rows of ``data`` before any library sees them.

    Parameters
    ----------
    model : scikit-learn estimator or torch.nn.Module
        Fitted, unless ``fitting``.
    data : Data
        The checked input (:func:`~.data.check_data`).
    name, x_name : str, optional
        The user's names of the model and of the data, for messages.
    fitting : bool
        The rows are for ``fit``: only what fitting needs (no fitted width or columns).

    Raises
    ------
    InputError
        Rows the model cannot take, with what to do about it.
    """
    link = links.lookup(model)
    if link is not None and not fitting and data.kind == "frame":
        check_columns(data.feature_names, link.feature_names, x_name=x_name,
                      model=_label(model, name))
    if is_torch_model(model):
        if not fitting:
            _check_torch(model, data, name=name, x_name=x_name)
        return
    _check_sklearn(model, data, name=name, x_name=x_name, fitting=fitting)
