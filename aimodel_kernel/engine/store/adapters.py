"""LoRA adapter versions: the adapter file, the base checkpoint a version stands on, and the
version's weights rebuilt from both.

A LoRA version's ``model/`` folder holds ``adapter.safetensors`` (each adapted ``nn.Linear``'s
two low-rank factors and the task head's weights, in the base module's own parameter names)
and ``manifest.json`` with the LoRA configuration as data (rank, alpha, scaling, targets, the
adapted modules, the head, the base). Both are covered by the version's recorded digests like
every model file. The base is either

- the version's parent (``{"parent": "NAME/V"}``), when training started ``--from`` that
  version and every base weight still equals it, or
- a base checkpoint (``{"sha256": ..., "run_id": ...}``): one safetensors file per distinct
  base, named by its SHA-256, kept as the artifact ``base/<sha256>.safetensors`` of a run of
  its own and shared by every version standing on the same base. Loading checks the file
  against the digest the version recorded (in its covered manifest), not against anything the
  base run says.

The task head is not part of a base (the head is saved with the adapters), so fine-tunes of
the same pretrained backbone with new, randomly initialised heads share one base file.

Rebuilding is plain tensor arithmetic, no PEFT: ``W + (B @ A) * scaling`` per adapted layer
(what PEFT's ``merge_and_unload`` computes), then the head. Training merges the notebook's
module with the same function (:func:`merge_into`), so a loaded version and the notebook
object hold bitwise the same weights.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from .serialize import ADAPTER_FILE, MANIFEST, SavedModel, sha256_file, untie
from .tracking import TAG, Store
from .trust import TrustError

BASE_DIR = "base"
"""Artifact folder of a base checkpoint's run: ``base/<sha256>.safetensors``."""
BASE_TAG = f"{TAG}base_checkpoint"
"""The tag (value: the file's SHA-256) that marks a run holding a base checkpoint."""
FORMAT = "lora-adapter"
"""``manifest.json``'s ``format`` for a LoRA adapter version."""

_A, _B = "lora.", "head."


@dataclass
class Adapter:
    """The LoRA adapters and task head of a fine-tuned module, in the base module's names.

    Attributes
    ----------
    r, alpha, scaling : int, float, float
        Rank, scaling numerator and ``alpha / r`` (the factor of ``B @ A``).
    targets : list of str
        The ``--lora-targets`` names (last part of module names).
    head : list of str
        The head's module prefixes (trained in full, PEFT's ``modules_to_save``).
    factors : dict
        Adapted module path (``bert.encoder.layer.0.attention.self.query``) -> ``(A, B)``.
    head_weights : dict
        State-dict key of the head (``classifier.weight``) -> tensor.
    base : dict
        ``{"parent": "NAME/V"}`` or ``{"sha256": ..., "run_id": ...}`` (see the module doc).
    merged : bool
        The version saves merged full weights instead (``--merge``).
    """

    r: int
    alpha: float
    scaling: float
    targets: list[str]
    head: list[str]
    factors: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    head_weights: dict[str, Any] = field(default_factory=dict)
    base: dict[str, str] = field(default_factory=dict)
    merged: bool = False

    def describe(self) -> str:
        """``LoRA r=8, alpha=16 on query, key, value`` (and how its base is recorded)."""
        text = (f"LoRA r={self.r}, alpha={self.alpha:g} on {', '.join(self.targets)}")
        if self.merged:
            return f"{text}, merged into full weights"
        if "parent" in self.base:
            return f"{text}; base: {self.base['parent']}"
        if "sha256" in self.base:
            return f"{text}; base checkpoint {self.base['sha256'][:12]}"
        return text

    def config(self) -> dict[str, Any]:
        """The configuration as data (what ``manifest.json`` records under ``lora``)."""
        return {"r": self.r, "alpha": self.alpha, "scaling": self.scaling,
                "targets": list(self.targets), "head": list(self.head),
                "modules": sorted(self.factors), "base": dict(self.base),
                "merged": self.merged}

    def tensors(self) -> dict[str, Any]:
        """The adapter file's tensors: ``lora.<path>.A``, ``lora.<path>.B``, ``head.<key>``."""
        out: dict[str, Any] = {}
        for path, (a, b) in self.factors.items():
            out[f"{_A}{path}.A"], out[f"{_A}{path}.B"] = a, b
        out.update({f"{_B}{key}": value for key, value in self.head_weights.items()})
        return out

    def tags(self) -> dict[str, str]:
        """Run and version tags ``%versions`` / ``%diff`` show."""
        tags = {f"{TAG}lora": self.describe()}
        if "sha256" in self.base:
            tags[f"{TAG}base.sha256"] = self.base["sha256"]
        return tags


