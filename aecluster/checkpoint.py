"""Checkpoints: a plain `state_dict` plus metadata, loadable with `torch.load(weights_only=True)`.

Loading never unpickles arbitrary objects, so a checkpoint from a stranger cannot run code.
Every write goes to a temporary file in the target folder and is renamed into place, so an
interrupted save never leaves a half-written file.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from aecluster.atomic import atomic_path
from aecluster.encoding import check_recipe
from aecluster.errors import UserInputError
from aecluster.models import Autoencoder, build_model
from aecluster.registry import REGISTRY, WEIGHT_FORMATS
from aecluster.version import __version__

FORMAT = "aecluster-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write a checkpoint dictionary atomically."""
    with atomic_path(path) as temporary:
        try:
            torch.save(payload, temporary)
        except RuntimeError as exc:
            free = shutil.disk_usage(temporary.parent).free
            raise UserInputError(f"{path}: could not be written ({str(exc).splitlines()[0][:120]}; "
                                 f"{free:,} bytes free on its disk); nothing was changed") from None


def make_payload(
    model: Autoencoder, name: str, config: dict[str, Any], recipe: dict[str, Any],
    epoch: float, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dictionary: weights + everything needed to rebuild and use them."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aecluster_version": __version__,
        "model": name,
        "config": config,
        "recipe": recipe,
        "epoch": float(epoch),
        "state_dict": model.state_dict(),
        **(extra or {}),
    }


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint file without executing any code it may contain."""
    from aecluster.data import describe_file, mistake_hint

    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such checkpoint file")
    found = describe_file(path)
    if not path.is_file() or found.startswith(("a .np", "a text", "an image", "an empty", "an ONNX")):
        raise UserInputError(f"{path}: found {found}, expected a torch checkpoint (.pth)"
                             f"{mistake_hint(found, 'a torch checkpoint (.pth)')}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = " ".join(str(exc).split())
        detail = re.search(r"WeightsUnpickler error: ?(.+?)(?:\.| Check |$)", text)
        first = detail.group(1).strip() if detail else text or "unsafe content"
        raise UserInputError(
            f"{path}: refused to load: the file holds objects other than weights ({first[:160]}); "
            "aecluster only loads plain state_dict checkpoints"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"{path}: not a readable checkpoint: not a torch file, or truncated or corrupt "
                             f"({first[:120]}); expected a complete .pth file as aecluster writes it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserInputError(f"{path}: not an aecluster checkpoint (no '{FORMAT}' header)")
    version = payload.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserInputError(f"{path}: malformed checkpoint: format_version is {version!r}, expected an integer")
    if version > FORMAT_VERSION:
        raise UserInputError(
            f"{path}: checkpoint format {version} is newer than this "
            f"aecluster ({__version__}) reads (format {FORMAT_VERSION}); upgrade aecluster"
        )
    _check_fields(payload, str(path))
    return payload


def _check_fields(payload: dict[str, Any], source: str) -> None:
    """Refuse a checkpoint whose fields have the wrong types or whose weights are not finite."""
    def malformed(what: str) -> UserInputError:
        return UserInputError(f"{source}: malformed checkpoint: {what}")

    if not isinstance(payload.get("model"), str):
        raise malformed(f"'model' is {payload.get('model')!r}, expected a model name")
    if payload["model"] not in REGISTRY:
        raise UserInputError(f"{source}: a checkpoint of unknown model {payload['model']!r} (made by another "
                             f"aecluster version?); this version knows {', '.join(sorted(REGISTRY))}")
    for key in ("config", "recipe", "weight_scales"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise malformed(f"{key!r} is of type {type(payload[key]).__name__}, expected a dictionary")
    scales = payload.get("weight_scales") or {}
    if not all(isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v) for v in scales.values()):
        raise malformed("'weight_scales' holds values other than finite numbers")
    if payload.get("weight_format", "float32") not in WEIGHT_FORMATS:
        raise malformed(f"weight_format is {payload.get('weight_format')!r}, "
                        f"expected one of {', '.join(WEIGHT_FORMATS)}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise malformed(f"'state_dict' is of type {type(state).__name__}, expected a dictionary of tensors")
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise malformed(f"state_dict entry {key!r} is of type {type(tensor).__name__}, expected a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise malformed(f"weights {key!r} hold NaN or infinite values")
    recipe = payload.get("recipe") or {}
    check_recipe(recipe, source, code_dim_of(payload, source) if recipe.get("reduce") is not None else None)


def compress_state(state: dict[str, torch.Tensor], weights: str) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Store floating tensors as fp16, or as int8 with one symmetric scale per tensor."""
    if weights not in WEIGHT_FORMATS:
        raise UserInputError(f"unknown weight format {weights!r}; choose one of {', '.join(WEIGHT_FORMATS)}")
    packed, scales = {}, {}
    for key, tensor in state.items():
        if not tensor.is_floating_point() or weights == "float32":
            packed[key] = tensor
        elif weights == "float16" or tensor.numel() < 64:
            packed[key] = tensor.to(torch.float16)
        else:
            scale = float(tensor.abs().max()) / 127.0 or 1.0
            packed[key] = torch.clamp(torch.round(tensor / scale), -127, 127).to(torch.int8)
            scales[key] = scale
    return packed, scales


