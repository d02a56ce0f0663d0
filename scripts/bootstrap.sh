#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything installed.
# Usage: source scripts/bootstrap.sh   (or bash it; it prints the venv path)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AIMODEL_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
pip() { "$venv/bin/python" -m pip "$@"; }

# A CPU build of torch first: a bare torch requirement would pull a multi-GB CUDA build.
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  pip install --quiet "torch==${AIMODEL_TORCH_VERSION:-2.13.0}"
fi
stamp="$venv/.aimodel-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  pip install --quiet -e "$root[all,test]"
  touch "$stamp"
fi
echo "environment ready: $venv"
