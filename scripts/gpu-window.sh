#!/usr/bin/env bash
# One GPU window (issue 14), the whole command for the device tool's machine:
#   run(command="bash scripts/gpu-window.sh", carry=[".carry"], timeout_s=600)
# Unpacks the carried CIFAR-10 JPEG copy (.carry/cifar10-jpeg.tar.gz) into data/, then
# `window` checks, measures, trains and packs within WINDOW_S s (default 540, packing
# included; 60 s of the 600 stay for the return) into $OUT. Checkpoints that earlier
# windows left (.carry/checkpoints, where import-runs puts them) resume.
# Extra arguments go to `window` (e.g. --max-runs 3). Dry run on a CPU, records outside
# data/runs: OUT=/tmp/w DEVICE=cpu RUNS=/tmp/r bash scripts/gpu-window.sh --profile smoke
set -uo pipefail
t0=$(date +%s)
out="${OUT:?set OUT, the folder whose files come back}"
cd "$(dirname "$0")/.."
mkdir -p data .carry/checkpoints
if [ ! -d data/cifar10-jpeg ]; then
  tar -xzf .carry/cifar10-jpeg.tar.gz -C data || { echo "carry .carry/cifar10-jpeg.tar.gz"; exit 2; }
fi
budget=$(( ${WINDOW_S:-540} - ($(date +%s) - t0) ))
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader 2>/dev/null
PYTHONUNBUFFERED=1 exec "${PYTHON:-python3}" -m resnetlab window --budget "$budget" --out "$out" \
  --device "${DEVICE:-cuda}" --data data --runs "${RUNS:-data/runs}" --checkpoints .carry/checkpoints "$@"
