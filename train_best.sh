#!/usr/bin/env bash
# Train the 'best' model: bash train_best.sh <trainX_npy> <checkpoint>. On a CUDA device its GPU
# configuration (configs/best_gpu.yaml, teacher resnet18_teacher); elsewhere the CPU one
# (configs/best.yaml: the patch-dictionary teacher 'patches' and its student; docs/gpu.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/aecluster_cli.sh"
aecluster_cli "bash train_best.sh <trainX_npy> <checkpoint>" 2 "$#" "$@" -- \
    train --model best --hardware auto "${1-}" "${2-}"
