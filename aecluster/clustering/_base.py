"""What every clustering estimator shares: fitting and placing single-threaded, the saved state,
the group-count checks, and the nearest-centre rule that places new codes.

Every fitted clustering is a few plain arrays (`get_state`), and new codes are placed by numpy
alone (nearest centre, or a head's largest score), so a saved clustering labels new images
exactly as it labelled them.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aecluster.errors import UserInputError
from aecluster.registry import RECIPE_BOUNDS, bounds_interval
from aecluster.threads import single_threaded

METHODS = ("kmeans", "threshold", "overcluster", "scan")
# What a saved clustering states for every method (a method's own parameters override these), so
# that saved models keep one layout whatever the method.
STATE_DEFAULTS: dict[str, Any] = {"threshold": 0.0, "random_state": 0, "n_clusters": 2, "fine_clusters": 20}
DEGENERATE_FRACTION = 0.05
# The values each parameter of a clustering estimator accepts: the recipe's ranges (`RECIPE_BOUNDS`).
# An estimator's `_parameter_constraints` picks its own parameters from these.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "n_clusters": [bounds_interval(RECIPE_BOUNDS["n_clusters"])],
    "fine_clusters": [bounds_interval(RECIPE_BOUNDS["fine_clusters"])],
    "threshold": [bounds_interval(RECIPE_BOUNDS["threshold"])],
    "random_state": ["random_state"],
}

logger = logging.getLogger(__name__)


class GroupsEstimator(ClusterMixin, BaseEstimator):
    """Base of the clustering estimators: `fit` checks the codes, the parameters and the group
    counts, logs one line and fits with one BLAS thread (so the groups do not depend on the thread
    count), then labels the codes it was fitted on with `predict`. Subclasses set `method`,
    `fitted` (their fitted arrays) and `_parameter_constraints` (from `PARAMETER_CONSTRAINTS`),
    and write `_fit` and `_predict`.

    Codes are checked as scikit-learn checks its input (`validate_data`): a 2-D array of finite
    numbers, not sparse, which `fit` and `predict` take in float64.

    Attributes
    ----------
    method : str
        The method name (one of `METHODS`), set by each subclass.
    fitted : tuple of str
        The names of the fitted arrays, which `get_state` saves and `from_state` restores; the
        last axis of the first one is as wide as the codes.
    labels_ : ndarray of shape (N,)
        The group of each code `fit` saw.
    n_features_in_ : int
        The width of the codes `fit` saw (or of the restored arrays, after `from_state`).
    """

    method: ClassVar[str]
    fitted: ClassVar[tuple[str, ...]]
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    @property
    def groups(self) -> int:
        """How many groups the estimator makes."""
        return int(self.get_params().get("n_clusters", 2))

    def fit(self, codes: np.ndarray, y: Any = None) -> GroupsEstimator:
        """Fit on codes (N, dim), single-threaded; sets `labels_` and `n_features_in_`.

        Parameters
        ----------
        codes : array-like of shape (N, dim)
            The codes to group: finite numbers, at least two rows.
        y : None
            Ignored.

        Returns
        -------
        GroupsEstimator
            The fitted estimator itself.

        Raises
        ------
        ValueError
            For codes that are not a 2-D array of finite numbers (sparse, complex, NaN, ...), or
            a parameter of the wrong type or range.
        UserInputError
            For a single code, or when the method cannot make its groups of N codes
            (`check_group_counts`).
        """
        codes = validate_data(self, codes, dtype=np.float64)
        if len(codes) < 2:
            # One code makes no groups whatever the parameters, so it is refused before they are checked.
            raise UserInputError("need at least 2 images to form groups, found 1 sample")
        self._validate_params()
        logger.info("cluster: %s into %d groups (%d points of %d dimensions)", self.method, self.groups, *codes.shape)
        check_group_counts(self.method, self.groups, self.get_params().get("fine_clusters", self.groups), len(codes))
        with single_threaded():
            self._fit(codes)
        self.labels_ = self.predict(codes)
        return self

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """The fitted group of each code, single-threaded like `fit`.

        Parameters
        ----------
        codes : array-like of shape (N, dim)
            Codes in the space the estimator was fitted in (`n_features_in_` wide).

        Returns
        -------
        ndarray of shape (N,)
            The group of each code.

        Raises
        ------
        NotFittedError
            Before `fit`.
        ValueError
            For codes that are not a 2-D array of finite numbers, or not `n_features_in_` wide.
        """
        check_is_fitted(self, list(self.fitted))
        codes = validate_data(self, codes, reset=False, dtype=np.float64)
        with single_threaded():
            return self._predict(codes)

    def _fit(self, codes: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        """The fitted clustering as plain values and arrays (for a saved model).

        Returns
        -------
        dict
            "method", the `STATE_DEFAULTS` overridden by the estimator's parameters, and its fitted arrays.
        """
        return {"method": self.method, **STATE_DEFAULTS, **self.get_params(),
                **{key: getattr(self, key) for key in self.fitted}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GroupsEstimator:
        """A fitted clustering rebuilt from `get_state`'s values, ready to predict; a missing
        array or one whose shape does not fit the others raises KeyError or ValueError.
        `n_features_in_` is the width of the restored arrays.

        Parameters
        ----------
        state : dict
            Values as `get_state` returns them.

        Returns
        -------
        GroupsEstimator
            The fitted estimator.

        Raises
        ------
        UserInputError
            When the state's group counts do not fit the method (`check_group_counts`).
        KeyError
            When a parameter or fitted array is missing.
        ValueError
            When the restored arrays cannot make the estimator's groups.
        """
        estimator = cls(**{key: state[key] for key in cls().get_params()})
        check_group_counts(cls.method, estimator.groups, state.get("fine_clusters", estimator.groups))
        for key in cls.fitted:
            setattr(estimator, key, np.asarray(state[key]))
        estimator._check_state()
        width = getattr(estimator, cls.fitted[0]).shape[-1:]
        if not width:
            raise ValueError(f"{cls.fitted[0]} is a single number, not an array as wide as the codes")
        estimator.n_features_in_ = width[0]
        return estimator

    def _check_state(self) -> None:
        """Raise ValueError when restored arrays cannot make the estimator's groups."""