def delta(a: Any, b: Any, scaling: float, dtype: Any) -> Any:
    """The weight change of one adapted Linear layer: ``(B @ A) * scaling`` in ``dtype``."""
    return ((b @ a) * scaling).to(dtype)


def merge_into(module: Any, adapter: Adapter) -> None:
    """Add every adapter's ``B @ A * scaling`` to its layer's weight, in place (``--lora``'s
    notebook module after training: the same arithmetic as :func:`merged_weights`)."""
    import torch

    with torch.no_grad():
        for path, (a, b) in adapter.factors.items():
            weight = module.get_submodule(path).weight
            weight.add_(delta(a.to(weight.device), b.to(weight.device), adapter.scaling,
                              weight.dtype))


def merged_weights(base: Mapping[str, Any], factors: Mapping[str, tuple[Any, Any]],
                   head: Mapping[str, Any], lora: Mapping[str, Any]) -> dict[str, Any]:
    """A LoRA version's full state dict: ``base`` without the head, each adapted weight plus
    its ``B @ A * scaling``, and the head's weights.

    Raises
    ------
    TrustError
        The adapter names a layer the base does not have, or factors of the wrong shape.
    """
    prefixes = tuple(f"{h}." for h in lora.get("head", []))
    out = {k: v for k, v in base.items() if not k.startswith(prefixes)}
    scaling = float(lora["scaling"])
    for path, (a, b) in factors.items():
        key = f"{path}.weight"
        weight = out.get(key)
        if weight is None or tuple(weight.shape) != (b.shape[0], a.shape[1]) \
                or a.shape[0] != b.shape[1]:
            raise TrustError(f"the adapter's factors for {path[:80]} do not fit its base "
                             "(missing layer or other shape); refusing to load it")
        out[key] = weight + delta(a, b, scaling, weight.dtype)
    out.update(head)
    return out


def read_adapter(path: str | Path) -> tuple[dict[str, tuple[Any, Any]], dict[str, Any]]:
    """``(factors, head_weights)`` of an adapter file (checked by its digest already)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    factors: dict[str, list[Any]] = {}
    head: dict[str, Any] = {}
    for key, value in tensors.items():
        if key.startswith(_A) and key.endswith((".A", ".B")):
            pair = factors.setdefault(key[len(_A):-2], [None, None])
            pair[0 if key.endswith(".A") else 1] = value
        elif key.startswith(_B):
            head[key[len(_B):]] = value
        else:
            raise TrustError(f"{ADAPTER_FILE} holds an unexpected tensor {key[:60]!r}; "
                             "refusing to load it")
    if any(a is None or b is None for a, b in factors.values()):
        raise TrustError(f"{ADAPTER_FILE} holds an A factor without its B (or the reverse); "
                         "refusing to load it")
    return {path: (a, b) for path, (a, b) in factors.items()}, head


def save_adapter(adapter: Adapter, directory: str | Path, *, manifest: dict[str, Any],
                 model_class: str, extra_files: Mapping[str, Path] | None = None,
                 architecture: Mapping[str, Any] | None = None) -> SavedModel:
    """Write a LoRA version's ``model/`` folder: the adapter file, extra files and a manifest
    (``framework: "torch"``, ``format: "lora-adapter"``, ``lora``: the configuration, and a
    transformers model's architecture record, with which the version loads without ``into``)."""
    import json
    import shutil

    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter.tensors().items()}
    save_file(untie(tensors), str(directory / ADAPTER_FILE))
    files = [ADAPTER_FILE]
    for name, source in (extra_files or {}).items():
        shutil.copyfile(source, directory / name)
        files.append(name)
    checksums = {name: sha256_file(directory / name) for name in files}
    full = {**manifest, "framework": "torch", "format": FORMAT, "class": model_class,
            "lora": adapter.config(), "files": checksums}
    if architecture is not None:
        from .hf_architecture import KEY

        full[KEY] = dict(architecture)
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
    size = sum((directory / name).stat().st_size for name in files)
    return SavedModel(directory, checksums, full, size,
                      extra_digests={MANIFEST: sha256_file(directory / MANIFEST)})


