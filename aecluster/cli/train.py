"""`aecluster train` and `aecluster distill`: the training stages."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from aecluster import registry
from aecluster.cli.args import DefaultsHelpFormatter, add_training_options, say, setting, show_stages
from aecluster.cli.outputs import guard_outputs
from aecluster.devices import resolve_device
from aecluster.errors import UserInputError
from aecluster.registry import (
    CONFIG_FOLDER,
    DISTILL_LOSSES,
    HARDWARE,
    REGISTRY,
    get_spec,
    gpu_counterpart,
    resolve_hardware,
)


def register(commands: Any) -> None:
    """Add the training commands to the `aecluster` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The parser's subcommands (`add_subparsers`); gets `train`, `distill`, `teacher` and `student`.
    """
    train = commands.add_parser(
        "train", help="train an autoencoder on unlabeled images",
        formatter_class=DefaultsHelpFormatter,
        description="Train a registered autoencoder (MSE reconstruction loss, plus the model's "
                    "own extra objectives). Writes OUT, and OUT_run/ beside it with --snapshots evenly "
                    "spaced snapshots and history.json. Defaults "
                    "come from the model's config (aecluster/configs/MODEL.yaml). A student model "
                    "(one whose config names a teacher, e.g. best) runs its stages in order: the teacher into "
                    "OUT_run/teacher.pth (reused when trained with the same settings and images), then the "
                    "student; --resume continues whichever phase the snapshot belongs to.")
    train.add_argument("--model", default="improved", choices=registry.MODEL_NAMES, help="model name")
    train.add_argument("--hardware", choices=HARDWARE, default="cpu",
                       help="cpu: MODEL's config as named; gpu: its GPU configuration, config MODEL_gpu (best -> "
                            "best_gpu); auto: the GPU configuration when training runs on a CUDA device, else "
                            "MODEL, after saying so (train_best.sh)")
    train.add_argument("--recipe", dest="hardware", choices=HARDWARE, action=_DeprecatedRecipe, help=argparse.SUPPRESS)
    train.add_argument("--teacher-epochs", type=setting("epochs"), metavar="N",
                       help="epochs of a student's teacher stage (default: the teacher config's; the other "
                            "options set the student stage, the teacher keeps its config's settings)")
    add_training_options(train)
    train.set_defaults(handler=_train, teacher=None)

    distill = commands.add_parser(
        "distill", help="train a small student encoder from a trained teacher",
        formatter_class=DefaultsHelpFormatter,
        description="Knowledge distillation without labels: the student keeps its own objectives "
                    "(reconstruction, plus contrastive if its model has one) and also matches the "
                    "teacher's pairwise cosine similarities of codes in each batch (similarity-"
                    "preserving KD, Tung & Mori 2019), or with --distill-loss codes each image's "
                    "code direction, on its augmented views and on full-size originals; on the "
                    "originals also the whole latent map where its shape is the teacher's "
                    "(--distill-maps). The student inherits the teacher's recipe.")
    distill.add_argument("--teacher", required=True, help="trained teacher checkpoint")
    distill.add_argument("--student", dest="model", required=True, choices=registry.MODEL_NAMES,
                         help="student model name")
    defaults = registry.DISTILL_DEFAULTS
    distill.add_argument("--distill-weight", type=setting("distill_weight"), default=defaults.distill_weight,
                         help="weight of the similarity-matching loss (Tung & Mori's value; 0: only "
                              "--distill-maps matches the teacher)")
    distill.add_argument("--distill-originals", type=setting("distill_originals"),
                         default=defaults.distill_originals, metavar="N",
                         help="images of each batch also matched unaugmented at full size, the input "
                              "clustering sees (0: augmented views only)")
    distill.add_argument("--distill-loss", choices=DISTILL_LOSSES, default=defaults.distill_loss,
                         help="what the student matches: 'similarity' the batch's pairwise cosine "
                              "similarities, 'codes' each image's code direction (needs the teacher's code size)")
    distill.add_argument("--distill-maps", type=setting("distill_maps"), metavar="WEIGHT",
                         help="weight of matching each original's whole latent map (C x 4 x 4) to the "
                              f"teacher's, as well as its code (default {defaults.distill_maps:g} where "
                              "the student's map has the teacher's shape, else 0)")
    add_training_options(distill)
    distill.set_defaults(handler=_train)

    stages = {"teacher": "the teacher stage: train a config that names no teacher (e.g. teacher, "
                         "resnet18_teacher) with its own settings",
              "student": "the student stage: distil a config that names a teacher (e.g. best, best_gpu) "
                         "from that teacher's trained checkpoint, with the config's own settings"}
    for stage, description in stages.items():
        command = commands.add_parser(stage, help=description.split(":")[0], description=description.capitalize(),
                                      formatter_class=DefaultsHelpFormatter)
        command.add_argument("--config", required=True, dest="model", type=_stage_config(stage), metavar="CONFIG",
                             help="a registered config: its name or its file in aecluster/configs/")
        if stage == "student":
            command.add_argument("--teacher", required=True, help="the teacher stage's checkpoint")
        add_training_options(command)
        command.set_defaults(handler=_train, teacher=None)


class _DeprecatedRecipe(argparse.Action):
    """`--recipe`, the old name of `--hardware`: says so in one line and sets `--hardware`, so that
    old scripts keep working."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print("aecluster: --recipe is now --hardware", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _stage_config(stage: str) -> Any:
    """An argparse type: a registered config (name or configs/NAME.yaml) fit for `stage`."""

    def parse(text: str) -> str:
        name = Path(text).stem if text.endswith((".yaml", ".yml")) else text
        if name not in REGISTRY:
            raise argparse.ArgumentTypeError(f"unknown config {text!r}; choose one of {', '.join(REGISTRY)}")
        if name != text and Path(text).resolve() != (CONFIG_FOLDER / f"{name}.yaml").resolve():
            raise argparse.ArgumentTypeError(
                f"{text}: not a registered config; checkpoints name their config, so a stage reads one of "
                f"{CONFIG_FOLDER}/*.yaml (add yours there)")
        if (REGISTRY[name].teacher is not None) != (stage == "student"):
            raise argparse.ArgumentTypeError(
                f"config {name!r} {'names no' if stage == 'student' else 'names a'} teacher; "
                f"use `aecluster {'teacher' if stage == 'student' else 'student'}` for it")
        return name

    return parse


