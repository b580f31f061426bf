"""The pipeline's training stages: a teacher stage and a student stage, each from its config.

`train_model` is the one way in, for the command line and the estimator alike: it turns the
caller's settings into a stage's, picks the clustering recipe the model goes with, and runs the
stages. `train_stage` runs one stage: a config without a teacher alone, a student config with its
trained teacher. `run_stages` runs a config's stages in order: for a student, the teacher stage
into OUT_run/teacher.pth (snapshots in OUT_run/teacher_run/, reused when trained with the same
settings), then the student stage into OUT. `resume` with a snapshot of either phase
continues that phase and then goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aecluster import registry
from aecluster.atomic import check_writable
from aecluster.checkpoint import (
    deployable_payload,
    load_model,
    make_payload,
    model_from_payload,
    read_checkpoint,
    save_checkpoint,
    weights_digest,
)
from aecluster.data import images_digest
from aecluster.distributed import distributed_rank
from aecluster.encoding import RECIPE_DEFAULTS, check_recipe, encode_images, validation_scorer
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder, build_model, latent_map_shape
from aecluster.patches import PatchDictionaryEncoder, dictionary_of, fit_dictionary, merge_atoms
from aecluster.plans import estimate_seconds, fallback_plan, planned, stage_steps, stage_text
from aecluster.registry import TrainSettings, get_spec, model_config
from aecluster.selection import AGREEMENTS, holds, most_stable, stable_recipe
from aecluster.snapshots import (
    Snapshot,
    check_inputs,
    fallback_teacher_path,
    open_snapshot,
    settings_of,
    teacher_path,
)
from aecluster.training import Trainer, about

logger = logging.getLogger(__name__)


def fit_patch_stage(name: str, images: np.ndarray, output: str | Path | None, settings: TrainSettings, *,
                    teacher: Autoencoder | None = None, recipe: dict[str, Any] | None = None,
                    config: dict[str, Any] | None = None, teacher_judgement: list[dict[str, Any]] | None = None,
                    progress: bool = True) -> tuple[Autoencoder, dict[str, Any] | None]:
    """A patch-dictionary stage: fit the dictionary on `images` (a teacher stage), or merge the
    atoms of a dictionary `teacher` into the config's fewer atoms (a student stage); with
    `output`, write the checkpoint (encoder-only in the config's deploy format, if it sets one)
    with `recipe`, or without one the recipe `chosen_recipe` picks. Returns the model and the
    recipe written (None when nothing was written and none was given).

    Parameters
    ----------
    name : str
        A registered patch-dictionary config (builder 'patches').
    images : ndarray of shape (N, 32, 32, 3)
        The images the dictionary is fitted on (uint8), and whose codes judge the recipes.
    output : str, Path or None
        The checkpoint to write; None writes nothing. Only the process of rank 0 writes.
    settings : TrainSettings
        The stage's settings: `seed` seeds the fit (or the merge) and the judgement; all are
        recorded in the checkpoint.
    teacher : Autoencoder, optional
        A fitted patch-dictionary model of the same patch size and normalisation and at least as
        many atoms, whose atoms are merged; None fits the dictionary on `images`.
    recipe : dict, optional
        The clustering recipe to write; None lets `judged_recipes` choose one when writing.
    config : dict, optional
        Architecture settings that replace the config's.
    teacher_judgement : list of dict, optional
        The rows `judged_recipes` gave on `teacher`'s codes of `images`. When the student keeps
        its teacher's atoms and settings (its codes are the teacher's) and both configs list the
        same recipes, the student takes that judgement and its choice instead of judging again.
    progress : bool, default=True
        Draw progress bars.

    Returns
    -------
    model : Autoencoder
        The encoder-only model, its dictionary loaded, in eval mode.
    recipe : dict or None
        The recipe given or written; None when none was given and nothing was written.

    Raises
    ------
    UserInputError
        For an unknown config, an unwritable `output`, or a `teacher` that is not a patch
        dictionary this config can merge.
    """
    spec = get_spec(name)
    fit = spec.dictionary_settings
    config = {**model_config(name), **(config or {})}
    model = build_model(name, config)
    encoder = model.encoder
    if output is not None:
        check_writable(Path(output))
    if teacher is not None:
        source = teacher.encoder
        if not isinstance(source, PatchDictionaryEncoder) or (source.patch_size, source.normalise) != (
                encoder.patch_size, encoder.normalise) or source.centres.shape[0] < encoder.centres.shape[0]:
            raise UserInputError(f"student {name!r} merges the atoms of a patch-dictionary teacher of "
                                 f"{encoder.patch_size}x{encoder.patch_size} patches with at least "
                                 f"{encoder.centres.shape[0]} atoms; this teacher is not one")
        dictionary = merge_atoms(dictionary_of(source), encoder.centres.shape[0], fit.iterations, settings.seed)
    else:
        dictionary = fit_dictionary(images, patch_size=encoder.patch_size, centres=encoder.centres.shape[0],
                                    patches=fit.patches, normalise=encoder.normalise,
                                    whitening_eps=fit.whitening_eps, iterations=fit.iterations, seed=settings.seed,
                                    progress=progress)
    encoder.load_dictionary(dictionary)
    model.eval()
    if output is not None and distributed_rank()[0] == 0:
        judgement: list[dict[str, Any]] = []
        if recipe is None and teacher_judgement and encodes_alike(model, teacher) and (
                config_recipes(name) == config_recipes(spec.teacher)):
            judgement = teacher_judgement
            recipe = most_stable(judgement, AGREEMENTS)["recipe"]
            logger.info("recipe: %s + %s, judged on the codes of teacher %r, which are %r's too", recipe["reduce"],
                        recipe["method"], spec.teacher, name)
        elif recipe is None:
            recipe, judgement = judged_recipes(name, model, images, settings.seed, progress)
        payload = make_payload(model, name, config, dict(recipe), epoch=0, extra={
            "settings": asdict(settings), "dictionary": asdict(fit), "images": images_digest(images),
            "teacher": weights_digest(teacher) if teacher is not None else None, "recipe_judgement": judgement})
        save_checkpoint(output, deployable_payload(payload, spec.deploy_weights) if spec.deploy_weights else payload)
    return model, recipe


def config_recipes(name: str) -> list[dict[str, Any]]:
    """Config `name`'s clustering recipes, complete: its recipe, then its fallback recipes.

    Parameters
    ----------
    name : str
        A registered config.

    Returns
    -------
    list of dict
        Every key of `encoding.RECIPE_DEFAULTS` in each recipe.
    """
    spec = get_spec(name)
    return [check_recipe(recipe, f"config {name!r}") for recipe in (spec.recipe, *spec.fallback_recipes)]


def encodes_alike(model: Autoencoder, other: Autoencoder | None) -> bool:
    """Whether two patch-dictionary models give the same codes: the same settings and the same
    fitted numbers (mean, whitening and atoms: the same `checkpoint.weights_digest`, which a
    student's checkpoint records of its teacher).

    Parameters
    ----------
    model, other : Autoencoder
        The models compared; `other` may be None.

    Returns
    -------
    bool
        False unless both are patch dictionaries that encode alike.
    """
    if other is None or not all(isinstance(m.encoder, PatchDictionaryEncoder) for m in (model, other)):
        return False
    settings = ("patch_size", "grid", "normalise", "flip_average")
    return (all(getattr(model.encoder, key) == getattr(other.encoder, key) for key in settings)
            and weights_digest(model) == weights_digest(other))


def judged_recipes(name: str, model: Autoencoder, images: np.ndarray, seed: int = 0,
                   progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Config `name`'s recipe, or, when it lists `fallback_recipes`, the one the rule of
    docs/accuracy.md (`selection.stable_recipe`) chooses on the codes of `images`: the config's
    recipe while its groups hold across seeds, subsamples and 2,000 images alone, else the most
    stable of them all. Labels play no part.

    Parameters
    ----------
    name : str
        A registered config.
    model : Autoencoder
        The trained model whose codes of `images` judge the recipes.
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8 (only encoded when the config has fallback recipes).
    seed : int, default=0
        The first of the judgement's seeds.
    progress : bool, default=True
        Draw a progress bar while encoding.

    Returns
    -------
    recipe : dict
        The chosen recipe.
    judged : list of dict
        One row per judged recipe, the config's first: the recipe and its agreements
        (`selection.AGREEMENTS`); empty for a config without fallback recipes.

    Raises
    ------
    UserInputError
        For an unknown config or a recipe of the config that `check_recipe` refuses.
    """
    spec = get_spec(name)
    recipes = config_recipes(name)
    if len(recipes) == 1:
        return spec.recipe, []
    logger.info("recipe: judging the recipes of %r by how stable their groups are", name)
    chosen, rows = _stability(model, images, recipes, seed, progress)
    logger.info("recipe: %s + %s chosen", chosen["reduce"], chosen["method"])
    return chosen, rows


def _stability(model: Autoencoder, images: np.ndarray, recipes: list[dict[str, Any]], seed: int,
               progress: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`selection.stable_recipe` of complete `recipes` on `model`'s codes of `images`, a line
    logged per judged recipe."""
    codes = encode_images(model, images, progress=progress)
    return stable_recipe(codes, recipes, seed, report=lambda line: logger.info("recipe: %s", line))


def chosen_recipe(name: str, model: Autoencoder, images: np.ndarray, seed: int = 0,
                  progress: bool = True) -> dict[str, Any]:
    """The recipe `judged_recipes` chooses for config `name` on the codes of `images`.

    Parameters
    ----------
    name : str
        A registered config.
    model : Autoencoder
        The trained model whose codes judge the recipes.
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8.
    seed : int, default=0
        The first of the judgement's seeds.
    progress : bool, default=True
        Draw a progress bar while encoding.

    Returns
    -------
    dict
        The chosen recipe: the config's own when it has no fallback recipes.

    Raises
    ------
    UserInputError
        For an unknown config or a recipe of the config that `check_recipe` refuses.
    """
    return judged_recipes(name, model, images, seed, progress)[0]


def recorded_judgement(path: Path | None) -> list[dict[str, Any]] | None:
    """The judged recipes a patch-dictionary checkpoint at `path` records (`fit_patch_stage`), or
    None where it records none or they are not rows of a complete recipe and its agreements.

    Parameters
    ----------
    path : Path or None
        A checkpoint written by `fit_patch_stage`; None, or a path that is not a file, gives None.

    Returns
    -------
    list of dict or None
        The rows: "recipe" (complete) and each agreement of `selection.AGREEMENTS` (a float
        in [0, 1]), in the order they were judged; None as above.

    Raises
    ------
    UserInputError
        For a file that is not a readable checkpoint, or a recorded recipe with a value that
        `check_recipe` refuses.
    """
    if path is None or not path.is_file():
        return None
    rows = read_checkpoint(path).get("recipe_judgement")
    if not isinstance(rows, list) or not rows:
        return None
    for row in rows:
        if not (isinstance(row, dict) and isinstance(row.get("recipe"), dict)
                and set(row["recipe"]) == set(RECIPE_DEFAULTS)
                and all(isinstance(row.get(key), float) and 0 <= row[key] <= 1 for key in AGREEMENTS)):
            return None
        check_recipe(row["recipe"], str(path))
    return rows


def train_stage(name: str, images: np.ndarray, output: str | Path | None, settings: TrainSettings, *,
                teacher: Autoencoder | None = None, resume: str | Path | Snapshot | None = None,
                recipe: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                teacher_judgement: list[dict[str, Any]] | None = None, device: str | None = None,
                progress: bool = True,
                evaluate: Callable[[Autoencoder], float] | None = None) -> tuple[Autoencoder, dict[str, Any] | None]:
    """One stage: train config `name` on `images` (distilled from `teacher` when given). Returns
    the model and its clustering recipe (`fit_patch_stage`'s for a patch dictionary).

    Parameters
    ----------
    name : str
        The registered config to train (or fit, for a patch dictionary).
    images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8.
    output : str, Path or None
        The checkpoint to write; None keeps the model in memory.
    settings : TrainSettings
        The stage's settings.
    teacher : Autoencoder, optional
        A trained model to distil from (or, for a patch dictionary, to merge the atoms of).
    resume : str, Path or Snapshot, optional
        A snapshot of this stage to continue from (not for a patch dictionary).
    recipe : dict, optional
        The clustering recipe the model goes with; None: the config's (a patch dictionary's is
        chosen by `fit_patch_stage`).
    config : dict, optional
        Architecture settings that replace the config's.
    device : str, optional
        The torch device; None picks one (not used by a patch dictionary).
    progress : bool, default=True
        Draw progress bars.
    evaluate : callable, optional
        Maps a model to a validation accuracy, recorded at each snapshot (trained models only).

    Returns
    -------
    model : Autoencoder
        The trained model, in eval mode.
    recipe : dict or None
        Its clustering recipe; None only for a patch dictionary that wrote nothing and was given none.

    Raises
    ------
    UserInputError
        For `resume` with a patch-dictionary config, or as `Trainer` and `fit_patch_stage` do.
    TrainingInterrupted
        When a stop signal ends the training of a stage with `output`.
    """
    if get_spec(name).dictionary_settings is not None:
        if resume is not None:
            raise UserInputError(f"model {name!r} is fitted in one go (no snapshots): there is nothing to resume")
        return fit_patch_stage(name, images, output, settings, teacher=teacher, recipe=recipe, config=config,
                               teacher_judgement=teacher_judgement, progress=progress)
    trainer = Trainer(name, settings, recipe=recipe, device=device, progress=progress, evaluate=evaluate,
                      teacher=teacher, config=config)
    return trainer.fit(images, output, resume=resume), trainer.recipe


def stage_settings(name: str, overrides: dict[str, Any], *, snapshot: Snapshot | None = None,
                   width_multiplier: float | None = None, teacher: Autoencoder | None = None,
                   distilling: bool = False) -> tuple[TrainSettings, dict[str, Any] | None]:
    """The settings and architecture overrides (config) a training command runs config `name` with.

    A snapshot of `name` itself brings its own settings and config (a resume needs no options).
    Otherwise the registered settings with the non-None `overrides`, the seed of a snapshot of
    the other phase (a student's teacher, say), and `width_multiplier` as the config. With
    `distilling` (the `distill` command) map distillation not chosen in `overrides` defaults to
    `registry.DISTILL_DEFAULTS`; a default map distillation is turned off for a student whose latent map
    differs in shape from its teacher's (`teacher`, else its config's teacher).

    Parameters
    ----------
    name : str
        The registered config to run.
    overrides : dict
        Training settings that replace the registered ones where not None.
    snapshot : Snapshot, optional
        The snapshot the run resumes from, of `name` or of the other phase.
    width_multiplier : float, optional
        The architecture's width multiplier, for configs that have one.
    teacher : Autoencoder, optional
        The student's trained teacher, whose latent-map shape decides a default map distillation.
    distilling : bool, default=False
        Whether the `distill` command runs it (map distillation then defaults to
        `registry.DISTILL_DEFAULTS.distill_maps`).

    Returns
    -------
    settings : TrainSettings
        The stage's settings.
    config : dict or None
        The architecture settings that replace the config's: a snapshot's own config,
        {"width_multiplier": ...}, or None.

    Raises
    ------
    UserInputError
        For an unknown config, an override of the wrong type or outside its range, a snapshot
        whose settings are not valid, or a `width_multiplier` for a config without one.
    """
    maps = overrides.get("distill_maps")
    if maps is None and distilling:
        overrides = {**overrides, "distill_maps": registry.DISTILL_DEFAULTS.distill_maps}
    if snapshot is not None and snapshot.payload["model"] == name:
        return settings_of(snapshot.payload, snapshot.source), snapshot.payload["config"]
    if snapshot is not None:
        overrides = {**overrides, "seed": settings_of(snapshot.payload, snapshot.source).seed}
    settings, config = TrainSettings.for_model(name, **overrides), None
    spec = get_spec(name)
    if width_multiplier is not None:
        if "width_multiplier" not in spec.config:
            raise UserInputError(f"`width_multiplier`: model {name!r} has no width multiplier")
        config = {"width_multiplier": width_multiplier}
    if maps is None and settings.distill_maps > 0 and (teacher is not None or spec.teacher is not None):
        settings = _maps_where_shapes_match(settings, name, config, teacher)
    return settings, config


def _maps_where_shapes_match(settings: TrainSettings, name: str, config: dict[str, Any] | None,
                             teacher: Autoencoder | None) -> TrainSettings:
    """The default map distillation, turned off for a student whose latent map has another shape
    than its teacher's (another width, say): only its codes' similarities can be matched then."""
    teacher = teacher if teacher is not None else build_model(get_spec(name).teacher)
    if latent_map_shape(build_model(name, config)) == latent_map_shape(teacher):
        return settings
    return replace(settings, distill_maps=0.0)


def _trained(name: str, path: Path, settings: TrainSettings, images: np.ndarray) -> Autoencoder | None:
    """The model of config `name` in `path` if it was trained with `settings` on `images`, else None."""
    if not path.is_file():
        return None
    payload = read_checkpoint(path)
    fit = get_spec(name).dictionary_settings
    if (payload.get("model") == name and "settings" in payload and settings_of(payload, path) == settings
            and payload.get("images") == images_digest(images)
            and payload.get("dictionary") == (asdict(fit) if fit is not None else None)):
        return model_from_payload(payload, str(path))
    return None


def _resumed(snapshot: Snapshot | None, images: np.ndarray, settings: TrainSettings) -> tuple[int, str]:
    """The step at which `snapshot` resumes a stage (0 without one) and the plan's words for it."""
    if snapshot is None:
        return 0, ""
    step = int(snapshot.payload["step"])
    return step, f", resumes at step {step} of {stage_steps(images, settings)}"


def run_stages(name: str, images: np.ndarray, output: str | Path | None, settings: TrainSettings, *,
               resume: str | Path | Snapshot | None = None, say: Callable[[str], None] = lambda message: None,
               estimate: bool = False, teacher_overrides: dict[str, Any] | None = None,
               **options: Any) -> tuple[Autoencoder, dict[str, Any] | None]:
    """Every stage of config `name` in order; `options` go to `train_stage` of the last stage,
    whose model and recipe are returned.

    A student config first gets its teacher (trained with the teacher config's settings and the
    student's seed). `resume` may be a snapshot of the teacher phase (in OUT_run/teacher_run/),
    which continues the teacher and then trains the student with the settings this run
    recorded in OUT_run/stages.json, or of the student phase. `say` gets the plan (with the step
    a resumed stage starts at), with the time of each stage's steps still to run measured on a
    few of its steps first when `estimate` is set.
    `teacher_overrides` change the teacher stage's registered settings (its epochs, say).

    Parameters
    ----------
    name : str
        The registered config to train.
    images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8.
    output : str, Path or None
        The last stage's checkpoint; a student's teacher goes to `teacher_path`. None trains in memory.
    settings : TrainSettings
        The settings of `name`'s stage.
    resume : str, Path or Snapshot, optional
        A snapshot of `name`, of its teacher, or of its config's fallback model or that model's
        teacher, to continue from.
    say : callable
        Gets the plan, one line a stage.
    estimate : bool, default=False
        Time each stage on a few of its steps first, for the plan (single-process runs only).
    teacher_overrides : dict, optional
        Settings that replace the teacher config's registered ones (its seed is always `settings.seed`).
    **options
        `train_stage`'s `recipe`, `config`, `device`, `progress` and `evaluate`, for the last stage.

    Returns
    -------
    model : Autoencoder
        The last stage's model (or, where the fallback model was trained instead, that one).
    recipe : dict or None
        Its clustering recipe (`train_stage`).

    Raises
    ------
    UserInputError
        For a snapshot of another model or of other images, a student-phase snapshot without
        `output` or whose teacher checkpoint is missing or of another model, or as
        `train_stage` does.
    TrainingInterrupted
        When a stop signal ends a stage with `output`.
    """
    spec = get_spec(name)
    device, progress = options.get("device"), options.get("progress", True)
    estimate = estimate and distributed_rank()[1] == 1
    snapshot = open_snapshot(resume)
    fallback = (spec.fallback_model, get_spec(spec.fallback_model).teacher) if spec.fallback_model else ()
    if snapshot is not None:
        if snapshot.payload["model"] not in (name, spec.teacher, *fallback):
            whose = f" (whose teacher is {spec.teacher!r})" if spec.teacher else ""
            raise UserInputError(f"{snapshot.source}: snapshot of model {snapshot.payload['model']!r}, but `model` is "
                                 f"{name!r}{whose}")
        check_inputs(snapshot, {"images": images_digest(images)})
        if snapshot.payload["model"] in fallback:
            return _resumed_fallback(name, snapshot, images, output, device, progress)
    if spec.teacher is None:
        step, resumes = _resumed(snapshot, images, settings)
        timing = (", " + about(estimate_seconds(name, images, settings, config=options.get("config"), device=device,
                                              from_step=step)) + " (measured here)") if estimate else ""
        say(f"plan: {name!r}, {stage_text(name, settings, options.get('config'))}{resumes}{timing}")
        return train_stage(name, images, output, settings, resume=snapshot, **options)
    teacher_resume = snapshot if snapshot is not None and snapshot.payload["model"] == spec.teacher else None
    teacher_settings = (settings_of(snapshot.payload, snapshot.source) if teacher_resume is not None
                        else TrainSettings.for_model(spec.teacher, **{**(teacher_overrides or {}),
                                                                      "seed": settings.seed}))
    if output is not None:
        settings, options["config"] = planned(output, teacher_resume is not None, settings, options.get("config"))
    path = teacher_path(output) if output is not None else None
    if snapshot is not None and teacher_resume is None and path is None:
        raise UserInputError(f"{snapshot.source}: the student phase needs its teacher, kept beside the run's `output` "
                             "(OUT_run/teacher.pth); `output` is None, expected the checkpoint that run was writing")
    if snapshot is not None and teacher_resume is None and not path.is_file():
        raise UserInputError(f"{snapshot.source}: the student phase needs its teacher {path}, which is missing")
    student_resume = snapshot if teacher_resume is None else None
    if student_resume is not None:  # the teacher this student phase was distilled from, as it is
        payload = read_checkpoint(path)
        if payload["model"] != spec.teacher:
            raise UserInputError(f"{path}: a checkpoint of model {payload['model']!r}, but the student phase of "
                                 f"{name!r} was distilled from a {spec.teacher!r}")
        reused = model_from_payload(payload, str(path))
        teacher_settings = settings_of(payload, path) if "settings" in payload else teacher_settings
    elif path is not None and teacher_resume is None:
        reused = _trained(spec.teacher, path, teacher_settings, images)
    else:
        reused = None
    (teacher_step, teacher_resumes), (student_step, student_resumes) = (
        _resumed(teacher_resume, images, teacher_settings), _resumed(student_resume, images, settings))
    times = ["", ""]
    if estimate:
        if reused is None:
            times[0] = ", " + about(estimate_seconds(spec.teacher, images, teacher_settings, device=device,
                                                     from_step=teacher_step))
        seconds = estimate_seconds(name, images, settings, teacher=build_model(spec.teacher),
                                   config=options.get("config"), device=device, from_step=student_step)
        times[1] = f", {about(seconds)} (times measured here)"
    kept = (" (the teacher this phase was distilled from: kept)" if student_resume is not None
            else " (already trained with these settings: reused)" if reused is not None else "")
    say(f"stage 1/2: teacher {spec.teacher!r}, {stage_text(spec.teacher, teacher_settings)}{teacher_resumes}"
        f"{times[0]} -> {path or 'memory'}{kept}")
    say(f"stage 2/2: student {name!r} distilled from it, "
        f"{stage_text(name, settings, options.get('config'), distilled=True)}{student_resumes}{times[1]} "
        f"-> {output or 'memory'}")
    if spec.fallback_model is not None and student_resume is None:
        say(fallback_plan(spec.fallback_model, images, output, settings.seed, estimate, device))
    teacher = reused if reused is not None else train_stage(
        spec.teacher, images, path, teacher_settings, resume=teacher_resume, device=device, progress=progress)[0]
    # A dictionary teacher's checkpoint records its judgement (`fit_patch_stage`): the fallback's
    # trigger and a student that keeps the teacher's atoms read it rather than judge again.
    dictionary_teacher = isinstance(teacher.encoder, PatchDictionaryEncoder)
    judged = recorded_judgement(path) if student_resume is None and dictionary_teacher else None
    if spec.fallback_model is not None and student_resume is None:
        judged = judged or judged_recipes(spec.teacher, teacher, images, settings.seed, progress)[1]
        if judged and not holds(judged[0]):
            instead = fallback_stages(spec.fallback_model, judged, images, output, settings.seed, device, progress)
            if instead is not None:
                return instead
    return train_stage(name, images, output, settings, teacher=teacher, resume=student_resume,
                       teacher_judgement=judged, **options)


def _resumed_fallback(name: str, snapshot: Snapshot, images: np.ndarray, output: str | Path | None,
                      device: str | None, progress: bool) -> tuple[Autoencoder, dict[str, Any]]:
    """Continue config `name`'s fallback (its `fallback_model` or that model's teacher) from
    `snapshot`, with the judgement its dictionary teacher recorded in OUT_run/teacher.pth."""
    path = teacher_path(output) if output is not None else None
    judged = recorded_judgement(path)
    if judged is None:
        raise UserInputError(f"{snapshot.source}: continuing {name!r}'s fallback needs the judged dictionary teacher "
                             f"{path or 'OUT_run/teacher.pth'}, which is missing")
    seed = settings_of(snapshot.payload, snapshot.source).seed
    return fallback_stages(get_spec(name).fallback_model, judged, images, output, seed, device, progress,
                           resume=snapshot)


def fallback_stages(name: str, judged: list[dict[str, Any]], images: np.ndarray, output: str | Path | None,
                    seed: int, device: str | None = None, progress: bool = True,
                    resume: Snapshot | None = None) -> tuple[Autoencoder, dict[str, Any]] | None:
    """Train the teacher of student config `name` and judge its recipes (its teacher's, then its
    own) as `judged_recipes` does; when the most stable of all rows (`selection.most_stable`,
    `judged` first: a patch-dictionary teacher's rows, whose first recipe did not hold) is one
    of them, train `name` from that teacher with that recipe and return it and the recipe, else
    None (the caller goes on with its own student). Labels play no part.

    Parameters
    ----------
    name : str
        A registered student config (a config's `fallback_model`).
    judged : list of dict
        The rows of the recipes judged so far, the default first (`judged_recipes`).
    images : ndarray of shape (N, 32, 32, 3)
        The training images.
    output : str, Path or None
        The student's checkpoint; its teacher goes to `fallback_teacher_path` (reused when
        trained with the same settings and images). None trains in memory.
    seed : int
        Seed of both stages and of the judgement.
    device : str, optional
        The torch device.
    progress : bool
        Draw progress bars.
    resume : Snapshot, optional
        A snapshot of `name` or of its teacher to continue; resuming `name` keeps its teacher's
        most stable recipe whatever `judged` holds.

    Returns
    -------
    (model, recipe) or None

    Raises
    ------
    UserInputError
        When resuming `name` without its teacher checkpoint beside `output`.
    """
    spec = get_spec(name)
    first = judged[0]["recipe"]
    logger.info("recipe: %s + %s does not hold; training %r to judge its codes too (fallback %r)",
                first["reduce"], first["method"], spec.teacher, name)
    phase = resume.payload["model"] if resume is not None else None
    settings = stage_settings(spec.teacher, {"seed": seed}, snapshot=resume if phase == spec.teacher else None)[0]
    path = fallback_teacher_path(output) if output is not None else None
    if phase == name:
        if path is None or not path.is_file():
            raise UserInputError(f"{resume.source}: the student phase of {name!r} needs its teacher {path}, which is "
                                 "missing")
        teacher = model_from_payload(read_checkpoint(path), str(path))
    else:
        reused = _trained(spec.teacher, path, settings, images) if path is not None and phase is None else None
        teacher = reused or train_stage(spec.teacher, images, path, settings, resume=resume, device=device,
                                        progress=progress)[0]
    recipes = [check_recipe(recipe, f"config {config!r}")
               for config, recipe in ((spec.teacher, get_spec(spec.teacher).recipe), (name, spec.recipe))]
    _, rows = _stability(teacher, images, recipes, seed, progress)
    chosen = most_stable(rows if phase == name else [*judged, *rows], AGREEMENTS)
    if not any(chosen is row for row in rows):
        logger.info("recipe: %s + %s of the first teacher kept", chosen["recipe"]["reduce"],
                    chosen["recipe"]["method"])
        return None
    logger.info("recipe: %s + %s of %r chosen: training student %r", chosen["recipe"]["reduce"],
                chosen["recipe"]["method"], spec.teacher, name)
    student_resume = resume if phase == name else None
    student_settings, config = stage_settings(name, {"seed": seed}, snapshot=student_resume, teacher=teacher)
    model, _ = train_stage(name, images, output, student_settings, teacher=teacher, recipe=chosen["recipe"],
                           config=config, resume=student_resume, device=device, progress=progress)
    return model, chosen["recipe"]


@dataclass(frozen=True)
class TrainedModel:
    """What `train_model` gives back: the model, the clustering recipe it goes with and the
    settings its last stage was trained with.

    Parameters
    ----------
    model : Autoencoder
        The trained model.
    recipe : dict
        The clustering recipe it goes with.
    settings : TrainSettings
        The settings of the stage that trained it.
    """

    model: Autoencoder
    recipe: dict[str, Any]
    settings: TrainSettings


def train_model(name: str, images: np.ndarray, output: str | Path | None, overrides: dict[str, Any], *,
                teacher: str | Path | None = None, recipe: dict[str, Any] | None = None,
                resume: str | Path | Snapshot | None = None, width_multiplier: float | None = None,
                distilling: bool = False, validation: tuple[np.ndarray, np.ndarray] | None = None,
                teacher_overrides: dict[str, Any] | None = None, device: str | None = None, progress: bool = True,
                say: Callable[[str], None] = lambda message: None, estimate: bool = False) -> TrainedModel:
    """Train config `name` on `images`: the one training entry point of `aecluster train` (and its
    stage commands) and of `AEClusterer.fit`, so both get the same settings and the same
    label-free choice of clustering recipe.

    Parameters
    ----------
    name : str
        A registered config.
    images : ndarray of shape (N, 32, 32, 3)
        The training images (uint8).
    output : str, Path or None
        Where the checkpoint goes (snapshots in OUT_run/ beside it); None keeps the model in memory.
    overrides : dict
        Training settings that replace the config's where not None (`epochs`, `lr`, `seed`, ...).
    teacher : str or Path, optional
        A trained teacher checkpoint to distil `name` from, alone (without it a student config
        first trains its config's teacher, `run_stages`).
    recipe : dict, optional
        The clustering recipe the model goes with. Without one: the teacher checkpoint's, else
        the config's, or for a config with `fallback_recipes` the one `chosen_recipe` picks on
        the trained model's codes (labels play no part).
    resume : str, Path or Snapshot, optional
        A snapshot of either phase to continue; it brings its own settings.
    width_multiplier : float, optional
        The architecture's width, for configs that have one.
    distilling : bool
        Map distillation defaults of the `distill` command (`stage_settings`).
    validation : (images, labels), optional
        A labelled set that scores each snapshot (`encoding.validation_scorer`).
    teacher_overrides : dict, optional
        Settings of a student's teacher stage (its epochs, say).
    device : str, optional
        The torch device; None picks one.
    progress : bool
        Draw progress bars.
    say : callable
        Gets the plan, one line a stage.
    estimate : bool
        Time each stage on a few of its steps first, for the plan.

    Returns
    -------
    TrainedModel
        The model, its clustering recipe and the settings of its last stage.

    Raises
    ------
    UserInputError
        For a setting, snapshot or teacher that does not fit `name`, or an unwritable `output`.
    """
    spec = get_spec(name)
    snapshot = open_snapshot(resume)
    trained_teacher = None
    if teacher is not None:
        trained_teacher, payload = load_model(teacher)
        recipe = recipe if recipe is not None else payload["recipe"]
    elif recipe is None and not spec.fallback_recipes:
        recipe = dict(spec.recipe)
    settings, config = stage_settings(name, overrides, snapshot=snapshot, width_multiplier=width_multiplier,
                                      teacher=trained_teacher, distilling=distilling)
    evaluate = (validation_scorer(*validation, recipe or spec.recipe, settings.seed)
                if validation is not None else None)
    options = {"recipe": recipe, "device": device, "progress": progress, "evaluate": evaluate, "config": config}
    if trained_teacher is not None:
        model, recipe = train_stage(name, images, output, settings, teacher=trained_teacher, resume=snapshot,
                                    **options)
    else:
        model, recipe = run_stages(name, images, output, settings, resume=snapshot, say=say, estimate=estimate,
                                   teacher_overrides=teacher_overrides, **options)
    if recipe is None:
        recipe = chosen_recipe(name, model, images, settings.seed, progress)
    return TrainedModel(model, dict(recipe), settings)
