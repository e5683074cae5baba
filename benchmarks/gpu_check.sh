#!/usr/bin/env bash
# One-command GPU check (UNTESTED: written without a GPU at hand; run it first when one is).
# Budget: under 8 minutes on one H100/H200, start-up excluded. From the repository root:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md (one table), plus each step's raw output:
#   1. the `gpu` tests                                   (pytest -m gpu, at most 150 s)
#   2. ResNet-50 training and inference, ours vs torchvision eager: bf16, channels_last, batch 256
#   3. ResNet-20 whole-step CUDA graph, batch 128: steps/s (ours) against the plain loop
#   4. a 1,000-iteration ResNet-20 run on the CIFAR-10 JPEG folder through `resnets train`
# Each step has its own time limit and a failed step is recorded, not fatal: the table says which.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu_check}
PY=${PY:-.venv/bin/python}
TARBALL=${TARBALL:-../shared/data/cifar10-jpeg.tar.gz}
DATA=${DATA:-data/cifar10-jpeg}
mkdir -p "$OUT"
start=$(date +%s)
status() { echo "$1=$2" >> "$OUT/status.txt"; }
: > "$OUT/status.txt"

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" \
  || { echo "gpu_check: no CUDA device; nothing to check" >&2; exit 2; }

# 1. the gpu tests
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests > "$OUT/pytest_gpu.txt" 2>&1
status pytest_gpu $?

# 2. ResNet-50, ours vs torchvision eager (both workloads), bf16 + channels_last, batch 256
timeout 150 env PYTHONPATH=src "$PY" -m resnets bench --device cuda --model resnet50 --batch 256 --precision bf16 \
  --channels-last on --warmup 5 --reps 5 --steps 10 --no-memory --json "$OUT/resnet50_b256.json" \
  > "$OUT/resnet50_b256.txt" 2>&1
status resnet50_b256 $?

# 3. ResNet-20 whole-step CUDA graph at batch 128 (training steps/s = img/s / 128)
timeout 90 env PYTHONPATH=src "$PY" -m resnets bench --device cuda --model resnet20 --batch 128 --workloads train \
  --graphs on --warmup 20 --reps 5 --steps 50 --no-memory --json "$OUT/resnet20_b128_graphed.json" \
  > "$OUT/resnet20_b128_graphed.txt" 2>&1
status resnet20_b128_graphed $?

# 4. 1,000 iterations of ResNet-20 on the CIFAR-10 JPEG folder through `resnets train`
if [ ! -d "$DATA/train" ] && [ -f "$TARBALL" ]; then
  mkdir -p "$DATA" && tar xzf "$TARBALL" -C "$DATA"
fi
if [ -d "$DATA/train" ]; then
  t0=$(date +%s.%N)
  timeout 200 env PYTHONPATH=src "$PY" -m resnets train --config configs/cifar10_he2015.yaml --device cuda --quiet \
    data.name=imagefolder data.root="$DATA" train.iterations=1000 train.eval_every=500 \
    train.checkpoint_every=1000 schedule.name=cosine schedule.milestones=[] train.tensorboard=false \
    train.out_dir="$OUT/runs" train.name=resnet20_cifar10_jpeg_1k > "$OUT/train_resnet20_1k.txt" 2>&1
  status train_resnet20_1k $?
  t1=$(date +%s.%N)
  echo "train_resnet20_1k_wall_s=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")" >> "$OUT/status.txt"
else
  status train_resnet20_1k "skipped (no $DATA/train and no $TARBALL)"
fi

echo "total_wall_s=$(( $(date +%s) - start ))" >> "$OUT/status.txt"
PYTHONPATH=src "$PY" benchmarks/gpu_check_report.py "$OUT"
