"""Clustering scores: accuracy under the best cluster-to-label matching, purity, NMI and ARI."""

from __future__ import annotations

import numpy as np


def _contingency(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clusters, labels and counts[cluster, label] of items in both."""
    clusters, cluster_index = np.unique(predicted, return_inverse=True)
    labels, label_index = np.unique(truth, return_inverse=True)
    counts = np.zeros((len(clusters), len(labels)), dtype=np.int64)
    np.add.at(counts, (cluster_index.ravel(), label_index.ravel()), 1)
    return clusters, labels, counts


def matched_pairs(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """The best one-to-one matching (Hungarian) of predicted clusters to true labels, for any
    number of either: the clusters, the labels, counts[cluster, label], and the matched pairs as
    row and column indices of `counts` in ascending label order."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels, counts = _contingency(np.asarray(predicted), np.asarray(truth))
    rows, cols = linear_sum_assignment(-counts)
    order = np.argsort(cols)
    return clusters, labels, counts, rows[order], cols[order]


def clustering_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose cluster maps to their label under the best one-to-one matching of
    clusters to labels, for any number of either (items of an unmatched cluster count as wrong)."""
    _, _, counts, rows, cols = matched_pairs(predicted, truth)
    return float(counts[rows, cols].sum() / counts.sum())


def purity(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose label is their cluster's majority label. Unlike ACC it lets several
    clusters share a label, so it does not count the items of surplus clusters as wrong when there
    are more clusters than labels (it rises towards 1 as clusters get smaller)."""
    from sklearn.metrics.cluster import contingency_matrix

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
