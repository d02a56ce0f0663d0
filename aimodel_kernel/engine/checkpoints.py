"""Per-epoch training checkpoints (model, optimizer, RNG) in safetensors + JSON, written off-thread.

A checkpoint folder ``<home>/checkpoints/<run_id>/`` holds ``state.safetensors`` (every tensor)
and ``state.json`` (epoch, history, early-stopping state and the optimizer's non-tensor parts).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

TENSORS = "state.safetensors"
META = "state.json"


@dataclass
class TrainState:
    """Everything needed to continue training after ``epoch`` (0-based, completed)."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def capture(
    epoch: int, model_state: dict[str, Any], optimizer: Any, generator: Any, meta: dict
) -> TrainState:
    """Copy the training state; ``model_state`` must already be a copy of the weights."""
    import torch

    return TrainState(
        epoch=epoch,
        model=model_state,
        optimizer=_clone_tree(optimizer.state_dict()),
        rng={"torch": torch.get_rng_state(), "shuffle": generator.get_state()},
        meta=meta,
    )


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
    """Write ``state`` atomically (temporary files renamed into place)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Any] = {}
    structure = {
        "model": _flatten("model", state.model, tensors),
        "optimizer": _flatten("optimizer", state.optimizer, tensors),
        "rng": _flatten("rng", state.rng, tensors),
    }
    tmp_tensors = directory / (TENSORS + ".tmp")
    save_file(tensors, str(tmp_tensors))
    tmp_meta = directory / (META + ".tmp")
    tmp_meta.write_text(json.dumps({"epoch": state.epoch, "structure": structure,
                                    "meta": state.meta}, default=str))
    os.replace(tmp_tensors, directory / TENSORS)
    os.replace(tmp_meta, directory / META)


def read(directory: Path) -> TrainState:
    """Read a checkpoint written by :func:`write`."""
    from safetensors.torch import load_file

    if not (directory / META).exists():
        raise InputError(f"no checkpoint in {directory}; nothing to resume")
    doc = json.loads((directory / META).read_text())
    tensors = load_file(str(directory / TENSORS))
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
    """Writes checkpoints on a background thread; a newer state replaces one not yet written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: TrainState | None = None
        self._lock = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self.written_epoch: int | None = None
        self._thread = threading.Thread(target=self._run, name="aimodel-checkpoint", daemon=True)
        self._thread.start()

    def submit(self, state: TrainState) -> None:
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
                write(self.directory, state)
                self.written_epoch = state.epoch
            except BaseException as exc:  # surfaced by close()
                self._error = exc

    def close(self) -> None:
        """Write what is pending, stop the thread, and raise a write error if one happened."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error
