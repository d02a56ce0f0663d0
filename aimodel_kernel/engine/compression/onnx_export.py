"""ONNX export (``torch.onnx`` with the ``torch.export``-based exporter, ``skl2onnx``) and
onnxruntime int8 quantization of an export. Running an ONNX file is
:mod:`~aimodel_kernel.engine.store.onnx_model`'s job (what a registered ONNX version loads as).

Every heavy package is imported inside the function that needs it, through
:func:`~aimodel_kernel.engine.core.errors.require`, so a missing one is a one-line
:class:`~aimodel_kernel.engine.core.errors.MissingDependency` naming ``aimodel-kernel[compress]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..store.onnx_model import need, session

QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv")
MAX_CALIBRATION_ROWS = 512


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' and quantizer's console chatter (graph dumps, advice, warnings)."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript", "root",
             "onnxruntime", "skl2onnx")
    loggers = [logging.getLogger(n if n != "root" else None) for n in names]
    levels = [lg.level for lg in loggers]
    sink = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# -- PyTorch ---------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if line and not line.startswith(("Failed to", "##")):
            return line[:240]
    return type(exc).__name__


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
    why = _first_line(exc)
    if "data-dependent" in why or "DataDependent" in type(exc).__name__:
        return (f"{name} cannot be exported to ONNX: data-dependent control flow{at} (a Python "
                "branch on a tensor's value cannot be traced; use torch.where or torch.cond)")
    if "Constraints violated" in why:
        return (f"{name} cannot be exported to ONNX: its forward fixes the batch size{at} (e.g. "
                "x.view(8, -1)); write x.view(x.size(0), -1) so any batch size works")
    return f"{name} cannot be exported to ONNX: torch.export failed{at}: {why}"


def export_torch(model: Any, example: Any, path: str | Path) -> None:
    """Export ``model`` to ONNX at ``path`` with a dynamic batch axis.

    ``torch.export`` (non-strict) captures the graph once; ``torch.onnx.export`` converts that
    program, so a failure says which step failed and on what.

    Parameters
    ----------
    model : torch.nn.Module
        Exported in eval mode; its training mode is restored afterwards.
    example : torch.Tensor
        An input batch of at least two rows.
    path : path
        Where the ``.onnx`` file goes.

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
    try:
        with _quiet():
            try:
                batch = torch.export.Dim("batch", min=1)
                program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},),
                                              strict=False)
            except Exception as exc:
                raise InputError(_capture_error(name, exc)) from None
            try:
                onnx_program = torch.onnx.export(program, (example,), dynamo=True,
                                                 verbose=False, optimize=True)
            except Exception as exc:
                op = _failing_op(exc)
                what = f"operator {op} has no ONNX translation" if op else _first_line(exc)
                raise InputError(f"{name} cannot be exported to ONNX: {what}") from None
            onnx_program.save(str(path))
        strip_debug_info(path)
    finally:
        model.train(was_training)


def strip_debug_info(path: str | Path) -> None:
    """Drop what only debugging needs from an ONNX file, in place: the per-node metadata
    torch's exporter writes (source stack traces, module names; ~700 bytes a node), doc strings
    and node names, and give internal tensors short names (the graph's inputs and outputs keep
    theirs). Weights, operators and shapes are untouched, so outputs are bit-identical; for a
    small model this is a large share of the file (38k-parameter CNN, int8: 55 KB -> 44 KB)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    if any(a.HasField("g") or a.graphs for n in graph.node for a in n.attribute):
        keep = None  # subgraphs may capture outer names: leave names alone
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if keep is None or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    graph.doc_string = ""
    for node in graph.node:
        node.doc_string = ""
        node.name = ""
        del node.metadata_props[:]
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
        tensor.doc_string = ""
    for info in graph.value_info:
        info.name = short(info.name)
    onnx.save(model, str(path))


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
        with _quiet():
            onx = skl2onnx.convert_sklearn(
                model, initial_types=[("X", FloatTensorType([None, n_features]))],
                options={"zipmap": False} if _is_classifier(model) else None)
    except Exception as exc:
        m = re.search(r"type '<class '([\w.]+)'>'", str(exc))
        what = f"skl2onnx has no converter for {m[1].rsplit('.', 1)[-1]}" if m else _first_line(
            exc)
        raise InputError(f"{type(model).__name__} cannot be exported to ONNX: {what}") from None
    Path(path).write_bytes(onx.SerializeToString())


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model))


def graph_ops(path: str | Path) -> list[str]:
    """The operator types of an ONNX file's graph, in order of first use."""
    onnx = need("onnx", "reading ONNX models")
    ops: list[str] = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type not in ops:
            ops.append(node.op_type)
    return ops


def check_int8_path(path: str | Path, model_name: str) -> None:
    """Raise :class:`InputError` unless the graph has operators int8 quantization applies to."""
    ops = graph_ops(path)
    if not any(op in QUANTIZABLE_OPS for op in ops):
        shown = ", ".join(ops[:4]) + (" ..." if len(ops) > 4 else "")
        raise InputError(f"{model_name} has no int8 path: its ONNX graph ({shown}) has no "
                         "MatMul, Gemm or Conv for onnxruntime to quantize")


def quantize_int8(source: str | Path, target: str | Path, calibration: np.ndarray) -> None:
    """Static int8 quantization with onnxruntime: QDQ format, int8 weights per channel (per
    tensor where onnxruntime cannot do per channel), uint8 activations calibrated (min/max) on
    ``calibration`` rows.

    Parameters
    ----------
    source, target : path
        The float32 ONNX file and where the int8 one goes.
    calibration : numpy.ndarray
        Representative float32 inputs (at most 512 rows are used).
    """
    need("onnxruntime", "int8 quantization")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    input_name = session(source).get_inputs()[0].name
    rows = np.ascontiguousarray(calibration[:MAX_CALIBRATION_ROWS], dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: rows[i : i + 64]} for i in range(0, len(rows), 64)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with _quiet(), tempfile.TemporaryDirectory(prefix="aimodel-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:  # shape inference + graph fusions first, as onnxruntime recommends
            from onnxruntime.quantization.shape_inference import quant_pre_process

            quant_pre_process(str(source), str(prepared))
        except Exception:  # the quantizer still works on the graph as exported
            prepared = Path(source)
        first: Exception | None = None
        # per-channel weights first; onnxruntime's per-channel bias adjustment fails on some
        # graphs (a Gemm whose bias is 2-d, as skl2onnx writes them): per-tensor then
        for graph, per_channel in ((prepared, True), (prepared, False), (Path(source), True)):
            try:
                quantize_static(str(graph), str(target), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=per_channel, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8,
                                op_types_to_quantize=list(QUANTIZABLE_OPS))
                strip_debug_info(target)
                return
            except Exception as exc:
                first = first or exc
        raise first
