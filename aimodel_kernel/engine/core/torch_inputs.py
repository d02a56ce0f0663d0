"""A PyTorch module against its rows: the batches it gets when predicting, converted as it gets
them, and the trial forward pass that refuses rows it cannot take in one line.

Inputs follow the batch contract of :mod:`.batches`: a tensor, a tuple/list of inputs
(positional arguments) or a dict of inputs (keyword arguments), in row order; a Dataset or
DataLoader gives up the inputs of its items (``(inputs, target)`` pairs, dicts with ``labels``).
Floating inputs take the module's floating dtype; integer inputs (token ids) stay integers.
Torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from . import batches as contract
from .data import Data
from .errors import InputError
from .kinds import is_dataset, is_frame, is_hf_dataset, is_loader, is_tensor, to_numpy
from .messages import first_line, label
from .nested import is_nested

#: what a module's forward raises for input it cannot take (as ``%train``'s check)
FORWARD_ERRORS = (RuntimeError, TypeError, ValueError, IndexError)
TRIAL_ROWS = 2
PREDICT_BATCH = 1024  # rows per forward pass when predicting (core/prediction.py)


def module_device_dtype(model: Any) -> tuple[Any, Any]:
    """The device of a module's first parameter and its first floating dtype."""
    import torch

    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    floats = [p.dtype for p in params if p.is_floating_point()]
    return device, floats[0] if floats else torch.float32


def _leaf(value: Any, device: Any, dtype: Any) -> Any:
    import torch

    if not is_tensor(value):
        arr = to_numpy(value) if is_frame(value) else np.asarray(value)
        if arr.dtype.kind not in "biufc":
            raise InputError(f"a PyTorch model cannot take inputs of dtype {arr.dtype}")
        if arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        elif not arr.dtype.isnative:  # torch takes native byte order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
        value = torch.from_numpy(np.ascontiguousarray(arr))
    if value.is_floating_point():
        value = value.to(dtype)
    elif value.dtype not in (torch.bool, torch.uint8) and not value.is_complex():
        value = value.long()
    return value.to(device, non_blocking=True)


def as_model_input(batch: Any, device: Any, dtype: Any) -> Any:
    """A batch as the module gets it, on its device: floating inputs (and booleans, as
    ``%train`` feeds them) in the module's floating dtype, integers as int64 (token ids). A
    tuple/list or dict of inputs keeps its structure and every input its own dtype."""
    if isinstance(batch, Mapping):
        return {k: as_model_input(v, device, dtype) for k, v in batch.items()}
    if isinstance(batch, list | tuple) and is_nested(batch):
        return type(batch)(as_model_input(v, device, dtype) for v in batch)
    return _leaf(batch, device, dtype)


def set_mode(model: Any, *, training: bool) -> None:
    """``model.train(training)``; a loaded ``torch.export`` program has no modes to set."""
    with contextlib.suppress(NotImplementedError):
        model.train(training)


