"""Clustering scores: accuracy under the best cluster-to-label matching, purity, NMI and ARI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix


def best_matching(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of rows to columns of `counts` (any shape) with the largest total
    count (Hungarian): row and column indices, in ascending column order."""
    rows, cols = linear_sum_assignment(-np.asarray(counts))
    order = np.argsort(cols)
    return rows[order], cols[order]


def matched_pairs(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """The best one-to-one matching (`best_matching`) of predicted clusters to true labels, for
    any number of either: the clusters, the labels, counts[cluster, label], and the matched pairs
    as row and column indices of `counts` in ascending label order."""
    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    counts = contingency_matrix(predicted, truth)
    return (np.unique(predicted), np.unique(truth), counts, *best_matching(counts))


def clustering_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose cluster maps to their label under the best one-to-one matching of
    clusters to labels, for any number of either (items of an unmatched cluster count as wrong)."""
    _, _, counts, rows, cols = matched_pairs(predicted, truth)
    return float(counts[rows, cols].sum() / counts.sum())


def purity(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose label is their cluster's majority label. Unlike ACC it lets several
    clusters share a label, so it does not count the items of surplus clusters as wrong when there
    are more clusters than labels (it rises towards 1 as clusters get smaller)."""
    counts = contingency_matrix(np.asarray(truth).ravel(), np.asarray(predicted).ravel())
    return float(counts.max(axis=0).sum() / counts.sum())


def score_all(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ACC (best matching), NMI and ARI of a clustering against true labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "acc": clustering_accuracy(predicted, truth),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }
