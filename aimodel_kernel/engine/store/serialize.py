"""Pickle-free model files with SHA-256 checks: skops for scikit-learn, safetensors + torch.export,
and ONNX files (``model.onnx``, written by ``%compress``).

A saved model is a folder holding the model files and ``manifest.json`` (framework, task, file
checksums). Loading verifies every checksum against the ones the caller recorded elsewhere (the
tracking store), so a file changed after it was written is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ChecksumError, InputError, require

MANIFEST = "manifest.json"
SKOPS_FILE = "model.skops"
WEIGHTS_FILE = "model.safetensors"
PROGRAM_FILE = "model.pt2"
ONNX_FILE = "model.onnx"


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class SavedModel:
    """What :func:`save_model` wrote: the folder, the file checksums and the manifest."""

    directory: Path
    checksums: dict[str, str]
    manifest: dict[str, Any]
    size_bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def framework_of(model: Any) -> str:
    """``"torch"`` for an ``nn.Module``, ``"sklearn"`` for an object with ``fit``."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    if callable(getattr(model, "fit", None)):
        return "sklearn"
    raise InputError(
        f"{type(model).__name__} is not a model: pass a scikit-learn estimator (with fit) or a "
        "torch.nn.Module"
    )


def save_model(
    model: Any,
    directory: str | Path,
    *,
    manifest: dict[str, Any],
    example_input: Any = None,
    extra_files: dict[str, Path] | None = None,
) -> SavedModel:
    """Write ``model`` into ``directory`` without pickle and return the file checksums.

    Parameters
    ----------
    model : estimator or torch.nn.Module
        The trained model.
    directory : path
        Folder to write into (created).
    manifest : dict
        Extra facts to store in ``manifest.json`` (task, classes, feature names ...).
    example_input : torch.Tensor, optional
        A batch of inputs for ``torch.export``; without it no exported program is written.
    extra_files : dict, optional
        Files to copy in beside the model (name -> source path), checksummed like it.

    Returns
    -------
    SavedModel
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    framework = framework_of(model)
    notes: list[str] = []
    if framework == "sklearn":
        sio = require("skops.io", package="skops", purpose="saving scikit-learn models")
        sio.dump(model, directory / SKOPS_FILE)
        files = [SKOPS_FILE]
    else:
        files = _save_torch(model, directory, example_input, notes)
    for name, source in (extra_files or {}).items():
        shutil.copyfile(source, directory / name)
        files.append(name)
    checksums = {name: sha256_file(directory / name) for name in files}
    full = {**manifest, "framework": framework, "class": _qualname(model), "files": checksums}
    if notes:
        full["notes"] = notes
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
    size = sum((directory / name).stat().st_size for name in files)
    return SavedModel(directory, checksums, full, size, notes)


def save_onnx(source: str | Path, directory: str | Path, *, manifest: dict[str, Any]) -> SavedModel:
    """Copy an ONNX file into ``directory`` as ``model.onnx`` with its checksum and a manifest
    (``framework: "onnx"``; ``manifest`` should hold ``task`` and ``source_framework``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, directory / ONNX_FILE)
    checksums = {ONNX_FILE: sha256_file(directory / ONNX_FILE)}
    full = {**manifest, "framework": "onnx", "files": checksums}
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
    return SavedModel(directory, checksums, full, (directory / ONNX_FILE).stat().st_size)


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _save_torch(model: Any, directory: Path, example_input: Any, notes: list[str]) -> list[str]:
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(untie(state), str(directory / WEIGHTS_FILE))
    files = [WEIGHTS_FILE]
    if example_input is None:
        return files
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = {0: torch.export.Dim.AUTO}  # any batch size, not the example's
            program = torch.export.export(model, (example_input,), dynamic_shapes=(batch,))
            torch.export.save(program, str(directory / PROGRAM_FILE))
        files.append(PROGRAM_FILE)
    except Exception as exc:  # export is best-effort: weights are always saved
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"torch.export failed ({type(exc).__name__}: {first_line[:200]})")
    finally:
        model.train(was_training)
    return files


def untie(state: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors sharing memory (tied weights); give each its own storage."""
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() else id(tensor)
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out


def verify(directory: str | Path, expected: dict[str, str]) -> None:
    """Raise :class:`ChecksumError` unless every file's SHA-256 matches ``expected``."""
    directory = Path(directory)
    for name, digest in expected.items():
        path = directory / name
        if not path.exists():
            raise ChecksumError(f"model file {name} is missing from {directory}")
        actual = sha256_file(path)
        if actual != digest:
            raise ChecksumError(
                f"{name} was changed after it was saved (SHA-256 {actual[:12]}… but "
                f"{digest[:12]}… was recorded); refusing to load it"
            )


def read_manifest(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / MANIFEST).read_text())


def load_model(directory: str | Path, expected: dict[str, str], *, into: Any = None) -> Any:
    """Load a saved model after checking its files against ``expected`` checksums.

    Parameters
    ----------
    directory : path
        Folder written by :func:`save_model`.
    expected : dict
        File name to SHA-256, as recorded in the tracking store when the model was saved.
    into : torch.nn.Module, optional
        Load the saved weights into this module (same architecture) instead of returning the
        exported program.

    Returns
    -------
    A scikit-learn estimator, ``into`` with the weights loaded, the exported program's module, or
    for an ONNX file an :class:`~aimodel_kernel.engine.store.onnx_model.OnnxModel` (onnxruntime).
    """
    directory = Path(directory)
    verify(directory, expected)
    manifest = read_manifest(directory)
    if manifest["framework"] == "onnx":
        from .onnx_model import load_onnx

        return load_onnx(directory / ONNX_FILE, manifest)
    if manifest["framework"] == "sklearn":
        sio = require("skops.io", package="skops", purpose="loading scikit-learn models")
        path = directory / SKOPS_FILE
        return sio.load(path, trusted=sio.get_untrusted_types(file=path))
    import torch

    if into is not None:
        from safetensors.torch import load_file

        into.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        return into
    if PROGRAM_FILE not in expected:
        raise InputError(
            "this version has weights but no exported program (torch.export failed when it was "
            "saved); load the weights into an instance of its class with into=model"
        )
    return torch.export.load(str(directory / PROGRAM_FILE)).module()
