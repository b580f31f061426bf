#!/usr/bin/env bash
# Train the 'improved' model with its shipped defaults: bash train_improved.sh <trainX_npy> <checkpoint>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/aecluster_cli.sh"
aecluster_cli "bash train_improved.sh <trainX_npy> <checkpoint>" 2 "$#" "$@" -- \
    train --model improved "${1-}" "${2-}"
