"""Predictions of a fitted scikit-learn estimator or PyTorch module, as labels and class scores.

``torch`` is only touched when the model is an ``nn.Module``, which means the user imported it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import batches as contract
from . import links
from .data import (
    TASKS,
    Data,
    TaskInfo,
    allows_nan,
    check_data,
    infer_task,
    is_dataset,
    is_loader,
    is_tensor,
    is_torch_model,
    to_numpy,
)
from .errors import InputError, NotFittedError
from .inputs import check_model_input
from .kinds import is_hf_dataset
from .nested import is_nested
from .options import TASK_CHOICES
from .plain import plain
from .sklearn_inputs import refusals
from .torch_inputs import (
    FORWARD_ERRORS,
    PREDICT_BATCH,
    as_model_input,
    forward_refused,
    input_batches,
    module_device_dtype,
    set_mode,
)

__all__ = ["Predictions", "check_fitted", "check_labels", "is_torch_model", "predict", "prepare",
           "resolve_task"]


@dataclass
class Predictions:
    """What a model predicted for each row.

    ``y_pred`` holds class labels (classification) or values (regression). ``y_score`` holds one
    column per class in ``task.classes`` order: probabilities when ``score_kind == "proba"``,
    ``decision_function`` values when ``"decision"`` (fit for ROC only), else ``None``.
    """

    y_pred: np.ndarray
    y_score: np.ndarray | None
    task: TaskInfo
    score_kind: str | None = None
    notes: list[str] = field(default_factory=list)



def check_fitted(model: Any, name: str | None = None) -> None:
    """Raise :class:`NotFittedError` for an unfitted scikit-learn estimator.

    Parameters
    ----------
    model : estimator or torch.nn.Module
        PyTorch modules always count as fitted.
    name : str, optional
        The user's name for the model, used in the message.
    """
    if is_torch_model(model):
        return
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    label = name or type(model).__name__
    try:
        check_is_fitted(model)
    except SkNotFitted:
        raise NotFittedError(
            f"{label} is not fitted; train it first: %train {name or 'model'} X y"
        ) from None
    except TypeError:
        raise InputError(
            f"{label} ({type(model).__name__}) is neither a scikit-learn estimator nor a "
            "PyTorch nn.Module"
        ) from None


def _sklearn_task(model: Any) -> TaskInfo | None:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        classes = tuple(plain(c) for c in np.asarray(classes).tolist())
        return TaskInfo("binary" if len(classes) == 2 else "multiclass", classes)
    from sklearn.base import is_regressor

    return TaskInfo("regression") if is_regressor(model) else None


def resolve_task(model: Any, y: np.ndarray | None = None, task: str = "auto") -> TaskInfo | None:
    """The model's task: from its ``%train`` run, its ``classes_``, or else inferred from ``y``.

    Returns ``None`` only for an untracked PyTorch module without ``y`` (decided from its output).

    Raises
    ------
    InputError
        ``task`` contradicts the model (e.g. ``regression`` for a classifier).
    """
    if task not in TASK_CHOICES:
        raise InputError(f"--task must be one of auto, {', '.join(TASKS)}; got {task!r}")
    link = links.lookup(model)
    if link is not None:
        info: TaskInfo | None = link.task
    elif not is_torch_model(model):
        info = _sklearn_task(model)
        if info is None:
            raise InputError(
                f"{type(model).__name__} is neither a classifier nor a regressor; "
                "evaluation needs one of them"
            )
    else:
        return infer_task(y, task) if y is not None else None
    if task == "auto" or task == info.task:
        return info
    if task == "regression" or not info.is_classification:
        raise InputError(f"--task {task} does not fit this model, which does {info.task}")
    if task == "binary" and info.n_classes != 2:
        raise InputError(f"--task binary needs two classes; the model has {info.n_classes}")
    return TaskInfo(task, info.classes)


def check_labels(y: np.ndarray, task: TaskInfo, y_name: str = "y") -> None:
    """Raise :class:`InputError` when ``y`` has one class or labels the model does not know."""
    if not task.is_classification:
        if y.dtype.kind not in "biuf":
            raise InputError(f"a regression target must be numeric; {y_name} has dtype {y.dtype}")
        return
    present = np.unique(y).tolist()
    if len(present) < 2:
        raise InputError(
            f"{y_name} has a single class ({present[0]!r}); evaluating a classifier needs at "
            "least two"
        )
    known = set(task.classes)
    unknown = [v for v in present if v not in known]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        classes = ", ".join(repr(c) for c in task.classes[:10])
        raise InputError(
            f"{y_name} has labels the model does not know: {shown} (its classes: {classes})"
        )



def prepare(
    model: Any, X: Any, y: Any = None, *, task: str = "auto", name: str | None = None,
    x_name: str = "X", y_name: str = "y",
) -> tuple[Data, TaskInfo]:
    """Validate the data for ``model`` and resolve the task, before any prediction is made.

    PyTorch modules need numeric features; scikit-learn estimators may take NaN in ``X`` when
    their tags allow it. The model is checked against the rows
    (:func:`~.inputs.check_model_input`: a trial forward pass, or the fitted width and columns).

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
    X, y : array-like, DataFrame, sparse matrix, tensor; or X a Dataset / DataLoader
        For a PyTorch module X may also be several inputs (a tuple/list: positional, a dict:
        keyword arguments); a dict holding ``labels`` (or ``label``) needs no ``y``.
    task : {"auto", "binary", "multiclass", "regression"}
    name, x_name, y_name : str, optional
        The user's names of the model and the data, for messages.

    Returns
    -------
    (Data, TaskInfo)

    Raises
    ------
    InputError
        Bad data, rows the model cannot take, a single-class target, or labels the model does
        not know.
    NotFittedError
        An unfitted scikit-learn estimator.
    """
    torch_model = is_torch_model(model)
    allow_nan = not torch_model and allows_nan(model)
    data = check_data(X, y, numeric=torch_model, allow_nan=allow_nan, x_name=x_name,
                      y_name=y_name)
    check_fitted(model, name)
    check_model_input(model, data, name=name, x_name=x_name)
    info = resolve_task(model, data.y, task)
    check_labels(data.y, info, y_name)
    return data, info


def predict(
    model: Any, X: Any, *, task: TaskInfo | None = None, batch_size: int = PREDICT_BATCH,
    x_name: str = "X", name: str | None = None,
) -> Predictions:
    """Predict labels (or values) and class scores for every row of ``X``.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
    X : array-like, DataFrame, sparse matrix, tensor, Dataset or DataLoader
        A Dataset or DataLoader must yield ``(x, y)`` items; it is read in order.
    task : TaskInfo, optional
        Resolved from the model's ``%train`` run or its ``classes_`` when omitted.
    batch_size : int
        Rows per forward pass of a PyTorch module.
    x_name, name : str, optional
        The user's names of the data and the model, for messages.

    Returns
    -------
    Predictions

    Raises
    ------
    NotFittedError
        An unfitted scikit-learn estimator.
    InputError
        A PyTorch output shape that does not fit the task; rows the model refused (its own
        ``ValueError``, or a forward pass that failed), in one line.
    """
    if is_torch_model(model):
        return _predict_torch(model, X, task or resolve_task(model), batch_size, x_name, name)
    check_fitted(model, name)
    with refusals(model, x_name=x_name, name=name):
        return _predict_sklearn(model, X, task or resolve_task(model))


def _predict_sklearn(model: Any, X: Any, task: TaskInfo) -> Predictions:
    datasets = is_dataset(X) or is_loader(X) or is_hf_dataset(X)
    if getattr(model, "takes_nested_inputs", False):  # an ONNX export of a PyTorch model
        if datasets:
            return _concat([_predict_sklearn(model, batch, task)
                            for batch in input_batches(X, PREDICT_BATCH)])
    elif datasets or is_nested(X):
        raise InputError("scikit-learn models take arrays or DataFrames, not a Dataset or "
                         "several inputs")
    if is_tensor(X):
        X = to_numpy(X)
    y_pred = np.asarray(model.predict(X))
    if not task.is_classification:
        return Predictions(y_pred.reshape(len(y_pred), -1).squeeze(-1).astype(float), None, task)
    notes: list[str] = []
    if hasattr(model, "predict_proba"):
        kind, raw = "proba", np.asarray(model.predict_proba(X), dtype=float)
    elif hasattr(model, "decision_function"):
        kind, raw = "decision", np.asarray(model.decision_function(X), dtype=float)
        notes.append("no predict_proba: ROC AUC uses decision_function; log loss skipped")
        if raw.ndim == 1:
            raw = np.column_stack([-raw, raw])
    else:
        notes.append("no predict_proba or decision_function: no score-based metrics")
        return Predictions(y_pred, None, task, None, notes)
    model_classes = [plain(c) for c in np.asarray(model.classes_).tolist()]
    if model_classes != list(task.classes):
        where = {c: i for i, c in enumerate(model_classes)}
        score = np.zeros((len(raw), task.n_classes))
        for j, c in enumerate(task.classes):
            if c in where:
                score[:, j] = raw[:, where[c]]
        raw = score
    return Predictions(y_pred, raw, task, kind, notes)


def _concat(parts: list[Predictions]) -> Predictions:
    """The predictions of consecutive batches as one."""
    first = parts[0]
    scores = None if first.y_score is None else np.concatenate([p.y_score for p in parts])
    return Predictions(np.concatenate([p.y_pred for p in parts]), scores, first.task,
                       first.score_kind, first.notes)


# -- PyTorch ---------------------------------------------------------------------------------
def _forward_all(model: Any, X: Any, batch_size: int, x_name: str = "X",
                 name: str | None = None):
    import torch

    device, dtype = module_device_dtype(model)
    was_training = model.training
    outputs = []
    set_mode(model, training=False)
    try:
        with torch.inference_mode():
            for batch in input_batches(X, batch_size):
                x = as_model_input(batch, device, dtype)
                try:
                    out = contract.call(model, x)
                except FORWARD_ERRORS as exc:
                    raise forward_refused(model, x, exc, x_name=x_name, name=name) from None
                try:
                    out = contract.predictions(out)
                except TypeError:
                    raise InputError(f"{name or type(model).__name__}.forward returned a "
                                     f"{type(out).__name__}; it must return a tensor of outputs "
                                     "(e.g. logits)") from None
                outputs.append(out.detach().to("cpu", torch.float64))
    finally:
        set_mode(model, training=was_training)
    if not outputs:
        raise InputError(f"{x_name} has no rows")
    return torch.cat(outputs)


def _torch_task(task: TaskInfo | None, width: int | None) -> TaskInfo:
    """Fill in or widen the task from the output width (integer labels are class indices)."""
    if task is None:
        if width is None or width == 1:
            return TaskInfo("regression")
        return TaskInfo("binary" if width == 2 else "multiclass", tuple(range(width)))
    if (
        task.is_classification
        and width is not None
        and width > task.n_classes
        and all(isinstance(c, int | np.integer) and 0 <= c < width for c in task.classes)
    ):
        return TaskInfo("binary" if width == 2 else "multiclass", tuple(range(width)))
    return task


def _predict_torch(model: Any, X: Any, task: TaskInfo | None, batch_size: int,
                   x_name: str = "X", name: str | None = None) -> Predictions:
    out = _forward_all(model, X, batch_size, x_name, name)
    width = out.shape[1] if out.ndim == 2 else (1 if out.ndim == 1 else None)
    notes: list[str] = []
    if task is None:
        notes.append("no task known for this module: guessed from its output width")
    task = _torch_task(task, width)
    shape = tuple(out.shape)
    if not task.is_classification:
        if width != 1:
            raise InputError(
                f"the model's output has shape {shape}; a regression model must give (n,) or "
                "(n, 1)"
            )
        return Predictions(out.reshape(-1).numpy(), None, task, None, notes)
    k = task.n_classes
    classes = np.asarray(task.classes)
    if width == k:
        proba = _as_probabilities(out, notes)
    elif task.task == "binary" and width == 1:
        p1 = out.reshape(-1).sigmoid().numpy()
        proba = np.column_stack([1.0 - p1, p1])
    else:
        expected = f"(n, {k})" + (" or (n, 1)" if task.task == "binary" else "")
        raise InputError(
            f"the model's output has shape {shape} but the task is {task.task} with {k} classes; "
            f"expected {expected}"
        )
    return Predictions(classes[proba.argmax(axis=1)], proba, task, "proba", notes)


def _as_probabilities(out: Any, notes: list[str]) -> np.ndarray:
    """Softmax of logits; outputs that already are (log-)probabilities are kept as they are."""
    if out.shape[0] and bool((out >= 0).all()) and bool(
        ((out.sum(dim=1) - 1).abs() < 1e-4).all()
    ):
        notes.append("the model already outputs probabilities: no softmax applied")
        return out.numpy()
    if out.shape[0] and bool((out <= 0).all()) and bool(
        ((out.exp().sum(dim=1) - 1).abs() < 1e-4).all()
    ):
        notes.append("the model outputs log-probabilities: exponentiated")
        return out.exp().numpy()
    return out.softmax(dim=1).numpy()
