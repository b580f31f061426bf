"""Training-time benchmark: the time `train` plans against the time training takes.

usage: python -m benchmarks.training_time TRAINX [--models baseline,improved] [--limit N] [--epochs N]
                                          [--work DIR]

For each model, `python -m aecluster train --model MODEL IMAGES OUT` in a fresh process: the
command `train_MODEL.sh` runs (with --epochs, that option added), on the first --limit images
of TRAINX (default all). Its stderr gives the plan's estimate of the training time, the estimate
refreshed after the first epoch (the time since the plan plus the time that line says is
left), and the time training really took (from the plan to the last line); the whole command's
wall time, imports and the plan's own measuring included, is also shown. One Markdown row per
model.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.cli.args import positive_int
from aecluster.cli.errors import run_reporting_errors
from aecluster.data import load_images
from aecluster.errors import UserInputError
from aecluster.registry import MODEL_NAMES
from benchmarks.arguments import ROOT, benchmark_parser

UNITS = {"s": 1, "min": 60, "h": 3600}
ABOUT = re.compile(r"about (\d+) (s|min|h)\b|under a second")


def about_seconds(line: str) -> float:
    """The seconds of the last "about N s|min|h" (or "under a second": 0) in a line the trainer
    printed (`aecluster.training.about`)."""
    found = list(ABOUT.finditer(line))
    if not found:
        raise ValueError(f"no 'about N s|min|h' or 'under a second' in {line!r}")
    number, unit = found[-1].groups()
    return 0.0 if number is None else int(number) * UNITS[unit]


def timed_lines(command: list[str]) -> tuple[list[tuple[float, str]], int]:
    """Run `command`; its stderr lines (a progress bar's carriage returns end lines too), each
    with the seconds since the start at which it arrived, and the exit code."""
    start = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT) as process:
        lines = [(time.monotonic() - start, line.rstrip("\n")) for line in process.stderr]
        code = process.wait()
    return lines + [(time.monotonic() - start, "")], code


def read_times(lines: Iterable[tuple[float, str]]) -> dict[str, float]:
    """Plan, refreshed estimate and measured seconds of one `train` run from its timed stderr lines."""
    lines = list(lines)
    plan_at, plan = next((at, about_seconds(line)) for at, line in lines if line.startswith("plan: "))
    refreshed = next((at - plan_at + about_seconds(line) for at, line in lines
                      if re.match(r"train '[^']+': .*epoch 1 of \d+ took", line)), float("nan"))
    wrote = next(at for at, line in lines if line.startswith("wrote "))
    return {"plan": plan, "refreshed": refreshed, "training": wrote - plan_at, "command": lines[-1][0]}


def duration(seconds: float) -> str:
    """Seconds as a table shows them: "48 s", "7.8 min", "-" when unknown."""
    if math.isnan(seconds):  # a run of one epoch has no refreshed estimate
        return "-"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def time_model(model: str, images: Path, work: Path, epochs: int | None) -> dict[str, Any]:
    """Train `model` on `images` in a fresh process; its times (see `read_times`)."""
    command = [sys.executable, "-m", "aecluster", "train", "--model", model, str(images), str(work / f"{model}.pth")]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    lines, code = timed_lines(command)
    if code != 0:
        tail = "\n".join(line for _, line in lines[-5:])
        raise UserInputError(f"{' '.join(command[1:])} failed (exit {code}):\n{tail}")
    return read_times(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("trainx", help="training images (.npy), e.g. two_source/trainX.npy")
    parser.add_argument("--models", default="baseline,improved",
                        help=f"comma-separated models to time (of {', '.join(MODEL_NAMES)})")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="train on the first N images (default all)")
    parser.add_argument("--epochs", type=positive_int, help="epochs of every model (default: each model's own)")
    parser.add_argument("--work", type=Path, help="where the subset and checkpoints go (default: a temporary folder)")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    unknown = [model for model in models if model not in MODEL_NAMES]
    if unknown:
        raise UserInputError(f"--models: unknown model {unknown[0]!r}; choose from {', '.join(MODEL_NAMES)}")
    images = load_images(args.trainx, min_images=2)
    count = min(args.limit or len(images), len(images))
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        subset = Path(args.trainx).resolve()
        if count < len(images):
            subset = work / f"trainX_first{count}.npy"
            np.save(subset, np.asarray(images[:count]))
        epochs = args.epochs or "each model's own"
        print(f"{count:,} images of {args.trainx}; epochs: {epochs}")
        print("| model | plan | after epoch 1 | training took | command took |")
        print("|---|---|---|---|---|")
        for model in models:
            times = time_model(model, subset, work, args.epochs)
            print(f"| `{model}` | {duration(times['plan'])} | {duration(times['refreshed'])} | "
                  f"{duration(times['training'])} | {duration(times['command'])} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("training_time.py", main))
