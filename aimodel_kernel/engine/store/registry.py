"""Registered model versions: listing, resolving ``name/3`` or ``name@alias``, loading verified."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...config import Settings
from ..core.errors import InputError, NotFoundError
from ..core.model_names import check_model_name
from .artifacts import MODEL_DIR
from .owners import mark_dead_runs
from .serialize import ADAPTER_FILE, WEIGHTS_FILE, check_files, load_model, read_manifest
from .tracking import TAG, VersionRecord, get_store

_REF = re.compile(r"^(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_\-]+))?$")


@dataclass
class VersionList:
    """The versions of one registered model (or of every model when ``name`` is ``None``)."""

    name: str | None
    versions: list[VersionRecord] = field(default_factory=list)
    tracking_uri: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tracking_uri": self.tracking_uri,
                "versions": [v.to_dict() for v in self.versions]}


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """Split a reference: ``"name/3"`` -> ``("name", 3, None)``, ``"name@champion"`` ->
    ``("name", None, "champion")``, ``"name"`` -> ``("name", None, None)``."""
    m = _REF.match(ref.strip())
    if not m:
        raise InputError(f"{ref!r} is not a version reference; write NAME/VERSION or NAME@ALIAS")
    name = check_model_name(m["name"])
    return name, int(m["version"]) if m["version"] else None, m["alias"]


def list_versions(name: str | None = None, *, settings: Settings | None = None) -> VersionList:
    """Every version of registered model ``name`` (of all models when ``None``), oldest first.

    Raises
    ------
    NotFoundError
        No registered model of that name.
    """
    if name is not None:
        check_model_name(name)
    store = get_store(settings)
    mark_dead_runs(store)  # runs left RUNNING by a kernel that died show as KILLED
    if name is not None:
        return VersionList(name, store.versions(name), store.uri)
    records = [v for n in store.model_names() for v in store.versions(n)]
    return VersionList(None, records, store.uri)


def resolve(ref: str, *, settings: Settings | None = None) -> VersionRecord:
    """The version a reference names; a bare name means its newest version."""
    name, number, alias = parse_ref(ref)
    versions = get_store(settings).versions(name)
    if alias is not None:
        hit = [v for v in versions if alias in v.aliases]
        if not hit:
            raise NotFoundError(f"{name} has no alias {alias!r}")
        return hit[0]
    if number is None:
        if not versions:
            raise NotFoundError(f"{name} has no versions yet")
        return versions[-1]
    for v in versions:
        if v.version == number:
            return v
    have = ", ".join(str(v.version) for v in versions) or "none"
    raise NotFoundError(f"{name} has no version {number} (versions: {have})")


def recorded_digests(record: VersionRecord) -> dict[str, str]:
    """File name to SHA-256 for every file of a version's ``model/`` folder, as its run
    recorded them (``aimodel.sha256.<file>``)."""
    prefix = f"{TAG}sha256."
    return {key[len(prefix):]: value for key, value in record.run_tags.items()
            if key.startswith(prefix)}


def recorded_framework_tag(record: VersionRecord) -> str | None:
    """The framework the version's run recorded (``aimodel.framework``), if any."""
    return record.run_tags.get(f"{TAG}framework") or None


def checked_model_dir(record: VersionRecord, *, settings: Settings | None = None) -> Any:
    """The local ``model/`` folder of a version after every check loading makes (digests,
    manifest, signature); for code that reads a file of it itself (``%reproduce`` reads the
    initial weights).

    Raises
    ------
    NotFoundError
        The version recorded no model files.
    ChecksumError
        A file changed, or the content is refused (:class:`~.trust.TrustError`).
    """
    expected = recorded_digests(record)
    if not expected:
        raise NotFoundError(f"{record.ref} has no recorded model files")
    directory = get_store(settings).download(record.run_id, MODEL_DIR)
    check_files(directory, expected, framework=recorded_framework_tag(record),
                run_id=record.run_id, settings=settings)
    return directory


