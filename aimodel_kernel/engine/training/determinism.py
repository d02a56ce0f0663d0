"""Deterministic PyTorch, switched on for one training and back off afterwards.

The same switch in the kernel's loop and in every distributed worker, so ``--deterministic``
means the same thing with and without ``--devices``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Deterministic algorithms and cuDNN (no benchmark autotuning) while the block runs;
    the previous settings afterwards. Nothing changes when ``enabled`` is false."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    if enabled:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
