"""Accuracy benchmark: raw-pixel PCA+KMeans and the registered models on one benchmark folder.

usage: python benchmarks/accuracy.py BENCH_DIR [--models raw,baseline,improved] [--seeds 0,1,2]
                                     [--work DIR] [--checkpoint NAME=PATH ...] [--json OUT]

For every model and seed: train on BENCH_DIR/trainX.npy with the model's shipped defaults (or
reuse a checkpoint already in --work), then cluster trainX and, separately, valX alone with the
checkpoint's own recipe. Labels (trainY, valY) are used only to score. Prints val and train ACC
(median and std over seeds) and wall times of training and of predicting trainX.
`--checkpoint NAME=PATH` scores an existing checkpoint instead of training one. A checkpoint
distilled from a teacher (`best`, or one whose PATH_run/teacher.pth exists) also gets a row for
that teacher, so the compressed model can be compared with its uncompressed teacher, and the
label-free agreement of its groups with the teacher's, then a line of how many points each seed's
student is behind its own teacher; a teacher trained earlier in the same
--work folder (`--models teacher,best`) is reused rather than trained again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.api import AEClusterer, fit_groups
from aecluster.data import load_images, load_labels
from aecluster.errors import run_reporting_errors
from aecluster.metrics import clustering_accuracy
from aecluster.models import get_spec
from aecluster.stages import run_stages
from aecluster.training import TrainSettings, run_folder


def number_list(convert: Callable[[str], float]) -> Callable[[str], list]:
    """An argparse type for comma-separated numbers ("0,1,2"), with a one-line error otherwise."""
    def parse(text: str) -> list:
        try:
            values = [convert(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {convert.__name__} values such as 0,1,2, found {text!r}") from None
        if any(value < 0 for value in values):
            raise argparse.ArgumentTypeError(f"expected non-negative values, found {text!r}")
        return values

    return parse


def load_bench(folder: Path) -> dict[str, np.ndarray]:
    """trainX, valX (memory-mapped) and the labels that only score them, of one benchmark folder."""
    data = {name: load_images(folder / f"{name}.npy") for name in ("trainX", "valX")}
    data["trainY"] = load_labels(folder / "trainY.npy", len(data["trainX"]))
    data["valY"] = load_labels(folder / "valY.npy", len(data["valX"]))
    return data


def setting_text(value: Any) -> str:
    """A training setting as it appears in checkpoint names and table rows (300.0 -> "300")."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def raw_pixels(images: np.ndarray, seed: int) -> np.ndarray:
    """The reference point: PCA to 50 dimensions on raw pixels, then KMeans with 2 clusters."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return fit_groups(flat, "pca:50", "kmeans", random_state=seed)[1].labels_


def score_checkpoint(path: Path, data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Val and train ACC of one checkpoint, predict time on trainX, and the groups it formed.

    valX is clustered alone ("val"), and also placed into the groups fitted on trainX ("placed"):
    500 images clustered alone can settle on a split that a few changed codes move, the placed
    groups show the same images without that.
    """
    clock = time.perf_counter()
    fitted = AEClusterer.from_checkpoint(path, random_state=seed).fit(data["trainX"])
    predict_seconds = time.perf_counter() - clock
    val_groups = AEClusterer.from_checkpoint(path, random_state=seed).fit(data["valX"]).labels_
    placed_groups = fitted.predict(data["valX"])
    return {"train_acc": clustering_accuracy(fitted.labels_, data["trainY"]),
            "val_acc": clustering_accuracy(val_groups, data["valY"]),
            "placed_acc": clustering_accuracy(placed_groups, data["valY"]),
            "predict_seconds": predict_seconds,
            "groups": {"train": fitted.labels_, "val": val_groups, "placed": placed_groups}}


