"""The scikit-learn style estimator that every command line and shell script calls: images ->
codes (`encoder.ImageEncoder`) -> reduced codes (`reduction.ReducerChain`) -> groups (a clustering
estimator of `aecluster.clustering`) -> labels (the colour order, or a labelled reference's names)."""

from __future__ import annotations

import copy
import os
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from aecluster.atomic import check_output
from aecluster.checkpoint import code_dim_of, deployable_payload, make_payload, read_checkpoint, save_checkpoint
from aecluster.clustering import METHODS, degenerate_warning, order_by_colour
from aecluster.data import validate_images
from aecluster.devices import resolve_device
from aecluster.encoder import ENCODER_CONSTRAINTS, ImageEncoder
from aecluster.encoding import RECIPE_DEFAULTS, check_recipe, fit_groups
from aecluster.errors import UserInputError
from aecluster.models import build_model
from aecluster.naming import name_from_reference, orient
from aecluster.reduction import check_savable
from aecluster.registry import RECIPE_BOUNDS, REGISTRY, bounds_interval
from aecluster.saved_model import FittedParts, fitted_parts, fitted_state
from aecluster.seeds import integer_seed

RECIPE_PARAMS = tuple(RECIPE_DEFAULTS)  # the estimator parameters that make up its clustering recipe


class AEClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Autoencoder codes -> reducer chain -> `n_clusters` groups, labelled 0..n_clusters-1.

    Accepts (N, 32, 32, 3) or flat (N, 3072) uint8 arrays. `fit` composes the steps that also
    work alone in a scikit-learn `Pipeline`: `encoder.ImageEncoder` (images -> codes),
    `reduction.ReducerChain` (codes -> reduced codes) and a clustering estimator of
    `aecluster.clustering` (reduced codes -> groups), then names the groups. Labels are ordered by
    the groups' mean colour score (green + blue - 2 red), ascending: for two groups label 1 is
    the greener/bluer group (a fixed colour prior for natural scenery). After `fit`, `orient_to`
    refits the naming step to align the labels with a labelled reference set, and
    `label_from_reference` names fine groups with reference labels. Parameters are validated
    before any work; a bad one raises a ValueError naming it.

    Parameters
    ----------
    model : str, default="improved"
        Registered model name ("baseline", "improved", "best", ...) to train; unused with a
        checkpoint.
    checkpoint : str or path, optional
        A trained checkpoint. When set, `fit` uses its encoder instead of training one (only the
        reduction and clustering are fitted), and its recipe is the one None parameters take.
    reduce : str, optional
        Reducer chain such as "l2,pca:32" or "kpca:200,tsne:2"; None takes the recipe of the
        checkpoint, or of the model.
    method : {"kmeans", "overcluster", "scan", "threshold"}, optional
        How the reduced codes are grouped; None takes the recipe of the checkpoint, or of the
        model. "overcluster" fits `fine_clusters` KMeans groups and merges their centres by Ward
        linkage; "scan" trains a linear head that keeps each code's 20 nearest neighbours in its
        group (SCAN); "threshold" is two-way only.
    threshold : float, default=0.0
        Cosine-similarity threshold of method "threshold", in [-1, 1].
    standardize : bool, optional
        Scale codes to zero mean and unit variance first; None takes the recipe (as for reduce).
    n_clusters : int, default=2
        Number of groups (at least 2).
    fine_clusters : int, default=20
        Number of fine groups of method "overcluster" and of `label_from_reference`.
    epochs, lr, batch_size, augment : optional
        Training settings when no checkpoint is given; None takes the model's defaults.
    random_state : int, numpy.random.RandomState or None, default=0
        Seeds training, reduction and clustering. An int is the seed; a `RandomState` or None
        (numpy's global one) gives the seed it draws, once per `fit` (`seeds.integer_seed`), so
        only an int makes `fit` repeatable.
    device : str, optional
        Torch device (default: cuda when available, else cpu).
    verbose : int, default=0
        0 is silent; above 0 draws progress bars (a bool is accepted).

    Attributes
    ----------
    encoder_ : ImageEncoder
        The fitted encoder step; its `model_` is the trained or loaded autoencoder, in eval mode.
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
    trained_recipe_ : dict
        The clustering recipe the model trained by `fit` goes with (`stages.train_model`: for a
        config with fallback recipes, the one chosen by how stable its groups are).
    """

    _parameter_constraints: dict = {
        **ENCODER_CONSTRAINTS,
        "reduce": [str, None],
        "method": [StrOptions(set(METHODS)), None],
        "threshold": [bounds_interval(RECIPE_BOUNDS["threshold"])],
        "standardize": ["boolean", None],
        "n_clusters": [bounds_interval(RECIPE_BOUNDS["n_clusters"])],
        "fine_clusters": [bounds_interval(RECIPE_BOUNDS["fine_clusters"])],
    }

    def __init__(
        self, model: str = "improved", checkpoint: str | os.PathLike | None = None,
        reduce: str | None = None, method: str | None = None, threshold: float = 0.0,
        standardize: bool | None = None, n_clusters: int = 2, fine_clusters: int = 20,
        epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
        augment: str | None = None, random_state: int | np.random.RandomState | None = 0,
        device: str | None = None, verbose: int = 0,
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

        Parameters
        ----------
        path : str or path
            A trained checkpoint, or a model saved with `save` (`aecluster cluster --save-model`).
        **params
            Other parameters; a recipe parameter overrides the file's.

        Returns
        -------
        AEClusterer
            Fitted when the file is a saved model and no recipe parameter is overridden
            (`predict` then works without `fit`); unfitted otherwise.

        Raises
        ------
        ValueError
            When `params` names `model` or `checkpoint` (the file gives both).
        UserInputError
            For a file that is not a usable checkpoint or saved model.
        """
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
        estimator.encoder_ = ImageEncoder.from_payload(payload, path, device=estimator.device,
                                                       verbose=estimator.verbose)
        estimator.checkpoint_info_ = estimator.encoder_.checkpoint_info_
        estimator.reducer_, estimator.clusterer_, estimator.label_map_ = parts.reducer, parts.clusterer, parts.label_map
        estimator.n_features_in_ = estimator.encoder_.n_features_in_
        return estimator

    def resolved_recipe(self) -> dict[str, Any]:
        """The clustering recipe `fit` uses.

        Returns
        -------
        dict
            Each recipe parameter, or where it is None the recipe of the checkpoint (else of the
            trained model, `trained_recipe_`, else of the registered model), then `RECIPE_DEFAULTS`.

        Raises
        ------
        UserInputError
            When the checkpoint it must read is unusable.
        """
        chosen = {"reduce": self.reduce, "method": self.method, "standardize": self.standardize}
        if None not in chosen.values():
            shipped = {}
        elif self.checkpoint is not None:
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
        check_recipe(self.resolved_recipe(), "AEClusterer")
        self._validate_params()
        resolve_device(self.device)

    def check_recipe(self, n_images: int | None = None, source: str = "AEClusterer",
                     names: dict[str, str] | None = None, code_dim: int | None = None) -> dict[str, Any]:
        """The recipe `fit` would use, checked (`encoding.check_recipe`).

        Parameters
        ----------
        n_images : int, optional
            How many images it will group.
        source : str, default="AEClusterer"
            What errors name first.
        names : dict, optional
            What errors call each recipe key (an option, say) instead of "recipe 'key'".
        code_dim : int, optional
            The codes' width; by default that of the checkpoint's or the model's encoder, read
            from a skeleton without memory.

        Returns
        -------
        dict
            The complete recipe.

        Raises
        ------
        UserInputError
            For a recipe value that cannot work, naming `source` and the key.
        """
        if code_dim is None and self.checkpoint is None:
            code_dim = self._untrained_code_dim()
        elif code_dim is None:
            code_dim = code_dim_of(read_checkpoint(self.checkpoint), str(self.checkpoint))
        return check_recipe(self.resolved_recipe(), source, code_dim, n_images, names)

    def check_savable(self) -> None:
        """Refuse a recipe whose fitted groups could not be saved.

        Raises
        ------
        UserInputError
            One line naming the reducer that cannot be saved, and why.
        """
        check_savable(self.resolved_recipe()["reduce"])

    def _untrained_code_dim(self) -> int:
        """The code width of the model `fit` would train, from a skeleton without memory."""
        with torch.device("meta"):
            return build_model(self.model).code_dim

    def _encoder(self, seed: int) -> ImageEncoder:
        """The unfitted encoder step of `fit`. A model it trains goes with the recipe when every
        recipe parameter is given; otherwise training chooses it (`trained_recipe_`)."""
        given = (self.reduce, self.method, self.standardize)
        recipe = self.resolved_recipe() if self.checkpoint is None and None not in given else None
        return ImageEncoder(model=self.model, checkpoint=self.checkpoint, epochs=self.epochs, lr=self.lr,
                            batch_size=self.batch_size, augment=self.augment, recipe=recipe, random_state=seed,
                            device=self.device, verbose=self.verbose)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Latent codes of images with the fitted encoder.

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images.

        Returns
        -------
        ndarray of shape (N, code_dim), float32
            Their codes.

        Raises
        ------
        NotFittedError
            Before `fit`.
        UserInputError
            For images of the wrong shape or dtype, or NaN or infinite codes.
        """
        self._check_fitted("encoder_")
        return self.encoder_.transform(X)

    def fit(self, X: np.ndarray, y: Any = None) -> AEClusterer:
        """Train (or load) the encoder, fit the reducer chain and the clustering into groups,
        and label the groups by their colour order.

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images, at least 2 (and at least `n_clusters`).
        y : ignored
            Clustering uses no labels.

        Returns
        -------
        AEClusterer
            self, fitted.

        Raises
        ------
        ValueError
            For a parameter of the wrong type or range.
        UserInputError
            For unusable images, recipe, checkpoint or device, or images that all have one code.
        """
        self._fit(X)
        return self

    def _fit(self, X: np.ndarray) -> np.ndarray:
        """`fit`'s work; returns the codes of `X`, so that `fit_transform` encodes once."""
        self._check_params()
        images = validate_images(X if isinstance(X, np.ndarray) else np.asarray(X), "X", min_images=2)
        seed = integer_seed(self.random_state)
        clock = time.perf_counter()
        self.timings_: dict[str, float] = {}
        encoder = self._encoder(seed)
        if self.checkpoint is not None:  # loaded first: the recipe is checked against its code width
            encoder.fit(images)
            self.checkpoint_info_ = encoder.checkpoint_info_
        loaded = self.checkpoint is not None
        recipe = self.check_recipe(len(images), code_dim=encoder.model_.code_dim if loaded else None)
        if self.threshold != 0 and recipe["method"] != "threshold":
            warnings.warn(f"threshold={self.threshold:g} has no effect with method {recipe['method']!r}", stacklevel=3)
        if not loaded:
            encoder.fit(images)
            self.trained_recipe_ = encoder.trained_recipe_
            recipe = self.check_recipe(len(images), code_dim=encoder.model_.code_dim)
        self.timings_["load or train encoder"] = time.perf_counter() - clock
        clock = time.perf_counter()
        codes = encoder.transform(images)
        if np.ptp(codes, axis=0).max() == 0:
            raise UserInputError(f"all {len(images)} images have the same code (are they identical?): "
                                 "there is nothing to split into groups")
        self.encoder_ = encoder
        self.timings_["encode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        self.reducer_, self.clusterer_ = fit_groups(
            codes, recipe["reduce"], recipe["method"], self.threshold, seed, recipe["standardize"],
            self.n_clusters, self.fine_clusters)
        self.timings_["reduce + cluster"] = time.perf_counter() - clock
        groups = self.clusterer_.labels_
        self.label_map_ = order_by_colour(groups, images, self.n_clusters)
        self.labels_ = self.label_map_[groups]
        self.n_features_in_ = encoder.n_features_in_
        message = degenerate_warning(self.labels_, self.n_clusters)
        if message:
            warnings.warn(message, stacklevel=3)
        return codes

    def _check_fitted(self, attribute: str) -> None:
        """`check_is_fitted` for `attribute`, saying why a checkpoint-based estimator may lack it."""
        where = (f"it uses checkpoint {self.checkpoint} but holds no fitted groups (the file is an "
                 "encoder only, a recipe parameter differs from the saved model's, or the estimator "
                 "was cloned)" if self.checkpoint is not None else "it has not been fitted")
        check_is_fitted(self, attribute, msg=f"This %(name)s cannot place images yet: {where}. Call fit or "
                        "fit_predict first, or load a model saved with save() with from_checkpoint(path).")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Reduced codes (the space the clustering runs in) of new images.

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images.

        Returns
        -------
        ndarray of shape (N, n_reduced), float32
            Their reduced codes.

        Raises
        ------
        NotFittedError
            Before `fit`.
        UserInputError
            For images of the wrong shape or dtype.
        """
        self._check_fitted("reducer_")
        return self.reducer_.transform(self.encode(X))

    def fit_transform(self, X: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        """Fit on `X` and return its reduced codes, encoding the images once.

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images.
        y : ignored

        Returns
        -------
        ndarray of shape (N, n_reduced), float32
            What `transform(X)` returns after `fit(X)`.

        Raises
        ------
        ValueError, UserInputError
            As `fit`.
        """
        codes = self._fit(X)
        return self.reducer_.transform(codes)

    def _groups(self, X: np.ndarray) -> np.ndarray:
        """The fitted group of each image (before naming)."""
        return self.clusterer_.predict(self.transform(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels of new images, placed into the fitted reduction and groups (no refitting).

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images.

        Returns
        -------
        ndarray of shape (N,)
            Their labels; on the images `fit` saw, `labels_`.

        Raises
        ------
        NotFittedError
            Before `fit` (or on a checkpoint that holds no fitted groups).
        UserInputError
            For images of the wrong shape or dtype.
        """
        self._check_fitted("clusterer_")
        return self.label_map_[self._groups(X)]

    def fit_predict(self, X: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        """Fit on `X` and return its labels.

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images.
        y : ignored

        Returns
        -------
        ndarray of shape (N,)
            `labels_`.

        Raises
        ------
        ValueError, UserInputError
            As `fit`.
        """
        return self.fit(X).labels_

    def orient_to(self, X_reference: np.ndarray, y_reference: np.ndarray) -> AEClusterer:
        """Refit the naming step (USES LABELS): permute the labels to best match a labelled set
        (`naming.orient`). Only `label_map_` and `labels_` change; the encoder, reduction and
        groups stay as `fit` left them.

        Parameters
        ----------
        X_reference : ndarray of shape (M, 32, 32, 3) or (M, 3072), uint8
            Labelled reference images.
        y_reference : array-like of shape (M,)
            Their labels, in 0..n_clusters-1.

        Returns
        -------
        AEClusterer
            self, whose `labels_` and later predictions carry the permuted labels.

        Raises
        ------
        NotFittedError
            Before `fit`.
        UserInputError
            For unusable reference images or labels, or after `label_from_reference`.
        """
        self._check_fitted("clusterer_")
        self.label_map_ = orient(self.label_map_, self._groups, X_reference, y_reference)
        self._relabel()
        return self

    def _relabel(self) -> None:
        """`labels_` of the images `fit` saw, after `label_map_` or the groups changed."""
        if hasattr(self, "labels_"):
            self.labels_ = self.label_map_[self.clusterer_.labels_]

    def label_from_reference(self, X_reference: np.ndarray, y_reference: np.ndarray) -> AEClusterer:
        """Refit the naming step (USES LABELS): name the fine groups of method "overcluster"
        with the majority label of the reference images each holds (`naming.name_from_reference`).
        `clusterer_` becomes a renamed copy (the fitted one is left as it was), and `label_map_`
        and `labels_` follow; the encoder and reduction stay as `fit` left them.

        Parameters
        ----------
        X_reference : ndarray of shape (M, 32, 32, 3) or (M, 3072), uint8
            Labelled reference images.
        y_reference : array-like of shape (M,)
            Their integer labels (any values, at least two of them).

        Returns
        -------
        AEClusterer
            self, whose `labels_` and later predictions are reference labels.

        Raises
        ------
        NotFittedError
            Before `fit`.
        UserInputError
            For another method than "overcluster", or unusable reference images or labels.
        """
        self._check_fitted("clusterer_")
        clusterer = copy.deepcopy(self.clusterer_)
        self.label_map_ = name_from_reference(clusterer, self.transform, X_reference, y_reference)
        self.clusterer_ = clusterer
        self._relabel()
        return self

    def save(self, path: str | os.PathLike, force: bool = False) -> None:
        """Write the encoder and the fitted reduction and groups as one file of tensors and plain
        values (loadable with `torch.load(weights_only=True)`; nothing pickled).

        Reload it with `AEClusterer.from_checkpoint(path)`, whose `predict` then needs no fit.
        The encoder keeps the weight format it was loaded in.

        Parameters
        ----------
        path : str or path
            Where to write; never the checkpoint the estimator was loaded from.
        force : bool, default=False
            Allow a name not ending in .pth, .pt, .ckpt (or without extension).

        Raises
        ------
        NotFittedError
            Before `fit`.
        UserInputError
            For a reduction that cannot be saved (kpca, tsne, umap) or an unusable `path`.
        """
        self._check_fitted("clusterer_")
        self.check_savable()
        check_output(path, "checkpoint", [self.checkpoint], force=force)
        recipe = {key: value for key, value in self.resolved_recipe().items() if key in RECIPE_PARAMS}
        fitted = fitted_state(FittedParts(self.reducer_, self.clusterer_, self.label_map_))
        source = self.encoder_.encoder_config_
        payload = make_payload(self.encoder_.model_, source["model"], source["config"], recipe,
                               source["epoch"] or 0.0, {"fitted": fitted})
        save_checkpoint(path, deployable_payload(payload, source.get("weight_format", "float32")))
