"""GPU throughput of ``%train``'s engine against plain PyTorch (the Python side of gpu_check.sh).

Run: bash benchmarks/gpu_check.sh   (or python benchmarks/gpu_check.py [--smoke])
1. One GPU: ``engine.training.train(devices=1, device="cuda")`` vs a hand-written loop (data on
   the GPU, the same MLP, AdamW, batch and shuffling), samples/s of the last epoch.
2. All GPUs (when there are 2 or more): ``train(devices=N, backend="nccl")`` vs a plain DDP
   script (this file, ``plain-ddp`` mode) under ``torchrun --nproc-per-node N``, same data.
The ratio is engine / plain: 1.0 means no overhead. ``--smoke`` runs the same code on CPU with
gloo and a tiny dataset, to check the script where there is no GPU (the numbers mean nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

SIZES = {"rows": 131072, "features": 256, "hidden": 1024, "classes": 10, "batch": 1024,
         "epochs": 3}
SMOKE = {"rows": 2048, "features": 32, "hidden": 64, "classes": 10, "batch": 128, "epochs": 2}


def data(s: dict):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((s["rows"], s["features"]), dtype=np.float32)
    w = rng.standard_normal((s["features"], s["classes"]), dtype=np.float32)
    return X, (X @ w).argmax(1)


def model(s: dict):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(s["features"], s["hidden"]), nn.ReLU(),
                         nn.Linear(s["hidden"], s["hidden"]), nn.ReLU(),
                         nn.Linear(s["hidden"], s["classes"]))


def plain_epochs(net, X, y, batch: int, epochs: int, device, rank: int = 0, world: int = 1):
    """A hand-written loop; rank r takes rows r::world of each global batch. Returns the last
    epoch's seconds."""
    import torch

    X, y = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    seconds = 0.0
    for _ in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=gen).to(device)
        for i in range(0, len(X), batch):
            idx = perm[i : i + batch][rank::world]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
        sync(device)
        seconds = time.perf_counter() - t0
    return seconds


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_sps(s: dict, devices: int, smoke: bool) -> float:
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    X, y = data(s)
    config = TrainConfig(epochs=s["epochs"], batch_size=s["batch"], seed=0, export=False,
                         checkpoint=False, devices=devices,
                         device="cpu" if smoke else "cuda",
                         backend="auto" if devices == 1 else ("gloo" if smoke else "nccl"))
    result = train(model(s), X, y, config)
    return float(result.history[-1]["samples_per_second"]) * devices  # history: per rank


def plain_single_sps(s: dict, smoke: bool) -> float:
    import torch

    device = torch.device("cpu" if smoke else "cuda")
    X, y = data(s)
    seconds = plain_epochs(model(s).to(device), X, y, s["batch"], s["epochs"], device)
    return s["rows"] / seconds


def plain_ddp_main(smoke: bool) -> None:
    """One rank of the plain DDP baseline (started by torchrun); rank 0 prints a JSON line."""
    import torch
    import torch.distributed as dist

    s = SMOKE if smoke else SIZES
    dist.init_process_group("gloo" if smoke else "nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    if smoke:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    else:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    net = model(s).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[local] if device.type == "cuda" else None)
    X, y = data(s)
    seconds = plain_epochs(ddp, X, y, s["batch"], s["epochs"], device, rank, world)
    if rank == 0:
        print(json.dumps({"samples_per_second": s["rows"] / seconds}), flush=True)
    dist.destroy_process_group()


def plain_ddp_sps(n: int, smoke: bool) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", os.path.abspath(__file__),
           "plain-ddp"] + (["--smoke"] if smoke else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=True).stdout
    line = [x for x in out.splitlines() if x.startswith("{")][-1]
    return float(json.loads(line)["samples_per_second"])


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    if "plain-ddp" in argv:
        plain_ddp_main(smoke)
        return 0
    import torch

    s = SMOKE if smoke else SIZES
    gpus = 2 if smoke else torch.cuda.device_count()
    if not smoke and not gpus:
        print("no NVIDIA GPU visible to torch: nothing to measure")
        return 2
    print(f"torch {torch.__version__}, {gpus} GPU(s)"
          + (f": {torch.cuda.get_device_name(0)}" if not smoke else " (smoke run on CPU)"))
    print(f"data: {s['rows']} x {s['features']} float32, MLP hidden {s['hidden']}, batch "
          f"{s['batch']}, {s['epochs']} epochs (last epoch timed)")
    rows = [("1 GPU", engine_sps(s, 1, smoke), plain_single_sps(s, smoke))]
    if gpus > 1:
        from aimodel_kernel.engine.training.distributed.launch import shutdown_pool

        try:
            rows.append((f"{gpus} GPUs", engine_sps(s, gpus, smoke), plain_ddp_sps(gpus, smoke)))
        finally:
            shutdown_pool()
    else:
        print("one GPU: the all-GPU comparison needs 2 or more")
    print(f"{'setup':<8} {'engine samples/s':>18} {'plain samples/s':>18} {'ratio':>7}")
    for name, ours, plain in rows:
        print(f"{name:<8} {ours:>18.0f} {plain:>18.0f} {ours / plain:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv[1:]))
