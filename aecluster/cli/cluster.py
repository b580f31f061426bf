"""`aecluster cluster`, `pairs` and `evaluate`: labelling images and scoring predictions."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from aecluster.atomic import atomic_path
from aecluster.cli.args import (
    RECIPE_OPTIONS,
    add_names_option,
    add_recipe_options,
    file_names,
    label_counts,
    recipe_overrides,
    say,
    show_stages,
)
from aecluster.cli.outputs import guard_outputs
from aecluster.errors import UserInputError


def register(commands: Any) -> None:
    """Add the clustering and scoring commands to the `aecluster` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The parser's subcommands (`add_subparsers`); gets `cluster`, `pairs` and `evaluate`.
    """
    cluster = commands.add_parser(
        "cluster", help="label images 0..K-1 and write id,label CSV",
        description="Encode images with a checkpoint, reduce, split into --clusters groups (default "
                    "2) and write `id,label` (ids 0..N-1). Labels follow the groups' mean colour "
                    "score, so for two groups label 1 = the greener/bluer images, unless --reference "
                    "orients them. --save-model keeps the fitted groups for `aecluster predict`.")
    cluster.add_argument("images", help="images to cluster (.npy or folder)")
    cluster.add_argument("checkpoint", help="trained checkpoint (.pth)")
    cluster.add_argument("output", help="CSV file to write")
    add_names_option(cluster)
    add_recipe_options(cluster)
    cluster.add_argument("--save-model", metavar="MODEL",
                         help="also write the encoder with the fitted reduction and groups (tensors "
                              "and plain values, nothing pickled) for `aecluster predict MODEL ...`")
    cluster.set_defaults(handler=_cluster)

    pairs = commands.add_parser(
        "pairs", help="answer same-group questions for image pairs",
        description="Cluster the images as `cluster` does, then write `id,Ans` for each row of "
                    "`id,image1_index,image2_index`: 1 when both images fall in the same group.")
    pairs.add_argument("images")
    pairs.add_argument("checkpoint")
    pairs.add_argument("pairs_csv", help="CSV with header id,image1_index,image2_index")
    pairs.add_argument("output", help="CSV file to write (id,Ans)")
    add_recipe_options(pairs)
    pairs.set_defaults(handler=_pairs)

    evaluate = commands.add_parser(
        "evaluate", help="score a prediction CSV against labels",
        description="Print ACC (under the best one-to-one matching of groups to labels), NMI and ARI; "
                    "when the number of groups differs from the number of label values, also purity "
                    "(each group takes its majority label).")
    evaluate.add_argument("predictions", help="id,label CSV")
    evaluate.add_argument("labels", help="(N,) integer .npy of true labels")
    evaluate.set_defaults(handler=_evaluate)


def _guard(args: argparse.Namespace, *inputs: str | None) -> None:
    """Refuse, before any work, an output that is an input or whose extension contradicts its kind."""
    outputs = [(args.output, "csv")]
    if getattr(args, "save_model", None):
        outputs.append((args.save_model, "checkpoint"))
    guard_outputs(outputs, [*inputs, *(args.reference or ())], force=args.force)


def _fit_estimator(args: argparse.Namespace, images: Any = None) -> Any:
    """The AEClusterer of `args.checkpoint` fitted on `args.images` (or on `images`, when the
    command has loaded them already) with the command's recipe options."""
    from aecluster.api import AEClusterer
    from aecluster.data import load_images, load_labels
    from aecluster.naming import orientable_labels

    show_stages(args.quiet)
    clock = time.perf_counter()
    overrides = recipe_overrides(args)
    if args.reference_mode == "groups":
        if not args.reference:
            raise UserInputError("--reference-mode groups needs --reference VALX VALY (labelled images)")
        if args.method not in (None, "overcluster"):
            raise UserInputError(f"--reference-mode groups names the fine groups of --method "
                                 f"overcluster, not --method {args.method}")
        overrides["method"] = "overcluster"
    estimator = AEClusterer.from_checkpoint(args.checkpoint, random_state=args.seed, device=args.device,
                                            verbose=not args.quiet, **overrides)
    method = estimator.resolved_recipe()["method"]
    if args.threshold is not None and method != "threshold":
        chosen_by = ("" if args.method else " (set by --reference-mode groups)" if args.reference_mode == "groups"
                     else " (the checkpoint's recipe)")
        raise UserInputError(f"--threshold applies to --method threshold only, and this run uses --method "
                             f"{method}{chosen_by}")
    if getattr(args, "save_model", None):
        estimator.check_savable()
    if images is None:
        images = load_images(args.images, min_images=2)
    estimator.check_recipe(len(images), "command line", RECIPE_OPTIONS)
    if args.reference:
        reference = load_images(args.reference[0])
        reference_labels = load_labels(args.reference[1], len(reference))
    if args.reference and args.reference_mode == "orient":
        orientable_labels(reference_labels, estimator.n_clusters, args.reference[1])
    loaded = time.perf_counter() - clock
    if args.reference_mode == "groups":
        print(f"aecluster: LABELS USED: --reference-mode groups names the groups with the labels of "
              f"{args.reference[1]} ({len(reference_labels)} images); this is not label-free clustering",
              file=sys.stderr)
    estimator.fit(images)
    if args.reference_mode == "groups":
        estimator.label_from_reference(reference, reference_labels)
    elif args.reference:
        estimator.orient_to(reference, reference_labels)
    if args.verbose:
        timings = {"load images + checkpoint header": loaded, **estimator.timings_}
        for stage, seconds in timings.items():
            print(f"{stage:>32}: {seconds:7.2f} s", file=sys.stderr)
    return estimator


