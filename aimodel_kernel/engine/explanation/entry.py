"""``explain()``: SHAP values of a model, globally over a seeded sample of rows or locally for one
row, optionally beside LIME; logged onto the model's run when ``%train`` produced it. A PyTorch
model on token ids or images gets Integrated Gradients attributions instead (``tokens.py``,
``images.py``; ``modality.py`` tells the rows apart).

Which class is explained: ``target`` when given; otherwise for one row (``row=N``) the class the
model predicts for it, for a global view of a binary classifier the positive class
(``classes[1]``), and for a multiclass one each row's predicted class. Returns values, never
plots (the display layer draws them).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..core import links
from ..core.data import TaskInfo, allows_nan, check_data, take_rows
from ..core.errors import InputError, require
from ..core.inputs import check_model_input, check_seed
from ..core.memory import releases_memory
from ..core.plain import plain
from ..core.prediction import check_fitted, is_torch_model, predict, resolve_task
from .attribution_result import AttributionResult
from .choice import (
    BACKGROUND,
    SLOW,
    WARN_ROWS,
    SlowExplanationWarning,
    choose,
    shap_module,
    split_pipeline,
)
from .inputs import (
    METHODS,
    Space,
    as_tensor,
    check_numeric,
    check_options,
    check_row,
    match_class,
    sample_rows,
)
from .modality import TABULAR, TOKENS, InputKind, input_kind
from .record import log_result
from .result import ExplainResult
from .shap_values import Runner, run_rows

MAX_ROWS = 1000  # rows a global view explains by default (tree and linear explainers)
SLOW_MAX_ROWS = WARN_ROWS  # ... with a per-row explainer (gradient, permutation, kernel)
LIME_BACKGROUND = 500  # rows LIME takes its feature statistics from

__all__ = ["METHODS", "AttributionResult", "ExplainResult", "SlowExplanationWarning", "explain"]


def _describe(space: str, explained: list[Any] | None, per_row: bool) -> str:
    if explained is None:
        return space if space != "model output" else "the model output"
    if per_row:
        return f"{space} of each row's predicted class"
    return f"{space} of class {explained[0]!r}"


# -- explain ---------------------------------------------------------------------------------
@releases_memory
def explain(
    model: Any, X: Any, *, row: int | None = None, method: str = "auto", target: Any = None,
    max_rows: int | None = None, background: int | None = None, seed: int = 0, top: int = 10,
    log: bool = True, store: Any = None, name: str | None = None, x_name: str = "X",
    tokenizer: Any = None, tokenizer_name: str | None = None, n_steps: int | None = None,
) -> ExplainResult | AttributionResult:
    """Explain a fitted model's predictions on ``X`` with SHAP (and/or LIME for one row).

    Parameters
    ----------
    model : fitted scikit-learn estimator or Pipeline, or torch.nn.Module
    X : array-like, DataFrame, sparse matrix or tensor of shape (rows, features)
    row : int, optional
        Explain only this row (0-based position in ``X``): a local explanation.
    method : {"auto", "tree", "linear", "gradient", "permutation", "kernel", "lime", "both"}
        ``auto`` picks the SHAP explainer for the model; ``lime`` and ``both`` need ``row``.
    target : class label, optional
        The class to explain (classifiers); see the module docstring for the default.
    max_rows : int, optional
        Rows a global view explains: a seeded sample when X has more (default 1000, or 200
        for the per-row gradient, permutation and kernel explainers).
    background : int, optional
        Background rows, a seeded sample of X (default: 100 linear and gradient, 50
        permutation and kernel, 500 for LIME; the tree explainer uses none).
    seed : int
        Seed of the row and background samples and of the sampling explainers.
    top : int
        Features shown and logged as metrics.
    log : bool
        Log onto the model's run when ``%train`` produced the model.
    store : Store, optional
        Tracking store to log to (the default store otherwise).
    name, x_name : str, optional
        The user's names of the model and data, for messages.
    tokenizer : optional
        Token models: a tokenizer whose ``convert_ids_to_tokens`` shows tokens as text.
    tokenizer_name : str, optional
        The user's name of the tokenizer, for messages.
    n_steps : int, optional
        Token and image models: steps of the Integrated Gradients path integral (50).

    Returns
    -------
    ExplainResult
        Feature rows (SHAP / LIME).
    TokenExplainResult or ImageExplainResult
        A PyTorch model on token ids or images: Integrated Gradients attributions (Captum);
        see :mod:`~aimodel_kernel.engine.explanation.modality` for how the rows are told apart.

    Warns
    -----
    SlowExplanationWarning
        Before a per-row explainer's long run, with the expected time.

    Raises
    ------
    InputError
        Bad options, ``row`` out of range, an unknown class, non-numeric X, a method that does
        not fit the model or a classifier without ``predict_proba`` for LIME.
    NotFittedError
        An unfitted estimator.
    MissingDependency
        shap (or lime) is not installed.
    """
    started = time.perf_counter()
    check_options(method, row, top, max_rows, background)
    check_seed(seed)
    label = name or type(model).__name__
    is_torch = is_torch_model(model)
    if is_torch:
        kind = input_kind(model, X, name=label, x_name=x_name)
        if kind.kind != TABULAR:
            result = _attributions(model, X, kind, row=row, method=method, target=target,
                                   max_rows=max_rows, background=background, seed=seed,
                                   top=top, tokenizer=tokenizer, tokenizer_name=tokenizer_name,
                                   n_steps=n_steps, name=name, x_name=x_name)
            result.seconds = time.perf_counter() - started
            if log:
                log_result(model, result, store)
            return result
    _no_attribution_flags(tokenizer, n_steps, x_name)
    if not is_torch:
        check_fitted(model, name)
    est, pre = split_pipeline(model)
    data = check_data(X, None, numeric=is_torch, allow_nan=not is_torch and allows_nan(model),
                      require_y=False, x_name=x_name)
    if data.kind in ("dataset", "loader"):
        raise InputError(f"{x_name} is a {data.kind}; explanations need feature rows: pass an "
                         "array, DataFrame or tensor")
    if not is_torch and pre is None:
        check_numeric(data.X, data.kind, x_name)
    check_model_input(model, data, name=name, x_name=x_name)
    n = data.n_samples
    local = check_row(row, n, x_name)
    shap_method = {"both": "auto", "lime": None}.get(method, method)
    choice = choose(est, shap_method, is_torch=is_torch) if shap_method else None
    if choice is not None:
        shap_module()  # a missing shap is reported before any work
    if method in ("lime", "both"):
        require("lime.lime_tabular", extra="explain", purpose="LIME explanations", package="lime")
    task = resolve_task(model)
    if is_torch:  # the output width decides (or widens) a module's task
        task = predict(model, take_rows(data.X, np.arange(1)), task=task, x_name=x_name,
                       name=name).task
    target = match_class(target, task, label)

    space = Space(model, data.X, _input_names(model, data.feature_names), is_torch)
    rng_rows = np.random.default_rng([seed, 0])
    rng_background = np.random.default_rng([seed, 1])
    notes: list[str] = []

    runner, bg_rows = None, np.zeros(0, np.int64)
    if choice is not None:
        size = background or BACKGROUND[choice.kind] or BACKGROUND["permutation"]
        bg_rows = sample_rows(n, size, rng_background)
        B = space.rows(bg_rows)
        runner = Runner(choice, est, as_tensor(B, est) if choice.kind == "gradient" else B,
                        task, seed=seed, fallback=method in ("auto", "both"))
        choice = runner.choice
        if choice.kind == "tree":
            bg_rows = bg_rows[:0]
            if background:
                notes.append("--background is not used: TreeExplainer works from the trees' "
                             "own statistics")

    if local is not None or choice is None:  # LIME alone always has a row
        rows = np.array([local])
    else:
        cap = max_rows or (SLOW_MAX_ROWS if choice.kind in SLOW else MAX_ROWS)
        rows = sample_rows(n, cap, rng_rows)
        if len(rows) < n:
            notes.append(f"explained a seeded sample of {len(rows):,} of {n:,} rows (seed "
                         f"{seed}); --max-rows changes it")
    Z = space.rows(rows)
    features = space.feature_names(Z.shape[1])
    if pre is not None:
        notes.append(f"explained in the {len(features)} features {type(est).__name__} sees, after "
                     "the pipeline's earlier steps")
    needs_labels = local is not None or (task.task == "multiclass" and target is None)
    pred = predict(model, take_rows(data.X, rows), task=task, x_name=x_name,
                   name=name) if needs_labels else None
    explained, per_row = _explained(task, target, local, pred, len(rows))
    probability = None
    if local is not None and pred.y_score is not None and pred.score_kind == "proba":
        probability = float(pred.y_score[0].max())

    common = dict(rows=rows, n_rows=n, seed=seed, top=top, row=local,
                  prediction=plain(pred.y_pred[0]) if pred is not None and local is not None
                  else None,
                  probability=probability, model_name=label)
    result = None
    if runner is not None:
        Zx = as_tensor(Z, est) if choice.kind == "gradient" else Z
        values, base, _ = run_rows(runner, Zx, None if explained is None else np.asarray(
            explained, dtype=object))
        notes.extend(runner.notes)
        result = ExplainResult(
            scope="local" if local is not None else "global", method="shap",
            explainer=choice.name, reason=choice.reason, features=features, values=values,
            base_values=base, data=Z.astype(float), explained=explained,
            output=_describe(runner.space, explained, per_row), space=runner.space,
            importance=_importance(features, values), background_size=len(bg_rows),
            background_rows=bg_rows, **common)
    if method in ("lime", "both"):
        lime = _lime(est, Z, space, n, background, np.random.default_rng([seed, 2]), task,
                     explained, features, seed, is_torch, common)
        if result is None:
            result = lime
        else:
            result.lime = lime
    if result is None:  # unreachable: every method computes SHAP, LIME or both
        raise AssertionError(method)
    result.notes = notes + result.notes
    result.seconds = time.perf_counter() - started
    if log:
        log_result(model, result, store)
    return result


def _no_attribution_flags(tokenizer: Any, n_steps: Any, x_name: str) -> None:
    if tokenizer is not None:
        raise InputError(f"--tokenizer applies to token ids; {x_name} holds feature rows for this "
                         "model (drop --tokenizer)")
    if n_steps is not None:
        raise InputError(f"--steps applies to Integrated Gradients of token ids and images; "
                         f"{x_name} holds feature rows for this model (drop --steps)")


def _attributions(model: Any, X: Any, kind: InputKind, *, method: str, tokenizer: Any,
                  tokenizer_name: str | None, **options: Any) -> AttributionResult:
    """Integrated Gradients of a token or image model (the module docstring of
    ``modality.py`` says which rows are which)."""
    if method not in ("auto", "gradient"):
        raise InputError(f"--method {method} does not apply to {kind.kind} inputs: "
                         f"{kind.reason}, so they are explained with Integrated Gradients "
                         "(Captum); use --method auto")
    if kind.kind == TOKENS:
        from .tokens import explain_tokens

        return explain_tokens(model, X, kind, tokenizer=tokenizer,
                              tokenizer_name=tokenizer_name, **options)
    if tokenizer is not None:
        raise InputError(f"--tokenizer applies to token ids; {kind.reason} (drop --tokenizer)")
    from .images import explain_images

    return explain_images(model, X, kind, **options)


def _input_names(model: Any, names: list[str] | None) -> list[str] | None:
    """Column names of X, else those recorded by ``%train`` or the estimator's own."""
    if names:
        return names
    link = links.lookup(model)
    if link is not None and link.feature_names:
        return list(link.feature_names)
    fitted = getattr(model, "feature_names_in_", None)
    return [str(c) for c in fitted] if fitted is not None else None