def _train(args: argparse.Namespace) -> int:
    from aecluster.data import load_images, load_labels

    # Mistakes found without torch are reported first, then the first line is printed before the
    # heavy imports (torch, scikit-learn: seconds on a busy machine), so that a run speaks at once.
    guard_outputs([(args.output, "checkpoint")], [args.images, args.teacher, args.resume, *(args.val or ())],
                  force=args.force)
    show_stages(args.quiet)
    hardware = getattr(args, "hardware", "cpu")
    resolve_hardware(args.model, hardware, cuda=False)  # a --hardware gpu without a GPU config: one line
    if getattr(args, "teacher_epochs", None) and get_spec(args.model).teacher is None:
        raise UserInputError(f"--teacher-epochs: model {args.model!r} has no teacher stage")
    given = [f"--{name.replace('_', '-')}" for name in ("epochs", "lr", "batch_size", "augment", "noise", "seed",
                                                        "snapshots", "width_multiplier")
             if getattr(args, name) is not None]
    if args.resume is not None and given:
        raise UserInputError(f"{args.resume}: --resume continues the run with the settings it started with; "
                             f"leave out {', '.join(given)}")
    images = load_images(args.images, min_images=2)
    first = os.environ.get("RANK", "0") == "0"  # rank 0 under torchrun, read before torch is imported
    if first and args.resume is None:  # a resumed run's line waits for its snapshot to be read (with torch)
        say(args, starting_line(args, len(images)))

    from aecluster.distributed import distributed_rank, init_distributed, shutdown_distributed
    from aecluster.snapshots import TrainingInterrupted, open_snapshot, run_folder
    from aecluster.stages import train_model

    if hardware != "cpu":
        args.model = _chosen_config(args)
    snapshot = open_snapshot(args.resume)
    if first and snapshot is not None:
        say(args, starting_line(args, len(images)))
    device = init_distributed() or args.device
    overrides = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "augment": args.augment,
                 "noise": args.noise, "seed": args.seed, "snapshots": args.snapshots,
                 "distill_weight": getattr(args, "distill_weight", None),
                 "distill_originals": getattr(args, "distill_originals", None),
                 "distill_loss": getattr(args, "distill_loss", None),
                 "distill_maps": getattr(args, "distill_maps", None)}
    validation = None
    if args.val:
        val_images = load_images(args.val[0], min_images=2)
        validation = (val_images, load_labels(args.val[1], len(val_images)))
    teacher_epochs = getattr(args, "teacher_epochs", None)
    start = time.perf_counter()
    try:
        train_model(args.model, images, args.output, overrides, teacher=args.teacher, resume=snapshot,
                    width_multiplier=args.width_multiplier, distilling="distill_weight" in vars(args),
                    validation=validation, teacher_overrides={"epochs": teacher_epochs} if teacher_epochs else None,
                    device=device, progress=not args.quiet, estimate=not args.quiet,
                    say=lambda message: say(args, message) if distributed_rank()[0] == 0 else None)
    except TrainingInterrupted as stopped:
        if distributed_rank()[0] == 0:
            print(f"aecluster: training interrupted; resume with: {_resume_command(args, stopped.snapshot)}",
                  file=sys.stderr)
        return 130
    if distributed_rank()[0] == 0:
        say(args, f"wrote {args.output} and {run_folder(Path(args.output))}/ "
                   f"in {time.perf_counter() - start:.1f} s")
    shutdown_distributed()
    return 0


