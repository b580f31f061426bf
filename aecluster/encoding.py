"""The two steps between a trained encoder and labels: images -> codes, codes -> fitted groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from aecluster.data import compute_in_batches

if TYPE_CHECKING:
    from aecluster.clustering import GroupClusterer
    from aecluster.models import Autoencoder
    from aecluster.reduction import ReducerChain

# What a clustering recipe falls back to for each key it leaves out (a model's config may name
# only some; `AEClusterer` and the training history's validation score read these).
RECIPE_DEFAULTS: dict[str, Any] = {"reduce": "pca:50", "method": "kmeans", "threshold": 0.0, "standardize": True,
                                   "n_clusters": 2, "fine_clusters": 20}


def encode_images(
    model: Autoencoder, images: np.ndarray, batch_size: int = 512, device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Latent codes (N, code_dim) float32 of uint8 images, computed batch by batch."""
    from aecluster.devices import resolve_device

    device = resolve_device(device)
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encode(batch).cpu(), images, device, batch_size, progress).numpy()


def fit_groups(
    codes: np.ndarray, reduce: str, method: str, threshold: float = 0.0, random_state: int = 0,
    standardize: bool = True, n_clusters: int = 2, fine_clusters: int = 20,
) -> tuple[ReducerChain, GroupClusterer]:
    """Fit the reducer chain and the clustering into `n_clusters` groups on codes; returns both."""
    from aecluster.clustering import GroupClusterer
    from aecluster.reduction import ReducerChain

    reducer = ReducerChain(reduce, random_state=random_state, standardize=standardize)
    reduced = reducer.fit_transform(codes)
    clusterer = GroupClusterer(method, threshold, random_state, n_clusters, fine_clusters)
    return reducer, clusterer.fit(reduced)


def validation_scorer(
    images: np.ndarray, labels: np.ndarray, recipe: dict[str, Any], random_state: int = 0,
) -> Callable[[Autoencoder], float]:
    """A callable model -> accuracy of clustering `images` alone with `recipe` (keys it lacks
    from `RECIPE_DEFAULTS`), scored against `labels`: the validation curve of a training history.
    The images are encoded on the model's own device, so a training run's model stays where it is."""
    from aecluster.metrics import clustering_accuracy

    recipe = {**RECIPE_DEFAULTS, **recipe}

    def score(model: Autoencoder) -> float:
        codes = encode_images(model, images, device=str(next(model.parameters()).device))
        _, clusterer = fit_groups(codes, recipe["reduce"], recipe["method"], recipe["threshold"], random_state,
                                  recipe["standardize"], recipe["n_clusters"], recipe["fine_clusters"])
        return clustering_accuracy(clusterer.labels_, labels)

    return score
