"""The one way a model version is recorded: open a run, log what it learnt from, save the model
files with their digests (``manifest.json`` included) and, when a signing key is set, their
signature, register the version with its parent, end the run.

Training, mitigation, compression and every later capability go through :class:`Recording`,
so each version records the same facts (data fingerprint, environment, source, file digests,
lineage) under the same names, and a failure anywhere ends the run FAILED with no version::

    with Recording.start(store, run_name=name, params=params, tags=tags) as rec:
        rec.log_inputs(fingerprint, source)
        rec.save_model(model, manifest={"task": task.to_dict()})
        rec.register(name, task=task.task, parent=parent)
    # FINISHED here; FAILED (and nothing registered) if the block raised
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.environment import environment
from .artifacts import ENVIRONMENT, FINGERPRINT, MODEL_DIR, SOURCE_CELL, SOURCE_LINE
from .owners import owner_tags
from .serialize import SavedModel, save_model, save_onnx, sha256_file
from .tracking import TAG, Store


class Recording:
    """An open MLflow run on its way to becoming a model version.

    Use :meth:`start` (a new run) or :meth:`reopen` (a resumed one). As a context manager the
    run ends FINISHED when the block completes and FAILED when it raises; :meth:`end` and
    :meth:`discard` end it earlier.

    Attributes
    ----------
    store : Store
    run_id : str
    saved : SavedModel or None
        What :meth:`save_model` wrote.
    version : int or None
        What :meth:`register` registered.
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.saved: SavedModel | None = None
        self.version: int | None = None
        self.ended = False

    @classmethod
    def start(cls, store: Store, *, run_name: str, params: Mapping[str, Any],
              tags: Mapping[str, Any]) -> Recording:
        """Open a RUNNING run with its parameters and tags, owned by this process (so a run
        left RUNNING by a kernel that died is recognised: :mod:`.owners`)."""
        tags = {**owner_tags(), **tags}
        return cls(store, store.start_run(run_name=run_name, params=params, tags=tags))

    @classmethod
    def reopen(cls, store: Store, run_id: str) -> Recording:
        """Mark an interrupted run RUNNING again (to resume its training)."""
        store.reopen_run(run_id)
        return cls(store, run_id)

    # -- what the version learnt from ---------------------------------------------------------
    def log_inputs(self, fingerprint: Mapping[str, Any] | None,
                   source: Mapping[str, str] | None, *, packages: Iterable[str] = ()) -> None:
        """Log the data fingerprint, the environment (with ``packages`` recorded whether
        imported or not) and the magic line / cell source."""
        if fingerprint is not None:
            self.store.log_dict(self.run_id, dict(fingerprint), FINGERPRINT)
        self.store.log_dict(self.run_id, environment(packages), ENVIRONMENT)
        for key, path in (("cell", SOURCE_CELL), ("line", SOURCE_LINE)):
            if (source or {}).get(key):
                self.store.log_text(self.run_id, source[key], path)

    # -- the model files ----------------------------------------------------------------------
    def save_model(self, model: Any = None, *, manifest: dict[str, Any],
                   example_input: Any = None, extra_files: Mapping[str, Any] | None = None,
                   onnx_file: str | Path | None = None, adapter: Any = None) -> SavedModel:
        """Write the model's files (pickle-free, see :mod:`.serialize`) as the run's ``model/``
        folder, and record their SHA-256 digests (``manifest.json``'s too), the framework
        (what loading uses to pick the loader) and the size on the run. With a signing key in
        the store's settings the folder is signed first (``model.sig``, see :mod:`.signing`).

        Parameters
        ----------
        model : estimator or torch.nn.Module, optional
            The model to save; leave out with ``onnx_file``.
        manifest : dict
            Recorded in ``manifest.json`` (task, feature names, input spec ...); ``run_id`` is
            added.
        example_input : tensor, optional
            For a ``torch.export`` program beside the weights.
        extra_files : mapping, optional
            File name to local path, copied into ``model/`` and covered by the digests.
        onnx_file : path, optional
            An ONNX file saved instead of ``model``.
        adapter : adapters.Adapter, optional
            Save only these LoRA adapters and head (over their recorded base) instead of the
            module's full weights (``model`` names the class).
        """
        manifest = {**manifest, "run_id": self.run_id}
        with tempfile.TemporaryDirectory(prefix="aimodel-model-") as tmp:
            if onnx_file is not None:
                saved = save_onnx(onnx_file, Path(tmp), manifest=manifest)
            elif adapter is not None:
                from .adapters import save_adapter
                from .hf_architecture import architecture_of

                cls = type(model)
                saved = save_adapter(adapter, Path(tmp), manifest=manifest,
                                     model_class=f"{cls.__module__}.{cls.__qualname__}",
                                     extra_files=dict(extra_files or {}),
                                     architecture=architecture_of(model))
            else:
                saved = save_model(model, Path(tmp), manifest=manifest,
                                   example_input=example_input, extra_files=dict(extra_files or {}))
            key = self.store.settings.resolved_signing_key()
            if key is not None:
                from .signing import SIGNATURE_FILE, sign_directory

                saved.signed_by = sign_directory(tmp, key)
                saved.extra_digests[SIGNATURE_FILE] = sha256_file(Path(tmp) / SIGNATURE_FILE)
            self.store.log_dir(self.run_id, tmp, MODEL_DIR)
        self.store.set_tags(self.run_id, {**self.digest_tags(saved),
                                          f"{TAG}framework": saved.manifest["framework"],
                                          f"{TAG}model_bytes": str(saved.size_bytes)})
        self.store.log_metrics(self.run_id, [("model_bytes", float(saved.size_bytes), None)])
        self.saved = saved
        return saved

    @staticmethod
    def digest_tags(saved: SavedModel) -> dict[str, str]:
        """``aimodel.sha256.<file>`` for every file of a saved model (the manifest and a
        signature included), and ``aimodel.signed_by`` for a signed one."""
        tags = {f"{TAG}sha256.{name}": digest for name, digest in saved.digests.items()}
        if saved.signed_by:
            tags[f"{TAG}signed_by"] = saved.signed_by
        return tags

    # -- the version --------------------------------------------------------------------------
    def register(self, name: str, *, task: str, data_sha256: str | None = None,
                 parent: str | None = None, tags: Mapping[str, str] | None = None) -> int:
        """Register the saved ``model/`` folder as a new version of ``name``.

        The version's tags carry the task, the training data's digest, the file digests (what
        loading checks) and the parent version (``NAME/V``) it derives from.
        """
        if self.saved is None:
            raise RuntimeError("save_model() must run before register()")
        version_tags = {f"{TAG}task": task, **dict(tags or {}), **self.digest_tags(self.saved)}
        if data_sha256:
            version_tags[f"{TAG}data.sha256"] = data_sha256
        if parent:
            version_tags[f"{TAG}parent"] = parent
        self.version = self.store.register_version(name, self.run_id, tags=version_tags)
        self.store.set_tags(self.run_id, {f"{TAG}version": str(self.version)})
        return self.version

    # -- the end ------------------------------------------------------------------------------
    def end(self, status: str = "FINISHED") -> None:
        """End the run: ``FINISHED``, ``KILLED`` or ``FAILED`` (once; later calls do nothing)."""
        if not self.ended:
            self.ended = True
            self.store.end_run(self.run_id, status)

    def discard(self) -> None:
        """End a run that failed on the user's input and move it to MLflow's deleted runs."""
        if not self.ended:
            self.ended = True
            self.store.discard_run(self.run_id)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.end("FINISHED" if exc_type is None else "FAILED")
