"""Accuracy benchmark: raw-pixel PCA+KMeans and the registered models on one benchmark folder.

usage: python -m benchmarks.accuracy BENCH_DIR [--models raw,baseline,improved] [--seeds 0,1,2]
                                     [--work DIR] [--checkpoint NAME=PATH ...] [--json OUT]
                                     [--set SETTING=VALUE,...]

For every model and seed: train on BENCH_DIR/trainX.npy with the model's shipped defaults (or
reuse a checkpoint already in --work), then cluster trainX and, separately, valX alone with the
checkpoint's own recipe. Labels (trainY, valY) are used only to score. Prints val and train ACC
(median and std over seeds) and wall times of training and of predicting trainX.
`--checkpoint NAME=PATH` scores an existing checkpoint instead of training one. A checkpoint
distilled from a teacher (`best`, or one whose PATH_run/teacher.pth exists) also gets a row for
that teacher, so the compressed model can be compared with its uncompressed teacher, and the
label-free agreement of its groups with the teacher's, then a line of how many points each seed's
student is behind its own teacher; a teacher trained earlier in the same
--work folder (`--models teacher,best`, or the GPU pair `--models resnet18_teacher,best_gpu`) is
reused rather than trained again. `--set epochs=1,batch_size=32` changes the training settings of
every model trained here, a student's teacher stage included (a quick smoke test of the GPU pair
on a CPU, say); the checkpoints are named after the changes.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from aecluster.cli.errors import run_reporting_errors
from benchmarks.arguments import benchmark_parser, number_list
from benchmarks.common import load_bench, parse_settings, run_one, summarise, table_header


def paired_gaps(name: str, students: list[dict[str, Any]], teachers: list[dict[str, Any]]) -> str:
    """How many points each seed's student is behind its own teacher (negative: ahead), and the
    mean: medians over seeds compare different seeds' runs, these pairs do not."""
    parts = []
    for label, key in (("val", "val_acc"), ("placed", "placed_acc"), ("train", "train_acc")):
        gaps = [100 * (teacher[key] - student[key]) for student, teacher in zip(students, teachers, strict=True)]
        parts.append(f"{label} {', '.join(f'{gap:.1f}' for gap in gaps)} (mean {statistics.mean(gaps):.1f})")
    return f"{name} behind its teacher, points per seed: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, trainY.npy, valX.npy, valY.npy")
    parser.add_argument("--models", default="raw,baseline,improved",
                        help="comma-separated registered models to train, and 'raw' for pixels")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="seeds (default 0,1,2)")
    parser.add_argument("--work", type=Path, help="where trained checkpoints go (default: bench-runs/NAME)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                        help="also score this trained checkpoint as row NAME (repeatable; default: none)")
    parser.add_argument("--json", type=Path, help="also write all runs as JSON")
    parser.add_argument("--set", type=lambda text: parse_settings(text, exclude=("seed",)), default={},
                        metavar="SETTING=VALUE,...",
                        help="training settings changed for every model trained here and for a student's "
                             "teacher stage (e.g. epochs=1,batch_size=32 for a smoke test; default: none)")
    args = parser.parse_args(argv)

    data = load_bench(args.bench)
    checkpoints = dict((item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.checkpoint)
    work = args.work or Path("bench-runs") / args.bench.resolve().name
    work.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds
    models = args.models.split(",") + [name for name in checkpoints if name not in args.models.split(",")]

    results: dict[str, list[dict[str, Any]]] = {}
    print(f"benchmark {args.bench.resolve().name}: N_train={len(data['trainX'])} N_val={len(data['valX'])} "
          f"seeds={seeds}")
    print(table_header("model"))
    for model in models:
        results[model] = [run_one(model, seed, data, work, checkpoints, args.set, args.set) for seed in seeds]
        print(summarise(model, results[model]), flush=True)
        teachers = [{**run.pop("teacher"), "train_seconds": float("nan")} for run in results[model]
                    if "teacher" in run]
        if teachers:
            results[f"{model} teacher"] = teachers
            print(summarise(f"{model} teacher", teachers), flush=True)
            print(paired_gaps(model, results[model], teachers), flush=True)
    if args.json:
        for runs in results.values():
            for run in runs:
                run.pop("groups", None)
        args.json.write_text(json.dumps({"benchmark": args.bench.resolve().name, "seeds": seeds,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("accuracy.py", main))
