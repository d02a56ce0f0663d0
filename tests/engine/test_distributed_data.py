"""Dataset and DataLoader inputs with --devices 2 (gloo): a notebook-defined Dataset class travels
by value, a DistributedSampler shards it (each row once per epoch, recorded by the workers), a
user's DataLoader keeps its settings, and what cannot be sharded is refused in one line."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from conftest import all_runs, mlp
from torch.utils.data import DataLoader, DistributedSampler, WeightedRandomSampler

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train

pytestmark = pytest.mark.slow

# what a user types into a notebook cell: defined in __main__, so cloudpickle sends it by value
CELL = '''
import os
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

class Digits(Dataset):
    """Rows of digits; in a worker process, notes which rank read which row."""

    def __init__(self, X, y, log_dir):
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = torch.as_tensor(y)
        self.log_dir = log_dir

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        rank = os.environ.get("RANK")
        if rank is not None:
            with open(os.path.join(self.log_dir, f"rows{rank}.txt"), "a") as f:
                f.write(f"{int(i)}\\n")
        return self.X[i], self.y[i]

def stack(items):
    """A collate_fn of the user's: notes the batch size and whether a loader worker ran it."""
    rank = os.environ.get("RANK")
    if rank is not None:
        with open(os.path.join(LOG, f"batches{rank}.txt"), "a") as f:
            f.write(f"{len(items)} {get_worker_info() is not None}\\n")
    return torch.stack([x for x, _ in items]), torch.stack([t for _, t in items])

class Stream(IterableDataset):
    def __init__(self, X, y):
        self.X, self.y = X, y
    def __iter__(self):
        return iter(zip(self.X, self.y))
'''

SEED, N = 11, 600


@pytest.fixture
def notebook(tmp_path):
    """The cell's namespace, as a kernel's ``__main__`` holds it."""
    log = tmp_path / "log"
    log.mkdir()
    ns = {"__name__": "__main__", "LOG": str(log)}
    exec(compile(CELL, "<notebook cell>", "exec"), ns)
    return ns, log


@pytest.fixture(autouse=True, scope="module")
def _no_pool_after_this_module():
    yield
    from aimodel_kernel.engine.training.distributed.pool import shutdown_pool

    shutdown_pool()


def rows_read(log: Path, rank: int) -> list[int]:
    return [int(v) for v in (log / f"rows{rank}.txt").read_text().split()]


def expected_shard(rank: int, epoch: int) -> list[int]:
    sampler = DistributedSampler(range(N), num_replicas=2, rank=rank, shuffle=True, seed=SEED)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_a_notebook_dataset_is_sharded_so_each_row_is_seen_once_per_epoch(store, digits,
                                                                          notebook):
    ns, log = notebook
    X, y = digits
    dataset = ns["Digits"](X[:N], y[:N], str(log))
    assert type(dataset).__module__ == "__main__" and b"__getitem__" in cloudpickle.dumps(
        dataset)  # the class itself travels, not a reference to it
    net = mlp()
    before = [p.detach().clone() for p in net.parameters()]
    result = train(net, dataset, None, TrainConfig(epochs=2, batch_size=64, seed=SEED,
                                                   devices=2, export=False))
    assert result.status == "finished" and result.metrics["world_size"] == 2.0
    assert any("DistributedSampler" in n and "32 rows per step" in n for n in result.notes)
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))

    per_rank = [rows_read(log, r) for r in (0, 1)]
    assert [len(rows) for rows in per_rank] == [N, N]  # N / 2 rows per epoch, two epochs
    for epoch in (0, 1):
        shards = [rows[epoch * N // 2:(epoch + 1) * N // 2] for rows in per_rank]
        assert shards == [expected_shard(0, epoch), expected_shard(1, epoch)]
        assert sorted(shards[0] + shards[1]) == list(range(N))  # every row exactly once
    assert per_rank[0][: N // 2] != per_rank[0][N // 2:]  # reshuffled for the second epoch


@pytest.mark.parametrize("context", [None, "spawn"])
def test_a_users_dataloader_keeps_its_settings_but_gets_a_distributed_sampler(
        store, digits, notebook, context):
    """With spawned loader workers the cell's Dataset and collate_fn reach them by value."""
    ns, log = notebook
    X, y = digits
    loader = DataLoader(ns["Digits"](X[:N], y[:N], str(log)), batch_size=16, shuffle=True,
                        collate_fn=ns["stack"], num_workers=1, multiprocessing_context=context)
    result = train(mlp(), loader, None, TrainConfig(epochs=1, seed=SEED, devices=2,
                                                    export=False))
    assert result.status == "finished"
    note = next(n for n in result.notes if "DataLoader is re-created" in n)
    assert "batch_size 16 per process (global batch 32)" in note
    assert "collate_fn" in note and "num_workers" in note and "RandomSampler" in note

    for rank in (0, 1):
        assert sorted(rows_read(log, rank)) == sorted(expected_shard(rank, 0))
        batches = (log / f"batches{rank}.txt").read_text().splitlines()
        sizes = [int(line.split()[0]) for line in batches]
        assert sizes == [16] * 18 + [12]  # 300 rows per rank in batches of the loader's 16
        assert {line.split()[1] for line in batches} == {"True"}  # in its num_workers=1 worker
    assert sorted(rows_read(log, 0) + rows_read(log, 1)) == list(range(N))


def test_what_cannot_be_sharded_is_refused_before_anything_starts(store, digits, notebook):
    ns, log = notebook
    X, y = digits
    dataset = ns["Digits"](X[:N], y[:N], str(log))
    with pytest.raises(InputError, match=r"iterable-style dataset.*sharded over --devices"):
        train(mlp(), ns["Stream"](X[:N], y[:N]), None, TrainConfig(devices=2))
    weighted = DataLoader(dataset, batch_size=16,
                          sampler=WeightedRandomSampler(np.ones(N), num_samples=N))
    with pytest.raises(InputError, match=r"own sampler \(WeightedRandomSampler\)"):
        train(mlp(), weighted, None, TrainConfig(devices=2, seed=1))
    assert all_runs(store) == []


def test_the_magic_shows_one_line_for_an_iterable_dataset(ip, digits, notebook):
    from IPython.core.error import UsageError

    ns, _ = notebook
    X, y = digits
    ip.user_ns.update(net=mlp(), stream=ns["Stream"](X[:N], y[:N]))
    with pytest.raises(UsageError, match="iterable-style dataset") as info:
        ip.run_line_magic("train", "net stream --devices 2 --quiet")
    assert "\n" not in str(info.value)
