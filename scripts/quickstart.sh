#!/usr/bin/env bash
# Set up the environment, then run notebooks/01_quickstart.ipynb headless on the embedded store
# and write the executed notebook as HTML. Prints where the HTML went.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
venv="${AIMODEL_VENV:-$root/.venv}"
out="${AIMODEL_OUT:-$root/out/quickstart}"
rm -rf "$out" && mkdir -p "$out"
cp "$root/notebooks/01_quickstart.ipynb" "$out/"
cd "$out"   # the kernel runs here, so the store is $out/.aimodel
"$venv/bin/jupyter" nbconvert --to html --execute --ExecutePreprocessor.timeout=600 \
  --output 01_quickstart 01_quickstart.ipynb >/dev/null 2>"$out/nbconvert.log" || {
  cat "$out/nbconvert.log" >&2; exit 1; }
echo "executed notebook: $out/01_quickstart.html"
echo "its MLflow store:  $out/.aimodel/mlflow.db  (mlflow ui --backend-store-uri sqlite:///$out/.aimodel/mlflow.db)"
