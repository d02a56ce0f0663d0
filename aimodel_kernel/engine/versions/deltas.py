"""How two versions' recorded results differ: metric deltas and their directions, the
importance-ranking shift, fairness and compression deltas, and how to word them. Plain data in,
plain data out; used by :func:`~aimodel_kernel.engine.versions.diff.diff_versions`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.metric_names import (
    HEADLINE,
    MACHINE_METRICS,
    delta,
    format_delta,
    higher_is_better,
    is_fraction,
    metric_label,
    ordinal,
)

# metrics that the explanation, fairness and compression sections of a diff compare themselves
SECTION_METRICS = ("explain.", "fairness.", "compress.")


def _ranks(report: Any) -> dict[str, tuple[int, float]] | None:
    try:
        features, values = list(report["features"]), [float(v) for v in report["importance"]]
    except (KeyError, TypeError, ValueError):
        return None
    if len(features) != len(values) or len(set(features)) != len(features):
        return None
    order = sorted(range(len(values)),
                   key=lambda i: -values[i] if math.isfinite(values[i]) else math.inf)
    return {str(features[i]): (rank + 1, values[i]) for rank, i in enumerate(order)}


def importance_shift(report_a: Any, report_b: Any, *, top: int = 10) -> dict[str, Any] | None:
    """How the feature-importance ranking moved from ``report_a`` to ``report_b``.

    Parameters
    ----------
    report_a, report_b : dict
        ``{"method", "features": [names], "importance": [mean |SHAP|]}``.
    top : int
        Length of the ``top_a`` / ``top_b`` lists.

    Returns
    -------
    dict or None
        ``moved`` (features whose rank changed, most prominent first, with ``rank_a``,
        ``rank_b``, ``change`` > 0 for a rise), ``headline``, ``top_a``, ``top_b``, ``only_a``,
        ``only_b``; ``None`` when either report is malformed.
    """
    ra, rb = _ranks(report_a), _ranks(report_b)
    if ra is None or rb is None:
        return None
    moved = [
        {"feature": f, "rank_a": ra[f][0], "rank_b": rb[f][0], "change": ra[f][0] - rb[f][0],
         "importance_a": ra[f][1], "importance_b": rb[f][1]}
        for f in ra if f in rb and ra[f][0] != rb[f][0]
    ]
    moved.sort(key=lambda m: (min(m["rank_a"], m["rank_b"]), -abs(m["change"])))
    headline = None
    if moved:
        m = moved[0]
        verb = "rose" if m["change"] > 0 else "fell"
        headline = f"'{m['feature']}' {verb} from {ordinal(m['rank_a'])} to {ordinal(m['rank_b'])}"
    return {
        "method_a": report_a.get("method"), "method_b": report_b.get("method"),
        "moved": moved, "headline": headline,
        "top_a": sorted(ra, key=lambda f: ra[f][0])[:top],
        "top_b": sorted(rb, key=lambda f: rb[f][0])[:top],
        "only_a": [f for f in ra if f not in rb], "only_b": [f for f in rb if f not in ra],
    }


def fairness_deltas(ra: Any, rb: Any) -> dict[str, dict[str, Any]] | None:
    """Per-metric deltas of two ``fairness/report.json`` reports (``None`` unless both).

    Audits of the same sensitive features are compared like for like (``"sex: <metric>"``);
    without audits on shared features, the latest summaries are compared.
    """
    ra, rb = ra or {}, rb or {}
    audits_a, audits_b = ra.get("audits") or {}, rb.get("audits") or {}
    shared = [f for f in audits_a if f in audits_b]
    if shared:
        out: dict[str, dict[str, Any]] = {}
        for feature in shared:
            for name, entry in _summary_deltas(audits_a[feature], audits_b[feature]).items():
                out[f"{feature}: {name}"] = entry
        return out
    return _summary_deltas(ra.get("summary"), rb.get("summary"))


def _summary_deltas(sa: Any, sb: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(sa, dict) or not isinstance(sb, dict):
        return None
    return {m: {**delta(sa.get(m), sb.get(m)), "higher_is_better": higher_is_better(m)}
            for m in [*sa, *(k for k in sb if k not in sa)]}


def compression_deltas(ra: Any, rb: Any) -> dict[str, Any] | None:
    """Per-variant deltas of the numeric fields of two ``compress/report.json`` reports."""
    def by_name(report: Any) -> dict[str, dict[str, Any]] | None:
        variants = (report or {}).get("variants")
        if not isinstance(variants, list):
            return None
        return {str(v.get("name")): v for v in variants if isinstance(v, dict)}

    va, vb = by_name(ra), by_name(rb)
    if va is None or vb is None:
        return None
    numeric = (int, float)
    variants = {}
    for name in (n for n in va if n in vb):
        keys = [k for k in [*va[name], *(k for k in vb[name] if k not in va[name])]
                if isinstance(va[name].get(k), numeric) or isinstance(vb[name].get(k), numeric)]
        variants[name] = {k: {**delta(va[name].get(k), vb[name].get(k)),
                              "higher_is_better": higher_is_better(k)} for k in keys}
    return {"variants": variants, "only_a": [n for n in va if n not in vb],
            "only_b": [n for n in vb if n not in va]}


def _metric_order(name: str) -> tuple[int, str]:
    rank = 0 if name.startswith("eval.") else 1 if name.startswith("val_") else 2
    return (3 if name in MACHINE_METRICS else rank, name)


def metric_deltas(
    ma: dict[str, float], mb: dict[str, float], eval_a: Any = None, eval_b: Any = None
) -> dict[str, dict[str, Any]]:
    """A delta for every metric of either side, with the evaluations' bootstrap intervals.

    ``explain.*``, ``fairness.*`` and ``compress.*`` metrics are left to their own sections.

    Parameters
    ----------
    ma, mb : dict
        Recorded metrics of A and B.
    eval_a, eval_b : dict, optional
        Their ``evaluation/report.json``, whose ``intervals`` go with the ``eval.*`` metrics.

    Returns
    -------
    dict
        ``name -> {"a", "b", "delta", "higher_is_better", "points"}`` (+ ``interval_a``,
        ``interval_b``); ``points`` marks accuracy-like metrics shown in percentage points.
    """
    ia = (eval_a or {}).get("intervals") or {}
    ib = (eval_b or {}).get("intervals") or {}
    out = {}
    names = {n for n in (*ma, *mb) if not n.startswith(SECTION_METRICS)}
    for name in sorted(names, key=_metric_order):
        entry = {**delta(ma.get(name), mb.get(name)),
                 "higher_is_better": higher_is_better(name), "points": is_fraction(name)}
        short = name[len("eval."):] if name.startswith("eval.") else None
        if short and (short in ia or short in ib):
            entry["interval_a"], entry["interval_b"] = ia.get(short), ib.get(short)
        out[name] = entry
    return out


def evaluation_deltas(
    ref_a: str, ra: Any, ref_b: str, rb: Any, notes: list[str]
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any] | None]:
    """Per-class deltas and the confusion change (B - A) of two evaluation reports.

    Returns
    -------
    (per_class, confusion)
        ``per_class[label][metric] = {"a", "b", "delta"}`` and ``{"labels", "delta"}`` (``None``
        unless both reports have a confusion matrix over the same labels). Caveats go to
        ``notes``.
    """
    per_class: dict[str, dict[str, dict[str, Any]]] = {}
    if not ra or not rb:
        if ra or rb:
            missing = ref_a if not ra else ref_b
            notes.append(f"{missing} has no evaluation report: per-class and confusion "
                              "changes need %evaluate on both")
        return per_class, None
    if ra.get("n_samples") != rb.get("n_samples"):
        notes.append(f"the evaluations used different data ({ra.get('n_samples')} vs "
                          f"{rb.get('n_samples')} rows): their deltas mix model and data changes")
    pa, pb = ra.get("per_class") or {}, rb.get("per_class") or {}
    if pa and pb:
        for label in [*pa, *(k for k in pb if k not in pa)]:
            ca, cb = pa.get(label, {}), pb.get(label, {})
            per_class[label] = {m: delta(ca.get(m), cb.get(m))
                                     for m in [*ca, *(k for k in cb if k not in ca)]}
    if ra.get("confusion") is not None and rb.get("confusion") is not None:
        if ra.get("labels") == rb.get("labels"):
            change = np.asarray(rb["confusion"]) - np.asarray(ra["confusion"])
            return per_class, {"labels": ra["labels"], "delta": change.tolist()}
        notes.append("the evaluations have different class labels: no confusion change")
    return per_class, None


def headline(metrics: dict[str, dict[str, Any]]) -> str | None:
    """The summary's metric part, e.g. ``accuracy +1.2 pt``, from the best-known shared metric."""
    shared = [n for n, m in metrics.items() if m["delta"] is not None]
    pick = next((n for n in HEADLINE if n in shared), None)
    pick = pick or next((n for n in shared if n not in MACHINE_METRICS), None)
    if pick is None:
        return None
    m = metrics[pick]
    if m["delta"] == 0:
        return f"{metric_label(pick)} unchanged ({m['b']:.4g})"
    return f"{metric_label(pick)} {format_delta(pick, m['delta'])}"
