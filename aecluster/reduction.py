"""Second-stage reduction of latent codes: a chain such as "kpca:200,tsne:2".

Each link is NAME:DIM with NAME one of pca, kpca (RBF KernelPCA), tsne (openTSNE) or umap, or
"l2" (scale each code to unit length). Codes are standardised first unless `standardize=False`.
Large inputs are fitted on a fixed random sample and the rest is transformed, so memory stays
bounded however many images there are.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler

from aecluster.errors import UserInputError

REDUCER_NAMES = ("pca", "kpca", "tsne", "umap", "l2")
logger = logging.getLogger("aecluster")


def single_threaded() -> Any:
    """A context in which BLAS and OpenMP run one thread: their sums then come out bit-identical
    whatever OMP_NUM_THREADS is (KernelPCA's products differ in the last bits between thread
    counts, and t-SNE magnifies that into different groups), so predictions do not depend on it."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def check_chain(spec: str, code_dim: int, n_images: int) -> None:
    """Refuse, before any encoding, a chain whose PCA asks for more dimensions than its input
    has (the codes' width, or the previous link's output), naming the largest value allowed.
    PCA and KernelPCA give at most one dimension per image; that bound is applied silently."""
    width = code_dim
    for name, dim in parse_chain(spec):
        if name == "pca" and dim > width:
            raise UserInputError(f"--reduce {spec!r}: pca:{dim} asks for more dimensions than its "
                                 f"{width}-dimensional input has; the largest allowed is pca:{width}")
        if name != "l2":
            width = min(dim, n_images) if name in ("pca", "kpca") else dim


def parse_chain(spec: str) -> list[tuple[str, int]]:
    """Parse "kpca:200,tsne:2" into [("kpca", 200), ("tsne", 2)]; "" or "none" means no reduction.

    "l2" takes no dimension (it is returned as ("l2", 0)).
    """
    if spec.strip().lower() in ("", "none"):
        return []
    links = []
    for part in spec.split(","):
        name, _, dim = part.strip().partition(":")
        name = name.strip().lower()
        if name == "l2" and not dim:
            links.append(("l2", 0))
            continue
        if name not in REDUCER_NAMES[:-1] or not dim.strip().isdigit() or int(dim) < 1:
            raise UserInputError(
                f"bad reducer {part.strip()!r} in {spec!r}: expected NAME:DIM with NAME one of "
                f"{', '.join(REDUCER_NAMES[:-1])} and DIM a positive integer, or 'l2', e.g. 'kpca:200,tsne:2'"
            )
        links.append((name, int(dim)))
    return links


class _TSNE:
    """openTSNE wrapped as fit/transform (its fit returns an embedding that can place new points)."""

    def __init__(self, dim: int, random_state: int) -> None:
        self.dim, self.random_state = dim, random_state

    def fit(self, codes: np.ndarray) -> _TSNE:
        from openTSNE import TSNE

        perplexity = float(min(30.0, max(2.0, (len(codes) - 1) / 3.0)))
        self.embedding_ = TSNE(
            n_components=self.dim, perplexity=perplexity, random_state=self.random_state,
            n_jobs=1, verbose=False,
        ).fit(codes)
        return self

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.embedding_.transform(codes))


def _make_reducer(name: str, dim: int, n_samples: int, random_state: int) -> Any:
    if name == "l2":
        from sklearn.preprocessing import Normalizer

        return Normalizer()
    if name == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=min(dim, n_samples), random_state=random_state)
    if name == "kpca":
        from sklearn.decomposition import KernelPCA

        return KernelPCA(
            n_components=min(dim, n_samples), kernel="rbf", random_state=random_state,
            eigen_solver="randomized" if n_samples > 2 * dim else "dense",
        )
    if name == "tsne":
        return _TSNE(dim, random_state)
    import warnings

    os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    import umap

    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
    return umap.UMAP(
        n_components=dim, n_neighbors=min(15, n_samples - 1), random_state=random_state,
        transform_seed=random_state,
    )


def numba_cache_dir() -> Path:
    """Where UMAP's numba-compiled code is cached, so only the first run pays for compiling it:
    $NUMBA_CACHE_DIR if set, else aecluster/numba under $XDG_CACHE_HOME (default ~/.cache)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aecluster" / "numba"


class ReducerChain(TransformerMixin, BaseEstimator):
    """Standardise (unless `standardize=False`), then apply each reducer of `spec` in turn.

    `max_fit_samples` caps how many codes the chain is fitted on (a fixed random sample); all
    codes are then transformed. Fitting on everything is exact for N below the cap.
    """

    def __init__(self, spec: str = "pca:50", random_state: int = 0, max_fit_samples: int = 20000,
                 standardize: bool = True) -> None:
        self.spec = spec
        self.random_state = random_state
        self.standardize = standardize
        self.max_fit_samples = max_fit_samples

    def fit(self, codes: np.ndarray, y: Any = None) -> ReducerChain:
        self._fit(np.asarray(codes, dtype=np.float32))
        return self

    def fit_transform(self, codes: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float32)
        sample, reduced = self._fit(codes)
        return reduced if sample is None else self.transform(codes)

    def _fit(self, codes: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Fit on all codes or on a sample; returns (sample indices or None, reduced fit data)."""
        links = parse_chain(self.spec)
        with single_threaded():
            return self._fit_links(codes, links)

    def _fit_links(self, codes: np.ndarray, links: list[tuple[str, int]]) -> tuple[np.ndarray | None, np.ndarray]:
        sample = None
        if len(codes) > self.max_fit_samples:
            rng = np.random.default_rng(self.random_state)
            sample = np.sort(rng.choice(len(codes), self.max_fit_samples, replace=False))
            codes = codes[sample]
        self.scaler_ = StandardScaler(with_mean=self.standardize, with_std=self.standardize).fit(codes)
        reduced = self.scaler_.transform(codes)
        self.reducers_ = []
        for name, dim in links:
            logger.info("reduce: fitting %s%s on %d codes of %d dimensions", name, f":{dim}" if dim else "",
                        len(reduced), reduced.shape[1])
            reducer = _make_reducer(name, dim, len(reduced), self.random_state)
            if name == "tsne":
                reducer.fit(reduced)
                reduced = reducer.embedding_
            else:
                reduced = reducer.fit_transform(reduced)
            self.reducers_.append(reducer)
            reduced = np.asarray(reduced, dtype=np.float32)
        return sample, reduced

    def transform(self, codes: np.ndarray) -> np.ndarray:
        with single_threaded():
            reduced = self.scaler_.transform(np.asarray(codes, dtype=np.float32))
            for reducer in self.reducers_:
                reduced = np.asarray(reducer.transform(reduced), dtype=np.float32)
        return reduced
