"""Matplotlib figures of the report, drawn from numbers `compute` made (nothing computed here
beyond layout); each function returns an Agg-backed `Figure`."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.plots.compute import confusion_counts, mse_accuracy_correlation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from aecluster.plots.compute import EmbeddingPanel, GalleryGroup, SnapshotScore

DPI = 100
# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000",
}
PALETTE = [OKABE_ITO[name] for name in
           ("blue", "orange", "bluish green", "vermillion", "reddish purple", "sky blue", "yellow", "black")]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MSE_UNITS = "pixels scaled to [-1, 1]"
RECONSTRUCTION_COLUMNS = 10
NO_BREAK = "\u00a0"  # a space `fitted_title` does not wrap at
GALLERY_GAP = 2  # white pixels between the images of a gallery strip


def label_names(labels: Sequence[int], names: Sequence[str] | None = None) -> list[str]:
    """Display names of labels: "NAME (N)" with `names` (indexed by label value; a label beyond
    them keeps its number), else "label N".

    Parameters
    ----------
    labels : sequence of int
        The label values, in the order wanted.
    names : sequence of str, optional
        The name of label 0, 1, ...; None for none.

    Returns
    -------
    list of str
        One display name per label, in the order of `labels`.
    """
    return [f"{names[int(label)]} ({int(label)})" if names is not None and 0 <= int(label) < len(names)
            else f"label {int(label)}" for label in labels]


def unbreakable(text: str) -> str:
    """`text` marked so that `fitted_title` never wraps inside it (its spaces come back as spaces).

    Parameters
    ----------
    text : str
        A phrase of a title.

    Returns
    -------
    str
        `text` with each space replaced by `NO_BREAK` (U+00A0).
    """
    return text.replace(" ", NO_BREAK)


def styles(count: int) -> list[tuple[Any, str]]:
    """(colour, marker) of `count` series, all pairs distinct: the Okabe-Ito palette while it
    lasts, else `count` evenly spaced colours of the colour-blind-safe cividis map; markers
    cycle so that neighbouring colours also differ in shape.

    Parameters
    ----------
    count : int
        How many series.

    Returns
    -------
    list of (colour, str)
        For each series, a matplotlib colour (a hex string from `PALETTE`, or an RGBA array of
        cividis) and a marker of `MARKERS`.
    """
    from matplotlib import colormaps

    colours = PALETTE[:count] if count <= len(PALETTE) else list(colormaps["cividis"](np.linspace(0, 1, count)))
    return [(colour, MARKERS[position % len(MARKERS)]) for position, colour in enumerate(colours)]


def new_figure(width: float, height: float) -> Figure:
    """An Agg-backed figure (no display, no pyplot state) with constrained layout.

    Parameters
    ----------
    width : float
        Width in inches.
    height : float
        Height in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The empty figure, at `DPI` dots per inch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> None:
    """Write a PNG atomically: the file appears only once it is complete.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to write, at `DPI` dots per inch.
    path : str or Path
        The PNG file (`atomic.atomic_path`: a symlink is written through).

    Raises
    ------
    UserInputError
        When `path` cannot be written (`atomic.atomic_path`); nothing is changed then.
    """
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)


def fitted_title(text: str, figure: Figure) -> str:
    """`text` broken into lines that fit the figure's width (about 9 characters an inch), so that
    long titles, user-given ones included, are not cut off at the edges; never inside a phrase
    marked `unbreakable`.

    Parameters
    ----------
    text : str
        The title; its own line breaks are kept, each line wrapped on its own.
    figure : matplotlib.figure.Figure
        The figure whose width sets the line length (at least 30 characters).

    Returns
    -------
    str
        The wrapped title, with the `unbreakable` marks turned back into spaces. (`textwrap` still
        breaks a marked phrase after a hyphen, and one longer than a line.)
    """
    width = max(30, int(figure.get_figwidth() * 9))
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines()).replace(NO_BREAK, " ")


