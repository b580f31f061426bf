"""Second-stage reduction of latent codes: a chain such as "kpca:200,tsne:2".

Each link is NAME:DIM with NAME one of pca, wpca (whitened PCA: unit variance per component),
kpca (RBF KernelPCA), tsne (openTSNE) or umap, or "l2" (scale each code to unit length). Codes are
standardised first unless `standardize=False`. Large inputs are fitted on a fixed random sample
and the rest is transformed, so memory stays bounded however many images there are.

A fitted chain of l2, pca and wpca links is a few plain arrays (`get_state`), applied to new codes
with numpy alone, so a saved clustering places new images without pickled objects.
"""

from __future__ import annotations

import logging
import os
import warnings
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from aecluster.errors import UserInputError
from aecluster.seeds import integer_seed
from aecluster.threads import single_threaded

REDUCER_NAMES = ("pca", "wpca", "kpca", "tsne", "umap", "l2")
# Why a fitted link of these kinds cannot be saved as plain arrays.
UNSAVABLE = {
    "kpca": "KernelPCA needs every training code to place a new image",
    "tsne": "t-SNE places new images only through its whole fitted embedding and its search index",
    "umap": "UMAP's fitted state is Python objects that would have to be pickled",
}
TSNE_MAX_DIM = 2  # openTSNE's FFT gradient (used from 10,000 codes on) embeds in one or two dimensions


logger = logging.getLogger(__name__)


def check_chain(spec: str, code_dim: int, n_images: int | None = None) -> None:
    """Refuse, before any encoding, a chain that asks a link for more dimensions than its input
    has (the codes' width, or the previous link's output) where that link cannot make them (PCA,
    t-SNE, UMAP), naming the largest value allowed, and a t-SNE of more than `TSNE_MAX_DIM`
    dimensions (openTSNE's FFT gradient, used from 10,000 codes on, makes no more). PCA and
    KernelPCA give at most one dimension per image (of `n_images`, when known); that bound is
    applied silently.

    Parameters
    ----------
    spec : str
        The chain, e.g. "kpca:200,tsne:2" (`parse_chain`).
    code_dim : int
        The width of the codes the chain reduces.
    n_images : int, optional
        How many images there are, when known.

    Raises
    ------
    UserInputError
        For a malformed `spec`, a t-SNE link of more than `TSNE_MAX_DIM` dimensions, or a pca, wpca,
        t-SNE or UMAP link wider than its input.
    """
    width = code_dim
    for name, dim in parse_chain(spec):
        if name == "tsne" and dim > TSNE_MAX_DIM:
            raise UserInputError(f"reduce {spec!r}: t-SNE embeds in at most {TSNE_MAX_DIM} "
                                 f"dimensions; the largest allowed is tsne:{TSNE_MAX_DIM}")
        if name in ("pca", "wpca", "umap", "tsne") and dim > width:
            raise UserInputError(f"reduce {spec!r}: {name}:{dim} asks for more dimensions than its "
                                 f"{width}-dimensional input has; the largest allowed is {name}:{width}")
        if name != "l2":
            width = min(dim, n_images or dim) if name in ("pca", "wpca", "kpca") else dim


