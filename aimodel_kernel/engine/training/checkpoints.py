"""Per-epoch training checkpoints (model, optimizer, RNG) in one safetensors file, written
off-thread.

A checkpoint folder ``<home>/checkpoints/<run_id>/`` holds ``state.safetensors``: every tensor,
and in the file's own metadata (``__metadata__["aimodel"]``, JSON) the epoch, the history, the
early-stopping state and the optimizer's non-tensor parts. One file, written beside its final
name, flushed to disk and renamed into place, so a crash at any moment leaves either the
previous checkpoint or the new one, never one epoch's metadata with another's weights (the
earlier format, two files renamed one after the other, could). Checkpoints of that format
(``state.json`` beside the tensors) are still read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.files import fsync_path

TENSORS = "state.safetensors"
META = "state.json"  # the earlier format's metadata file (read, never written)
_META_KEY = "aimodel"
FORMAT = 2


def checkpoint_root(home: Path) -> Path:
    """Where a store at ``home`` keeps its runs' checkpoint folders (one per run id)."""
    return Path(home) / "checkpoints"


def has_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a checkpoint :func:`read` can continue from."""
    return (Path(directory) / TENSORS).is_file()


@dataclass
class TrainState:
    """Everything needed to continue training after ``epoch`` (0-based, completed)."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    lender: Any = None  # the StateMirror whose buffers these are, given back once written


class StateMirror:
    """The training state at the last epoch boundary, kept in preallocated tensors.

    :meth:`capture` copies the live weights (and, when checkpoints are kept, the optimizer
    state) into buffers allocated once, so keeping the boundary state costs a memcpy per epoch
    and no allocation. It is what an interrupt restores, and what :meth:`snapshot` lends to the
    checkpoint writer: the writer reads these very buffers (a large model's state is not copied
    a third time) and hands them back with :meth:`release`; a capture waits for that.

    Parameters
    ----------
    optimizer : bool
        Mirror the optimizer state too (only a checkpoint needs it; a stop restores weights).
    """

    def __init__(self, *, optimizer: bool = True) -> None:
        import threading

        self.epoch = -1
        self.model: dict[str, Any] = {}
        self.keeps_optimizer = optimizer
        self._optimizer: Any = None
        self._buffers: list[Any] = []  # the tensors inside self._optimizer, in _tensors order
        self.rng: dict[str, Any] = {}
        self._returned = threading.Event()  # set while no writer holds the buffers
        self._returned.set()

    def release(self) -> None:
        """The writer is done with the buffers :meth:`snapshot` lent it."""
        self._returned.set()

    def capture(self, epoch: int, model: Any, optimizer: Any, generator: Any) -> None:
        import torch

        self._returned.wait()  # a checkpoint write still reads the last boundary's buffers
        state = model.state_dict()
        if self.model.keys() != state.keys():
            self.model = {k: v.detach().clone() for k, v in state.items()}
        else:
            for key, value in state.items():
                self.model[key].copy_(value.detach())
        self.rng = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
        self.epoch = epoch
        if self.keeps_optimizer:
            self._capture_optimizer(optimizer)

    def _capture_optimizer(self, optimizer: Any) -> None:
        live = optimizer.state_dict()
        sources = _tensors(live)
        reusable = (
            self._optimizer is not None
            and len(sources) == len(self._buffers)
            and all(s.shape == d.shape for s, d in zip(sources, self._buffers, strict=True))
        )
        if reusable:
            try:
                structure = _clone_tree_without_tensors(live, self._optimizer)
            except (KeyError, IndexError, ValueError):  # groups changed (--unfreeze-after)
                reusable = False
        if reusable:
            for dst, src in zip(self._buffers, sources, strict=True):
                dst.copy_(src)
            self._optimizer = structure
        else:  # first capture, or the optimizer grew state (after its first step)
            self._optimizer = _clone_tree(live)
            self._buffers = _tensors(self._optimizer)

    def snapshot(self, meta: dict[str, Any]) -> TrainState:
        """The captured state, lent to a background write until :meth:`release`."""
        if not self.keeps_optimizer:
            raise RuntimeError("this mirror keeps no optimizer state: it cannot checkpoint")
        self._returned.clear()
        return TrainState(epoch=self.epoch, model=self.model, optimizer=self._optimizer,
                          rng=dict(self.rng), meta=meta, lender=self)


def _tensors(obj: Any) -> list[Any]:
    """The tensors of a nested structure, in a stable order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in _tensors(v)]
    return []


def _clone_tree_without_tensors(live: Any, mirror: Any) -> Any:
    """``live``'s structure and plain values, with the mirror's tensors in the tensor slots."""
    import torch

    if isinstance(live, torch.Tensor):
        return mirror
    if isinstance(live, dict):
        return {k: _clone_tree_without_tensors(v, mirror[k]) for k, v in live.items()}
    if isinstance(live, list | tuple):
        return type(live)(_clone_tree_without_tensors(v, m)
                          for v, m in zip(live, mirror, strict=True))
    return live


def _clone_tree(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_clone_tree(v) for v in obj)
    return obj


def _flatten(prefix: str, obj: Any, tensors: dict[str, Any]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; return the JSON-able rest."""
    import torch

    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _flatten(f"{prefix}.{k}", v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)]
    return obj


