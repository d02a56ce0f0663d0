"""Pixel attributions of an image model: Captum's ``IntegratedGradients`` on the input pixels,
from an all-zero (black) baseline, summed over channels into one heat map per image.

Rows are (N, C, H, W) or (N, H, W) floats (a tensor or array), or the (C, H, W) items of a
Dataset / DataLoader's dataset (read one at a time: only the explained images are loaded),
given to the module in its floating dtype on its device. torch and captum are imported inside
functions.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..core.batches import split_item
from ..core.data import check_data, take_rows
from ..core.errors import InputError
from ..core.inputs import as_model_input, check_seed, module_device_dtype
from .attribution_result import ImageExplainResult
from .inputs import check_row
from .integrated import (
    captum_attr,
    check_steps,
    describe_output,
    evaluating,
    prepare_outputs,
    raw_output,
    rows_to_explain,
    run_timed,
)
from .modality import InputKind, sole_input

EXPLAINER = "IntegratedGradients"
MAX_PIXELS = 1000  # pixels kept in ``importance`` (the heat maps hold them all)


def method_name(n_steps: int) -> str:
    """The method as the result names it."""
    return f"integrated gradients (captum) on the pixels, {n_steps} steps"


def explain_images(
    model: Any, X: Any, kind: InputKind, *, row: int | None = None, target: Any = None,
    max_rows: int | None = None, n_steps: int | None = None, seed: int = 0, top: int = 10,
    background: int | None = None, name: str | None = None, x_name: str = "X",
) -> ImageExplainResult:
    """Integrated Gradients of each pixel of an image model's rows.

    Parameters
    ----------
    model : torch.nn.Module
    X : tensor or array of shape (N, C, H, W) or (N, H, W), or a Dataset / DataLoader of
        (C, H, W) items (``(image, label)`` pairs or images)
    kind : InputKind
        Why ``X`` was taken for images (shown in the result).
    row, target, max_rows, n_steps, seed, top, background, name, x_name
        As for token attributions (``tokens.explain_tokens``); ``top`` pixels are listed.

    Returns
    -------
    ImageExplainResult

    Raises
    ------
    InputError
        Bad counts, ``row`` out of range, NaN pixels, images the model cannot take, an unknown
        class; all before any attribution runs.
    MissingDependency
        captum is not installed.
    """
    import torch

    started = time.perf_counter()
    attr = captum_attr()
    check_seed(seed)
    steps = check_steps(n_steps)
    label = name or type(model).__name__
    device, dtype = module_device_dtype(model)
    data = check_data(X, None, numeric=True, require_y=False, x_name=x_name)
    n = data.n_samples
    local = check_row(row, n, x_name)
    notes: list[str] = []
    if background is not None:
        notes.append("--background is not used: Integrated Gradients starts from one baseline "
                     "(a black image)")

    items = data.kind in ("dataset", "loader")
    source = data.X.dataset if data.kind == "loader" else data.X

    def image(i: int) -> Any:
        if not items:
            return as_model_input(take_rows(data.X, np.array([i])), device, dtype)
        inputs, _ = split_item(source[int(i)])
        x = as_model_input(torch.as_tensor(sole_input(inputs))[None], device, dtype)
        if not bool(torch.isfinite(x).all()):
            raise InputError(f"image {i} of {x_name} has NaN or infinite pixels; fix or drop it")
        return x

    task, outputs, target = prepare_outputs(model, image(local or 0), target, label=label,
                                            x_name=x_name)
    rows = rows_to_explain(n, local, max_rows, seed, notes)
    ig = attr.IntegratedGradients(lambda x: raw_output(model, x))

    def explain_row(i: int) -> tuple[np.ndarray, np.ndarray, float, Any]:
        x = image(i)
        with torch.no_grad():
            predicted = outputs.predicted(raw_output(model, x))
        explained = target if target is not None else (
            predicted if task.is_classification else None)
        j, sign = outputs.column(explained)
        values, delta = ig.attribute(x, baselines=torch.zeros_like(x), target=j, n_steps=steps,
                                     return_convergence_delta=True)
        values = sign * values[0].detach().double().cpu().numpy()
        heat = values.sum(axis=0) if values.ndim == 3 else values
        return heat, x[0].detach().double().cpu().numpy(), sign * float(delta.reshape(-1)[0]), (
            predicted, explained)

    with evaluating(model):
        done = run_timed(rows, explain_row, f"{EXPLAINER} ({steps} steps)")
    heatmaps = np.stack([d[0] for d in done])
    images = np.stack([d[1] if d[1].ndim == 3 else d[1][None] for d in done])
    mean = np.abs(heatmaps).mean(axis=0)
    order = np.argsort(-mean.reshape(-1), kind="stable")[:MAX_PIXELS]
    w = mean.shape[1]
    importance = {f"{k // w},{k % w}": float(mean.reshape(-1)[k]) for k in order}
    predictions = [d[3][0] for d in done]
    said = done[0][3][1] if local is not None and target is None else target  # its class
    return ImageExplainResult(
        scope="local" if local is not None else "global", method=method_name(steps),
        explainer=EXPLAINER, reason=f"{kind.reason}: Integrated Gradients on the pixels",
        rows=rows, explained=[d[3][1] for d in done] if task.is_classification else None,
        predictions=predictions, output=describe_output(outputs, said), space=outputs.space,
        importance=importance, deltas=np.array([d[2] for d in done]), n_steps=steps,
        baseline="a black image (every pixel 0)", n_rows=n, seed=seed, top=top, row=local,
        prediction=predictions[0] if local is not None else None, model_name=label,
        seconds=time.perf_counter() - started, notes=notes, heatmaps=heatmaps, images=images)
