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
    that scikit-learn, openTSNE and umap-learn would otherwise refuse with a traceback mid-run."""
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
    traceback from the library that would use it after encoding."""
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
    """Latent codes (N, code_dim) float32 of uint8 images, computed batch by batch."""
    device = resolve_device(device)
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encode(batch).cpu(), images, device, batch_size, progress).numpy()


def fit_groups(
    codes: np.ndarray, reduce: str, method: str, threshold: float = 0.0, random_state: int = 0,
    standardize: bool = True, n_clusters: int = 2, fine_clusters: int = 20,
) -> tuple[ReducerChain, GroupsEstimator]:
    """Fit the reducer chain and the clustering into `n_clusters` groups on codes; returns both."""
    reducer = ReducerChain(reduce, random_state=random_state, standardize=standardize)
    reduced = reducer.fit_transform(codes)
    clusterer = make_clusterer(method, n_clusters=n_clusters, random_state=random_state, fine_clusters=fine_clusters,
                               threshold=threshold)
    return reducer, clusterer.fit(reduced)


def validation_scorer(
    images: np.ndarray, labels: np.ndarray, recipe: dict[str, Any], random_state: int = 0,
) -> Callable[[Autoencoder], float]:
    """A callable model -> accuracy of clustering `images` alone with `recipe` (keys it lacks
    from `RECIPE_DEFAULTS`), scored against `labels`: the validation curve of a training history.
    The images are encoded on the model's own device, so a training run's model stays where it is."""
    recipe = {**RECIPE_DEFAULTS, **recipe}

    def score(model: Autoencoder) -> float:
        codes = encode_images(model, images, device=str(next(model.parameters()).device))
        _, clusterer = fit_groups(codes, recipe["reduce"], recipe["method"], recipe["threshold"], random_state,
                                  recipe["standardize"], recipe["n_clusters"], recipe["fine_clusters"])
        return clustering_accuracy(clusterer.labels_, labels)

    return score
