"""The scikit-learn style estimator that every command line and shell script calls."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aecluster.data import compute_in_batches, validate_images
from aecluster.errors import UserInputError
from aecluster.models import REGISTRY, Autoencoder


def encode_images(
    model: Autoencoder, images: np.ndarray, batch_size: int = 512, device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Latent codes (N, code_dim) float32 of uint8 images, computed batch by batch."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encode(batch).cpu(), images, device, batch_size, progress).numpy()


def fit_groups(
    codes: np.ndarray, reduce: str, method: str, threshold: float = 0.0, random_state: int = 0,
    standardize: bool = True,
) -> tuple[Any, Any]:
    """Fit the reducer chain and the two-group clustering on codes; returns both, fitted."""
    from aecluster.clustering import TwoGroupClusterer
    from aecluster.reduction import ReducerChain

    reducer = ReducerChain(reduce, random_state=random_state, standardize=standardize)
    reduced = reducer.fit_transform(codes)
    return reducer, TwoGroupClusterer(method, threshold, random_state).fit(reduced)


def validation_scorer(
    images: np.ndarray, labels: np.ndarray, recipe: dict[str, Any], random_state: int = 0,
) -> Any:
    """A callable model -> accuracy of clustering `images` alone with `recipe` (for history)."""
    from aecluster.metrics import clustering_accuracy

    def score(model: Autoencoder) -> float:
        codes = encode_images(model, images)
        _, clusterer = fit_groups(codes, recipe["reduce"], recipe["method"], recipe.get("threshold", 0.0),
                                  random_state, recipe.get("standardize", True))
        return clustering_accuracy(clusterer.labels_, labels)

    return score


class AEClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Autoencoder codes -> reducer chain -> two groups, labelled 0/1.

    Parameters
    ----------
    model : registered model name ("baseline", "improved", "best", ...).
    checkpoint : path of a trained checkpoint. When set, `fit` uses its encoder instead of
        training one (only the reduction and clustering are fitted).
    reduce, method, threshold, standardize : the clustering recipe; None takes the model's
        shipped recipe (`standardize` scales codes to zero mean and unit variance first).
    epochs, lr, batch_size, augment : training settings; None takes the model's defaults.
    random_state : seed of training, reduction and clustering.

    Accepts (N, 32, 32, 3) or flat (N, 3072) uint8 arrays. Label 1 goes to the group whose
    images are greener/bluer on average (a fixed colour prior for natural scenery) unless
    `orient_to` aligns the labels with a labelled reference set.
    """

    def __init__(
        self, model: str = "improved", checkpoint: str | os.PathLike | None = None,
        reduce: str | None = None, method: str | None = None, threshold: float = 0.0,
        standardize: bool | None = None,
        epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
        augment: str | None = None, random_state: int = 0, device: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.model = model
        self.checkpoint = checkpoint
        self.reduce = reduce
        self.method = method
        self.threshold = threshold
        self.standardize = standardize
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **params: Any) -> AEClusterer:
        """An estimator that uses the checkpoint's encoder and, unless overridden, its recipe."""
        from aecluster.checkpoint import read_checkpoint

        payload = read_checkpoint(path)
        recipe = payload.get("recipe", {})
        defaults = {"reduce": recipe.get("reduce"), "method": recipe.get("method"),
                    "threshold": recipe.get("threshold", 0.0), "standardize": recipe.get("standardize", True)}
        return cls(model=payload["model"], checkpoint=path, **{**defaults, **params})

    def _recipe(self) -> dict[str, Any]:
        shipped = REGISTRY[self.model].recipe if self.model in REGISTRY else {}
        return {"reduce": self.reduce if self.reduce is not None else shipped.get("reduce", "pca:50"),
                "method": self.method if self.method is not None else shipped.get("method", "kmeans"),
                "standardize": self.standardize if self.standardize is not None else shipped.get("standardize", True)}

    def _fit_encoder(self, images: np.ndarray) -> Autoencoder:
        if self.checkpoint is not None:
            from aecluster.checkpoint import load_model

            model, payload = load_model(self.checkpoint)
            self.checkpoint_info_ = {k: payload.get(k) for k in ("model", "epoch", "aecluster_version")}
            return model
        from aecluster.registry import TrainSettings
        from aecluster.stages import run_stages

        settings = TrainSettings.for_model(
            self.model, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
            augment=self.augment, seed=self.random_state)
        return run_stages(self.model, images, None, settings, recipe=self._recipe(), device=self.device,
                          progress=self.verbose)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Latent codes of images with the fitted encoder."""
        check_is_fitted(self, "encoder_")
        images = validate_images(np.asarray(X) if not isinstance(X, np.memmap) else X, "X")
        return encode_images(self.encoder_, images, device=self.device, progress=self.verbose)

    def fit(self, X: np.ndarray, y: Any = None) -> AEClusterer:
        """Train (or load) the encoder, fit the reducer chain and the two-group clustering."""
        from aecluster.clustering import degenerate_warning, orient_by_colour

        images = validate_images(X if isinstance(X, np.ndarray) else np.asarray(X), "X", min_images=2)
        clock = time.perf_counter()
        self.timings_: dict[str, float] = {}
        encoder = self._fit_encoder(images)
        self.timings_["load or train encoder"] = time.perf_counter() - clock
        clock = time.perf_counter()
        codes = encode_images(encoder, images, device=self.device, progress=self.verbose)
        if np.ptp(codes, axis=0).max() == 0:
            raise UserInputError(f"all {len(images)} images have the same code (are they identical?): "
                                 "there is nothing to split into two groups")
        self.encoder_ = encoder
        self.timings_["encode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        recipe = self._recipe()
        self.reducer_, self.clusterer_ = fit_groups(
            codes, recipe["reduce"], recipe["method"], self.threshold, self.random_state, recipe["standardize"])
        self.timings_["reduce + cluster"] = time.perf_counter() - clock
        groups = self.clusterer_.labels_
        oriented = orient_by_colour(groups, images)
        self.flip_ = bool(oriented[0] != groups[0]) if len(groups) else False
        self.labels_ = oriented
        self.n_features_in_ = int(np.prod(images.shape[1:]))
        message = degenerate_warning(self.labels_)
        if message:
            warnings.warn(message, stacklevel=2)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Reduced codes (the space the clustering runs in) of new images."""
        check_is_fitted(self, "reducer_")
        return self.reducer_.transform(self.encode(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels of new images, placed into the fitted reduction and groups."""
        check_is_fitted(self, "clusterer_")
        groups = self.clusterer_.predict(self.transform(X))
        return 1 - groups if self.flip_ else groups

    def fit_predict(self, X: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        return self.fit(X).labels_

    def orient_to(self, X_reference: np.ndarray, y_reference: np.ndarray) -> AEClusterer:
        """Flip the 0/1 labels (of `labels_` and later predictions) to best match a labelled set."""
        from aecluster.metrics import best_matching

        mapping = best_matching(self.predict(X_reference), np.asarray(y_reference))
        if mapping.get(1, 1) != 1 or mapping.get(0, 0) != 0:
            self.flip_ = not self.flip_
            self.labels_ = 1 - self.labels_
        return self
