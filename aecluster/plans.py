"""How long training will take, and the plan a student's run records.

A stage's time is measured, not modelled: `step_seconds` times a few steps of the real trainer
on this machine, `estimate_seconds` scales that to the stage's steps (or times a patch
dictionary's fit), `recipe_seconds` does so for every stage of a config. `planned` keeps a
student's settings in OUT_run/stages.json, so that resuming its teacher phase needs no options.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.distributed import distributed_rank
from aecluster.encoding import encode_images
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder, build_model
from aecluster.patches import fit_seconds
from aecluster.registry import TrainSettings, get_spec, model_config
from aecluster.snapshots import fallback_teacher_path, run_folder, settings_of
from aecluster.training import Trainer, about, epoch_batches


def step_seconds(name: str, images: np.ndarray, settings: TrainSettings, *, teacher: Autoencoder | None = None,
                 config: dict[str, Any] | None = None, device: str | None = None, steps: int = 3) -> float:
    """Seconds of one training step of config `name` with `settings` on `device`: `steps` steps
    on a slice of the images less one, both timed after a warm-up step, so that start-up costs
    (kernel choices, allocator, imports) do not count. On a machine shared with other work it is
    as noisy as the load.

    Each timing trains one epoch on the first batches of `images` (one batch, or `steps`), so
    the difference of the `steps`-batch and the one-batch run is the time of `steps` - 1 steps.

    Parameters
    ----------
    name : str
        A registered config.
    images : ndarray of shape (N, 32, 32, 3)
        Training images, uint8; the timed runs use the first `steps` batches.
    settings : TrainSettings
        The stage's settings (its batch size, losses and augmentation; `epochs` is set to 1).
    teacher : Autoencoder, optional
        The teacher of a distilled stage; None for a stage without one.
    config : dict, optional
        Model constructor values that replace the config's; None for none.
    device : str, optional
        The torch device; None: cuda when available, else cpu.
    steps : int, default=3
        Steps of the longer timed run (at most the steps of an epoch).

    Returns
    -------
    float
        Seconds per step (at least 0); when an epoch holds a single step, the time of a whole
        one-step run, start-up included.
    """
    batch, per_epoch = epoch_batches(len(images), settings)

    def seconds(count: int) -> float:
        start = time.perf_counter()
        Trainer(name, replace(settings, epochs=1), device=device, progress=False, teacher=teacher,
                config=config).fit(images[: count * batch])
        return time.perf_counter() - start

    steps = min(steps, per_epoch)
    first = seconds(1)
    return max((seconds(steps) - seconds(1)) / (steps - 1), 0.0) if steps > 1 else first


def stage_steps(images: np.ndarray, settings: TrainSettings) -> int:
    """How many steps a stage trains on `images`: its epochs times the full batches of an epoch.

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3)
        The training images (only their count is read).
    settings : TrainSettings
        The stage's settings (`epochs` and `batch_size`).

    Returns
    -------
    int
        `settings.epochs` times the steps of an epoch (`training.epoch_batches`).
    """
    return settings.epochs * epoch_batches(len(images), settings)[1]


def estimate_seconds(name: str, images: np.ndarray, settings: TrainSettings, *, teacher: Autoencoder | None = None,
                     config: dict[str, Any] | None = None, device: str | None = None, from_step: int = 0) -> float:
    """How long a stage will take: the time of a step (`step_seconds`) times the stage's steps
    left after `from_step` (where a resumed stage starts); for a patch dictionary, its fit's
    time (`fit_seconds`).

    A patch dictionary's estimate times K-means on the config's `dictionary` patches (on the
    teacher's atoms, when distilled from a teacher), plus, when the config has fallback recipes,
    the time to encode `images` once (not for a student that keeps all its teacher's atoms: it
    takes the teacher's judgement); `settings`, `device` and `from_step` do not enter it.

    Parameters
    ----------
    name : str
        A registered config.
    images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8.
    settings : TrainSettings
        The stage's settings.
    teacher : Autoencoder, optional
        The teacher of a distilled stage; None for a stage without one.
    config : dict, optional
        Model constructor values that replace the config's; None for none.
    device : str, optional
        The torch device of the timed steps; None: cuda when available, else cpu.
    from_step : int, default=0
        The step a resumed stage starts from.

    Returns
    -------
    float
        The estimated seconds (0 when no step is left).
    """
    fit = get_spec(name).dictionary_settings
    if fit is not None:
        merged = {**model_config(name), **(config or {})}
        points = fit.patches if teacher is None else teacher.encoder.centres.shape[0]
        seconds = fit_seconds(points, merged["centres"], merged["patch_size"], fit.iterations)
        keeps_atoms = teacher is not None and points == merged["centres"]  # it takes the teacher's judgement
        if get_spec(name).fallback_recipes and not keeps_atoms:
            seconds += encode_seconds(build_model(name, merged), images)
        return seconds
    per_step = step_seconds(name, images, settings, teacher=teacher, config=config, device=device)
    return per_step * max(stage_steps(images, settings) - from_step, 0)


def encode_seconds(model: Autoencoder, images: np.ndarray, probe: int = 128) -> float:
    """Roughly how long encoding `images` takes here: `probe` of them, timed, scaled to all.

    Parameters
    ----------
    model : Autoencoder
        The encoder's model; it is moved to the default device (cuda when available, else cpu).
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8 (N >= 1).
    probe : int, default=128
        How many of the first images are encoded and timed.

    Returns
    -------
    float
        The estimated seconds for all N images (start-up costs of the probe included).
    """
    start = time.perf_counter()
    encode_images(model, images[:probe])
    return (time.perf_counter() - start) * len(images) / min(probe, len(images))


def recipe_seconds(name: str, images: np.ndarray, *, seed: int = 0, batch: int | None = None,
                   device: str | None = None) -> list[float]:
    """Estimated seconds of each stage of config `name` (its teacher first, if any) with the
    registered settings. With `batch`, the timed steps hold `batch` images instead of the
    configured batch and the time is scaled to the whole data: what a configuration meant for another
    machine (the GPU configuration on a CPU, say) would take here, in seconds rather than hours of
    measuring.

    Parameters
    ----------
    name : str
        A registered config.
    images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8.
    seed : int, default=0
        The settings' seed.
    batch : int, optional
        The batch size to time instead of the configured one (the distilled originals per batch
        are capped at it); None keeps the configured batch.
    device : str, optional
        The torch device; None: cuda when available, else cpu.

    Returns
    -------
    list of float
        The seconds of each stage: [teacher, student] for a config that names a teacher, else [name].

    Raises
    ------
    UserInputError
        When `name` is not a registered config.
    """
    spec = get_spec(name)
    stages = ([spec.teacher] if spec.teacher is not None else []) + [name]
    seconds = []
    for stage in stages:
        settings = TrainSettings.for_model(stage, seed=seed)
        if batch is not None:
            settings = replace(settings, batch_size=batch, distill_originals=min(settings.distill_originals, batch))
        teacher = build_model(spec.teacher) if stage == name and spec.teacher is not None else None
        seconds.append(estimate_seconds(stage, images, settings, teacher=teacher, device=device))
    return seconds


def planned(output: str | Path, resuming_teacher: bool, settings: TrainSettings,
             config: dict[str, Any] | None) -> tuple[TrainSettings, dict[str, Any] | None]:
    """The student's settings and config for this run: those recorded in OUT_run/stages.json when
    resuming the teacher phase (so that the resume command needs no options), else the given
    ones, recorded there.

    Parameters
    ----------
    output : str or Path
        The student's checkpoint OUT; the plan lives in its run folder OUT_run/ (created if missing
    when the plan is written; under torchrun only rank 0 writes it).
    resuming_teacher : bool
        Whether this run resumes the teacher phase.
    settings : TrainSettings
        The student's settings as given.
    config : dict or None
        The student's model constructor overrides as given.

    Returns
    -------
    settings : TrainSettings
        The recorded settings when resuming the teacher phase and a plan exists, else `settings`.
    config : dict or None
        The recorded config in the same case, else `config`.

    Raises
    ------
    UserInputError
        When a recorded plan cannot be read as JSON, is not a mapping whose "config" is a mapping
        or null, or its settings are missing or invalid (`snapshots.settings_of`); or when the
        plan cannot be written.
    """
    plan = run_folder(output) / "stages.json"
    if resuming_teacher and plan.is_file():
        expected = ("expected the student's settings and config as the run recorded them (delete it to use "
                    "the settings given)")
        try:
            recorded = json.loads(plan.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise UserInputError(f"{plan}: not readable as JSON ({str(error).splitlines()[0][:160]}); "
                                 f"{expected}") from None
        if not isinstance(recorded, dict):
            raise UserInputError(f"{plan}: a JSON {type(recorded).__name__}, not a mapping; {expected}")
        if "config" not in recorded or not isinstance(recorded["config"], dict | None):
            found = f"its config is {recorded['config']!r:.60}" if "config" in recorded else "its config is missing"
            raise UserInputError(f"{plan}: {found}; {expected}")
        return settings_of(recorded, plan), recorded["config"]
    run_folder(output).mkdir(exist_ok=True)
    if distributed_rank()[0] == 0:
        with atomic_path(plan) as temporary:
            temporary.write_text(json.dumps({"settings": asdict(settings), "config": config}, indent=2))
    return settings, config


def epochs_text(epochs: int) -> str:
    """ "1 epoch", "50 epochs".

    Parameters
    ----------
    epochs : int
        A number of epochs.

    Returns
    -------
    str
        The number and "epoch", plural unless it is 1.
    """
    return f"{epochs} epoch{'' if epochs == 1 else 's'}"


def stage_text(name: str, settings: TrainSettings, config: dict[str, Any] | None = None,
               distilled: bool = False) -> str:
    """What a stage does, for the plan: "50 epochs", or how its patch dictionary is fitted.

    Parameters
    ----------
    name : str
        The stage's registered config.
    settings : TrainSettings
        The stage's settings; `epochs` is read for a trained model.
    config : dict, optional
        Architecture settings that replace the config's (its `centres` for a dictionary).
    distilled : bool, default=False
        Whether a dictionary stage merges its teacher's atoms rather than fitting patches.

    Returns
    -------
    str
        `epochs_text` of the settings; for a patch dictionary "K atoms fitted on P patches", or
        "K atoms merged from the teacher's" when `distilled`.

    Raises
    ------
    UserInputError
        For an unknown config.
    """
    fit = get_spec(name).dictionary_settings
    if fit is None:
        return epochs_text(settings.epochs)
    atoms = {**model_config(name), **(config or {})}["centres"]
    if distilled:
        return f"{atoms} atoms merged from the teacher's"
    return f"{atoms} atoms fitted on {fit.patches:,} patches"


def fallback_plan(name: str, images: np.ndarray, output: str | Path | None, seed: int, estimate: bool,
                  device: str | None) -> str:
    """The plan's line for a config's `fallback_model` `name` (its teacher, then it), with the
    time of each measured here when `estimate` is set.

    Parameters
    ----------
    name : str
        The fallback student config.
    images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8 (timed on when `estimate`).
    output : str, Path or None
        The run's checkpoint, OUT; None for a run in memory.
    seed : int
        The run's seed, which both fallback stages' settings take.
    estimate : bool
        Time each stage on a few of its steps first.
    device : str, optional
        The torch device the estimate runs on; None picks one.

    Returns
    -------
    str
        One indented line: the fallback's teacher stage, then its student stage, with where
        each goes.
    """
    spec = get_spec(name)
    times = ["", ""]
    if estimate:
        times = [", " + about(estimate_seconds(stage, images, TrainSettings.for_model(stage, seed=seed),
                                               teacher=teacher, device=device))
                 for stage, teacher in ((spec.teacher, None), (name, build_model(spec.teacher)))]
    where = fallback_teacher_path(output) if output is not None else "memory"
    return (f"  if the teacher's first recipe does not hold: teacher {spec.teacher!r}, "
            f"{stage_text(spec.teacher, TrainSettings.for_model(spec.teacher, seed=seed))}{times[0]} -> {where}, "
            f"then student {name!r} instead, {stage_text(name, TrainSettings.for_model(name, seed=seed))}{times[1]} "
            f"-> {output or 'memory'}")
