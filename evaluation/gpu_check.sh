#!/usr/bin/env bash
# The GPU check of evaluation/gpu_check.py on a CUDA machine whose Python has torch but not this project's
# lighter dependencies: installs pydantic from wheels carried in .whl/ (see evaluation/results/gpu.md), then runs
# every part, writing gpu.json, gpu.md, profile.txt, runs.log and pytest.log to $OUT (default runs/gpu-check).
#   bash evaluation/gpu_check.sh [--budget-s 300]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu-check}"
if ! python3 -c "import pydantic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
python3 evaluation/gpu_check.py --out "$out" "$@"
