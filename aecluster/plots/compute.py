"""The numbers behind the report figures: reconstructions and their errors, 2-D embeddings,
per-snapshot scores, confusion counts, size-sweep results and each group's typical and
borderline images (no drawing here)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aecluster.data import compute_in_batches, to_tensor
from aecluster.devices import resolve_device
from aecluster.errors import UserInputError
from aecluster.files import describe_file

if TYPE_CHECKING:
    from aecluster.models import Autoencoder

# Display names of reducer links; a link missing here is shown by its own name.
REDUCER_TITLES = {"pca": "PCA", "wpca": "whitened PCA", "kpca": "kernel PCA", "tsne": "t-SNE", "umap": "UMAP"}


def chain_title(links: Sequence[tuple[str, int]]) -> str:
    """Axis name of a parsed reducer chain's output: its last link that sets a dimension ("code"
    when none does), said to be of unit length when the chain ends with "l2".

    Parameters
    ----------
    links : sequence of (str, int)
        The chain's links as `reduction.parse_chain` returns them: (name, dimension) pairs.

    Returns
    -------
    str
        The display name (`REDUCER_TITLES`) of the last link other than "l2", e.g. "t-SNE",
        prefixed "unit-length " when the last link is "l2".
    """
    sized = [name for name, _ in links if name != "l2"]
    title = REDUCER_TITLES.get(sized[-1], sized[-1]) if sized else "code"
    return f"unit-length {title}" if links and links[-1][0] == "l2" else title


def require_decoder(model: Autoencoder, source: str) -> None:
    """Raise UserInputError when a model was saved without its decoder.

    Parameters
    ----------
    model : Autoencoder
        The loaded model.
    source : str
        Names the checkpoint in the message (its path).

    Raises
    ------
    UserInputError
        When `model.decoder` is None (an encoder-only checkpoint, e.g. from `aecluster deploy`).
    """
    if model.decoder is None:
        raise UserInputError(
            f"{source}: checkpoint has no decoder (saved encoder-only), so it cannot reconstruct images")


def reconstruct_images(model: Autoencoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions of a few uint8 images as uint8 (N,32,32,3), and each image's MSE.

    All images go through the model in one batch on the CPU: the model is moved there and put in
    eval mode (in place).

    Parameters
    ----------
    model : Autoencoder
        A model with a decoder (`require_decoder`).
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8.

    Returns
    -------
    reconstructions : ndarray of shape (N, 32, 32, 3)
        The reconstructions, rounded and clipped to uint8.
    errors : ndarray of shape (N,)
        Each image's mean squared error per pixel and channel (float64), with pixels scaled to
        [-1, 1] as the model sees them.
    """
    import torch

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
    """Mean squared reconstruction error over all images, batch by batch (memory-mapped input).

    Parameters
    ----------
    model : Autoencoder
        A model with a decoder; it is moved to `device` and put in eval mode (in place).
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8 (a memory-mapped .npy is read one batch at a time).
    batch_size : int, default=512
        Images per batch.
    device : str, optional
        The torch device that computes; None: cuda when available, else cpu.
    progress : bool, default=False
        Draw a progress bar (only on a terminal: the bar does not stay).
    desc : str, default="reconstruction MSE"
        The progress bar's label.

    Returns
    -------
    float
        The mean squared error per pixel and channel over all images, with pixels scaled to
        [-1, 1] as the model sees them.

    Raises
    ------
    UserInputError
        For a device this machine does not have (`devices.resolve_device`).
    """
    import torch

    device = resolve_device(device)
    model = model.to(device).eval()

    def squared_errors(inputs: torch.Tensor) -> torch.Tensor:
        return ((model.reconstruct(inputs) - inputs) ** 2).sum(dim=(1, 2, 3), dtype=torch.float64).cpu()

    per_image = compute_in_batches(squared_errors, images, device, batch_size, progress, desc, leave=False)
    return float(per_image.sum()) / (len(images) * int(np.prod(images.shape[1:])))


