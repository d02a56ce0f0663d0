"""Batches of one PyTorch training: in-memory inputs (a tensor, or nested inputs) indexed by a
seeded permutation, or a Dataset / DataLoader collated batch by batch; every batch split into
inputs and target and moved to the device with the shared batch contract
(:mod:`~aimodel_kernel.engine.core.batches`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..core import batches
from ..core.data import Data, take_rows, to_numpy
from ..core.errors import InputError
from ..core.nested import is_nested, map_leaves
from ..core.options import TrainConfig


class TensorBatches:
    """In-memory data (a tensor, or nested inputs: every leaf) on the device, batched by
    indexing every leaf with one seeded permutation."""

    def __init__(self, X: Any, y: np.ndarray, target_fn, batch_size: int, device) -> None:
        self.X = batches.move(as_input_tensor(X), device)
        self.y = target_fn(y).to(device)
        self.n = batches.batch_len(self.X)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch(self, generator) -> Iterator[tuple[Any, Any]]:
        import torch

        perm = torch.randperm(self.n, generator=generator).to(self.y.device)
        bs, X, y = self.batch_size, self.X, self.y
        for i in range(0, self.n, bs):
            idx = perm[i : i + bs]
            yield batches.take(X, idx), y[idx]

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        bs = max(self.batch_size, 1024)
        for i in range(0, self.n, bs):
            yield batches.take(self.X, slice(i, i + bs)), self.y[i : i + bs]


class LoaderBatches:
    """A map-style Dataset (torch or Hugging Face), batched by a DataLoader with the default
    collate (which stacks dicts and tuples), or a user's DataLoader used as it is (its
    ``collate_fn``, ``batch_size``, workers); each collated batch is split into inputs and
    target (:func:`~aimodel_kernel.engine.core.batches.split_item`) and moved to the device."""

    def __init__(self, source: Any, target_fn, batch_size: int, device, *, is_loader: bool):
        self.source, self.target_fn, self.device = source, target_fn, device
        self.batch_size, self.is_loader = batch_size, is_loader

    def __len__(self) -> int:
        if self.is_loader:
            return len(self.source)
        return math.ceil(len(self.source) / self.batch_size)

    def _loader(self, generator, shuffle: bool):
        import torch

        if self.is_loader:
            return self.source
        return torch.utils.data.DataLoader(
            self.source, batch_size=self.batch_size, shuffle=shuffle, generator=generator
        )

    def epoch(self, generator) -> Iterator[tuple[Any, Any]]:
        return collated(self._loader(generator, True), self.target_fn, self.device)

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        if self.is_loader:
            return self.epoch(None)
        return collated(self._loader(None, False), self.target_fn, self.device)


def collated(loader: Any, target_fn, device) -> Iterator[tuple[Any, Any]]:
    """``(inputs, target)`` on ``device`` of every batch ``loader`` collates."""
    for batch in loader:
        xb, yb = batches.split_item(batch)
        if yb is None:
            raise InputError(f"a batch holds no target ({batches.describe(batch)}); the items "
                             "must be (x, y) pairs or dicts with 'labels'")
        yield batches.move(xb, device), target_fn(to_numpy(yb)).to(device)


def as_input_tensor(X: Any):
    """Features as tensors: floating data as float32, integers (token ids) as int64; nested
    inputs leaf by leaf (the same tuple / list / dict back)."""
    import torch

    if is_nested(X):
        return map_leaves(lambda _, leaf: as_input_tensor(leaf), X)
    if isinstance(X, torch.Tensor):
        if X.is_floating_point() and X.dtype == torch.float64:
            return X.float()
        if not X.is_floating_point() and X.dtype not in (torch.bool, torch.int64) \
                and not X.is_complex():
            return X.long()
        return X
    arr = to_numpy(X)
    if arr.dtype.kind == "b" or (arr.dtype.kind == "f" and arr.dtype != np.float32):
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(arr))


def make_batches(data: Data, index: np.ndarray | None, target_fn, config: TrainConfig, device):
    """Batches over the rows ``index`` of ``data`` (all rows when ``None``)."""
    import torch

    if data.kind == "loader":
        return LoaderBatches(data.X, target_fn, config.batch_size, device, is_loader=True)
    if data.kind == "dataset":
        ds = data.X if index is None else torch.utils.data.Subset(data.X, index.tolist())
        return LoaderBatches(ds, target_fn, config.batch_size, device, is_loader=False)
    X = data.X if index is None else take_rows(data.X, index)
    y = data.y if index is None else data.y[index]
    return TensorBatches(X, y, target_fn, config.batch_size, device)
