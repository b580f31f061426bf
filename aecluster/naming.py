"""Naming fitted groups from a labelled reference set: orienting the labels of K groups to match
the reference (`orient`), or giving each fine group of an over-clustering the majority label of
the reference images it holds (`name_from_reference`). Both use labels; everything else in the
pipeline does not, so they live apart from the estimator that calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aecluster.clustering import GroupsEstimator, OverclusterGroups, nearest_centre
from aecluster.data import validate_images, validate_labels
from aecluster.errors import UserInputError
from aecluster.metrics import best_matching, contingency_table


def orientable_labels(labels: Any, n_groups: int, source: str, n_images: int | None = None) -> np.ndarray:
    """Reference labels that can orient `n_groups` groups.

    Parameters
    ----------
    labels : array-like
        The reference labels.
    n_groups : int
        How many groups they orient.
    source : str
        What the labels are called in messages.
    n_images : int, optional
        How many labels there must be (one per reference image).

    Returns
    -------
    ndarray of shape (N,)
        The labels as int64.

    Raises
    ------
    UserInputError
        When they are not integers in 0..n_groups-1, or not `n_images` of them.
    """
    truth = validate_labels(labels, source, n_images)
    if truth.size and (truth.min() < 0 or truth.max() >= n_groups):
        raise UserInputError(f"{source}: labels must lie in 0..{n_groups - 1} to orient {n_groups} groups, "
                             f"found {truth.min()}..{truth.max()}")
    return truth


def orient(label_map: np.ndarray, place: Callable[[np.ndarray], np.ndarray], X_reference: np.ndarray,
           y_reference: Any) -> np.ndarray:
    """The permutation of the groups' labels that best matches a labelled reference set
    (Hungarian matching; the current order wins ties), so that label k means the reference's k.

    Parameters
    ----------
    label_map : ndarray of shape (K,)
        The label of each group now: a permutation of 0..K-1.
    place : callable
        The group of each of a batch of images (the fitted reduction and groups).
    X_reference : ndarray
        Reference images, (N, 32, 32, 3) or (N, 3072) uint8.
    y_reference : array-like of shape (N,)
        Their labels, in 0..K-1.

    Returns
    -------
    ndarray of shape (K,)
        The new label of each group (`label_map` itself when no permutation matches better).

    Raises
    ------
    UserInputError
        When `label_map` is not a permutation of 0..K-1 (groups named from reference labels), or
        the reference images or labels are unusable.
    """
    n_groups = len(label_map)
    if sorted(label_map.tolist()) != list(range(n_groups)):
        raise UserInputError(f"the groups carry the labels {label_map.tolist()} of label_from_reference; "
                             "orient_to only permutes labels 0..K-1")
    images = validate_images(np.asarray(X_reference), "X_reference")
    truth = orientable_labels(y_reference, n_groups, "y_reference", len(images))
    groups = place(images)
    counts = contingency_table(groups, truth, (n_groups, n_groups))
    rows, cols = best_matching(counts)
    if counts[rows, cols].sum() > counts[np.arange(n_groups), label_map].sum():
        return cols[np.argsort(rows)].astype(np.int64)
    return label_map


def name_from_reference(clusterer: GroupsEstimator, reduce: Callable[[np.ndarray], np.ndarray],
                        X_reference: np.ndarray, y_reference: Any) -> np.ndarray:
    """Name the fine groups of an over-clustering with reference labels (`name_fine_groups`).

    Parameters
    ----------
    clusterer : GroupsEstimator
        The fitted groups; only method "overcluster" has fine groups to name.
    reduce : callable
        The reduced codes of a batch of images (the space `clusterer` groups).
    X_reference : ndarray
        Reference images, (N, 32, 32, 3) or (N, 3072) uint8.
    y_reference : array-like of shape (N,)
        Their integer labels (any values, at least two of them).

    Returns
    -------
    ndarray
        The sorted label values: the new label map, indexed by what `clusterer` now predicts.

    Raises
    ------
    UserInputError
        For another method than "overcluster", or unusable reference images or labels.
    """
    images = validate_images(np.asarray(X_reference), "X_reference")
    truth = validate_labels(y_reference, "y_reference", len(images))
    if clusterer.method != "overcluster":
        raise UserInputError(f"naming groups from labelled images needs method 'overcluster' "
                             f"(its fine groups get the labels), not {clusterer.method!r}")
    return name_fine_groups(clusterer, reduce(images), truth).astype(np.int64)


def name_fine_groups(clusterer: OverclusterGroups, reference_codes: np.ndarray,
                     reference_labels: np.ndarray) -> np.ndarray:
    """Give each fine group the majority label of the reference codes it holds, or, holding
    none, the label of the nearest fine group that holds some (ties: smaller label).

    Parameters
    ----------
    clusterer : OverclusterGroups
        Fitted; its `merge_` (and `labels_`) change to indices into the returned labels.
    reference_codes : ndarray of shape (N, dim)
        Reduced codes of the reference images.
    reference_labels : ndarray of shape (N,)
        Their labels.

    Returns
    -------
    ndarray
        The sorted label values, which `clusterer.predict` now returns indices into.

    Raises
    ------
    UserInputError
        When the reference labels hold a single class.
    """
    classes, classes_index = np.unique(np.asarray(reference_labels), return_inverse=True)
    if len(classes) < 2:
        raise UserInputError(f"the reference labels hold one class ({classes[0]}); naming groups needs at "
                             "least two")
    centres = clusterer.centres_
    nearest = nearest_centre(np.asarray(reference_codes, dtype=np.float64), centres)
    counts = contingency_table(nearest, classes_index, (len(centres), len(classes)))
    named = counts.sum(axis=1) > 0
    merge = counts.argmax(axis=1)
    if not named.all():
        distances = ((centres[~named, None] - centres[None, named]) ** 2).sum(axis=2)
        merge[~named] = merge[named][distances.argmin(axis=1)]
    clusterer.merge_ = merge.astype(np.int64)
    if hasattr(clusterer, "fine_labels_"):
        clusterer.labels_ = clusterer.merge_[clusterer.fine_labels_]
    return classes
