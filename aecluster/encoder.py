"""The first step of the clustering pipeline as a scikit-learn transformer: uint8 images -> codes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from aecluster.augment import AUGMENTATIONS
from aecluster.checkpoint import model_from_payload, read_checkpoint
from aecluster.data import IMAGE_SHAPE, validate_images
from aecluster.devices import resolve_device
from aecluster.encoding import encode_images
from aecluster.errors import UserInputError
from aecluster.registry import REGISTRY, SETTING_BOUNDS, bounds_interval, model_config
from aecluster.seeds import integer_seed
from aecluster.stages import train_model

N_FEATURES = int(np.prod(IMAGE_SHAPE))  # 32 x 32 x 3 values per image


# The parameters that `ImageEncoder` and `AEClusterer` share, with the values each accepts.
# `REGISTRY.keys()` is a live view: the names are read when a value is validated, so building the
# constraint reads no config (a set of the names would read them all at import).
ENCODER_CONSTRAINTS: dict[str, list] = {
    "model": [StrOptions(REGISTRY.keys())],
    "checkpoint": [str, os.PathLike, None],
    "epochs": [bounds_interval(SETTING_BOUNDS["epochs"]), None],
    "lr": [bounds_interval(SETTING_BOUNDS["lr"]), None],
    "batch_size": [bounds_interval(SETTING_BOUNDS["batch_size"]), None],
    "augment": [StrOptions(set(AUGMENTATIONS)), None],
    "random_state": ["random_state"],
    "device": [str, None],
    "verbose": ["verbose"],
}


class ImageEncoder(TransformerMixin, BaseEstimator):
    """Images -> autoencoder codes: trains a registered model, or loads a checkpoint's encoder.

    Takes (N, 32, 32, 3) or flat (N, 3072) uint8 arrays, so it is the first step of a
    scikit-learn `Pipeline` whose later steps (`reduction.ReducerChain`, a clustering estimator
    of `aecluster.clustering`) work on its codes.

    Parameters
    ----------
    model : str, default="improved"
        Registered model name to train; unused with a checkpoint.
    checkpoint : str or path, optional
        A trained checkpoint whose encoder `fit` loads instead of training one.
    epochs, lr, batch_size, augment : optional
        Training settings when no checkpoint is given; None takes the model's defaults.
    recipe : dict, optional
        The clustering recipe the trained model goes with (`stages.train_model`); None lets
        training choose it (a config's own, or for one with fallback recipes the most stable).
    random_state : int, numpy.random.RandomState or None, default=0
        Seeds training. An int is the seed; a `RandomState` or None (numpy's global one) gives
        the seed it draws once per `fit` (`seeds.integer_seed`).
    device : str, optional
        Torch device (default: cuda when available, else cpu).
    verbose : int, default=0
        0 is silent; above 0 draws progress bars (a bool is accepted).

    Attributes
    ----------
    model_ : Autoencoder
        The trained or loaded model, in eval mode.
    encoder_config_ : dict
        Model name, settings, epoch and weight format of the model (what a saved model keeps).
    checkpoint_info_ : dict
        Model name, epoch and aecluster version of the loaded checkpoint (with `checkpoint`).
    trained_recipe_ : dict
        The clustering recipe of the model `fit` trained (without `checkpoint`).
    n_features_in_ : int
        3072, the values of one image.
    """

    _parameter_constraints: dict = {**ENCODER_CONSTRAINTS, "recipe": [dict, None]}

    def __init__(
        self, model: str = "improved", checkpoint: str | os.PathLike | None = None, epochs: int | None = None,
        lr: float | None = None, batch_size: int | None = None, augment: str | None = None,
        recipe: dict[str, Any] | None = None, random_state: int | np.random.RandomState | None = 0,
        device: str | None = None, verbose: int = 0,
    ) -> None:
        self.model = model
        self.checkpoint = checkpoint
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.recipe = recipe
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: str | os.PathLike, **params: Any) -> ImageEncoder:
        """The fitted encoder of a checkpoint already read (`checkpoint.read_checkpoint`).

        Parameters
        ----------
        payload : dict
            The checkpoint's contents.
        path : str or path
            Where it was read from (the `checkpoint` parameter).
        **params
            Other parameters (`device`, `verbose`).

        Returns
        -------
        ImageEncoder
            Fitted: `transform` works without `fit`.

        Raises
        ------
        UserInputError
            When the checkpoint's weights do not build its model.
        """
        encoder = cls(model=payload["model"], checkpoint=path, **params)
        encoder._take_checkpoint(payload)
        return encoder

    def fit(self, X: np.ndarray, y: Any = None) -> ImageEncoder:
        """Load the checkpoint's encoder, or train the model on `X` (`stages.train_model`).

        Parameters
        ----------
        X : ndarray of shape (N, 32, 32, 3) or (N, 3072), uint8
            The images (used only when training).
        y : ignored

        Returns
        -------
        ImageEncoder
            self, fitted.

        Raises
        ------
        ValueError
            For a parameter of the wrong type or range.
        UserInputError
            For images of the wrong shape or dtype, an unavailable device, or an unusable checkpoint.
        """
        self._validate_params()
        resolve_device(self.device)
        images = validate_images(X if isinstance(X, np.ndarray) else np.asarray(X), "X", min_images=2)
        if self.checkpoint is not None:
            self._take_checkpoint(read_checkpoint(self.checkpoint))
            return self
        trained = train_model(self.model, images, None, {"epochs": self.epochs, "lr": self.lr,
                                                         "batch_size": self.batch_size, "augment": self.augment,
                                                         "seed": integer_seed(self.random_state)},
                              recipe=self.recipe, device=self.device, progress=self.verbose > 0)
        self.model_ = trained.model
        self.trained_recipe_ = trained.recipe
        self.encoder_config_ = {"model": self.model, "config": model_config(self.model),
                                "epoch": float(trained.settings.epochs)}
        self.n_features_in_ = N_FEATURES
        return self

    def _take_checkpoint(self, payload: dict[str, Any]) -> None:
        """Set the fitted state from a checkpoint's contents: the model, and what a saved model
        writes with it (a float16 or int8 encoder is saved in its own format, not widened)."""
        self.model_ = model_from_payload(payload, str(self.checkpoint))
        self.checkpoint_info_ = {key: payload.get(key) for key in ("model", "epoch", "aecluster_version")}
        self.encoder_config_ = {**{key: payload.get(key) for key in ("model", "config", "epoch")},
                                "weight_format": payload.get("weight_format", "float32")}
        self.n_features_in_ = N_FEATURES

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent codes of images.

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
            For images of the wrong shape or dtype, or when the encoder gives NaN or infinite
            codes (finite weights far too large, as a crafted checkpoint's may be).
        """
        check_is_fitted(self, "model_")
        images = validate_images(np.asarray(X) if not isinstance(X, np.memmap) else X, "X")
        codes = encode_images(self.model_, images, device=self.device, progress=self.verbose > 0)
        bad = int(np.count_nonzero(~np.isfinite(codes).all(axis=1)))
        if bad:
            raise UserInputError(f"{self.checkpoint or 'the encoder'}: its encoder gives NaN or infinite codes for "
                                 f"{bad} of {len(codes)} images (weights too large?); nothing can be grouped")
        return codes