def run_one(model: str, seed: int, data: dict[str, np.ndarray], work: Path,
            checkpoints: dict[str, Path], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or reuse) and score one model and seed; `overrides` change its training settings
    and name its checkpoint after them."""
    if model == "raw":
        clock = time.perf_counter()
        train_groups = raw_pixels(data["trainX"], seed)
        seconds = time.perf_counter() - clock
        return {"train_acc": clustering_accuracy(train_groups, data["trainY"]),
                "val_acc": clustering_accuracy(raw_pixels(data["valX"], seed), data["valY"]),
                "train_seconds": 0.0, "predict_seconds": seconds}
    train_seconds = float("nan")
    tag = "".join(f"_{key}{setting_text(value)}" for key, value in sorted((overrides or {}).items()))
    path = checkpoints.get(model, work / f"{model}{tag}_seed{seed}.pth")
    if model not in checkpoints:
        teacher_name = get_spec(model).teacher
        if teacher_name and (work / f"{teacher_name}_seed{seed}.pth").is_file():
            # A teacher this benchmark already trained (same defaults and seed) is not trained twice.
            run_folder(path).mkdir(exist_ok=True)
            if not (run_folder(path) / "teacher.pth").exists():
                shutil.copyfile(work / f"{teacher_name}_seed{seed}.pth", run_folder(path) / "teacher.pth")
        if not path.exists():
            clock = time.perf_counter()
            run_stages(model, data["trainX"], path, TrainSettings.for_model(model, seed=seed, **(overrides or {})),
                       progress=sys.stderr.isatty())
            train_seconds = time.perf_counter() - clock
    scores = {**score_checkpoint(path, data, seed), "train_seconds": train_seconds}
    teacher = run_folder(path) / "teacher.pth"
    if teacher.is_file():
        scores["teacher"] = score_checkpoint(teacher, data, seed)
        # Label-free fidelity of the student: how often it groups images as its teacher does.
        for split in ("train", "val", "placed"):
            scores[f"{split}_agreement"] = clustering_accuracy(
                scores["groups"][split], scores["teacher"]["groups"][split])
    return scores


def table_header(first: str) -> str:
    """The header of the table whose rows `summarise` prints."""
    return (f"| {first:14} | val ACC (median ± std) | train ACC (median ± std) | train s | predict s "
            "| val agreement with teacher | train agreement | val ACC placed in train's groups "
            "| placed agreement |\n" + "|---" * 9 + "|")


def summarise(name: str, runs: list[dict[str, Any]]) -> str:
    def stat(key: str) -> str:
        if not all(key in r for r in runs):
            return "—"
        values = [r[key] for r in runs]
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        return f"{statistics.median(values):.3f} ± {spread:.3f}"

    train_s = [r["train_seconds"] for r in runs if r["train_seconds"] == r["train_seconds"]]
    train_text = f"{statistics.median(train_s):8.1f}" if train_s else "  reused"
    return (f"| {name:14} | {stat('val_acc')} | {stat('train_acc')} | {train_text} | "
            f"{statistics.median(r['predict_seconds'] for r in runs):7.1f} | {stat('val_agreement')} | "
            f"{stat('train_agreement')} | {stat('placed_acc')} | {stat('placed_agreement')} |")


def paired_gaps(name: str, students: list[dict[str, Any]], teachers: list[dict[str, Any]]) -> str:
    """How many points each seed's student is behind its own teacher (negative: ahead), and the
    mean: medians over seeds compare different seeds' runs, these pairs do not."""
    parts = []
    for label, key in (("val", "val_acc"), ("placed", "placed_acc"), ("train", "train_acc")):
        gaps = [100 * (teacher[key] - student[key]) for student, teacher in zip(students, teachers, strict=True)]
        parts.append(f"{label} {', '.join(f'{gap:.1f}' for gap in gaps)} (mean {statistics.mean(gaps):.1f})")
    return f"{name} behind its teacher, points per seed: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, trainY.npy, valX.npy, valY.npy")
    parser.add_argument("--models", default="raw,baseline,improved")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="seeds (default 0,1,2)")
    parser.add_argument("--work", type=Path, help="where trained checkpoints go (default: bench-runs/NAME)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--json", type=Path, help="also write all runs as JSON")
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
        results[model] = [run_one(model, seed, data, work, checkpoints) for seed in seeds]
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
