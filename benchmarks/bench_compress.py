"""Benchmark: ``%compress`` variants against the original PyTorch model, same run, CPU.

Run from the repository root::

    python benchmarks/bench_compress.py [--rounds 3] [--repeats 200] [--threads 1]

Two models trained here on the digits (1,257 training rows, 540 check rows): an MLP
64-256-256-10 and a small CNN (conv 16, conv 32, max-pool, 512-64-10). Each is compressed with
``compress(structured=0.5, onnx=True, quantize="int8", calibration=X_train)`` ``--rounds``
times; every figure is the median over rounds of a ratio measured in the same round, all
runtimes on ``--threads`` threads (torch intra-op, BLAS/OpenMP, onnxruntime intra-op). Sizes
are file sizes: the fp32 model is its safetensors weights. Targets (issue 5) for the int8 ONNX
variant: size <= 0.3x of fp32, p50 latency at batch 256 >= 3x faster than torch fp32 eager,
accuracy drop <= 0.5 points. Prints the tables and whether each target is met; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, table

from aimodel_kernel.engine.compression.entry import compress


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16.0).astype(np.float32), y, test_size=0.3, stratify=y,
                            random_state=0)


def mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn():
    from torch import nn

    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))


def fit(net, X, y, epochs: int = 30, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), 2e-3)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def rows_of(result) -> dict[str, dict]:
    orig = result.original
    fp32_onnx = result.variant("onnx").size_bytes
    out = {}
    for v in result.variants:
        if not v.ok:
            out[v.name] = {"failed": v.reason}
            continue
        out[v.name] = {
            "size × fp32": v.size_bytes / orig.size_bytes,
            "size × fp32 onnx": v.size_bytes / fp32_onnx,
            "p50 b1 ms": v.p50(1), "p50 b256 ms": v.p50(256),
            "speedup b256": orig.p50(256) / v.p50(256),
            "accuracy": v.metrics["accuracy"], "drop pt": v.metric_drop * 100,
            "agreement %": v.agreement * 100,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    X_train, X_test, y_train, y_test = data()
    print(f"machine: {machine()}, torch {torch.__version__}, threads {args.threads}, "
          f"rounds {args.rounds}")
    for label, build in (("MLP 64-256-256-10", mlp), ("CNN conv16-conv32-64-10", cnn)):
        net = fit(build(), X_train, y_train)
        rounds = []
        for _ in range(args.rounds):
            r = compress(net, X_test, y_test, structured=0.5, onnx=True, quantize="int8",
                         calibration=X_train, log=False, threads=args.threads,
                         repeats=args.repeats, out=Path("/tmp/aimodel-bench-compress"))
            rounds.append(rows_of(r))
        names = list(rounds[0])
        keys = ["size × fp32", "size × fp32 onnx", "p50 b1 ms", "p50 b256 ms", "speedup b256",
                "accuracy", "drop pt", "agreement %"]
        body = []
        for name in names:
            if "failed" in rounds[0][name]:
                body.append([name, "failed: " + rounds[0][name]["failed"]] + [""] * 7)
                continue
            body.append([name] + [statistics.median(rd[name][k] for rd in rounds) for k in keys])
        print(f"\n## {label}: {sum(p.numel() for p in net.parameters()):,} parameters, "
              f"{len(X_test)} check rows")
        print(table(["variant", *keys], body))
        int8 = {k: statistics.median(rd["onnx-int8"][k] for rd in rounds) for k in keys}
        def verdict(ok: bool) -> str:
            return "met" if ok else "NOT met"

        print(f"targets for onnx-int8: size {int8['size × fp32']:.2f}× (≤ 0.3: "
              f"{verdict(int8['size × fp32'] <= 0.3)}), speedup b256 "
              f"{int8['speedup b256']:.2f}× (≥ 3: {verdict(int8['speedup b256'] >= 3)}), drop "
              f"{int8['drop pt']:+.2f} pt (≤ 0.5: {verdict(int8['drop pt'] <= 0.5)})")


if __name__ == "__main__":
    main()
