"""``compress()``: pruned, structured-pruned, ONNX and int8 ONNX variants of a trained model,
each checked against the original on given rows (output difference, prediction agreement, task
metric), timed at batch 1 and 256, the best one within an accuracy budget exported for serving,
and every variant recorded as a version whose parent is the original.

Everything the user can get wrong is checked before any file is written or anything is logged.
A variant that fails after that is reported in its row with the reason; the others complete.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Settings
from ..core import batches as contract
from ..core import links
from ..core.data import take_rows
from ..core.errors import InputError
from ..core.memory import release_memory, releases_memory
from ..store.onnx_model import OnnxModel, session
from ..store.serialize import framework_of, save_model
from . import checks as checks
from .feeds import onnx_feeds
from .latency import BATCHES, measure, same_threads
from .onnx_export import check_export, export_sklearn, export_torch
from .plan import Plan, check_plan
from .pruning import count_params, prune_global, prune_structured
from .quantize import (
    DYNAMIC_OPS,
    QUANTIZABLE_OPS,
    check_int8_path,
    quantize_dynamic_int8,
)
from .quantize import quantize_int8 as ort_quantize
from .result import CompressResult, Variant, choose

DEFAULT_MAX_DROP = 0.01


@releases_memory
def compress(
    model: Any, X: Any, y: Any, *, prune: float | None = None, structured: float | None = None,
    quantize: str | None = None, onnx: bool = False, max_drop: float | None = None,
    name: str | None = None, out: str | Path | None = None, log: bool = True, threads: int = 1,
    repeats: int = 30, calibration: Any = None, settings: Settings | None = None,
    source: dict[str, str] | None = None, names: tuple[str, str, str] = ("model", "X", "y"),
) -> CompressResult:
    """Build smaller / faster variants of a trained model and verify each against it.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
        Never modified: pruning works on copies.
    X, y : array-like, DataFrame or tensor
        Check rows: every variant's outputs, labels and metric are compared with the original's.
    prune : float, optional
        PyTorch: global magnitude pruning of this fraction of the Linear/Conv weights.
    structured : float, optional
        PyTorch: remove this fraction of the neurons / channels of each prunable layer.
    quantize : {"int8"}, optional
        onnxruntime static int8 quantization of each ONNX export (QDQ, calibrated).
    onnx : bool
        Add the float32 ONNX export of each model (PyTorch via ``torch.onnx``, scikit-learn via
        ``skl2onnx``). Without any variant flag, ``onnx`` and ``int8`` are both built.
    max_drop : float, optional
        Largest metric drop (accuracy or R², absolute: 0.01 = 1 point) the chosen variant may
        have; 0.01 by default.
    name : str, optional
        Register the variants as versions of this name (default: ``<original name>-compressed``
        when the original is a registered version).
    out : path, optional
        Where the chosen ONNX file goes: a ``.onnx`` path or a folder (default
        ``<store home>/exports``).
    log : bool
        Record metrics, the report and the variant versions in the store.
    threads : int
        Threads for every runtime while timing (torch, BLAS/OpenMP, onnxruntime).
    repeats : int
        Timed calls per batch size and variant.
    calibration : array-like, optional
        Rows to calibrate int8 activations on (default: the first 512 check rows).
    settings : Settings, optional
    source : dict, optional
        ``{"line", "cell"}`` recorded with the variant runs.
    names : (str, str, str)
        The user's names of the model, X and y, for messages.

    Returns
    -------
    CompressResult

    Raises
    ------
    InputError
        Bad options or check data, a model that cannot be exported (naming the operation or
        line), quantization of a model with no int8 path. Nothing is written or logged then.
    MissingDependency
        onnx, onnxscript, onnxruntime or skl2onnx is missing.
    """
    framework = framework_of(model)
    plan = check_plan(model, X, y, framework, prune=prune, structured=structured, quantize=quantize,
                  onnx=onnx, max_drop=max_drop, name=name, threads=threads, repeats=repeats,
                  calibration=calibration, names=names, out=out)
    budget = DEFAULT_MAX_DROP if max_drop is None else float(max_drop)
    link = links.lookup(model)
    result = CompressResult(type(model).__name__, framework, plan.task,
                            checks.metric_name(plan.task), [], budget, threads=threads,
                            n_check=plan.n)
    if link is not None and link.name and link.version is not None:
        result.parent = f"{link.name}/{link.version}"
    result.name = name or (f"{link.name}-compressed" if link is not None and link.name else None)
    with tempfile.TemporaryDirectory(prefix="aimodel-compress-") as tmp:
        work = Path(tmp)
        bases = _bases(model, plan, prune, structured)  # InputError here still changes nothing
        base_onnx = _export_original(model, plan, work, result) if plan.onnx or plan.quantize \
            else None
        release_memory()  # the exporter's traced graph and protos: before sessions open
        if plan.quantize and plan.int8 == "dynamic":
            result.notes.append("int8 is onnxruntime's dynamic quantization (the model takes "
                                "token ids): weights int8, activations quantized per batch"
                                + ("; --calibrate is not used" if calibration is not None
                                   else ""))
        elif calibration is None and plan.quantize:
            n_calib = contract.batch_len(plan.calibration) if plan.framework == "torch" \
                else len(plan.calibration)
            result.notes.append(f"int8 activations calibrated on the first {n_calib} check "
                                "rows; pass a calibration set (--calibrate X_train) to keep "
                                "them apart")
        runners = _build(model, plan, bases, base_onnx, work, result, threads)
        release_memory()  # the quantizer's copies of the model
        _verify(plan, runners, result)
        _time(plan, runners, result, repeats, threads)
        result.chosen, result.reason = choose(result.variants, budget, result.metric)
        if result.chosen:
            result.export_path = _write_export(result, out, settings)
        if log:
            from .record import record

            record(result, model, plan.example, link, settings=settings, source=source)
    for v in result.variants:
        v.file, v.module = None, None
    return result


def _bases(model: Any, plan: Plan, prune: float | None,
           structured: float | None) -> list[tuple[str, Any, Any]]:
    """The models to export: the original, and its pruned copies (PyTorch)."""
    bases: list[tuple[str, Any, Any]] = [("original", model, None)]
    if prune is not None:
        bases.append(("pruned", *prune_global(model, prune)))
    if structured is not None:
        bases.append(("structured", *prune_structured(model, structured, plan.example)))
    return bases


def _export(module: Any, plan: Plan, path: Path) -> dict[str, Any]:
    """Export ``module``; for PyTorch, check the file at batch 1 and another sequence length
    (what it found: the exporter and the largest output difference of each check)."""
    if plan.framework != "torch":
        export_sklearn(module, plan.Xn.shape[1], path)
        return {}
    exporter = export_torch(module, plan.example, path)
    return {"exporter": exporter, "max_abs_diff": check_export(module, plan.example, path)}


def _export_original(model: Any, plan: Plan, work: Path, result: CompressResult) -> Path:
    """The original's float32 export, made first: a model that cannot be exported is the
    user's to fix (InputError), and int8 needs a graph with something to quantize."""
    path = work / "original.onnx"
    result.export_checks = _export(model, plan, path)
    if result.export_checks:
        checked = ", ".join(f"{what} (max |diff| {diff:.2g})" for what, diff in
                            result.export_checks["max_abs_diff"].items())
        result.notes.append(f"the ONNX export ({result.export_checks['exporter']} exporter) "
                            f"matches PyTorch at {checked}")
    if plan.quantize:
        try:
            check_int8_path(path, type(model).__name__,
                            DYNAMIC_OPS if plan.int8 == "dynamic" else QUANTIZABLE_OPS)
        except InputError as exc:
            if not plan.auto:
                raise
            plan.quantize = False
            result.notes.append(f"no int8 variant: {exc}")
    return path


