"""The model one training of the experiment panel works on: the notebook's own estimator with
the panel's parameters set (as ``%train`` trains the object itself), or, for a sweep run, a fresh
copy of it, so every run starts from the same state."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.errors import InputError


def copy_model(model: Any, params: Mapping[str, Any], framework: str) -> Any:
    """A fresh model for one trial; the given object is not touched.

    A scikit-learn estimator is ``clone``d (same parameters, unfitted) and given ``params``; a
    PyTorch module is deep-copied with its current weights, so every trial of a sweep starts
    from the same initial weights.
    """
    if framework == "torch":
        if params:
            raise InputError(f"a PyTorch module has no parameters to set ({', '.join(params)}); "
                             "sweep training options instead")
        return copy.deepcopy(model)
    from sklearn.base import clone

    fresh = clone(model)
    return fresh.set_params(**params) if params else fresh


@contextlib.contextmanager
def params_applied(model: Any, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Set ``params`` on an estimator for a training that fits it in place (as ``%train``
    does); if the training raises, the previous values are put back.

    Yields the parameters that actually change (``{name: new value}``).
    """
    if not params:
        yield {}
        return
    current = model.get_params(deep=True)
    unknown = [k for k in params if k not in current]
    if unknown:
        raise InputError(f"{type(model).__name__} has no parameter {unknown[0]!r}")
    changed = {k: v for k, v in params.items() if not _same(current[k], v)}
    before = {k: current[k] for k in changed}
    if changed:
        model.set_params(**changed)
    try:
        yield changed
    except BaseException:
        if changed:
            model.set_params(**before)
        raise


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return a is b
