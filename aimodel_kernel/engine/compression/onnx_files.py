"""What every ONNX step shares: the exporters' and quantizer's chatter silenced, a library's
first line of error, the debug information stripped from a file, the operators of a graph."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..store.onnx_model import need


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if line and not line.startswith(("Failed to", "##")):
            return line[:240]
    return type(exc).__name__


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


def graph_ops(path: str | Path) -> list[str]:
    """The operator types of an ONNX file's graph, in order of first use."""
    onnx = need("onnx", "reading ONNX models")
    ops: list[str] = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type not in ops:
            ops.append(node.op_type)
    return ops