def parse_chain(spec: str) -> list[tuple[str, int]]:
    """Parse "kpca:200,tsne:2" into [("kpca", 200), ("tsne", 2)]; "" or "none" means no reduction.

    "l2" takes no dimension (it is returned as ("l2", 0)).

    Parameters
    ----------
    spec : str
        The chain: comma-separated NAME:DIM links, or "l2".

    Returns
    -------
    list of (str, int)
        The name (lower case) and dimension of each link, in order.

    Raises
    ------
    UserInputError
        For an unknown name, or a dimension that is missing or not a positive integer.
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
        dim = dim.strip()
        if name not in REDUCER_NAMES[:-1] or not (dim.isascii() and dim.isdigit()) or int(dim) < 1:
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
    if name in ("pca", "wpca"):
        from sklearn.decomposition import PCA

        return PCA(n_components=min(dim, n_samples), whiten=name == "wpca", random_state=random_state)
    if name == "kpca":
        from sklearn.decomposition import KernelPCA

        return KernelPCA(
            n_components=min(dim, n_samples), kernel="rbf", random_state=random_state,
            eigen_solver="randomized" if n_samples > 2 * dim else "dense",
        )
    if name == "tsne":
        return _TSNE(dim, random_state)

    os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    import umap

    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
    return umap.UMAP(
        n_components=dim, n_neighbors=min(15, n_samples - 1), random_state=random_state,
        transform_seed=random_state,
    )


def check_savable(spec: str) -> None:
    """Raise a one-line error when a fitted `spec` chain could not be saved without pickling.

    Parameters
    ----------
    spec : str
        The chain (`parse_chain`).

    Raises
    ------
    UserInputError
        When the chain holds a kpca, tsne or umap link (`UNSAVABLE`), or `spec` is malformed.
    """
    for name, _ in parse_chain(spec):
        if name in UNSAVABLE:
            raise UserInputError(
                f"a fitted '{name}' reduction cannot be saved ({UNSAVABLE[name]}); save a chain of "
                f"l2, pca and wpca links instead of {spec!r}, e.g. 'l2,pca:32'")


def _link_state(name: str, reducer: Any) -> dict[str, Any]:
    """A fitted link as plain arrays (l2, pca, wpca), or holding the fitted object otherwise."""
    if name == "l2":
        return {"name": "l2"}
    if name not in ("pca", "wpca"):
        return {"name": name, "fitted": reducer}
    state = {"name": name, "mean": reducer.mean_, "components": reducer.components_}
    if reducer.whiten:
        scale = np.sqrt(reducer.explained_variance_)
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        state["scale"] = scale
    return state


def _apply_link(link: dict[str, Any], codes: np.ndarray) -> np.ndarray:
    """One fitted link applied to codes, with the arithmetic of scikit-learn's transform."""
    if "fitted" in link:
        return np.asarray(link["fitted"].transform(codes), dtype=np.float32)
    if link["name"] == "l2":
        norms = np.sqrt(np.einsum("ij,ij->i", codes, codes))
        norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
        return codes / norms[:, None]
    reduced = codes @ link["components"].T
    reduced -= link["mean"][None, :] @ link["components"].T
    if "scale" in link:
        reduced /= link["scale"]
    return np.asarray(reduced, dtype=np.float32)


