"""The scikit-learn style estimator that every command line and shell script calls."""

from __future__ import annotations

import math
import os
import time
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from aecluster.augment import AUGMENTATIONS
from aecluster.clustering import METHODS
from aecluster.data import IMAGE_SHAPE, validate_images
from aecluster.encoding import RECIPE_DEFAULTS, check_recipe, encode_images, fit_groups
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder
from aecluster.naming import name_from_reference, orient
from aecluster.registry import RECIPE_BOUNDS, REGISTRY, SETTING_BOUNDS, Bounds

RECIPE_PARAMS = tuple(RECIPE_DEFAULTS)  # the estimator parameters that make up its clustering recipe


def _interval(bounds: Bounds) -> Interval:
    """A setting's `Bounds` as scikit-learn's parameter constraint (infinities and NaN refused)."""
    high = None if bounds.high == math.inf else bounds.high
    closed = {(False, True): "both", (True, True): "right", (False, False): "left", (True, False): "neither"}
    return Interval(Integral if bounds.integer else Real, bounds.low, high,
                    closed=closed[bounds.low_open, high is not None])


def _encoder_config(payload: dict[str, Any]) -> dict[str, Any]:
    """Model name, settings, epoch and weight format of a checkpoint's encoder: what `save` writes
    with it (a float16 or int8 encoder is saved in its own format, not widened to float32)."""
    return {**{key: payload.get(key) for key in ("model", "config", "epoch")},
            "weight_format": payload.get("weight_format", "float32")}


def _checkpoint_info(payload: dict[str, Any]) -> dict[str, Any]:
    """Model name, epoch and aecluster version of a loaded checkpoint (`checkpoint_info_`)."""
    return {key: payload.get(key) for key in ("model", "epoch", "aecluster_version")}


class AEClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Autoencoder codes -> reducer chain -> `n_clusters` groups, labelled 0..n_clusters-1.

    Accepts (N, 32, 32, 3) or flat (N, 3072) uint8 arrays. Labels are ordered by the groups' mean
    colour score (green + blue - 2 red), ascending: for two groups label 1 is the greener/bluer
    group (a fixed colour prior for natural scenery). `orient_to` instead aligns the labels with a
    labelled reference set, and `label_from_reference` names fine groups with reference labels.
    Parameters are validated before any work; a bad one raises a ValueError naming it.

    Parameters
    ----------
    model : str
        Registered model name ("baseline", "improved", "best", ...) to train; unused with a
        checkpoint.
    checkpoint : str or path, optional
        A trained checkpoint. When set, `fit` uses its encoder instead of training one (only the
        reduction and clustering are fitted), and its recipe is the one None parameters take.
    reduce : str, optional
        Reducer chain such as "l2,pca:32" or "kpca:200,tsne:2"; None takes the recipe of the
        checkpoint, or of the model.
    method : {"kmeans", "overcluster", "scan", "threshold"}, optional
        How the reduced codes are grouped; None takes the recipe of the checkpoint, or of the model. "overcluster" fits
        `fine_clusters` KMeans groups and merges their centres by Ward linkage; "scan" trains a
        linear head that keeps each code's 20 nearest neighbours in its group (SCAN);
        "threshold" is two-way only.
    threshold : float
        Cosine-similarity threshold of method "threshold", in [-1, 1].
    standardize : bool, optional
        Scale codes to zero mean and unit variance first; None takes the recipe (as for reduce).
    n_clusters : int
        Number of groups (at least 2).
    fine_clusters : int
        Number of fine groups of method "overcluster" and of `label_from_reference`.
    epochs, lr, batch_size, augment : optional
        Training settings when no checkpoint is given; None takes the model's defaults.
    random_state : int
        Seed of training, reduction and clustering.
    device : str, optional
        Torch device (default: cuda when available, else cpu).
    verbose : bool
        Progress bars.

    Attributes
    ----------
    encoder_ : Autoencoder
        The trained or loaded model, in eval mode.
    reducer_ : ReducerChain
        The fitted reduction.
    clusterer_ : GroupsEstimator
        The fitted clustering of the reduced codes.
    label_map_ : ndarray of int
        Label of each group of `clusterer_`.
    labels_ : ndarray of shape (n_samples,)
        Labels of the images `fit` saw (absent on a model loaded from a saved file).
    n_features_in_ : int
        3072 (32 x 32 x 3 values per image).
    timings_ : dict
        Seconds spent per stage of `fit`.
    checkpoint_info_ : dict
        Model name, epoch and version of the loaded checkpoint (when `checkpoint` is set).
    encoder_config_ : dict
        Model name, settings, epoch and weight format of the encoder (what `save` writes with it).
    trained_recipe_ : dict
        The clustering recipe the model trained by `fit` goes with (`stages.train_model`: for a
        config with fallback recipes, the one chosen by how stable its groups are).
    """

    _parameter_constraints: dict = {
        "model": [StrOptions(REGISTRY.keys())],
        "checkpoint": [str, os.PathLike, None],
        "reduce": [str, None],
        "method": [StrOptions(set(METHODS)), None],
        "threshold": [_interval(RECIPE_BOUNDS["threshold"])],
        "standardize": ["boolean", None],
        "n_clusters": [_interval(RECIPE_BOUNDS["n_clusters"])],
        "fine_clusters": [_interval(RECIPE_BOUNDS["fine_clusters"])],
        "epochs": [_interval(SETTING_BOUNDS["epochs"]), None],
        "lr": [_interval(SETTING_BOUNDS["lr"]), None],
        "batch_size": [_interval(SETTING_BOUNDS["batch_size"]), None],
        "augment": [StrOptions(set(AUGMENTATIONS)), None],
        "random_state": [_interval(SETTING_BOUNDS["seed"])],
        "device": [str, None],
        "verbose": ["boolean"],
    }

    def __init__(
        self, model: str = "improved", checkpoint: str | os.PathLike | None = None,
        reduce: str | None = None, method: str | None = None, threshold: float = 0.0,
        standardize: bool | None = None, n_clusters: int = 2, fine_clusters: int = 20,
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
        self.n_clusters = n_clusters
        self.fine_clusters = fine_clusters
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **params: Any) -> AEClusterer:
        """An estimator that uses the checkpoint's encoder and, unless overridden, its recipe.

        When the file is a saved model (`save`, `aecluster cluster --save-model`) and no recipe
        parameter is overridden, the estimator comes back fitted: `predict` works without `fit`.
        """
        from aecluster.checkpoint import code_dim_of, model_from_payload, read_checkpoint
        from aecluster.saved_model import fitted_parts

        if {"model", "checkpoint"} & set(params):
            raise ValueError("from_checkpoint takes model and checkpoint from the file; pass only other parameters")
        payload = read_checkpoint(path)
        recipe = payload.get("recipe") or {}
        defaults = {"reduce": recipe.get("reduce"), "method": recipe.get("method"),
                    **{key: recipe.get(key, RECIPE_DEFAULTS[key])
                       for key in ("threshold", "standardize", "n_clusters", "fine_clusters")}}
        if params.get("method", defaults["method"]) != "threshold":  # the file's threshold is its method's
            defaults["threshold"] = RECIPE_DEFAULTS["threshold"]
        estimator = cls(model=payload["model"], checkpoint=path, **{**defaults, **params})
        fitted = payload.get("fitted")
        if fitted is None or any(params.get(key, defaults[key]) != defaults[key] for key in RECIPE_PARAMS):
            return estimator
        parts = fitted_parts(fitted, code_dim_of(payload, str(path)), str(path))
        estimator.encoder_ = model_from_payload(payload, str(path))
        estimator.encoder_config_ = _encoder_config(payload)
        estimator.checkpoint_info_ = _checkpoint_info(payload)
        estimator.reducer_, estimator.clusterer_, estimator.label_map_ = parts.reducer, parts.clusterer, parts.label_map
        estimator.n_features_in_ = int(np.prod(IMAGE_SHAPE))
        return estimator

    def resolved_recipe(self) -> dict[str, Any]:
        """The clustering recipe `fit` uses: each parameter, or where it is None the recipe of the
        checkpoint (else of the trained model, `trained_recipe_`, else of the registered model),
        then `RECIPE_DEFAULTS`."""
        chosen = {"reduce": self.reduce, "method": self.method, "standardize": self.standardize}
        if None not in chosen.values():
            shipped = {}
        elif self.checkpoint is not None:
            from aecluster.checkpoint import read_checkpoint

            shipped = read_checkpoint(self.checkpoint).get("recipe") or {}
        elif hasattr(self, "trained_recipe_"):
            shipped = self.trained_recipe_
        else:
            shipped = REGISTRY[self.model].recipe if self.model in REGISTRY else {}
        return {**{key: value if value is not None else shipped.get(key, RECIPE_DEFAULTS[key])
                   for key, value in chosen.items()},
                "threshold": self.threshold, "n_clusters": self.n_clusters, "fine_clusters": self.fine_clusters}

    def _check_params(self) -> None:
        """Validate every parameter before any work: the recipe's values first (one
        `UserInputError` naming the key), then the others and the device."""
        from aecluster.devices import resolve_device

        check_recipe(self.resolved_recipe(), "AEClusterer")
        self._validate_params()
        resolve_device(self.device)

    def check_recipe(self, n_images: int | None = None, source: str = "AEClusterer",
                     names: dict[str, str] | None = None, code_dim: int | None = None) -> dict[str, Any]:
        """The recipe `fit` would use, checked (`encoding.check_recipe`) against `code_dim` (by
        default the code width of the checkpoint's or the model's encoder, read from a skeleton
        without memory) and `n_images`; errors name `source` and the key (or `names[key]`)."""
        if code_dim is None and self.checkpoint is None:
            code_dim = self._untrained_code_dim()
        elif code_dim is None:
            from aecluster.checkpoint import code_dim_of, read_checkpoint

            code_dim = code_dim_of(read_checkpoint(self.checkpoint), str(self.checkpoint))
        return check_recipe(self.resolved_recipe(), source, code_dim, n_images, names)

    def check_savable(self) -> None:
        """Raise a one-line error when this recipe's fitted groups could not be saved."""
        from aecluster.reduction import check_savable

        check_savable(self.resolved_recipe()["reduce"])

    def _load_encoder(self) -> Autoencoder:
        from aecluster.checkpoint import load_model

        model, payload = load_model(self.checkpoint)
        self.checkpoint_info_ = _checkpoint_info(payload)
        self.encoder_config_ = _encoder_config(payload)
        return model

    def _untrained_code_dim(self) -> int:
        """The code width of the model `fit` would train, from a skeleton without memory."""
        import torch

        from aecluster.models import build_model

        with torch.device("meta"):
            return build_model(self.model).code_dim

    def _train_encoder(self, images: np.ndarray) -> Autoencoder:
        """Train the model on `images` as `aecluster train` does (`stages.train_model`); its
        clustering recipe becomes the one `resolved_recipe` completes (`trained_recipe_`)."""
        from aecluster.registry import model_config
        from aecluster.stages import train_model

        given = {"reduce": self.reduce, "method": self.method, "standardize": self.standardize}
        trained = train_model(self.model, images, None, {"epochs": self.epochs, "lr": self.lr,
                                                         "batch_size": self.batch_size, "augment": self.augment,
                                                         "seed": int(self.random_state)},
                              recipe=self.resolved_recipe() if None not in given.values() else None,
                              device=self.device, progress=self.verbose)
        self.trained_recipe_ = trained.recipe
        self.encoder_config_ = {"model": self.model, "config": model_config(self.model),
                                "epoch": float(trained.settings.epochs)}
        return trained.model

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Latent codes of images with the fitted encoder."""
        self._check_fitted("encoder_")
        images = validate_images(np.asarray(X) if not isinstance(X, np.memmap) else X, "X")
        return self._finite(encode_images(self.encoder_, images, device=self.device, progress=self.verbose))

    def _finite(self, codes: np.ndarray) -> np.ndarray:
        """`codes`, once known to be finite: weights that are finite but far too large (a crafted
        checkpoint's) overflow into NaN codes, which no reduction or clustering can place."""
        bad = int(np.count_nonzero(~np.isfinite(codes).all(axis=1)))
        if bad:
            raise UserInputError(f"{self.checkpoint or 'the encoder'}: its encoder gives NaN or infinite codes for "
                                 f"{bad} of {len(codes)} images (weights too large?); nothing can be grouped")
        return codes

    def fit(self, X: np.ndarray, y: Any = None) -> AEClusterer:
        """Train (or load) the encoder, fit the reducer chain and the clustering into groups."""
        from aecluster.clustering import degenerate_warning, order_by_colour

        self._check_params()
        images = validate_images(X if isinstance(X, np.ndarray) else np.asarray(X), "X", min_images=2)
        clock = time.perf_counter()
        self.timings_: dict[str, float] = {}
        encoder = self._load_encoder() if self.checkpoint is not None else None
        recipe = self.check_recipe(len(images), code_dim=encoder.code_dim if encoder else None)
        if self.threshold != 0 and recipe["method"] != "threshold":
            warnings.warn(f"threshold={self.threshold:g} has no effect with method {recipe['method']!r}", stacklevel=2)
        if encoder is None:
            encoder = self._train_encoder(images)
            recipe = self.check_recipe(len(images), code_dim=encoder.code_dim)
        self.timings_["load or train encoder"] = time.perf_counter() - clock
        clock = time.perf_counter()
        codes = self._finite(encode_images(encoder, images, device=self.device, progress=self.verbose))
        if np.ptp(codes, axis=0).max() == 0:
            raise UserInputError(f"all {len(images)} images have the same code (are they identical?): "
                                 "there is nothing to split into groups")
        self.encoder_ = encoder
        self.timings_["encode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        self.reducer_, self.clusterer_ = fit_groups(
            codes, recipe["reduce"], recipe["method"], self.threshold, int(self.random_state), recipe["standardize"],
            self.n_clusters, self.fine_clusters)
        self.timings_["reduce + cluster"] = time.perf_counter() - clock
        groups = self.clusterer_.labels_
        self.label_map_ = order_by_colour(groups, images, self.n_clusters)
        self.labels_ = self.label_map_[groups]
        self.n_features_in_ = int(np.prod(images.shape[1:]))
        message = degenerate_warning(self.labels_, self.n_clusters)
        if message:
            warnings.warn(message, stacklevel=2)
        return self

    def _check_fitted(self, attribute: str) -> None:
        """`check_is_fitted` for `attribute`, saying why a checkpoint-based estimator may lack it."""
        where = (f"it uses checkpoint {self.checkpoint} but holds no fitted groups (the file is an "
                 "encoder only, a recipe parameter differs from the saved model's, or the estimator "
                 "was cloned)" if self.checkpoint is not None else "it has not been fitted")
        check_is_fitted(self, attribute, msg=f"This %(name)s cannot place images yet: {where}. Call fit or "
                        "fit_predict first, or load a model saved with save() with from_checkpoint(path).")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Reduced codes (the space the clustering runs in) of new images."""
        self._check_fitted("reducer_")
        return self.reducer_.transform(self.encode(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels of new images, placed into the fitted reduction and groups (no refitting)."""
        self._check_fitted("clusterer_")
        return self.label_map_[self.clusterer_.predict(self.transform(X))]

    def fit_predict(self, X: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        """Fit on `X` and return its labels (`labels_`)."""
        return self.fit(X).labels_

    def orient_to(self, X_reference: np.ndarray, y_reference: np.ndarray) -> AEClusterer:
        """Permute the labels (of `labels_` and later predictions) to best match a labelled set
        whose labels lie in 0..n_clusters-1 (`naming.orient`)."""
        self._check_fitted("clusterer_")
        self.label_map_ = orient(self.label_map_, lambda images: self.clusterer_.predict(self.transform(images)),
                                 X_reference, y_reference)
        self._relabel()
        return self

    def _relabel(self) -> None:
        """`labels_` of the images `fit` saw, after `label_map_` or the groups changed."""
        if hasattr(self, "labels_"):
            self.labels_ = self.label_map_[self.clusterer_.labels_]

    def label_from_reference(self, X_reference: np.ndarray, y_reference: np.ndarray) -> AEClusterer:
        """Uses labels: name the fine groups of method "overcluster" with the majority label of
        the reference images each holds (`naming.name_from_reference`). Labels of `labels_` and
        later predictions become reference labels."""
        self._check_fitted("clusterer_")
        self.label_map_ = name_from_reference(self.clusterer_, self.transform, X_reference, y_reference)
        self._relabel()
        return self

    def save(self, path: str | os.PathLike, force: bool = False) -> None:
        """Write the encoder (in the weight format it was loaded in) and the fitted reduction and
        groups as one file of tensors and plain values (loadable with `torch.load(weights_only=True)`;
        nothing pickled). Reload it with `AEClusterer.from_checkpoint(path)`, whose `predict` then
        needs no fit. The checkpoint the estimator was loaded from is never overwritten; a name not
        ending in .pth, .pt, .ckpt (or without extension) needs `force`."""
        from aecluster.atomic import check_output
        from aecluster.checkpoint import deployable_payload, make_payload, save_checkpoint
        from aecluster.saved_model import FittedParts, fitted_state

        self._check_fitted("clusterer_")
        self.check_savable()
        check_output(path, "checkpoint", [self.checkpoint], force=force)
        recipe = {key: value for key, value in self.resolved_recipe().items() if key in RECIPE_PARAMS}
        fitted = fitted_state(FittedParts(self.reducer_, self.clusterer_, self.label_map_))
        source = self.encoder_config_
        payload = make_payload(self.encoder_, source["model"], source["config"], recipe, source["epoch"] or 0.0,
                               {"fitted": fitted})
        save_checkpoint(path, deployable_payload(payload, source.get("weight_format", "float32")))
