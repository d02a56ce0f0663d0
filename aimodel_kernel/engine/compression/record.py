"""Recording a compression: ``compress.*`` metrics and ``compress/report.json`` on the original's
run, and each variant as a registered version (its own run, model file and SHA-256) whose parent
is the original's version. A variant's version is registered only after its files are written
and checksummed; a failure marks its run FAILED and leaves no version.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

from ...config import Settings
from ..core.environment import FORMAT_PACKAGES
from ..core.links import ModelLink
from ..store.artifacts import COMPRESSION, FINGERPRINT, RunFiles
from ..store.recorder import Recording
from ..store.tracking import TAG, Store, get_store

ROW_METRICS = ("size_bytes", "size_ratio", "sparsity", "latency_ms_p50", "latency_ms_p95",
               "latency_ms_p50_b256", "latency_ms_p95_b256", "speedup_b256", "accuracy", "r2",
               "rmse", "metric_drop", "max_abs_diff", "agreement")
COPIED_TAGS = ("data.sha256", "data.shape", "seed", "deterministic")
ONNX_PACKAGES = FORMAT_PACKAGES["onnx"]


def _store(link: ModelLink | None, settings: Settings | None) -> Store:
    store = get_store(settings)
    if link is not None and store.uri != link.tracking_uri:
        store = get_store(Settings(tracking_uri=link.tracking_uri))
    return store


def _numbers(row: dict[str, Any], prefix: str) -> list[tuple[str, float, None]]:
    return [(f"{prefix}{k}", float(row[k]), None) for k in ROW_METRICS
            if isinstance(row.get(k), int | float) and math.isfinite(row[k])]


def record(result: Any, model: Any, example: Any, link: ModelLink | None, *,
           settings: Settings | None = None, source: dict[str, str] | None = None) -> None:
    """Log ``result`` (a :class:`~aimodel_kernel.engine.compression.entry.CompressResult`).

    Variants are registered under ``result.name`` when it is set; the original's run (when the
    model came from ``%train``) gets ``compress.<variant>.<measure>`` metrics and the report.
    Store failures are kept as notes and warnings: the measurements are still returned.
    """
    store = _store(link, settings)
    original_tags: dict[str, str] = {}
    original_params: dict[str, str] = {}
    if link is not None:
        run = store.run(link.run_id)
        original_tags, original_params = dict(run.data.tags), dict(run.data.params)
    if result.name:
        for v in result.variants[1:]:
            if not v.ok:
                continue
            try:
                number = _register(store, result, v, example, link,
                                   (original_tags, original_params), source)
            except Exception as exc:
                result.notes.append(f"{v.name} was not registered: {type(exc).__name__}: {exc}")
                warnings.warn(f"could not register {v.name}: {exc}", stacklevel=3)
                continue
            v.version = f"{result.name}/{number}"
    elif link is not None:
        result.notes.append("variants not registered: pass --name NAME (the original is not a "
                            "registered version)")
    if link is None:
        return
    report = result.report()
    rows = [m for row in report["variants"][1:] if row["status"] == "ok"
            for m in _numbers(row, f"compress.{row['name']}.")]
    try:
        store.log_metrics(link.run_id, rows)
        store.log_dict(link.run_id, report, COMPRESSION)
        store.set_tags(link.run_id, {f"{TAG}compress.chosen": result.chosen or ""})
    except Exception as exc:  # the measurements are worth returning when the store is down
        result.notes.append(f"not logged to run {link.run_id}: {exc}")
        warnings.warn(f"could not log the compression to run {link.run_id}: {exc}",
                      stacklevel=3)
        return
    result.run_id, result.tracking_uri, result.logged = link.run_id, store.uri, True


def _register(store: Store, result: Any, v: Any, example: Any, link: ModelLink | None,
              original: tuple[dict[str, str], dict[str, str]],
              source: dict[str, str] | None) -> int:
    """One variant as a new run and version: the original's training parameters (what the
    variant derives from), the compression parameters, its model file, report and lineage."""
    original_tags, original_params = original
    framework = "onnx" if v.kind == "onnx" else result.framework
    task = result.task
    tags = {
        f"{TAG}framework": framework,
        f"{TAG}model_class": f"{result.model_class} ({v.name})",
        f"{TAG}task": task.task,
        f"{TAG}classes": json.dumps(list(task.to_dict()["classes"])),
        f"{TAG}name": result.name,
        f"{TAG}compress.variant": v.name,
        **{f"{TAG}{k}": original_tags[f"{TAG}{k}"] for k in COPIED_TAGS
           if f"{TAG}{k}" in original_tags},
    }
    if link is not None:
        tags[f"{TAG}compress.parent_run"] = link.run_id
    if result.parent:
        tags[f"{TAG}parent"] = result.parent
    if source and source.get("line"):
        tags[f"{TAG}magic"] = source["line"]
    params = {**original_params, "compress.variant": v.name,
              "compress.source_class": result.model_class,
              "compress.threads": str(result.threads), "compress.max_drop": str(result.max_drop)}
    if v.params is not None and "model.parameters" in params:
        params["model.parameters"] = str(v.params)
        params["model.trainable_parameters"] = str(v.params)
    for key in ("method", "amount"):
        if key in v.details:
            params[f"compress.prune.{key}"] = str(v.details[key])
    with Recording.start(store, run_name=f"{result.name}:{v.name}", params=params,
                         tags=tags) as recording:
        run_id = recording.run_id
        manifest = {"task": task.to_dict(), "source_framework": result.framework,
                    "variant": v.name}
        if v.kind == "onnx":
            recording.save_model(manifest=manifest, onnx_file=v.file)
        else:
            recording.save_model(v.module, manifest=manifest, example_input=example)
        row = v.to_dict(result.original)
        store.log_metrics(run_id, _numbers(row, "compress."))
        store.log_dict(run_id, result.report(), COMPRESSION)
        # the data the original (and so the variant) learnt from
        fingerprint = RunFiles(store, link.run_id).json(FINGERPRINT) if link else None
        recording.log_inputs(fingerprint, source,
                             packages=(*FORMAT_PACKAGES.get(result.framework, ()), *ONNX_PACKAGES))
        number = recording.register(result.name, task=task.task, parent=result.parent,
                                    data_sha256=original_tags.get(f"{TAG}data.sha256"),
                                    tags={f"{TAG}compress.variant": v.name})
    return number
