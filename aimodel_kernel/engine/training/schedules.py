"""Learning-rate schedules stepped once per optimizer step: ``--lr-schedule constant|linear|
cosine|onecycle`` with ``--warmup FRACTION`` (of all steps, linear from 0 to the peak).

The schedule is a pure function of the step, so resuming at step ``k`` continues exactly where
an uninterrupted run would be (``LambdaLR`` keeps only its step count in its state).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..core.errors import InputError

SCHEDULES = ("constant", "linear", "cosine", "onecycle")

ONECYCLE_START = 1 / 25
"""``onecycle`` starts at the peak / 25 (PyTorch's ``div_factor``) when no warm-up is given."""
ONECYCLE_WARMUP = 0.3
"""``onecycle`` rises over the first 30 % of the steps by default (PyTorch's ``pct_start``)."""


def lr_factor(schedule: str, total_steps: int, warmup: float = 0.0) -> Callable[[int], float]:
    """The factor of the peak learning rate at each optimizer step ``0 .. total_steps - 1``.

    Parameters
    ----------
    schedule : {"constant", "linear", "cosine", "onecycle"}
        After the warm-up: constant; linear decay to 0; half a cosine to 0; ``onecycle`` is a
        cosine rise from peak/25 then a cosine fall to ~0 (Smith's one-cycle policy).
    total_steps : int
        Optimizer steps of the whole training (epochs × steps per epoch).
    warmup : float
        Fraction of ``total_steps`` spent rising linearly from 0 to the peak.

    Raises
    ------
    InputError
        An unknown schedule, a warm-up outside [0, 1), or no steps.
    """
    if schedule not in SCHEDULES:
        raise InputError(f"--lr-schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    if not 0 <= warmup < 1:
        raise InputError(f"--warmup is a fraction of the steps in [0, 1); got {warmup}")
    if total_steps < 1:
        raise InputError("a learning-rate schedule needs at least one optimizer step")
    if schedule == "onecycle":
        rise = max(1, round(total_steps * (warmup or ONECYCLE_WARMUP)))
        return _onecycle(total_steps, rise)
    warm = round(total_steps * warmup)
    decay = max(1, total_steps - warm)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        done = min(1.0, (step - warm) / decay)
        if schedule == "linear":
            return 1.0 - done
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return 1.0

    return factor


def _onecycle(total: int, rise: int) -> Callable[[int], float]:
    fall = max(1, total - rise)

    def factor(step: int) -> float:
        if step < rise:
            t = step / rise
            return ONECYCLE_START + (1 - ONECYCLE_START) * 0.5 * (1 - math.cos(math.pi * t))
        t = min(1.0, (step - rise) / fall)
        return 0.5 * (1 + math.cos(math.pi * t)) * (1 - 1e-4) + 1e-4

    return factor


def make_scheduler(optimizer: Any, schedule: str, total_steps: int, warmup: float = 0.0) -> Any:
    """A ``torch.optim.lr_scheduler.LambdaLR`` applying :func:`lr_factor` to every parameter
    group's own learning rate (so a head with ``--lr-head`` keeps its ratio to the backbone)."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lr_factor(schedule, total_steps, warmup))
