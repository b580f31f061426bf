"""`aecluster predict`: label new images with a saved clustering, without refitting."""

from __future__ import annotations

import argparse
from typing import Any

from aecluster.cli.args import (
    add_device_option,
    add_force_option,
    add_names_option,
    file_names,
    label_counts,
    say,
    show_stages,
)
from aecluster.cli.outputs import guard_outputs
from aecluster.errors import UserInputError


def register(commands: Any) -> None:
    """Add the `predict` command to the `aecluster` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The parser's subcommands (`add_subparsers`); gets `predict`.
    """
    predict = commands.add_parser(
        "predict", help="label new images into the groups of a saved model",
        description="Place new images into the reduction and groups fitted by `aecluster cluster "
                    "... --save-model MODEL` and write `id,label` (ids 0..N-1). Nothing is refitted: "
                    "the same model and images always give the same file. .npy input is "
                    "memory-mapped and encoded batch by batch.")
    predict.add_argument("model", help="saved model (.pth from cluster --save-model or AEClusterer.save)")
    predict.add_argument("images", help="images to label (.npy or folder)")
    predict.add_argument("output", help="CSV file to write")
    add_device_option(predict)
    add_names_option(predict)
    predict.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    add_force_option(predict)
    predict.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from aecluster.api import AEClusterer
    from aecluster.csvio import write_predictions
    from aecluster.data import load_images

    guard_outputs([(args.output, "csv")], [args.model, args.images], force=args.force)
    names = file_names(args)
    show_stages(args.quiet)
    estimator = AEClusterer.from_checkpoint(args.model, device=args.device, verbose=not args.quiet)
    if not hasattr(estimator, "clusterer_"):
        raise UserInputError(f"{args.model}: holds an encoder but no fitted groups; make a saved model "
                             f"with `aecluster cluster IMAGES {args.model} OUT.csv --save-model MODEL.pth`")
    images = load_images(args.images)
    labels = estimator.predict(images)
    write_predictions(args.output, labels, names)
    say(args, f"wrote {args.output}: {label_counts(labels, estimator.label_map_)}")
    return 0
