"""Size sweep: encoder parameters vs clustering accuracy for the separable and the plain family.

usage: python -m benchmarks.size_sweep BENCH_DIR [--multipliers 0.25,0.5,1] [--epochs 10]
                                       [--seeds 0,1,2] [--work DIR] [--json OUT]

Trains the registered `mobilenet` (depthwise-separable) and `plaincnn` families at each width
multiplier and seed with identical settings (the family's defaults, `--epochs` epochs), then
clusters valX alone with each checkpoint's own recipe. Labels (valY, trainY) only score. Prints
one row per model (median and spread over seeds) and writes the JSON that
`python -m aecluster.plots size-accuracy` draws; the spread tells whether a gap between the
families is larger than what a change of seed alone produces.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from aecluster.cli.errors import run_reporting_errors
from aecluster.deploy import count_parameters
from aecluster.models import build_model
from aecluster.registry import TrainSettings
from aecluster.training import Trainer
from benchmarks.arguments import benchmark_parser, number_list
from benchmarks.common import load_bench, score_checkpoint

FAMILIES = {"mobilenet": "separable", "plaincnn": "plain"}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, trainY.npy, valX.npy, valY.npy")
    parser.add_argument("--multipliers", type=number_list(float), default=[0.25, 0.5, 1.0],
                        help="width multipliers (default 0.25,0.5,1)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per model (default 10)")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="seeds (default 0,1,2)")
    parser.add_argument("--work", type=Path, help="where checkpoints go (default: bench-runs/size-NAME)")
    parser.add_argument("--json", type=Path, default=Path("reports/size_sweep.json"))
    args = parser.parse_args(argv)

    data = load_bench(args.bench)
    work = args.work or Path("bench-runs") / f"size-{args.bench.resolve().name}"
    work.mkdir(parents=True, exist_ok=True)

    points = []
    print(f"size sweep on {args.bench.resolve().name}: {args.epochs} epochs, seeds {args.seeds}")
    print("| family | width multiplier | encoder params | val ACC (median ± std) | train ACC (median) | train s |")
    print("|---|---|---|---|---|---|")
    for model, family in FAMILIES.items():
        for multiplier in args.multipliers:
            config = {"width_multiplier": multiplier}
            runs = []
            for seed in args.seeds:
                path = work / f"{model}_x{multiplier:g}_e{args.epochs}_seed{seed}.pth"
                clock = time.perf_counter()
                if not path.exists():
                    settings = TrainSettings.for_model(model, seed=seed, epochs=args.epochs)
                    Trainer(model, settings, config=config, progress=sys.stderr.isatty()).fit(data["trainX"], path)
                seconds = time.perf_counter() - clock
                runs.append({**score_checkpoint(path, data, seed), "seconds": seconds})
            params = count_parameters(build_model(model, config).encoder)["trainable"]
            val = [run["val_acc"] for run in runs]
            point = {"family": family, "params": params, "acc": statistics.median(val),
                     "acc_std": statistics.pstdev(val), "val_accs": val,
                     "train_acc": statistics.median(run["train_acc"] for run in runs),
                     "name": f"{family} x{multiplier:g}"}
            points.append(point)
            print(f"| {family} | {multiplier:g} | {params:,} | {point['acc']:.3f} ± {point['acc_std']:.3f} | "
                  f"{point['train_acc']:.3f} | {statistics.median(run['seconds'] for run in runs):.0f} |",
                  flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": f"{args.bench.resolve().name} val, {len(data['valX'])} images, {args.epochs} epochs",
        "metric": "val clustering accuracy, median over seeds", "seeds": args.seeds, "points": points},
        indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("size_sweep.py", main))
