"""What changed between two versions' records: parameters, code, training data, environment,
lineage and model size. Used by :func:`~aimodel_kernel.engine.versions.diff.diff_versions`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from ..core.data import TaskInfo
from ..core.errors import InputError, NotFoundError
from ..store.artifacts import RECORDED, SOURCE_CELL, SOURCE_LINE, RunFiles
from ..store.registry import parse_ref
from ..store.tracking import TAG, Store, VersionRecord

CONFIG_TAGS = ("framework", "model_class", "task", "classes", "deterministic")
MAX_LINEAGE = 50


@dataclass
class Side:
    ref: str
    record: VersionRecord
    files: RunFiles
    art: dict[str, Any]
    magic: str | None
    cell: str | None

    @property
    def tags(self) -> dict[str, str]:
        return self.record.run_tags

    @property
    def task(self) -> TaskInfo:
        try:
            classes = json.loads(self.tags.get(f"{TAG}classes", "[]"))
        except ValueError:  # clipped to the tag length limit
            classes = []
        return TaskInfo(self.tags.get(f"{TAG}task", "regression"), tuple(classes))

    @property
    def framework(self) -> str:
        return self.tags.get(f"{TAG}framework", "sklearn")

    @property
    def fingerprint(self) -> dict[str, Any]:
        if self.art["fingerprint"]:
            return self.art["fingerprint"]
        shape = self.tags.get(f"{TAG}data.shape")
        return {"sha256": self.tags.get(f"{TAG}data.sha256"),
                "shape": json.loads(shape) if shape else None}

    def checksums(self) -> dict[str, str]:
        prefix = f"{TAG}sha256."
        return {k[len(prefix):]: v for k, v in self.tags.items() if k.startswith(prefix)}


def side_of(record: VersionRecord, store: Store, notes: list[str]) -> Side:
    files = RunFiles(store, record.run_id)
    art = {key: files.json(rel, notes, record.ref) for key, rel in RECORDED.items()}
    magic = record.run_tags.get(f"{TAG}magic")
    if magic is None or magic.endswith("…"):  # absent, or clipped to the tag length limit
        magic = files.text(SOURCE_LINE) or magic
    return Side(record.ref, record, files, art, magic, files.text(SOURCE_CELL))


def _decode(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def param_changes(a: Side, b: Side) -> dict[str, dict[str, Any]]:
    def flat(side: Side) -> dict[str, str]:
        tags = {f"{TAG}{t}": side.tags[f"{TAG}{t}"] for t in CONFIG_TAGS
                if f"{TAG}{t}" in side.tags}
        return {**side.record.params, **tags}

    pa, pb = flat(a), flat(b)
    out = {}
    for key in sorted(set(pa) | set(pb)):
        va, vb = pa.get(key), pb.get(key)
        if va == vb:
            continue
        entry = {"a": _decode(va), "b": _decode(vb)}
        if va is None or vb is None:
            entry["only"] = "b" if va is None else "a"
        out[key] = entry
    return out


def code_changes(a: Side, b: Side) -> dict[str, list[str]]:
    out = {}
    for part, label in (("magic", "magic line"), ("cell", "cell")):
        ta, tb = getattr(a, part), getattr(b, part)
        if ta == tb:
            out[part] = []
            continue
        out[part] = list(difflib.unified_diff(
            (ta or "").splitlines(), (tb or "").splitlines(),
            fromfile=f"{a.ref} {label}", tofile=f"{b.ref} {label}", lineterm="",
        ))
    return out


def data_changes(a: Side, b: Side) -> dict[str, Any]:
    fa, fb = a.fingerprint, b.fingerprint
    keys = ("sha256", "kind", "n_samples", "shape", "dtypes", "columns")
    out: dict[str, Any] = {
        "same": bool(fa.get("sha256")) and fa.get("sha256") == fb.get("sha256"),
        "a": {k: fa.get(k) for k in keys},
        "b": {k: fb.get(k) for k in keys},
    }
    ca, cb = fa.get("columns"), fb.get("columns")
    if ca and cb and ca != cb:
        out["columns"] = {"added": [c for c in cb if c not in ca],
                          "removed": [c for c in ca if c not in cb]}
    na, nb = fa.get("class_counts") or {}, fb.get("class_counts") or {}
    if na or nb:
        ta, tb = sum(na.values()) or 1, sum(nb.values()) or 1
        out["class_balance"] = {
            label: {"a": na.get(label, 0), "b": nb.get(label, 0),
                    "a_share": na.get(label, 0) / ta, "b_share": nb.get(label, 0) / tb}
            for label in [*na, *(k for k in nb if k not in na)]
        }
    return out


def environment_changes(a: Side, b: Side, notes: list[str]) -> dict[str, dict[str, Any]]:
    ea, eb = a.art["environment"], b.art["environment"]
    if not ea or not eb:
        missing = ", ".join(s.ref for s, e in ((a, ea), (b, eb)) if not e)
        notes.append(f"no environment recorded for {missing}: package versions not compared")
        return {}
    pa, pb = ea.get("packages", {}), eb.get("packages", {})
    # a package recorded on one side only was not imported yet when the other run started
    # (environment.json lists the packages in use): a note, not a version change
    out = {name: {"a": pa[name], "b": pb[name]}
           for name in sorted(set(pa) & set(pb)) if pa[name] != pb[name]}
    one_sided = [f"{n} ({'only ' + (a.ref if n in pa else b.ref)})"
                 for n in sorted(set(pa) ^ set(pb))]
    if one_sided:
        notes.append("packages recorded for one version only: " + ", ".join(one_sided))
    for key in ("platform", "machine", "cuda", "torch_threads"):  # torch facts: when both have them
        if key in ea and key in eb and ea[key] != eb[key]:
            out[key] = {"a": ea.get(key), "b": eb.get(key)}
    return out


class _Lookup:
    """Resolves parent references, reading each registered model's versions once."""

    def __init__(self, store: Store) -> None:
        self.store, self.cache = store, {}

    def __call__(self, ref: str) -> VersionRecord:
        name, number, alias = parse_ref(ref)
        if name not in self.cache:
            self.cache[name] = self.store.versions(name)
        versions = self.cache[name]
        for v in versions:
            if (alias is not None and alias in v.aliases) or v.version == number:
                return v
        if number is None and alias is None and versions:
            return versions[-1]
        raise NotFoundError(f"no version {ref}")


