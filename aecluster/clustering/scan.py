"""SCAN's clustering head (Van Gansbeke et al. 2020, arXiv:2005.12320) over fixed codes."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from aecluster.clustering._base import PARAMETER_CONSTRAINTS, GroupsEstimator
from aecluster.threads import single_threaded

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



class ScanGroups(GroupsEstimator):
    """A linear head over the codes trained with SCAN's loss: each code and one of its 20 nearest
    neighbours should fall in the same group, while the groups stay evenly used (entropy of the
    mean assignment). Ten heads are trained from different starts; the one with the lowest loss
    is kept. A new code joins its head's highest-scoring group. It looks for the split that cuts
    the fewest neighbourhoods, where KMeans may cut along the widest axis of the codes.

    Parameters
    ----------
    n_clusters : int, default=2
        How many groups.
    random_state : int, RandomState instance or None, default=0
        Seeds the sample, the heads' starts and the batches.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clusters, dim)
        The kept head's weights (on the codes as given).
    bias_ : ndarray of shape (n_clusters,)
        Its bias.
    labels_ : ndarray of shape (N,)
        The group of each code `fit` saw.
    n_features_in_ : int
        The width of the codes `fit` saw.
    """

    method = "scan"
    fitted = ("weights_", "bias_")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        key: PARAMETER_CONSTRAINTS[key] for key in ("n_clusters", "random_state")}

    def __init__(self, n_clusters: int = 2, random_state: Any = 0) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state

    def _fit(self, codes: np.ndarray) -> None:
        self.weights_, self.bias_ = fit_scan_head(codes, self.n_clusters, self.random_state)

    def _predict(self, codes: np.ndarray) -> np.ndarray:
        return (codes @ self.weights_.T + self.bias_).argmax(axis=1).astype(np.int64)

    def _check_state(self) -> None:
        groups = (self.n_clusters,)
        if self.weights_.ndim != 2 or self.weights_.shape[:1] != groups or self.bias_.shape != groups:
            raise ValueError(f"a scan head of weights {self.weights_.shape} and bias {self.bias_.shape} "
                             f"cannot make {self.n_clusters} groups")


def nearest_others(points: np.ndarray, n_neighbours: int) -> np.ndarray:
    """Indices (N, n_neighbours) of each point's nearest other points (Euclidean): never the
    point itself, even where other points coincide with it.

    Parameters
    ----------
    points : ndarray of shape (N, dim)
        The points.
    n_neighbours : int
        Neighbours per point (at most N - 1).

    Returns
    -------
    ndarray of shape (N, n_neighbours)
        The indices of each point's nearest other points, nearest first.
    """
    from sklearn.neighbors import NearestNeighbors

    with single_threaded():
        return NearestNeighbors(n_neighbors=n_neighbours).fit(points).kneighbors(return_distance=False)


def fit_scan_head(codes: np.ndarray, n_clusters: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_clusters, dim) and bias (n_clusters,) of the lowest-loss SCAN head on `codes`.

    Runs in one torch thread with seeded generators, so the head is the same whatever the thread
    count (torch's thread count is process-wide: it is set to one and restored afterwards).

    Parameters
    ----------
    codes : ndarray of shape (N, dim)
        The codes; at most `SCAN_FIT_SAMPLES` of them (a seeded sample) train the heads.
    n_clusters : int
        How many groups.
    random_state : int, RandomState instance or None
        Seeds the sample, the heads' starts and the batches.

    Returns
    -------
    weights : ndarray of shape (n_clusters, dim)
        The kept head's weights, on the codes as given.
    bias : ndarray of shape (n_clusters,)
        Its bias.
    """
    import torch
    from sklearn.utils import check_random_state

    from aecluster.losses import SCANLoss

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
        heads_loss = SCANLoss(SCAN_ENTROPY_WEIGHT)

        def logits(x: torch.Tensor) -> torch.Tensor:  # (n, dim) -> each head's scores (SCAN_HEADS, n, K)
            return torch.einsum("nd,hkd->hnk", x, weights) + bias[:, None]

        batch = min(SCAN_BATCH_SIZE, len(codes))
        for _ in range(SCAN_STEPS):
            anchors = torch.randint(len(codes), (batch,), generator=generator)
            partners = pairs[anchors, torch.randint(n_neighbours, (batch,), generator=generator)]
            loss = heads_loss(logits(points[anchors]), logits(points[partners])).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            losses = torch.stack([heads_loss(logits(points), logits(points[pairs[:, column]]))
                                  for column in range(n_neighbours)]).mean(dim=0)
        best = int(losses.argmin())
        head = weights[best].detach().double().numpy() / scale * used
        return head, bias[best].detach().double().numpy() - head @ mean
    finally:
        torch.set_num_threads(threads)