def _cluster(args: argparse.Namespace) -> int:
    from aecluster.csvio import write_predictions

    _guard(args, args.images, args.checkpoint)
    names = file_names(args)
    estimator = _fit_estimator(args)
    model = None
    try:
        with contextlib.ExitStack() as both:
            # The model goes to a temporary that becomes the model only once the CSV is written too.
            if args.save_model:
                model = both.enter_context(atomic_path(args.save_model))
                estimator.save(model, force=True)
            write_predictions(args.output, estimator.labels_, names)
    except UserInputError as error:
        if model is None:
            raise
        raise UserInputError(str(error).replace(str(model), str(args.save_model))) from None
    if args.save_model:
        say(args, f"wrote {args.save_model}: encoder + fitted groups; label new images with "
                  f"`aecluster predict {args.save_model} IMAGES OUT.csv`")
    say(args, f"wrote {args.output}: {label_counts(estimator.labels_, estimator.label_map_)}")
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from aecluster.csvio import read_pairs, write_columns
    from aecluster.data import load_images

    _guard(args, args.images, args.checkpoint, args.pairs_csv)
    show_stages(args.quiet)
    images = load_images(args.images, min_images=2)
    pairs = read_pairs(args.pairs_csv, len(images))
    estimator = _fit_estimator(args, images)
    labels = estimator.labels_
    same = (labels[pairs[:, 1]] == labels[pairs[:, 2]]).astype(int)
    write_columns(args.output, ("id", "Ans"), [pairs[:, 0], same])
    say(args, f"wrote {args.output}: {len(pairs)} pairs, {int(same.sum())} in the same group")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from aecluster.csvio import read_predictions
    from aecluster.data import load_labels
    from aecluster.metrics import purity, score_all

    predicted = read_predictions(args.predictions)
    truth = load_labels(args.labels, len(predicted))
    scores = score_all(predicted, truth)
    print(f"ACC {scores['acc']:.4f}  NMI {scores['nmi']:.4f}  ARI {scores['ari']:.4f}  (N={len(truth)})")
    groups, values = len(np.unique(predicted)), len(np.unique(truth))
    if groups != values:
        # With K groups and K' labels, ACC leaves |K - K'| of them unmatched and counts their
        # images as wrong; purity shows how well the groups separate the labels nonetheless.
        unmatched = abs(groups - values)
        noun = "group" if groups > values else "label"
        left = f"1 {noun} stays" if unmatched == 1 else f"{unmatched} {noun}s stay"
        each = "the one group takes" if groups == 1 else f"each of the {groups} groups takes"
        print(f"purity {purity(predicted, truth):.4f} ({each} its majority label; "
              f"ACC matches groups to labels one to one, so {left} unmatched)")
    return 0

