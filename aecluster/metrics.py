"""Clustering scores: accuracy under the best cluster-to-label matching, purity, NMI and ARI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix


def best_matching(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of rows to columns of `counts` (any shape) with the largest total
    count (Hungarian): row and column indices, in ascending column order.

    Parameters
    ----------
    counts : ndarray of shape (R, C)
        Counts (or any scores) to maximise the matched total of.

    Returns
    -------
    rows : ndarray of shape (min(R, C),)
        Row index of each matched pair.
    cols : ndarray of shape (min(R, C),)
        Column index of each matched pair, ascending.
    """
    rows, cols = linear_sum_assignment(-np.asarray(counts))
    order = np.argsort(cols)
    return rows[order], cols[order]


def contingency_table(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """How many items hold each pair of labels: `contingency_matrix` of two labelings in 0..R-1
    and 0..C-1, with a row or column of zeros for each label no item holds.

    Parameters
    ----------
    rows : ndarray of shape (N,)
        Each item's row label, in 0..R-1.
    cols : ndarray of shape (N,)
        Each item's column label, in 0..C-1.
    shape : tuple of int
        (R, C).

    Returns
    -------
    ndarray of shape (R, C)
        int64 counts: entry [r, c] is the number of items labelled r and c.
    """
    table = np.zeros(shape, dtype=np.int64)
    table[np.ix_(np.unique(rows), np.unique(cols))] = contingency_matrix(rows, cols)
    return table


def matched_pairs(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """The best one-to-one matching (`best_matching`) of predicted clusters to true labels, for
    any number of either: the clusters, the labels, counts[cluster, label], and the matched pairs
    as row and column indices of `counts` in ascending label order.

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        Cluster labels (raveled).
    truth : ndarray of shape (N,)
        True labels (raveled).

    Returns
    -------
    clusters : ndarray of shape (R,)
        The distinct clusters, sorted (the rows of `counts`).
    labels : ndarray of shape (C,)
        The distinct true labels, sorted (the columns of `counts`).
    counts : ndarray of shape (R, C)
        The contingency matrix.
    rows : ndarray of shape (min(R, C),)
        Row index of each matched pair.
    cols : ndarray of shape (min(R, C),)
        Column index of each matched pair, ascending.
    """
    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    counts = contingency_matrix(predicted, truth)
    return (np.unique(predicted), np.unique(truth), counts, *best_matching(counts))


def clustering_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose cluster maps to their label under the best one-to-one matching of
    clusters to labels, for any number of either (items of an unmatched cluster count as wrong).

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        Cluster labels.
    truth : ndarray of shape (N,)
        True labels.

    Returns
    -------
    float
        The accuracy, in [0, 1].
    """
    _, _, counts, rows, cols = matched_pairs(predicted, truth)
    return float(counts[rows, cols].sum() / counts.sum())


def purity(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose label is their cluster's majority label. Unlike ACC it lets several
    clusters share a label, so it does not count the items of surplus clusters as wrong when there
    are more clusters than labels (it rises towards 1 as clusters get smaller).

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        Cluster labels.
    truth : ndarray of shape (N,)
        True labels.

    Returns
    -------
    float
        The purity, in [0, 1].
    """
    counts = contingency_matrix(np.asarray(truth).ravel(), np.asarray(predicted).ravel())
    return float(counts.max(axis=0).sum() / counts.sum())


def score_all(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ACC (best matching), NMI and ARI of a clustering against true labels.

    Parameters
    ----------
    predicted : ndarray of shape (N,)
        Cluster labels.
    truth : ndarray of shape (N,)
        True labels.

    Returns
    -------
    dict
        "acc", "nmi" and "ari", each a float.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "acc": clustering_accuracy(predicted, truth),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }
