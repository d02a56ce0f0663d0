"""Input checks of ``explain()`` and the explanation space: rows of X as the explainer sees them
(through a Pipeline's earlier steps, as floats), seeded samples of rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.data import TaskInfo, is_sparse, take_rows, to_numpy
from ..core.errors import InputError
from ..core.inputs import first_line
from ..core.options import EXPLAIN_METHODS
from .choice import split_pipeline

METHODS = EXPLAIN_METHODS


def check_options(method: str, row: Any, top: Any, max_rows: Any, background: Any) -> None:
    """Raise :class:`InputError` for an unknown method, a count below 1, or LIME without a row."""
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    for flag, value in (("--top", top), ("--max-rows", max_rows), ("--background", background)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                                  or value < 1):
            raise InputError(f"{flag} must be a whole number of at least 1; got {value!r}")
    if method in ("lime", "both") and row is None:
        raise InputError(f"--method {method} explains one row (LIME is local); add --row N, or "
                         "use --method auto for the global view")


def check_row(row: Any, n: int, x_name: str) -> int | None:
    """``row`` as an int when it is a position in X, else :class:`InputError`."""
    if row is None:
        return None
    if isinstance(row, bool) or not isinstance(row, int | np.integer) or not 0 <= row < n:
        raise InputError(f"--row {row} is out of range: {x_name} has {n:,} rows, so --row takes "
                         f"0 to {n - 1}")
    return int(row)


def match_class(target: Any, task: TaskInfo, name: str) -> Any:
    """The model's class label that ``target`` (as given, or as text) names."""
    if target is None:
        return None
    if not task.is_classification:
        raise InputError(f"--class applies to classifiers; {name} does regression")
    for c in task.classes:
        if c == target or str(c) == str(target):
            return c
    shown = ", ".join(repr(c) for c in task.classes[:10])
    raise InputError(f"--class {target!r} is not a class of {name} (its classes: {shown})")


def check_numeric(X: Any, kind: str, x_name: str) -> None:
    """Raise :class:`InputError` for non-numeric features (a model outside a Pipeline)."""
    if kind == "frame":
        frame = X.to_frame() if X.ndim == 1 else X
        bad = [str(c) for c, t in frame.dtypes.items() if t.kind not in "biuf" and t != "boolean"]
    elif kind == "sparse":
        bad = []
    else:
        bad = [] if to_numpy(X).dtype.kind in "biuf" else [f"dtype {to_numpy(X).dtype}"]
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise InputError(f"{x_name} has non-numeric columns ({shown}); SHAP and LIME need numbers: "
                         "encode them, or explain a Pipeline whose first steps encode them")



# -- the explanation space -------------------------------------------------------------------
class Space:
    """Rows of X as the explainer sees them: through a pipeline's earlier steps, as floats."""

    def __init__(self, model: Any, X: Any, names: list[str] | None, is_torch: bool) -> None:
        self.X, self.is_torch = X, is_torch
        self.est, self.pre = split_pipeline(model)
        self.names = names
        if self.pre is not None:
            try:
                self.names = [str(c) for c in self.pre.get_feature_names_out()]
            except Exception:  # a step without feature names: numbered below
                self.names = None

    def rows(self, index: np.ndarray) -> np.ndarray:
        part = take_rows(self.X, index)
        if self.pre is not None:
            try:
                part = self.pre.transform(part)
            except ValueError as exc:  # e.g. a category the encoder did not see in fit
                raise InputError("the pipeline's earlier steps cannot transform these rows: "
                                 f"{first_line(exc)}") from None
        if is_sparse(part):
            part = part.toarray()
        Z = to_numpy(part)
        if Z.ndim != 2:
            raise InputError(f"explanations need rows × features; X has shape {Z.shape}")
        if Z.dtype.kind not in "biuf":
            raise InputError("the pipeline's transformed features are not numeric "
                             f"(dtype {Z.dtype}); explanations need numbers")
        return Z.astype(np.float32 if self.is_torch else np.float64)

    def feature_names(self, width: int) -> list[str]:
        names = self.names if self.names and len(self.names) == width else [
            f"x{j}" for j in range(width)]
        seen: dict[str, int] = {}
        unique = []
        for name in names:  # duplicated column names would break the importance table
            seen[name] = seen.get(name, 0) + 1
            unique.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
        return unique


def as_tensor(Z: np.ndarray, module: Any) -> Any:
    """Rows as a tensor on the module's device, in its floating dtype."""
    import torch

    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    floats = [p.dtype for p in params if p.is_floating_point()]
    return torch.from_numpy(Z).to(device=device, dtype=floats[0] if floats else torch.float32)


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a seeded sample of ``size`` of ``n`` rows (all when ``n <= size``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size, replace=False))