def _explained(task: TaskInfo, target: Any, local: int | None, pred: Any, n: int):
    """The class explained for each row, and whether it is each row's predicted class."""
    if not task.is_classification:
        return None, False
    if target is not None:
        return [target] * n, False
    if local is None and task.task == "binary":
        return [task.classes[1]] * n, False
    return [plain(v) for v in pred.y_pred], local is None


def _importance(features: list[str], values: np.ndarray) -> dict[str, float]:
    mean = np.abs(values).mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    return {features[j]: float(mean[j]) for j in order}


def _lime(est, Z, space, n, background, rng, task, explained, features, seed, is_torch, common):
    from .lime_values import lime_values

    bg_rows = sample_rows(n, background or LIME_BACKGROUND, rng)
    out = lime_values(est, Z, space.rows(bg_rows), task, None if explained is None
                      else explained[0], features, seed=seed, is_torch=is_torch)
    return ExplainResult(
        scope="local", method="lime", explainer="LimeTabularExplainer",
        reason="LIME: a weighted linear model fitted around the row", features=features,
        values=out.values, base_values=np.array([out.base_value]), data=Z.astype(float),
        explained=explained, output=_describe(out.space, explained, False), space=out.space,
        importance=_importance(features, out.values), background_size=len(bg_rows),
        background_rows=bg_rows, conditions=out.conditions, score=out.score, **common)
