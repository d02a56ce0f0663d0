"""How long ``%load_ext aimodel_kernel`` takes in a fresh interpreter, and what it imports.

Run: python benchmarks/bench_load.py
Target: at most 0.15 s, and none of torch / shap / mlflow / sklearn / onnx imported at load.
The baseline is ``%load_ext autoreload`` (an IPython built-in) in the same kind of process.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _common import machine, median, table

PROBE = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t0 = time.perf_counter()
ip.run_line_magic("load_ext", sys.argv[1])
dt = time.perf_counter() - t0
heavy = [m for m in ("torch", "shap", "mlflow", "sklearn", "onnx", "pandas", "matplotlib")
         if m in sys.modules]
print(json.dumps({"seconds": dt, "heavy": heavy}))
"""


def measure(ext: str, runs: int = 5) -> tuple[float, list[str]]:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE, ext], capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return median([r["seconds"] for r in results]), results[-1]["heavy"]


def main() -> None:
    ours, heavy = measure("aimodel_kernel")
    base, _ = measure("autoreload")
    print(f"machine: {machine()}")
    print(table(
        ["extension", "load (s, median of 5)", "ratio vs autoreload", "heavy modules imported"],
        [["aimodel_kernel", ours, ours / base, ", ".join(heavy) or "none"],
         ["autoreload (baseline)", base, 1.0, ""]],
    ))
    verdict = "met" if ours <= 0.15 and not heavy else "MISSED"
    print(f"target: <= 0.15 s and no heavy import -> {verdict}")


if __name__ == "__main__":
    main()
