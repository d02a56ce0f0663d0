"""What each worker process of a distributed training runs (started by the elastic launcher).

The job arrives as cloudpickle bytes, so models, losses and data defined in notebook cells travel
by value. Every rank trains a ``DistributedDataParallel`` copy on its shard of each global batch;
rank 0 streams progress to the kernel through a queue and returns the trained weights.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from ...core.events import BatchEnd, EpochEnd, Event, RunStarted, ignore_event
from ..checkpoints import CheckpointWriter
from ..determinism import deterministic


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
    train_spec: Any = None  # a dist_data.LoaderSpec for Dataset / DataLoader inputs
    val_spec: Any = None
    resume: Any = None  # the checkpoints.TrainState to continue from (--resume)
    resume_from_peer: bool = False  # several nodes: another node has the run and checkpoint
    notes: list[str] = field(default_factory=list)

    @property
    def start_epoch(self) -> int:
        return self.resume.epoch + 1 if self.resume is not None else 0


class ShardedBatches:
    """Each global batch of a seeded permutation, split across ranks (rank r takes rows r::world).

    Every rank draws the same permutation, so the shards are disjoint and together are exactly
    the single-process batch: the same global batch as training in one process.
    """

    def __init__(self, X: Any, y: Any, global_batch: int, rank: int, world: int, device: Any):
        from ...core import batches

        self.X, self.y = batches.move(X, device), y.to(device)  # X: a tensor or nested inputs
        self.n, self.batch, self.rank, self.world = len(y), global_batch, rank, world

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch)
        return full + (1 if rest >= self.world else 0)

    def epoch(self, generator: Any) -> Iterator[tuple[Any, Any]]:
        import torch

        from ...core import batches

        perm = torch.randperm(self.n, generator=generator).to(self.y.device)
        for i in range(0, self.n, self.batch):
            chunk = perm[i : i + self.batch]
            if len(chunk) < self.world:  # every rank needs rows; all ranks skip it alike
                break
            idx = chunk[self.rank :: self.world]
            yield batches.take(self.X, idx), self.y[idx]

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        from ...core import batches

        for i in range(0, self.n, 1024):
            yield batches.take(self.X, slice(i, i + 1024)), self.y[i : i + 1024]


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


def worker_device_for(backend: str, local_rank: int, local_world: int) -> Any:
    """The device a worker trains on: its local GPU under NCCL (set as current), else the CPU."""
    import torch

    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        return device
    # CPU ranks share the cores: give each its share instead of all of them each
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return torch.device("cpu")


class EpochSeeded:
    """A rank's batches, with torch's RNG seeded from ``(seed, rank, epoch)`` at each epoch start.

    Dropout and other random layers then draw, per rank and epoch, what an uninterrupted run
    draws, so a resumed run needs no rank's RNG state (only rank 0 writes the checkpoint). The
    wrapped batches' own ``set_epoch`` (a ``DistributedSampler``'s) is called too.
    """

    def __init__(self, batches: Any, seed: int, rank: int) -> None:
        self.batches, self.seed, self.rank = batches, seed, rank

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        import numpy as np
        import torch

        torch.manual_seed(int(np.random.SeedSequence([self.seed, self.rank, epoch])
                              .generate_state(1)[0]))
        inner = getattr(self.batches, "set_epoch", None)
        if inner is not None:
            inner(epoch)

    def epoch(self, generator: Any) -> Iterator[tuple[Any, Any]]:
        return self.batches.epoch(generator)

    def ordered(self) -> Iterator[tuple[Any, Any]]:
        return self.batches.ordered()


class RankZeroWriter(CheckpointWriter):
    """Rank 0's checkpoint writer: the single-process format (the unwrapped module's weights,
    the optimizer, the shuffle state, the loop's history), plus the world size it ran on and
    the epoch a ``DistributedSampler`` continues from."""

    def __init__(self, directory: Path, *, min_interval: float, world: int) -> None:
        super().__init__(directory, min_interval=min_interval)
        self.world = world

    def submit(self, state: Any) -> None:
        state.meta.update(world_size=self.world, sampler_epoch=state.epoch + 1)
        super().submit(state)


def _recorder(job: WorkerJob, rank: int) -> tuple[int, Any]:
    """The rank that reports, checkpoints and records, and the checkpoint every rank resumes.

    One node: rank 0 and the job's own checkpoint. Several nodes: the lowest rank on a node
    that can record (every node for a fresh run; for ``--resume``, the node whose kernel has
    the run), which then sends its checkpoint to the others. Every rank makes the same calls.
    """
    import torch
    import torch.distributed as dist

    if job.config.nodes == 1:
        return 0, job.resume
    can = torch.tensor([0.0 if job.resume_from_peer else 1.0])
    flags = [torch.zeros(1) for _ in range(dist.get_world_size())]
    dist.all_gather(flags, can)
    candidates = [r for r, flag in enumerate(flags) if flag.item() > 0]
    if not candidates:
        raise RuntimeError(f"no node has run {job.config.resume!r} to resume: run the same "
                           "line, with --resume, on the node that recorded it too")
    recorder = candidates[0]
    if job.config.resume is None:
        return recorder, None
    box = [job.resume if rank == recorder else None]
    dist.broadcast_object_list(box, src=recorder)
    return recorder, box[0]


def _batches(job: WorkerJob, rank: int, world: int, device: Any) -> tuple[Any, Any]:
    """This rank's training batches and the (full) validation batches."""
    if job.train_spec is not None:
        from .data import SampledBatches

        train = SampledBatches(job.train_spec, job.loss.targets, rank, world, job.seed, device)
    else:
        train = ShardedBatches(job.X, job.y, job.config.batch_size, rank, world, device)
    val = None
    if job.val_spec is not None:
        from .data import validation_batches

        val = validation_batches(job.val_spec, job.loss.targets, device)
    elif job.val_X is not None:
        val = ShardedBatches(job.val_X, job.val_y, job.config.batch_size, 0, 1, device)
    return train, val


