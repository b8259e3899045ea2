#!/usr/bin/env bash
# The GPU check on a lent device machine (no package registry there): install the wheels `make gpu-wheels` put in
# .whl/ (carried with the working tree) beside the machine's own PyTorch, then run scripts/gpu_check.py on CUDA.
# The results file goes to $OUT (the device tool brings it back) or to benchmarks/gpu-check.json.
#   device run: bash scripts/gpu_check_device.sh     (carry: .whl)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 scripts/gpu_check.py --device cuda --output "${OUT:-benchmarks}/gpu-check.json" "$@"