def load_version(ref: str, *, into: Any = None, settings: Settings | None = None) -> Any:
    """Load a version's model pickle-free after checking each file's recorded SHA-256.

    The loader is the one the version's record names (its run's ``aimodel.framework``), the
    manifest and every model file must match their recorded digests, a skops file may name
    only trusted types, a torch program must need no pickle, and the signature policy of the
    settings applies (see :mod:`.serialize`, :mod:`.trust`, :mod:`.signing`).

    Parameters
    ----------
    ref : str
        ``NAME/VERSION``, ``NAME@ALIAS`` or ``NAME`` (newest).
    into : torch.nn.Module, optional
        Load PyTorch weights into this module instead of the exported program.

    Raises
    ------
    ChecksumError
        A model file was changed after it was recorded; :class:`~.trust.TrustError` (one
        line saying what failed) when its content is refused.
    """
    record = resolve(ref, settings=settings)
    expected = recorded_digests(record)
    if not expected:
        raise NotFoundError(f"{record.ref} has no recorded model files")
    if ADAPTER_FILE in expected:  # a LoRA version: base + adapters, rebuilt into `into`
        from .adapters import module_to_rebuild  # or into its recorded transformers class

        manifest = {} if into is not None else read_manifest(
            checked_model_dir(record, settings=settings))
        module = module_to_rebuild(into, manifest, record.ref)  # refused before any weights
        weights = version_weights(record, settings=settings)
        if into is None:
            from .hf_architecture import load_weights

            return load_weights(module, weights)
        into.load_state_dict(weights)
        return into
    directory = get_store(settings).download(record.run_id, MODEL_DIR)
    return load_model(directory, expected, into=into, framework=recorded_framework_tag(record),
                      run_id=record.run_id, settings=settings)


_MAX_BASE_DEPTH = 32


def version_weights(record: VersionRecord, *, settings: Settings | None = None,
                    _depth: int = 0) -> dict[str, Any]:
    """The full weights (``state_dict``) of a PyTorch version, after every check loading
    makes: its ``model.safetensors``, or for a LoRA version its base (a base checkpoint, or
    the parent version's weights, rebuilt the same way) merged with its adapters and head.

    Raises
    ------
    InputError
        Not a PyTorch version.
    ChecksumError
        A file of the version or of its base changed or is missing
        (:class:`~.trust.TrustError` for the other refusals).
    """
    from safetensors.torch import load_file

    from .adapters import load_base, merged_weights, read_adapter
    from .trust import TrustError

    expected = recorded_digests(record)
    framework = recorded_framework_tag(record)
    if framework not in (None, "torch") or not ({WEIGHTS_FILE, ADAPTER_FILE} & set(expected)):
        raise InputError(f"{record.ref} is a {framework or 'non-PyTorch'} version, not "
                         "PyTorch weights")
    directory = checked_model_dir(record, settings=settings)
    if WEIGHTS_FILE in expected:
        return load_file(str(directory / WEIGHTS_FILE))
    lora = read_manifest(directory).get("lora")
    if not isinstance(lora, dict) or not isinstance(lora.get("base"), dict):
        raise TrustError(f"{record.ref}: manifest.json holds no LoRA configuration; refusing "
                         "to load it")
    base_ref = lora["base"]
    if "parent" in base_ref:
        if _depth >= _MAX_BASE_DEPTH:
            raise TrustError(f"{record.ref}: its chain of LoRA bases is longer than "
                             f"{_MAX_BASE_DEPTH} versions (a loop?); refusing to load it")
        parent = resolve(str(base_ref["parent"]), settings=settings)
        base = version_weights(parent, settings=settings, _depth=_depth + 1)
    else:
        base = load_base(get_store(settings), base_ref)
    factors, head = read_adapter(directory / ADAPTER_FILE)
    return merged_weights(base, factors, head, lora)


_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


def promote(ref: str, alias: str, *, settings: Settings | None = None) -> VersionRecord:
    """Point registry alias ``alias`` (e.g. ``champion``) at the version ``ref`` names.

    Raises
    ------
    InputError
        An alias that is not a plain word, or one that looks like a version number.
    """
    if not _ALIAS.match(alias) or re.fullmatch(r"v\d+", alias):
        raise InputError(f"invalid alias {alias!r}: use a word such as champion or staging "
                         "(letters, digits, '_' or '-'; not v1, v2 ...)")
    record = resolve(ref, settings=settings)
    get_store(settings).set_alias(record.name, alias, record.version)
    return resolve(f"{record.name}@{alias}", settings=settings)
