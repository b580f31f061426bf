"""Report figures: `python -m aecluster.plots FIGURE ARGS...` (or `aecluster plots FIGURE ARGS...`).

Figures (each subcommand writes one PNG; `FIGURE --help` says what it draws):

  reconstructions  trainX.npy CKPT out.png [--indices 1,2,3,6,7,9]
  embedding        valX.npy valY.npy CKPT [CKPT ...] out.png
  checkpoints      RUN_DIR trainX.npy valX.npy valY.npy out.png
  confusion        pred.csv labels.npy out.png
  size-accuracy    RESULTS.json out.png

Reconstruction errors are mean squared errors per pixel and channel, with pixels scaled to [-1, 1]
exactly as the models see them in training (`data.to_tensor`), so they match `train_mse` in a run's
history.json. Accuracies are `metrics.clustering_accuracy`: the fraction of images whose group maps
to their label under the best one-to-one matching of groups to labels.

RESULTS.json of `size-accuracy` (written by a size sweep), UTF-8 JSON::

    {
      "benchmark": "two_source val, 500 images",      (optional string, shown in the title)
      "metric": "val clustering accuracy",             (optional string, the y-axis label)
      "points": [                                      (required, non-empty list)
        {"family": "separable", "params": 12345, "acc": 0.91, "name": "sep-w16"},
        {"family": "plain", "params": 45678, "acc": 0.93, "name": "plain-w32"},
        ...
      ]
    }

Each point: "family" (non-empty string; one line per family, e.g. "separable" or "plain"),
"params" (positive number: trainable parameters of the encoder), "acc" (number in [0, 1]), an
optional "acc_std" (number in [0, 1]: the spread over seeds, drawn as an error bar) and an
optional "name" (string, written beside the point). Each family should have at least 3 points;
fewer draws the figure anyway and prints a warning.

Every drawing function returns its `matplotlib.figure.Figure` (an Agg canvas, never a display);
`draw` parses arguments, computes, draws and writes the PNG atomically (no half-written file on
failure) and returns the figure; `main` turns user errors into one line and exit code 2.
torch and matplotlib are imported inside functions, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from aecluster.errors import UserInputError, run_reporting_errors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from aecluster.models import Autoencoder

PROG = "aecluster plots"
DPI = 100
DEFAULT_INDICES = (1, 2, 3, 6, 7, 9)
# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000",
}
PALETTE = [OKABE_ITO[name] for name in
           ("blue", "orange", "bluish green", "vermillion", "reddish purple", "sky blue", "yellow", "black")]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LABEL_NAMES = {0: "not landscape (0)", 1: "landscape (1)"}
REDUCER_TITLES = {"pca": "PCA", "kpca": "kernel PCA", "tsne": "t-SNE", "umap": "UMAP"}
MSE_UNITS = "pixels scaled to [-1, 1]"


def label_name(label: int) -> str:
    """Display name of a 0/1 label (landscape or not); other values print as 'label N'."""
    return LABEL_NAMES.get(int(label), f"label {int(label)}")


# ----------------------------------------------------------------------------- computing


def require_decoder(model: Autoencoder, source: str) -> None:
    """Raise UserInputError when a model was saved without its decoder."""
    if model.decoder is None:
        raise UserInputError(
            f"{source}: checkpoint has no decoder (saved encoder-only), so it cannot reconstruct images")


def reconstruct_images(model: Autoencoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions of a few uint8 images as uint8 (N,32,32,3), and each image's MSE."""
    import torch

    from aecluster.data import to_tensor

    with torch.inference_mode():
        inputs = to_tensor(np.asarray(images))
        outputs = model.cpu().eval().reconstruct(inputs)
        errors = ((outputs - inputs) ** 2).mean(dim=(1, 2, 3)).numpy().astype(np.float64)
        pixels = ((outputs + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy(), errors


def reconstruction_mse(
    model: Autoencoder, images: np.ndarray, batch_size: int = 512, device: str | None = None,
    progress: bool = False, desc: str = "reconstruction MSE",
) -> float:
    """Mean squared reconstruction error over all images, batch by batch (memory-mapped input)."""
    import torch
    from tqdm.auto import tqdm

    from aecluster.data import iter_batches, to_tensor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    total = 0.0
    batches = tqdm(iter_batches(images, batch_size), total=-(-len(images) // batch_size), desc=desc,
                   unit="batch", disable=not progress, leave=False)
    with torch.inference_mode():
        for batch in batches:
            inputs = to_tensor(batch).to(device)
            total += float(((model.reconstruct(inputs) - inputs) ** 2).sum(dtype=torch.float64))
    return total / (len(images) * int(np.prod(images.shape[1:])))


@dataclass
class EmbeddingPanel:
    """One checkpoint's 2-D embedding of the images and its clustering accuracy."""

    model: str
    source: str
    coords: np.ndarray
    accuracy: float
    axis_labels: tuple[str, str]


def _display_coords(estimator: Any, images: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """The reduced coordinates the clustering saw, brought to 2-D by PCA when they are not."""
    from aecluster.reduction import parse_chain

    chain = estimator.reducer_
    last = chain.reducers_[-1] if chain.reducers_ else None
    fitted = getattr(last, "embedding_", None)  # t-SNE/UMAP: the fitted layout itself
    coords = np.asarray(fitted if fitted is not None and len(fitted) == len(images)
                        else estimator.transform(images), dtype=np.float64)
    links = parse_chain(chain.spec)
    if coords.shape[1] == 2:
        name = REDUCER_TITLES[links[-1][0]] if links else "code"
        return coords, (f"{name} 1 (arbitrary units)", f"{name} 2 (arbitrary units)")
    source = chain.spec if links else "standardised codes"
    if coords.shape[1] == 1:
        return (np.column_stack([coords[:, 0], np.zeros(len(coords))]),
                (f"{source}, dimension 1 (arbitrary units)", "(none: 1-D reduction)"))
    from sklearn.decomposition import PCA

    coords = PCA(n_components=2, random_state=0).fit_transform(coords)
    return coords, (f"PCA 1 of {source} output (arbitrary units)",
                    f"PCA 2 of {source} output (arbitrary units)")


def embed_checkpoints(
    images: np.ndarray, labels: np.ndarray, checkpoints: Sequence[str | Path],
    overrides: dict[str, Any] | None = None, random_state: int = 0, progress: bool = False,
) -> list[EmbeddingPanel]:
    """Cluster `images` with each checkpoint's own recipe (plus overrides); one panel each."""
    from tqdm.auto import tqdm

    from aecluster.api import AEClusterer
    from aecluster.metrics import clustering_accuracy

    estimators = [AEClusterer.from_checkpoint(path, random_state=random_state, **(overrides or {}))
                  for path in checkpoints]  # reads every header first: a bad path fails before any work
    panels = []
    for path, estimator in tqdm(list(zip(checkpoints, estimators, strict=True)), desc="embed", unit="checkpoint",
                                disable=not progress):
        estimator.fit(images)
        coords, axis_labels = _display_coords(estimator, images)
        panels.append(EmbeddingPanel(estimator.model, Path(path).name, coords,
                                     clustering_accuracy(estimator.labels_, labels), axis_labels))
    return panels


@dataclass
class SnapshotScore:
    """Reconstruction error on the training images and validation accuracy of one snapshot."""

    name: str
    epoch: float
    mse: float
    accuracy: float


def find_snapshots(run_dir: str | Path) -> list[Path]:
    """The `step_*.pth` snapshots of a run folder, in step order."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"{run_dir}: no such run folder")
    snapshots = sorted(run_dir.glob("step_*.pth"))
    if not snapshots:
        raise UserInputError(f"{run_dir}: no step_*.pth snapshots (expected a training run folder OUT_run/)")
    return snapshots


def score_snapshots(
    run_dir: str | Path, train_images: np.ndarray, val_images: np.ndarray, val_labels: np.ndarray,
    overrides: dict[str, Any] | None = None, random_state: int = 0, batch_size: int = 512,
    device: str | None = None, progress: bool = False,
) -> list[SnapshotScore]:
    """For each snapshot: MSE on all training images and val accuracy with its own recipe."""
    from tqdm.auto import tqdm

    from aecluster.api import validation_scorer
    from aecluster.checkpoint import load_model

    scores = []
    for path in tqdm(find_snapshots(run_dir), desc="snapshots", unit="snapshot", disable=not progress):
        model, payload = load_model(path)
        require_decoder(model, str(path))
        recipe = {**payload.get("recipe", {}), **(overrides or {})}
        if "reduce" not in recipe or "method" not in recipe:
            raise UserInputError(f"{path}: checkpoint holds no clustering recipe; pass --reduce and --method")
        mse = reconstruction_mse(model, train_images, batch_size, device, progress, f"MSE {path.name}")
        accuracy = validation_scorer(val_images, val_labels, recipe, random_state)(model)
        scores.append(SnapshotScore(path.name, float(payload["epoch"]), mse, float(accuracy)))
    return sorted(scores, key=lambda score: score.epoch)


def mse_accuracy_correlation(scores: Sequence[SnapshotScore]) -> float:
    """Pearson correlation of reconstruction MSE and accuracy across snapshots (nan if undefined)."""
    mse = np.array([s.mse for s in scores])
    accuracy = np.array([s.accuracy for s in scores])
    if len(scores) < 2 or np.ptp(mse) == 0 or np.ptp(accuracy) == 0:
        return float("nan")
    return float(np.corrcoef(mse, accuracy)[0, 1])


def confusion_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, list[int], dict[int, int]]:
    """Counts[true, predicted] after mapping groups to labels by the best matching; classes; mapping."""
    from aecluster.metrics import best_matching

    predicted, truth = np.asarray(predicted), np.asarray(truth)
    mapping = best_matching(predicted, truth)
    mapped = np.array([mapping[int(group)] for group in predicted], dtype=np.int64)
    classes = sorted({int(v) for v in np.unique(truth)} | {int(v) for v in np.unique(mapped)})
    counts = np.array([[np.count_nonzero((truth == t) & (mapped == p)) for p in classes] for t in classes])
    return counts, classes, mapping


def load_size_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a size-accuracy RESULTS.json (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: unreadable ({exc})") from None
    expected = 'expected {"points": [{"family": ..., "params": ..., "acc": ...}, ...]}'
    if not isinstance(results, dict) or not isinstance(results.get("points"), list) or not results["points"]:
        raise UserInputError(f"{path}: no non-empty \"points\" list; {expected}")
    points = []
    for index, point in enumerate(results["points"]):
        where = f"{path}: points[{index}]"
        if not isinstance(point, dict):
            raise UserInputError(f"{where} is {point!r}, expected an object; {expected}")
        family, params, acc, spread, name = (point.get(key) for key in ("family", "params", "acc", "acc_std", "name"))
        if not isinstance(family, str) or not family.strip():
            raise UserInputError(f"{where}.family is {family!r}, expected a non-empty string")
        if isinstance(params, bool) or not isinstance(params, (int, float)) or not params > 0 \
                or not math.isfinite(params):
            raise UserInputError(f"{where}.params is {params!r}, expected a positive number of parameters")
        if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
            raise UserInputError(f"{where}.acc is {acc!r}, expected a number in [0, 1]")
        if spread is not None and (isinstance(spread, bool) or not isinstance(spread, (int, float))
                                   or not 0 <= spread <= 1):
            raise UserInputError(f"{where}.acc_std is {spread!r}, expected a number in [0, 1]")
        if name is not None and not isinstance(name, str):
            raise UserInputError(f"{where}.name is {name!r}, expected a string")
        points.append({"family": family.strip(), "params": float(params), "acc": float(acc),
                       "acc_std": float(spread or 0.0), "name": name})
    for key in ("benchmark", "metric"):
        if results.get(key) is not None and not isinstance(results[key], str):
            raise UserInputError(f"{path}: \"{key}\" is {results[key]!r}, expected a string")
    return {"benchmark": results.get("benchmark"), "metric": results.get("metric") or "clustering accuracy",
            "points": points}


# ----------------------------------------------------------------------------- drawing


def new_figure(width: float, height: float) -> Figure:
    """An Agg-backed figure (no display, no pyplot state) with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> None:
    """Write a PNG atomically: the file appears only once it is complete."""
    from aecluster.atomic import atomic_path

    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)


def fitted_title(text: str, figure: Figure) -> str:
    """`text` broken into lines that fit the figure's width (about 9 characters an inch), so that
    long titles, user-given ones included, are not cut off at the edges."""
    width = max(30, int(figure.get_figwidth() * 9))
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def reconstructions_figure(
    originals: np.ndarray, reconstructions: np.ndarray, indices: Sequence[int], errors: np.ndarray,
    title: str = "Autoencoder reconstructions",
) -> Figure:
    """Originals (top row) above their reconstructions (bottom row), one column per index."""
    figure = new_figure(1.6 * len(indices) + 1.0, 4.0)
    axes = figure.subplots(2, len(indices), squeeze=False)
    for column, index in enumerate(indices):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(originals[column], interpolation="nearest")
        bottom.imshow(reconstructions[column], interpolation="nearest")
        top.set_title(f"image {index}", fontsize=10)
        bottom.set_xlabel(f"MSE {errors[column]:.4f}", fontsize=9)
        for axis in (top, bottom):
            axis.set_xticks([])
            axis.set_yticks([])
    axes[0, 0].set_ylabel("original\n(32×32 px)")
    axes[1, 0].set_ylabel("reconstruction\n(32×32 px)")
    figure.suptitle(fitted_title(title, figure))
    figure.supxlabel(f"rows: original above reconstruction; MSE per image ({MSE_UNITS})", fontsize=9)
    return figure


def embedding_figure(panels: Sequence[EmbeddingPanel], labels: np.ndarray, title: str | None = None) -> Figure:
    """One scatter panel per checkpoint, points coloured by true label, accuracy in each title."""
    figure = new_figure(5.0 * len(panels) + 0.4, 5.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    classes = [int(v) for v in np.unique(labels)]
    for axis, panel in zip(axes, panels, strict=True):
        for position, label in enumerate(classes):
            chosen = labels == label
            axis.scatter(panel.coords[chosen, 0], panel.coords[chosen, 1], s=9, alpha=0.75,
                         color=PALETTE[position % len(PALETTE)], marker=MARKERS[position % len(MARKERS)],
                         linewidths=0, label=f"{label_name(label)}: {int(chosen.sum())}", rasterized=True)
        axis.set_title(f"{panel.model} ({panel.source})\nclustering accuracy {panel.accuracy:.1%}")
        axis.set_xlabel(panel.axis_labels[0])
        axis.set_ylabel(panel.axis_labels[1])
        axis.legend(title="true label: images", loc="best", fontsize=9, markerscale=1.8)
    figure.suptitle(fitted_title(title or f"2-D embeddings of {len(labels)} images, coloured by true label",
                                 figure))
    return figure


def checkpoints_figure(scores: Sequence[SnapshotScore], title: str = "Training snapshots") -> Figure:
    """Reconstruction MSE (left axis) and val accuracy (right axis) against epoch."""
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


def confusion_figure(predicted: np.ndarray, truth: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Counts and row rates per cell, after mapping groups to labels by the best matching."""
    counts, classes, mapping = confusion_counts(predicted, truth)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = new_figure(6.4, 5.4)
    axis = figure.subplots()
    image = axis.imshow(rates, cmap="cividis", vmin=0, vmax=1)
    for row in range(len(classes)):
        for column in range(len(classes)):
            colour = "black" if rates[row, column] > 0.5 else "white"
            axis.text(column, row, f"{counts[row, column]}\n{rates[row, column]:.1%} of row", ha="center",
                      va="center", color=colour, fontsize=12)
    names = [label_name(c) for c in classes]
    axis.set_xticks(range(len(classes)), names)
    axis.set_yticks(range(len(classes)), names, rotation=90, va="center")
    axis.set_xlabel("predicted label (group matched to a label; images)")
    axis.set_ylabel("true label (images)")
    figure.colorbar(image, ax=axis, label="row rate (fraction of the true label's images)")
    matching = ", ".join(f"group {group}→{label_name(label)}" for group, label in sorted(mapping.items()))
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axis.set_title(fitted_title(f"{title}: N={counts.sum()}, accuracy {accuracy:.1%}\n"
                                f"best matching of groups to labels: {matching}", figure), fontsize=10)
    return figure


def size_accuracy_figure(results: dict[str, Any]) -> Figure:
    """Accuracy against encoder parameters (log scale), one line per encoder family."""
    figure = new_figure(7.5, 5.0)
    axis = figure.subplots()
    families = list(dict.fromkeys(point["family"] for point in results["points"]))
    for position, family in enumerate(families):
        points = sorted((p for p in results["points"] if p["family"] == family), key=lambda p: p["params"])
        axis.errorbar([p["params"] for p in points], [p["acc"] for p in points],
                      yerr=[p["acc_std"] for p in points], marker=MARKERS[position % 8], capsize=3,
                      color=PALETTE[position % len(PALETTE)], label=f"{family} ({len(points)} models)")
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


# ----------------------------------------------------------------------------- command line


def _indices(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated image indices, found {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative indices, found {text!r}")
    return values


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {key: value for key, value in (("reduce", args.reduce), ("method", args.method)) if value}


def _reconstructions(args: argparse.Namespace) -> Figure:
    from aecluster.checkpoint import load_model
    from aecluster.data import load_images

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

    images = load_images(args.images, min_images=2)
    labels = load_labels(args.labels, len(images))
    panels = embed_checkpoints(images, labels, args.checkpoints, _overrides(args), args.seed, not args.quiet)
    return embedding_figure(panels, labels, f"2-D embeddings of {Path(args.images).name} "
                                            f"({len(images)} images), coloured by true label")


def _checkpoints(args: argparse.Namespace) -> Figure:
    from aecluster.data import load_images, load_labels

    train = load_images(args.train_images)
    val = load_images(args.val_images, min_images=2)
    labels = load_labels(args.val_labels, len(val))
    scores = score_snapshots(args.run_dir, train, val, labels, _overrides(args), args.seed,
                             progress=not args.quiet)
    return checkpoints_figure(scores, Path(args.run_dir).resolve().name)


def _confusion(args: argparse.Namespace) -> Figure:
    from aecluster.csvio import read_predictions
    from aecluster.data import load_labels

    predicted = read_predictions(args.predictions)
    truth = load_labels(args.labels, len(predicted))
    return confusion_figure(predicted, truth, f"Confusion matrix of {Path(args.predictions).name}")


def _size_accuracy(args: argparse.Namespace) -> Figure:
    results = load_size_results(args.results)
    for family in dict.fromkeys(point["family"] for point in results["points"]):
        count = sum(point["family"] == family for point in results["points"])
        if count < 3:
            warnings.warn(f"{args.results}: family {family!r} has {count} point(s); a size comparison "
                          "wants at least 3 per family", stacklevel=2)
    return size_accuracy_figure(results)


class _Parser(argparse.ArgumentParser):
    """Argument mistakes raise UserInputError, so `main` reports them in one line."""

    def error(self, message: str) -> NoReturn:
        raise UserInputError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The `aecluster plots` argument parser: one subcommand per figure."""
    parser = _Parser(prog=PROG, description="Draw a report figure into a PNG file (Agg backend, "
                                            "colour-blind-safe Okabe-Ito colours, 100 dpi).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    recipe = argparse.ArgumentParser(add_help=False)
    recipe.add_argument("--reduce", metavar="CHAIN", help="reducer chain overriding each checkpoint's "
                                                          "recipe, e.g. 'pca:2' (default: the recipe)")
    recipe.add_argument("--method", choices=("kmeans", "threshold"), help="override the recipe's method")
    recipe.add_argument("--seed", type=int, default=0, help="seed of reduction and clustering (default 0)")
    figures = parser.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    command = figures.add_parser(
        "reconstructions", parents=[common], help="originals above their reconstructions",
        description="Draw the chosen training images (top row) above the checkpoint's reconstructions "
                    "of them (bottom row), with each image's reconstruction MSE.")
    command.add_argument("images", help="training images (.npy or folder), e.g. trainX.npy")
    command.add_argument("checkpoint", help="trained checkpoint with a decoder (.pth)")
    command.add_argument("output", help="PNG file to write")
    command.add_argument("--indices", type=_indices, default=list(DEFAULT_INDICES),
                         help="comma-separated image indices (default 1,2,3,6,7,9)")
    command.set_defaults(handler=_reconstructions)

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
    command.set_defaults(handler=_embedding)

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
    command.set_defaults(handler=_checkpoints)

    command = figures.add_parser(
        "confusion", parents=[common], help="confusion matrix of a prediction CSV",
        description="Map each predicted group to a label by the best one-to-one matching, then draw "
                    "the confusion matrix (true label rows, predicted label columns) with the count "
                    "and the row rate in each cell.")
    command.add_argument("predictions", help="id,label CSV (e.g. from `aecluster cluster`)")
    command.add_argument("labels", help="(N,) integer .npy of true labels")
    command.add_argument("output", help="PNG file to write")
    command.set_defaults(handler=_confusion)

    command = figures.add_parser(
        "size-accuracy", parents=[common], help="accuracy against encoder size per family",
        description="Plot accuracy against encoder parameters (log scale), one line per encoder family, "
                    "from a RESULTS.json of the form {\"benchmark\": ..., \"points\": [{\"family\": ..., "
                    "\"params\": ..., \"acc\": ..., \"name\": ...}, ...]} (see the aecluster.plots "
                    "module docstring).")
    command.add_argument("results", help="RESULTS.json of a size sweep")
    command.add_argument("output", help="PNG file to write")
    command.set_defaults(handler=_size_accuracy)
    return parser


def draw(argv: Sequence[str]) -> Figure:
    """Parse `argv`, compute and draw the figure, write it to the output PNG; return the figure."""
    from aecluster.atomic import check_writable

    args = build_parser().parse_args(list(argv))
    if Path(args.output).suffix.lower() != ".png":
        raise UserInputError(f"{args.output}: output must be a .png file")
    check_writable(args.output)
    figure = args.handler(args)
    save_figure(figure, args.output)
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)
    return figure


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    print(f"aecluster: warning: {str(message).splitlines()[0] if str(message) else category.__name__}",
          file=sys.stderr)


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, print each warning as one `aecluster: warning: ...` line on stderr."""
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after writing the figure, 2 with a one-line message on a user error."""
    def run() -> int:
        try:
            with one_line_warnings():
                draw(sys.argv[1:] if argv is None else argv)
        except SystemExit as stop:  # --help
            return stop.code if isinstance(stop.code, int) else 0
        return 0

    return run_reporting_errors("aecluster", run, "interrupted; no figure was written")


if __name__ == "__main__":
    sys.exit(main())
