"""`aecluster plots FIGURE ...` (also `python -m aecluster.plots`): one subcommand per report figure;
each computes with `aecluster.plots.compute`, draws with `aecluster.plots.draw` and writes one PNG
atomically (no half-written file on failure)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aecluster.atomic import check_writable
from aecluster.cli.args import (
    OneLineErrorParser,
    add_grouping_options,
    integer_at_least,
    recipe_overrides,
    show_stages,
)
from aecluster.cli.outputs import guard_outputs
from aecluster.errors import UserInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_INDICES = (1, 2, 3, 6, 7, 9)
GALLERY_HELP = "each group's most typical and most borderline images"
GALLERY_DESCRIPTION = (
    "One row per group of a prediction CSV (any number of groups): the group's size, its N most "
    "typical images (nearest the group's centre) and its N most borderline ones (smallest margin "
    "between the distance to the nearest other group's centre and to its own), each captioned with "
    "its image index, enlarged without smoothing. Distances are between codes: raw pixels scaled to "
    "[0, 1], or the encoder's codes with --checkpoint.")


def register(commands: Any) -> None:
    """Add `plots` and its figures to the `aecluster` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The parser's subcommands (`add_subparsers`); gets `plots` (with the figures
        reconstructions, embedding, checkpoints, confusion, size-accuracy and gallery) and the
        top-level `gallery`, each setting `handler` and `figure_of` defaults.
    """
    plots = commands.add_parser(
        "plots", help="draw a report figure into a PNG file (also python -m aecluster.plots)",
        description="Draw a report figure into a PNG file (Agg backend, colour-blind-safe Okabe-Ito "
                    "colours, 100 dpi).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    recipe = argparse.ArgumentParser(add_help=False)
    add_grouping_options(recipe)
    figures = plots.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    command = figures.add_parser(
        "reconstructions", parents=[common], help="originals above their reconstructions",
        description="Draw the chosen training images (top row) above the checkpoint's reconstructions "
                    "of them (bottom row), with each image's reconstruction MSE.")
    command.add_argument("images", help="training images (.npy or folder), e.g. trainX.npy")
    command.add_argument("checkpoint", help="trained checkpoint with a decoder (.pth)")
    command.add_argument("output", help="PNG file to write")
    command.add_argument("--indices", type=_indices, default=list(DEFAULT_INDICES),
                         help="comma-separated image indices (default 1,2,3,6,7,9)")
    command.set_defaults(handler=_write, figure_of=_reconstructions)

    command = figures.add_parser(
        "embedding", parents=[common, recipe], help="2-D embeddings coloured by true label",
        description="Cluster the images with each checkpoint's own recipe and scatter the 2-D embedding "
                    "the clustering ran in (PCA to 2-D when the recipe's last reducer is not 2-D), "
                    "points coloured by true label; one panel per checkpoint, side by side, with "
                    "its model name and clustering accuracy in the panel title.")
    command.add_argument("images", help="labelled images (.npy or folder), e.g. valX.npy")
    command.add_argument("labels", help="(N,) integer .npy of true labels, e.g. valY.npy")
    command.add_argument("checkpoints", nargs="+", metavar="CKPT", help="one or more checkpoints (.pth)")
    command.add_argument("output", help="PNG file to write")
    add_label_names_option(command)
    command.set_defaults(handler=_write, figure_of=_embedding)

    command = figures.add_parser(
        "checkpoints", parents=[common, recipe], help="reconstruction error and accuracy per snapshot",
        description="For every step_*.pth snapshot of a training run folder, compute the reconstruction "
                    "MSE on all training images and the validation clustering accuracy (snapshot's "
                    "own recipe); plot both against epoch on two y axes.")
    command.add_argument("run_dir", help="run folder written by `aecluster train` (OUT_run/)")
    command.add_argument("train_images", help="training images (.npy, memory-mapped), e.g. trainX.npy")
    command.add_argument("val_images", help="validation images, e.g. valX.npy")
    command.add_argument("val_labels", help="validation labels, e.g. valY.npy")
    command.add_argument("output", help="PNG file to write")
    command.set_defaults(handler=_write, figure_of=_checkpoints)

    command = figures.add_parser(
        "confusion", parents=[common], help="confusion matrix of a prediction CSV",
        description="Match predicted groups to labels by the best one-to-one matching, then draw "
                    "the confusion matrix (true label rows, predicted group columns, any number of "
                    "either; matched pairs on the outlined diagonal, unmatched groups or labels "
                    "after it) with the count and the row rate in each cell.")
    command.add_argument("predictions", help="id,label CSV (e.g. from `aecluster cluster`)")
    command.add_argument("labels", help="(N,) integer .npy of true labels")
    command.add_argument("output", help="PNG file to write")
    add_label_names_option(command)
    command.set_defaults(handler=_write, figure_of=_confusion)

    command = figures.add_parser(
        "size-accuracy", parents=[common], help="accuracy against encoder size per family",
        description="Plot accuracy against encoder parameters (log scale), one line per encoder family, "
                    "from a RESULTS.json of the form {\"benchmark\": ..., \"points\": [{\"family\": ..., "
                    "\"params\": ..., \"acc\": ..., \"name\": ...}, ...]} (see the aecluster.plots "
                    "package docstring).")
    command.add_argument("results", help="RESULTS.json of a size sweep")
    command.add_argument("output", help="PNG file to write")
    command.set_defaults(handler=_write, figure_of=_size_accuracy)

    add_gallery_arguments(figures.add_parser("gallery", parents=[common], help=GALLERY_HELP,
                                             description=GALLERY_DESCRIPTION))
    add_gallery_arguments(commands.add_parser(
        "gallery", parents=[common], help=f"{GALLERY_HELP} (= plots gallery)",
        description=f"{GALLERY_DESCRIPTION} The same as `aecluster plots gallery`."))


MAX_PER_GROUP = 20  # images of each kind per group in a gallery


def add_gallery_arguments(command: argparse.ArgumentParser) -> None:
    """The inputs and options of `gallery` (both `aecluster gallery` and `aecluster plots gallery`).

    Parameters
    ----------
    command : argparse.ArgumentParser
        The gallery command's parser; gets the positionals images, predictions and output,
        --checkpoint and --per-group (1 to `MAX_PER_GROUP`, default 8), and its handler.
    """
    command.add_argument("images", help="the clustered images (.npy or folder)")
    command.add_argument("predictions", help="id,label CSV with one row per image (e.g. from `aecluster cluster`)")
    command.add_argument("output", help="PNG file to write")
    command.add_argument("--checkpoint", metavar="CKPT",
                         help="measure distances between this checkpoint's encoder codes (default: raw pixels)")
    command.add_argument("--per-group", type=integer_at_least(1, MAX_PER_GROUP), default=8, metavar="N",
                         help="typical and borderline images shown per group (default 8)")
    command.set_defaults(handler=_write, figure_of=_gallery)


def add_label_names_option(command: argparse.ArgumentParser) -> None:
    """Add --label-names: what the true labels 0, 1, ... mean, for the figure's legend and ticks.

    Parameters
    ----------
    command : argparse.ArgumentParser
        The figure's parser; --label-names (a list of names, default None) is added to it.
    """
    command.add_argument("--label-names", type=_names, metavar="NAME0,NAME1,...",
                         help="names of the true labels 0, 1, ... in order, e.g. 'not landscape,landscape' "
                              "(shown as 'landscape (1)'; default 'label 0', 'label 1', ...)")


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names such as 'not landscape,landscape', "
                                         f"found {text!r}")
    return names


def _checked_names(args: argparse.Namespace, labels: Any) -> list[str] | None:
    """--label-names, if it names every label value in `labels` (a one-line error otherwise)."""
    import numpy as np

    names, largest = args.label_names, int(np.max(labels))
    if names is not None and (largest >= len(names) or int(np.min(labels)) < 0):
        raise UserInputError(f"--label-names: {len(names)} name(s) for labels 0 to {len(names) - 1}, but "
                             f"{args.labels} holds labels from {int(np.min(labels))} to {largest}")
    return names


MAX_RECONSTRUCTIONS = 60  # images in one reconstructions figure (six rows of ten)


def _indices(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated image indices, found {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative indices, found {text!r}")
    if len(values) > MAX_RECONSTRUCTIONS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_RECONSTRUCTIONS} indices (a readable figure), "
                                         f"found {len(values)}")
    return values


def _reconstructions(args: argparse.Namespace) -> Figure:
    import numpy as np

    from aecluster.checkpoint import load_model
    from aecluster.data import load_images
    from aecluster.plots.compute import reconstruct_images, require_decoder
    from aecluster.plots.draw import reconstructions_figure

    images = load_images(args.images)
    bad = [i for i in args.indices if i >= len(images)]
    if bad:
        raise UserInputError(f"{args.images}: has {len(images)} images, so index {bad[0]} is out of range")
    model, payload = load_model(args.checkpoint)
    require_decoder(model, args.checkpoint)
    originals = np.asarray(images[args.indices])
    reconstructed, errors = reconstruct_images(model, originals)
    title = f"{payload['model']} autoencoder ({Path(args.checkpoint).name}) on {Path(args.images).name}"
    return reconstructions_figure(originals, reconstructed, args.indices, errors, title)


def _embedding(args: argparse.Namespace) -> Figure:
    from aecluster.data import load_images, load_labels
    from aecluster.plots.compute import embed_checkpoints
    from aecluster.plots.draw import embedding_figure

    images = load_images(args.images, min_images=2)
    labels = load_labels(args.labels, len(images))
    names = _checked_names(args, labels)
    panels = embed_checkpoints(images, labels, args.checkpoints, recipe_overrides(args), args.seed, not args.quiet)
    return embedding_figure(panels, labels, f"2-D embeddings of {Path(args.images).name} "
                                            f"({len(images)} images), coloured by true label", names)


def _checkpoints(args: argparse.Namespace) -> Figure:
    from aecluster.data import load_images, load_labels
    from aecluster.plots.compute import score_snapshots
    from aecluster.plots.draw import checkpoints_figure

    train = load_images(args.train_images)
    val = load_images(args.val_images, min_images=2)
    labels = load_labels(args.val_labels, len(val))
    scores = score_snapshots(args.run_dir, train, val, labels, recipe_overrides(args), args.seed,
                             progress=not args.quiet)
    return checkpoints_figure(scores, Path(args.run_dir).resolve().name)


def _confusion(args: argparse.Namespace) -> Figure:
    from aecluster.csvio import read_predictions
    from aecluster.data import load_labels
    from aecluster.plots.draw import confusion_figure

    predicted = read_predictions(args.predictions)
    truth = load_labels(args.labels, len(predicted))
    return confusion_figure(predicted, truth, f"Confusion matrix of {Path(args.predictions).name}",
                            _checked_names(args, truth))


def _size_accuracy(args: argparse.Namespace) -> Figure:
    from aecluster.plots.compute import load_size_results
    from aecluster.plots.draw import size_accuracy_figure

    results = load_size_results(args.results)
    for family in dict.fromkeys(point["family"] for point in results["points"]):
        count = sum(point["family"] == family for point in results["points"])
        if count < 3:
            warnings.warn(f"{args.results}: family {family!r} has {count} point(s); a size comparison "
                          "wants at least 3 per family", stacklevel=2)
    return size_accuracy_figure(results)


def _gallery(args: argparse.Namespace) -> Figure:
    from aecluster.csvio import read_predictions
    from aecluster.data import list_image_files, load_images
    from aecluster.plots.compute import gallery_groups, pixel_codes
    from aecluster.plots.draw import gallery_figure

    image_files = list_image_files(args.images)[0] if Path(args.images).is_dir() else [args.images]
    guard_outputs([(args.output, "png")], [*image_files, args.predictions, args.checkpoint])
    images = load_images(args.images)
    labels = read_predictions(args.predictions)
    if len(labels) != len(images):
        raise UserInputError(f"{args.predictions}: has {len(labels)} rows, but {args.images} has {len(images)} "
                             "images; expected one row per image")
    if args.checkpoint is None:
        codes, source = pixel_codes(images), "raw pixels"
    else:
        from aecluster.checkpoint import load_model
        from aecluster.encoding import encode_images

        model, payload = load_model(args.checkpoint)
        codes, source = encode_images(model, images), f"{payload['model']} codes ({Path(args.checkpoint).name})"
    groups = gallery_groups(codes, labels, args.per_group)
    return gallery_figure(images, groups, args.per_group,
                          f"Groups of {Path(args.predictions).name} on {Path(args.images).name}: {len(groups)} "
                          f"groups, {len(images)} images; distances between {source}")


def _draw_parsed(args: argparse.Namespace) -> Figure:
    """Compute and draw the parsed figure, write it to the output PNG; return the figure."""
    from aecluster.plots.draw import save_figure

    if Path(args.output).suffix.lower() != ".png":
        raise UserInputError(f"{args.output}: output must be a .png file")
    check_writable(args.output)
    show_stages(args.quiet)
    figure = args.figure_of(args)
    save_figure(figure, args.output)
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)
    return figure


def _write(args: argparse.Namespace) -> int:
    _draw_parsed(args)
    return 0


def draw(argv: Sequence[str]) -> Figure:
    """`aecluster plots ARGV...` as a function: writes the PNG and returns its figure.

    Parameters
    ----------
    argv : sequence of str
        The arguments after `plots`: the figure's name, then its arguments and options, as on the
        command line.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written to the output PNG.

    Raises
    ------
    UserInputError
        For an argument mistake (no usage message, no exit), an output not named .png or not
        writable, or any user mistake the figure's computation finds.
    SystemExit
        From argparse, for --help (exit status 0).
    """
    parser = OneLineErrorParser(prog="aecluster")
    register(parser.add_subparsers(dest="command"))
    return _draw_parsed(parser.parse_args(["plots", *argv]))
