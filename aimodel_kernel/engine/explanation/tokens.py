"""Per-token attributions of a token model: Captum's ``LayerIntegratedGradients`` on the
model's input embedding layer.

Each row is explained on its own (a batch of one, its ``n_steps`` path points forming Captum's
batch), so variable-length Dataset items need no padding. The baseline is the row with every
token replaced by the pad token id (the model config's ``pad_token_id``, else 0); the row's
other inputs (``attention_mask``, ``token_type_ids``, positional inputs) are passed through
unchanged as additional forward arguments. A token's attribution is the sum over the
embedding dimension; tokens with attention mask 0 are dropped (their attribution is 0: the
input equals the baseline there). torch and captum are imported inside functions.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..core.data import check_data
from ..core.errors import InputError
from ..core.inputs import check_seed, module_device_dtype
from .attribution_result import TokenExplainResult
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
from .modality import InputKind, embedding_layer
from .token_rows import TokenRows

EXPLAINER = "LayerIntegratedGradients"


def method_name(n_steps: int) -> str:
    """The method as the result names it."""
    return f"integrated gradients (captum) on the embedding layer, {n_steps} steps"


def check_tokenizer(tokenizer: Any, tokenizer_name: str | None = None) -> None:
    """Raise :class:`InputError` unless ``tokenizer`` turns ids into tokens."""
    if tokenizer is None:
        return
    if not callable(getattr(tokenizer, "convert_ids_to_tokens", None)):
        shown = tokenizer_name or type(tokenizer).__name__
        raise InputError(f"--tokenizer {shown} is a {type(tokenizer).__name__}, not a tokenizer "
                         "(it has no convert_ids_to_tokens); pass a Hugging Face tokenizer, e.g. "
                         "AutoTokenizer.from_pretrained(folder)")


def pad_token_id(model: Any) -> tuple[int, str]:
    """The baseline token id and where it came from."""
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    if isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0:
        return pad, "the config's pad_token_id"
    return 0, "no pad_token_id in the model's config: id 0"


def token_texts(ids: list[int], tokenizer: Any) -> list[str]:
    """The tokens of ``ids``: the tokenizer's text when given, else the ids as text."""
    if tokenizer is None:
        return [str(i) for i in ids]
    return [str(t) for t in tokenizer.convert_ids_to_tokens(ids)]


def importance_of(tokens: list[list[str]], values: list[list[float]]
                  ) -> tuple[dict[str, float], dict[str, int]]:
    """Mean |attribution| of each distinct token over its occurrences (largest first), and
    how often each occurs."""
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    for row_tokens, row_values in zip(tokens, values, strict=True):
        for tok, v in zip(row_tokens, row_values, strict=True):
            total[tok] = total.get(tok, 0.0) + abs(v)
            count[tok] = count.get(tok, 0) + 1
    mean = {t: total[t] / count[t] for t in total}
    order = sorted(mean, key=lambda t: (-mean[t], -count[t]))
    return {t: mean[t] for t in order}, {t: count[t] for t in order}


