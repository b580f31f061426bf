"""Clustering scores: accuracy under the best cluster-to-label matching, NMI and ARI."""

from __future__ import annotations

import numpy as np


def best_matching(predicted: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """Map each predicted cluster to the true label that maximises agreement (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels = np.unique(predicted), np.unique(truth)
    counts = np.zeros((len(clusters), len(labels)), dtype=np.int64)
    for i, cluster in enumerate(clusters):
        members = truth[predicted == cluster]
        for j, label in enumerate(labels):
            counts[i, j] = np.count_nonzero(members == label)
    rows, cols = linear_sum_assignment(-counts)
    mapping = {int(clusters[r]): int(labels[c]) for r, c in zip(rows, cols, strict=True)}
    unmatched = [int(c) for c in clusters if int(c) not in mapping]
    for cluster in unmatched:
        mapping[cluster] = int(labels[np.argmax(counts[list(clusters).index(cluster)])])
    return mapping


def clustering_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of items whose cluster maps to their label under the best one-to-one matching."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    mapping = best_matching(predicted, truth)
    mapped = np.vectorize(mapping.__getitem__)(predicted)
    return float(np.mean(mapped == truth))


def score_all(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ACC (best matching), NMI and ARI of a clustering against true labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "acc": clustering_accuracy(predicted, truth),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }
