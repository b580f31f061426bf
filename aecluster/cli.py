"""Command line: `aecluster train|cluster|pairs|evaluate|models ...`, a thin layer over the API.

Heavy libraries are imported inside the commands, so `aecluster --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aecluster import __version__
from aecluster.errors import UserInputError, run_reporting_errors

MODEL_NAMES = ("baseline", "improved", "teacher", "best", "mobilenet", "plaincnn")
# models.SIMILARITY_DISTILL_WEIGHT, DISTILL_ORIGINALS and MAP_DISTILL_WEIGHT, repeated so that
# --help need not import torch (a test keeps them equal).
SIMILARITY_DISTILL_WEIGHT = 3000.0
DISTILL_ORIGINALS = 256
MAP_DISTILL_WEIGHT = 300.0


def _integer_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for integers >= `minimum` (0 or 1), with a one-line error otherwise."""
    kind = "positive" if minimum > 0 else "non-negative"

    def parse(text: str) -> int:
        try:
            value: int | None = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {kind} integer, found {text!r}")
        return value

    return parse


_positive_int = _integer_at_least(1)


def _number_above(zero_allowed: bool) -> Callable[[str], float]:
    """An argparse type for numbers > 0 (or >= 0), with a one-line error otherwise (NaN too)."""
    kind = "non-negative" if zero_allowed else "positive"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value >= 0 if zero_allowed else value > 0):
            raise argparse.ArgumentTypeError(f"expected a {kind} number, found {text!r}")
        return value

    return parse


