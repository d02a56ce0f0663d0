"""Everything ``%compress`` checks before it builds anything: the options, the check rows
against the model, the calibration rows and where the export goes. A :class:`Plan` is what the
checks leave: the rows every variant runs on, in the form its runtime takes.

PyTorch check rows follow the batch contract (:mod:`~aimodel_kernel.engine.core.batches`): a
tensor, a tuple of inputs or a dict of inputs; floating inputs in the module's dtype, token ids
int64. A Dataset or DataLoader is collated into one such batch first
(:func:`~aimodel_kernel.engine.core.collate.collate_all`, with the loader's ``collate_fn``). A
model taking token ids gets onnxruntime's dynamic int8 quantization (nothing to calibrate), one
taking only floats static int8 calibrated on rows.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import batches as contract
from ..core.collate import collate_all
from ..core.data import TaskInfo, to_numpy
from ..core.errors import InputError
from ..core.inputs import cpu_count
from ..core.model_names import check_model_name
from ..core.options import QUANTIZATIONS
from ..core.prediction import predict, prepare
from ..core.torch_inputs import (
    as_model_input,
    describe_rows,
    forward_refused,
    module_device_dtype,
    trial_forward,
)
from ..store.onnx_model import need
from .feeds import has_sequence
from .pruning import check_amount

MAX_CALIBRATION = 512


@dataclass
class Plan:
    """Checked inputs: everything needed to build the variants."""

    framework: str
    task: TaskInfo
    X: Any  # the user's rows as given (a DataFrame stays one for scikit-learn)
    Xn: Any  # float32 rows (scikit-learn), or the PyTorch batch of every check row
    y: np.ndarray
    calibration: Any  # rows like Xn (at most 512) to calibrate static int8 on
    example: Any = None  # a small torch batch for export and tracing
    onnx: bool = False
    quantize: bool = False
    auto: bool = False
    int8: str = "static"  # "dynamic" for models taking token ids

    @property
    def n(self) -> int:
        """The number of check rows."""
        return contract.batch_len(self.Xn) if self.framework == "torch" else len(self.Xn)

    def rows(self, index: np.ndarray) -> Any:
        """The check rows ``index`` (an array of row numbers), in the form of :attr:`Xn`."""
        if self.framework != "torch":
            return self.Xn[index]
        import torch

        return contract.take(self.Xn, torch.as_tensor(index, dtype=torch.long))


def check_plan(model: Any, X: Any, y: Any, framework: str, *, prune: float | None,
               structured: float | None, quantize: str | None, onnx: bool,
               max_drop: float | None, name: str | None, threads: int, repeats: int,
               calibration: Any, names: tuple[str, str, str],
               out: str | Path | None = None) -> Plan:
    """Check every option and the rows; the :class:`Plan` to build from.

    Raises
    ------
    InputError
        Bad options, check rows the model cannot take, calibration rows unlike the check rows,
        an ``--out`` that cannot be written. Nothing has been built or written.
    """
    model_name, x_name, _ = names
    prune = check_amount(prune, "--prune")
    structured = check_amount(structured, "--structured")
    if quantize not in (None, *QUANTIZATIONS):
        raise InputError(f"--quantize supports int8 only; got {quantize!r}")
    if framework == "sklearn" and (prune is not None or structured is not None):
        flag = "--prune" if prune is not None else "--structured"
        raise InputError(f"{flag} applies to PyTorch models; {model_name} is a scikit-learn "
                         f"{type(model).__name__} (try --onnx)")
    if max_drop is not None and not (isinstance(max_drop, int | float) and 0 <= max_drop < 1
                                     and math.isfinite(max_drop)):
        raise InputError(f"--max-drop is the largest metric drop allowed, e.g. 0.01 for one "
                         f"point; got {max_drop}")
    cores = cpu_count()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads must be a positive whole number; got {threads}")
    if threads > cores:  # thousands of OpenMP threads crash the process (SIGSEGV in libgomp)
        raise InputError(f"--threads {threads} is more than the {cores} cores this kernel may "
                         f"use; pass --threads 1 to {cores}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 5:
        raise InputError(f"--repeats must be at least 5; got {repeats}")
    if name is not None:
        check_model_name(name)
    check_out(out)
    auto = not (prune or structured or quantize or onnx)
    wants_onnx = onnx or quantize is not None or auto
    if wants_onnx:
        need("onnx", "ONNX export")
        need("onnxruntime", "running ONNX models")
        need("skl2onnx" if framework == "sklearn" else "onnxscript", "ONNX export")
    if _kind_of(X) == "sparse":
        raise InputError(f"--check takes dense rows (arrays, DataFrames, tensors, a tuple or "
                         f"dict of them, a Dataset or DataLoader); {x_name} is a sparse matrix: "
                         f"pass {x_name}.toarray()")
    if _kind_of(X) == "dataset":
        if framework != "torch":
            raise InputError(f"--check {x_name} is a torch Dataset or DataLoader, which a "
                             f"scikit-learn {type(model).__name__} does not take; pass its rows "
                             "as an array or DataFrame")
        if y is not None:
            raise InputError(f"{x_name} yields its targets; pass --check {x_name} alone")
        X, y = collate_all(X, x_name=x_name, y_name=names[2])  # every variant runs on them
    data, task = prepare(model, X, y, name=model_name, x_name=x_name, y_name=names[2])
    pred = predict(model, data.X, task=task, x_name=x_name, name=model_name)
    build = dict(onnx=onnx or auto, quantize=quantize is not None or auto, auto=auto)
    if framework == "torch":
        return _torch_plan(model, data, pred.task, calibration, model_name, x_name, build)
    Xn = to_numpy(data.X)
    if Xn.dtype.kind not in "biuf":
        raise InputError(f"{x_name} must be numeric for ONNX (dtype {Xn.dtype})")
    Xn = Xn.astype(np.float32) if Xn.dtype.kind != "f" else Xn
    if getattr(model, "n_features_in_", None) not in (None, Xn.shape[1] if Xn.ndim == 2 else 0):
        raise InputError(f"{x_name} has rows of shape {Xn.shape[1:]} but {model_name} was "
                         f"fitted on {model.n_features_in_} features")
    calib = Xn if calibration is None else _calibration_rows(calibration)
    if calib.shape[1:] != Xn.shape[1:] or calib.dtype.kind not in "biuf" or not len(calib):
        raise InputError(f"the calibration rows have shape {calib.shape[1:]} (dtype "
                         f"{calib.dtype}) but {x_name} has {Xn.shape[1:]}; pass --calibrate rows "
                         f"like {x_name}'s")
    if calib.dtype.kind == "f" and not np.isfinite(calib).all():
        raise InputError("the calibration rows have NaN or infinite values; impute or drop them")
    return Plan(framework, pred.task, data.X, Xn, np.asarray(data.y),
                calib[:MAX_CALIBRATION].astype(np.float32), **build)


def _torch_plan(model: Any, data: Any, task: TaskInfo, calibration: Any, model_name: str,
                x_name: str, build: dict[str, bool]) -> Plan:
    """The check rows as one PyTorch batch on the module's device, and a small example."""
    import torch

    device, dtype = module_device_dtype(model)
    rows = as_model_input(data.X, device, dtype)
    n = contract.batch_len(rows)
    index = torch.arange(max(2, min(n, 8))) % n  # at least two rows, for a dynamic batch
    example = contract.take(rows, index)
    try:
        trial_forward(model, example, x_name=x_name, name=model_name)
    except InputError:
        raise
    except Exception as exc:  # a forward that fails on the example only: still the rows' fault
        raise forward_refused(model, example, exc, x_name=x_name, name=model_name) from None
    int8 = "dynamic" if has_sequence(rows) else "static"
    calib = rows
    if calibration is not None and int8 == "static":
        calib = as_model_input(calibration, device, dtype)
        if describe_rows(calib) != describe_rows(rows):
            raise InputError(f"the calibration rows are {describe_rows(calib, 'them')} but "
                             f"{x_name} is {describe_rows(rows, x_name)}; pass --calibrate rows "
                             f"like {x_name}'s")
        if not all(bool(torch.isfinite(t).all()) for t in contract.tensors(calib)
                   if t.is_floating_point()):
            raise InputError("the calibration rows have NaN or infinite values; impute or drop "
                             "them")
    calib = contract.take(calib, slice(0, MAX_CALIBRATION))
    return Plan("torch", task, data.X, rows, np.asarray(data.y), calib, example, int8=int8,
                **build)


def _kind_of(X: Any) -> str:
    from ..core.data import is_dataset, is_hf_dataset, is_loader, is_sparse

    if is_loader(X) or is_dataset(X) or is_hf_dataset(X):
        return "dataset"
    return "sparse" if is_sparse(X) else "array"


def _calibration_rows(calibration: Any) -> np.ndarray:
    try:
        return np.asarray(to_numpy(calibration))
    except (TypeError, ValueError) as exc:
        raise InputError(f"--calibrate takes rows like --check X's: {exc}") from None


def check_out(out: str | Path | None) -> None:
    """Raise :class:`InputError` when ``--out`` cannot be written: checked before any work."""
    if out is None:
        return
    target = Path(out).expanduser()
    if target.suffix == ".onnx" and target.is_dir():
        raise InputError(f"--out {out} is a folder; name a .onnx file or a folder without the "
                         "suffix")
    folder = target.parent if target.suffix == ".onnx" else target
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: {existing} is not a writable folder; pass a path "
                         "you can write to")
