"""The two steps between a trained encoder and labels: images -> codes, codes -> fitted groups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from aecluster.clustering import METHODS, GroupsEstimator, check_group_counts, make_clusterer
from aecluster.data import compute_in_batches
from aecluster.devices import resolve_device
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy
from aecluster.reduction import ReducerChain, check_chain, parse_chain
from aecluster.registry import RECIPE_BOUNDS

if TYPE_CHECKING:
    from aecluster.models import Autoencoder

# What a clustering recipe falls back to for each key it leaves out (a model's config may name
# only some; `AEClusterer` and the training history's validation score read these).
RECIPE_DEFAULTS: dict[str, Any] = {"reduce": "pca:50", "method": "kmeans", "threshold": 0.0, "standardize": True,
                                   "n_clusters": 2, "fine_clusters": 20}


def recipe_value_problem(key: str, value: Any) -> str | None:
    """What is wrong with one recipe value on its own (None when nothing): the types and ranges
    that scikit-learn, openTSNE and umap-learn would otherwise refuse with a traceback mid-run.

    Parameters
    ----------
    key : str
        The recipe key: "reduce", "method", "threshold", "standardize", "n_clusters" or
        "fine_clusters"; any other key is not checked.
    value : Any
        Its value.

    Returns
    -------
    str or None
        What is wrong, in words ("unknown method 'x'; choose one of ..."); None when the value is fine.

    Raises
    ------
    UserInputError
        For a "reduce" text that is not a reducer chain (`reduction.parse_chain`).
    """
    if key == "reduce":
        if not isinstance(value, str):
            return f"{value!r} is not a reducer chain (text such as 'l2,pca:32')"
        parse_chain(value)
    elif key == "method" and (not isinstance(value, str) or value not in METHODS):
        return f"unknown method {value!r}; choose one of {', '.join(METHODS)}"
    elif key == "threshold" and not RECIPE_BOUNDS[key].holds(value):
        return f"{value!r} is not a cosine-similarity threshold ({RECIPE_BOUNDS[key].describe()})"
    elif key == "standardize" and not isinstance(value, bool | np.bool_):
        return f"{value!r} is not true or false"
    elif key in ("n_clusters", "fine_clusters") and not RECIPE_BOUNDS[key].holds(value):
        return f"{value!r} is not a whole number of at least {RECIPE_BOUNDS[key].low:g}"
    return None


def check_recipe(recipe: Mapping[str, Any], source: str, code_dim: int | None = None, n_images: int | None = None,
                 names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The clustering recipe completed from `RECIPE_DEFAULTS` (None values too), once every value
    is checked: its type and range, the reducer chain against `code_dim` and `n_images` (when
    known) and the group counts against the method. Wherever a recipe comes from (a checkpoint, a
    saved model, options, `AEClusterer`), it is checked here before any work, so a bad value is one
    `UserInputError` naming `source` and the key (or `names[key]`, e.g. an option), not a
    traceback from the library that would use it after encoding.

    Parameters
    ----------
    recipe : mapping
        Recipe keys and values; keys outside `RECIPE_DEFAULTS` are ignored, None values take the default.
    source : str
        Where the recipe comes from, to start the message ("command line", a checkpoint's path).
    code_dim : int, optional
        The encoder's code width, to check the reducer chain's dimensions against; None skips that.
    n_images : int, optional
        How many images will be clustered; None skips the checks that need it.
    names : mapping, optional
        What to call each key in a message (e.g. "reduce" -> "--reduce"); a key not in it is
        "recipe 'KEY'".

    Returns
    -------
    dict
        Every key of `RECIPE_DEFAULTS`, with the given values.

    Raises
    ------
    UserInputError
        "SOURCE: KEY: problem" for the first wrong value, or "SOURCE: recipe: ..." for group counts
        the method cannot make (`clustering.check_group_counts`).
    """
    given = {key: value for key, value in recipe.items() if key in RECIPE_DEFAULTS and value is not None}
    for key, value in given.items():
        label = (names or {}).get(key, f"recipe {key!r}")
        try:
            problem = recipe_value_problem(key, value)
            if key == "reduce" and code_dim is not None and problem is None:
                check_chain(value, code_dim, n_images)
        except UserInputError as error:
            problem = str(error)
        if problem:
            raise UserInputError(f"{source}: {label}: {problem}")
    full = {**RECIPE_DEFAULTS, **given}
    try:
        check_group_counts(full["method"], full["n_clusters"], full["fine_clusters"], n_images)
    except UserInputError as error:
        raise UserInputError(f"{source}: recipe: {error}") from None
    return full


