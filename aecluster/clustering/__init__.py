"""Clustering of reduced codes into K groups: one scikit-learn estimator per method, the rule
that orders their labels, and the saved state of a fitted one.

kmeans (`KMeansGroups`), overcluster (`OverclusterGroups`: KMeans into many small groups, merged
by Ward's linkage), scan (`ScanGroups`: SCAN's clustering head) and threshold
(`ThresholdGroups`: similarity to the codes' first axis). `make_clusterer` builds one from a
recipe's values, `clusterer_from_state` rebuilds a saved one.
"""

from __future__ import annotations

from typing import Any

from aecluster.clustering._base import (
    METHODS,
    STATE_DEFAULTS,
    GroupsEstimator,
    check_group_counts,
    degenerate_warning,
    nearest_centre,
)
from aecluster.clustering.kmeans import KMeansGroups
from aecluster.clustering.orientation import natural_colour_score, order_by_colour
from aecluster.clustering.overcluster import OverclusterGroups
from aecluster.clustering.scan import ScanGroups, nearest_others
from aecluster.clustering.threshold import ThresholdGroups

ESTIMATORS: dict[str, type[GroupsEstimator]] = {
    estimator.method: estimator for estimator in (KMeansGroups, ThresholdGroups, OverclusterGroups, ScanGroups)}

__all__ = ["ESTIMATORS", "METHODS", "GroupsEstimator", "KMeansGroups", "OverclusterGroups", "ScanGroups",
           "ThresholdGroups", "check_group_counts", "clusterer_from_state", "degenerate_warning", "make_clusterer",
           "natural_colour_score", "nearest_centre", "nearest_others", "order_by_colour"]


def make_clusterer(method: str, *, n_clusters: int = 2, random_state: Any = 0, fine_clusters: int = 20,
                   threshold: float = 0.0) -> GroupsEstimator:
    """The estimator of `method` with the recipe values it takes (the others are not its own:
    KMeans has no threshold, say), once the group counts are checked.

    Parameters
    ----------
    method : str
        One of `METHODS`: "kmeans", "threshold", "overcluster" or "scan".
    n_clusters : int, default=2
        How many groups (not taken by "threshold", which makes two).
    random_state : int, RandomState instance or None, default=0
        Seed of the clustering (not taken by "threshold").
    fine_clusters : int, default=20
        How many fine groups "overcluster" merges (taken by it alone).
    threshold : float, default=0.0
        The cosine similarity that splits the groups of "threshold" (taken by it alone).

    Returns
    -------
    GroupsEstimator
        The unfitted estimator.

    Raises
    ------
    UserInputError
        For an unknown method, or group counts the method cannot make.
    """
    check_group_counts(method, n_clusters, fine_clusters)
    values = {"n_clusters": n_clusters, "random_state": random_state, "fine_clusters": fine_clusters,
              "threshold": threshold}
    estimator = ESTIMATORS[method]
    return estimator(**{key: values[key] for key in estimator().get_params()})


def clusterer_from_state(state: dict[str, Any]) -> GroupsEstimator:
    """A fitted clustering rebuilt from its `get_state` values (a saved model's "groups").

    Parameters
    ----------
    state : dict
        The values `GroupsEstimator.get_state` returns, with "method" naming the estimator.

    Returns
    -------
    GroupsEstimator
        The fitted estimator, ready to predict.

    Raises
    ------
    KeyError, ValueError
        A missing value or array, or arrays whose shapes do not fit together.
    UserInputError
        An unknown method or impossible group counts.
    """
    check_group_counts(state["method"], state.get("n_clusters", STATE_DEFAULTS["n_clusters"]),
                       state.get("fine_clusters", STATE_DEFAULTS["fine_clusters"]))
    return ESTIMATORS[state["method"]].from_state(state)
