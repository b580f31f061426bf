"""Two-group clustering of reduced codes, and a deterministic 0/1 orientation of the groups."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from aecluster.errors import UserInputError
from aecluster.reduction import logger, single_threaded

METHODS = ("kmeans", "threshold")
DEGENERATE_FRACTION = 0.05


class TwoGroupClusterer(ClusterMixin, BaseEstimator):
    """Split codes into two groups.

    method="kmeans": KMeans with 2 clusters (10 seeded restarts).
    method="threshold": similarity thresholding. Codes are centred and L2-normalised; images
    whose cosine similarity to the dominant direction of the codes (their first principal axis)
    exceeds `threshold` form one group, all others the second group. Two images are thus in the
    same group when they are similar enough to the same side of that direction.
    """

    def __init__(self, method: str = "kmeans", threshold: float = 0.0, random_state: int = 0) -> None:
        self.method = method
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, codes: np.ndarray, y: Any = None) -> TwoGroupClusterer:
        codes = np.asarray(codes, dtype=np.float64)
        if len(codes) < 2:
            raise UserInputError(f"need at least 2 images to form two groups, found {len(codes)}")
        logger.info("cluster: %s into two groups (%d points of %d dimensions)", self.method, *codes.shape)
        if self.method == "kmeans":
            from sklearn.cluster import KMeans

            with single_threaded():
                self.model_ = KMeans(n_clusters=2, n_init=10, random_state=self.random_state).fit(codes)
        elif self.method == "threshold":
            self.center_ = codes.mean(axis=0)
            centred = codes - self.center_
            with single_threaded():
                _, _, components = np.linalg.svd(centred[: min(len(codes), 20000)], full_matrices=False)
            direction = components[0]
            direction *= np.sign(direction[np.argmax(np.abs(direction))])
            self.direction_ = direction
        else:
            raise UserInputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        self.labels_ = self.predict(codes)
        return self

    def predict(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float64)
        if self.method == "kmeans":
            with single_threaded():
                return self.model_.predict(codes).astype(np.int64)
        centred = codes - self.center_
        norms = np.linalg.norm(centred, axis=1)
        similarity = centred @ self.direction_ / np.maximum(norms, 1e-12)
        return (similarity > self.threshold).astype(np.int64)


def natural_colour_score(images: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Per-image mean of (green + blue - 2 red)/255: a fixed colour prior for natural scenery."""
    from aecluster.data import iter_batches

    scores = np.empty(len(images), dtype=np.float64)
    for index, batch in enumerate(iter_batches(images, batch_size)):
        batch = batch.astype(np.float32)
        scores[index * batch_size : index * batch_size + len(batch)] = (
            batch[..., 1] + batch[..., 2] - 2 * batch[..., 0]
        ).mean(axis=(1, 2)) / 255.0
    return scores


def orient_by_colour(groups: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Deterministic 0/1 orientation: label 1 goes to the group with the greener/bluer images."""
    scores = natural_colour_score(images)
    if len(np.unique(groups)) < 2:
        return groups
    return groups if scores[groups == 1].mean() >= scores[groups == 0].mean() else 1 - groups


def degenerate_warning(groups: np.ndarray) -> str | None:
    """A message when one group holds under 5% of the images (the split is probably useless)."""
    smaller = min(np.count_nonzero(groups == 0), np.count_nonzero(groups == 1))
    if smaller < DEGENERATE_FRACTION * len(groups):
        return (
            f"degenerate clustering: the smaller group has {smaller} of {len(groups)} images "
            f"(< {DEGENERATE_FRACTION:.0%}); try another --reduce or --method"
        )
    return None
