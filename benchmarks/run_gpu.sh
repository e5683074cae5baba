#!/usr/bin/env bash
# The GPU figures (targets in benchmarks/RESULTS.md): bf16 autocast, channels_last, CUDA graphs
# for our steps, batch 256 for ResNet-50. Run from the repository root on a CUDA machine:
#   bash benchmarks/run_gpu.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-benchmarks/results/gpu}
PY=${PY:-.venv/bin/python}
COMMON=(--device cuda --warmup 10 --reps 5 --steps 20)
mkdir -p "$OUT"
bench() { PYTHONPATH=src "$PY" -m resnets bench "$@" "${COMMON[@]}"; }
# ResNet-50 training and inference: vs torchvision eager, then vs torchvision compiled
bench --model resnet50 --batch 256 --compile ours --json "$OUT/resnet50_b256_ours-compiled_vs_tv-eager.json"
bench --model resnet50 --batch 256 --compile both --json "$OUT/resnet50_b256_both-compiled.json"
bench --model resnet50 --batch 256 --json "$OUT/resnet50_b256_eager.json"
bench --model resnet18 --batch 256 --json "$OUT/resnet18_b256_eager.json"
# CIFAR nets at batch 128: graphed engine step vs the plain reference loop
for m in resnet20 resnet56 resnet110; do
  bench --model $m --batch 128 --json "$OUT/${m}_b128.json"
done
# the engine's real data path (CIFAR-10 JPEG copy as an image folder, decoded once and resident)
if [ -d data/cifar10 ]; then
  bench --model resnet20 --batch 128 --workloads train --data imagefolder data/cifar10 --json "$OUT/resnet20_b128_cifar10-folder.json"
fi
"$PY" benchmarks/summarize.py "$OUT"/*.json
