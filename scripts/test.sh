#!/usr/bin/env bash
# Set up the environment, then run the linters and the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
venv="${AIMODEL_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/ruff" check aimodel_kernel tests benchmarks
"$venv/bin/python" -m pytest "$@"
