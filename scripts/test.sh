#!/usr/bin/env bash
# Set up the environment, then run the linters and the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
venv="${AIMODEL_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/ruff" check aimodel_kernel tests benchmarks scripts
# the lab extension's unit tests (jest, on the same example reports as the Python tests)
(cd labextension && PATH="$venv/bin:$PATH" jlpm test --silent)
"$venv/bin/python" -m pytest "$@"
