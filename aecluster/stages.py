"""The pipeline's training stages: a teacher stage and a student stage, each from its config.

A config without a teacher is trained alone (`train_stage`). A student config (one naming its
teacher) runs in order (`run_stages`): the teacher stage into OUT_run/teacher.pth (snapshots in
OUT_run/teacher_run/, reused when trained with the same settings), then the student stage into
OUT. `--resume` with a snapshot of either phase continues that phase and then goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.checkpoint import atomic_path, model_from_payload, read_checkpoint
from aecluster.distributed import distributed_rank
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder
from aecluster.registry import TrainSettings, get_spec
from aecluster.snapshots import read_snapshot, run_folder
from aecluster.training import Trainer


def settings_of(payload: dict[str, Any], source: str | Path) -> TrainSettings:
    """The training settings a checkpoint or snapshot was made with (defaults for settings that
    did not exist yet), or a one-line error."""
    try:
        return TrainSettings(**payload["settings"])
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"{source}: its training settings are missing or unreadable ({exc})") from None


def teacher_path(output: str | Path) -> Path:
    """Where a student's run keeps its teacher: OUT_run/teacher.pth."""
    return run_folder(output) / "teacher.pth"


def train_stage(name: str, images: np.ndarray, output: str | Path | None, settings: TrainSettings, *,
                teacher: Autoencoder | None = None, resume: str | Path | None = None,
                recipe: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                device: str | None = None, progress: bool = True,
                evaluate: Callable[[Autoencoder], float] | None = None) -> Autoencoder:
    """One stage: train config `name` on `images` (distilled from `teacher` when given)."""
    trainer = Trainer(name, settings, recipe=recipe, device=device, progress=progress, evaluate=evaluate,
                      teacher=teacher, config=config)
    return trainer.fit(images, output, resume=resume)


def teacher_stage(name: str, images: np.ndarray, output: Path, settings: TrainSettings, *,
                  resume: str | Path | None = None, device: str | None = None,
                  progress: bool = True) -> Autoencoder:
    """The teacher stage: the model in `output` if it was trained with `settings`, else trained
    now (or continued from `resume`) into `output`."""
    if resume is None and output.is_file():
        payload = read_checkpoint(output)
        if payload.get("model") == name and "settings" in payload and settings_of(payload, output) == settings:
            return model_from_payload(payload, str(output))
    return train_stage(name, images, output, settings, resume=resume, device=device, progress=progress)


def _planned(output: str | Path, resuming_teacher: bool, settings: TrainSettings,
             config: dict[str, Any] | None) -> tuple[TrainSettings, dict[str, Any] | None]:
    """The student's settings and config for this run: those recorded in OUT_run/stages.json when
    resuming the teacher phase (so that the resume command needs no options), else the given
    ones, recorded there."""
    plan = run_folder(output) / "stages.json"
    if resuming_teacher and plan.is_file():
        recorded = json.loads(plan.read_text())
        return TrainSettings(**recorded["settings"]), recorded["config"]
    run_folder(output).mkdir(exist_ok=True)
    if distributed_rank()[0] == 0:
        with atomic_path(plan) as temporary:
            temporary.write_text(json.dumps({"settings": asdict(settings), "config": config}, indent=2))
    return settings, config


def run_stages(name: str, images: np.ndarray, output: str | Path | None, settings: TrainSettings, *,
               resume: str | Path | None = None, say: Callable[[str], None] = lambda message: None,
               **options: Any) -> Autoencoder:
    """Every stage of config `name` in order; `options` go to `train_stage` of the last stage.

    A student config first gets its teacher (trained with the teacher config's settings and the
    student's seed). `resume` may be a snapshot of the teacher phase (in OUT_run/teacher_run/),
    which continues the teacher and then trains the student with the settings this run
    recorded in OUT_run/stages.json, or of the student phase.
    """
    spec = get_spec(name)
    if spec.teacher is None:
        return train_stage(name, images, output, settings, resume=resume, **options)
    snapshot = read_snapshot(resume) if resume is not None else None
    teacher_resume = resume if snapshot is not None and snapshot["model"] == spec.teacher else None
    if snapshot is not None and teacher_resume is None and snapshot["model"] != name:
        raise UserInputError(f"{resume}: snapshot of model {snapshot['model']!r}, but --model is {name!r} "
                             f"(whose teacher is {spec.teacher!r})")
    teacher_settings = (settings_of(snapshot, resume) if teacher_resume is not None
                        else TrainSettings.for_model(spec.teacher, seed=settings.seed))
    device, progress = options.get("device"), options.get("progress", True)
    if output is not None:
        settings, options["config"] = _planned(output, teacher_resume is not None, settings, options.get("config"))
    if output is None:
        say(f"stage 1/2: teacher {spec.teacher!r}, {teacher_settings.epochs} epochs")
        teacher = train_stage(spec.teacher, images, None, teacher_settings, device=device, progress=progress)
    else:
        path = teacher_path(output)
        if snapshot is not None and teacher_resume is None and not path.is_file():
            raise UserInputError(f"{resume}: the student phase needs its teacher {path}, which is missing")
        say(f"stage 1/2: teacher {spec.teacher!r}, {teacher_settings.epochs} epochs -> {path}")
        teacher = teacher_stage(spec.teacher, images, path, teacher_settings, resume=teacher_resume,
                                device=device, progress=progress)
    say(f"stage 2/2: student {name!r} distilled from it, {settings.epochs} epochs -> {output or 'memory'}")
    student_resume = resume if teacher_resume is None else None
    return train_stage(name, images, output, settings, teacher=teacher, resume=student_resume, **options)
