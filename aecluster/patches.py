"""A whitened patch dictionary: the single-layer features of Coates, Lee & Ng (AISTATS 2011).

Fitting needs no gradient and takes minutes on two CPU cores: random patches of the training
images are each normalised (mean removed, divided by sqrt(var + `normalise`)), ZCA-whitened
(eigenvalues plus `whitening_eps`), and K-means finds `centres` dictionary atoms among them.
An image is encoded at stride 1 with the "triangle" code f_k = max(0, mean_j(d_j) - d_k), where
d is the distance of the whitened patch to each atom, and mean-pooled over a `grid` x `grid` grid
of regions. Encoding is a convolution in matrix form: every patch is whitened and compared with
the atoms by two matrix products; the layer's numbers are the whitening matrix, its mean and the
atoms. Whitening flattens the patches' spectrum, where the low frequencies of photographs
dominate, so that the atoms become edges and textures rather than smooth averages; the paper
found it the step that matters most for K-means dictionaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aecluster.registry import ARCHITECTURE_BOUNDS

PIXEL_SCALE = 127.5  # [-1, 1] inputs are mapped back to the [0, 255] range the constants are set in
CHUNK = 64  # images encoded at once inside a batch


@dataclass(frozen=True)
class Dictionary:
    """The fitted numbers of a patch dictionary (float32 tensors).

    Attributes
    ----------
    mean : Tensor of shape (D,)
        The mean of the normalised patches (D = 3 * patch_size**2).
    whitening : Tensor of shape (D, D)
        The ZCA matrix.
    centres : Tensor of shape (K, D)
        The atoms, in whitened space.
    """

    mean: torch.Tensor  # (D,) mean of the normalised patches
    whitening: torch.Tensor  # (D, D) ZCA matrix
    centres: torch.Tensor  # (K, D) atoms, in whitened space


def sample_patches(images: np.ndarray, count: int, patch_size: int, rng: np.random.Generator,
                   chunk: int = 20_000) -> np.ndarray:
    """`count` random `patch_size` squares of uint8 (N,H,W,3) images as float32 rows of
    3 * patch_size**2 values in [0, 255], channel-major (the layout of a conv weight).

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3)
        The images (uint8).
    count : int
        How many patches.
    patch_size : int
        The side of each square.
    rng : numpy.random.Generator
        Picks the images and positions.
    chunk : int
        Patches gathered at once.

    Returns
    -------
    ndarray of shape (count, 3 * patch_size**2)
        The patches (float32), ordered by image.
    """
    n, height, width, _ = images.shape
    which = np.sort(rng.integers(0, n, count))
    rows = rng.integers(0, height - patch_size + 1, count)
    cols = rng.integers(0, width - patch_size + 1, count)
    offsets = np.arange(patch_size)
    out = np.empty((count, 3 * patch_size * patch_size), dtype=np.float32)
    for start in range(0, count, chunk):
        part = slice(start, start + chunk)
        picked = np.asarray(images[which[part]])
        r = rows[part, None, None] + offsets[None, :, None]
        c = cols[part, None, None] + offsets[None, None, :]
        squares = picked[np.arange(len(picked))[:, None, None], r, c]  # (n, p, p, 3)
        out[part] = squares.transpose(0, 3, 1, 2).reshape(len(picked), -1)
    return out


def normalise_patches(patches: torch.Tensor, normalise: float, dim: int = 1) -> torch.Tensor:
    """Each patch (values along `dim`) minus its mean, divided by sqrt(its variance +
    `normalise`): contrast normalisation that does not blow up the noise of flat patches.

    Parameters
    ----------
    patches : Tensor
        The patches, their values along `dim`.
    normalise : float
        Added to each patch's variance.
    dim : int
        The axis of a patch's values.

    Returns
    -------
    Tensor
        The normalised patches, of the shape of `patches`.
    """
    mean = patches.mean(dim=dim, keepdim=True)
    var = patches.var(dim=dim, keepdim=True)
    return (patches - mean) / torch.sqrt(var + normalise)


def zca(patches: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, matrix) of ZCA whitening: V diag(1 / sqrt(lambda + eps)) V^T of the covariance.

    Parameters
    ----------
    patches : Tensor of shape (n, D)
        The (normalised) patches.
    eps : float
        Added to each eigenvalue of the covariance.

    Returns
    -------
    mean : Tensor of shape (D,)
        The mean patch.
    matrix : Tensor of shape (D, D)
        The whitening matrix (float32).
    """
    mean = patches.mean(dim=0)
    centred = (patches - mean).double()
    covariance = centred.T @ centred / (len(patches) - 1)
    values, vectors = torch.linalg.eigh(covariance)
    matrix = vectors @ torch.diag(1.0 / torch.sqrt(values.clamp(min=0) + eps)) @ vectors.T
    return mean, matrix.float()


