"""Dataset and DataLoader inputs of multi-process training, sharded with ``DistributedSampler``.

In the kernel, :func:`loader_spec` turns a map-style ``Dataset`` (or a user's ``DataLoader``)
into a :class:`LoaderSpec`: the dataset plus the loader settings each worker re-creates. A
user's loader keeps its ``batch_size`` (per process, as in a ``torchrun`` script, so the global
batch is ``world`` times it), ``collate_fn``, ``num_workers``, ``drop_last``, ``pin_memory``,
``worker_init_fn``, ``timeout``, ``prefetch_factor``, ``persistent_workers`` and how its
workers start (the kernel's default start method unless it names one); its sampler
(shuffled or in order) and ``generator`` are replaced by a ``DistributedSampler`` seeded with
the run's seed. A sampler or batch sampler of the user's own (weighted, bucketed ...) cannot be
sharded faithfully and is refused. A plain ``Dataset`` is split by ``--batch-size``, the global
batch: each process takes ``batch_size // world`` rows per step.

In each worker, :class:`SampledBatches` iterates the rank's shard; ``set_epoch`` is called at
every epoch start, so the shards change per epoch and a resumed run draws the same ones.
``DistributedSampler`` pads the last round with repeated rows when the dataset's length is not
a multiple of the world size (each rank must take as many steps as the others): then up to
``world - 1`` rows are seen twice per epoch; otherwise every row exactly once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...core.errors import InputError

# DataLoader settings kept when a user's loader is re-created on each rank
KEPT = ("collate_fn", "num_workers", "pin_memory", "drop_last", "timeout", "worker_init_fn",
        "prefetch_factor", "persistent_workers")


@dataclass
class LoaderSpec:
    """A dataset and the loader settings every rank re-creates around its own sampler."""

    dataset: Any
    batch_size: int
    shuffle: bool
    options: dict[str, Any]

    def loader(self, sampler: Any = None) -> Any:
        """A ``DataLoader`` over ``dataset`` with ``sampler`` (in order when ``None``).

        With loader workers, the dataset, ``collate_fn`` and ``worker_init_fn`` reach them by
        value (cloudpickle), as they reached this process: classes defined in a notebook cannot
        be pickled by reference from a worker whose ``__main__`` is not the notebook's.
        """
        import torch

        dataset, options = self.dataset, dict(self.options)
        if options.get("num_workers"):
            dataset = ByValueDataset(dataset)
            for key in ("collate_fn", "worker_init_fn"):
                if options.get(key) is not None:
                    options[key] = ByValueCall(options[key])
        return torch.utils.data.DataLoader(dataset, batch_size=self.batch_size,
                                           sampler=sampler, shuffle=False, **options)


def _dataset_from(data: bytes) -> ByValueDataset:
    import cloudpickle

    return ByValueDataset(cloudpickle.loads(data))


def _call_from(data: bytes) -> ByValueCall:
    import cloudpickle

    return ByValueCall(cloudpickle.loads(data))


class ByValueDataset:
    """A map-style dataset that pickles itself with cloudpickle (for spawned loader workers)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[index]

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle

        return _dataset_from, (cloudpickle.dumps(self.dataset),)