# -- variants ----------------------------------------------------------------------------------
def _size(model: Any, folder: Path) -> int:
    saved = save_model(model, folder, manifest={})
    main = next(iter(saved.checksums))
    return (folder / main).stat().st_size


def _build(model: Any, plan: Plan, bases: list[tuple[str, Any, Any]], base_onnx: Path | None,
           work: Path, result: CompressResult, threads: int) -> dict[str, checks.Runner]:
    """Every variant row and a runner for each that could be built."""
    runners: dict[str, checks.Runner] = {}
    task = plan.task
    for base, module, info in bases:
        torch_kind = plan.framework
        row = Variant(base, torch_kind, module=module)
        if info is not None:
            row.details = info.to_dict()
        result.variants.append(row)
        try:
            row.size_bytes = _size(module, work / base)
            if plan.framework == "torch":
                row.params, row.nonzero_params = count_params(module)
            runners[base] = (checks.torch_runner(module, task) if plan.framework == "torch"
                             else checks.sklearn_runner(module, task))
        except Exception as exc:
            row.fail(exc)
            continue
        prefix = "" if base == "original" else f"{base}-"
        fp32 = base_onnx if base == "original" else work / f"{base}.onnx"
        stages = [("onnx", False)] * plan.onnx + [("onnx-int8", True)] * plan.quantize
        specs = None  # the fp32 file's inputs, read from its session once it has one
        for stage, int8 in stages:
            v = Variant(prefix + stage, "onnx", params=row.params,
                        nonzero_params=row.nonzero_params, details=dict(row.details))
            result.variants.append(v)
            try:
                if not fp32.exists():
                    _export(module, plan, fp32)
                path = fp32
                if int8:
                    path = work / f"{base}-int8.onnx"
                    if not path.exists():
                        _quantize(fp32, path, plan, specs)
                    v.details["int8"] = plan.int8
                v.file, v.size_bytes = path, path.stat().st_size
                runtime = OnnxModel(path, task=task.task, classes=task.classes,
                                    source=plan.framework, threads=threads)
                if not int8:
                    specs = runtime.session.get_inputs()
                runners[v.name] = checks.onnx_runner(runtime, task)
            except Exception as exc:
                v.fail(exc)
    return runners