def kmeans_atoms(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator,
                 chunk: int = 65_536, progress: bool = False) -> torch.Tensor:
    """Lloyd's K-means, `iterations` rounds from `k` distinct random points; an atom left empty
    restarts at a random point. Sums are accumulated in float64 chunk by chunk, in a fixed order.

    Parameters
    ----------
    points : Tensor of shape (n, D)
        The points (float32), at least `k` of them.
    k : int
        How many atoms.
    iterations : int
        Rounds of Lloyd's algorithm.
    generator : torch.Generator
        Picks the starting points and the restarts.
    chunk : int
        Points assigned at once.
    progress : bool
        Draw a progress bar.

    Returns
    -------
    Tensor of shape (k, D)
        The atoms (float32).
    """
    from tqdm.auto import tqdm

    n = len(points)
    centres = points[torch.randperm(n, generator=generator)[:k]].clone()
    for _ in tqdm(range(iterations), disable=not progress, desc=f"fit {k} atoms", unit="round"):
        sums = torch.zeros(k, points.shape[1], dtype=torch.float64)
        counts = torch.zeros(k, dtype=torch.float64)
        half_norms = 0.5 * (centres * centres).sum(dim=1)
        for start in range(0, n, chunk):
            block = points[start : start + chunk]
            nearest = (block @ centres.T - half_norms).argmax(dim=1)
            sums.index_add_(0, nearest, block.double())
            counts += torch.bincount(nearest, minlength=k).double()
        empty = counts == 0
        centres = (sums / counts.clamp(min=1)[:, None]).float()
        if empty.any():
            centres[empty] = points[torch.randint(n, (int(empty.sum()),), generator=generator)]
    return centres


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch, BLAS and OpenMP on one thread: sums then come out in one order whatever the
    caller's thread count, so a fit is bit-identical at any thread count.

    Yields
    ------
    None
        Inside, one thread; the caller's torch thread count and BLAS limits come back afterwards.
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def fit_dictionary(images: np.ndarray, *, patch_size: int, centres: int, patches: int, normalise: float,
                   whitening_eps: float, iterations: int, seed: int, progress: bool = False) -> Dictionary:
    """Fit the dictionary on uint8 (N,32,32,3) images; the same images and seed give the same
    numbers whatever the thread count.

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3)
        The training images (uint8).
    patch_size : int
        The side of the patches.
    centres : int
        How many atoms.
    patches : int
        How many random patches the dictionary is fitted on.
    normalise : float
        Added to each patch's variance (`normalise_patches`).
    whitening_eps : float
        Added to each eigenvalue of the patches' covariance (`zca`).
    iterations : int
        Rounds of K-means.
    seed : int
        Seeds the patches and K-means.
    progress : bool
        Draw a progress bar.

    Returns
    -------
    Dictionary
        The fitted numbers.
    """
    with one_thread():
        rng = np.random.default_rng(seed)
        rows = normalise_patches(torch.from_numpy(sample_patches(images, patches, patch_size, rng)), normalise)
        mean, matrix = zca(rows, whitening_eps)
        whitened = (rows - mean) @ matrix.T
        atoms = kmeans_atoms(whitened, centres, iterations, torch.Generator().manual_seed(seed), progress=progress)
    return Dictionary(mean=mean.float(), whitening=matrix, centres=atoms)


def merge_atoms(dictionary: Dictionary, centres: int, iterations: int, seed: int) -> Dictionary:
    """A smaller dictionary distilled from `dictionary`: the same normalisation and whitening,
    and `centres` atoms found by K-means among its atoms (a copy when the counts are equal).

    Parameters
    ----------
    dictionary : Dictionary
        The dictionary to distil.
    centres : int
        How many atoms the new one has (at most as many as `dictionary`).
    iterations : int
        Rounds of K-means.
    seed : int
        Seeds K-means.

    Returns
    -------
    Dictionary
        The smaller dictionary (`dictionary` itself when the counts are equal).
    """
    if centres == len(dictionary.centres):
        return dictionary
    with one_thread():
        atoms = kmeans_atoms(dictionary.centres, centres, iterations, torch.Generator().manual_seed(seed))
    return Dictionary(mean=dictionary.mean, whitening=dictionary.whitening, centres=atoms)


