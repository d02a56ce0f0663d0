"""Pickle-free model files with SHA-256 checks: skops for scikit-learn, safetensors + torch.export,
and ONNX files (``model.onnx``, written by ``%compress``).

A saved model is a folder holding the model files and ``manifest.json`` (framework, task, file
checksums, run). The caller records the digest of every file, the manifest's included, in the
tracking store (``store/recorder.py``). Loading (:func:`load_model`) treats the folder as data
someone else may have written:

- every recorded digest is checked, the manifest's too; a file the loader reads must have one;
- which loader runs is the recorded framework (the run's ``aimodel.framework`` tag, else the
  recorded file names), never the manifest: a signed or digest-covered manifest must agree
  with it, an old version recorded without a manifest digest reads its manifest only for
  facts that run no code (an ONNX model's task and classes);
- skops files load only types on the allow-list of :mod:`.trust`, torch programs through the
  pickle-free reader of :mod:`.torch_program`, weights through safetensors; a transformers
  model is rebuilt from its covered manifest's architecture record (a class looked up only in
  transformers, a JSON configuration: :mod:`.hf_architecture`) before its export program;
- the signature policy of :mod:`.signing` applies (a signed version is checked against the
  trusted keys; ``require_signed`` refuses unsigned ones).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import Settings
from ..core.errors import ChecksumError, InputError
from .fast_imports import require_skops_io

MANIFEST = "manifest.json"
SKOPS_FILE = "model.skops"
WEIGHTS_FILE = "model.safetensors"
PROGRAM_FILE = "model.pt2"
ONNX_FILE = "model.onnx"
ADAPTER_FILE = "adapter.safetensors"  # a LoRA version's adapters and head (store/adapters.py)


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


FRAMEWORK_FILES = {"onnx": ONNX_FILE, "sklearn": SKOPS_FILE, "torch": WEIGHTS_FILE}
"""The file each framework's loader needs (a torch program also needs ``model.pt2``)."""


@dataclass
class SavedModel:
    """What :func:`save_model` wrote: the folder, the model files' checksums and the manifest.

    ``checksums`` are the model files (what the manifest lists); ``extra_digests`` the files
    written around them (``manifest.json``, a signature); :attr:`digests` is both, what a
    version records and loading checks.
    """

    directory: Path
    checksums: dict[str, str]
    manifest: dict[str, Any]
    size_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    extra_digests: dict[str, str] = field(default_factory=dict)
    signed_by: str | None = None

    @property
    def digests(self) -> dict[str, str]:
        """Every file of the folder to its SHA-256, the manifest (and signature) included."""
        return {**self.checksums, **self.extra_digests}


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
        sio = require_skops_io("saving scikit-learn models")
        sio.dump(model, directory / SKOPS_FILE)
        files = [SKOPS_FILE]
    else:
        from .hf_architecture import architecture_of

        architecture = architecture_of(model)  # a transformers model: loads by its class
        # ... so it needs no export program (which would carry guard code and a second copy of
        # the weights, and costs seconds to write for a transformer)
        files = _save_torch(model, directory, None if architecture else example_input, notes)
    for name, source in (extra_files or {}).items():
        shutil.copyfile(source, directory / name)
        files.append(name)
    checksums = {name: sha256_file(directory / name) for name in files}
    full = {**manifest, "framework": framework, "class": _qualname(model), "files": checksums}
    if framework == "torch" and architecture is not None:
        from .hf_architecture import KEY

        full[KEY] = architecture
    if notes:
        full["notes"] = notes
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
    size = sum((directory / name).stat().st_size for name in files)
    return SavedModel(directory, checksums, full, size, notes,
                      extra_digests={MANIFEST: sha256_file(directory / MANIFEST)})