def reconstructions_figure(
    originals: np.ndarray, reconstructions: np.ndarray, indices: Sequence[int], errors: np.ndarray,
    title: str = "Autoencoder reconstructions",
) -> Figure:
    """Originals above their reconstructions, one column per index, wrapped after
    `RECONSTRUCTION_COLUMNS` columns into further pairs of rows.

    Parameters
    ----------
    originals : ndarray of shape (N, 32, 32, 3)
        The original images, uint8.
    reconstructions : ndarray of shape (N, 32, 32, 3)
        Their reconstructions, uint8 (`compute.reconstruct_images`).
    indices : sequence of int
        The image index of each column's caption (N of them).
    errors : ndarray of shape (N,)
        Each image's reconstruction MSE, pixels scaled to [-1, 1].
    title : str, default="Autoencoder reconstructions"
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    columns = min(len(indices), RECONSTRUCTION_COLUMNS)
    pairs = -(-len(indices) // columns)
    figure = new_figure(1.6 * columns + 1.0, 4.0 * pairs)
    axes = figure.subplots(2 * pairs, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for position, index in enumerate(indices):
        pair, column = divmod(position, columns)
        top, bottom = axes[2 * pair, column], axes[2 * pair + 1, column]
        top.imshow(originals[position], interpolation="nearest")
        bottom.imshow(reconstructions[position], interpolation="nearest")
        top.set_title(f"image {index}", fontsize=10)
        bottom.set_xlabel(f"MSE {errors[position]:.4f}", fontsize=9)
        for axis in (top, bottom):
            axis.set_axis_on()
            axis.set_xticks([])
            axis.set_yticks([])
    for pair in range(pairs):
        axes[2 * pair, 0].set_ylabel("original\n(32×32 px)")
        axes[2 * pair + 1, 0].set_ylabel("reconstruction\n(32×32 px)")
    figure.suptitle(fitted_title(title, figure))
    figure.supxlabel(f"rows: original above reconstruction; MSE per image ({MSE_UNITS})", fontsize=9)
    return figure


def embedding_figure(panels: Sequence[EmbeddingPanel], labels: np.ndarray, title: str | None = None,
                     names: Sequence[str] | None = None) -> Figure:
    """One scatter panel per checkpoint, points coloured by true label (`names`: see `label_names`),
    accuracy in each title.

    Parameters
    ----------
    panels : sequence of EmbeddingPanel
        One per checkpoint (`compute.embed_checkpoints`), drawn side by side.
    labels : ndarray of shape (N,)
        The true label of each point.
    title : str, optional
        The figure's title; None for "2-D embeddings of N images, coloured by true label".
    names : sequence of str, optional
        The names of labels 0, 1, ... for the legends; None for "label N".

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    figure = new_figure(5.0 * len(panels) + 0.4, 5.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    classes = [int(v) for v in np.unique(labels)]
    series = list(zip(classes, label_names(classes, names), styles(len(classes)), strict=True))
    for axis, panel in zip(axes, panels, strict=True):
        for label, name, (colour, marker) in series:
            chosen = labels == label
            axis.scatter(panel.coords[chosen, 0], panel.coords[chosen, 1], s=9, alpha=0.75, color=colour,
                         marker=marker, linewidths=0, label=f"{name}: {int(chosen.sum())}", rasterized=True)
        axis.set_title(f"{panel.model} ({panel.source})\nclustering accuracy {panel.accuracy:.1%}")
        axis.set_xlabel(panel.axis_labels[0])
        axis.set_ylabel(panel.axis_labels[1])
        axis.legend(title="true label: images", loc="best", fontsize=9, markerscale=1.8)
    figure.suptitle(fitted_title(title or f"2-D embeddings of {len(labels)} images, coloured by true label",
                                 figure))
    return figure


def checkpoints_figure(scores: Sequence[SnapshotScore], title: str = "Training snapshots") -> Figure:
    """Reconstruction MSE (left axis) and val accuracy (right axis) against epoch.

    Parameters
    ----------
    scores : sequence of SnapshotScore
        One per snapshot (`compute.score_snapshots`), in epoch order.
    title : str, default="Training snapshots"
        The start of the title; the snapshot count and the Pearson correlation of MSE and accuracy
        (`compute.mse_accuracy_correlation`) follow it.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    figure = new_figure(8.0, 5.0)
    left = figure.subplots()
    right = left.twinx()
    epochs = [s.epoch for s in scores]
    mse_colour, acc_colour = OKABE_ITO["vermillion"], OKABE_ITO["blue"]
    mse_line = left.plot(epochs, [s.mse for s in scores], color=mse_colour, marker="o",
                         label="reconstruction MSE on all training images (left)")
    acc_line = right.plot(epochs, [s.accuracy for s in scores], color=acc_colour, marker="s", linestyle="--",
                          label="validation clustering accuracy (right)")
    left.set_xlabel("epoch (passes over the training images)")
    left.set_ylabel(f"reconstruction MSE ({MSE_UNITS})", color=mse_colour)
    right.set_ylabel("validation accuracy (fraction, best matching)", color=acc_colour)
    left.tick_params(axis="y", colors=mse_colour)
    right.tick_params(axis="y", colors=acc_colour)
    left.grid(alpha=0.3)
    lowest = min((s.accuracy for s in scores), default=0.5)
    right.set_ylim(min(0.45, lowest - 0.02), 1.02)
    figure.legend(handles=mse_line + acc_line, loc="outside lower center", ncols=2, fontsize=9)
    correlation = mse_accuracy_correlation(scores)
    summary = "undefined (a series is constant)" if math.isnan(correlation) else f"{correlation:+.2f}"
    left.set_title(fitted_title(f"{title}: {len(scores)} snapshots, Pearson r(MSE, accuracy) = {summary}", figure))
    return figure


def confusion_figure(predicted: np.ndarray, truth: np.ndarray, title: str = "Confusion matrix",
                     names: Sequence[str] | None = None) -> Figure:
    """Counts and row rates of true labels (rows) against predicted groups (columns), for any
    number of either; the pairs of the best one-to-one matching lie on the (outlined) diagonal.
    `names`: the labels' display names (see `label_names`).

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        The predicted group of each image.
    truth : ndarray of shape (N,)
        The true label of each image.
    title : str, default="Confusion matrix"
        The first line of the title; the image, group and label counts, the accuracy and the
        matching follow it.
    names : sequence of str, optional
        The names of labels 0, 1, ...; None for "label N".

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib.patches import Rectangle

    table = confusion_counts(predicted, truth)
    counts, size = table.counts, max(table.counts.shape)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = label_names(table.labels, names)
    figure = new_figure(max(6.4, 1.1 * size + 2.4), max(5.4, 0.9 * size + 2.2))
    axis = figure.subplots()
    image = axis.imshow(rates, cmap="cividis", vmin=0, vmax=1)
    for row, column in np.ndindex(counts.shape):
        colour = "black" if rates[row, column] > 0.5 else "white"
        axis.text(column, row, f"{counts[row, column]}\n{rates[row, column]:.1%} of row", ha="center",
                  va="center", color=colour, fontsize=max(6, 12 - size // 2))
    for index in range(table.matched):
        axis.add_patch(Rectangle((index - 0.5, index - 0.5), 1, 1, fill=False, edgecolor=OKABE_ITO["vermillion"],
                                 linewidth=2))
    axis.set_xticks(range(len(table.groups)), [
        f"group {group}\n→ {names[index]}" if index < table.matched else f"group {group}\n(unmatched)"
        for index, group in enumerate(table.groups)])
    axis.set_yticks(range(len(names)), names, rotation=90 if len(names) <= 3 else 0, va="center")
    axis.set_xlabel("predicted group, matched to a label (images)")
    axis.set_ylabel("true label (images)")
    figure.colorbar(image, ax=axis, label="row rate (fraction of the true label's images)")
    matching = ", ".join(unbreakable(f"group {group}→{name}")
                         for group, name in zip(table.matching, names, strict=False))
    facts = ", ".join(map(unbreakable, [f"N={counts.sum()}", f"{len(table.groups)} groups", f"{len(names)} labels",
                                         f"accuracy {table.accuracy:.1%}"]))
    axis.set_title(fitted_title(f"{title}\n{facts}\nbest one-to-one matching of groups to labels (outlined): "
                                f"{matching}", figure), fontsize=10)
    return figure


def size_accuracy_figure(results: dict[str, Any]) -> Figure:
    """Accuracy against encoder parameters (log scale), one line per encoder family.

    Parameters
    ----------
    results : dict
        The checked results, as `compute.load_size_results` returns them: "points" (each with
        "family", "params", "acc", "acc_std" and "name"), "metric" (the y-axis label) and
        "benchmark" (named in the title when not None).

    Returns
    -------
    matplotlib.figure.Figure
        The figure: one line per family in the order families first appear, each point's
        "acc_std" as an error bar and its "name" beside it.
    """
    figure = new_figure(7.5, 5.0)
    axis = figure.subplots()
    families = list(dict.fromkeys(point["family"] for point in results["points"]))
    for family, (colour, marker) in zip(families, styles(len(families)), strict=True):
        points = sorted((p for p in results["points"] if p["family"] == family), key=lambda p: p["params"])
        axis.errorbar([p["params"] for p in points], [p["acc"] for p in points],
                      yerr=[p["acc_std"] for p in points], marker=marker, capsize=3,
                      color=colour, label=f"{family} ({len(points)} model{'' if len(points) == 1 else 's'})")
        for point in points:
            if point["name"]:
                axis.annotate(point["name"], (point["params"], point["acc"]), textcoords="offset points",
                              xytext=(4, 5), fontsize=9)
    axis.set_xscale("log")
    axis.margins(x=0.1, y=0.08)
    axis.set_xlabel("encoder parameters (count, log scale)")
    axis.set_ylabel(f"{results['metric']} (fraction)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(title="encoder family", loc="best")
    benchmark = f" on {results['benchmark']}" if results.get("benchmark") else ""
    axis.set_title(fitted_title(f"Model size vs {results['metric']}{benchmark}", figure))
    return figure


def image_strip(images: np.ndarray, indices: np.ndarray, slots: int) -> np.ndarray:
    """The images at `indices` side by side, `GALLERY_GAP` white pixels apart, on a white strip
    `slots` images wide (so strips of small groups keep the others' scale).

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3)
        The images, uint8.
    indices : ndarray of shape (M,)
        The images to show, left to right (M <= `slots`).
    slots : int
        How many images the strip has room for.

    Returns
    -------
    ndarray of shape (H, slots * (W + GALLERY_GAP) - GALLERY_GAP, 3)
        The strip, uint8.
    """
    height, width = images.shape[1:3]
    strip = np.full((height, slots * (width + GALLERY_GAP) - GALLERY_GAP, 3), 255, dtype=np.uint8)
    for slot, index in enumerate(indices):
        start = slot * (width + GALLERY_GAP)
        strip[:, start:start + width] = images[index]
    return strip


def gallery_figure(images: np.ndarray, groups: Sequence[GalleryGroup], per_group: int,
                   title: str = "Gallery of the groups") -> Figure:
    """One row per group: its most typical images (left) and its most borderline ones (right),
    each captioned with its image index (and the group it borders), upscaled without blur.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3)
        The clustered images, uint8.
    groups : sequence of GalleryGroup
        The groups' picks (`compute.gallery_groups`), one row each.
    per_group : int
        The most images a strip shows (the `per_group` the picks were made with).
    title : str, default="Gallery of the groups"
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    width = images.shape[2]
    figure = new_figure(max(7.0, 1.5 * per_group + 1.2), 1.35 * len(groups) + 0.9)
    axes = figure.subplots(len(groups), 2, squeeze=False)
    ticks = [slot * (width + GALLERY_GAP) + (width - 1) / 2 for slot in range(per_group)]
    for (left, right), group in zip(axes, groups, strict=True):
        panels = ((left, group.typical, [f"#{i}" for i in group.typical],
                   f"group {group.label}: {group.size} image{'s' if group.size != 1 else ''}; most typical"),
                  (right, group.borderline, [f"#{i} → {n}" for i, n in zip(group.borderline, group.neighbours,
                                                                            strict=True)],
                   "most borderline (→ nearest other group)" if len(groups) > 1 else "none borderline: one group"))
        for axis, chosen, captions, heading in panels:
            axis.imshow(image_strip(images, chosen, per_group), interpolation="nearest")
            axis.set_xticks(ticks[:len(chosen)], captions, fontsize=8)
            axis.set_yticks([])
            axis.tick_params(length=0)
            axis.set_title(heading, fontsize=9, loc="left")
    figure.suptitle(fitted_title(title, figure))
    figure.supxlabel(fitted_title("typical: nearest the group's centre; borderline: least farther from another "
                                  "group's centre than from its own; #: image index (its id in the CSV); "
                                  "32×32 px enlarged without smoothing", figure), fontsize=9)
    return figure
