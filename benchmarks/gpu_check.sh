#!/usr/bin/env bash
# GPU throughput of %train's engine vs plain PyTorch, on a machine with NVIDIA GPUs (< 5 min).
#
#   bash benchmarks/gpu_check.sh
#
# Single GPU: engine.training.train(devices=1, device="cuda") vs a hand-written loop.
# All GPUs (2 or more): train(devices=N, backend="nccl") vs a plain DDP script under torchrun.
# Synthetic data (131072 x 256 float32, a 1024-wide MLP, batch 1024); prints samples/s and the
# ratio engine / plain. Runs in a scratch store (a temporary AIMODEL_HOME), installs nothing.
# The Python side is benchmarks/gpu_check.py (``--smoke`` runs it on CPU where there is no GPU).
#
# Exit status: 0 measured; 2 no NVIDIA GPU here (nvidia-smi missing or listing none), nothing
# was measured; anything else: the check itself failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${AIMODEL_VENV:-$root/.venv}/bin/python"
[[ -x "$py" ]] || py="$(command -v python3)"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "no NVIDIA GPU (nvidia-smi not found or it lists no GPU): nothing to measure"
  exit 2
fi
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export AIMODEL_HOME="$scratch/.aimodel"
unset MLFLOW_TRACKING_URI
cd "$scratch"
timeout 290 "$py" "$root/benchmarks/gpu_check.py"