class ByValueCall:
    """A callable that pickles itself with cloudpickle (``collate_fn``, ``worker_init_fn``)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle

        return _call_from, (cloudpickle.dumps(self.fn),)


def loader_spec(source: Any, *, is_loader: bool, batch_size: int, world: int,
                what: str = "X") -> tuple[LoaderSpec, str]:
    """The :class:`LoaderSpec` of a Dataset or DataLoader input, and a note saying what each
    process does with it.

    Parameters
    ----------
    source : Dataset or DataLoader
        Map-style; a ``Subset`` when ``--val`` split a Dataset.
    is_loader : bool
        ``source`` is the user's ``DataLoader``.
    batch_size : int
        ``--batch-size``, the global batch (used for a Dataset only).
    world : int
        Processes in the run.
    what : str
        The input's name in messages.

    Raises
    ------
    InputError
        An iterable-style dataset, or a loader whose sampler cannot be sharded.
    """
    import torch
    from torch.utils.data import BatchSampler, IterableDataset, RandomSampler, SequentialSampler

    dataset = source.dataset if is_loader else source
    if isinstance(dataset, IterableDataset):
        raise InputError(f"{what} is an IterableDataset, which a DistributedSampler cannot "
                         "shard over --devices processes; pass a map-style Dataset (with "
                         "__len__ and __getitem__), or train in one process")
    if not is_loader:
        per_rank = max(1, batch_size // world)
        note = (f"{what}: a DistributedSampler (seeded, reshuffled every epoch) gives each of "
                f"the {world} processes {per_rank} rows per step (--batch-size {batch_size} "
                "is the global batch)")
        return LoaderSpec(dataset, per_rank, True, {}), note
    sampler, batches = source.sampler, source.batch_sampler
    if type(sampler) not in (RandomSampler, SequentialSampler):
        raise InputError(f"{what} uses its own sampler ({type(sampler).__name__}), which cannot "
                         "be split over --devices processes; pass its Dataset (or a DataLoader "
                         "with shuffle=True/False) and let a DistributedSampler shard it")
    if type(batches) is not BatchSampler or source.batch_size is None:
        raise InputError(f"{what} uses its own batch_sampler ({type(batches).__name__}), which "
                         "cannot be split over --devices processes; give the DataLoader a "
                         "batch_size instead")
    shuffle = isinstance(sampler, RandomSampler)
    options = {k: getattr(source, k) for k in KEPT}
    if options["num_workers"]:  # loader workers start as they would in the kernel
        context = source.multiprocessing_context
        options["multiprocessing_context"] = (context.get_start_method() if context else
                                              multiprocessing.get_all_start_methods()[0])
    else:
        options.pop("prefetch_factor")
        options.pop("persistent_workers")
    if options["collate_fn"] is torch.utils.data.default_collate:
        options.pop("collate_fn")  # the default: re-created as such, nothing to pickle
    kept = ", ".join(k for k in KEPT if k in options)
    order = "shuffled" if shuffle else "in order"
    note = (f"{what}: the DataLoader is re-created in each of the {world} processes with its "
            f"batch_size {source.batch_size} per process (global batch "
            f"{source.batch_size * world}) and its {kept}; its {type(sampler).__name__} and "
            f"generator are replaced by a DistributedSampler ({order}, seeded with --seed)")
    return LoaderSpec(dataset, source.batch_size, shuffle, options), note


class SampledBatches:
    """One rank's share of a dataset per epoch, through a ``DistributedSampler``.

    Parameters
    ----------
    spec : LoaderSpec
    target_fn : callable
        Maps the items' targets (numpy) to what the loss takes.
    rank, world : int
    seed : int
        The sampler's seed, the same on every rank (disjoint shards of one permutation).
    device : torch.device
    """

    def __init__(self, spec: LoaderSpec, target_fn: Any, rank: int, world: int, seed: int,
                 device: Any) -> None:
        from torch.utils.data.distributed import DistributedSampler

        self.sampler = DistributedSampler(spec.dataset, num_replicas=world, rank=rank,
                                          shuffle=spec.shuffle, seed=seed, drop_last=False)
        self.loader = spec.loader(self.sampler)
        self.target_fn, self.device = target_fn, device

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's shards (the same on every rank, and again on resume)."""
        self.sampler.set_epoch(epoch)

    def epoch(self, generator: Any = None) -> Iterator[tuple[Any, Any]]:
        from ..batching import collated

        return collated(self.loader, self.target_fn, self.device)

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        return self.epoch()


def validation_batches(spec: LoaderSpec, target_fn: Any, device: Any) -> Any:
    """All validation rows, in order, on every rank (so every rank sees the same metrics)."""
    from ..batching import LoaderBatches

    return LoaderBatches(spec.loader(), target_fn, spec.batch_size, device, is_loader=True)
