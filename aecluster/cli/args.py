"""Argument types and option groups shared by the commands (torch-free, so `--help` is fast)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from aecluster.devices import resolve_device
from aecluster.errors import UserInputError
from aecluster.registry import (
    ARCHITECTURE_BOUNDS,
    AUGMENTATIONS,
    RECIPE_BOUNDS,
    SETTING_BOUNDS,
    Bounds,
    TrainSettings,
)


def bounded(bounds: Bounds) -> Callable[[str], Any]:
    """An argparse type for a number within `bounds` (NaN and infinities refused), with a
    one-line error otherwise.

    Parameters
    ----------
    bounds : Bounds
        The allowed range; `bounds.integer` makes the text parse as an int, else as a float.

    Returns
    -------
    callable
        A function str -> int or float for `add_argument(type=...)`; it raises
        `argparse.ArgumentTypeError` ("expected <bounds in words>, found '...'") for text that is
        not such a number or lies outside `bounds`.
    """

    def parse(text: str) -> Any:
        try:
            value: Any = int(text) if bounds.integer else float(text)
        except ValueError:
            value = None
        if not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"expected {bounds.describe()}, found {text!r}")
        return value

    return parse


def integer_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for integers >= `minimum` (and <= `maximum`), with a one-line error otherwise.

    Parameters
    ----------
    minimum : int
        The smallest integer accepted.
    maximum : int, optional
        The largest integer accepted; None for no upper bound.

    Returns
    -------
    callable
        A function str -> int for `add_argument(type=...)` (see `bounded`).
    """
    return bounded(Bounds(minimum, math.inf if maximum is None else maximum, integer=True))


def setting(name: str) -> Callable[[str], Any]:
    """An argparse type for training setting `name`, within its `SETTING_BOUNDS`.

    Parameters
    ----------
    name : str
        A key of `registry.SETTING_BOUNDS` ("epochs", "lr", "batch_size", ...).

    Returns
    -------
    callable
        A function str -> int or float for `add_argument(type=...)` (see `bounded`).
    """
    return bounded(SETTING_BOUNDS[name])


positive_int = integer_at_least(1)
group_count = bounded(RECIPE_BOUNDS["n_clusters"])
fine_count = bounded(RECIPE_BOUNDS["fine_clusters"])
seed_value = setting("seed")
positive_float = bounded(Bounds(0, low_open=True))
similarity = bounded(RECIPE_BOUNDS["threshold"])


def device_name(text: str) -> str:
    """An argparse type for a torch device this machine has (torch is imported only when given).

    Parameters
    ----------
    text : str
        The device as typed: "cpu", "cuda", "cuda:1", "mps".

    Returns
    -------
    str
        The device as torch writes it (`devices.resolve_device`).

    Raises
    ------
    argparse.ArgumentTypeError
        With `resolve_device`'s message, when torch does not know the device or this machine does
        not have it.
    """
    try:
        return resolve_device(text)
    except UserInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def method_name(text: str) -> str:
    """An argparse type for a clustering method (the list is imported only when one is given).

    Parameters
    ----------
    text : str
        The method as typed.

    Returns
    -------
    str
        `text`, one of `clustering.METHODS`.

    Raises
    ------
    argparse.ArgumentTypeError
        When `text` is not one of `clustering.METHODS`.
    """
    from aecluster.clustering import METHODS

    if text not in METHODS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(METHODS)}, found {text!r}")
    return text


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Add --device: the torch device that encodes (and trains).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; --device (type `device_name`, default None: cuda when available,
        else cpu) is added to it.
    """
    parser.add_argument("--device", type=device_name, help="torch device (default: cuda when available, else cpu)")


def add_names_option(parser: argparse.ArgumentParser) -> None:
    """Add --names: a file-name column in the CSV of folder input.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; the flag --names (`args.names`, read by `file_names`) is added to it.
    """
    parser.add_argument("--names", action="store_true",
                        help="add a third column, file, with each image's file name (folder input); "
                             "without it the CSV is the course's id,label")


def file_names(args: argparse.Namespace) -> list[str] | None:
    """The file-name column --names asks for (None without it); a one-line error when the images
    are not a folder. Listed with the loader's own order, so row i names image i; bytes of a name
    that are not UTF-8 become \\xNN escapes, so the CSV stays UTF-8.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; reads `args.names` (bool, --names) and `args.images` (the image
        path given).

    Returns
    -------
    list of str or None
        The file name (without folder) of each image, in `data.list_image_files` order; None when
        --names was not given.

    Raises
    ------
    UserInputError
        When --names is given but `args.images` is not a folder.
    """
    if not args.names:
        return None

    from aecluster.data import list_image_files

    if not Path(args.images).is_dir():
        raise UserInputError(f"--names: {args.images} is not a folder; file names exist only for folder input")
    return [os.fsencode(file.name).decode("utf-8", "backslashreplace") for file in list_image_files(args.images)[0]]


def add_force_option(parser: argparse.ArgumentParser) -> None:
    """Add --force: write an output whose extension names another kind of file.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; the flag --force (`args.force`) is added to it.
    """
    parser.add_argument("--force", action="store_true",
                        help="write the output even if its extension says it is another kind of file "
                             "(an output that is also an input is always refused)")


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument mistakes raise UserInputError, so a command reports them in one line (subparsers too)."""

    def error(self, message: str) -> NoReturn:
        """Raise the argument mistake `message` as a `UserInputError` instead of printing the usage and
        exiting.

        Parameters
        ----------
        message : str
            argparse's description of the mistake.

        Raises
        ------
        UserInputError
            Always: "MESSAGE (see PROG --help)".
        """
        raise UserInputError(f"{message} (see {self.prog} --help)")


