"""KMeans into K groups (100 seeded restarts); a new code joins its nearest centre."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.cluster import KMeans

from aecluster.clustering._base import PARAMETER_CONSTRAINTS, GroupsEstimator, nearest_centre

# Restarts of KMeans, the lowest inertia kept. On a few thousand whitened codes a 2-way split has
# several local optima of nearly equal inertia; 10 restarts missed the lowest on some samples and
# seeds (docs/accuracy.md), 100 found it on every one tried, in a second or two.
RESTARTS = 100


class KMeansGroups(GroupsEstimator):
    """Split codes into `n_clusters` groups by KMeans (`RESTARTS` seeded restarts, the lowest
    inertia kept).

    Parameters
    ----------
    n_clusters : int, default=2
        How many groups.
    random_state : int, RandomState instance or None, default=0
        Seeds KMeans's restarts.

    Attributes
    ----------
    centres_ : ndarray of shape (n_clusters, dim)
        The group centres; a code joins the nearest one.
    labels_ : ndarray of shape (N,)
        The group of each code `fit` saw.
    n_features_in_ : int
        The width of the codes `fit` saw.
    """

    method = "kmeans"
    fitted = ("centres_",)
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        key: PARAMETER_CONSTRAINTS[key] for key in ("n_clusters", "random_state")}

    def __init__(self, n_clusters: int = 2, random_state: Any = 0) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state

    def _fit(self, codes: np.ndarray) -> None:
        self.centres_ = KMeans(n_clusters=self.n_clusters, n_init=RESTARTS, random_state=self.random_state).fit(
            codes).cluster_centers_

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        return nearest_centre(codes, self.centres_)