@dataclass
class EmbeddingPanel:
    """One checkpoint's 2-D embedding of the images and its clustering accuracy.

    Attributes
    ----------
    model : str
        The checkpoint's model name.
    source : str
        The checkpoint's file name.
    coords : ndarray of shape (N, 2)
        Each image's point (float64): the reduction the clustering ran in when it is 2-D (1-D:
        drawn at y = 0), else its PCA to 2-D.
    accuracy : float
        The clustering accuracy against the true labels (`metrics.clustering_accuracy`), in [0, 1].
    axis_labels : (str, str)
        The names of the x and y axes (`component_labels`).
    """

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
        return coords, component_labels(chain_title(links))
    source = f"{chain.spec} codes" if links else "standardised codes"
    if coords.shape[1] == 1:
        return (np.column_stack([coords[:, 0], np.zeros(len(coords))]),
                (component_labels(source)[0], "(none: 1-D reduction)"))
    from sklearn.decomposition import PCA

    how = f"PCA of the {coords.shape[1]}-D {source}"
    return PCA(n_components=2, random_state=0).fit_transform(coords), component_labels(how)


def component_labels(how: str) -> tuple[str, str]:
    """The axis names of a 2-D embedding made by `how`: "component 1: t-SNE (arbitrary units)".

    Parameters
    ----------
    how : str
        What made the embedding, e.g. "t-SNE" or "PCA of the 50-D pca:50 codes".

    Returns
    -------
    (str, str)
        The x and y axis names.
    """
    return f"component 1: {how} (arbitrary units)", f"component 2: {how} (arbitrary units)"


def embed_checkpoints(
    images: np.ndarray, labels: np.ndarray, checkpoints: Sequence[str | Path],
    overrides: dict[str, Any] | None = None, random_state: int = 0, progress: bool = False,
) -> list[EmbeddingPanel]:
    """Cluster `images` with each checkpoint's own recipe (plus overrides); one panel each.

    Every checkpoint's header is read before any clustering, so a bad path fails before any work.

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8.
    labels : ndarray of shape (N,)
        Their true labels, for each panel's accuracy.
    checkpoints : sequence of str or Path
        The checkpoints (or saved models), one panel each.
    overrides : dict, optional
        `AEClusterer` parameters that replace those of every checkpoint's recipe
        (`cli.args.recipe_overrides`); None for none.
    random_state : int, default=0
        Seed of the reduction and the clustering.
    progress : bool, default=False
        Draw a progress bar over the checkpoints.

    Returns
    -------
    list of EmbeddingPanel
        One per checkpoint, in the order given.

    Raises
    ------
    UserInputError
        For a file that is not a usable checkpoint, or a recipe that cannot run on these images.
    """
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
    """Reconstruction error on the training images and validation accuracy of one snapshot.

    Attributes
    ----------
    name : str
        The snapshot's file name (step_NNNNNNN.pth).
    epoch : float
        The (fractional) epoch the snapshot was taken at.
    mse : float
        Mean squared reconstruction error per pixel and channel on all training images, pixels
        scaled to [-1, 1] (`reconstruction_mse`).
    accuracy : float
        Clustering accuracy of the validation images with the snapshot's recipe, in [0, 1].
    """

    name: str
    epoch: float
    mse: float
    accuracy: float


def find_snapshots(run_dir: str | Path) -> list[Path]:
    """The `step_*.pth` snapshots of a run folder, in step order.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder (OUT_run/ beside the checkpoint OUT.pth).

    Returns
    -------
    list of Path
        The snapshot files, in the order of the steps their names hold.

    Raises
    ------
    UserInputError
        When `run_dir` does not exist, is not a folder (with a hint at the run folder when it is a
        .pth file), or holds no step_*.pth file.
    """
    from aecluster.snapshots import run_folder, step_number

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserInputError(f"{run_dir}: no such run folder")
    if not run_dir.is_dir():
        hint = f"; the run folder of {run_dir} is {run_folder(run_dir)}/" if run_dir.suffix == ".pth" else ""
        raise UserInputError(f"{run_dir}: found {describe_file(run_dir)}, expected a training run folder "
                             f"OUT_run/ holding step_*.pth snapshots{hint}")
    snapshots = sorted(run_dir.glob("step_*.pth"), key=step_number)
    if not snapshots:
        raise UserInputError(f"{run_dir}: no step_*.pth snapshots (expected a training run folder OUT_run/)")
    return snapshots