_positive_float = _number_above(zero_allowed=False)
_non_negative_float = _number_above(zero_allowed=True)


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reduce", metavar="CHAIN",
                        help="reducer chain NAME:DIM,... with NAME in pca, kpca, tsne, umap "
                             "(e.g. 'kpca:200,tsne:2'; 'none' for raw codes). Default: the "
                             "checkpoint's recipe")
    parser.add_argument("--method", choices=("kmeans", "threshold"),
                        help="kmeans: KMeans with 2 clusters. threshold: codes are centred and "
                             "L2-normalised; images whose cosine similarity to the codes' dominant "
                             "direction (first principal axis) exceeds --threshold form one group, "
                             "all others the second. Default: the checkpoint's recipe")
    parser.add_argument("--threshold", type=float, default=None,
                        help="similarity threshold in [-1, 1] for --method threshold (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of reduction and clustering (default 0)")
    parser.add_argument("--reference", nargs=2, metavar=("VALX", "VALY"),
                        help="labelled images and labels used only to orient 0/1 by best matching")
    parser.add_argument("--verbose", action="store_true", help="print a per-stage timing breakdown")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", help="training images (.npy or folder)")
    parser.add_argument("output", help="checkpoint to write (.pth)")
    parser.add_argument("--width-multiplier", type=_positive_float,
                        help="scale every channel count (MobileNet's alpha; conv models only)")
    parser.add_argument("--epochs", type=_positive_int)
    parser.add_argument("--lr", type=_positive_float, help="peak learning rate (cosine schedule)")
    parser.add_argument("--batch-size", type=_positive_int)
    parser.add_argument("--augment", choices=("none", "flip-crop", "simclr"))
    parser.add_argument("--noise", type=float, help="std of the denoising input noise in [-1,1] pixel units")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    parser.add_argument("--val", nargs=2, metavar=("VALX", "VALY"),
                        help="labelled set whose clustering accuracy is recorded per snapshot "
                             "(recorded only; never used to choose anything)")
    parser.add_argument("--resume", metavar="SNAPSHOT",
                        help="continue from a snapshot in OUT_run/ with that run's settings")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aecluster",
        description="Unsupervised two-way clustering of 32x32 RGB images with a convolutional "
                    "autoencoder. Images: a (N,32,32,3) uint8 .npy file or a folder of PNG/JPG.")
    parser.add_argument("--version", action="version", version=f"aecluster {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train an autoencoder on unlabeled images",
        description="Train a registered autoencoder (MSE reconstruction loss, plus the model's "
                    "own extra objectives). Writes OUT, and OUT_run/ beside it with >= 10 evenly "
                    "spaced snapshots and history.json. Defaults come from the model's registry entry.")
    train.add_argument("--model", default="improved", choices=MODEL_NAMES, help="model name (default improved)")
    _add_training_options(train)
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
    distill.add_argument("--distill-weight", type=_positive_float, default=SIMILARITY_DISTILL_WEIGHT,
                         help=f"weight of the similarity-matching loss (default {SIMILARITY_DISTILL_WEIGHT:g}, "
                              "Tung & Mori's value)")
    distill.add_argument("--distill-originals", type=_integer_at_least(0), default=DISTILL_ORIGINALS,
                         metavar="N",
                         help="images of each batch also matched unaugmented at full size, the input "
                              f"clustering sees (default {DISTILL_ORIGINALS}; 0: augmented views only)")
    distill.add_argument("--distill-loss", choices=("similarity", "codes"), default="similarity",
                         help="what the student matches: 'similarity' the batch's pairwise cosine "
                              "similarities (default), 'codes' each image's code direction (needs "
                              "the teacher's code size)")
    distill.add_argument("--distill-maps", type=_non_negative_float, metavar="WEIGHT",
                         help="weight of matching each original's whole latent map (C x 4 x 4) to the "
                              f"teacher's, as well as its code (default {MAP_DISTILL_WEIGHT:g} where the "
                              "student's map has the teacher's shape, else 0)")
    _add_training_options(distill)
    distill.set_defaults(handler=_train)

    cluster = commands.add_parser(
        "cluster", help="label images 0/1 and write id,label CSV",
        description="Encode images with a checkpoint, reduce, split into two groups and write "
                    "`id,label` (ids 0..N-1). Label 1 = the group with greener/bluer images unless "
                    "--reference orients it.")
    cluster.add_argument("images", help="images to cluster (.npy or folder)")
    cluster.add_argument("checkpoint", help="trained checkpoint (.pth)")
    cluster.add_argument("output", help="CSV file to write")
    _add_recipe_options(cluster)
    cluster.set_defaults(handler=_cluster)

    pairs = commands.add_parser(
        "pairs", help="answer same-group questions for image pairs",
        description="Cluster the images as `cluster` does, then write `id,Ans` for each row of "
                    "`id,image1_index,image2_index`: 1 when both images fall in the same group.")
    pairs.add_argument("images")
    pairs.add_argument("checkpoint")
    pairs.add_argument("pairs_csv", help="CSV with header id,image1_index,image2_index")
    pairs.add_argument("output", help="CSV file to write (id,Ans)")
    _add_recipe_options(pairs)
    pairs.set_defaults(handler=_pairs)

    evaluate = commands.add_parser(
        "evaluate", help="score a prediction CSV against labels",
        description="Print ACC (under the best matching of groups to labels), NMI and ARI.")
    evaluate.add_argument("predictions", help="id,label CSV")
    evaluate.add_argument("labels", help="(N,) integer .npy of true labels")
    evaluate.set_defaults(handler=_evaluate)

    commands.add_parser("plots", help="draw figures (same as python -m aecluster.plots)", add_help=False)

    size = commands.add_parser(
        "size", help="print parameters and bytes on disk of a checkpoint",
        description="Parameters (trainable and non-trainable, counted as torchsummary does: "
                    "buffers such as BatchNorm statistics excluded) and the file's size in bytes.")
    size.add_argument("checkpoint")
    size.set_defaults(handler=_size)

    deploy = commands.add_parser(
        "deploy", help="write an encoder-only, compact copy of a checkpoint",
        description="Keep only what clustering needs (encoder + recipe; decoder and projection head "
                    "dropped) and store weights as float16 or int8 with one scale per tensor.")
    deploy.add_argument("checkpoint")
    deploy.add_argument("output")
    deploy.add_argument("--weights", choices=("float32", "float16", "int8"), default="float16",
                        help="storage format of the weights (default float16)")
    deploy.set_defaults(handler=_deploy)

    export = commands.add_parser(
        "export", help="export the encoder to ONNX",
        description="Write an ONNX model with input `images` (N,32,32,3) uint8 and output `codes` "
                    "(N,D) float32, preprocessing included, for runtimes without torch.")
    export.add_argument("checkpoint")
    export.add_argument("output", help=".onnx file to write")
    export.set_defaults(handler=_export)

    models = commands.add_parser("models", help="list the registered models")
    models.set_defaults(handler=_models)
    return parser


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    from aecluster.api import validation_scorer
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
        _say(args, f"wrote {args.output} and {run_folder(Path(args.output))}/ "
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


def _fit_estimator(args: argparse.Namespace) -> tuple[Any, Any]:
    from aecluster.api import AEClusterer
    from aecluster.data import load_images, load_labels

    clock = time.perf_counter()
    images = load_images(args.images, min_images=2)
    overrides = {k: v for k, v in (("reduce", args.reduce), ("method", args.method),
                                   ("threshold", args.threshold)) if v is not None}
    estimator = AEClusterer.from_checkpoint(args.checkpoint, random_state=args.seed,
                                            verbose=not args.quiet, **overrides)
    loaded = time.perf_counter() - clock
    estimator.fit(images)
    if args.reference:
        reference = load_images(args.reference[0])
        estimator.orient_to(reference, load_labels(args.reference[1], len(reference)))
    if args.verbose:
        timings = {"load images + checkpoint header": loaded, **estimator.timings_}
        for stage, seconds in timings.items():
            print(f"{stage:>32}: {seconds:7.2f} s", file=sys.stderr)
    return estimator, images


def _cluster(args: argparse.Namespace) -> int:
    import numpy as np

    from aecluster.checkpoint import check_writable
    from aecluster.csvio import write_predictions

    check_writable(Path(args.output))
    estimator, _ = _fit_estimator(args)
    write_predictions(args.output, estimator.labels_)
    counts = np.bincount(estimator.labels_, minlength=2)
    _say(args, f"wrote {args.output}: {counts[0]} images labelled 0, {counts[1]} labelled 1")
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from aecluster.checkpoint import check_writable
    from aecluster.csvio import read_pairs, write_columns
    from aecluster.data import load_images

    check_writable(Path(args.output))
    pairs = read_pairs(args.pairs_csv, len(load_images(args.images)))
    estimator, _ = _fit_estimator(args)
    labels = estimator.labels_
    same = (labels[pairs[:, 1]] == labels[pairs[:, 2]]).astype(int)
    write_columns(args.output, ("id", "Ans"), [pairs[:, 0], same])
    _say(args, f"wrote {args.output}: {len(pairs)} pairs, {int(same.sum())} in the same group")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from aecluster.csvio import read_predictions
    from aecluster.data import load_labels
    from aecluster.metrics import score_all

    predicted = read_predictions(args.predictions)
    truth = load_labels(args.labels, len(predicted))
    scores = score_all(predicted, truth)
    print(f"ACC {scores['acc']:.4f}  NMI {scores['nmi']:.4f}  ARI {scores['ari']:.4f}  (N={len(truth)})")
    return 0


def _size(args: argparse.Namespace) -> int:
    from aecluster.deploy import describe_size

    info = describe_size(args.checkpoint)
    print(f"model {info['model']} ({info['weight_format']} weights, "
          f"{'with' if info['has_decoder'] else 'without'} decoder)")
    print(f"trainable params: {info['trainable']:,}")
    print(f"non-trainable params: {info['non_trainable']:,}")
    print(f"total params: {info['total']:,}")
    print(f"bytes on disk: {info['bytes']:,}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from aecluster.checkpoint import check_writable
    from aecluster.deploy import make_deployable

    check_writable(Path(args.output))
    make_deployable(args.checkpoint, args.output, args.weights)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size:,} bytes)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from aecluster.deploy import export_onnx

    export_onnx(args.checkpoint, args.output)
    print(f"wrote {args.output}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from aecluster.models import REGISTRY

    for name, spec in REGISTRY.items():
        print(f"{name:10} {spec.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs a command; user mistakes print one line and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plots"]:
        from aecluster.plots import main as plots_main

        return plots_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return run_reporting_errors("aecluster", lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
