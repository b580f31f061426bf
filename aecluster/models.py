"""Autoencoder architectures: a small module per block and one builder per variant.

The registered models (`aecluster.registry`, one YAML config each) name their builder: a function
here that `register_builder` registered under that name.
Every model is an `Autoencoder`: an encoder that maps a (B,3,32,32) batch in [-1,1] to flat
codes, an optional decoder that reconstructs the batch from them, and an optional projection
head used only by contrastive training. Modules only compute; losses live in `losses`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any, TypeVar

import torch
from torch import nn

from aecluster.errors import UserInputError
from aecluster.patches import FlipAveragedEncoder, PatchDictionaryEncoder
from aecluster.registry import ARCHITECTURE_BOUNDS, check_architecture, get_spec


class BaselineEncoder(nn.Module):
    """The course's baseline encoder: Conv 3->64->128->256 (3x3, pad 1), ReLU, MaxPool 2.

    Attributes
    ----------
    features : nn.Sequential
        The three conv, ReLU, max-pool stages: (N, 3, 32, 32) -> (N, 256, 4, 4).
    code_dim : int
        The width of a code: 4096 (the 256 x 4 x 4 latent map, flattened).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for in_ch, out_ch in ((3, 64), (64, 128), (128, 256)):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.code_dim = 256 * 4 * 4

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map of [-1, 1] images: what the decoder reads.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, 32, 32)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, 256, 4, 4)
            The latent map.
        """
        return self.features(x)

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The baseline's code is its whole latent map, flattened.

        Parameters
        ----------
        feature_map : torch.Tensor of shape (N, C, H, W)
            A latent map (`feature_map`).

        Returns
        -------
        torch.Tensor of shape (N, C * H * W)
            The codes (N, 4096 for the baseline's map).
        """
        return feature_map.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The codes of [-1, 1] images: the flattened latent map.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, 32, 32)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, 4096)
            The codes.
        """
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
        """The reconstruction of a baseline latent map.

        Parameters
        ----------
        feature_map : torch.Tensor of shape (N, 256, 4, 4)
            A `BaselineEncoder` latent map.

        Returns
        -------
        torch.Tensor of shape (N, 3, 32, 32)
            The reconstructed images, in [-1, 1] (Tanh).
        """
        return self.layers(feature_map)


class PlainBlock(nn.Sequential):
    """Conv 3x3 + BatchNorm + ReLU.

    Parameters
    ----------
    in_ch : int
        Input channels.
    out_ch : int
        Output channels.
    stride : int
        The convolution's stride: 2 halves the map's height and width, 1 keeps them.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class SeparableBlock(nn.Sequential):
    """MobileNet-v1 block (Howard et al. 2017, arXiv:1704.04861): depthwise 3x3 then pointwise 1x1.

    Each convolution is followed by BatchNorm and ReLU.

    Parameters
    ----------
    in_ch : int
        Input channels (those of the depthwise convolution).
    out_ch : int
        Output channels (those of the pointwise convolution).
    stride : int
        The depthwise convolution's stride: 2 halves the map's height and width, 1 keeps them.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


BLOCKS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "plain": PlainBlock,
    "separable": SeparableBlock,
}


class PooledEncoder(FlipAveragedEncoder):
    """An encoder whose code is the global average of its latent map (`feature_map`); with
    `flip_average`, inference averages the codes of the image and its mirror image, so that a
    left-right flip (a nuisance for scene type) cannot change the code.

    Attributes
    ----------
    code_dim : int
        The width of a code: the latent map's channels. Set by each subclass.
    flip_average : bool
        Whether `forward` in eval mode averages the codes of each image and its mirror image.
        Set by each subclass.
    """

    code_dim: int
    flip_average: bool

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map (N, C, H, W) of [-1, 1] images: what the decoder reads.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, 32, 32)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, C, H, W)
            The latent map; each subclass implements it.
        """
        raise NotImplementedError

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The code of a latent map: its per-channel mean (global average pooling).

        Parameters
        ----------
        feature_map : torch.Tensor of shape (N, C, H, W)
            A latent map (`feature_map`).

        Returns
        -------
        torch.Tensor of shape (N, C)
            The codes.
        """
        return feature_map.mean(dim=(2, 3))


class ConvEncoder(PooledEncoder):
    """A plain stem conv, then per stage a widening block and a stride-2 block: 32->16->8->4.

    `block` picks the family ("plain" or "separable"), either one for every stage or a list
    with one per stage (a hybrid: plain filters where channels are few, separable where they
    are many). The code is the global average of the 4x4 latent map.

    Parameters
    ----------
    widths : tuple of int, default=(32, 64, 128)
        The channels of each stage; each stage halves the map's side, so three stages make a
        4x4 map of 32x32 images. The last width is the code's.
    block : {"plain", "separable"} or list of them, default="plain"
        The block family of every stage, or one per stage (as many as `widths`).
    flip_average : bool, default=True
        At inference, average the codes of the image and its mirror image.

    Attributes
    ----------
    features : nn.Sequential
        The stem and the stages' blocks.
    code_dim : int
        The width of a code: `widths[-1]`.

    Raises
    ------
    ValueError
        When `block` is not a block family, or a list of them that has not one per stage.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), block: str | list[str] = "plain",
                 flip_average: bool = True) -> None:
        super().__init__()
        families = [block] * len(widths) if isinstance(block, str) else list(block)
        if len(families) != len(widths) or not set(families) <= set(BLOCKS):
            raise ValueError(f"block must be one of {sorted(BLOCKS)} or a list of them, one per stage "
                             f"({len(widths)}), got {block!r}")
        make = [BLOCKS[family] for family in families]
        layers: list[nn.Module] = [PlainBlock(3, widths[0], 1), make[0](widths[0], widths[0], 2)]
        for stage, (in_ch, out_ch) in enumerate(pairwise(widths), start=1):
            layers += [make[stage](in_ch, out_ch, 1), make[stage](out_ch, out_ch, 2)]
        self.features = nn.Sequential(*layers)
        self.code_dim = widths[-1]
        self.flip_average = flip_average

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map of [-1, 1] images: what the decoder reads.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, widths[-1], H / 2**len(widths), W / 2**len(widths))
            The latent map ((N, widths[-1], 4, 4) for 32x32 images and three stages).
        """
        return self.features(x)


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016, arXiv:1512.03385): two 3x3 convs with BatchNorm and
    an identity shortcut, or a strided 1x1 projection where the shape changes.

    Parameters
    ----------
    in_ch : int
        Input channels.
    out_ch : int
        Output channels.
    stride : int
        The first convolution's (and the projection's) stride: 2 halves the map's height and
        width, 1 keeps them.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU of the two convolutions' output plus the shortcut of `x`.

        Parameters
        ----------
        x : torch.Tensor of shape (N, in_ch, H, W)
            The input map.

        Returns
        -------
        torch.Tensor of shape (N, out_ch, ceil(H / stride), ceil(W / stride))
            The output map.
        """
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetEncoder(PooledEncoder):
    """CIFAR-style ResNet (He et al. 2016; SimCLR's CIFAR variant): a 3x3 stride-1 stem without
    max-pool, then stages of `BasicBlock`s, the first of each stage after the first striding 2:
    32 -> 32 -> 16 -> 8 -> 4. ResNet-18 is widths (64, 128, 256, 512), blocks (2, 2, 2, 2); the
    code is the global average of the last map (512-d).

    Parameters
    ----------
    widths : tuple of int, default=(64, 128, 256, 512)
        The channels of each stage; the last is the code's width.
    blocks : tuple of int, default=(2, 2, 2, 2)
        How many `BasicBlock`s each stage has (one entry per stage, as in `widths`).
    flip_average : bool, default=True
        At inference, average the codes of the image and its mirror image.

    Attributes
    ----------
    features : nn.Sequential
        The stem and every stage's blocks.
    code_dim : int
        The width of a code: `widths[-1]`.

    Raises
    ------
    ValueError
        When `widths` and `blocks` differ in length.
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: tuple[int, ...] = (2, 2, 2, 2),
                 flip_average: bool = True) -> None:
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {list(widths)} and blocks {list(blocks)} need one entry per stage")
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True)]
        channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for index in range(count):
                layers.append(BasicBlock(channels, width, 2 if stage > 0 and index == 0 else 1))
                channels = width
        self.features = nn.Sequential(*layers)
        self.code_dim = widths[-1]
        self.flip_average = flip_average

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map of [-1, 1] images: what the decoder reads.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, widths[-1], H / 2**(len(widths) - 1), W / 2**(len(widths) - 1))
            The latent map ((N, 512, 4, 4) for 32x32 images and ResNet-18).
        """
        return self.features(x)


