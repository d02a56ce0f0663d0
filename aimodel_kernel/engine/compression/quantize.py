"""onnxruntime int8 quantization of an ONNX export: static (QDQ, calibrated) for models taking
floats, dynamic (no calibration) for models taking token ids."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..store.onnx_model import need, session
from .onnx_files import first_line, graph_ops, quiet, strip_debug_info

QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv")
#: what onnxruntime's dynamic quantization rewrites (its IntegerOps registry, in short)
DYNAMIC_OPS = ("MatMul", "Gather", "Conv", "LSTM", "Attention")
MAX_CALIBRATION_ROWS = 512


def check_int8_path(path: str | Path, model_name: str, ops_wanted: tuple[str, ...] = QUANTIZABLE_OPS
                    ) -> None:
    """Raise :class:`InputError` unless the graph has operators int8 quantization applies to."""
    ops = graph_ops(path)
    if not any(op in ops_wanted for op in ops):
        shown = ", ".join(ops[:4]) + (" ..." if len(ops) > 4 else "")
        raise InputError(f"{model_name} has no int8 path: its ONNX graph ({shown}) has no "
                         f"{', '.join(ops_wanted[:-1])} or {ops_wanted[-1]} for onnxruntime to "
                         "quantize")


def quantize_int8(source: str | Path, target: str | Path,
                  calibration: np.ndarray | list[dict[str, np.ndarray]]) -> None:
    """Static int8 quantization with onnxruntime: QDQ format, int8 weights per channel (per
    tensor where onnxruntime cannot do per channel), uint8 activations calibrated (min/max) on
    ``calibration`` rows.

    Parameters
    ----------
    source, target : path
        The float32 ONNX file and where the int8 one goes.
    calibration : numpy.ndarray or list of dict
        Representative float32 inputs of a one-input graph (at most 512 rows are used), or
        the feeds (input name -> rows) of a graph with several inputs, one dict per batch.
    """
    need("onnxruntime", "int8 quantization")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if isinstance(calibration, np.ndarray):
        input_name = session(source).get_inputs()[0].name
        rows = np.ascontiguousarray(calibration[:MAX_CALIBRATION_ROWS], dtype=np.float32)
        feeds = [{input_name: rows[i : i + 64]} for i in range(0, len(rows), 64)]
    else:
        feeds = list(calibration)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with quiet(), tempfile.TemporaryDirectory(prefix="aimodel-quant-") as tmp:
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


def quantize_dynamic_int8(source: str | Path, target: str | Path,
                          feeds: dict[str, np.ndarray]) -> None:
    """Dynamic int8 quantization with onnxruntime (int8 weights, activations quantized per
    batch as they come: no calibration), the usual choice for token models, whose activations
    after the embedding have no fixed range to calibrate. The result is run once on ``feeds``.

    Raises
    ------
    InputError
        onnxruntime cannot run the quantized graph: the operator it has no int8 kernel for
        is named.
    """
    need("onnxruntime", "int8 quantization")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        strip_debug_info(target)
        try:
            session(target).run(None, feeds)
        except Exception as exc:
            m = re.search(r"implementation for (\w+)\(", str(exc))
            what = f"onnxruntime has no int8 kernel for {m[1]}" if m else first_line(exc)
            raise InputError(f"no int8 variant: {what}") from None