# -- base checkpoints ---------------------------------------------------------------------------
def store_base(store: Store, state: Mapping[str, Any]) -> dict[str, str]:
    """Keep ``state`` (the base's weights) as a content-addressed checkpoint of the store, once.

    Returns
    -------
    dict
        ``{"sha256": <the file's SHA-256>, "run_id": <the run holding it>}``; a base stored
        before (same bytes) is found by its tag and not written again.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in sorted(state.items())}
    with tempfile.TemporaryDirectory(prefix="aimodel-base-") as tmp:
        scratch = Path(tmp) / "base.safetensors"
        save_file(untie(tensors), str(scratch))
        digest = sha256_file(scratch)
        for run in store.search_runs(f"tags.`{BASE_TAG}` = '{digest}'", max_results=5):
            if run.info.status == "FINISHED" and store.artifact(
                    run.info.run_id, f"{BASE_DIR}/{digest}.safetensors") is not None:
                return {"sha256": digest, "run_id": run.info.run_id}
        folder = Path(tmp) / BASE_DIR
        folder.mkdir()
        scratch.rename(folder / f"{digest}.safetensors")
        run_id = store.start_run(run_name=f"base checkpoint {digest[:12]}", params={},
                                 tags={BASE_TAG: digest, f"{TAG}kind": "base-checkpoint"})
        try:
            store.log_dir(run_id, folder, BASE_DIR)
        except BaseException:
            store.end_run(run_id, "FAILED")
            raise
        store.end_run(run_id, "FINISHED")
    return {"sha256": digest, "run_id": run_id}


def load_base(store: Store, base: Mapping[str, Any]) -> dict[str, Any]:
    """The weights of a base checkpoint, after checking the file against ``base["sha256"]``.

    Raises
    ------
    ChecksumError
        The file is missing or its content changed (:class:`~.trust.TrustError`).
    """
    from safetensors.torch import load_file

    digest = str(base.get("sha256", ""))
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TrustError("the version's manifest names no valid base checkpoint digest; "
                         "refusing to load it")
    rel = f"{BASE_DIR}/{digest}.safetensors"
    runs = [str(base.get("run_id") or "")]
    runs += [r.info.run_id for r in store.search_runs(f"tags.`{BASE_TAG}` = '{digest}'",
                                                      max_results=5)]
    for run_id in dict.fromkeys(r for r in runs if r):
        try:
            path = store.artifact(run_id, rel)
        except Exception as exc:  # a run id the store does not know
            if type(exc).__name__ not in ("NotFoundError", "MlflowException"):
                raise
            path = None
        if path is None:
            continue
        actual = sha256_file(path)
        if actual != digest:
            raise TrustError(f"the base checkpoint {digest[:12]}… was changed after it was saved "
                             f"(SHA-256 {actual[:12]}…); refusing to load it")
        return load_file(str(path))
    raise TrustError(f"the base checkpoint {digest[:12]}… this version stands on is missing "
                     "from the store; it cannot be rebuilt")


def check_into(into: Any, ref: str) -> None:
    """Refuse loading a LoRA version without a module to rebuild it in."""
    if into is None:
        raise InputError(f"{ref} is a LoRA adapter version (adapters and head over a base): "
                         "rebuild it into a module of its class with load_version(ref, "
                         "into=model), or train with --merge for a version that loads alone")


def module_to_rebuild(into: Any, manifest: Mapping[str, Any], ref: str) -> Any:
    """The module a LoRA version's merged weights load into: ``into``, or without it a fresh
    module built from the version's (covered) manifest's architecture record.

    Raises
    ------
    InputError
        No ``into`` and no architecture record (not a transformers model).
    TrustError
        The architecture record is refused (:mod:`.hf_architecture`).
    """
    from .hf_architecture import KEY, build_module

    if into is not None:
        return into
    if KEY not in manifest:
        check_into(into, ref)
    return build_module(manifest[KEY])
