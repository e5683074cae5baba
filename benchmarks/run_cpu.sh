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
bench() { PYTHONPATH=src "$PY" -m resnets bench "$@" "${COMMON[@]}"; }
for layout in off on; do
  bench --model resnet18 --batch 32 --image-size 112 --channels-last $layout --json "$OUT/resnet18_b32_112_cl-$layout.json"
  bench --model resnet50 --batch 16 --image-size 112 --channels-last $layout --json "$OUT/resnet50_b16_112_cl-$layout.json"
done
# CIFAR ResNet-20: our model in the engine's step vs the plain-PyTorch reference in a plain loop
bench --model resnet20 --batch 128 --workloads train --json "$OUT/resnet20_b128_synthetic.json"
bench --model resnet20 --batch 128 --workloads train --data synthetic --json "$OUT/resnet20_b128_engine-loader.json"
"$PY" benchmarks/summarize.py "$OUT"/*.json
