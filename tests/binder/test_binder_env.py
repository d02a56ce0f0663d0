"""Binder, as far as a machine without Docker allows: a fresh virtual environment from binder/'s
specification, binder/postBuild's checks, then every tutorial executed in that environment with
its kernel's peak memory (Binder gives 1-2 GB) and wall time measured.

The only deviation from repo2docker: the ``--extra-index-url`` line (PyTorch's CPU wheel index) is
dropped, since this machine reaches PyPI only; the same pinned CPU build of torch comes from it.
Results land in ``out/binder/tutorials.json`` and are printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LIMIT_MB = 1536
OUT = REPO / "out" / "binder"


def repo_copy(target: Path) -> Path:
    """The working tree's files as git sees them (tracked and new, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def requirements_here(spec: Path, target: Path) -> Path:
    lines = [line for line in spec.read_text().splitlines()
             if not line.strip().startswith("--extra-index-url")]
    target.write_text("\n".join(lines) + "\n")
    return target


def sh(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_binder_environment_builds_and_runs_every_tutorial(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path / "repo")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_TRACKING_URI", "AIMODEL_HOME")}
    env["PATH"] = f"{env_dir / 'bin'}:{env['PATH']}"
    py = str(env_dir / "bin" / "python")
    reqs = requirements_here(repo / "binder" / "requirements.txt", tmp_path / "requirements.txt")
    sh([py, "-m", "pip", "install", "--quiet", "-r", str(reqs)], repo, env, 1800)
    out = sh(["bash", "binder/postBuild"], repo, env, 1800)
    assert "lab and server extensions are enabled" in out
    installed = sh([py, "-m", "pip", "list", "--format=freeze"], repo, env, 120)
    pinned = [line for line in reqs.read_text().splitlines() if "==" in line]
    for pin in pinned:
        name, version = pin.split("==")
        assert any(line.lower().replace("_", "-").startswith(
            f"{name.lower().replace('_', '-')}=={version}") for line in installed.splitlines()), pin

    OUT.mkdir(parents=True, exist_ok=True)
    results = OUT / "tutorials.json"
    runner = REPO / "tests" / "binder" / "run_tutorials.py"
    printed = sh(["bash", "binder/start", py, str(runner), str(repo / "notebooks"),
                  str(tmp_path / "work"), str(results)], repo, env, 3000)
    print("\nBinder environment, per tutorial:\n" + printed)
    measured = json.loads(results.read_text())
    assert len(measured) == len(list((REPO / "notebooks").glob("*.ipynb")))
    for r in measured:
        assert r["error"] is None, f"{r['notebook']}: {r['error']}"
        assert r["peak_rss_mb"] < LIMIT_MB, f"{r['notebook']} peaked at {r['peak_rss_mb']} MB"
        assert r["peak_rss_mb"] > 50  # the sampler saw the kernel
