"""Progress events the engine emits while it works, and the stop flag a UI can set.

A callback receives each event; it must be cheap (the PyTorch loop calls it after every batch).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Training is about to begin."""

    run_id: str | None
    epochs: int
    batches_per_epoch: int
    start_epoch: int = 0


@dataclass(frozen=True, slots=True)
class BatchEnd:
    """One optimisation step finished. ``loss`` is ``None`` unless the loop had it at hand."""

    epoch: int
    batch: int
    samples: int
    loss: float | None = None


@dataclass(frozen=True, slots=True)
class EpochEnd:
    """One epoch finished; ``metrics`` holds train and validation values for it."""

    epoch: int
    metrics: dict[str, float]
    seconds: float
    samples_per_second: float


@dataclass(frozen=True, slots=True)
class TrainingEnd:
    """Training finished with ``status`` one of ``"finished"``, ``"interrupted"``, ``"failed"``."""

    status: str
    epochs_completed: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """A worker process of a distributed job failed."""

    rank: int
    message: str


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    """A stretch of work during which no batch ends, shown so the cell does not look stuck:
    ``"compiling"`` (``torch.compile``'s first steps), ``"sharding"`` (FSDP setting up).
    The next :class:`BatchEnd` or :class:`EpochEnd` ends it."""

    phase: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MemorySample:
    """Memory of one rank: its peak so far (CUDA ``max_memory_allocated`` on a GPU, the
    process's resident set on CPU) and the bytes its parameters, gradients and optimizer state
    take (a rank's shards under FSDP)."""

    rank: int
    device: str
    peak_bytes: int
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int


Event = (RunStarted | BatchEnd | EpochEnd | TrainingEnd | WorkerFailed | PhaseStarted
         | MemorySample)
EventCallback = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The default callback: does nothing."""


@dataclass
class StopFlag:
    """A flag a UI (a Stop button, a SIGINT handler) sets to end work after the current step."""

    _event: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def set(self, reason: str = "stopped") -> None:
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self.reason = ""
        self._event.clear()


@contextlib.contextmanager
def stop_on_sigint(stop: StopFlag) -> Iterator[None]:
    """While active, the first Ctrl-C (the notebook's stop button) sets ``stop``; a second one
    raises ``KeyboardInterrupt`` as usual. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set("interrupted")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