def show_stages(quiet: bool) -> None:
    """Print the library's stage lines (reduce, cluster, skipped files) to stderr unless `quiet`.

    Installs (once per process) a handler on the "aecluster" logger that writes each record as
    "aecluster: MESSAGE" through `tqdm.write`, and stops the logger propagating to the root logger.

    Parameters
    ----------
    quiet : bool
        When True the logger's level is WARNING (stage lines hidden, warnings kept), else INFO.
    """
    class StderrLines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Through tqdm, so that a line never lands inside an open progress bar (imported here: --help stays fast).
            from tqdm import tqdm

            tqdm.write(f"aecluster: {record.getMessage()}", file=sys.stderr)

    logger = logging.getLogger("aecluster")
    if not any(type(handler).__name__ == "StderrLines" for handler in logger.handlers):
        logger.addHandler(StderrLines())
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's real default to its help; options without one (None, or a flag)
    and those whose help already names its default are left as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_grouping_options(parser: argparse.ArgumentParser) -> None:
    """The options overriding a checkpoint's clustering recipe (reduction, method, groups, seed);
    `recipe_overrides` turns them into `AEClusterer` parameters.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add --reduce, --method, --clusters, --fine-clusters, --threshold (all
        default None: the checkpoint's recipe) and --seed (default 0) to.
    """
    parser.add_argument("--reduce", metavar="CHAIN",
                        help="reducer chain NAME:DIM,... with NAME in pca, wpca, kpca, tsne, umap, "
                             "or 'l2' (e.g. 'kpca:200,tsne:2'; 'none' for raw codes). Default: the "
                             "checkpoint's recipe")
    parser.add_argument("--method", type=method_name,
                        help="kmeans: KMeans into --clusters groups. overcluster: KMeans into "
                             "--fine-clusters small groups whose centres are merged (Ward) down to "
                             "--clusters. scan: a linear head trained so that each image and its 20 "
                             "nearest neighbours share a group while all groups stay in use (SCAN, "
                             "Van Gansbeke et al. 2020). threshold: codes are centred and L2-normalised; images "
                             "whose cosine similarity to the codes' dominant direction (first "
                             "principal axis) exceeds --threshold form one group, all others the "
                             "second (two groups only). Default: the checkpoint's recipe")
    parser.add_argument("--clusters", type=group_count,
                        help="number of groups K; labels 0..K-1 in ascending order of the groups' "
                             "mean colour score, so for K=2 label 1 is the greener/bluer group "
                             "(default 2, or the saved model's)")
    parser.add_argument("--fine-clusters", type=fine_count,
                        help="fine groups of --method overcluster (and of cluster's --reference-mode groups) "
                             "(default 20, or the checkpoint's)")
    parser.add_argument("--threshold", type=similarity, default=None,
                        help="similarity threshold in [-1, 1] for --method threshold (default 0, or the checkpoint's)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of reduction and clustering (default 0)")


