"""Helpers the benchmark scripts share: argument types, loading a benchmark folder, training or
reusing and scoring one model and seed, and the rows of the accuracy table."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.api import AEClusterer
from aecluster.checkpoint import read_checkpoint
from aecluster.data import load_images, load_labels
from aecluster.encoding import fit_groups
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy
from aecluster.registry import TrainSettings, get_spec
from aecluster.snapshots import fallback_teacher_path, run_folder
from aecluster.stages import run_stages


def parse_settings(text: str, whole: str | None = None, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """"epochs=1,warmup_epochs=none" -> {"epochs": 1, "warmup_epochs": None}: TrainSettings
    changes with each field's type ("none" for a setting that may be None), or an argparse error
    naming `whole` (the full option value)."""
    hints = {name: hint for name, hint in typing.get_type_hints(TrainSettings).items() if name not in exclude}
    settings: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in hints:
            raise argparse.ArgumentTypeError(f"unknown setting {name!r} in {whole or text!r}; "
                                             f"choose from {', '.join(sorted(hints))}")
        types = [option for option in typing.get_args(hints[name]) or (hints[name],) if option is not type(None)]
        optional = len(types) < len(typing.get_args(hints[name]) or (hints[name],))
        try:
            settings[name] = None if optional and value.lower() == "none" else types[0](value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad value {value!r} for {name} in {whole or text!r}") from None
    return settings


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


def placed(fitted: AEClusterer, images: np.ndarray) -> np.ndarray:
    """Labels of `images` placed into `fitted`'s groups: saved, reloaded and predicted when the
    recipe can be saved (pca, wpca and l2 links), else predicted in memory (t-SNE can place too)."""
    try:
        fitted.check_savable()
    except UserInputError:
        return fitted.predict(images)
    with tempfile.TemporaryDirectory() as folder:
        fitted.save(Path(folder) / "model.pth")
        return AEClusterer.from_checkpoint(Path(folder) / "model.pth").predict(images)


def score_checkpoint(path: Path, data: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Val and train ACC of one checkpoint, predict time on trainX, and the groups it formed.

    valX is clustered alone ("val"), and also placed into the groups fitted on trainX ("placed"):
    500 images clustered alone can settle on a split that a few changed codes move, the placed
    groups show the same images without that. Placing goes through a saved model, as
    `aecluster cluster --save-model` then `aecluster predict` would, when the recipe can be saved.
    """
    clock = time.perf_counter()
    fitted = AEClusterer.from_checkpoint(path, random_state=seed).fit(data["trainX"])
    predict_seconds = time.perf_counter() - clock
    val_groups = AEClusterer.from_checkpoint(path, random_state=seed).fit(data["valX"]).labels_
    placed_groups = placed(fitted, data["valX"])
    return {"train_acc": clustering_accuracy(fitted.labels_, data["trainY"]),
            "val_acc": clustering_accuracy(val_groups, data["valY"]),
            "placed_acc": clustering_accuracy(placed_groups, data["valY"]),
            "predict_seconds": predict_seconds,
            "groups": {"train": fitted.labels_, "val": val_groups, "placed": placed_groups}}


def settings_tag(overrides: dict[str, Any] | None) -> str:
    """The part of a checkpoint's name that says which settings were changed ("_epochs1")."""
    return "".join(f"_{key}{setting_text(value)}" for key, value in sorted((overrides or {}).items()))


def run_one(model: str, seed: int, data: dict[str, np.ndarray], work: Path,
            checkpoints: dict[str, Path], overrides: dict[str, Any] | None = None,
            teacher_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or reuse) and score one model and seed; `overrides` change its training settings
    and name its checkpoint after them, `teacher_overrides` those of a student's teacher stage."""
    if model == "raw":
        clock = time.perf_counter()
        train_groups = raw_pixels(data["trainX"], seed)
        seconds = time.perf_counter() - clock
        return {"train_acc": clustering_accuracy(train_groups, data["trainY"]),
                "val_acc": clustering_accuracy(raw_pixels(data["valX"], seed), data["valY"]),
                "train_seconds": 0.0, "predict_seconds": seconds}
    train_seconds = float("nan")
    path = checkpoints.get(model, work / f"{model}{settings_tag(overrides)}_seed{seed}.pth")
    if model not in checkpoints:
        teacher_name = get_spec(model).teacher
        trained_teacher = work / f"{teacher_name}{settings_tag(teacher_overrides)}_seed{seed}.pth"
        if teacher_name and trained_teacher.is_file():
            # A teacher this benchmark already trained (same settings and seed) is not trained twice.
            run_folder(path).mkdir(exist_ok=True)
            if not (run_folder(path) / "teacher.pth").exists():
                shutil.copyfile(trained_teacher, run_folder(path) / "teacher.pth")
        if not path.exists():
            clock = time.perf_counter()
            run_stages(model, data["trainX"], path, TrainSettings.for_model(model, seed=seed, **(overrides or {})),
                       progress=sys.stderr.isatty(), teacher_overrides=teacher_overrides)
            train_seconds = time.perf_counter() - clock
    scores = {**score_checkpoint(path, data, seed), "train_seconds": train_seconds}
    # a student its config fell back to (`best` -> `best_cnn`) was distilled from the fallback teacher
    fallback = fallback_teacher_path(path)
    fell_back = (fallback.is_file()
                 and get_spec(read_checkpoint(path)["model"]).teacher == read_checkpoint(fallback)["model"])
    teacher = fallback if fell_back else run_folder(path) / "teacher.pth"
    if teacher.is_file():
        scores["teacher"] = score_checkpoint(teacher, data, seed)
        agreement = group_agreement(scores, scores["teacher"])
        scores.update({f"{split}_agreement": value for split, value in agreement.items()})
    return scores


def group_agreement(student: dict[str, Any], teacher: dict[str, Any]) -> dict[str, float]:
    """Label-free fidelity of a student, per split of `score_checkpoint`'s groups (train, val,
    placed): how often it groups images as its teacher does (best label matching)."""
    return {split: clustering_accuracy(student["groups"][split], teacher["groups"][split])
            for split in ("train", "val", "placed")}


def table_header(first: str) -> str:
    """The header of the table whose rows `summarise` prints."""
    return (f"| {first:14} | val ACC (median ± std) | train ACC (median ± std) | train s | predict s "
            "| val agreement with teacher | train agreement | val ACC placed in train's groups "
            "| placed agreement |\n" + "|---" * 9 + "|")


def summarise(name: str, runs: list[dict[str, Any]]) -> str:
    """One row of `table_header`'s table: median ± spread over the seeds' `runs` of model `name`."""
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
