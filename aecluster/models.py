"""Autoencoder architectures and the registry that builds them by name.

Every model is an `Autoencoder`: an encoder that maps a (B,3,32,32) batch in [-1,1] to flat
codes, an optional decoder that reconstructs the batch from them, and an optional projection
head used only by contrastive training. Modules only compute; losses live in `training`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import torch
from torch import nn


class BaselineEncoder(nn.Module):
    """The course's baseline encoder: Conv 3->64->128->256 (3x3, pad 1), ReLU, MaxPool 2."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for in_ch, out_ch in ((3, 64), (64, 128), (128, 256)):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.code_dim = 256 * 4 * 4

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


class BaselineDecoder(nn.Module):
    """The course's baseline decoder: ConvTranspose 256->128 k5, 128->64 k9, 64->3 k17, Tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 5),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(128, 64, 9),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 3, 17),
            nn.Tanh(),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layers(codes.view(-1, 256, 4, 4))


def plain_block(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Conv 3x3 + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def separable_block(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """MobileNet-v1 block (Howard et al. 2017, arXiv:1704.04861): depthwise 3x3 then pointwise 1x1."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


BLOCKS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "plain": plain_block,
    "separable": separable_block,
}


class ConvEncoder(nn.Module):
    """A stem conv then stages of blocks that halve the resolution 32->16->8->4, pooled to a code.

    `block` picks the family ("plain" or "separable"); `widths` are the stage channel counts.
    """

    def __init__(
        self, widths: tuple[int, ...] = (32, 64, 128, 256), block: str = "plain",
        blocks_per_stage: int = 1, code_dim: int = 128,
    ) -> None:
        super().__init__()
        make = BLOCKS[block]
        layers: list[nn.Module] = [plain_block(3, widths[0], 1)]
        in_ch = widths[0]
        for width in widths[1:]:
            for repeat in range(blocks_per_stage):
                layers.append(make(in_ch, width, 2 if repeat == 0 else 1))
                in_ch = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_ch, code_dim)
        self.code_dim = code_dim
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


class ConvDecoder(nn.Module):
    """Codes -> (C,4,4) by a linear layer, then upsample x2 + conv blocks back to 3x32x32, Tanh."""

    def __init__(self, code_dim: int = 128, widths: tuple[int, ...] = (256, 128, 64, 32)) -> None:
        super().__init__()
        self.widths = widths
        self.expand = nn.Linear(code_dim, widths[0] * 4 * 4)
        layers: list[nn.Module] = []
        for in_ch, out_ch in pairwise(widths):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), plain_block(in_ch, out_ch, 1)]
        layers += [nn.Conv2d(widths[-1], 3, 3, padding=1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layers(self.expand(codes).view(-1, self.widths[0], 4, 4))


class Autoencoder(nn.Module):
    """Encoder + optional decoder + optional projection head (for contrastive objectives)."""

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module | None = None,
        projector: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.projector = projector

    @property
    def code_dim(self) -> int:
        return int(self.encoder.code_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise RuntimeError("this model was saved without its decoder: it can only encode")
        return self.decoder(self.encoder(x))

    def forward(
        self, x: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Codes, reconstruction (None without decoder) and projection (None without head).

        One call computes everything a training step needs, so DistributedDataParallel sees
        every parameter used inside `forward`.
        """
        codes = self.encoder(x)
        reconstruction = self.decoder(codes) if self.decoder is not None else None
        projection = self.projector(codes) if self.projector is not None else None
        return codes, reconstruction, projection


def projection_head(code_dim: int, dim: int = 64) -> nn.Sequential:
    """SimCLR's MLP head (Chen et al. 2020, arXiv:2002.05709): the loss sees z, clustering sees h."""
    return nn.Sequential(nn.Linear(code_dim, code_dim), nn.ReLU(inplace=True), nn.Linear(code_dim, dim))


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model, and the training/clustering defaults it ships with."""

    build: Callable[..., Autoencoder]
    config: dict[str, Any]
    training: dict[str, Any]
    recipe: dict[str, Any]
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def _build_baseline() -> Autoencoder:
    return Autoencoder(BaselineEncoder(), BaselineDecoder())


def scale_width(width: int, multiplier: float) -> int:
    """MobileNet's width multiplier: scale a channel count, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(width * multiplier / 8)) * 8)


def _build_conv(
    widths: tuple[int, ...] | list[int], block: str, blocks_per_stage: int, code_dim: int,
    decoder_widths: tuple[int, ...] | list[int], projection_dim: int, width_multiplier: float = 1.0,
) -> Autoencoder:
    widths = tuple(scale_width(w, width_multiplier) for w in widths)
    decoder_widths = tuple(scale_width(w, width_multiplier) for w in decoder_widths)
    encoder = ConvEncoder(widths, block, blocks_per_stage, code_dim)
    decoder = ConvDecoder(code_dim, decoder_widths)
    projector = projection_head(code_dim, projection_dim) if projection_dim else None
    return Autoencoder(encoder, decoder, projector)


def _conv_config(widths: tuple[int, ...], block: str, code_dim: int = 128,
                 blocks_per_stage: int = 1, projection_dim: int = 0) -> dict[str, Any]:
    return {
        "widths": list(widths), "block": block, "blocks_per_stage": blocks_per_stage,
        "code_dim": code_dim, "decoder_widths": [128, 64, 32, 16],
        "projection_dim": projection_dim, "width_multiplier": 1.0,
    }


REGISTRY: dict[str, ModelSpec] = {
    "baseline": ModelSpec(
        _build_baseline, {},
        training={"epochs": 20, "lr": 1e-3, "batch_size": 64, "augment": "none",
                  "noise": 0.0, "contrastive_weight": 0.0},
        recipe={"reduce": "kpca:200,tsne:2", "method": "kmeans"},
        description="the course's baseline autoencoder (latent 256x4x4)",
    ),
    "improved": ModelSpec(
        _build_conv, _conv_config((32, 64, 128, 256), "plain"),
        training={"epochs": 30, "lr": 2e-3, "batch_size": 128, "augment": "flip-crop",
                  "noise": 0.1, "contrastive_weight": 0.0},
        recipe={"reduce": "pca:32,umap:2", "method": "kmeans"},
        description="BatchNorm CNN autoencoder, pooled 128-d code, denoising + augmentation",
    ),
    "best": ModelSpec(
        _build_conv, _conv_config((32, 64, 128, 256), "plain", projection_dim=64),
        training={"epochs": 30, "lr": 2e-3, "batch_size": 128, "augment": "simclr",
                  "noise": 0.0, "contrastive_weight": 1.0},
        recipe={"reduce": "pca:32,umap:2", "method": "kmeans"},
        description="autoencoder + SimCLR contrastive objective on the encoder",
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry of `name`, or a one-line error listing the registered names."""
    if name not in REGISTRY:
        from aecluster.errors import UserInputError

        raise UserInputError(f"unknown model {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def build_model(name: str, config: dict[str, Any] | None = None) -> Autoencoder:
    """Build a registered model; `config` overrides (e.g. from a checkpoint) replace defaults."""
    spec = get_spec(name)
    return spec.build(**{**spec.config, **(config or {})})


def model_config(name: str) -> dict[str, Any]:
    """The full constructor configuration of a registered model (stored in checkpoints)."""
    return dict(get_spec(name).config)