def numba_cache_dir() -> Path:
    """Where UMAP's numba-compiled code is cached, so only the first run pays for compiling it:
    $NUMBA_CACHE_DIR if set, else aecluster/numba under $XDG_CACHE_HOME (default ~/.cache).

    Returns
    -------
    Path
        The cache folder (not created here).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aecluster" / "numba"


class ReducerChain(TransformerMixin, BaseEstimator):
    """Standardise (unless `standardize=False`), then apply each reducer of `spec` in turn.

    A scikit-learn transformer of codes (N, dim): the step between `encoder.ImageEncoder` and a
    clustering estimator in a `Pipeline`. `max_fit_samples` caps how many codes the chain is
    fitted on (a fixed random sample); all codes are then transformed. Fitting on everything is
    exact for N below the cap.

    Parameters
    ----------
    spec : str, default="pca:50"
        The chain, e.g. "l2,pca:32" or "kpca:200,tsne:2" (`parse_chain`).
    random_state : int, numpy.random.RandomState or None, default=0
        Seeds the sample and the links. An int is the seed; a `RandomState` or None gives the
        seed it draws once per `fit` (`seeds.integer_seed`).
    max_fit_samples : int, default=20000
        The most codes the links are fitted on.
    standardize : bool, default=True
        Scale codes to zero mean and unit variance first.

    Attributes
    ----------
    scaler_ : StandardScaler
        The fitted standardisation (the identity with `standardize=False`).
    shift_, scale_ : ndarray of shape (dim,) or None
        The standardisation as arrays.
    reducers_ : list
        The fitted links (empty on a chain rebuilt by `from_state`).
    links_ : list of dict
        The fitted links as `transform` applies them.
    n_features_in_ : int
        The width of the codes `fit` saw (after `from_state`, the saved chain's, where known).
    """

    _parameter_constraints: dict = {
        "spec": [str],
        "random_state": ["random_state"],
        "max_fit_samples": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
    }

    def __init__(self, spec: str = "pca:50", random_state: int | np.random.RandomState | None = 0,
                 max_fit_samples: int = 20000, standardize: bool = True) -> None:
        self.spec = spec
        self.random_state = random_state
        self.standardize = standardize
        self.max_fit_samples = max_fit_samples

    def fit(self, codes: np.ndarray, y: Any = None) -> ReducerChain:
        """Fit the chain's links on `codes` (a sample of `max_fit_samples` of them when more).

        Parameters
        ----------
        codes : array-like of shape (N, dim)
            The codes: a 2-D array of finite numbers, fitted in float32.
        y : ignored

        Returns
        -------
        ReducerChain
            self, fitted.

        Raises
        ------
        ValueError
            For a parameter of the wrong type or range, or codes that are not a 2-D array of
            finite numbers (sparse, complex, NaN, ...).
        UserInputError
            For a malformed `spec`.
        """
        self._fit(codes)
        return self

    def fit_transform(self, codes: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        """Fit, then reduce every one of `codes` (the fitted layout itself when all were fitted).

        Parameters
        ----------
        codes : array-like of shape (N, dim)
            The codes, as `fit` takes them.
        y : ignored

        Returns
        -------
        ndarray of shape (N, n_reduced), float32
            The reduced codes.

        Raises
        ------
        ValueError, UserInputError
            As `fit`.
        """
        codes, sample, reduced = self._fit(codes)
        return reduced if sample is None else self.transform(codes)

    def _fit(self, codes: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Check the parameters and the codes, fit on all codes or on a sample; returns (the codes
        in float32, the sample's indices or None, the reduced fit data)."""
        self._validate_params()
        codes = validate_data(self, codes, dtype=np.float32)
        links = parse_chain(self.spec)
        with single_threaded():
            return (codes, *self._fit_links(codes, links, integer_seed(self.random_state)))

    def _fit_links(self, codes: np.ndarray, links: list[tuple[str, int]],
                   seed: int) -> tuple[np.ndarray | None, np.ndarray]:
        sample = None
        if len(codes) > self.max_fit_samples:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(codes), self.max_fit_samples, replace=False))
            codes = codes[sample]
        self.scaler_ = StandardScaler(with_mean=self.standardize, with_std=self.standardize).fit(codes)
        self.shift_, self.scale_ = self.scaler_.mean_, self.scaler_.scale_
        reduced = self.scaler_.transform(codes)
        self.reducers_ = []
        for name, dim in links:
            logger.info("reduce: fitting %s%s on %d codes of %d dimensions", name, f":{dim}" if dim else "",
                        len(reduced), reduced.shape[1])
            reducer = _make_reducer(name, dim, len(reduced), seed)
            if name == "tsne":
                reducer.fit(reduced)
                reduced = reducer.embedding_
            else:
                reduced = reducer.fit_transform(reduced)
            self.reducers_.append(reducer)
            reduced = np.asarray(reduced, dtype=np.float32)
        self.links_ = [_link_state(name, reducer) for (name, _), reducer in zip(links, self.reducers_, strict=True)]
        return sample, reduced

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Reduce new codes with the fitted links.

        Parameters
        ----------
        codes : array-like of shape (N, dim)
            The codes: a 2-D array of finite numbers, `n_features_in_` wide.

        Returns
        -------
        ndarray of shape (N, n_reduced), float32
            The reduced codes.

        Raises
        ------
        NotFittedError
            Before `fit`.
        ValueError
            For codes that are not a 2-D array of finite numbers, or not `n_features_in_` wide.
        """
        check_is_fitted(self, "links_")
        reduced = validate_data(self, codes, reset=False, dtype=np.float32, copy=True)
        if self.shift_ is not None:
            reduced -= self.shift_
            reduced /= self.scale_
        with single_threaded():
            for link in self.links_:
                reduced = _apply_link(link, reduced)
        return reduced

    def get_state(self) -> dict[str, Any]:
        """The fitted chain as plain values and arrays (for a saved model); see `from_state`.

        Returns
        -------
        dict
            "spec", "standardize", "shift", "scale" and "links" (each link a dict of plain arrays).

        Raises
        ------
        UserInputError
            When the chain holds a link that cannot be saved (`check_savable`).
        """
        check_savable(self.spec)
        return {"spec": self.spec, "standardize": self.standardize, "shift": self.shift_,
                "scale": self.scale_, "links": self.links_}

    @classmethod
    def from_state(cls, state: dict[str, Any], n_features_in: int | None = None) -> ReducerChain:
        """A fitted chain rebuilt from `get_state`'s values, ready to transform.

        Its `n_features_in_` is the width of the codes the state was fitted on: that of its
        standardisation, or of its first PCA link (an l2 link keeps the width). A state with
        neither (no standardisation, l2 links only) takes codes of any width; `n_features_in`
        then gives it one.

        Parameters
        ----------
        state : dict
            Values as `get_state` returns them.
        n_features_in : int, optional
            The width of the codes, for a state that does not fix it.

        Returns
        -------
        ReducerChain
            The fitted chain (with no `reducers_`; without `n_features_in_` where neither the
            state nor `n_features_in` gives it).

        Raises
        ------
        UserInputError
            When the state's `spec` holds a link that cannot be saved (`check_savable`).
        KeyError
            When a value is missing.
        """
        check_savable(state["spec"])
        chain = cls(state["spec"], standardize=state["standardize"])
        chain.shift_, chain.scale_, chain.reducers_ = state["shift"], state["scale"], []
        chain.links_ = [dict(link) for link in state["links"]]
        widths = [len(array) for array in (state["shift"], *(link.get("mean") for link in chain.links_))
                  if array is not None]
        width = widths[0] if widths else n_features_in
        if width is not None:
            chain.n_features_in_ = int(width)
        return chain