def save_onnx(source: str | Path, directory: str | Path, *, manifest: dict[str, Any]) -> SavedModel:
    """Copy an ONNX file into ``directory`` as ``model.onnx`` with its checksum and a manifest
    (``framework: "onnx"``; ``manifest`` should hold ``task`` and ``source_framework``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, directory / ONNX_FILE)
    checksums = {ONNX_FILE: sha256_file(directory / ONNX_FILE)}
    full = {**manifest, "framework": "onnx", "files": checksums}
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
    return SavedModel(directory, checksums, full, (directory / ONNX_FILE).stat().st_size,
                      extra_digests={MANIFEST: sha256_file(directory / MANIFEST)})


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
            args, kwargs, dynamic = _export_inputs(example_input)
            program = torch.export.export(model, args, kwargs=kwargs, dynamic_shapes=dynamic)
            torch.export.save(program, str(directory / PROGRAM_FILE))
        files.append(PROGRAM_FILE)
    except Exception as exc:  # export is best-effort: weights are always saved
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"torch.export failed ({type(exc).__name__}: {first_line[:200]})")
    finally:
        model.train(was_training)
    return files


def _export_inputs(example: Any) -> tuple[tuple, dict | None, Any]:
    """``torch.export``'s ``args``, ``kwargs`` and dynamic shapes for an example batch: a
    tensor (one argument), a tuple / list (positional arguments) or a dict (keyword
    arguments); any batch size, and any sequence length for integer (token id) inputs."""
    import torch

    def dims(t: Any) -> dict[int, Any]:
        auto = torch.export.Dim.AUTO
        integer = not (t.is_floating_point() or t.is_complex()) and t.dtype != torch.bool
        return {0: auto, 1: auto} if integer and t.ndim >= 2 else {0: auto}

    if isinstance(example, dict):
        return (), dict(example), {k: dims(v) for k, v in example.items()}
    if isinstance(example, list | tuple):
        return tuple(example), None, tuple(dims(v) for v in example)
    return (example,), None, (dims(example),)


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
    """``manifest.json`` of a saved model (``{}`` when absent or not a JSON object)."""
    path = Path(directory) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def recorded_framework(expected: dict[str, str], framework: str | None = None) -> str:
    """The loader to use: the recorded ``framework`` when given, else the one the recorded file
    names imply (``model.onnx``, ``model.skops`` or ``model.safetensors``).

    Raises
    ------
    TrustError
        No framework is recorded and the file names do not settle it, or the recorded
        framework's file has no recorded digest.
    """
    from .trust import TrustError

    if framework is None:
        implied = [fw for fw, name in FRAMEWORK_FILES.items() if name in expected]
        if not implied and ADAPTER_FILE in expected:
            implied = ["torch"]
        if len(implied) != 1:
            raise TrustError("the record does not say which framework saved this model "
                             f"(files: {', '.join(sorted(expected)) or 'none'}); refusing to "
                             "load it")
        framework = implied[0]
    if framework not in FRAMEWORK_FILES:
        raise TrustError(f"the record names framework {framework[:40]!r}, which has no "
                         "loader; refusing to load it")
    needed = FRAMEWORK_FILES[framework]
    if framework == "torch" and needed not in expected and ADAPTER_FILE in expected:
        needed = ADAPTER_FILE  # a LoRA version: its configuration is in the covered manifest
        if MANIFEST not in expected:
            raise TrustError(f"the record has no digest for {MANIFEST}, which holds this LoRA "
                             "version's configuration; refusing to load it")
    if needed not in expected:
        raise TrustError(f"the record has no digest for {needed}, the file a {framework} "
                         "model loads from; refusing to load it")
    return framework


def check_files(directory: str | Path, expected: dict[str, str], *, framework: str | None = None,
                run_id: str | None = None, settings: Settings | None = None
                ) -> tuple[str, dict[str, Any]]:
    """Everything loading checks before reading a model file: the digests, the recorded
    framework against a covered manifest, the run the manifest was written for, the signature.

    Parameters
    ----------
    directory : path
        The model folder.
    expected : dict
        File name to SHA-256, as recorded.
    framework : str, optional
        The recorded framework (the run's tag); inferred from ``expected`` when absent.
    run_id : str, optional
        The run the version belongs to; a covered manifest written for another run is refused.
    settings : Settings, optional
        The signature policy (trusted keys, ``require_signed``).

    Returns
    -------
    (framework, manifest)
        The loader to use and the manifest (``{}`` when there is none).

    Raises
    ------
    ChecksumError
        A file is missing or changed; :class:`~.trust.TrustError` for the other refusals.
    """
    from .signing import check_signature
    from .trust import TrustError

    directory = Path(directory)
    framework = recorded_framework(expected, framework)
    verify(directory, expected)
    check_signature(directory, expected, settings)
    manifest = read_manifest(directory)
    if MANIFEST in expected:
        said = manifest.get("framework")
        if said != framework:
            raise TrustError(f"manifest.json says framework {str(said)[:40]!r} but the record "
                             f"says {framework!r}; refusing to load it")
        if run_id and manifest.get("run_id") not in (None, run_id):
            raise TrustError(f"manifest.json was written for run {str(manifest['run_id'])[:40]} "
                             f"(this version's run is {run_id}); refusing to load it")
        listed = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        for name, digest in listed.items():
            if name in expected and expected[name] != digest:
                raise TrustError(f"manifest.json lists another digest for {name} than the "
                                 "record; refusing to load it")
    return framework, manifest


def load_model(directory: str | Path, expected: dict[str, str], *, into: Any = None,
               framework: str | None = None, run_id: str | None = None,
               settings: Settings | None = None) -> Any:
    """Load a saved model after checking its files against the recorded ``expected`` digests.

    Nothing read from the folder decides what code runs (see the module docstring).

    Parameters
    ----------
    directory : path
        Folder written by :func:`save_model`.
    expected : dict
        File name to SHA-256, as recorded in the tracking store when the model was saved
        (``manifest.json`` included for versions recorded since it was covered).
    into : torch.nn.Module, optional
        Load the saved weights into this module (same architecture) instead of returning the
        exported program.
    framework : str, optional
        The recorded framework (``aimodel.framework``); inferred from ``expected`` otherwise.
    run_id : str, optional
        The version's run, checked against the manifest.
    settings : Settings, optional
        Trusted skops types and the signature policy.

    Returns
    -------
    A scikit-learn estimator, ``into`` with the weights loaded, a transformers model rebuilt
    from the manifest's architecture record (:mod:`.hf_architecture`; only when the manifest
    is covered by a recorded digest), the exported program's module, or for an ONNX file an
    :class:`~aimodel_kernel.engine.store.onnx_model.OnnxModel` (onnxruntime).

    Raises
    ------
    ChecksumError
        A file was changed or is missing; its subclass :class:`~.trust.TrustError` when the
        content is refused (untrusted type, pickle in a program, bad signature ...).
    """
    directory = Path(directory)
    framework, manifest = check_files(directory, expected, framework=framework, run_id=run_id,
                                      settings=settings)
    if framework == "onnx":
        from .onnx_model import load_onnx

        return load_onnx(directory / ONNX_FILE, manifest)
    if framework == "sklearn":
        from .trust import load_skops

        return load_skops(directory / SKOPS_FILE, settings)
    if ADAPTER_FILE in expected and WEIGHTS_FILE not in expected:
        raise InputError("this is a LoRA adapter version over a base: rebuild it with "
                         "load_version(ref, into=model)")
    if into is not None:
        from safetensors.torch import load_file

        into.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        return into
    from .hf_architecture import KEY

    if MANIFEST in expected and KEY in manifest:  # a covered record: rebuilt by class
        from safetensors.torch import load_file

        from .hf_architecture import build_module, load_weights

        module = build_module(manifest[KEY])  # refuses before any model code runs
        return load_weights(module, load_file(str(directory / WEIGHTS_FILE)))
    if PROGRAM_FILE not in expected:
        why = ("its architecture record is not covered by a recorded digest"
               if KEY in manifest else "torch.export failed when it was saved")
        raise InputError(f"this version has weights but no exported program ({why}); load the "
                         "weights into an instance of its class with into=model")
    from .torch_program import load_program

    return load_program(directory / PROGRAM_FILE)
