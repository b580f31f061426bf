"""A few thousand images clustered alone: what `hw9_best.sh` does with a 2,000-image input.

usage: python -m benchmarks.samples_alone BENCH_DIR CHECKPOINT [CHECKPOINT ...] [--sample 2000]
                                          [--draws 5] [--json OUT]

For each checkpoint: encode BENCH_DIR/trainX.npy once, fit the checkpoint's recipe on all of
it (seed 0), then on `--draws` random samples of `--sample` training images, each clustered by
itself with its draw's seed (`aecluster.selection.sample_fits`: the reducer chain and the
clustering are fitted on the sample alone, as `AEClusterer.fit` fits them on its input). Prints
each sample's agreement with the fit on all images (label-free) and its ACC (trainY only
scores), then the mean and the lowest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from aecluster.checkpoint import load_model
from aecluster.cli.args import integer_at_least
from aecluster.cli.errors import run_reporting_errors
from aecluster.encoding import RECIPE_DEFAULTS, encode_images
from aecluster.metrics import clustering_accuracy
from aecluster.selection import SAMPLE_DRAWS, SAMPLE_SIZE, complete_recipe_fit, sample_fits
from benchmarks.arguments import benchmark_parser
from benchmarks.common import load_bench


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy and trainY.npy (trainY only scores)")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints whose recipe is used")
    parser.add_argument("--sample", type=integer_at_least(2), default=SAMPLE_SIZE, help="images per sample")
    parser.add_argument("--draws", type=integer_at_least(1), default=SAMPLE_DRAWS, help="random samples")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    data = load_bench(args.bench)
    rows = []
    print(f"| checkpoint | recipe | all {len(data['trainX']):,}: ACC | {args.sample:,} alone: agreement, "
          "mean (lowest) | ACC, mean (lowest) | ACC per draw |\n" + "|---" * 6 + "|")
    for path in args.checkpoints:
        model, payload = load_model(path)
        recipe = {**RECIPE_DEFAULTS, **payload["recipe"]}
        fit = complete_recipe_fit(recipe)
        codes = encode_images(model, data["trainX"], progress=sys.stderr.isatty())
        groups = fit(codes, 0)
        samples = sample_fits(fit, codes, args.sample, range(args.draws))
        agreements = [clustering_accuracy(labels, groups[part]) for part, labels in samples]
        accs = [clustering_accuracy(labels, data["trainY"][part]) for part, labels in samples]
        row = {"checkpoint": str(path), "recipe": f"{recipe['reduce']} + {recipe['method']}",
               "train_acc": clustering_accuracy(groups, data["trainY"]), "agreements": agreements, "accs": accs}
        rows.append(row)
        print(f"| {path} | {row['recipe']} | {row['train_acc']:.3f} | {np.mean(agreements):.3f} "
              f"({min(agreements):.3f}) | {np.mean(accs):.3f} ({min(accs):.3f}) | "
              f"{', '.join(f'{acc:.3f}' for acc in accs)} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("samples_alone.py", main))