def encode_images(
    model: Autoencoder, images: np.ndarray, batch_size: int = 512, device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Latent codes (N, code_dim) float32 of uint8 images, computed batch by batch.

    Parameters
    ----------
    model : Autoencoder
        The trained model; it is moved to `device` and put in eval mode (in place).
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8 (a memory-mapped .npy is read one batch at a time).
    batch_size : int, default=512
        Images per batch.
    device : str, optional
        The torch device that encodes; None: cuda when available, else cpu.
    progress : bool, default=False
        Draw a progress bar.

    Returns
    -------
    ndarray of shape (N, code_dim)
        The codes (float32).

    Raises
    ------
    UserInputError
        For a device this machine does not have (`devices.resolve_device`).
    """
    device = resolve_device(device)
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encode(batch).cpu(), images, device, batch_size, progress).numpy()


def fit_groups(
    codes: np.ndarray, reduce: str, method: str, threshold: float = 0.0, random_state: int = 0,
    standardize: bool = True, n_clusters: int = 2, fine_clusters: int = 20,
) -> tuple[ReducerChain, GroupsEstimator]:
    """Fit the reducer chain and the clustering into `n_clusters` groups on codes; returns both.

    Parameters
    ----------
    codes : ndarray of shape (N, code_dim)
        The codes to cluster.
    reduce : str
        The reducer chain, e.g. "pca:50" or "kpca:200,tsne:2" (`reduction.parse_chain`).
    method : str
        The clustering method, one of `clustering.METHODS`.
    threshold : float, default=0.0
        The cosine-similarity threshold of method "threshold", in [-1, 1].
    random_state : int, default=0
        Seed of the reduction and the clustering.
    standardize : bool, default=True
        Standardise each code dimension before the chain.
    n_clusters : int, default=2
        How many groups.
    fine_clusters : int, default=20
        How many fine groups method "overcluster" merges.

    Returns
    -------
    reducer : ReducerChain
        The fitted reduction.
    clusterer : GroupsEstimator
        The fitted clustering; its `labels_` hold each code's group.

    Raises
    ------
    UserInputError
        For a malformed `reduce`, an unknown method, or group counts the method cannot make of N codes.
    """
    clusterer = make_clusterer(method, n_clusters=n_clusters, random_state=random_state, fine_clusters=fine_clusters,
                               threshold=threshold)  # checks the method and group counts before the reduction
    reducer = ReducerChain(reduce, random_state=random_state, standardize=standardize)
    reduced = reducer.fit_transform(codes)
    return reducer, clusterer.fit(reduced)


def validation_scorer(
    images: np.ndarray, labels: np.ndarray, recipe: dict[str, Any], random_state: int = 0,
) -> Callable[[Autoencoder], float]:
    """A callable model -> accuracy of clustering `images` alone with `recipe` (keys it lacks
    from `RECIPE_DEFAULTS`), scored against `labels`: the validation curve of a training history.
    The images are encoded on the model's own device, so a training run's model stays where it is.

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3)
        The validation images, uint8.
    labels : ndarray of shape (N,)
        Their true labels.
    recipe : dict
        The clustering recipe ("reduce", "method", ...; missing keys from `RECIPE_DEFAULTS`).
    random_state : int, default=0
        Seed of the reduction and the clustering.

    Returns
    -------
    callable
        Autoencoder -> float: the clustering accuracy (`metrics.clustering_accuracy`), in [0, 1].
        It puts the model in eval mode.
    """
    recipe = {**RECIPE_DEFAULTS, **recipe}

    def score(model: Autoencoder) -> float:
        codes = encode_images(model, images, device=str(next(model.parameters()).device))
        _, clusterer = fit_groups(codes, recipe["reduce"], recipe["method"], recipe["threshold"], random_state,
                                  recipe["standardize"], recipe["n_clusters"], recipe["fine_clusters"])
        return clustering_accuracy(clusterer.labels_, labels)

    return score
