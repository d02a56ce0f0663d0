"""SHAP values of the chosen outputs for rows of the explanation space, with shap's explainers.

The PyTorch path runs DeepLIFT on a copy of the module with one output kept, once per class
that is explained, so the user's module (mode, gradients, hooks) is never touched. ``shap`` and
``torch`` are imported inside functions.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import numpy as np

from ..core.data import TaskInfo
from ..core.errors import InputError
from ..core.plain import plain
from .choice import (
    SLOW,
    WARN_ROWS,
    WARN_SECONDS,
    Choice,
    SlowExplanationWarning,
    score_function,
    shap_module,
)

_ADDITIVITY = 1e-2



def _margin_space(est: Any) -> str:
    return "log-odds" if hasattr(est, "predict_proba") else "decision function"


class Runner:
    """Computes SHAP values of chosen outputs for rows of the explanation space.

    Parameters
    ----------
    choice : Choice
    est : the estimator (or module) the explainer sees
    background : np.ndarray
        Background rows in the explanation space (unused by the tree explainer).
    task : TaskInfo
    seed : int
        Seed of the permutation and kernel explainers' sampling.
    fallback : bool
        When shap's TreeExplainer rejects the model, use the permutation explainer instead of
        raising (``--method auto``); ``choice`` then says so.
    """

    def __init__(self, choice: Choice, est: Any, background: Any, task: TaskInfo,
                 *, seed: int = 0, fallback: bool = False) -> None:
        self.choice, self.est, self.task, self.seed = choice, est, task, seed
        self.fallback = fallback
        self.background = background
        self.space = "prediction"
        self.notes: list[str] = []
        self._shap = shap_module()
        self._build()

    def _build(self) -> None:
        shap, kind, est = self._shap, self.choice.kind, self.est
        self.labels: list[Any] = [None]
        classes = self.task.is_classification
        if kind == "gradient":
            self._module = copy.deepcopy(est).eval()  # shap's hooks and modes: not on theirs
            self._deep: dict[int, tuple[Any, Any]] = {}
            self._width = _output_width(self._module, self.background)
            self.space = "model output" if classes else "prediction"
            return
        if kind in ("tree", "linear") and classes:
            self.labels = [plain(c) for c in np.asarray(est.classes_).tolist()]
        if kind == "tree":
            try:
                self._explainer = shap.TreeExplainer(est)
            except Exception as exc:  # shap's own "model type not supported" errors vary
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if not self.fallback:
                    raise InputError(f"shap's TreeExplainer cannot explain {type(est).__name__}: "
                                     f"{why}") from None
                self.choice = Choice("permutation", f"TreeExplainer cannot explain "
                                     f"{type(est).__name__} ({why}): model-agnostic fallback")
                self._build()
                return
            if classes:
                self.space = "probability" if _is_forest(est) else "log-odds"
        elif kind == "linear":
            self._explainer = shap.LinearExplainer(est, self.background)
            if classes:
                self.space = _margin_space(est)
        else:
            f, self.labels, self.space = score_function(est, self.task, is_torch=_is_torch(est))
            if kind == "permutation":
                masker = shap.maskers.Independent(self.background,
                                                  max_samples=len(self.background))
                self._explainer = shap.PermutationExplainer(f, masker, seed=self.seed)
            else:
                self._explainer = shap.KernelExplainer(f, self.background)

    def __call__(self, Z: Any, wanted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(values (n, f), base values (n,))`` for rows ``Z``, of the output for each row's
        ``wanted`` class label (``None`` for regression)."""
        if self.choice.kind == "gradient":
            return self._deep_values(Z, wanted)
        values, base = self._all_outputs(Z)
        return self._select(values, base, wanted)

    def _all_outputs(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``(n, f, m)`` and base values ``(n, m)`` for every output."""
        kind, n = self.choice.kind, len(Z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if kind == "permutation":
                evals = max(500, 2 * Z.shape[1] + 1)
                ex = self._explainer(Z, max_evals=evals, silent=True)
                values, base = np.asarray(ex.values), np.asarray(ex.base_values)
            elif kind == "kernel":
                state = np.random.get_state()  # shap's kernel sampling uses the global RNG
                np.random.seed(self.seed)
                try:
                    values = np.asarray(self._explainer.shap_values(Z, silent=True))
                finally:
                    np.random.set_state(state)
                base = np.asarray(self._explainer.expected_value, float)
            else:
                values = np.asarray(self._explainer.shap_values(Z))
                base = np.asarray(self._explainer.expected_value, float)
        if values.ndim == 2:
            values = values[:, :, None]
        m = values.shape[2]
        if m == 1 and len(self.labels) == 2:  # one margin output: the positive class's
            self.labels = self.labels[1:]
        if kind == "permutation":  # one base value per row: (n,) or (n, m)
            base = base.reshape(n, m)
        else:  # one per output: a scalar or (m,)
            base = np.broadcast_to(base.reshape(-1), (n, m))
        return values.astype(float), np.array(base, float)

    def _output_of(self, label: Any) -> tuple[int, float]:
        """The output index explaining class ``label`` and its sign (a single binary margin
        output explains the negative class negated)."""
        if label is None or label in self.labels:
            return (0 if label is None else self.labels.index(label)), 1.0
        if len(self.labels) == 1 and self.task.task == "binary" and label == self.task.classes[0]:
            return 0, -1.0
        raise InputError(f"the explainer has no output for class {label!r}")

    def _select(self, values: np.ndarray, base: np.ndarray, wanted: np.ndarray | None):
        n = len(values)
        if wanted is None:
            return values[:, :, 0], base[:, 0]
        out_v, out_b = np.empty(values.shape[:2]), np.empty(n)
        for label in _unique(wanted):
            rows = np.flatnonzero(_equal(wanted, label))
            j, sign = self._output_of(label)
            out_v[rows] = sign * values[rows, :, j]
            out_b[rows] = sign * base[rows, j]
        return out_v, out_b

    # -- PyTorch: DeepLIFT per output ---------------------------------------------------------
    def _deep_values(self, Z: Any, wanted: np.ndarray | None):
        import torch

        n, f = Z.shape[0], int(np.prod(Z.shape[1:]))
        out_v, out_b = np.empty((n, f)), np.empty(n)
        labels = [None] if wanted is None else _unique(wanted)
        for label in labels:
            rows = np.arange(n) if label is None else np.flatnonzero(_equal(wanted, label))
            j, sign = self._torch_output(label)
            explainer, module = self._deep_explainer(j)
            index = torch.as_tensor(rows, dtype=torch.long, device=Z.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = explainer.shap_values(Z[index], check_additivity=False)
            values = np.asarray(values, float).reshape(len(rows), f)
            base = float(np.asarray(explainer.expected_value, float).reshape(-1)[0])
            with torch.no_grad():
                output = module(Z[index]).detach().cpu().double().numpy()
            error = float(np.abs(values.sum(1) + base - output.reshape(-1)).max())
            scale = max(1.0, float(np.abs(output).max()))
            if error > _ADDITIVITY * scale and not self.notes:
                self.notes.append(
                    f"DeepExplainer values miss the model output by up to {error:.3g}: the module "
                    "uses operations DeepLIFT does not support; compare --method permutation")
            out_v[rows], out_b[rows] = sign * values, sign * base
        return out_v, out_b

    def _torch_output(self, label: Any) -> tuple[int, float]:
        """The output column of class ``label`` and its sign (one binary logit: the positive
        class's, negated for the negative class)."""
        if label is None:
            return 0, 1.0
        i = list(self.task.classes).index(label)
        if self._width == self.task.n_classes:
            return i, 1.0
        return 0, (1.0 if i == 1 else -1.0)

    def _deep_explainer(self, j: int) -> tuple[Any, Any]:
        if j not in self._deep:
            module = _output_module(self._module, j)
            self._deep[j] = (self._shap.DeepExplainer(module, self.background), module)
        return self._deep[j]


def _output_width(module: Any, background: Any) -> int:
    import torch

    with torch.no_grad():
        out = module(background[:1])
    out = getattr(out, "logits", out)
    return int(out.shape[1]) if out.ndim == 2 else 1


def _output_module(module: Any, j: int) -> Any:
    """``module`` with one output column kept, so DeepLIFT runs once per row, not per class."""
    from torch import nn

    class OneOutput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x):
            out = self.inner(x)
            out = getattr(out, "logits", out)
            return out.reshape(len(out), -1)[:, j : j + 1]

    return OneOutput().eval()


def _is_torch(est: Any) -> bool:
    from ..core.prediction import is_torch_model

    return is_torch_model(est)


def _is_forest(est: Any) -> bool:
    """Trees whose classifier output is a probability (not a boosting margin)."""
    from sklearn import ensemble, tree

    return isinstance(est, tree.BaseDecisionTree | ensemble.RandomForestClassifier
                      | ensemble.ExtraTreesClassifier)


def _unique(labels: np.ndarray) -> list[Any]:
    return list(dict.fromkeys(plain(v) for v in np.asarray(labels, dtype=object).tolist()))


def _equal(labels: np.ndarray, label: Any) -> np.ndarray:
    return np.array([plain(v) == label for v in np.asarray(labels, dtype=object).tolist()])


def run_rows(runner: Runner, Z: Any, wanted: np.ndarray | None, *, label: str = ""):
    """Run ``runner`` over all rows; a slow explainer is timed on a few rows first and warns
    (:class:`SlowExplanationWarning`) with the expected time before the rest.

    Returns
    -------
    (values, base_values, seconds)
    """
    n = Z.shape[0]
    started = time.perf_counter()
    if runner.choice.kind not in SLOW or n <= 6:
        values, base = runner(Z, wanted)
        return values, base, time.perf_counter() - started
    def part(s: slice) -> tuple[np.ndarray, np.ndarray]:
        return runner(Z[s], None if wanted is None else wanted[s])

    parts = [part(slice(0, 1))]  # the first call pays for shap's JIT compilation
    t0 = time.perf_counter()
    parts.append(part(slice(1, 6)))
    per_row = (time.perf_counter() - t0) / 5
    expected = per_row * (n - 6)
    if n > WARN_ROWS or expected > WARN_SECONDS:
        warnings.warn(SlowExplanationWarning(
            f"{runner.choice.name}{label} on {n:,} rows: about {_duration(expected)} more "
            f"({per_row * 1000:.0f} ms a row); --max-rows {min(WARN_ROWS, n // 2)} is quicker"),
            stacklevel=3)
    parts.append(part(slice(6, None)))
    values = np.concatenate([p[0] for p in parts])
    base = np.concatenate([p[1] for p in parts])
    return values, base, time.perf_counter() - started


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
