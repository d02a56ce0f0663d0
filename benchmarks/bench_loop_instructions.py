"""The training loop's own cost per step, counted in instructions under callgrind: ``train()``
vs the same loop written by hand with the same switches (issue 15).

Run: python benchmarks/bench_loop_instructions.py [--steps 40] [--switches "" "bf16-mixed,4"]

Wall clock on these shared 2-core machines moves by +-10 % between runs; the number of
instructions a process executes does not (one thread: ``OMP_NUM_THREADS=1``, so no spinning
OpenMP workers). Each job runs twice under ``valgrind --tool=callgrind``, for 1 and for 3
epochs of the same rows; the difference over the extra steps is the per-step count, so the
start-up (imports, the store, recording) cancels out. Per-epoch work (the epoch-end state
capture, one MLflow metrics write) is amortised over ``--steps`` steps per epoch.

The model is an MLP 64-128-128-10 on seeded random rows, batch 64, AdamW; ``train()`` runs
with tracking on, without checkpoints or an exported program (their writes are per run, not
per step). A switch set is ``PRECISION,GRAD_ACCUM`` (``""`` = ``32,1``); the hand-written loop
does the same: ``torch.autocast`` to bfloat16, and the step's rows split into micro-batches
whose losses are weighted by their share of the step's rows. Target: ours <= 1.01x the hand
loop's instructions per step, with the switches off and on.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import machine, table

BATCH, FEATURES, CLASSES = 64, 64, 10


def _model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, CLASSES))


def _data(steps: int):
    import torch

    g = torch.Generator().manual_seed(1)
    X = torch.randn(steps * BATCH, FEATURES, generator=g)
    y = torch.randint(0, CLASSES, (steps * BATCH,), generator=g)
    return X, y


def hand(epochs: int, steps: int, precision: str, accum: int) -> None:
    """The loop written by hand with the same switches."""
    import contextlib

    import torch

    model, (X, y) = _model(), _data(steps)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) \
        if precision == "bf16-mixed" else contextlib.nullcontext
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        losses = []
        for i in range(0, len(y), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            for part in idx.chunk(accum):
                with autocast():
                    loss = loss_fn(model(X[part]), y[part])
                (loss * (len(part) / len(idx))).backward()
                losses.append(loss.detach())
            opt.step()
        float(torch.stack(losses).mean())


def ours(epochs: int, steps: int, precision: str, accum: int) -> None:
    """``train()`` with tracking on (no checkpoints, no exported program)."""
    from aimodel_kernel.config import Settings
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    X, y = _data(steps)
    options = {} if precision == "32" else {"precision": precision}
    if accum > 1:
        options["grad_accum"] = accum
    config = TrainConfig(epochs=epochs, batch_size=BATCH, seed=0, device="cpu",
                         checkpoint=False, export=False, **options)
    with tempfile.TemporaryDirectory() as home:
        train(_model(), X.numpy(), y.numpy(), config, settings=Settings(home=home))


def instructions(job: str, epochs: int, steps: int, switches: str) -> int:
    """Instructions the whole process executes, counted by callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--dump-instr=no", sys.executable, os.path.abspath(__file__), "--child",
                        job, str(epochs), str(steps), switches],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            text = f.read()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not found:
        raise RuntimeError("callgrind wrote no instruction total")
    return int(found.group(1))


def parse_switches(text: str) -> tuple[str, int]:
    if not text:
        return "32", 1
    precision, _, accum = text.partition(",")
    return precision or "32", int(accum or 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--switches", nargs="+", default=["", "bf16-mixed,4"])
    parser.add_argument("--child", nargs=4, metavar=("JOB", "EPOCHS", "STEPS", "SWITCHES"))
    args = parser.parse_args()
    if args.child:
        job, epochs, steps, switches = args.child
        import torch

        torch.set_num_threads(1)
        {"hand": hand, "ours": ours}[job](int(epochs), int(steps), *parse_switches(switches))
        return
    rows = []
    for switches in args.switches:
        per_step = {}
        for job in ("hand", "ours"):
            few = instructions(job, 1, args.steps, switches)
            many = instructions(job, 3, args.steps, switches)
            per_step[job] = (many - few) / (2 * args.steps)
        precision, accum = parse_switches(switches)
        rows.append([f"precision {precision}, grad-accum {accum}", per_step["hand"] / 1e6,
                     per_step["ours"] / 1e6, per_step["ours"] / per_step["hand"]])
    print(f"instructions per step (callgrind, one thread), MLP 64-128-128-10, batch {BATCH}, "
          f"{args.steps} steps per epoch; {machine()}")
    print(table(["switches", "hand-written (M instr/step)", "train() (M instr/step)",
                 "ours / hand"], rows))


if __name__ == "__main__":
    main()
