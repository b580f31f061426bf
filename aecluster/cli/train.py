"""`aecluster train` and `aecluster distill`: the training stages."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from aecluster.cli.args import add_training_options, integer_at_least, non_negative_float, positive_float, say
from aecluster.errors import UserInputError

MODEL_NAMES = ("baseline", "improved", "teacher", "best", "mobilenet", "plaincnn")
# models.SIMILARITY_DISTILL_WEIGHT, DISTILL_ORIGINALS and MAP_DISTILL_WEIGHT, repeated so that
# --help need not import torch (a test keeps them equal).
SIMILARITY_DISTILL_WEIGHT = 3000.0
DISTILL_ORIGINALS = 256
MAP_DISTILL_WEIGHT = 300.0


def register(commands: Any) -> None:
    """Add the training commands to the `aecluster` parser."""
    train = commands.add_parser(
        "train", help="train an autoencoder on unlabeled images",
        description="Train a registered autoencoder (MSE reconstruction loss, plus the model's "
                    "own extra objectives). Writes OUT, and OUT_run/ beside it with >= 10 evenly "
                    "spaced snapshots and history.json. Defaults come from the model's registry entry.")
    train.add_argument("--model", default="improved", choices=MODEL_NAMES, help="model name (default improved)")
    add_training_options(train)
    train.set_defaults(handler=_train, teacher=None)

    distill = commands.add_parser(
        "distill", help="train a small student encoder from a trained teacher",
        description="Knowledge distillation without labels: the student keeps its own objectives "
                    "(reconstruction, plus contrastive if its model has one) and also matches the "
                    "teacher's pairwise cosine similarities of codes in each batch (similarity-"
                    "preserving KD, Tung & Mori 2019), or with --distill-loss codes each image's "
                    "code direction, on its augmented views and on full-size originals; on the "
                    "originals also the whole latent map where its shape is the teacher's "
                    "(--distill-maps). The student inherits the teacher's recipe.")
    distill.add_argument("--teacher", required=True, help="trained teacher checkpoint")
    distill.add_argument("--student", dest="model", required=True, choices=MODEL_NAMES, help="student model name")
    distill.add_argument("--distill-weight", type=positive_float, default=SIMILARITY_DISTILL_WEIGHT,
                         help=f"weight of the similarity-matching loss (default {SIMILARITY_DISTILL_WEIGHT:g}, "
                              "Tung & Mori's value)")
    distill.add_argument("--distill-originals", type=integer_at_least(0), default=DISTILL_ORIGINALS,
                         metavar="N",
                         help="images of each batch also matched unaugmented at full size, the input "
                              f"clustering sees (default {DISTILL_ORIGINALS}; 0: augmented views only)")
    distill.add_argument("--distill-loss", choices=("similarity", "codes"), default="similarity",
                         help="what the student matches: 'similarity' the batch's pairwise cosine "
                              "similarities (default), 'codes' each image's code direction (needs "
                              "the teacher's code size)")
    distill.add_argument("--distill-maps", type=non_negative_float, metavar="WEIGHT",
                         help="weight of matching each original's whole latent map (C x 4 x 4) to the "
                              f"teacher's, as well as its code (default {MAP_DISTILL_WEIGHT:g} where the "
                              "student's map has the teacher's shape, else 0)")
    add_training_options(distill)
    distill.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from aecluster.api import validation_scorer
    from aecluster.atomic import guard_outputs
    from aecluster.checkpoint import load_model, read_checkpoint
    from aecluster.data import load_images, load_labels
    from aecluster.models import REGISTRY
    from aecluster.training import (
        Trainer,
        TrainingInterrupted,
        TrainSettings,
        distributed_rank,
        init_distributed,
        run_folder,
        shutdown_distributed,
    )

    guard_outputs([(args.output, "checkpoint")], [args.images, args.teacher, args.resume, *(args.val or ())],
                  force=args.force)
    images = load_images(args.images, min_images=2)
    device = init_distributed() or args.device
    teacher, recipe = None, dict(REGISTRY[args.model].recipe)
    if args.teacher:
        teacher, teacher_payload = load_model(args.teacher)
        recipe = teacher_payload["recipe"]
    config = None
    maps = getattr(args, "distill_maps", None)
    if args.resume:
        snapshot = read_checkpoint(args.resume)
        settings, config = TrainSettings(**snapshot["settings"]), snapshot["config"]
    else:
        settings = TrainSettings.for_model(
            args.model, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, augment=args.augment,
            noise=args.noise, seed=args.seed, distill_weight=getattr(args, "distill_weight", None),
            distill_originals=getattr(args, "distill_originals", None),
            distill_loss=getattr(args, "distill_loss", None),
            distill_maps=maps if maps is not None else (MAP_DISTILL_WEIGHT if args.teacher else None))
        if args.width_multiplier is not None:
            if "width_multiplier" not in REGISTRY[args.model].config:
                raise UserInputError(f"--width-multiplier: model {args.model!r} has no width multiplier")
            config = {"width_multiplier": args.width_multiplier}
        if maps is None and settings.distill_maps > 0:
            settings = _maps_where_shapes_match(settings, args.model, config, teacher)
    scorer = None
    if args.val:
        val_images = load_images(args.val[0], min_images=2)
        scorer = validation_scorer(val_images, load_labels(args.val[1], len(val_images)), recipe, args.seed)
    trainer = Trainer(args.model, settings, recipe=recipe, device=device, progress=not args.quiet,
                      evaluate=scorer, teacher=teacher, config=config)
    start = time.perf_counter()
    try:
        trainer.fit(images, args.output, resume=args.resume)
    except TrainingInterrupted as stopped:
        print(f"aecluster: {stopped}", file=sys.stderr)
        return 130
    if distributed_rank()[0] == 0:
        say(args, f"wrote {args.output} and {run_folder(Path(args.output))}/ "
                   f"in {time.perf_counter() - start:.1f} s")
    shutdown_distributed()
    return 0


def _maps_where_shapes_match(settings: Any, model: str, config: dict[str, Any] | None, teacher: Any) -> Any:
    """The default map distillation, turned off for a student whose latent map has another shape
    than its teacher's (another width, say): only its codes' similarities can be matched then."""
    from dataclasses import replace

    from aecluster.models import build_model, get_spec
    from aecluster.training import latent_map_shape

    teacher = teacher if teacher is not None else build_model(get_spec(model).teacher)
    if latent_map_shape(build_model(model, config)) == latent_map_shape(teacher):
        return settings
    return replace(settings, distill_maps=0.0)
