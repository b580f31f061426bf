"""Distillation variants: how closely students distilled with other settings group images as their teacher.

usage: python -m benchmarks.distill_variants BENCH_DIR [--variants "distill_maps=0;distill_maps=300,epochs=60"]
                                             [--seeds 0,1,2] [--work DIR]

For every variant and seed, trains a `best_cnn` student with the registered defaults changed by the
variant's settings (any TrainSettings field, e.g. distill_maps, epochs, distill_weight), from the
seed's `teacher` (reused from --work as benchmarks.accuracy leaves it, else trained first).
Prints how often the student's groups agree with its teacher's on valX and on trainX, each
clustered alone: that agreement needs no labels and is what distillation settings are chosen
by. Val and train ACC of student and teacher are printed too; labels only score them. Runs on
a GPU when one is present.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aecluster.cli.errors import run_reporting_errors
from benchmarks.arguments import benchmark_parser, number_list
from benchmarks.common import load_bench, parse_settings, run_one, setting_text, summarise, table_header


def parse_variants(text: str) -> list[dict[str, Any]]:
    """"a=1,b=2;c=3" -> [{"a": 1.0, "b": 2.0}, {"c": 3.0}] with TrainSettings' field types."""
    return [parse_settings(part, text, exclude=("seed",)) for part in text.split(";")]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, trainY.npy, valX.npy, valY.npy")
    parser.add_argument("--variants", type=parse_variants, default=parse_variants("distill_maps=0;"),
                        help="';'-separated variants, each ','-separated SETTING=VALUE changes of best_cnn's "
                             "defaults; an empty variant is the defaults (default 'distill_maps=0;')")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="seeds (default 0,1,2)")
    parser.add_argument("--work", type=Path, help="where checkpoints go (default: bench-runs/NAME)")
    args = parser.parse_args(argv)

    data = load_bench(args.bench)
    work = args.work or Path("bench-runs") / args.bench.resolve().name
    work.mkdir(parents=True, exist_ok=True)
    print(f"distillation variants on {args.bench.resolve().name}: seeds {args.seeds}")
    print(table_header("variant"))
    for seed in args.seeds:
        if not (work / f"teacher_seed{seed}.pth").is_file():
            run_one("teacher", seed, data, work, {})  # trained once, for every variant
    for variant in args.variants:
        runs = [run_one("best_cnn", seed, data, work, {}, variant) for seed in args.seeds]
        name = ", ".join(f"{key}={setting_text(value)}" for key, value in variant.items()) or "defaults"
        print(summarise(name, runs), flush=True)
        print(summarise("  its teacher", [{**run["teacher"], "train_seconds": float("nan")} for run in runs]),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("distill_variants.py", main))
