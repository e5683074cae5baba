#!/usr/bin/env bash
# The CPU figures of benchmarks/RESULTS.md: ours vs torchvision (and resnet20 vs a plain CIFAR
# ResNet), fp32, training and inference, NCHW and channels_last. Run from the repository root:
#   bash benchmarks/run_cpu.sh [OUT_DIR]
# On a shared machine, wait until `uptime` shows a load below 1.5, and keep THREADS at the
# number of idle cores (torch's default spins on busy cores and slows down many-fold).
set -euo pipefail
OUT=${1:-benchmarks/results/cpu}
THREADS=${THREADS:-2}
PY=${PY:-.venv/bin/python}
COMMON=(--device cpu --threads "$THREADS" --warmup 2 --reps 5 --steps 3)
mkdir -p "$OUT"
MAX_LOAD=${MAX_LOAD:-1.5}   # wait for a 1-minute load average below this before each run ...
MAX_WAIT=${MAX_WAIT:-600}   # ... for at most this many seconds (the JSON records the load either way)
wait_quiet() {
  local waited=0
  while awk -v max="$MAX_LOAD" '{exit !($1 > max)}' /proc/loadavg && [ "$waited" -lt "$MAX_WAIT" ]; do
    sleep 15; waited=$((waited + 15))
  done
  echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited}s)"
}
bench() { wait_quiet; PYTHONPATH=src "$PY" -m resnets bench "$@" "${COMMON[@]}"; }
for layout in off on; do
  bench --model resnet18 --batch 32 --image-size 112 --channels-last $layout --json "$OUT/resnet18_b32_112_cl-$layout.json"
  bench --model resnet50 --batch 16 --image-size 112 --channels-last $layout --json "$OUT/resnet50_b16_112_cl-$layout.json"
done
# CIFAR ResNet-20: our model in the engine's step vs the plain-PyTorch reference in a plain loop
bench --model resnet20 --batch 128 --workloads train --json "$OUT/resnet20_b128_synthetic.json"
bench --model resnet20 --batch 128 --workloads train --data synthetic --json "$OUT/resnet20_b128_engine-loader.json"
"$PY" benchmarks/summarize.py "$OUT"/*.json