def _quantize(fp32: Path, path: Path, plan: Plan, specs: Any = None) -> None:
    """The int8 file of ``fp32``: dynamic for token models, else static on the calibration
    rows (fed by input name for a model taking several inputs). ``specs``: the fp32 session's
    inputs when one is open already (a second session of a transformer costs its size again)."""
    if plan.framework != "torch":
        ort_quantize(fp32, path, plan.calibration)
        return
    specs = specs if specs is not None else session(fp32).get_inputs()
    if plan.int8 == "dynamic":
        quantize_dynamic_int8(fp32, path, onnx_feeds(plan.example, specs))
        return
    n = contract.batch_len(plan.calibration)
    ort_quantize(fp32, path, [onnx_feeds(contract.take(plan.calibration, slice(i, i + 64)), specs)
                              for i in range(0, n, 64)])


def _verify(plan: Plan, runners: dict[str, checks.Runner], result: CompressResult) -> None:
    """Outputs, metric, metric drop, output difference and agreement of every variant."""
    original = result.original
    ref = runners["original"].outputs(plan.X if plan.framework == "sklearn" else plan.Xn)
    original.metrics = checks.metrics(plan.y, ref, plan.task)
    original.metric_drop, original.max_abs_diff, original.agreement = 0.0, 0.0, 1.0
    key = result.metric
    for v in result.variants[1:]:
        if not v.ok or v.name not in runners:
            continue
        try:
            out = runners[v.name].outputs(plan.Xn)
            v.metrics = checks.metrics(plan.y, out, plan.task)
            v.metric_drop = original.metrics[key] - v.metrics[key]
            found = checks.compare(ref, out, plan.task)
            v.max_abs_diff, v.agreement = found["max_abs_diff"], found["agreement"]
        except Exception as exc:
            v.fail(exc)


def _time(plan: Plan, runners: dict[str, checks.Runner], result: CompressResult,
          repeats: int, threads: int) -> None:
    """p50 / p95 at batch 1 and 256 of every working variant, all on ``threads`` threads.

    The last use of the runners: each is dropped once timed (with its onnxruntime session and
    the arena its batch-256 runs grew), so the peak memory is one variant's, not their sum.
    """
    index = {b: np.resize(np.arange(plan.n), b) for b in BATCHES}
    with same_threads(threads):
        for v in result.variants:
            runner = runners.pop(v.name, None)
            release_memory()  # the variant timed before this one
            if not v.ok or runner is None:
                continue
            native = v.name == "original" and plan.framework == "sklearn"
            inputs = {b: take_rows(plan.X, i) if native else runner.prepare(plan.rows(i))
                      for b, i in index.items()}
            try:
                if runner.context is not None:
                    with runner.context():
                        v.latency = measure(runner.call, inputs, repeats=repeats)
                else:
                    v.latency = measure(runner.call, inputs, repeats=repeats)
            except Exception as exc:
                v.fail(exc)


# -- export ------------------------------------------------------------------------------------
def _write_export(result: CompressResult, out: str | Path | None,
                  settings: Settings | None) -> str | None:
    chosen = result.variant(result.chosen)
    if chosen.kind != "onnx" or chosen.file is None:
        result.notes.append("the chosen variant is a PyTorch module: add --onnx for a file to "
                            "serve")
        return None
    stem = result.name or result.model_class.lower()
    if out is None:
        from ...config import settings as default_settings

        target = (settings or default_settings).resolved_home() / "exports" / \
            f"{stem}-{chosen.name}.onnx"
    else:
        target = Path(out).expanduser()
        if target.suffix != ".onnx":
            target = target / f"{stem}-{chosen.name}.onnx"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chosen.file, target)
    except OSError as exc:  # nothing is recorded yet: the user's path to fix
        raise InputError(f"cannot write the ONNX file to {target}: "
                         f"{exc.strerror or exc}; pass --out a folder you can write to") from None
    return str(target.resolve())
