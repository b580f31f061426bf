"""Snapshots of a training run and resuming from them.

A run that writes OUT keeps OUT_run/ beside it: evenly spaced `step_N.pth` snapshots (model,
settings, history) and history.json. Only the newest snapshot also holds the optimizer, schedule
and objective heads that resuming needs; the older ones are weights only, so that a run's folder
stays a few times the model's size. Every random draw of a step derives from (seed, step), so
resuming from the newest snapshot reaches exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aecluster.atomic import atomic_path
from aecluster.checkpoint import model_from_payload, read_checkpoint, save_checkpoint
from aecluster.errors import UserInputError
from aecluster.registry import TrainSettings

SNAPSHOT_KEYS = ("model", "step", "optimizer", "scheduler", "settings", "history")
RESUME_KEYS = ("optimizer", "scheduler", "heads")  # only the newest snapshot keeps them


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training; `snapshot` is the file to `--resume` from."""

    def __init__(self, snapshot: Path) -> None:
        super().__init__(f"training interrupted; resume with --resume {snapshot}")
        self.snapshot = snapshot


def run_folder(output: str | Path) -> Path:
    """Where the snapshots and history of a run that ends in `output` live: OUT_run/ beside it."""
    output = Path(output)
    return output.with_name(output.stem + "_run")


def snapshot_path(folder: Path, step: int) -> Path:
    """The snapshot file of `step` in run folder `folder`: step_NNNNNNN.pth (sorts by step)."""
    return folder / f"step_{step:07d}.pth"


def save_snapshot(folder: Path, step: int, payload: dict[str, Any], history: dict[str, Any],
                  replace_earlier_run: bool = False) -> Path:
    """Write one snapshot and the run's history.json (each atomically), creating the folder with
    the first one (a run refused earlier leaves no folder; one whose first write fails leaves none
    it made). `replace_earlier_run` then deletes the other step_N.pth files, an earlier run's;
    otherwise the earlier snapshots are kept weights only (`keep_weights_only`)."""
    made = not folder.is_dir()
    folder.mkdir(exist_ok=True)
    path = snapshot_path(folder, step)
    try:
        save_checkpoint(path, payload)
        with atomic_path(folder / "history.json") as temporary:
            temporary.write_text(json.dumps(history, indent=2))
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise
    if replace_earlier_run:
        for stale in folder.glob("step_*.pth"):
            if stale != path:
                stale.unlink()
    else:
        keep_weights_only(folder, path)
    return path


def keep_weights_only(folder: Path, newest: Path) -> None:
    """Rewrite (atomically) each snapshot of `folder` before `newest` that still holds resume
    state without it: the optimizer's moments alone are twice the model, and only the newest
    snapshot is resumed from. Runs after `newest` is written, so a resumable snapshot always exists."""
    for older in sorted(folder.glob("step_*.pth")):
        if older.name >= newest.name:
            continue
        payload = torch.load(older, map_location="cpu", weights_only=True, mmap=True)
        if any(key in payload for key in RESUME_KEYS):
            save_checkpoint(older, {key: value for key, value in payload.items() if key not in RESUME_KEYS})


def newest_snapshot(folder: Path) -> Path | None:
    """The snapshot of the highest step in run folder `folder` (None without one)."""
    return max(folder.glob("step_*.pth"), default=None)


def read_snapshot(path: str | Path) -> dict[str, Any]:
    """A training snapshot's payload, or a one-line error for any other checkpoint."""
    payload = read_checkpoint(path)
    if "step" in payload and "history" in payload and "optimizer" not in payload:
        newest = newest_snapshot(Path(path).parent)
        where = (f"the newest one, {newest}" if newest is not None and newest.name > Path(path).name
                 else "the newest step_N.pth of its run folder")
        raise UserInputError(f"{path}: a weights-only snapshot (step {payload['step']}): only a run's newest "
                             f"snapshot keeps the optimizer state that resuming needs; resume from {where}")
    missing = [key for key in SNAPSHOT_KEYS if key not in payload]
    if missing:
        raise UserInputError(f"{path}: not a training snapshot (no {', '.join(missing)}); resume from a "
                             "step_N.pth file in the run folder (OUT_run/, or OUT_run/teacher_run/ for a teacher)")
    return payload


@dataclass(frozen=True)
class Snapshot:
    """A training snapshot read once (`open_snapshot`): the path it was named by, for messages,
    and its payload, handed down the stages so that no one reads the file again."""

    source: str | Path
    payload: dict[str, Any]


def open_snapshot(resume: str | Path | Snapshot | None) -> Snapshot | None:
    """`resume` as a `Snapshot`: a path is read (`read_snapshot`), a `Snapshot` or None is kept."""
    if resume is None or isinstance(resume, Snapshot):
        return resume
    return Snapshot(resume, read_snapshot(resume))


def settings_of(payload: dict[str, Any], source: str | Path) -> TrainSettings:
    """The training settings a checkpoint, snapshot or stage plan was made with (defaults for
    settings that did not exist yet), or a one-line error."""
    try:
        return TrainSettings(**payload["settings"])
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"{source}: its training settings are missing or unreadable ({exc})") from None


def check_inputs(snapshot: Snapshot, inputs: dict[str, str | None]) -> None:
    """Refuse to resume a run on other training images, or distilled from another teacher, than
    the snapshot's (fingerprints `images` from `images_digest`, `teacher` from `weights_digest`;
    a snapshot from before fingerprints were kept is trusted)."""
    advice = {"images": ("set of training images", "resume with the images the run had"),
              "teacher": ("teacher", "resume with the teacher the run was distilled from (train --model "
                                     "keeps it in OUT_run/teacher.pth)")}
    for key, value in inputs.items():
        recorded = snapshot.payload.get(key, value)
        if recorded != value:
            noun, hint = advice[key]
            raise UserInputError(f"{snapshot.source}: a different {noun} from the run's (fingerprint "
                                 f"{value or 'none'}; the run's {recorded or 'none'}); {hint}")


def restore(snapshot: Snapshot, model_name: str, model: nn.Module, heads: nn.Module,
            optimizer: Any, scheduler: Any, total_steps: int,
            inputs: dict[str, str | None]) -> tuple[int, dict[str, Any]]:
    """Load a snapshot's state into a fresh run; return (step reached, history so far). `inputs`
    are the fingerprints of this run's training images and teacher (`check_inputs`)."""
    payload, source = snapshot.payload, snapshot.source
    if payload["model"] != model_name:
        raise UserInputError(f"{source}: snapshot of model {payload['model']!r}, but --model is {model_name!r}")
    check_inputs(snapshot, inputs)
    step = int(payload["step"])
    if step > total_steps:
        raise UserInputError(f"{source}: snapshot is at step {step}, beyond this run's {total_steps} steps; "
                             "resume with the training images the interrupted run had")
    model.load_state_dict(model_from_payload(payload, str(source)).state_dict())
    heads.load_state_dict(payload.get("heads", {}))
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    return step, payload["history"]
