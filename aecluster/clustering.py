"""Clustering of reduced codes into K groups, and a deterministic order of the group labels.

Every fitted clustering is a few plain arrays (`get_state`): KMeans centres, the fine centres and
their merge for "overcluster", the centre and direction for "threshold", the linear head of
"scan". New codes are placed by numpy alone (nearest centre, or the head's largest score), so a
saved clustering labels new images exactly as it labelled them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from aecluster.errors import UserInputError
from aecluster.reduction import logger, single_threaded

METHODS = ("kmeans", "threshold", "overcluster", "scan")
# The fitted arrays of each method, as a saved model stores them.
FITTED_KEYS = {"kmeans": ("centres_",), "overcluster": ("centres_", "merge_"),
               "threshold": ("center_", "direction_"), "scan": ("weights_", "bias_")}
DEGENERATE_FRACTION = 0.05
# SCAN's published defaults (Van Gansbeke et al. 2020, arXiv:2005.12320): 20 mined neighbours,
# entropy weight 5, 10 heads of which the one with the lowest loss is kept.
SCAN_NEIGHBOURS = 20
SCAN_ENTROPY_WEIGHT = 5.0
SCAN_HEADS = 10
# The head is trained on at most this many codes (a seeded sample), a fixed number of Adam
# steps whatever the input size; every code is then placed by the fitted head.
SCAN_FIT_SAMPLES = 20000
SCAN_STEPS = 600
SCAN_BATCH_SIZE = 256
SCAN_LR = 0.01


def nearest_centre(codes: np.ndarray, centres: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index of each code's nearest centre (exact squared distances, chunked; ties: lowest index)."""
    nearest = np.empty(len(codes), dtype=np.int64)
    for start in range(0, len(codes), chunk):
        block = codes[start : start + chunk]
        nearest[start : start + len(block)] = ((block[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    return nearest


class GroupClusterer(ClusterMixin, BaseEstimator):
    """Split codes into `n_clusters` groups.

    method="kmeans": KMeans (10 seeded restarts).
    method="overcluster": KMeans into `fine_clusters` small groups, whose centres are then merged
    down to `n_clusters` by Ward's agglomerative clustering; a new code joins the merged group of
    its nearest fine centre. It finds a split that several small dense groups share, where a
    direct KMeans may cut across them along the widest axis of the codes.
    method="scan": a linear head over the codes trained with SCAN's loss (Van Gansbeke et al.
    2020): each code and one of its 20 nearest neighbours should fall in the same group, while
    the groups stay evenly used (entropy of the mean assignment). Ten heads are trained from
    different starts; the one with the lowest loss is kept. A new code joins its head's
    highest-scoring group. It looks for the split that cuts the fewest neighbourhoods, where
    KMeans may cut along the widest axis of the codes.
    method="threshold" (two groups only): codes are centred and L2-normalised; images whose cosine
    similarity to the dominant direction of the codes (their first principal axis) exceeds
    `threshold` form one group, all others the second group.
    """

    def __init__(self, method: str = "kmeans", threshold: float = 0.0, random_state: int = 0,
                 n_clusters: int = 2, fine_clusters: int = 20) -> None:
        self.method = method
        self.threshold = threshold
        self.random_state = random_state
        self.n_clusters = n_clusters
        self.fine_clusters = fine_clusters

    def fit(self, codes: np.ndarray, y: Any = None) -> GroupClusterer:
        """Fit on codes, single-threaded so that the groups do not depend on the thread count."""
        codes = np.asarray(codes, dtype=np.float64)
        logger.info("cluster: %s into %d groups (%d points of %d dimensions)", self.method, self.n_clusters,
                    *codes.shape)
        with single_threaded():
            return self._fit(codes)

    def _fit(self, codes: np.ndarray) -> GroupClusterer:
        check_group_counts(self.method, self.n_clusters, self.fine_clusters, len(codes))
        if self.method in ("kmeans", "overcluster"):
            from sklearn.cluster import KMeans

            fine = self.n_clusters if self.method == "kmeans" else min(self.fine_clusters, len(codes))
            kmeans = KMeans(n_clusters=fine, n_init=10, random_state=self.random_state).fit(codes)
            self.centres_ = kmeans.cluster_centers_
            if self.method == "overcluster":
                from sklearn.cluster import AgglomerativeClustering

                self.merge_ = AgglomerativeClustering(n_clusters=self.n_clusters, linkage="ward").fit(
                    self.centres_).labels_.astype(np.int64)
                self.fine_labels_ = nearest_centre(codes, self.centres_)
        elif self.method == "scan":
            self.weights_, self.bias_ = fit_scan_head(codes, self.n_clusters, self.random_state)
        else:
            self.center_ = codes.mean(axis=0)
            _, _, components = np.linalg.svd((codes - self.center_)[: min(len(codes), 20000)], full_matrices=False)
            direction = components[0]
            direction *= np.sign(direction[np.argmax(np.abs(direction))])
            self.direction_ = direction
        self.labels_ = self.predict(codes)
        return self

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """The fitted group of each code, single-threaded like `fit`."""
        with single_threaded():
            return self._predict(np.asarray(codes, dtype=np.float64))

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        if self.method == "threshold":
            centred = codes - self.center_
            norms = np.linalg.norm(centred, axis=1)
            similarity = centred @ self.direction_ / np.maximum(norms, 1e-12)
            return (similarity > self.threshold).astype(np.int64)
        if self.method == "scan":
            return (codes @ self.weights_.T + self.bias_).argmax(axis=1).astype(np.int64)
        nearest = nearest_centre(codes, self.centres_)
        return self.merge_[nearest] if self.method == "overcluster" else nearest

    def name_fine_groups(self, reference_codes: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
        """Give each fine group ("overcluster") the majority label of the reference codes it holds,
        or, holding none, the label of the nearest fine group that holds some (ties: smaller label).

        Afterwards `predict` returns indices into the returned sorted label values."""
        if self.method != "overcluster":
            raise UserInputError(f"naming groups from labelled images needs method 'overcluster' "
                                 f"(its fine groups get the labels), not {self.method!r}")
        classes, classes_index = np.unique(np.asarray(reference_labels), return_inverse=True)
        if len(classes) < 2:
            raise UserInputError(f"the reference labels hold one class ({classes[0]}); naming groups needs at "
                                 "least two")
        counts = np.zeros((len(self.centres_), len(classes)), dtype=np.int64)
        np.add.at(counts, (nearest_centre(np.asarray(reference_codes, dtype=np.float64), self.centres_),
                           classes_index), 1)
        named = counts.sum(axis=1) > 0
        merge = counts.argmax(axis=1)
        if not named.all():
            distances = ((self.centres_[~named, None] - self.centres_[None, named]) ** 2).sum(axis=2)
            merge[~named] = merge[named][distances.argmin(axis=1)]
        self.merge_ = merge.astype(np.int64)
        if hasattr(self, "fine_labels_"):
            self.labels_ = self.merge_[self.fine_labels_]
        return classes

    def get_state(self) -> dict[str, Any]:
        """The fitted clustering as plain values and arrays (for a saved model)."""
        return {**self.get_params(), **{key: getattr(self, key) for key in FITTED_KEYS[self.method]}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GroupClusterer:
        """A fitted clustering rebuilt from `get_state`'s values (as `saved_model.fitted_parts`
        has checked them), ready to predict."""
        clusterer = cls(**{key: state[key] for key in cls().get_params()})
        check_group_counts(clusterer.method, clusterer.n_clusters, clusterer.fine_clusters)
        for key in FITTED_KEYS[clusterer.method]:
            setattr(clusterer, key, np.asarray(state[key]))
        return clusterer


def nearest_others(points: np.ndarray, n_neighbours: int) -> np.ndarray:
    """Indices (N, n_neighbours) of each point's nearest other points (Euclidean): never the
    point itself, even where other points coincide with it."""
    from sklearn.neighbors import NearestNeighbors

    with single_threaded():
        return NearestNeighbors(n_neighbors=n_neighbours).fit(points).kneighbors(return_distance=False)


def fit_scan_head(codes: np.ndarray, n_clusters: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_clusters, dim) and bias (n_clusters,) of the lowest-loss SCAN head on `codes`.

    Runs in one torch thread with seeded generators, so the head is the same whatever the thread
    count (torch's thread count is process-wide: it is set to one and restored afterwards)."""
    import torch
    from sklearn.utils import check_random_state

    random_state = (int(random_state) if isinstance(random_state, (int, np.integer))
                    else int(check_random_state(random_state).randint(2**31 - 1)))
    rng = np.random.default_rng(random_state)
    if len(codes) > SCAN_FIT_SAMPLES:
        codes = codes[np.sort(rng.choice(len(codes), SCAN_FIT_SAMPLES, replace=False))]
    n_neighbours = min(SCAN_NEIGHBOURS, len(codes) - 1)
    neighbours = nearest_others(codes, n_neighbours)
    # The head sees standardised codes, so that no direction is favoured for its scale alone; the
    # scaling is folded back into the returned weights. Directions with next to no spread (PCA
    # components beyond the number of codes, say) would be noise magnified a trillion-fold: they
    # are set to zero and get no weight.
    spread = codes.std(axis=0)
    used = spread > 1e-6 * max(float(spread.max()), 1e-300)
    mean, scale = codes.mean(axis=0), np.where(used, spread, 1.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(random_state)
        points = torch.as_tensor((codes - mean) / scale * used, dtype=torch.float32)
        pairs = torch.as_tensor(neighbours)
        dim = points.shape[1]
        weights = (torch.randn(SCAN_HEADS, n_clusters, dim, generator=generator) / dim**0.5).requires_grad_()
        bias = torch.zeros(SCAN_HEADS, n_clusters, requires_grad=True)
        optimizer = torch.optim.Adam([weights, bias], lr=SCAN_LR)
        batch = min(SCAN_BATCH_SIZE, len(codes))
        for _ in range(SCAN_STEPS):
            anchors = torch.randint(len(codes), (batch,), generator=generator)
            partners = pairs[anchors, torch.randint(n_neighbours, (batch,), generator=generator)]
            loss = scan_loss(points[anchors], points[partners], weights, bias).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            losses = torch.stack([scan_loss(points, points[pairs[:, column]], weights, bias)
                                  for column in range(n_neighbours)]).mean(dim=0)
        best = int(losses.argmin())
        head = weights[best].detach().double().numpy() / scale * used
        return head, bias[best].detach().double().numpy() - head @ mean
    finally:
        torch.set_num_threads(threads)


def scan_loss(anchors: Any, partners: Any, weights: Any, bias: Any) -> Any:
    """SCAN's loss of each head (a tensor of SCAN_HEADS values): minus the mean log-probability
    that an anchor and its neighbour share a group, minus the weighted entropy of the mean
    group assignment (which keeps every group in use)."""
    import torch

    anchor_probs = torch.softmax(torch.einsum("nd,hkd->hnk", anchors, weights) + bias[:, None], dim=2)
    partner_probs = torch.softmax(torch.einsum("nd,hkd->hnk", partners, weights) + bias[:, None], dim=2)
    consistency = -torch.log((anchor_probs * partner_probs).sum(dim=2).clamp_min(1e-7)).mean(dim=1)
    usage = anchor_probs.mean(dim=1)
    return consistency + SCAN_ENTROPY_WEIGHT * (usage * torch.log(usage.clamp_min(1e-7))).sum(dim=1)


def check_group_counts(method: str, n_clusters: int, fine_clusters: int, n_images: int | None = None) -> None:
    """Refuse, before any work, a method that cannot make `n_clusters` groups (of `n_images`)."""
    if method not in METHODS:
        raise UserInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "threshold" and n_clusters != 2:
        raise UserInputError(f"method 'threshold' splits two ways only, but {n_clusters} groups were "
                             "asked for; use kmeans or overcluster")
    if method == "overcluster" and fine_clusters < n_clusters:
        raise UserInputError(f"overcluster merges {fine_clusters} fine groups, fewer than the "
                             f"{n_clusters} groups asked for; raise the fine-cluster count")
    if n_images is not None and n_images < max(2, n_clusters):
        raise UserInputError(f"need at least {max(2, n_clusters)} images to form {n_clusters} groups, "
                             f"found {n_images}")


def natural_colour_score(images: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Per-image mean of (green + blue - 2 red)/255: a fixed colour prior for natural scenery."""
    from aecluster.data import iter_batches

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
    order; empty groups come last; a single group keeps its number."""
    if len(np.unique(groups)) < 2:
        return np.arange(n_groups)
    scores = natural_colour_score(images)
    means = np.array([scores[groups == g].mean() if np.any(groups == g) else np.nan for g in range(n_groups)])
    label_map = np.empty(n_groups, dtype=np.int64)
    label_map[np.argsort(means, kind="stable")] = np.arange(n_groups)
    return label_map


def degenerate_warning(groups: np.ndarray, n_groups: int = 2) -> str | None:
    """A message when a group holds under 5% of the images (the split is probably useless)."""
    smaller = int(np.bincount(groups, minlength=n_groups)[:n_groups].min())
    if smaller < DEGENERATE_FRACTION * len(groups):
        return (
            f"degenerate clustering: the smallest group has {smaller} of {len(groups)} images "
            f"(< {DEGENERATE_FRACTION:.0%}); try another reduction or method (--reduce, --method)"
        )
    return None