def _unflatten(obj: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def write(directory: Path, state: TrainState) -> None:
    """Write ``state`` as ``directory/state.safetensors`` atomically.

    The tensors and the JSON metadata go into one temporary file, which is flushed to disk and
    renamed over the previous checkpoint (and the folder entry flushed too): a reader, or a
    process started after a crash, sees the previous checkpoint or this one, whole.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Any] = {}
    structure = {
        "model": _flatten("model", state.model, tensors),
        "optimizer": _flatten("optimizer", state.optimizer, tensors),
        "rng": _flatten("rng", state.rng, tensors),
    }
    doc = json.dumps({"format": FORMAT, "epoch": state.epoch, "structure": structure,
                      "meta": state.meta}, default=str)
    tmp = directory / f".{TENSORS}.{os.getpid()}.{threading.get_ident()}.tmp"
    for stale in directory.glob(f".{TENSORS}.*.tmp"):  # left by a writer that was killed
        if stale != tmp:
            stale.unlink(missing_ok=True)
    try:
        save_file(tensors, str(tmp), metadata={_META_KEY: doc})
        fsync_path(tmp)
        os.replace(tmp, directory / TENSORS)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(directory)
    (directory / META).unlink(missing_ok=True)  # an earlier format's metadata: not ours now


def write_tensors(path: Path, tensors: dict[str, Any]) -> None:
    """Write plain ``tensors`` (e.g. a run's initial weights) to ``path`` atomically."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        save_file(tensors, str(tmp))
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(directory: Path) -> TrainState:
    """Read a checkpoint written by :func:`write` (or by the earlier two-file format)."""
    from safetensors import safe_open

    path = directory / TENSORS
    if not path.is_file():
        raise InputError(f"no checkpoint in {directory}; nothing to resume")
    with safe_open(str(path), framework="pt") as f:
        embedded = (f.metadata() or {}).get(_META_KEY)
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    if embedded is not None:
        doc = json.loads(embedded)
    elif (directory / META).is_file():
        doc = json.loads((directory / META).read_text())
    else:
        raise InputError(f"no checkpoint in {directory}; nothing to resume")
    s = doc["structure"]
    optimizer = _unflatten(s["optimizer"], tensors)
    optimizer["state"] = {int(k): v for k, v in optimizer.get("state", {}).items()}
    return TrainState(
        epoch=doc["epoch"],
        model=_unflatten(s["model"], tensors),
        optimizer=optimizer,
        rng=_unflatten(s["rng"], tensors),
        meta=doc["meta"],
    )


class CheckpointWriter:
    """Writes checkpoints on a background thread; a newer state replaces one not yet written.

    ``min_interval`` rate-limits writes during training (:meth:`due`): a write costs tens of
    milliseconds of CPU, more than a whole epoch of a small model. Writes of a large model cost
    more (a fine-tuned transformer's weights and AdamW moments are hundreds of megabytes), so a
    write is also not due before :data:`COST_RATIO` times the last write's duration has passed:
    checkpoints then take at most ~1/COST_RATIO of the wall time, whatever the model's size.
    ``min_interval=0`` (``--checkpoint-every 0``) asks for every epoch and gets it. The loop
    always submits the last epoch's state when it is interrupted.
    """

    COST_RATIO = 20.0

    def __init__(self, directory: Path, *, min_interval: float = 5.0) -> None:
        self.directory = directory
        self.min_interval = min_interval
        self.last_write_seconds = 0.0
        self._last_submit = time.monotonic()  # the first write comes min_interval into training
        self._pending: TrainState | None = None
        self._lock = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self.written_epoch: int | None = None
        self._thread = threading.Thread(target=self._run, name="aimodel-checkpoint", daemon=True)
        self._thread.start()

    def due(self) -> bool:
        """Whether enough time has passed since the last submitted checkpoint."""
        if self.min_interval <= 0:
            return True
        wait = max(self.min_interval, self.COST_RATIO * self.last_write_seconds)
        return time.monotonic() - self._last_submit >= wait

    def submit(self, state: TrainState) -> None:
        self._last_submit = time.monotonic()
        with self._lock:
            self._pending = state
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._closed:
                    self._lock.wait()
                state, self._pending = self._pending, None
                if state is None:
                    return
            try:
                started = time.perf_counter()
                write(self.directory, state)
                self.last_write_seconds = time.perf_counter() - started
                self.written_epoch = state.epoch
            except BaseException as exc:  # surfaced by close()
                self._error = exc
            finally:
                if state.lender is not None:
                    state.lender.release()

    def close(self) -> None:
        """Write what is pending, stop the thread, and raise a write error if one happened."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error
