"""Over-clustering: KMeans into many small groups whose centres Ward's linkage merges into K."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans

from aecluster.clustering._base import PARAMETER_CONSTRAINTS, GroupsEstimator, nearest_centre


class OverclusterGroups(GroupsEstimator):
    """KMeans into `fine_clusters` small groups, whose centres are then merged down to
    `n_clusters` by Ward's agglomerative clustering; a new code joins the merged group of its
    nearest fine centre. It finds a split that several small dense groups share, where a direct
    KMeans may cut across them along the widest axis of the codes.

    Parameters
    ----------
    n_clusters : int, default=2
        How many merged groups.
    fine_clusters : int, default=20
        How many small KMeans groups are merged (at most the number of codes).
    random_state : int, RandomState instance or None, default=0
        Seeds KMeans's restarts.

    Attributes
    ----------
    centres_ : ndarray of shape (fine, dim)
        The fine centres.
    merge_ : ndarray of shape (fine,)
        The merged group of each fine centre (or, after `naming.name_fine_groups`, its label's index).
    labels_ : ndarray of shape (N,)
        The group of each code `fit` saw.
    n_features_in_ : int
        The width of the codes `fit` saw.
    fine_labels_ : ndarray of shape (N,)
        The fine group of each code `fit` saw (not restored by `from_state`).
    """

    method = "overcluster"
    fitted = ("centres_", "merge_")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        key: PARAMETER_CONSTRAINTS[key] for key in ("n_clusters", "fine_clusters", "random_state")}

    def __init__(self, n_clusters: int = 2, fine_clusters: int = 20, random_state: Any = 0) -> None:
        self.n_clusters = n_clusters
        self.fine_clusters = fine_clusters
        self.random_state = random_state

    def _fit(self, codes: np.ndarray) -> None:
        fine = min(self.fine_clusters, len(codes))
        self.centres_ = KMeans(n_clusters=fine, n_init=10, random_state=self.random_state).fit(codes).cluster_centers_
        self.merge_ = AgglomerativeClustering(n_clusters=self.n_clusters, linkage="ward").fit(
            self.centres_).labels_.astype(np.int64)
        self.fine_labels_ = nearest_centre(codes, self.centres_)

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        return self.merge_[nearest_centre(codes, self.centres_)]
