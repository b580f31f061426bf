#!/usr/bin/env bash
# Regenerate reports/README.md, reports/metrics.json and the report's figures from the shipped
# checkpoints (checkpoints/{baseline,improved,best}.pth and checkpoints/improved_run/).
# usage: bash scripts/make_report.sh [DATA_DIR] [--size-accuracy RESULTS.json] [--quiet]
# DATA_DIR defaults to ../shared/data/two_source relative to the repository root; runs from any
# directory with `python` (or $PYTHON).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-$(command -v python || command -v python3)}
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" "$root/scripts/make_report.py" "$@"