def run_job(job: WorkerJob, events: Any, stop_request: Any, device: Any,
            checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Train one job on this rank; every rank returns the (identical) trained weights.

    With ``job.resume`` every rank starts from the checkpoint's weights, optimizer state and
    shuffle state at its next epoch. With ``checkpoint_dir`` (and ``config.checkpoint``) rank 0
    writes checkpoints there as one-process training does: at most every
    ``config.checkpoint_every`` seconds, and always the last completed epoch on a stop.
    """
    import torch
    import torch.distributed as dist

    from ..freezing import Freezing
    from ..loop import make_optimizer, run_loop

    rank, world = dist.get_rank(), dist.get_world_size()
    recorder, resume = _recorder(job, rank)
    job.resume = resume  # start_epoch follows it
    model = job.model.to(device)
    if resume is not None:
        model.load_state_dict(resume.model)
    Freezing(model, job.config).apply(model)  # --freeze before DDP registers what trains
    from ..finetune import parameter_counts

    counts = parameter_counts(model)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    train, val = _batches(job, rank, world, device)
    optimizer = make_optimizer(ddp.module, job.config)
    generator = torch.Generator().manual_seed(job.seed)  # the same permutation everywhere
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer)
        generator.set_state(resume.rng["shuffle"])
    reports = rank == recorder
    on_event = QueueProgress(events, world, job.progress_interval) if reports else ignore_event
    if reports:
        events.put(RunStarted(None, job.config.epochs, len(train), job.start_epoch))
    writer = None
    if reports and checkpoint_dir and job.config.checkpoint:
        writer = RankZeroWriter(Path(checkpoint_dir), min_interval=job.config.checkpoint_every,
                                world=world)
    stop = CollectiveStop(stop_request)
    try:
        with deterministic(job.config.deterministic):
            outcome = run_loop(ddp, EpochSeeded(train, job.seed, rank), val, job.loss,
                               optimizer, job.config, generator=generator, on_event=on_event,
                               stop=stop, writer=writer, start_epoch=job.start_epoch,
                               resume_meta=resume.meta if resume is not None else None)
        stop.finish()
    finally:
        if writer is not None:
            writer.close()
    written = writer.written_epoch if writer is not None else None
    if written is None and resume is not None:
        written = resume.epoch
    state = {k: v.detach().cpu().clone() for k, v in ddp.module.state_dict().items()}
    return {"state": state, "outcome": outcome, "world": world, "checkpoint_epoch": written,
            "notes": list(job.notes), "records": reports, "parameters": counts}


def _leave_kernel_process_group() -> None:
    """Move this worker (and its DataLoader workers) out of the kernel's process group.

    The notebook's stop button sends SIGINT to the kernel's whole process group
    (``jupyter_client`` uses ``killpg``), as Ctrl-C in a terminal does: only the kernel must
    get it, and turn it into the stop every rank agrees on. A worker interrupted itself would
    end without a result (torch's spawn wrapper swallows ``KeyboardInterrupt`` and exits 0),
    and the elastic agent would wait for that result forever. A worker still ends when the
    kernel dies (the spawn wrapper's parent-death signal does not depend on the group).
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


@record
def pool_main(job_queues: list[Any], events: Any, results: Any, stop_request: Any,
              backend: str) -> None:
    """A warm worker: join the process group once, then train each job sent to this rank until
    ``None`` arrives. A job arrives as ``(payload, checkpoint_dir)``. An exception ends this
    worker, and the launcher then ends the others."""
    _leave_kernel_process_group()
    import cloudpickle
    import torch.distributed as dist

    dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
    device = worker_device_for(backend, local_rank, local_world)
    try:
        while (message := job_queues[local_rank].get()) is not None:
            payload, checkpoint_dir = message
            result = run_job(cloudpickle.loads(payload), events, stop_request, device,
                             checkpoint_dir)
            if result["records"]:
                results.put(result)
            del result
    finally:
        dist.destroy_process_group()


@record
def job_main(payload: bytes, events: Any, results: Any, stop_request: Any, backend: str,
             joined: Any = None, checkpoint_dir: str | None = None) -> None:
    """A one-shot worker of a multi-node run: join the process group, train, leave.

    ``joined`` (an event) is set once the process group is formed: from then on the kernel
    stops the run collectively, before then it abandons the rendezvous.

    The recording rank (global rank 0; for ``--resume``, the first rank of the node whose
    kernel has the run) streams progress to its kernel and writes the checkpoints; the local
    rank 0 of every node puts the trained weights on its own kernel's ``results`` queue, with
    ``records`` true only on the recording node (its kernel records the run). The result goes as
    plain pickle bytes: tensors put on the queue as such would be shared through this
    process's file descriptors, which are gone once it exits.
    """
    _leave_kernel_process_group()
    import pickle

    import cloudpickle
    import torch.distributed as dist

    dist.init_process_group(backend)
    if joined is not None:
        joined.set()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    try:
        device = worker_device_for(backend, local_rank, local_world)
        result = run_job(cloudpickle.loads(payload), events, stop_request, device,
                         checkpoint_dir)
        if local_rank == 0:
            results.put(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        dist.destroy_process_group()