def score_snapshots(
    run_dir: str | Path, train_images: np.ndarray, val_images: np.ndarray, val_labels: np.ndarray,
    overrides: dict[str, Any] | None = None, random_state: int = 0, batch_size: int = 512,
    device: str | None = None, progress: bool = False,
) -> list[SnapshotScore]:
    """For each snapshot: MSE on all training images and val accuracy with its own recipe.

    Parameters
    ----------
    run_dir : str or Path
        The training run folder (`find_snapshots`).
    train_images : ndarray of shape (N, 32, 32, 3)
        The training images, uint8 (may be memory-mapped); the MSE is over all of them.
    val_images : ndarray of shape (M, 32, 32, 3)
        The validation images, uint8, clustered alone with each snapshot's recipe.
    val_labels : ndarray of shape (M,)
        Their true labels.
    overrides : dict, optional
        Recipe values ("reduce", "method", ...) that replace each snapshot's; None for none.
    random_state : int, default=0
        Seed of the reduction and the clustering.
    batch_size : int, default=512
        Images per batch of the MSE.
    device : str, optional
        The torch device of the MSE; None: cuda when available, else cpu.
    progress : bool, default=False
        Draw progress bars.

    Returns
    -------
    list of SnapshotScore
        One per snapshot, sorted by epoch.

    Raises
    ------
    UserInputError
        When the run folder holds no snapshots (`find_snapshots`), a snapshot has no decoder or
        no clustering recipe ("reduce" and "method", even after `overrides`), or is unreadable.
    """
    from tqdm.auto import tqdm

    from aecluster.checkpoint import load_model
    from aecluster.encoding import validation_scorer

    scores = []
    for path in tqdm(find_snapshots(run_dir), desc="snapshots", unit="snapshot", disable=not progress):
        model, payload = load_model(path)
        require_decoder(model, str(path))
        recipe = {**payload.get("recipe", {}), **(overrides or {})}
        if "reduce" not in recipe or "method" not in recipe:
            raise UserInputError(f"{path}: checkpoint holds no clustering recipe; pass `reduce` and `method`")
        mse = reconstruction_mse(model, train_images, batch_size, device, progress, f"MSE {path.name}")
        accuracy = validation_scorer(val_images, val_labels, recipe, random_state)(model)
        scores.append(SnapshotScore(path.name, float(payload["epoch"]), mse, float(accuracy)))
    return sorted(scores, key=lambda score: score.epoch)


def mse_accuracy_correlation(scores: Sequence[SnapshotScore]) -> float:
    """Pearson correlation of reconstruction MSE and accuracy across snapshots (nan if undefined).

    Parameters
    ----------
    scores : sequence of SnapshotScore
        The snapshots' scores.

    Returns
    -------
    float
        The correlation coefficient, in [-1, 1]; nan for fewer than two snapshots or when either
        series is constant.
    """
    mse = np.array([s.mse for s in scores])
    accuracy = np.array([s.accuracy for s in scores])
    if len(scores) < 2 or np.ptp(mse) == 0 or np.ptp(accuracy) == 0:
        return float("nan")
    return float(np.corrcoef(mse, accuracy)[0, 1])


@dataclass
class Confusion:
    """counts[true label, predicted group] for K' labels and K groups, ordered so that the
    `matched` pairs of the best one-to-one matching lie on the diagonal (in ascending label
    order), then the labels and groups left unmatched when K' != K.

    Attributes
    ----------
    counts : ndarray of shape (K', K)
        Image counts, rows in the order of `labels`, columns in the order of `groups`.
    labels : list of int
        The true label of each row.
    groups : list of int
        The predicted group of each column.
    matched : int
        How many pairs the matching holds: min(K', K); they are the first `matched` rows and columns.
    """

    counts: np.ndarray
    labels: list[int]
    groups: list[int]
    matched: int

    @property
    def matching(self) -> dict[int, int]:
        """Group -> label of the matched pairs, in ascending label order."""
        return dict(zip(self.groups[: self.matched], self.labels[: self.matched], strict=True))

    @property
    def accuracy(self) -> float:
        """Fraction on the matched diagonal: `metrics.clustering_accuracy`."""
        return float(np.trace(self.counts[: self.matched, : self.matched]) / max(self.counts.sum(), 1))


def confusion_counts(predicted: np.ndarray, truth: np.ndarray) -> Confusion:
    """The K' x K confusion table of predicted groups against true labels (see `Confusion`).

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        The predicted group of each image.
    truth : ndarray of shape (N,)
        The true label of each image.

    Returns
    -------
    Confusion
        The counts, ordered matched pairs first.
    """
    from aecluster.metrics import matched_pairs

    clusters, labels, counts, rows, cols = matched_pairs(predicted, truth)
    row_order = [*cols, *(i for i in range(len(labels)) if i not in set(cols))]
    column_order = [*rows, *(i for i in range(len(clusters)) if i not in set(rows))]
    return Confusion(counts.T[np.ix_(row_order, column_order)], [int(labels[i]) for i in row_order],
                     [int(clusters[i]) for i in column_order], len(rows))


