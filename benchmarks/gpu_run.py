"""The GPU run as one prepared command (docs/gpu.md): train_best.sh's GPU
configuration on each benchmark, timed and scored.

usage: python -m benchmarks.gpu_run BENCH [BENCH ...] --out DIR [--seed 0] [--teacher-epochs N]
                                        [--student-epochs N] [--budget SECONDS] [--hardware auto]

BENCH is a benchmark packed by `python -m benchmarks.gpu_data` (NAME.npz) or a benchmark folder
(trainX.npy, valX.npy, trainY.npy, valY.npy). For each BENCH in turn:
1. Plan: the time of each stage, measured on a few of its steps on this device, for the epochs
   asked (default: the configs', resnet18_teacher 300 and best_gpu 150). If that would overrun
   this benchmark's share of what is left of --budget, both stages' epochs are scaled down to fit,
   and the run says so (and records it).
2. Train: `aecluster train --model best --hardware auto`, the command train_best.sh runs, which on
   a CUDA device trains the GPU configuration: the resnet18_teacher stage, then the best_gpu student.
3. Score: val and train ACC of teacher and student with their own recipe, and how often the
   student groups images as its teacher does.
4. Write DIR/NAME_best.pth (the student, as train_best.sh writes it), DIR/NAME_codes.npz (float16
   codes of trainX and valX by teacher and student: the 45 MB teacher is too big to come back
   from the device) and DIR/results.json (timings, device, epochs, scores), the last rewritten
   after each benchmark so that a cut-off run keeps those done.
The clustering stage is then chosen on a CPU, label-free, from the codes:
`python -m benchmarks.clustering_stage BENCH_DIR --codes DIR/NAME_codes.npz` (docs/clustering.md).
Checkpoints and snapshots go to --work (default: a temporary folder). See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.cli.args import positive_float, positive_int, seed_value
from aecluster.cli.errors import run_reporting_errors
from aecluster.devices import default_device
from aecluster.errors import UserInputError
from aecluster.registry import HARDWARE, TrainSettings, get_spec, resolve_hardware
from aecluster.snapshots import run_folder
from benchmarks.arguments import benchmark_parser

START = time.monotonic()
# Held back from each benchmark's training share: scoring (two encoders' codes and groups) plus
# what the plan's step times leave out (snapshots, checkpoints, each stage's start).
RESERVE_SECONDS = 90.0


def benchmark_name(path: Path) -> str:
    """NAME of a packed benchmark NAME.npz or of a benchmark folder: its files' and results' key."""
    return path.stem if path.suffix == ".npz" else path.resolve().name


def load_benchmark(path: Path) -> dict[str, np.ndarray]:
    """trainX, valX, trainY, valY of a packed benchmark (.npz) or a benchmark folder."""
    from benchmarks.common import load_bench
    from benchmarks.gpu_data import load_packed

    data = load_packed(path) if path.suffix == ".npz" else load_bench(path)
    missing = [name for name in ("trainY", "valY") if name not in data]
    if missing:
        raise UserInputError(f"{path}: no {', '.join(missing)}; they are needed to score (never to choose)")
    return data


def planned_epochs(name: str, images: np.ndarray, epochs: list[int], seconds_left: float,
                   seed: int) -> tuple[list[int], list[float]]:
    """Epochs of (teacher, student) of GPU config `name` that fit `seconds_left`, scaled down
    together where needed, and the planned seconds of each stage."""
    from aecluster.plans import recipe_seconds

    stages = [get_spec(name).teacher, name]
    registered = [TrainSettings.for_model(stage).epochs for stage in stages]
    seconds = [full * wanted / epochs_then
               for full, wanted, epochs_then in zip(recipe_seconds(name, images, seed=seed), epochs, registered,
                                                    strict=True)]
    if sum(seconds) > seconds_left:
        factor = max(seconds_left, 0.0) / sum(seconds)
        scaled = [max(1, int(wanted * factor)) for wanted in epochs]
        seconds = [part * new / old for part, new, old in zip(seconds, scaled, epochs, strict=True)]
        epochs = scaled
    return epochs, seconds


def train_config(trainx: Path, output: Path, hardware: str, seed: int, epochs: list[int]) -> float:
    """Train as train_best.sh does (`train --model best --hardware HARDWARE`); returns the wall seconds."""
    from aecluster.cli import main

    clock = time.perf_counter()
    code = main(["train", "--model", "best", "--hardware", hardware, str(trainx), str(output), "--seed", str(seed),
                 "--teacher-epochs", str(epochs[0]), "--epochs", str(epochs[1]), "--quiet"])
    if code != 0:
        raise UserInputError(f"training {output} failed (exit {code})")
    return time.perf_counter() - clock


def stage_timing(folder: Path) -> dict[str, float]:
    """Training seconds (epochs only: no start-up, no writing) and images/s of one stage's run."""
    epochs = json.loads((folder / "history.json").read_text())["epochs"]
    return {"seconds": float(sum(epoch["seconds"] for epoch in epochs)),
            "images_per_second": float(epochs[-1]["images_per_second"])}