def fit_seconds(points: int, centres: int, patch_size: int, iterations: int, probe: int = 20_000) -> float:
    """Roughly how long K-means of `centres` atoms on `points` whitened patches takes here: one
    round on `probe` random points, timed, scaled to the points and rounds (the fit's bulk).

    Parameters
    ----------
    points : int
        How many whitened patches.
    centres : int
        How many atoms.
    patch_size : int
        The side of the patches.
    iterations : int
        Rounds of K-means.
    probe : int
        The most random points the timed round runs on.

    Returns
    -------
    float
        The estimated seconds.
    """
    sample = torch.randn(min(points, probe), 3 * patch_size * patch_size, generator=torch.Generator().manual_seed(0))
    with one_thread():
        start = time.perf_counter()
        kmeans_atoms(sample, min(centres, len(sample)), 1, torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - start
    return seconds * iterations * points / len(sample)


def dictionary_of(encoder: PatchDictionaryEncoder) -> Dictionary:
    """The fitted numbers an encoder holds (detached copies).

    Parameters
    ----------
    encoder : PatchDictionaryEncoder
        The encoder.

    Returns
    -------
    Dictionary
        Its mean, whitening and atoms.
    """
    return Dictionary(mean=encoder.mean.detach().clone(), whitening=encoder.whitening.detach().clone(),
                      centres=encoder.centres.detach().clone())


class FlipAveragedEncoder(nn.Module):
    """An encoder whose code is its pooled map, `pool(feature_map(x))`; with `flip_average`,
    inference averages the codes of the image and its left-right mirror image, so that a flip
    cannot change the code. Subclasses give `feature_map`, `pool` and `flip_average`
    (`PatchDictionaryEncoder`, `models.PooledEncoder`).

    Attributes
    ----------
    flip_average : bool
        Whether `forward` in eval mode averages the codes of each image and its mirror image.
    """

    flip_average: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The codes of [-1, 1] images: the pooled map (`feature_map`, `pool`); in eval mode with
        `flip_average`, the mean of the codes of each image and of its left-right mirror image.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Images scaled to [-1, 1] (32 x 32 at inference).

        Returns
        -------
        torch.Tensor of shape (N, D)
            The codes (`pool`'s).
        """
        codes = self.pool(self.feature_map(x))
        if self.flip_average and not self.training:
            codes = (codes + self.pool(self.feature_map(torch.flip(x, dims=[3])))) / 2
        return codes


class PatchDictionaryEncoder(FlipAveragedEncoder):
    """Encodes [-1, 1] images with a fitted patch dictionary: triangle codes of every
    `patch_size` patch (stride 1), mean-pooled over a `grid` x `grid` grid; the code is the
    flattened (K, grid, grid) map. Built empty (zeros); `load_dictionary` or a checkpoint
    gives it its numbers. With `flip_average`, inference averages the codes of the image and its
    mirror image.

    Parameters
    ----------
    patch_size : int, default=6
        The side of the patches, in 1..32.
    centres : int, default=400
        How many atoms (K), in 2..65536.
    grid : int, default=2
        Cells a side of the pooling grid, in 1..33 - patch_size.
    normalise : float, default=10.0
        Added to each patch's variance (`normalise_patches`); positive.
    flip_average : bool, default=False
        At inference, average the codes of the image and its mirror image.

    Attributes
    ----------
    mean : Parameter of shape (D,)
        The mean of the normalised patches (D = 3 * patch_size**2).
    whitening : Parameter of shape (D, D)
        The ZCA matrix.
    centres : Parameter of shape (K, D)
        The atoms, in whitened space.
    code_dim : int
        The width of a code: K * grid * grid.

    Raises
    ------
    ValueError
        For a setting out of its `registry.ARCHITECTURE_BOUNDS`, or a grid that does not fit the patches.
    """

    def __init__(self, patch_size: int = 6, centres: int = 400, grid: int = 2, normalise: float = 10.0,
                 flip_average: bool = False) -> None:
        super().__init__()
        for key, value in {"patch_size": patch_size, "centres": centres, "grid": grid, "normalise": normalise}.items():
            if not ARCHITECTURE_BOUNDS[key].holds(value):
                raise ValueError(f"{key} is {value!r}, expected {ARCHITECTURE_BOUNDS[key].describe()}")
        if grid > 33 - patch_size:
            raise ValueError(f"grid {grid} does not fit {patch_size}x{patch_size} patches of 32x32 images "
                             f"(at most {33 - patch_size} cells a side)")
        dim = 3 * patch_size * patch_size
        self.patch_size, self.grid, self.normalise, self.flip_average = patch_size, grid, normalise, flip_average
        self.mean = nn.Parameter(torch.zeros(dim), requires_grad=False)
        self.whitening = nn.Parameter(torch.zeros(dim, dim), requires_grad=False)
        self.centres = nn.Parameter(torch.zeros(centres, dim), requires_grad=False)
        self.code_dim = centres * grid * grid

    def load_dictionary(self, dictionary: Dictionary) -> PatchDictionaryEncoder:
        """Take the fitted numbers (shapes must match the settings the encoder was built with).

        Parameters
        ----------
        dictionary : Dictionary
            The fitted numbers.

        Returns
        -------
        PatchDictionaryEncoder
            The encoder itself.
        """
        with torch.no_grad():
            for name in ("mean", "whitening", "centres"):
                getattr(self, name).copy_(getattr(dictionary, name))
        return self

    def triangle_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Triangle codes (B, L, K) of the L patches (row by row) of [-1, 1] images.

        Parameters
        ----------
        x : Tensor of shape (B, 3, H, W)
            Images in [-1, 1].

        Returns
        -------
        Tensor of shape (B, L, K)
            The triangle code of each patch.
        """
        patches = F.unfold((x.float() + 1) * PIXEL_SCALE, self.patch_size).transpose(1, 2)  # (B, L, D)
        whitened = (normalise_patches(patches, self.normalise, dim=2) - self.mean) @ self.whitening.T
        # squared distances |z|^2 - 2 z.c + |c|^2, then the triangle code, in place: the (B, L, K)
        # tensor is the layer's largest, so each pass over it counts
        distances = torch.baddbmm((whitened * whitened).sum(dim=2, keepdim=True)
                                  + (self.centres * self.centres).sum(dim=1), whitened,
                                  self.centres.T.expand(len(x), -1, -1), alpha=-2)
        distances.clamp_(min=0).sqrt_()
        mean = distances.mean(dim=2, keepdim=True)
        return distances.neg_().add_(mean).relu_()

    def pooling(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """(grid*grid, L): each row averages the patch positions of one grid cell (the cells of
        `adaptive_avg_pool2d`, row by row).

        Parameters
        ----------
        height : int
            The images' height.
        width : int
            The images' width.
        like : Tensor
            Gives the dtype and device.

        Returns
        -------
        Tensor of shape (grid * grid, L)
            The pooling matrix.
        """
        rows, cols = height - self.patch_size + 1, width - self.patch_size + 1
        eye = torch.eye(rows * cols, dtype=like.dtype, device=like.device).reshape(rows * cols, 1, rows, cols)
        return F.adaptive_avg_pool2d(eye, self.grid).reshape(rows * cols, -1).T.contiguous()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled map (B, K, grid, grid), computed `CHUNK` images at a time: the per-patch
        distances (CHUNK x 729 x K floats, 47 MB at 400 atoms) bound the memory, whatever B.

        Parameters
        ----------
        x : Tensor of shape (B, 3, H, W)
            Images in [-1, 1].

        Returns
        -------
        Tensor of shape (B, K, grid, grid)
            The pooled triangle codes.
        """
        pooling = self.pooling(x.shape[2], x.shape[3], x.float())
        pooled = torch.cat([pooling @ self.triangle_codes(part) for part in x.split(CHUNK)])  # (B, grid*grid, K)
        return pooled.transpose(1, 2).reshape(len(x), -1, self.grid, self.grid)

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The code of a pooled map: all of it, flattened.

        Parameters
        ----------
        feature_map : Tensor of shape (B, K, grid, grid)
            A pooled map (`feature_map`).

        Returns
        -------
        Tensor of shape (B, K * grid * grid)
            The codes.
        """
        return feature_map.flatten(1)
