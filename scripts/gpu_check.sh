#!/usr/bin/env bash
# The GPU check on a machine without network, as one command (docs/results/gpu-check.md):
#   bash scripts/gpu_check.sh OUT [scripts/gpu_check.py options]
# Installs the carried wheels (.whl/, made here by ../shared/gpu/wheels.sh) into /tmp/site, stages this
# checkout as an importable package (dd_runner with its configs as dd_runner.conf, what an install would
# make; no build tools needed) in /tmp/src, and runs scripts/gpu_check.py --out OUT with both on the path.
# The data and the MiniLM stand-in come from .gpu/ (python scripts/gpu_check.py --pack, here).
set -euo pipefail
out=${1:?usage: bash scripts/gpu_check.sh OUT [gpu_check.py options]}
shift
cd "$(dirname "$0")/.."
site=${GPU_CHECK_SITE:-/tmp/site} src=${GPU_CHECK_SRC:-/tmp/src}
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
fi
rm -rf "$src" && mkdir -p "$src" && cp -r dd_runner "$src/" && cp -r conf "$src/dd_runner/conf"
PYTHONPATH=$site:$src${PYTHONPATH:+:$PYTHONPATH} exec python3 scripts/gpu_check.py --out "$out" "$@"
