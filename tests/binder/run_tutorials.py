"""Execute every tutorial in *this* Python's kernel and measure it (run by test_binder_env.py).

Usage: python run_tutorials.py NOTEBOOK_DIR WORK_DIR OUT_JSON

For each notebook: wall time, and the peak resident memory of the kernel's whole process tree
(the kernel and any worker it starts, sampled every 50 ms with psutil), as Binder's container
limit counts them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient


class PeakMemory(threading.Thread):
    """Samples the RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self._halt = threading.Event()  # not _stop: Thread uses that name

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._halt.wait(0.05)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def run(path: Path, work: Path) -> dict:
    folder = work / path.stem
    folder.mkdir(parents=True)
    target = folder / path.name
    shutil.copy(path, target)
    nb = nbformat.read(target, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = PeakMemory(pid)
        sampler.start()
        error = None
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except Exception as exc:  # a failing cell is a result to report, not a crash
            error = f"{type(exc).__name__}: {str(exc)[-500:]}"
        peak = sampler.stop()
    return {"notebook": path.name, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(peak / 2**20, 1), "error": error}


def main() -> None:
    notebooks, work, out = (Path(a) for a in sys.argv[1:4])
    results = [run(p, work) for p in sorted(notebooks.glob("*.ipynb"))]
    out.write_text(json.dumps(results, indent=1))
    for r in results:
        print(f"{r['notebook']}: {r['seconds']} s, peak {r['peak_rss_mb']} MB"
              + (f", ERROR {r['error']}" if r["error"] else ""))


if __name__ == "__main__":
    main()
