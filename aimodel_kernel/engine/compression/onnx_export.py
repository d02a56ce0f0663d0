"""ONNX export (``torch.onnx`` with the ``torch.export``-based exporter, ``skl2onnx``) and the
check of a PyTorch export against the module. Running an ONNX file is
:mod:`~aimodel_kernel.engine.store.onnx_model`'s job (what a registered ONNX version loads as).

Quantization is :mod:`.quantize`'s job (``quantize_int8`` is importable from here too).
Every heavy package is imported inside the function that needs it, through
:func:`~aimodel_kernel.engine.core.errors.require`, so a missing one is a one-line
:class:`~aimodel_kernel.engine.core.errors.MissingDependency` naming ``aimodel-kernel[compress]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core import batches as contract
from ..core.errors import InputError
from ..store.onnx_model import need, session
from .feeds import (
    at_length,
    dynamic_shapes,
    export_args,
    has_sequence,
    input_names,
    is_sequence,
    onnx_feeds,
    other_length,
    sequence_length,
)
from .onnx_files import first_line, quiet, strip_debug_info
from .quantize import quantize_int8

__all__ = ["check_export", "export_sklearn", "export_torch", "quantize_int8", "session",
           "strip_debug_info"]


# -- PyTorch ---------------------------------------------------------------------------------
def _user_frame(exc: BaseException) -> str | None:
    """``file.py:12 in forward: if x.sum() > 0:`` from the exporter's 'raised this error' note."""
    text = str(exc)
    m = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s*(.+)', text)
    if not m:
        return None
    return f"{Path(m[1]).name}:{m[2]} in {m[3]}: {m[4].strip()}"


def _failing_op(exc: BaseException) -> str | None:
    """The ATen operator a conversion error names, e.g. ``aten._linalg_eigh``."""
    m = re.search(r"OpOverload\(op='([\w.]+)'", str(exc)) or re.search(
        r"target=torch\.ops\.([\w.]+?)\.default", str(exc))
    return m[1] if m else None


def _capture_error(name: str, exc: BaseException) -> str:
    """One line saying why ``torch.export`` could not capture the module, and where."""
    where = _user_frame(exc)
    at = f" at {where}" if where else ""
    why = first_line(exc)
    if "data-dependent" in why or "DataDependent" in type(exc).__name__:
        return (f"{name} cannot be exported to ONNX: data-dependent control flow{at} (a Python "
                "branch on a tensor's value cannot be traced; use torch.where or torch.cond)")
    if "Constraints violated" in why:
        return (f"{name} cannot be exported to ONNX: its forward fixes the batch size{at} (e.g. "
                "x.view(8, -1)); write x.view(x.size(0), -1) so any batch size works")
    return f"{name} cannot be exported to ONNX: torch.export failed{at}: {why}"


def export_torch(model: Any, example: Any, path: str | Path) -> str:
    """Export ``model`` to ONNX at ``path`` with a dynamic batch axis, and a dynamic sequence
    axis for token ids (integer inputs of two or more dimensions keep int64).

    ``torch.export`` (non-strict) captures the graph once; ``torch.onnx.export`` converts that
    program, so a failure says which step failed and on what. A dict of inputs becomes named
    ONNX inputs (the keys); positional inputs are named after the forward's parameters. A
    module whose capture fixes the sequence length (``nn.GRU`` / ``nn.LSTM`` are unrolled over
    time) is exported with the TorchScript exporter instead, which keeps them as one ONNX
    ``GRU`` / ``LSTM`` node with a dynamic sequence axis.

    Parameters
    ----------
    model : torch.nn.Module
        Exported in eval mode; its training mode is restored afterwards.
    example : torch.Tensor, tuple or dict of tensors
        An input batch of at least two rows.
    path : path
        Where the ``.onnx`` file goes.

    Returns
    -------
    str
        The exporter used: ``"dynamo"`` or ``"torchscript"``.

    Raises
    ------
    InputError
        The module cannot be captured (data-dependent Python control flow, untraceable code:
        the message quotes the line) or an operator has no ONNX translation (named).
    MissingDependency
        onnx or onnxscript is missing.
    """
    import torch

    need("onnx", "ONNX export")
    need("onnxscript", "ONNX export of PyTorch models")
    name = type(model).__name__
    was_training = model.training
    model.eval()
    args, kwargs = export_args(example)
    seq = torch.export.Dim("seq", min=1) if has_sequence(example) else None
    shapes = dynamic_shapes(example, torch.export.Dim("batch", min=1), seq)
    exporter = "dynamo"
    try:
        with quiet():
            try:
                program = torch.export.export(model, args, kwargs=kwargs or None,
                                              dynamic_shapes=shapes, strict=False)
            except Exception as exc:
                if seq is None or "Constraints violated (seq)" not in str(exc):
                    raise InputError(_capture_error(name, exc)) from None
                _export_torchscript(model, example, path)
                exporter = "torchscript"
            else:
                try:
                    onnx_program = torch.onnx.export(program, args, kwargs=kwargs or None,
                                                     dynamo=True, verbose=False, optimize=True)
                except Exception as exc:
                    op = _failing_op(exc)
                    what = f"operator {op} has no ONNX translation" if op else first_line(exc)
                    raise InputError(f"{name} cannot be exported to ONNX: {what}") from None
                onnx_program.save(str(path))
        strip_debug_info(path)
    finally:
        model.train(was_training)
    return exporter


