#!/usr/bin/env bash
# The GPU measurements in one run (about 10 minutes on one H100-class GPU): every backbone checked as the
# train stage trains it, ResNet50 with 4 processes at once (4 dvc queue workers on one GPU), then the plan
# of the full matrix from those figures.
# Usage: bash benchmarks/gpu_session.sh [OUT_DIR]  (needs TensorFlow with GPU support: pip install -e .)
# GPU_CHECK_STEPS (200) and GPU_CHECK_IMG_SIZE (224) shrink it for a dry run on a CPU.
set -euo pipefail
out=${1:-benchmarks/gpu}
steps=${GPU_CHECK_STEPS:-200}
size=${GPU_CHECK_IMG_SIZE:-224}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" || echo "no nvidia-smi" > "$out/gpu.txt"
for model in resnet50 mobilenetv2 densenet121 densenet201 resnet50v2 resnet101v2 resnet152v2 vgg16; do
    python benchmarks/gpu_check.py --model "$model" --img-size "$size" --steps "$steps" --json "$out/$model.json"
done
python benchmarks/gpu_check.py --model resnet50 --img-size "$size" --steps "$steps" --processes 4 \
    --json "$out/concurrent.json"
python benchmarks/plan_full_study.py --gpu-json "$out"/{resnet50,mobilenetv2,densenet121,densenet201,resnet50v2,resnet101v2,resnet152v2,vgg16}.json \
    | tee "$out/plan.md"
