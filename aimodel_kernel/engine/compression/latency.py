"""Inference latency: p50 / p95 per batch size, warm-up excluded, every runtime on the same
number of threads (PyTorch intra-op threads, BLAS/OpenMP pools, onnxruntime intra-op threads).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCHES = (1, 256)


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call at one batch size."""

    batch: int
    p50_ms: float
    p95_ms: float
    calls: int


@contextlib.contextmanager
def same_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` threads in torch (when loaded) and in the BLAS / OpenMP
    pools scikit-learn uses; the previous settings are restored afterwards. onnxruntime sessions
    get the same number through their ``intra_op_num_threads``."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)


def measure(
    call: Callable[[Any], Any],
    inputs: dict[int, Any],
    *,
    repeats: int = 30,
    warmup: int = 3,
    budget_s: float = 1.0,
) -> dict[int, Latency]:
    """Time ``call(inputs[batch])`` for each batch size.

    Parameters
    ----------
    call : callable
        One inference on one batch.
    inputs : dict
        Batch size -> prepared input (converted beforehand, so conversion is not timed).
    repeats : int
        Timed calls per batch size (fewer when ``budget_s`` runs out; at least 5).
    warmup : int
        Untimed calls first (allocation, lazy initialisation, caches).
    budget_s : float
        Wall-clock seconds of timed calls per batch size.

    Returns
    -------
    dict
        Batch size -> :class:`Latency`.
    """
    out = {}
    for batch, x in inputs.items():
        for _ in range(warmup):
            call(x)
        times: list[float] = []
        deadline = time.perf_counter() + budget_s
        while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
            start = time.perf_counter()
            call(x)
            times.append(time.perf_counter() - start)
        ms = np.asarray(times) * 1e3
        out[batch] = Latency(batch, float(np.percentile(ms, 50)), float(np.percentile(ms, 95)),
                             len(times))
    return out