def _rows(X: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of every input of ``X`` (a frame as numbers, a list as an array)."""
    if isinstance(X, Mapping):
        return {k: _rows(v, start, stop) for k, v in X.items()}
    if isinstance(X, list | tuple) and is_nested(X):
        return type(X)(_rows(v, start, stop) for v in X)
    data = X if is_tensor(X) else to_numpy(X)
    return data[start:stop]


def n_rows(X: Any) -> int:
    """Rows of an array, tensor or nested inputs (the first dimension of the first input)."""
    if isinstance(X, Mapping):
        return n_rows(next(iter(X.values())))
    if isinstance(X, list | tuple) and is_nested(X):
        return n_rows(X[0])
    return len(X) if not hasattr(X, "shape") else int(X.shape[0])


def _hf_batches(X: Any, batch_size: int) -> Iterator[Any]:
    """Column slices of a Hugging Face dataset; the target column and text columns left out."""
    for start in range(0, len(X), batch_size):
        columns = X[start : start + batch_size]
        inputs, _ = contract.split_item(dict(columns))
        yield {k: v for k, v in inputs.items()
               if is_tensor(v) or np.asarray(v).dtype.kind in "biufc"}


def input_batches(X: Any, batch_size: int) -> Iterator[Any]:
    """The input batches of ``X`` in row order, ``batch_size`` rows each.

    An array, tensor or frame gives row slices; nested inputs (tuple/list or dict) slices of
    every input; a Dataset its items collated by torch's default collate; a DataLoader its own
    ``collate_fn`` and ``batch_size`` (in dataset order, not shuffled); a Hugging Face dataset
    its numeric columns. The inputs of each item or batch are kept, its target dropped
    (:func:`.batches.split_item`).
    """
    if is_hf_dataset(X):
        yield from _hf_batches(X, batch_size)
        return
    if is_loader(X) or is_dataset(X):
        import torch

        dataset = X.dataset if is_loader(X) else X
        kwargs: dict[str, Any] = {"batch_size": batch_size, "shuffle": False}
        if is_loader(X):
            kwargs["collate_fn"] = X.collate_fn
            kwargs["batch_size"] = X.batch_size or batch_size
        for batch in torch.utils.data.DataLoader(dataset, **kwargs):
            yield contract.split_item(batch)[0]
        return
    for start in range(0, n_rows(X), batch_size):
        yield _rows(X, start, start + batch_size)


def describe_rows(example: Any, x_name: str = "X") -> str:
    """What one row of a batch is, for messages: ``input_ids of shape (16,) int64 per row,
    attention_mask of shape (16,) int64 per row``; ``X[0] ...`` for positional inputs."""
    def one(t: Any) -> str:
        if not hasattr(t, "shape"):
            return f"a {type(t).__name__}"
        dtype = str(getattr(t, "dtype", "")).removeprefix("torch.")
        return f"of shape {tuple(t.shape[1:])} {dtype} per row"

    if isinstance(example, Mapping):
        return ", ".join(f"{k} {one(v)}" for k, v in example.items())
    if isinstance(example, list | tuple):
        return ", ".join(f"{x_name}[{i}] {one(v)}" for i, v in enumerate(example))
    return f"{x_name} {one(example)}"


def _named(example: Any, x_name: str) -> list[tuple[str, Any]]:
    """``(name, tensor)`` of each input, named as :func:`describe_rows` names them."""
    if isinstance(example, Mapping):
        return [(str(k), v) for k, v in example.items() if is_tensor(v)]
    return [(f"{x_name}[{i}]", v) for i, v in enumerate(example) if is_tensor(v)]


def forward_refused(model: Any, example: Any, exc: BaseException, *, x_name: str = "X",
                    name: str | None = None) -> InputError:
    """The one-line error for a module that could not run on ``example``."""
    why = f"{type(exc).__name__}: {first_line(exc)}"
    if not is_tensor(example):  # several inputs: name each
        message = f"{label(model, name)} cannot take {x_name}: " \
                  f"{describe_rows(example, x_name)}: {why}"
        floats = [n for n, t in _named(example, x_name) if t.is_floating_point()]
        if floats and "Long" in str(exc):  # an embedding given float ids
            message += f"; pass {floats[0]} as integer ids (e.g. .long())"
        return InputError(message)
    shape = tuple(example.shape[1:])
    message = f"{x_name} (rows of shape {shape}) does not fit {label(model, name)}: {why}"
    if not (example.is_floating_point() or example.is_complex()):
        dtype = str(example.dtype).removeprefix("torch.")
        message += (f"; {x_name} holds {dtype} values: pass floats "
                    f"(e.g. {x_name}.astype('float32')) unless the model takes ids")
    return InputError(message)


def trial_forward(model: Any, example: Any, *, x_name: str = "X", name: str | None = None,
                  unwrap: bool = True) -> Any:
    """Run ``model`` once on ``example`` (a small batch already on its device) in eval mode
    under ``inference_mode``, restoring its mode; the output tensor.

    Parameters
    ----------
    model : torch.nn.Module
    example : torch.Tensor, tuple or dict of tensors
        Two rows (or fewer) of the real input, converted as the model will get them; a tuple
        is passed as positional arguments, a dict as keyword arguments.
    x_name, name : str, optional
        The user's names of the data and the model, for messages.
    unwrap : bool
        Take the predictions of an output object (``logits``, the first element of a tuple:
        :func:`.batches.predictions`); ``False`` requires a tensor (training).

    Returns
    -------
    torch.Tensor

    Raises
    ------
    InputError
        The module cannot take the rows (shape, dtype, a missing input), returns no tensor, or
        returns another number of rows.
    """
    import torch

    who = label(model, name)
    was_training = getattr(model, "training", False)
    set_mode(model, training=False)
    try:
        with torch.inference_mode():
            out = contract.call(model, example)
    except FORWARD_ERRORS as exc:
        raise forward_refused(model, example, exc, x_name=x_name, name=name) from None
    finally:
        set_mode(model, training=was_training)
    if unwrap:
        with contextlib.suppress(TypeError):  # no tensor in it: refused below
            out = contract.predictions(out)
    if not isinstance(out, torch.Tensor):
        raise InputError(f"{who}.forward returned a {type(out).__name__}; it must return a "
                         "tensor of outputs (e.g. logits)")
    rows = contract.batch_len(example)
    if out.ndim == 0 or out.shape[0] != rows:
        got = out.shape[0] if out.ndim else "a scalar"
        raise InputError(f"{who} returned {got} rows for {rows} inputs; its forward must keep "
                         "the batch dimension first")
    return out


def first_batch(X: Any, rows: int) -> Any:
    """The first ``rows`` rows of ``X`` (a loader's first batch), as :func:`input_batches`."""
    try:
        return next(iter(input_batches(X, rows)))
    except StopIteration:
        raise InputError("the inputs have no rows") from None


def check_torch_rows(model: Any, data: Data, *, name: str | None, x_name: str) -> None:
    """Raise :class:`InputError` unless ``model`` runs on the first rows of ``data`` (two rows;
    a module that only runs on the batch it will get is tried on that batch too)."""
    if data.kind == "sparse":
        raise InputError(f"{x_name} is a sparse matrix; a PyTorch model takes dense rows: pass "
                         f"{x_name}.toarray()")
    device, dtype = module_device_dtype(model)
    example = as_model_input(first_batch(data.X, TRIAL_ROWS), device, dtype)
    try:
        trial_forward(model, example, x_name=x_name, name=name)
    except InputError as first:
        if data.n_samples <= TRIAL_ROWS:
            raise
        try:  # a module that only runs on the batch it will get (a fixed batch size)
            batch = as_model_input(first_batch(data.X, PREDICT_BATCH), device, dtype)
            trial_forward(model, batch, x_name=x_name, name=name)
        except InputError:
            raise first from None  # the two-row error is the one to show
