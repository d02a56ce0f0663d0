"""What token and image attributions share: Captum, the model's outputs and task, the output
explained per row, the module's mode, and the time estimate before a long run.

The explained output is a column of the model's raw output (logits for a classifier, the value
for a regression): each row's predicted class unless ``--class`` names one; a single binary
logit explains the positive class, negated for the negative class. torch and captum are
imported inside functions.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..core.batches import call, predictions
from ..core.data import TaskInfo
from ..core.errors import InputError, require
from ..core.inputs import FORWARD_ERRORS, check_count, first_line, set_mode
from ..core.plain import plain
from ..core.prediction import resolve_task
from .choice import WARN_ROWS, WARN_SECONDS, SlowExplanationWarning
from .inputs import match_class, sample_rows

N_STEPS = 50  # Captum's default number of Riemann steps of the path integral
MAX_ROWS = 100  # rows a global view explains by default (each costs n_steps forward passes)


def captum_attr() -> Any:
    """``captum.attr``, or a one-line :class:`MissingDependency`."""
    return require("captum.attr", extra="explain", purpose="token and image attributions",
                   package="captum")


def check_steps(n_steps: Any) -> int:
    """``n_steps`` (default :data:`N_STEPS`) as a whole number of at least 2."""
    if n_steps is None:
        return N_STEPS
    check_count(n_steps, "--steps", minimum=2, maximum=10_000)
    return int(n_steps)


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """``model`` in eval mode with gradients on inside the block; its mode restored after."""
    import torch

    was_training = getattr(model, "training", False)
    set_mode(model, training=False)
    try:
        with torch.enable_grad():
            yield
    finally:
        set_mode(model, training=was_training)


def raw_output(model: Any, inputs: Any) -> Any:
    """The model's prediction tensor for a batch, as (rows, outputs)."""
    out = predictions(call(model, inputs))
    return out.reshape(out.shape[0], -1) if out.dim() else out.reshape(1, 1)


def first_output(model: Any, inputs: Any, *, name: str, x_name: str) -> Any:
    """The output of one row under ``no_grad``; a failing forward pass is one line."""
    import torch

    try:
        with torch.no_grad():
            return raw_output(model, inputs)
    except FORWARD_ERRORS as exc:  # also an output without a prediction tensor
        raise InputError(f"{x_name} does not fit {name}: {type(exc).__name__}: "
                         f"{first_line(exc)}") from None


def task_for(model: Any, width: int) -> TaskInfo:
    """The model's task: recorded by ``%train``, else from its output width."""
    task = resolve_task(model)
    if task is None:
        if width == 1:
            return TaskInfo("regression")
        return TaskInfo("binary" if width == 2 else "multiclass", tuple(range(width)))
    if task.is_classification and width > task.n_classes and all(
            isinstance(c, int | np.integer) for c in task.classes):
        return TaskInfo("binary" if width == 2 else "multiclass", tuple(range(width)))
    return task


class Outputs:
    """Which output column explains which class, for a model of output ``width``."""

    def __init__(self, task: TaskInfo, width: int, label: str) -> None:
        if task.is_classification and width not in (task.n_classes, 1):
            raise InputError(f"{label}'s output has {width} columns but its task has "
                             f"{task.n_classes} classes")
        if not task.is_classification and width != 1:
            raise InputError(f"{label}'s output has {width} columns; a regression model gives "
                             "one")
        self.task, self.width = task, width

    @property
    def space(self) -> str:
        return "logit" if self.task.is_classification else "prediction"

    def predicted(self, out: Any) -> Any:
        """The class (or value) the model predicts from its output row(s)."""
        row = out.detach().double().cpu().numpy().reshape(-1)
        if not self.task.is_classification:
            return float(row[0])
        if self.width == 1:
            return plain(self.task.classes[int(row[0] > 0)])
        return plain(self.task.classes[int(row.argmax())])

    def column(self, label: Any) -> tuple[int, float]:
        """``(output column, sign)`` explaining class ``label`` (``None``: the only output)."""
        if label is None:
            return 0, 1.0
        i = list(self.task.classes).index(label)
        if self.width == self.task.n_classes:
            return i, 1.0
        return 0, (1.0 if i == 1 else -1.0)


def prepare_outputs(model: Any, example: Any, target: Any, *, label: str,
                    x_name: str) -> tuple[TaskInfo, Outputs, Any]:
    """The task, the output columns and the class to explain, from one trial forward pass on
    ``example`` (refused in one line when the model cannot take it)."""
    with evaluating(model):
        first = first_output(model, example, name=label, x_name=x_name)
    width = int(first.shape[1])
    task = task_for(model, width)
    return task, Outputs(task, width, label), match_class(target, task, label)


def rows_to_explain(n: int, local: int | None, max_rows: int | None, seed: int,
                    notes: list[str]) -> np.ndarray:
    """The rows a call explains: ``local`` alone, else all ``n`` up to ``max_rows`` (a seeded
    sample beyond, stated in ``notes``)."""
    if local is not None:
        return np.array([local])
    rows = sample_rows(n, max_rows or MAX_ROWS, np.random.default_rng([seed, 0]))
    if len(rows) < n:
        notes.append(f"explained a seeded sample of {len(rows):,} of {n:,} rows (seed "
                     f"{seed}); --max-rows changes it")
    return rows


def describe_output(outputs: Outputs, target: Any) -> str:
    if not outputs.task.is_classification:
        return "the model output"
    if target is not None:
        return f"{outputs.space} of class {target!r}"
    return f"{outputs.space} of each row's predicted class"


def run_timed(rows: np.ndarray, explain_row: Callable[[int], Any], label: str) -> list[Any]:
    """``explain_row(i)`` for every row; after the first two rows, warns
    (:class:`SlowExplanationWarning`) with the expected time when the rest is long."""
    out = []
    started = None
    for k, i in enumerate(rows):
        if k == 1:
            started = time.perf_counter()  # the first row pays for warm-up
        out.append(explain_row(int(i)))
        if k == 1 and started is not None:
            per_row = time.perf_counter() - started
            rest = len(rows) - 2
            expected = per_row * rest
            if rest > 0 and (len(rows) > WARN_ROWS or expected > WARN_SECONDS):
                warnings.warn(SlowExplanationWarning(
                    f"{label} on {len(rows):,} rows: about {_duration(expected)} more "
                    f"({per_row * 1000:.0f} ms a row); --max-rows or --steps makes it quicker"),
                    stacklevel=3)
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