def starting_line(args: argparse.Namespace, count: int) -> str:
    """The first line a training command prints: what it trains, on what, into what.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; reads `args.model`, `args.images`, `args.output`, `args.resume`,
        and when present `args.command` (default "train") and `args.hardware` (named unless "cpu").
    count : int
        How many training images were found.

    Returns
    -------
    str
        "COMMAND 'MODEL' (hardware H): N images from IMAGES -> OUTPUT, resuming SNAPSHOT; loading
        torch", the hardware and resume parts only where they apply.
    """
    command = getattr(args, "command", None) or "train"
    hardware = f" (hardware {args.hardware})" if getattr(args, "hardware", "cpu") != "cpu" else ""
    resume = f", resuming {args.resume}" if args.resume else ""
    return (f"{command} {args.model!r}{hardware}: {count:,} images from {args.images} -> {args.output}{resume}; "
            "loading torch")


def _resume_command(args: argparse.Namespace, snapshot: Path) -> str:
    """The command that continues this run from `snapshot` (its settings come from the snapshot)."""
    command = getattr(args, "command", None) or ("distill" if args.teacher else "train")
    head = {"train": ["--model", args.model], "distill": ["--teacher", str(args.teacher), "--student", args.model],
            "teacher": ["--config", args.model], "student": ["--config", args.model, "--teacher", str(args.teacher)]}
    head = ["aecluster", command, *head[command]]
    if args.device:
        head += ["--device", args.device]
    if getattr(args, "teacher_epochs", None):
        head += ["--teacher-epochs", str(args.teacher_epochs)]
    return shlex.join([*head, args.images, args.output, "--resume", str(snapshot)])


def _chosen_config(args: argparse.Namespace) -> str:
    """The config `--hardware` picks. When 'auto' falls back to the CPU configuration although a
    GPU one exists, say so first (nothing is timed: measuring a GPU configuration on a CPU costs a
    silent minute and says little), so that the choice is visible."""
    device = resolve_device(args.device)
    chosen = resolve_hardware(args.model, args.hardware, device.startswith("cuda"))
    gpu = gpu_counterpart(args.model)
    if chosen == args.model and gpu not in (None, args.model) and not args.quiet:
        say(args, f"no CUDA device: training the CPU configuration {args.model!r}; the GPU configuration {gpu!r} "
                  "needs one (docs/gpu.md)")
    return chosen
