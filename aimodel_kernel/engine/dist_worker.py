"""What each worker process of a distributed training runs (started by the elastic launcher).

The job arrives as cloudpickle bytes, so models, losses and data defined in notebook cells travel
by value. Every rank trains a ``DistributedDataParallel`` copy on its shard of each global batch;
rank 0 streams progress to the kernel through a queue and returns the trained weights.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from .events import BatchEnd, EpochEnd, Event, RunStarted, ignore_event


@dataclass
class WorkerJob:
    """Everything a worker needs, pickled by value in the kernel."""

    model: Any
    X: Any
    y: Any
    val_X: Any
    val_y: Any
    loss: Any
    config: Any
    seed: int
    progress_interval: float = 0.2


class ShardedBatches:
    """Each global batch of a seeded permutation, split across ranks (rank r takes rows r::world).

    Every rank draws the same permutation, so the shards are disjoint and together are exactly
    the single-process batch: the same global batch as training in one process.
    """

    def __init__(self, X: Any, y: Any, global_batch: int, rank: int, world: int, device: Any):
        self.X, self.y = X.to(device), y.to(device)
        self.n, self.batch, self.rank, self.world = len(X), global_batch, rank, world

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch)
        return full + (1 if rest >= self.world else 0)

    def epoch(self, generator: Any) -> Iterator[tuple[Any, Any]]:
        import torch

        perm = torch.randperm(self.n, generator=generator).to(self.X.device)
        for i in range(0, self.n, self.batch):
            chunk = perm[i : i + self.batch]
            if len(chunk) < self.world:  # every rank needs rows; all ranks skip it alike
                break
            idx = chunk[self.rank :: self.world]
            yield self.X[idx], self.y[idx]

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        for i in range(0, self.n, 1024):
            yield self.X[i : i + 1024], self.y[i : i + 1024]


class CollectiveStop:
    """A stop flag every rank agrees on: the kernel's request travels in an all-reduce that is
    started at one check and read ``every`` checks later, so it overlaps training instead of
    stalling it (a collective per step would cost a small model a third of its throughput).
    Every rank makes the same calls in the same order, so they all stop at the same step."""

    def __init__(self, request: Any, every: int = 8) -> None:
        import torch

        self.request = request
        self.flag = torch.zeros(1)
        self.work = None
        self.stopped = False
        self.every, self.calls = every, 0

    def is_set(self) -> bool:
        import torch.distributed as dist

        if self.stopped:
            return True
        self.calls += 1
        if self.calls % self.every:
            return False
        if self.work is not None:
            self.work.wait()
            if self.flag.item() > 0:
                self.stopped = True
                return True
        self.flag.fill_(1.0 if self.request.is_set() else 0.0)
        self.work = dist.all_reduce(self.flag, async_op=True)
        return False

    def finish(self) -> None:
        if self.work is not None:
            self.work.wait()


class QueueProgress:
    """Rank 0's event callback: sends throttled progress to the kernel, throughput x world."""

    def __init__(self, queue: Any, world: int, interval: float) -> None:
        self.queue, self.world, self.interval = queue, world, interval
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        if type(event) is BatchEnd:
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
            event = BatchEnd(event.epoch, event.batch, event.samples * self.world, event.loss)
        elif type(event) is EpochEnd:
            metrics = dict(event.metrics)
            metrics["samples_per_second"] = metrics.get("samples_per_second", 0.0) * self.world
            event = EpochEnd(event.epoch, metrics, event.seconds, metrics["samples_per_second"])
        self.queue.put(event)


def _device(backend: str, local_rank: int, local_world: int) -> Any:
    import torch

    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        return device
    # CPU ranks share the cores: give each its share instead of all of them each
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return torch.device("cpu")


def run_job(job: WorkerJob, events: Any, stop_request: Any, device: Any) -> dict[str, Any]:
    """Train one job on this rank; every rank returns the (identical) trained weights."""
    import torch
    import torch.distributed as dist

    from .torch_loop import make_optimizer, run_loop

    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(job.seed + rank)  # dropout differs per rank, reproducibly
    model = job.model.to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    train = ShardedBatches(job.X, job.y, job.config.batch_size, rank, world, device)
    val = None
    if job.val_X is not None:
        val = ShardedBatches(job.val_X, job.val_y, job.config.batch_size, 0, 1, device)
    optimizer = make_optimizer(ddp.module, job.config)
    generator = torch.Generator().manual_seed(job.seed)  # the same permutation everywhere
    on_event = QueueProgress(events, world, job.progress_interval) if rank == 0 else ignore_event
    if rank == 0:
        events.put(RunStarted(None, job.config.epochs, len(train)))
    stop = CollectiveStop(stop_request)
    outcome = run_loop(ddp, train, val, job.loss, optimizer, job.config,
                       generator=generator, on_event=on_event, stop=stop, writer=None)
    stop.finish()
    state = {k: v.detach().cpu().clone() for k, v in ddp.module.state_dict().items()}
    return {"state": state, "outcome": outcome, "world": world}


@record
def pool_main(job_queues: list[Any], events: Any, results: Any, stop_request: Any,
              backend: str) -> None:
    """A warm worker: join the process group once, then train each job sent to this rank until
    ``None`` arrives. An exception ends this worker, and the launcher then ends the others."""
    import cloudpickle
    import torch.distributed as dist

    dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
    device = _device(backend, local_rank, local_world)
    try:
        while (payload := job_queues[local_rank].get()) is not None:
            result = run_job(cloudpickle.loads(payload), events, stop_request, device)
            if dist.get_rank() == 0:
                results.put(result)
            del result
    finally:
        dist.destroy_process_group()


@record
def job_main(payload: bytes, events: Any, results: Any, stop_request: Any,
             backend: str) -> None:
    """A one-shot worker of a multi-node run: join the process group, train, leave.

    Global rank 0 streams progress to its kernel; the local rank 0 of every node puts the
    trained weights on its own kernel's ``results`` queue, with ``records`` true only on the
    node that hosts global rank 0 (that node's kernel records the run). The result goes as
    plain pickle bytes: tensors put on the queue as such would be shared through this
    process's file descriptors, which are gone once it exits.
    """
    import pickle

    import cloudpickle
    import torch.distributed as dist

    dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    try:
        device = _device(backend, local_rank, local_world)
        result = run_job(cloudpickle.loads(payload), events, stop_request, device)
        if local_rank == 0:
            result["records"] = dist.get_rank() == 0
            results.put(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        dist.destroy_process_group()