class ConvDecoder(nn.Module):
    """Mirror of `ConvEncoder`: stride-2 transposed convs from the latent map back to 3 channels, Tanh.

    Each of the `len(widths)` transposed convolutions (with BatchNorm and ReLU) doubles the map's
    side, through the widths in reverse order and `widths[0]` once more; a 3x3 convolution then
    makes the 3 channels.

    Parameters
    ----------
    widths : tuple of int, default=(32, 64, 128)
        The encoder's stage widths; the last is the latent map's channels.
    """

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
        """The reconstruction of a latent map.

        Parameters
        ----------
        feature_map : torch.Tensor of shape (N, widths[-1], H, W)
            A latent map.

        Returns
        -------
        torch.Tensor of shape (N, 3, H * 2**len(widths), W * 2**len(widths))
            The reconstructed images, in [-1, 1] (Tanh); (N, 3, 32, 32) from a 4x4 map and three widths.
        """
        return self.layers(feature_map)


class Autoencoder(nn.Module):
    """Encoder + optional decoder + optional projection head (for contrastive objectives).

    The decoder reconstructs from the encoder's latent map; clustering reads the pooled code.

    Parameters
    ----------
    encoder : nn.Module
        Has `feature_map(x)`, `pool(feature_map)` and `code_dim`; called, it gives the codes.
    decoder : nn.Module, optional
        Maps the encoder's latent map back to images; None for an encoder-only model.
    projector : nn.Module, optional
        The projection head of contrastive training, applied to the codes; None without one.
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
        """Width of the codes `encode` gives."""
        return int(self.encoder.code_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (N, code_dim) of [-1, 1] images: what clustering reads.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, 32, 32)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, code_dim)
            The encoder's codes (flip-averaged in eval mode where the encoder does that).
        """
        return self.encoder(x)

    def encode_as_given(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled code of `x` itself, without the flip averaging `encode` does at inference:
        what a student is taught for exactly the input it sees.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, code_dim)
            The pooled codes of `x` as given.
        """
        return self.encoder.pool(self.encoder.feature_map(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's image of the latent map of `x` ([-1, 1], the input's shape).

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, 32, 32)
            Images scaled to [-1, 1].

        Returns
        -------
        torch.Tensor of shape (N, 3, 32, 32)
            The reconstructions, in [-1, 1].

        Raises
        ------
        RuntimeError
            When the model has no decoder (one saved encoder-only).
        """
        if self.decoder is None:
            raise RuntimeError("this model was saved without its decoder: it can only encode")
        return self.decoder(self.encoder.feature_map(x))

    def forward(
        self, x: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Codes, reconstruction (None without decoder) and projection (None without head).

        One call computes everything a training step needs, so DistributedDataParallel sees
        every parameter used inside `forward`.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Images scaled to [-1, 1] (training views may be smaller than 32x32).

        Returns
        -------
        codes : torch.Tensor of shape (N, code_dim)
            The pooled codes of `x` as given (no flip averaging).
        reconstruction : torch.Tensor of shape (N, 3, H, W) or None
            The decoder's output, in [-1, 1]; None without a decoder.
        projection : torch.Tensor of shape (N, projection_dim) or None
            The projection head's output on the codes; None without a head.
        """
        feature_map = self.encoder.feature_map(x)
        codes = self.encoder.pool(feature_map)
        reconstruction = self.decoder(feature_map) if self.decoder is not None else None
        projection = self.projector(codes) if self.projector is not None else None
        return codes, reconstruction, projection


def latent_map_shape(model: Autoencoder) -> tuple[int, ...]:
    """(C, H, W) of the latent map the model's encoder makes of a 32x32 image (in eval mode, so
    that no BatchNorm statistics move).

    Parameters
    ----------
    model : Autoencoder
        The model; its training mode is restored afterwards.

    Returns
    -------
    tuple of int
        (C, H, W) of the latent map of one 32x32 image.
    """
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probe = torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device)
            return tuple(model.encoder.feature_map(probe).shape[1:])
    finally:
        model.train(training)


def projection_head(code_dim: int, dim: int = 64) -> nn.Sequential:
    """SimCLR's MLP head (Chen et al. 2020, arXiv:2002.05709): the loss sees z, clustering sees h.

    Parameters
    ----------
    code_dim : int
        The width of the codes h (the head's input and hidden width).
    dim : int, default=64
        The width of the projections z.

    Returns
    -------
    nn.Sequential
        Linear(code_dim, code_dim), ReLU, Linear(code_dim, dim).
    """
    return nn.Sequential(nn.Linear(code_dim, code_dim), nn.ReLU(inplace=True), nn.Linear(code_dim, dim))


Builder = Callable[..., Autoencoder]
BuilderT = TypeVar("BuilderT", bound=Builder)
# The model builders by the name a config's `architecture.builder` gives (see `register_builder`).
BUILDERS: dict[str, Builder] = {}


def register_builder(name: str) -> Callable[[BuilderT], BuilderT]:
    """A decorator that registers a model builder under `name`, the name configs give it.

    Parameters
    ----------
    name : str
        The builder's name, as a config's `architecture.builder` gives it.

    Returns
    -------
    Callable
        The decorator: it registers the function (keyword arguments: a config's architecture
        settings; returns an `Autoencoder`) and returns it unchanged.

    Raises
    ------
    ValueError
        When a builder of that name is already registered.
    """

    def register(builder: BuilderT) -> BuilderT:
        if name in BUILDERS:
            raise ValueError(f"model builder {name!r} is registered twice")
        BUILDERS[name] = builder
        return builder

    return register


@register_builder("baseline")
def build_baseline() -> Autoencoder:
    """The course's baseline autoencoder.

    Returns
    -------
    Autoencoder
        A `BaselineEncoder` with a `BaselineDecoder` and no projection head.
    """
    return Autoencoder(BaselineEncoder(), BaselineDecoder())


def scale_width(width: int, multiplier: float) -> int:
    """MobileNet's width multiplier: scale a channel count, rounded to a multiple of 8 (at least 8).

    Parameters
    ----------
    width : int
        A channel count.
    multiplier : float
        The factor it is scaled by.

    Returns
    -------
    int
        `width * multiplier` rounded to the nearest multiple of 8, at least 8.
    """
    return max(8, int(round(width * multiplier / 8)) * 8)


@register_builder("conv")
def build_conv(widths: tuple[int, ...] | list[int], block: str | list[str], projection_dim: int,
               width_multiplier: float = 1.0, flip_average: bool = True) -> Autoencoder:
    """A `ConvEncoder` autoencoder with its mirror decoder (and a SimCLR head if `projection_dim`).

    Parameters
    ----------
    widths : tuple or list of int
        The stage widths before `width_multiplier` (`ConvEncoder`).
    block : {"plain", "separable"} or list of them
        The block family of every stage, or one per stage (`ConvEncoder`).
    projection_dim : int
        The width of the projection head's output; 0 builds no head.
    width_multiplier : float, default=1.0
        Scales every width (`scale_width`).
    flip_average : bool, default=True
        At inference, average the codes of the image and its mirror image.

    Returns
    -------
    Autoencoder
        The model, its codes `scale_width(widths[-1], width_multiplier)` wide.

    Raises
    ------
    UserInputError
        When a scaled width falls outside `ARCHITECTURE_BOUNDS["widths"]`.
    ValueError
        For a `block` that is not a family or a list of one per stage.
    """
    widths = tuple(scale_width(w, width_multiplier) for w in widths)
    if not all(ARCHITECTURE_BOUNDS["widths"].holds(width) for width in widths):
        raise UserInputError(f"width_multiplier {width_multiplier:g} makes widths {list(widths)}, expected each "
                             f"{ARCHITECTURE_BOUNDS['widths'].describe()}")
    projector = projection_head(widths[-1], projection_dim) if projection_dim else None
    return Autoencoder(ConvEncoder(widths, block, flip_average), ConvDecoder(widths), projector)


@register_builder("resnet")
def build_resnet(widths: tuple[int, ...] | list[int] = (64, 128, 256, 512),
                 blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
                 decoder_widths: tuple[int, ...] | list[int] = (32, 64),
                 projection_dim: int = 128, flip_average: bool = True) -> Autoencoder:
    """A CIFAR ResNet encoder (ResNet-18 by default) with a light `ConvDecoder` from its 4x4 map,
    so that the method keeps an autoencoder trained by reconstruction.

    Parameters
    ----------
    widths : tuple or list of int, default=(64, 128, 256, 512)
        The four stages' widths; the last is the code's width.
    blocks : tuple or list of int, default=(2, 2, 2, 2)
        `BasicBlock`s per stage.
    decoder_widths : tuple or list of int, default=(32, 64)
        The decoder's two widths below the latent map's (`ConvDecoder` gets them and `widths[-1]`).
    projection_dim : int, default=128
        The width of the projection head's output; 0 builds no head.
    flip_average : bool, default=True
        At inference, average the codes of the image and its mirror image.

    Returns
    -------
    Autoencoder
        The model: a `ResNetEncoder`, a `ConvDecoder` and, with `projection_dim`, a SimCLR head.

    Raises
    ------
    ValueError
        When `widths` has not 4 entries, `decoder_widths` not 2, or `blocks` not one per stage.
    """
    if len(widths) != 4 or len(decoder_widths) != 2:
        raise ValueError(f"a ResNet for 32x32 images has 4 stages (4x4 latent map) and a 2-width decoder, "
                         f"got widths {list(widths)} and decoder_widths {list(decoder_widths)}")
    projector = projection_head(widths[-1], projection_dim) if projection_dim else None
    return Autoencoder(ResNetEncoder(tuple(widths), tuple(blocks), flip_average),
                       ConvDecoder((*decoder_widths, widths[-1])), projector)


@register_builder("patches")
def build_patches(patch_size: int = 6, centres: int = 400, grid: int = 2, normalise: float = 10.0,
                  flip_average: bool = False) -> Autoencoder:
    """An encoder-only model around a `PatchDictionaryEncoder` (fitted, not trained by gradient).

    Parameters
    ----------
    patch_size : int, default=6
        The side of the patches.
    centres : int, default=400
        How many atoms the dictionary has.
    grid : int, default=2
        Cells a side of the pooling grid.
    normalise : float, default=10.0
        Added to each patch's variance before it is normalised.
    flip_average : bool, default=False
        At inference, average the codes of the image and its mirror image.

    Returns
    -------
    Autoencoder
        The model, without decoder or projection head; its dictionary is zeros until loaded.

    Raises
    ------
    ValueError
        For a setting out of its bounds, or a grid that does not fit the patches.
    """
    return Autoencoder(PatchDictionaryEncoder(patch_size, centres, grid, normalise, flip_average))


def build_model(name: str, config: dict[str, Any] | None = None) -> Autoencoder:
    """Build a registered model; `config` overrides (e.g. from a checkpoint) replace defaults,
    each checked against `ARCHITECTURE_BOUNDS` first, so settings that declare an absurd model
    are one error, not an overflow or an allocation.

    Parameters
    ----------
    name : str
        A registered config.
    config : dict, optional
        Architecture settings that replace the config's (only keys the config has).

    Returns
    -------
    Autoencoder
        The model its builder makes, freshly initialised (its layers' initial weights are drawn
        from torch's global generator).

    Raises
    ------
    UserInputError
        For an unknown model, a setting the config does not have, a builder that is not
        registered, or a setting outside `ARCHITECTURE_BOUNDS`.
    ValueError
        When the builder refuses the settings (`build_conv`, `build_resnet`, `build_patches`).
    """
    spec = get_spec(name)
    unknown = sorted(set(config or {}) - set(spec.config))
    if unknown:
        raise UserInputError(f"model {name!r} has no setting {', '.join(map(repr, unknown))}; "
                             "was this checkpoint made for another model?")
    if spec.builder not in BUILDERS:
        raise UserInputError(f"{spec.source}: architecture.builder {spec.builder!r} is not a model builder; "
                             f"choose one of {', '.join(BUILDERS)}")
    settings = {**spec.config, **(config or {})}
    check_architecture(settings, f"model {name!r}")
    return BUILDERS[spec.builder](**settings)
