#!/usr/bin/env bash
# Run every benchmark (prints ratios against same-run baselines). Needs the .venv from
# scripts/bootstrap.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${AIMODEL_VENV:-$root/.venv}/bin/python"
cd "$root/benchmarks"
echo "## load";      "$py" bench_load.py
echo "## first call"; "$py" bench_first_call.py
echo "## train";     "$py" bench_train.py
echo "## evaluate";  "$py" bench_evaluate.py
echo "## diff";      "$py" bench_diff.py
echo "## explain";   "$py" bench_explain.py
echo "## compress";  "$py" bench_compress.py
echo "## distributed"; "$py" bench_distributed.py
