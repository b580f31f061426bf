"""Similarity thresholding: two groups split by cosine similarity to the codes' first axis."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from aecluster.clustering._base import PARAMETER_CONSTRAINTS, GroupsEstimator


class ThresholdGroups(GroupsEstimator):
    """Two groups: codes are centred and L2-normalised; those whose cosine similarity to the
    dominant direction of the codes (their first principal axis, signed so that its largest
    entry is positive) exceeds `threshold` form group 1, all others group 0.

    Parameters
    ----------
    threshold : float, default=0.0
        The cosine similarity that splits the groups, in [-1, 1].

    Attributes
    ----------
    center_ : ndarray of shape (dim,)
        The mean code.
    direction_ : ndarray of shape (dim,)
        The first principal axis of the codes (of at most 20,000 of them).
    labels_ : ndarray of shape (N,)
        The group of each code `fit` saw.
    n_features_in_ : int
        The width of the codes `fit` saw.
    """

    method = "threshold"
    fitted = ("center_", "direction_")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        key: PARAMETER_CONSTRAINTS[key] for key in ("threshold",)}

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold

    def _fit(self, codes: np.ndarray) -> None:
        self.center_ = codes.mean(axis=0)
        _, _, components = np.linalg.svd((codes - self.center_)[: min(len(codes), 20000)], full_matrices=False)
        direction = components[0]
        direction *= np.sign(direction[np.argmax(np.abs(direction))])
        self.direction_ = direction

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        centred = codes - self.center_
        norms = np.linalg.norm(centred, axis=1)
        similarity = centred @ self.direction_ / np.maximum(norms, 1e-12)
        return (similarity > self.threshold).astype(np.int64)