def explain_tokens(
    model: Any, X: Any, kind: InputKind, *, row: int | None = None, target: Any = None,
    max_rows: int | None = None, n_steps: int | None = None, seed: int = 0, top: int = 10,
    tokenizer: Any = None, tokenizer_name: str | None = None, background: int | None = None,
    name: str | None = None, x_name: str = "X",
) -> TokenExplainResult:
    """Integrated Gradients of each token of a token model's rows.

    Parameters
    ----------
    model : torch.nn.Module
        A model with an input embedding layer (``embedding_layer`` finds it).
    X : token ids: a tensor or array of ints, a dict or tuple of array-likes, a Dataset
    kind : InputKind
        Why ``X`` was taken for token ids (shown in the result).
    row : int, optional
        Explain only this row (0-based): a local explanation.
    target : class label, optional
        The class explained (default: each row's predicted class).
    max_rows : int, optional
        Rows of a global view: a seeded sample when X has more (default 100).
    n_steps : int, optional
        Steps of the path integral (default 50).
    seed : int
        Seed of the row sample.
    top : int
        Tokens shown.
    tokenizer : optional
        A tokenizer with ``convert_ids_to_tokens``: tokens are shown as text (else as ids).
    tokenizer_name, name, x_name : str, optional
        The user's names, for messages.
    background : int, optional
        Not used (one baseline); noted when given.

    Returns
    -------
    TokenExplainResult

    Raises
    ------
    InputError
        Not a tokenizer, bad counts, ``row`` out of range, rows the model cannot take, an
        unknown class; all before any attribution runs.
    MissingDependency
        captum is not installed.
    """
    import torch

    started = time.perf_counter()
    attr = captum_attr()
    check_seed(seed)
    steps = check_steps(n_steps)
    check_tokenizer(tokenizer, tokenizer_name)
    label = name or type(model).__name__
    layer, how = embedding_layer(model)
    device, dtype = module_device_dtype(model)
    data = check_data(X, None, numeric=True, require_y=False, x_name=x_name)
    rows_of = TokenRows(data.X, device, dtype, x_name)
    n = len(rows_of)
    local = check_row(row, n, x_name)
    notes: list[str] = []
    if background is not None:
        notes.append("--background is not used: Integrated Gradients starts from one baseline "
                     "(every token the pad id)")
    pad, pad_source = pad_token_id(model)
    task, outputs, target = prepare_outputs(model, rows_of.row(local or 0), target, label=label,
                                            x_name=x_name)
    rows = rows_to_explain(n, local, max_rows, seed, notes)

    def explain_row(i: int) -> tuple[list[int], list[float], float, Any]:
        batch = rows_of.row(i)
        ids = rows_of.ids(batch)
        keys, values = rows_of.others(batch)

        def forward(token_ids: Any, *extra: Any) -> Any:
            return raw_output(model, rows_of.rebuild(token_ids, keys, extra))

        with torch.no_grad():
            predicted = outputs.predicted(raw_output(model, batch))
        explained = target if target is not None else (
            predicted if task.is_classification else None)
        j, sign = outputs.column(explained)
        lig = attr.LayerIntegratedGradients(forward, layer)
        values_, delta = lig.attribute(
            ids, baselines=torch.full_like(ids, pad), additional_forward_args=values or None,
            target=j, n_steps=steps, return_convergence_delta=True)
        per_token = (sign * values_.sum(dim=-1)[0]).detach().double().cpu().numpy()
        mask = rows_of.mask(batch)
        keep = np.ones(len(per_token), bool) if mask is None else (
            mask[0].detach().cpu().numpy() != 0)
        kept_ids = ids[0].detach().cpu().numpy()[keep].tolist()
        return ([int(t) for t in kept_ids], per_token[keep].tolist(),
                sign * float(delta.reshape(-1)[0]), (predicted, explained))

    with evaluating(model):
        done = run_timed(rows, explain_row, f"{EXPLAINER} ({steps} steps)")
    token_ids = [d[0] for d in done]
    token_attributions = [d[1] for d in done]
    tokens = [token_texts(ids, tokenizer) for ids in token_ids]
    importance, counts = importance_of(tokens, token_attributions)
    predictions = [d[3][0] for d in done]
    said = done[0][3][1] if local is not None and target is None else target  # its class
    explained = [d[3][1] for d in done] if task.is_classification else None
    return TokenExplainResult(
        scope="local" if local is not None else "global", method=method_name(steps),
        explainer=EXPLAINER, reason=f"{kind.reason}: Integrated Gradients on that layer",
        rows=rows, explained=explained, predictions=predictions,
        output=describe_output(outputs, said), space=outputs.space, importance=importance,
        deltas=np.array([d[2] for d in done]), n_steps=steps,
        baseline=f"every token the pad id {pad} ({pad_source}); other inputs unchanged",
        n_rows=n, seed=seed, top=top, row=local,
        prediction=predictions[0] if local is not None else None, model_name=label,
        seconds=time.perf_counter() - started, notes=notes, tokens=tokens, token_ids=token_ids,
        token_attributions=token_attributions, counts=counts,
        tokenizer=tokenizer_name or (type(tokenizer).__name__ if tokenizer is not None else None),
        embedding=how)