def load_size_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a size-accuracy RESULTS.json (format in the `aecluster.plots` docstring).

    Parameters
    ----------
    path : str or Path
        The UTF-8 JSON file.

    Returns
    -------
    dict
        "benchmark" (str or None), "metric" (str; "clustering accuracy" when absent) and "points":
        a list of dicts with "family" (str, stripped), "params" (float), "acc" (float), "acc_std"
        (float; 0.0 when absent) and "name" (str or None), in the file's order.

    Raises
    ------
    UserInputError
        When the file is missing, unreadable or not JSON, has no non-empty "points" list, or a point
        or the "benchmark" or "metric" value is not of its documented type and range; the message
        names the first wrong value.
    """
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


@dataclass
class GalleryGroup:
    """One group of a gallery: its label and size, the indices of its `typical` images (nearest
    its centre first) and of its `borderline` ones (nearest another group first), with the label
    of the other group each borderline image lies nearest (`neighbours`; empty when K == 1).

    Attributes
    ----------
    label : int
        The group's label in the prediction CSV.
    size : int
        How many images the group holds.
    typical : ndarray of shape (T,)
        Image indices, at most `per_group` of them, smallest distance to the group's centre first.
    borderline : ndarray of shape (B,)
        Image indices, at most `per_group` of them, smallest margin first (B = 0 when K == 1).
    neighbours : ndarray of shape (B,)
        For each borderline image, the label of the other group whose centre is nearest (int64).
    """

    label: int
    size: int
    typical: np.ndarray
    borderline: np.ndarray
    neighbours: np.ndarray


def pixel_codes(images: np.ndarray) -> np.ndarray:
    """Raw pixels scaled to [0, 1], one flattened row per image: the codes of a gallery drawn
    without a checkpoint.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3)
        The images, uint8.

    Returns
    -------
    ndarray of shape (N, H * W * 3)
        The pixels divided by 255 (float64).
    """
    return np.asarray(images, dtype=np.float64).reshape(len(images), -1) / 255.0


def centre_distances(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct labels and the (N, K) Euclidean distances of each code to each
    label's centre (the mean code of its images), one centre at a time to bound memory.

    Parameters
    ----------
    codes : ndarray of shape (N, ...)
        One code per image; each is flattened to a row.
    labels : ndarray of shape (N,)
        The group of each code.

    Returns
    -------
    groups : ndarray of shape (K,)
        The distinct labels, ascending.
    distances : ndarray of shape (N, K)
        The distance of each code to the centre of each of `groups` (float64).
    """
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    groups = np.unique(labels)
    distances = np.empty((len(codes), len(groups)))
    for column, group in enumerate(groups):
        distances[:, column] = np.linalg.norm(codes - codes[labels == group].mean(axis=0), axis=1)
    return groups, distances


def gallery_groups(codes: np.ndarray, labels: np.ndarray, per_group: int) -> list[GalleryGroup]:
    """Per label in ascending order: its `per_group` most typical images (smallest distance to
    its own centre) and most borderline ones (smallest margin: distance to the nearest other
    centre minus distance to its own), ties broken by image index.

    Parameters
    ----------
    codes : ndarray of shape (N, ...)
        One code per image (`pixel_codes`, or an encoder's codes).
    labels : ndarray of shape (N,)
        The group of each image.
    per_group : int
        How many typical and how many borderline images to pick per group (fewer when a group
        is smaller).

    Returns
    -------
    list of GalleryGroup
        One per distinct label, ascending.

    Raises
    ------
    ValueError
        When `codes` and `labels` differ in length.
    """
    labels = np.asarray(labels)
    if len(codes) != len(labels):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels")
    groups, distances = centre_distances(codes, labels)
    own_column = np.searchsorted(groups, labels)
    own = distances[np.arange(len(labels)), own_column]
    others = distances.copy()
    others[np.arange(len(labels)), own_column] = np.inf
    nearest_other = others.argmin(axis=1)
    margin = others.min(axis=1) - own
    result = []
    for column, group in enumerate(groups):
        members = np.flatnonzero(own_column == column)
        typical = members[np.argsort(own[members], kind="stable")[:per_group]]
        borderline = members[np.argsort(margin[members], kind="stable")[:per_group]] if len(groups) > 1 \
            else members[:0]
        result.append(GalleryGroup(int(group), len(members), typical, borderline,
                                   groups[nearest_other[borderline]].astype(np.int64)))
    return result
