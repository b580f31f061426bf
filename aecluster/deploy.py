"""Shipping models small: encoder-only checkpoints with fp16/int8 weights, sizes, ONNX export."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aecluster.atomic import atomic_path, check_writable
from aecluster.checkpoint import code_dim_of, deployable_payload, load_model, read_checkpoint, save_checkpoint
from aecluster.data import scale_pixels
from aecluster.encoding import check_recipe
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable and non-trainable parameters, counted as torchsummary does (buffers excluded).

    Parameters
    ----------
    model : torch.nn.Module
        The model (or one of its parts, e.g. `model.encoder`).

    Returns
    -------
    dict
        "trainable", "non_trainable" and "total": numbers of parameter values (ints).
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "non_trainable": total - trainable, "total": total}


def make_deployable(source: str | os.PathLike, output: str | os.PathLike, weights: str = "float16",
                    recipe: dict[str, Any] | None = None) -> None:
    """Write an encoder-only copy of a checkpoint (decoder and projection head dropped); `recipe`
    replaces keys of its clustering recipe (the one `hw9_best.sh` and `cluster` use). A saved
    model keeps its fitted groups, so neither its recipe nor its codes may move: a new recipe and
    int8 weights are refused for it.

    Parameters
    ----------
    source : str or os.PathLike
        The checkpoint or saved model to copy.
    output : str or os.PathLike
        The file to write (atomically).
    weights : {"float32", "float16", "int8"}, default="float16"
        How the floating-point weights are stored: as they are, as float16, or as int8 with one
        scale per tensor (tensors of fewer than 64 values stay float16).
    recipe : dict, optional
        Recipe keys ("reduce", "method", ...) to replace; None or empty keeps the recipe.

    Raises
    ------
    UserInputError
        When `source` is not a usable checkpoint, `weights` is not a known format, a saved model is
        given a new recipe or int8 weights, the new recipe does not fit the encoder, or `output`
        cannot be written.
    """
    payload = deployable_payload(read_checkpoint(source), weights)
    if "fitted" in payload and (recipe or weights == "int8"):
        change = "changing the recipe" if recipe else "int8 weights (which move the codes)"
        raise UserInputError(f"{source}: a saved model whose groups were fitted on its codes with its recipe; "
                             f"{change} would not match them (deploy the encoder checkpoint instead and "
                             f"refit and save it: `save_model`)")
    if recipe:
        payload["recipe"] = {**payload.get("recipe", {}), **recipe}
        check_recipe(payload["recipe"], "deploy", code_dim_of(payload, str(source)))
    save_checkpoint(output, payload)


class ExportEncoder(nn.Module):
    """uint8 (N,32,32,3) images -> codes: the preprocessing baked in, for runtimes without torch.

    Parameters
    ----------
    model : Autoencoder
        The model whose encoder is wrapped (shared, not copied).

    Attributes
    ----------
    encoder : torch.nn.Module
        The wrapped encoder.
    """

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.encoder = model.encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The codes of uint8 images.

        Parameters
        ----------
        images : Tensor of shape (N, 32, 32, 3)
            The images, uint8 (NHWC), scaled to [-1, 1] NCHW here (`data.scale_pixels`).

        Returns
        -------
        Tensor of shape (N, code_dim)
            The encoder's codes.
        """
        return self.encoder(scale_pixels(images))


def export_onnx(checkpoint: str | os.PathLike, output: str | os.PathLike) -> None:
    """Export the encoder to ONNX: input `images` uint8 (N,32,32,3), output `codes` (N,D).

    The batch dimension is dynamic; the file is written atomically. torch's dynamo exporter needs
    the onnx and onnxscript packages (`pip install 'aecluster[onnx]'`).

    Parameters
    ----------
    checkpoint : str or os.PathLike
        The checkpoint or saved model whose encoder is exported (float16 and int8 weights are
        expanded to float32 first).
    output : str or os.PathLike
        The .onnx file to write.

    Raises
    ------
    UserInputError
        When `output` cannot be written or `checkpoint` is not a usable checkpoint.
    """
    check_writable(Path(output))
    model, _ = load_model(checkpoint)
    wrapper = ExportEncoder(model).eval()
    example = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with atomic_path(output) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            wrapper, (example,), input_names=["images"], output_names=["codes"],
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, dynamo=True, verbose=False)
        program.save(str(temporary))


def describe_size(path: str | os.PathLike) -> dict[str, Any]:
    """Parameters (as torchsummary counts them; the encoder's apart) and bytes on disk of a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint or saved model.

    Returns
    -------
    dict
        "trainable", "non_trainable" and "total" (`count_parameters` of the whole model as loaded),
        "encoder" (the encoder's total), "bytes" (the file's size), "weight_format" ("float32" when
        the file does not say), "model" (its name) and "has_decoder" (bool).

    Raises
    ------
    UserInputError
        When `path` is not a usable checkpoint.
    """
    model, payload = load_model(path)
    return {**count_parameters(model), "encoder": count_parameters(model.encoder)["total"],
            "bytes": Path(path).stat().st_size,
            "weight_format": payload.get("weight_format", "float32"), "model": payload["model"],
            "has_decoder": model.decoder is not None}
