"""The one check of a model against the rows it is about to get, made before any library sees
them, and the small checks of counts and seeds every magic shares.

:func:`check_model_input` is what every magic that predicts (``%evaluate``, ``%explain``,
``%fairness``, ``%compress --check``, ``%diff --data``) runs after :func:`.data.check_data`:

* a PyTorch module gets a trial forward pass on (at most) two rows, in eval mode under
  ``inference_mode``, converted exactly as the prediction will convert them, whatever the
  inputs (a tensor, a tuple or dict of inputs, a Dataset or DataLoader: :mod:`.torch_inputs`;
  ``%train`` makes the same check before it trains);
* a scikit-learn estimator is compared with what it was fitted on (:mod:`.sklearn_inputs`):
  ``n_features_in_``, ``feature_names_in_``, rows × features, numbers (unless a Pipeline or an
  estimator that takes text does the encoding), sparse input only where it is accepted;
* a model ``%train`` recorded is compared with the columns it was trained on.

A refusal that still comes from the library afterwards (a ``ValueError`` of scikit-learn's own
checks, a PyTorch shape error in a later batch) becomes an :class:`InputError` of one line
through :func:`refusals` / :func:`forward_refused`. The names those modules define are
importable from here too. Nothing imports torch or scikit-learn unless the model is theirs.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import links
from .data import Data, is_torch_model
from .errors import InputError
from .messages import MAX_MESSAGE, first_line, label, one_line
from .sklearn_inputs import (
    check_columns,
    check_sklearn_rows,
    column_difference,
    encodes_its_input,
    refusals,
    refused,
)
from .torch_inputs import (
    FORWARD_ERRORS,
    PREDICT_BATCH,
    TRIAL_ROWS,
    as_model_input,
    check_torch_rows,
    forward_refused,
    input_batches,
    module_device_dtype,
    set_mode,
    trial_forward,
)

__all__ = ["FORWARD_ERRORS", "MAX_MESSAGE", "PREDICT_BATCH", "SEED_LIMIT", "TRIAL_ROWS",
           "as_model_input", "check_columns", "check_count", "check_model_input", "check_seed",
           "column_difference", "cpu_count", "encodes_its_input", "first_line",
           "forward_refused", "input_batches", "module_device_dtype", "one_line", "refusals",
           "refused", "set_mode", "trial_forward"]

SEED_LIMIT = 2**32


def check_seed(seed: Any, flag: str = "--seed") -> None:
    """Raise :class:`InputError` unless ``seed`` is a whole number in ``[0, 2**32)`` (what
    numpy's and torch's generators take)."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not (
            0 <= seed < SEED_LIMIT):
        raise InputError(f"{flag} must be in [0, 2**32); got {seed}")


def check_count(value: Any, flag: str, minimum: int = 1, maximum: int | None = None) -> None:
    """Raise :class:`InputError` unless ``value`` is a whole number in ``[minimum, maximum]``."""
    whole = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if whole and value >= minimum and (maximum is None or value <= maximum):
        return
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
    raise InputError(f"{flag} must be a whole number {bounds}; got {value!r}")


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# -- the shared check --------------------------------------------------------------------------
def check_model_input(model: Any, data: Data, *, name: str | None = None, x_name: str = "X",
                      fitting: bool = False) -> None:
    """Check that ``model`` can take the rows of ``data`` before any library sees them.

    Parameters
    ----------
    model : scikit-learn estimator or torch.nn.Module
        Fitted, unless ``fitting``.
    data : Data
        The checked input (:func:`~.data.check_data`).
    name, x_name : str, optional
        The user's names of the model and of the data, for messages.
    fitting : bool
        The rows are for ``fit``: only what fitting needs (no fitted width or columns).

    Raises
    ------
    InputError
        Rows the model cannot take, with what to do about it.
    """
    link = links.lookup(model)
    if link is not None and not fitting and data.kind == "frame":
        check_columns(data.feature_names, link.feature_names, x_name=x_name,
                      model=label(model, name))
    if is_torch_model(model):
        if not fitting:
            check_torch_rows(model, data, name=name, x_name=x_name)
        return
    check_sklearn_rows(model, data, name=name, x_name=x_name, fitting=fitting)
