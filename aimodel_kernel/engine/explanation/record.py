"""Recording an explanation on the model's run: ``explain.*`` metrics, ``explain/importance.json``
(the document ``%diff`` compares), a local explanation's JSON, and the report's plots.

Token and image attributions are recorded the same way: their importance is per token (or
pixel), their method ``captum.<explainer>``. Metric names keep only the characters MLflow
allows (a token such as ``[CLS]`` is logged as ``explain.importance._CLS_``).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from ..core import links
from ..core.plain import jsonable
from ..store.artifacts import IMPORTANCE
from ..store.tracking import store_for
from .attribution_result import AttributionResult
from .result import ExplainResult

_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_name(feature: str) -> str:
    """``explain.importance.<feature>`` with characters MLflow refuses replaced by ``_``."""
    return "explain.importance." + _METRIC_UNSAFE.sub("_", feature[:200])


def importance_record(result: ExplainResult | AttributionResult) -> dict[str, Any]:
    """The ``explain/importance.json`` document that ``%diff`` compares between versions."""
    family = "captum" if isinstance(result, AttributionResult) else result.method
    return jsonable({
        "method": f"{family}.{result.explainer}",
        "features": list(result.importance),
        "importance": list(result.importance.values()),
        "output": result.output, "sample_size": result.sample_size, "n_rows": result.n_rows,
        "background_size": result.background_size, "seed": result.seed,
    })


def log_result(model: Any, result: ExplainResult | AttributionResult, store: Any = None
               ) -> None:
    """Log a result onto the run that trained ``model`` (nothing when no run did)."""
    link = links.lookup(model)
    if link is None:
        return
    result.run_id, result.tracking_uri = link.run_id, link.tracking_uri
    try:
        target = store_for(link.tracking_uri, store)
        if result.scope == "global":
            named: dict[str, float] = {}
            for feature, value in result.top_features():  # the first of names that clash
                named.setdefault(metric_name(feature), value)
            rows = [(k, v, None) for k, v in named.items()]
            rows += [("explain.rows", result.sample_size, None),
                     ("explain.background", result.background_size, None)]
            if isinstance(result, AttributionResult):
                rows.append(("explain.max_delta", result.max_delta, None))
            target.log_metrics(link.run_id, rows)
            target.log_dict(link.run_id, importance_record(result), IMPORTANCE)
        else:
            result.artifact_dir = f"explain/local/row_{result.row}"
            target.log_dict(link.run_id, result.to_dict(),
                            f"{result.artifact_dir}/explanation.json")
        result.logged = True
    except Exception as exc:  # the explanation is worth keeping even when the store is down
        result.logged = False
        result.notes.append(f"not logged to run {link.run_id}: {exc}")
        warnings.warn(f"could not log the explanation to run {link.run_id}: {exc}", stacklevel=3)
