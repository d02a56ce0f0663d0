"""What ``compress()`` returns: one :class:`Variant` per report row, the
:class:`CompressResult`, and how the variant to deploy is chosen within a metric budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.data import TaskInfo
from ..core.errors import InputError
from .latency import BATCHES, Latency

CLOSE_LATENCY = 1.25  # within 25 % of the fastest counts as fast (timing noise): smaller wins


@dataclass
class Variant:
    """One row of the report: a variant, how it did, or why it failed."""

    name: str
    kind: str  # "torch", "sklearn" or "onnx"
    status: str = "ok"
    reason: str | None = None
    size_bytes: int | None = None
    params: int | None = None
    nonzero_params: int | None = None
    latency: dict[int, Latency] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_drop: float | None = None
    max_abs_diff: float | None = None
    agreement: float | None = None
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    file: Path | None = field(default=None, repr=False)
    module: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def p50(self, batch: int = 256) -> float | None:
        lat = self.latency.get(batch)
        return lat.p50_ms if lat else None

    def fail(self, exc: BaseException) -> None:
        self.status = "failed"
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        self.reason = text if isinstance(exc, InputError) else f"{type(exc).__name__}: {text}"

    def to_dict(self, original: Variant | None = None) -> dict[str, Any]:
        """The row as ``compress/report.json`` stores it (numbers flat, for ``%diff``)."""
        row: dict[str, Any] = {"name": self.name, "kind": self.kind, "status": self.status}
        if self.reason:
            row["reason"] = self.reason
        row.update(size_bytes=self.size_bytes, params=self.params,
                   nonzero_params=self.nonzero_params, sparsity=self.sparsity)
        for batch, lat in sorted(self.latency.items()):
            suffix = "" if batch == 1 else f"_b{batch}"
            row[f"latency_ms_p50{suffix}"] = lat.p50_ms
            row[f"latency_ms_p95{suffix}"] = lat.p95_ms
        row.update(self.metrics)
        row.update(metric_drop=self.metric_drop, max_abs_diff=self.max_abs_diff,
                   agreement=self.agreement)
        if original is not None and self.ok and original.ok:
            if self.size_bytes and original.size_bytes:
                row["size_ratio"] = self.size_bytes / original.size_bytes
            if self.p50() and original.p50():
                row["speedup_b256"] = original.p50() / self.p50()
        if self.version:
            row["version"] = self.version
        if self.details:
            row["details"] = self.details
        return {k: v for k, v in row.items() if v is not None}

    @property
    def sparsity(self) -> float | None:
        if not self.params or self.nonzero_params is None:
            return None
        return 1.0 - self.nonzero_params / self.params


@dataclass
class CompressResult:
    """The outcome of :func:`compress`: one :class:`Variant` per row and the choice made."""

    model_class: str
    framework: str
    task: TaskInfo
    metric: str
    variants: list[Variant]
    max_drop: float
    chosen: str | None = None
    reason: str = ""
    export_path: str | None = None
    threads: int = 1
    n_check: int = 0
    run_id: str | None = None
    tracking_uri: str | None = None
    logged: bool = False
    name: str | None = None
    parent: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the original's ONNX export against PyTorch: exporter, max |diff| at batch 1 / another
    #: sequence length (PyTorch models; also in ``notes``)
    export_checks: dict[str, Any] = field(default_factory=dict)

    @property
    def original(self) -> Variant:
        return self.variants[0]

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; variants: {[v.name for v in self.variants]}")

    @property
    def versions(self) -> list[str]:
        return [v.version for v in self.variants if v.version]

    def report(self) -> dict[str, Any]:
        """``compress/report.json``: the rows plus the choice and how they were measured."""
        return {
            "model_class": self.model_class, "framework": self.framework,
            "task": self.task.to_dict(), "metric": self.metric, "n_check": self.n_check,
            "threads": self.threads, "batches": list(BATCHES), "max_drop": self.max_drop,
            "chosen": self.chosen, "reason": self.reason, "export_path": self.export_path,
            "parent": self.parent, "notes": list(self.notes),
            "variants": [v.to_dict(self.original) for v in self.variants],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.report(), "run_id": self.run_id, "logged": self.logged,
                "name": self.name, "versions": self.versions}


# -- the choice ------------------------------------------------------------------------------------
def _drop_text(metric: str, drop: float) -> str:
    return f"{(0.0 - drop) * 100:+.1f} pt" if metric == "accuracy" else f"{0.0 - drop:+.3g}"


def choose(variants: list[Variant], max_drop: float, metric: str) -> tuple[str | None, str]:
    """The fastest variant at batch 256 whose metric drop is within ``max_drop``, preferring
    ONNX variants, and why. Variants within 25 % of the fastest count as equally fast (small
    models time within noise of each other): the smallest file of those wins, then the smallest
    drop.

    Returns
    -------
    (name or None, reason)
    """
    done = [v for v in variants[1:] if v.ok and v.p50() is not None and v.metric_drop is not None]
    pool = [v for v in done if v.kind == "onnx"] or done
    if not pool:
        return None, "no variant completed: nothing to choose"
    budget = _drop_text(metric, max_drop).lstrip("+-")
    within = [v for v in pool if v.metric_drop <= max_drop + 1e-12]
    if not within:
        best = min(pool, key=lambda v: v.metric_drop)
        return None, (f"no variant keeps {metric} within the {budget} budget; the closest, "
                      f"{best.name}, changes it by {_drop_text(metric, best.metric_drop)}")
    fastest = min(v.p50() for v in within)
    pick = min((v for v in within if v.p50() <= CLOSE_LATENCY * fastest),
               key=lambda v: (v.size_bytes or 0, v.metric_drop, v.p50()))
    orig = variants[0]
    parts = [f"{pick.name}: the fastest at batch 256 within the {budget} budget"
             + (" (the smallest of those within 25 % of the fastest)" if pick.p50() != fastest
                else ""),
             f"{metric} {pick.metrics[metric]:.4g} ({_drop_text(metric, pick.metric_drop)})"]
    if orig.p50():
        parts.append(f"{orig.p50() / pick.p50():.1f}× faster than the original")
    if orig.size_bytes and pick.size_bytes:
        parts.append(f"{pick.size_bytes / orig.size_bytes:.2f}× its size")
    over = [f"{v.name} ({_drop_text(metric, v.metric_drop)})" for v in pool
            if v.metric_drop > max_drop + 1e-12]
    reason = ", ".join(parts)
    if over:
        reason += "; over budget: " + ", ".join(over)
    return pick.name, reason
