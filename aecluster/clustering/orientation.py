"""A deterministic order of group labels from a fixed colour prior (no labels): for two groups,
the greener and bluer group, natural scenery more often than not, gets label 1."""

from __future__ import annotations

import numpy as np

from aecluster.data import iter_batches


def natural_colour_score(images: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Per-image mean of (green + blue - 2 red)/255: a fixed colour prior for natural scenery.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3)
        RGB images (uint8).
    batch_size : int
        Images per batch.

    Returns
    -------
    ndarray of shape (N,)
        The score of each image, in [-2, 2].
    """
    scores = np.empty(len(images), dtype=np.float64)
    for index, batch in enumerate(iter_batches(images, batch_size)):
        batch = batch.astype(np.float32)
        scores[index * batch_size : index * batch_size + len(batch)] = (
            batch[..., 1] + batch[..., 2] - 2 * batch[..., 0]
        ).mean(axis=(1, 2)) / 255.0
    return scores


def order_by_colour(groups: np.ndarray, images: np.ndarray, n_groups: int) -> np.ndarray:
    """Deterministic labels: map[group] = rank of the group's mean colour score, ascending, so the
    greenest/bluest group gets label n_groups - 1 (for two groups: label 1). Ties keep the group
    order; empty groups come last; a single group keeps its number.

    Parameters
    ----------
    groups : ndarray of shape (N,)
        The group of each image, in 0..n_groups-1.
    images : ndarray of shape (N, H, W, 3)
        The images the groups hold (uint8).
    n_groups : int
        How many groups.

    Returns
    -------
    ndarray of shape (n_groups,)
        The label of each group.
    """
    if len(np.unique(groups)) < 2:
        return np.arange(n_groups)
    scores = natural_colour_score(images)
    means = np.array([scores[groups == g].mean() if np.any(groups == g) else np.nan for g in range(n_groups)])
    label_map = np.empty(n_groups, dtype=np.int64)
    label_map[np.argsort(means, kind="stable")] = np.arange(n_groups)
    return label_map
