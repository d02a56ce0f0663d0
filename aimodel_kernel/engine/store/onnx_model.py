"""An ONNX file with scikit-learn's prediction methods, run by onnxruntime: what a registered
ONNX version loads as (``serialize.load_model``), and what ``%compress`` checks variants with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..core.errors import InputError, require

EXTRA = "compress"


def need(module: str, purpose: str) -> Any:
    """Import an optional package of the ``compress`` extra."""
    return require(module, extra=EXTRA, purpose=purpose)


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra-op threads."""
    ort = need("onnxruntime", "running ONNX models")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])



class OnnxModel(BaseEstimator):
    """An ONNX file run by onnxruntime, with the scikit-learn prediction methods.

    ``predict`` gives labels (classification) or values; ``predict_proba`` class probabilities;
    ``run`` the raw first output (logits of a PyTorch export). ``fit`` is refused.
    """

    def __init__(self, path: str | Path, *, task: str, classes: tuple = (), source: str = "torch",
                 threads: int = 1) -> None:
        self.path = str(path)
        self.task = task
        self.classes = tuple(classes)
        self.source = source
        self.threads = threads
        self.classes_ = np.asarray(classes) if classes else None
        self.session = session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.n_features_in_ = self.session.get_inputs()[0].shape[-1]

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return f"OnnxModel({Path(self.path).name!r}, task={self.task!r})"

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        raise InputError("an ONNX model cannot be trained; train the original model instead")

    #: a PyTorch export may take several inputs (a tuple, or a dict by name) and token ids
    takes_nested_inputs = True

    def outputs(self, X: Any) -> list[np.ndarray]:
        return self.session.run(None, onnx_feeds(X, self.session.get_inputs()))

    def run(self, X: Any) -> np.ndarray:
        """The raw output: logits / values (PyTorch), probabilities or values (scikit-learn)."""
        out = self.outputs(X)
        return np.asarray(out[1] if self.source == "sklearn" and len(out) > 1 else out[0])

    def predict(self, X: Any) -> np.ndarray:
        out = self.outputs(X)
        if self.task == "regression":
            return np.asarray(out[0], dtype=float).reshape(len(out[0]), -1)[:, 0]
        if self.source == "sklearn":
            return np.asarray(out[0])
        return labels_from_raw(np.asarray(out[0]), self.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task == "regression":
            raise AttributeError("a regression model has no predict_proba")
        raw = self.run(X)
        if self.source == "sklearn":
            return raw
        if raw.ndim == 1 or raw.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-raw.reshape(-1)))
            return np.column_stack([1.0 - p1, p1])
        z = np.exp(raw - raw.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
               "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


def onnx_feeds(rows: Any, inputs: list[Any]) -> dict[str, np.ndarray]:
    """onnxruntime feeds for ``rows`` (an array, tensor or frame; a tuple of them in the
    graph's input order; a dict of them by input name), each in the dtype the graph declares
    (``inputs``: ``session.get_inputs()``).

    Raises
    ------
    InputError
        A graph input a dict of rows does not have.
    """
    from collections.abc import Mapping

    from ..core.data import to_numpy

    if isinstance(rows, Mapping):
        missing = [i.name for i in inputs if i.name not in rows]
        if missing:
            raise InputError(f"the ONNX model takes {', '.join(missing)}, which the rows lack "
                             f"(they have {', '.join(map(str, rows))})")
        values = [rows[i.name] for i in inputs]
    elif isinstance(rows, list | tuple) and len(inputs) > 1:
        values = list(rows)[: len(inputs)]
    else:
        values = [rows]
    return {spec.name: np.ascontiguousarray(to_numpy(value), dtype=ONNX_DTYPES.get(
        spec.type, np.float32)) for spec, value in zip(inputs, values, strict=True)}


def labels_from_raw(raw: np.ndarray, classes: Any) -> np.ndarray:
    """Class labels from a PyTorch classifier's raw outputs: the arg-max column, or for a single
    logit column ``classes[1]`` when it is positive."""
    classes = np.asarray(classes)
    if raw.ndim == 1 or raw.shape[1] == 1:
        return classes[(raw.reshape(-1) > 0).astype(int)]
    return classes[raw.argmax(axis=1)]


def check_self_contained(path: str | Path) -> None:
    """Refuse an ONNX file whose tensors point at external data: onnxruntime would read those
    files from wherever the (stored, untrusted) model says, beside or outside its folder.
    ``%compress`` writes every tensor inside the file."""
    from .trust import TrustError

    onnx = need("onnx", "checking ONNX models")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # not an ONNX protobuf
        raise TrustError(f"{Path(path).name} is not a readable ONNX model "
                         f"({type(exc).__name__}); refusing to load it") from None
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        tensors = [*graph.initializer, *(s.values for s in graph.sparse_initializer)]
        for node in graph.node:
            for attr in node.attribute:
                tensors.extend([attr.t, *attr.tensors] if attr.HasField("t") else attr.tensors)
                graphs.extend([attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs)
        for tensor in tensors:
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
                raise TrustError(f"{Path(path).name} reads tensor {tensor.name[:60]!r} from an "
                                 "external file; refusing to load it")


def load_onnx(path: str | Path, manifest: dict[str, Any]) -> Any:
    """The :class:`OnnxModel` of a saved ONNX version (see ``serialize.load_model``), after
    :func:`check_self_contained`. The manifest gives only the task, classes and source
    framework (facts that run no code)."""
    check_self_contained(path)
    task = manifest.get("task") or {}
    return OnnxModel(path, task=task.get("task", "regression"),
                     classes=tuple(task.get("classes") or ()),
                     source=manifest.get("source_framework", "torch"))