def _export_torchscript(model: Any, example: Any, path: str | Path) -> None:
    """The TorchScript exporter, dynamic batch and sequence axes by input name."""
    import torch

    names = input_names(model, example)
    leaves = list(example.values()) if isinstance(example, dict) else (
        list(example) if isinstance(example, list | tuple) else [example])
    axes = {}
    for n, t in zip(names, leaves, strict=True):
        axes[n] = {0: "batch", 1: "seq"} if is_sequence(t) else {0: "batch"}
    args, kwargs = export_args(example)
    try:
        torch.onnx.export(model, (*args, kwargs) if kwargs else args, str(path), dynamo=False,
                          input_names=names, dynamic_axes=axes)
    except Exception as exc:
        raise InputError(f"{type(model).__name__} cannot be exported to ONNX with a dynamic "
                         f"sequence length: {first_line(exc)}") from None


def check_export(model: Any, example: Any, path: str | Path, *, tol: float = 1e-3
                 ) -> dict[str, Any]:
    """Compare an export with the module at batch 1 and, for token ids, at another sequence
    length: the largest absolute output difference of each.

    Raises
    ------
    InputError
        The ONNX outputs differ from PyTorch's beyond ``tol`` (relative to the output scale):
        the export fixed a shape it should not have.
    """
    import torch

    sess = session(path)
    checks = {"batch 1": contract.take(example, slice(0, 1))}
    length = sequence_length(example)
    if length is not None:
        checks[f"sequence length {other_length(length)}"] = at_length(example,
                                                                    other_length(length))
    found: dict[str, Any] = {}
    was_training = model.training
    model.eval()
    try:
        for what, rows in checks.items():
            with torch.inference_mode():
                ref = contract.predictions(contract.call(model, rows)).double().numpy()
            try:
                out = np.asarray(sess.run(None, onnx_feeds(rows, sess.get_inputs()))[0],
                                 dtype=np.float64)
            except Exception as exc:
                raise InputError(f"the ONNX export of {type(model).__name__} fails at {what}: "
                                 f"{first_line(exc)}") from None
            diff = float(np.max(np.abs(out.reshape(ref.shape) - ref))) if ref.size and \
                out.size == ref.size else float("inf")
            if not diff <= tol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0):
                raise InputError(f"the ONNX export of {type(model).__name__} differs from "
                                 f"PyTorch at {what} (max |diff| {diff:.3g}): it fixed a shape")
            found[what] = diff
    finally:
        model.train(was_training)
    return found


# -- scikit-learn ------------------------------------------------------------------------------
def export_sklearn(model: Any, n_features: int, path: str | Path) -> None:
    """Convert a fitted scikit-learn estimator with ``skl2onnx`` (float32 input ``X``; a
    classifier gives ``label`` and a ``probabilities`` array, no ZipMap).

    Raises
    ------
    InputError
        skl2onnx has no converter for the estimator (or one of its steps).
    MissingDependency
        skl2onnx or onnx is missing.
    """
    need("onnx", "ONNX export")
    skl2onnx = need("skl2onnx", "ONNX export of scikit-learn models")
    from skl2onnx.common.data_types import FloatTensorType

    try:
        with quiet():
            onx = skl2onnx.convert_sklearn(
                model, initial_types=[("X", FloatTensorType([None, n_features]))],
                options={"zipmap": False} if _is_classifier(model) else None)
    except Exception as exc:
        m = re.search(r"type '<class '([\w.]+)'>'", str(exc))
        what = f"skl2onnx has no converter for {m[1].rsplit('.', 1)[-1]}" if m else first_line(
            exc)
        raise InputError(f"{type(model).__name__} cannot be exported to ONNX: {what}") from None
    Path(path).write_bytes(onx.SerializeToString())


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model))


