"""Batch image augmentations for training, vectorised in torch and driven by an explicit RNG.

Randomness comes only from the `torch.Generator` passed in, so a training step is reproducible
from (seed, step) alone; that is what makes `--resume` land on the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aecluster.registry import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "augment"]


def _affine_views(
    batch: torch.Tensor, generator: torch.Generator, min_scale: float, max_shift: float, pixels: int,
) -> torch.Tensor:
    """Random crop (area scale in [min_scale, 1], aspect 3/4..4/3), shift and horizontal flip,
    rendered at `pixels`x`pixels`."""
    size = batch.shape[0]
    uniform = lambda: torch.rand(size, generator=generator)  # noqa: E731
    area = min_scale + (1.0 - min_scale) * uniform()
    log_ratio = (uniform() * 2 - 1) * torch.log(torch.tensor(4 / 3))
    ratio = torch.exp(log_ratio)
    scale_x = torch.sqrt(area * ratio).clamp(max=1.0)
    scale_y = torch.sqrt(area / ratio).clamp(max=1.0)
    shift_x = (1 - scale_x + max_shift) * (uniform() * 2 - 1)
    shift_y = (1 - scale_y + max_shift) * (uniform() * 2 - 1)
    flip = torch.where(uniform() < 0.5, -1.0, 1.0)
    theta = torch.zeros(size, 2, 3)
    theta[:, 0, 0] = scale_x * flip
    theta[:, 0, 2] = shift_x
    theta[:, 1, 1] = scale_y
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta.to(batch.device), [size, 3, pixels, pixels], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _luma(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of a [0,1] NCHW batch, shape (N,1,H,W)."""
    return (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)


def _rotate_hue(images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma of [0,1] RGB images by `angle` radians (per image) in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=images.device)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, images)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    rotated = torch.stack([yiq[:, 0], yiq[:, 1] * cos - yiq[:, 2] * sin, yiq[:, 1] * sin + yiq[:, 2] * cos], 1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), rotated)


def _colour_jitter(batch: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """SimCLR's colour distortion (Chen et al. 2020): brightness, contrast, saturation by up to
    0.8*strength and hue by up to 0.2*strength of a turn (p=0.8), then grayscale (p=0.2)."""
    size = batch.shape[0]

    def symmetric(scale: float) -> torch.Tensor:
        return (scale * (torch.rand(size, generator=generator) * 2 - 1)).to(batch.device)

    def factor() -> torch.Tensor:
        return (1 + symmetric(0.8 * strength)).view(-1, 1, 1, 1)

    apply = (torch.rand(size, generator=generator) < 0.8).view(-1, 1, 1, 1).to(batch.device)
    images = (batch + 1) / 2
    jittered = images * factor()
    mean = _luma(images).mean(dim=(2, 3), keepdim=True)
    jittered = (jittered - mean) * factor() + mean
    jittered_gray = _luma(jittered)
    jittered = (jittered - jittered_gray) * factor() + jittered_gray
    jittered = _rotate_hue(jittered, symmetric(0.2 * strength) * 2 * torch.pi).clamp(0, 1)
    images = torch.where(apply, jittered, images)
    to_gray = (torch.rand(size, generator=generator) < 0.2).view(-1, 1, 1, 1).to(batch.device)
    images = torch.where(to_gray, _luma(images).expand_as(images), images)
    return images.clamp(0, 1) * 2 - 1


def augment(batch: torch.Tensor, mode: str, generator: torch.Generator, size: int = 32) -> torch.Tensor:
    """Return an augmented copy of a [-1,1] NCHW batch (`mode` in AUGMENTATIONS) at `size` pixels.

    Parameters
    ----------
    batch : Tensor of shape (N, 3, H, W)
        The images, in [-1, 1].
    mode : {"none", "flip-crop", "simclr"}
        "none": only resized (bilinear, antialiased) to `size`; "flip-crop": a random horizontal
        flip, aspect change (3/4 to 4/3) and shift, the borders filled by reflection; "simclr": a
        random crop of 20% to 100% of the area (aspect 3/4 to 4/3) with a flip, then SimCLR's
        colour distortion at strength 0.5 (`_colour_jitter`).
    generator : torch.Generator
        The only source of randomness (on the CPU); unused by "none".
    size : int, default=32
        The side of the output images, in pixels.

    Returns
    -------
    Tensor of shape (N, 3, size, size)
        The augmented images, in [-1, 1]. For "none" at the batch's own size this is `batch`
        itself, not a copy.

    Raises
    ------
    ValueError
        For a `mode` not in `AUGMENTATIONS`.
    """
    if mode == "none":
        if batch.shape[-1] == size:
            return batch
        return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if mode == "flip-crop":
        return _affine_views(batch, generator, min_scale=1.0, max_shift=0.25, pixels=size)
    if mode == "simclr":
        return _colour_jitter(_affine_views(batch, generator, 0.2, 0.0, size), generator, 0.5)
    raise ValueError(f"unknown augmentation {mode!r}; choose one of {', '.join(AUGMENTATIONS)}")