def _chain(record: VersionRecord, lookup: _Lookup) -> tuple[list[str], str | None]:
    """Parent refs, nearest first, while they resolve; and the first one that did not."""
    chain, seen, current = [], {record.ref}, record
    while len(chain) < MAX_LINEAGE:
        parent = current.run_tags.get(f"{TAG}parent")
        if not parent:
            return chain, None
        try:
            current = lookup(parent)
        except InputError:
            return chain, parent
        if current.ref in seen:  # a cycle in hand-edited tags
            return chain, None
        seen.add(current.ref)
        chain.append(current.ref)
    return chain, None


def lineage(a: Side, b: Side, store: Store) -> dict[str, Any]:
    lookup = _Lookup(store)
    chain_a, missing_a = _chain(a.record, lookup)
    chain_b, missing_b = _chain(b.record, lookup)
    relation = None
    if a.ref in chain_b:
        n = chain_b.index(a.ref) + 1
        relation = f"{b.ref} derives from {a.ref}" + (f" ({n} generations)" if n > 1 else "")
    elif b.ref in chain_a:
        n = chain_a.index(b.ref) + 1
        relation = f"{a.ref} derives from {b.ref}" + (f" ({n} generations)" if n > 1 else "")
    else:
        common = [r for r in chain_b if r in chain_a]
        if common:
            relation = f"common ancestor {common[0]}"
    out: dict[str, Any] = {"a": chain_a, "b": chain_b, "relation": relation}
    unresolved = {k: v for k, v in (("a", missing_a), ("b", missing_b)) if v}
    if unresolved:
        out["unresolved"] = unresolved
    return out


def model_size_change(a: Side, b: Side) -> dict[str, Any] | None:
    sa, sb = a.tags.get(f"{TAG}model_bytes"), b.tags.get(f"{TAG}model_bytes")
    if sa is None or sb is None:
        return None
    na, nb = int(float(sa)), int(float(sb))
    return {"a": na, "b": nb, "delta": nb - na, "ratio": nb / na if na else None}