def score(student: Path, data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Teacher's and student's ACC, their agreement, and their codes."""
    from aecluster.snapshots import teacher_path
    from benchmarks.clustering_stage import checkpoint_codes
    from benchmarks.common import group_agreement, score_checkpoint

    scores = {"student": score_checkpoint(student, data, seed), "teacher": score_checkpoint(teacher_path(student),
                                                                                            data, seed)}
    agreement = group_agreement(scores["student"], scores["teacher"])
    for encoder in scores.values():
        encoder.pop("groups")
    return {**scores, "agreement": agreement, "codes": checkpoint_codes(student, data)}


def report(name: str, result: dict[str, Any]) -> None:
    """Print one benchmark's scores."""
    print(f"{name}: teacher val / train ACC {result['teacher']['val_acc']:.3f} / {result['teacher']['train_acc']:.3f}, "
          f"student {result['student']['val_acc']:.3f} / {result['student']['train_acc']:.3f}; student-teacher "
          "group agreement train / val / val placed "
          + " / ".join(f"{result['agreement'][split]:.3f}" for split in ("train", "val", "placed")))


def run_benchmark(bench: Path, args: argparse.Namespace, work: Path, share: float) -> dict[str, Any]:
    """Plan, train, score and write one benchmark; returns its entry of results.json."""
    import torch

    name = benchmark_name(bench)
    data = load_benchmark(bench)
    trainx = work / f"{name}_trainX.npy"
    np.save(trainx, data["trainX"])
    device = default_device()
    config = resolve_hardware("best", args.hardware, device == "cuda")
    stages = [get_spec(config).teacher, config]
    wanted = [args.teacher_epochs or TrainSettings.for_model(stages[0]).epochs,
              args.student_epochs or TrainSettings.for_model(config).epochs]
    epochs, plan = planned_epochs(config, data["trainX"], wanted, share - RESERVE_SECONDS, args.seed)
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"{name}: {len(data['trainX'])} training images on {device_name}; plan: {stages[0]} {epochs[0]} epochs "
          f"(about {plan[0]:.0f} s), then {config} {epochs[1]} epochs (about {plan[1]:.0f} s)"
          + (f"; scaled down from {wanted[0]} and {wanted[1]} epochs to fit {share:.0f} s" if epochs != wanted else ""),
          flush=True)
    output = work / f"{name}_best.pth"
    wall = train_config(trainx, output, args.hardware, args.seed, epochs)
    with atomic_path(args.out / f"{name}_best.pth") as temporary:  # before scoring, which could fail
        shutil.copyfile(output, temporary)
    clock = time.perf_counter()
    result = score(output, data, args.seed)
    codes = result.pop("codes")
    with atomic_path(args.out / f"{name}_codes.npz") as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **{f"{encoder}_{split}": values.astype(np.float16)
                            for encoder, splits in codes.items() for split, values in splits.items()})
    result.update({"device": device_name, "config": config, "teacher_config": stages[0], "seed": args.seed,
                   "epochs": {"teacher": epochs[0], "student": epochs[1]}, "epochs_asked": wanted,
                   "scaled_to_budget": epochs != wanted, "planned_seconds": plan, "train_wall_seconds": wall,
                   "teacher_stage": stage_timing(run_folder(output) / "teacher_run"),
                   "student_stage": stage_timing(run_folder(output)), "score_seconds": time.perf_counter() - clock})
    report(name, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("benchmarks", nargs="+", type=Path, help="packed benchmarks (NAME.npz) or benchmark folders")
    parser.add_argument("--out", type=Path, required=True, help="where checkpoints, codes and results.json go")
    parser.add_argument("--seed", type=seed_value, default=0, help="training seed")
    parser.add_argument("--teacher-epochs", type=positive_int, help="teacher epochs (default: the config's)")
    parser.add_argument("--student-epochs", type=positive_int, help="student epochs (default: the config's)")
    parser.add_argument("--budget", type=positive_float, default=540.0,
                        help="seconds this whole run may take (from its start): each benchmark gets an even "
                             "share of what is left, its epochs scaled down if the measured plan overruns it")
    parser.add_argument("--hardware", choices=HARDWARE, default="auto",
                        help="train_best.sh's (auto: the GPU configuration on a CUDA device); gpu forces it elsewhere")
    parser.add_argument("--work", type=Path, help="checkpoints and snapshots (default: a temporary folder)")
    args = parser.parse_args(argv)
    missing = [str(bench) for bench in args.benchmarks if not bench.exists()]
    if missing:
        raise UserInputError(f"{', '.join(missing)}: no such benchmark; expected NAME.npz from "
                             "`python -m benchmarks.gpu_data` or a benchmark folder")
    if args.hardware == "auto" and default_device() != "cuda":
        raise UserInputError("no CUDA device is visible, so train_best.sh's configuration would be the CPU one "
                             "(about 17 min a benchmark on two cores); --hardware gpu forces the GPU one here")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for index, bench in enumerate(args.benchmarks):
            share = (args.budget - (time.monotonic() - START)) / (len(args.benchmarks) - index)
            results[benchmark_name(bench)] = run_benchmark(bench, args, work, share)
            with atomic_path(args.out / "results.json") as path:
                path.write_text(json.dumps({"total_seconds": time.monotonic() - START, "benchmarks": results},
                                           indent=2))
    print(f"done in {time.monotonic() - START:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("gpu_run.py", main))
