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

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The baseline's code is its whole latent map, flattened."""
        return feature_map.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(x))


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

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.layers(feature_map)


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
    """A plain stem conv, then per stage a widening block and a stride-2 block: 32->16->8->4.

    `block` picks the family ("plain" or "separable"), either one for every stage or a list
    with one per stage (a hybrid: plain filters where channels are few, separable where they
    are many). The code is the global average of the 4x4 latent map; with `flip_average`,
    inference averages the codes of the image and its mirror image, so that a left-right flip
    (a nuisance for scene type) cannot change the code.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), block: str | list[str] = "plain",
                 flip_average: bool = True) -> None:
        super().__init__()
        families = [block] * len(widths) if isinstance(block, str) else list(block)
        if len(families) != len(widths) or not set(families) <= set(BLOCKS):
            raise ValueError(f"block must be one of {sorted(BLOCKS)} or a list of them, one per stage "
                             f"({len(widths)}), got {block!r}")
        make = [BLOCKS[family] for family in families]
        layers: list[nn.Module] = [plain_block(3, widths[0], 1), make[0](widths[0], widths[0], 2)]
        for stage, (in_ch, out_ch) in enumerate(pairwise(widths), start=1):
            layers += [make[stage](in_ch, out_ch, 1), make[stage](out_ch, out_ch, 2)]
        self.features = nn.Sequential(*layers)
        self.code_dim = widths[-1]
        self.flip_average = flip_average

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        return feature_map.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.pool(self.features(x))
        if self.flip_average and not self.training:
            codes = (codes + self.pool(self.features(torch.flip(x, dims=[3])))) / 2
        return codes


class ConvDecoder(nn.Module):
    """Mirror of `ConvEncoder`: stride-2 transposed convs from the latent map back to 3 channels, Tanh."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = widths[-1]
        for width in (*reversed(widths[:-1]), widths[0]):
            layers += [nn.ConvTranspose2d(channels, width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        layers += [nn.Conv2d(channels, 3, 3, padding=1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.layers(feature_map)


class Autoencoder(nn.Module):
    """Encoder + optional decoder + optional projection head (for contrastive objectives).

    The decoder reconstructs from the encoder's latent map; clustering reads the pooled code.
    """

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

    def encode_as_given(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled code of `x` itself, without the flip averaging `encode` does at inference:
        what a student is taught for exactly the input it sees."""
        return self.encoder.pool(self.encoder.feature_map(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise RuntimeError("this model was saved without its decoder: it can only encode")
        return self.decoder(self.encoder.feature_map(x))

    def forward(
        self, x: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Codes, reconstruction (None without decoder) and projection (None without head).

        One call computes everything a training step needs, so DistributedDataParallel sees
        every parameter used inside `forward`.
        """
        feature_map = self.encoder.feature_map(x)
        codes = self.encoder.pool(feature_map)
        reconstruction = self.decoder(feature_map) if self.decoder is not None else None
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
    teacher: str | None = None
    deploy_weights: str | None = None


def _build_baseline() -> Autoencoder:
    return Autoencoder(BaselineEncoder(), BaselineDecoder())


def scale_width(width: int, multiplier: float) -> int:
    """MobileNet's width multiplier: scale a channel count, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(width * multiplier / 8)) * 8)


def _build_conv(widths: tuple[int, ...] | list[int], block: str | list[str], projection_dim: int,
                width_multiplier: float = 1.0, flip_average: bool = True) -> Autoencoder:
    widths = tuple(scale_width(w, width_multiplier) for w in widths)
    projector = projection_head(widths[-1], projection_dim) if projection_dim else None
    return Autoencoder(ConvEncoder(widths, block, flip_average), ConvDecoder(widths), projector)


def _conv_config(width: int, block: str | list[str] = "plain", projection_dim: int = 64) -> dict[str, Any]:
    return {"widths": [width, 2 * width, 4 * width], "block": block, "projection_dim": projection_dim,
            "width_multiplier": 1.0, "flip_average": True}


# Training defaults of the contrastive autoencoders: SimCLR's CIFAR settings (batch 256,
# temperature 0.5, crops of 20-100% area, colour jitter, 20% grayscale) with weight decay 5e-4;
# augmented views are rendered at 16x16, four times cheaper than 32x32, which is what makes
# them affordable on two CPU cores. Reconstruction (MSE) and NT-Xent have equal weight.
CONTRASTIVE_TRAINING = {"lr": 2e-3, "batch_size": 256, "augment": "simclr", "view_size": 16,
                        "noise": 0.0, "contrastive_weight": 1.0, "weight_decay": 5e-4}
# Their clustering recipe: codes L2-normalised (contrastive codes live on a sphere), PCA to 32
# dimensions, KMeans; no standardisation, which would undo the normalisation.
CONTRASTIVE_RECIPE = {"reduce": "l2,pca:32", "method": "kmeans", "standardize": False}
# Weight of similarity-preserving distillation: Tung & Mori's (2019) CIFAR value gamma = 3000 for
# the same loss (squared Frobenius distance of the batch similarity matrices over b^2). The loss
# is small (about 0.01 once trained), so at weight 1 it barely moves the student, which then
# drifts from the teacher's clustering geometry.
SIMILARITY_DISTILL_WEIGHT = 3000.0
# How many of each batch's images the student also matches as they are (32x32, unaugmented): the
# augmented 16x16 views alone teach the teacher's geometry on training views, but clustering
# encodes full-size originals. Chosen label-free, by how often the student's groups agree with
# its teacher's (benchmarks/accuracy.py, seeds 0-2, val / train images). 128 originals for 20
# epochs: two_source 0.970 / 0.973, intel_same_source 0.950 / 0.973; 256 for 30 epochs: 0.980 /
# 0.980 and 0.968 / 0.979. 256 costs 70% more per step than 128.
DISTILL_ORIGINALS = 256
# Weight of latent-map distillation on those originals (each image's 128x4x4 map pulled onto the
# teacher's direction, 1 - cosine) for a student whose map has the teacher's shape, and the
# student's epochs. Chosen label-free like the above, on intel_same_source (the benchmark where
# the student lagged), seeds 0-2, trained on a GPU for the comparison: group agreement val /
# train 0.966 / 0.980 without maps (30 epochs), 0.974-0.982 / 0.983-0.984 at weight 300 (two
# runs), 0.980 / 0.985 at 1000, and 0.988 / 0.988 at 300 for 60 epochs. On two CPU cores (the
# benchmark's own teachers and students, seeds 0-2): 0.984 / 0.988 on intel_same_source.
MAP_DISTILL_WEIGHT = 300.0
STUDENT_EPOCHS = 60

REGISTRY: dict[str, ModelSpec] = {
    "baseline": ModelSpec(
        _build_baseline, {},
        training={"epochs": 10, "lr": 1e-3, "batch_size": 64, "augment": "none",
                  "noise": 0.0, "contrastive_weight": 0.0},
        recipe={"reduce": "kpca:200,tsne:2", "method": "kmeans"},
        description="the course's baseline autoencoder (latent 256x4x4)",
    ),
    "improved": ModelSpec(
        _build_conv, _conv_config(16),
        training={**CONTRASTIVE_TRAINING, "epochs": 30},
        recipe=CONTRASTIVE_RECIPE,
        description="BatchNorm CNN autoencoder (16-32-64 channels) + SimCLR objective on its pooled code",
    ),
    "teacher": ModelSpec(
        _build_conv, _conv_config(32),
        training={**CONTRASTIVE_TRAINING, "epochs": 50},
        recipe=CONTRASTIVE_RECIPE,
        description="BatchNorm CNN autoencoder (32-64-128 channels) + SimCLR: the teacher of 'best'",
    ),
    # What ships as checkpoints/best.pth: a student distilled from `teacher` (trained first, into
    # OUT_run/teacher.pth), then stored encoder-only in float16 so that it fits the course's size
    # budget (<= 100,000 parameters, <= 225,000 bytes). Its encoder is a hybrid, as in
    # EfficientNetV2 (Tan & Le 2021, arXiv:2104.00298), whose early stages use plain convolutions:
    # plain 3x3 blocks where channels are few (32, 64), depthwise-separable ones at 128 channels,
    # where a plain stage would cost 221,696 parameters and the separable one costs 27,200. Its
    # latent map has the teacher's 128x4x4 shape, so latent-map distillation applies. Chosen
    # label-free over the all-separable student (37,024 params, 99,429 bytes) by group agreement
    # with the teacher, val / train / val placed, medians of seeds 0-2: intel_same_source 0.982 /
    # 0.991 / 0.992 against 0.984 / 0.988 / 0.984, two_source 0.988 / 0.992 / 0.986 against
    # 0.980 / 0.986 / 0.980 (benchmarks/accuracy.py).
    "best": ModelSpec(
        _build_conv, _conv_config(32, ["plain", "plain", "separable"]),
        training={**CONTRASTIVE_TRAINING, "epochs": STUDENT_EPOCHS, "distill_weight": SIMILARITY_DISTILL_WEIGHT,
                  "distill_originals": DISTILL_ORIGINALS, "distill_maps": MAP_DISTILL_WEIGHT},
        recipe=CONTRASTIVE_RECIPE,
        description="student (32-64-128: plain, plain, separable stages) distilled from 'teacher', float16",
        teacher="teacher", deploy_weights="float16",
    ),
    # The two encoder families of the compression study: identical depth, strides, decoder and
    # training, differing only in the block; --width-multiplier scales their channels.
    "mobilenet": ModelSpec(
        _build_conv, _conv_config(32, "separable"),
        training={**CONTRASTIVE_TRAINING, "epochs": 30},
        recipe=CONTRASTIVE_RECIPE,
        description="depthwise-separable (MobileNet-v1) encoder family, 32-64-128 channels at width 1",
    ),
    "plaincnn": ModelSpec(
        _build_conv, _conv_config(32, "plain"),
        training={**CONTRASTIVE_TRAINING, "epochs": 30},
        recipe=CONTRASTIVE_RECIPE,
        description="plain 3x3-conv encoder family of the same depth, 32-64-128 channels at width 1",
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
    unknown = sorted(set(config or {}) - set(spec.config))
    if unknown:
        from aecluster.errors import UserInputError

        raise UserInputError(f"model {name!r} has no setting {', '.join(map(repr, unknown))}; "
                             "was this checkpoint made for another model?")
    return spec.build(**{**spec.config, **(config or {})})


def model_config(name: str) -> dict[str, Any]:
    """The full constructor configuration of a registered model (stored in checkpoints)."""
    return dict(get_spec(name).config)