def nearest_centre(codes: np.ndarray, centres: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index of each code's nearest centre (exact squared distances, chunked; ties: lowest index).

    Parameters
    ----------
    codes : ndarray of shape (N, dim)
        The codes to place.
    centres : ndarray of shape (K, dim)
        The centres.
    chunk : int
        Codes per block of distances.

    Returns
    -------
    ndarray of shape (N,)
        The index of each code's nearest centre (int64).
    """
    nearest = np.empty(len(codes), dtype=np.int64)
    for start in range(0, len(codes), chunk):
        block = codes[start : start + chunk]
        nearest[start : start + len(block)] = ((block[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    return nearest


def check_group_counts(method: str, n_clusters: int, fine_clusters: int, n_images: int | None = None) -> None:
    """Refuse, before any work, a method that cannot make `n_clusters` groups (of `n_images`).

    Parameters
    ----------
    method : str
        The clustering method.
    n_clusters : int
        How many groups are asked for.
    fine_clusters : int
        How many fine groups "overcluster" merges.
    n_images : int, optional
        How many images (codes) are to be grouped; None skips that check.

    Raises
    ------
    UserInputError
        For an unknown method, "threshold" with other than two groups, "overcluster" with fewer fine
        groups than groups, or fewer than max(2, n_clusters) images.
    """
    if method not in METHODS:
        raise UserInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "threshold" and n_clusters != 2:
        raise UserInputError(f"method 'threshold' splits two ways only, but {n_clusters} groups were "
                             "asked for; use kmeans or overcluster")
    if method == "overcluster" and fine_clusters < n_clusters:
        raise UserInputError(f"overcluster merges {fine_clusters} fine groups, fewer than the "
                             f"{n_clusters} groups asked for; raise the fine-cluster count")
    if n_images is not None and n_images < max(2, n_clusters):
        raise UserInputError(f"need at least {max(2, n_clusters)} images to form {n_clusters} groups, "
                             f"found {n_images}")


def degenerate_warning(groups: np.ndarray, n_groups: int = 2) -> str | None:
    """A message when a group holds under 5% of the images (the split is probably useless).

    Parameters
    ----------
    groups : ndarray of shape (N,)
        The group of each image (non-negative ints).
    n_groups : int
        How many groups there should be; an empty one counts as the smallest.

    Returns
    -------
    str or None
        The warning, or None when every group holds at least `DEGENERATE_FRACTION` of the images.
    """
    smaller = int(np.bincount(groups, minlength=n_groups)[:n_groups].min())
    if smaller < DEGENERATE_FRACTION * len(groups):
        return (
            f"degenerate clustering: the smallest group has {smaller} of {len(groups)} images "
            f"(< {DEGENERATE_FRACTION:.0%}); try another reduction or method (`reduce`, `method`)"
        )
    return None
