"""How each compressed variant runs and how it is checked against the original: raw outputs,
predicted labels, the task metric, output difference and prediction agreement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import batches as contract
from ..core.data import TaskInfo
from ..core.torch_inputs import as_model_input
from ..store.onnx_model import OnnxModel, labels_from_raw
from .feeds import onnx_feeds

AGREEMENT_REL_TOL = 0.01  # regression: predictions within 1 % of the original's spread agree


@dataclass
class Outputs:
    """What one model gave on the check rows."""

    raw: np.ndarray | None  # logits / probabilities / values, for the output difference
    labels: np.ndarray  # labels (classification) or values (regression)


@dataclass
class Runner:
    """One runnable variant: ``outputs`` on the whole check set and ``call`` for timing."""

    outputs: Callable[[np.ndarray], Outputs]
    call: Callable[[Any], Any]
    prepare: Callable[[np.ndarray], Any]  # numpy batch -> the input ``call`` takes
    context: Callable[[], Any] | None = None  # e.g. torch.inference_mode while timing


def torch_runner(module: Any, task: TaskInfo, batch_size: int = 1024) -> Runner:
    """Eager PyTorch in eval mode under ``inference_mode`` (training mode restored after).

    Rows are a numpy array or a batch of the contract (a tensor, a tuple or dict of tensors):
    floating inputs take the module's dtype, token ids stay integers.
    """
    import torch

    params = list(module.parameters())
    floats = [p.dtype for p in params if p.is_floating_point()]
    dtype = floats[0] if floats else torch.float32
    device = params[0].device if params else torch.device("cpu")

    def prepare(x: Any) -> Any:
        return as_model_input(x, device, dtype)

    def forward(x: Any) -> Any:
        return contract.predictions(contract.call(module, x))

    def outputs(X: Any) -> Outputs:
        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                rows = prepare(X)
                n = contract.batch_len(rows)
                parts = [forward(contract.take(rows, slice(i, i + batch_size)))
                         .to("cpu", torch.float64).numpy() for i in range(0, n, batch_size)]
        finally:
            module.train(was_training)
        raw = np.concatenate(parts)
        return Outputs(raw, _labels(raw, task))

    def call(x: Any) -> Any:
        return forward(x)

    @contextlib.contextmanager
    def timing() -> Iterator[None]:
        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            module.train(was_training)

    return Runner(outputs, call, prepare, timing)


def sklearn_runner(model: Any, task: TaskInfo) -> Runner:
    """The scikit-learn estimator itself (``predict_proba`` for a classifier when it has one)."""
    proba = task.is_classification and hasattr(model, "predict_proba")

    def outputs(X: np.ndarray) -> Outputs:
        labels = np.asarray(model.predict(X))
        if not task.is_classification:
            values = labels.reshape(len(labels), -1)[:, 0].astype(float)
            return Outputs(values, values)
        return Outputs(np.asarray(model.predict_proba(X), dtype=float) if proba else None, labels)

    def call(x: Any) -> Any:
        return model.predict_proba(x) if proba else model.predict(x)

    return Runner(outputs, call, lambda x: x)


def onnx_runner(model: OnnxModel, task: TaskInfo, batch_size: int = 1024) -> Runner:
    """An onnxruntime session; labels as the original framework gives them. A PyTorch export
    takes the rows of the batch contract, fed by input name in the graph's dtypes."""
    if model.source != "sklearn":
        return _torch_onnx_runner(model, task, batch_size)

    def outputs(X: np.ndarray) -> Outputs:
        out = model.outputs(X)
        if not task.is_classification:
            values = np.asarray(out[0], dtype=float).reshape(len(X), -1)[:, 0]
            return Outputs(values, values)
        raw = np.asarray(out[1], dtype=float) if len(out) > 1 else None
        return Outputs(raw, np.asarray(out[0]))

    def call(x: Any) -> Any:
        return model.session.run(None, {model.input_name: x})

    return Runner(outputs, call, lambda x: np.ascontiguousarray(x, dtype=np.float32))


def _torch_onnx_runner(model: OnnxModel, task: TaskInfo, batch_size: int) -> Runner:
    specs = model.session.get_inputs()

    def prepare(x: Any) -> dict[str, np.ndarray]:
        if isinstance(x, np.ndarray):
            return {specs[0].name: np.ascontiguousarray(x, dtype=np.float32)}
        return onnx_feeds(x, specs)

    def call(feeds: dict[str, np.ndarray]) -> Any:
        return model.session.run(None, feeds)

    def outputs(X: Any) -> Outputs:
        feeds = prepare(X)
        n = len(next(iter(feeds.values())))
        parts = [call({k: v[i : i + batch_size] for k, v in feeds.items()})[0]
                 for i in range(0, n, batch_size)]
        raw = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        if not task.is_classification:
            values = raw.reshape(n, -1)[:, 0]
            return Outputs(values, values)
        return Outputs(raw, _labels(raw, task))

    return Runner(outputs, call, prepare)


def _labels(raw: np.ndarray, task: TaskInfo) -> np.ndarray:
    if not task.is_classification:
        return raw.reshape(len(raw), -1)[:, 0]
    return labels_from_raw(raw, task.classes)


# -- comparison ------------------------------------------------------------------------------
def metric_name(task: TaskInfo) -> str:
    """The headline metric of a task: ``accuracy`` or ``r2``."""
    return "accuracy" if task.is_classification else "r2"


def metrics(y: np.ndarray, out: Outputs, task: TaskInfo) -> dict[str, float]:
    """``{"accuracy"}`` for classification, ``{"r2", "rmse"}`` for regression."""
    if task.is_classification:
        return {"accuracy": float(np.mean(_same(out.labels, y)))}
    from sklearn.metrics import r2_score, root_mean_squared_error

    pred = np.asarray(out.labels, dtype=float)
    return {"r2": float(r2_score(y, pred)), "rmse": float(root_mean_squared_error(y, pred))}


def compare(original: Outputs, variant: Outputs, task: TaskInfo) -> dict[str, float | None]:
    """``max_abs_diff`` of the raw outputs (``None`` when shapes differ or one has none) and
    ``agreement``, the share of rows predicted the same (regression: within 1 % of the
    original predictions' standard deviation)."""
    diff = None
    if original.raw is not None and variant.raw is not None:
        a = original.raw.reshape(len(original.raw), -1)
        b = variant.raw.reshape(len(variant.raw), -1)
        if a.shape == b.shape:
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    if task.is_classification:
        agree = float(np.mean(_same(variant.labels, original.labels)))
    else:
        a, b = (np.asarray(o.labels, dtype=float) for o in (original, variant))
        tol = AGREEMENT_REL_TOL * (float(np.std(a)) or 1.0)
        agree = float(np.mean(np.abs(a - b) <= tol))
    return {"max_abs_diff": diff, "agreement": agree}


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "US" or b.dtype.kind in "US" or a.dtype.kind == "O" or b.dtype.kind == "O":
        return a.astype(str) == b.astype(str)
    return a == b
