#!/usr/bin/env bash
# Label every image of <trainX_npy> 0/1 with the checkpoint's own recipe; write id,label CSV.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/aecluster_cli.sh"
aecluster_cli "bash hw9_best.sh <trainX_npy> <checkpoint> <prediction_path>" 3 "$#" "$@" -- \
    cluster "${1-}" "${2-}" "${3-}"