def weights_digest(model: torch.nn.Module) -> str:
    """A short fingerprint of a model's weights (all of its state), to tell one teacher from another."""
    import hashlib

    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a model's state dict (what clustering needs: no decoder or heads)."""
    return {key: tensor for key, tensor in state.items() if key.startswith("encoder.")}


def deployable_payload(payload: dict[str, Any], weights: str = "float16") -> dict[str, Any]:
    """An encoder-only copy of a checkpoint dictionary (decoder and projection head dropped),
    its weights stored as `weights` (float32, float16, or int8 with one scale per tensor); the
    fitted groups of a saved model are kept."""
    packed, scales = compress_state(encoder_state(payload["state_dict"]), weights)
    keep = ("format", "format_version", "aecluster_version", "model", "config", "recipe", "epoch", "fitted")
    deployable = {k: payload[k] for k in keep if k in payload}
    deployable.update(state_dict=packed, weight_format=weights, weight_scales=scales)
    return deployable


def expand_state(state: dict[str, torch.Tensor], scales: dict[str, float]) -> dict[str, torch.Tensor]:
    """Inverse of `compress_state`: float32 tensors ready for `load_state_dict`."""
    expanded = {}
    for key, tensor in state.items():
        if key in scales:
            expanded[key] = tensor.to(torch.float32) * scales[key]
        elif tensor.is_floating_point():
            expanded[key] = tensor.to(torch.float32)
        else:
            expanded[key] = tensor
    return expanded


def _build(payload: dict[str, Any], source: str) -> Autoencoder:
    """The model a checkpoint's name and settings describe, or a one-line error naming `source`."""
    try:
        return build_model(payload["model"], payload.get("config"))
    except UserInputError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{source}: its settings do not build model {payload['model']!r} "
                             f"({str(exc).splitlines()[0][:160]})") from None


def code_dim_of(payload: dict[str, Any], source: str = "checkpoint") -> int:
    """The code width of a checkpoint's encoder, from a skeleton built without memory (on torch's
    meta device), so a recipe can be checked against it before any weights are loaded."""
    with torch.device("meta"):
        return int(_build(payload, source).code_dim)


def model_from_payload(payload: dict[str, Any], source: str = "checkpoint") -> Autoencoder:
    """Rebuild the model described by a checkpoint and load its weights (strictly).

    The model is first built without memory (on torch's meta device) and its tensor shapes are
    compared with the stored ones, so settings that declare a huge model cost nothing to refuse.
    """
    state = expand_state(payload["state_dict"], payload.get("weight_scales") or {})
    with torch.device("meta"):
        skeleton = _build(payload, source)
    _check_shapes(skeleton, state, payload["model"], source)
    model = _build(payload, source)
    if not any(key.startswith("decoder.") for key in state):
        model.decoder = None
    if not any(key.startswith("projector.") for key in state):
        model.projector = None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserInputError(
            f"{source}: weights do not fit model {payload['model']!r} ({first[:160]})"
        ) from None
    return model.eval()


def _check_shapes(skeleton: Autoencoder, state: dict[str, torch.Tensor], name: str, source: str) -> None:
    """Refuse stored tensors whose names or shapes differ from what the settings build."""
    parts = {key.split(".")[0] for key in state}
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items() if k.split(".")[0] in parts}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or wrong:
        detail = (f"{wrong[0]!r} is {tuple(state[wrong[0]].shape)} where its settings give {expected[wrong[0]]}"
                  if wrong else f"{len(missing)} tensors missing, e.g. {missing[0]!r}")
        raise UserInputError(f"{source}: weights do not fit model {name!r} as its settings describe it "
                             f"({detail})")


def load_model(path: str | os.PathLike) -> tuple[Autoencoder, dict[str, Any]]:
    """Load a checkpoint file: the model in eval mode and the checkpoint's metadata."""
    payload = read_checkpoint(path)
    return model_from_payload(payload, str(path)), payload

