#!/usr/bin/env bash
# Train the 'baseline' model with its shipped defaults: bash train_baseline.sh <trainX_npy> <checkpoint>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/aecluster_cli.sh"
aecluster_cli "bash train_baseline.sh <trainX_npy> <checkpoint>" 2 "$#" "$@" -- \
    train --model baseline "${1-}" "${2-}"