# The recipe keys that `add_grouping_options` (and deploy) set, and the option setting each.
RECIPE_OPTIONS = {"reduce": "--reduce", "method": "--method", "threshold": "--threshold",
                  "n_clusters": "--clusters", "fine_clusters": "--fine-clusters"}


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `AEClusterer` parameters given by `add_grouping_options`' options (those set).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; reads `args.reduce`, `args.method`, `args.threshold`,
        `args.clusters` and `args.fine_clusters` (`RECIPE_OPTIONS`).

    Returns
    -------
    dict
        Recipe key ("reduce", "method", "threshold", "n_clusters", "fine_clusters") -> value, for the
        options that are not None.
    """
    given = {key: getattr(args, option[2:].replace("-", "_")) for key, option in RECIPE_OPTIONS.items()}
    return {key: value for key, value in given.items() if value is not None}


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of commands that label images: grouping, --reference, output and verbosity.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; gets `add_grouping_options`' options, --reference VALX VALY,
        --reference-mode (orient or groups, default orient), --device, --verbose, --quiet and --force.
    """
    add_grouping_options(parser)
    parser.add_argument("--reference", nargs=2, metavar=("VALX", "VALY"),
                        help="labelled images and labels; see --reference-mode")
    parser.add_argument("--reference-mode", choices=("orient", "groups"), default="orient",
                        help="orient (default): only permute the labels 0..K-1 to best match the "
                             "reference labels. groups (USES LABELS, not label-free): over-cluster "
                             "into --fine-clusters groups and give each the majority label of the "
                             "reference images in it (a group with none: the nearest labelled "
                             "group's label); output labels are the reference's label values")
    add_device_option(parser)
    parser.add_argument("--verbose", action="store_true", help="print a per-stage timing breakdown")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    add_force_option(parser)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Add the inputs, output and settings shared by the training commands.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; gets the positionals images and output, and --width-multiplier,
        --epochs, --lr, --batch-size, --augment, --noise, --seed, --val, --snapshots, --resume,
        --device, --quiet and --force (the settings default to None: the model's config).
    """
    parser.add_argument("images", help="training images (.npy or folder)")
    parser.add_argument("output", help="checkpoint to write (.pth)")
    config = "default: the model's config"
    parser.add_argument("--width-multiplier", type=bounded(ARCHITECTURE_BOUNDS["width_multiplier"]),
                        help="scale every channel count (MobileNet's alpha; conv models only; default 1)")
    parser.add_argument("--epochs", type=setting("epochs"), help=f"training epochs ({config})")
    parser.add_argument("--lr", type=setting("lr"), help=f"peak learning rate, warm-up then cosine ({config})")
    parser.add_argument("--batch-size", type=setting("batch_size"), help=f"images per step ({config})")
    parser.add_argument("--augment", choices=AUGMENTATIONS, help=f"view augmentation ({config})")
    parser.add_argument("--noise", type=setting("noise"),
                        help=f"std of the denoising input noise in [-1,1] pixel units ({config})")
    parser.add_argument("--seed", type=seed_value,
                        help="seed of everything random (default 0; a resumed run keeps its own)")
    parser.add_argument("--val", nargs=2, metavar=("VALX", "VALY"),
                        help="labelled set whose clustering accuracy is recorded per snapshot "
                             "(recorded only; never used to choose anything)")
    parser.add_argument("--snapshots", type=setting("snapshots"), metavar="N",
                        help=f"evenly spaced snapshots kept in OUT_run/ (default {TrainSettings.snapshots}, the "
                             "course's minimum for the checkpoint curve; fewer for runs of fewer steps); only "
                             "the newest keeps the optimizer state, the others are weights only")
    parser.add_argument("--resume", metavar="SNAPSHOT",
                        help="continue from the newest snapshot in OUT_run/ (or OUT_run/teacher_run/ for a "
                             "student's teacher phase) with that run's settings")
    add_device_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_force_option(parser)


def say(args: argparse.Namespace, message: str) -> None:
    """Print a progress message to stderr unless the command was given --quiet.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; reads `args.quiet` (taken as False when absent).
    message : str
        The line to print.
    """
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def label_counts(labels: Any, possible: Any) -> str:
    """"40 images labelled 0, 24 labelled 1": how many of `labels` hold each possible label.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        The labels written.
    possible : array-like
        The label values to count (each distinct value once, ascending), e.g. a saved model's
        `label_map_`; a value no image holds is counted as 0.

    Returns
    -------
    str
        One "COUNT labelled VALUE" per value, comma-separated, the first as "COUNT images labelled VALUE".
    """
    import numpy as np

    text = ", ".join(f"{np.count_nonzero(labels == value)} labelled {value}" for value in np.unique(possible))
    return text.replace(" labelled", " images labelled", 1)
