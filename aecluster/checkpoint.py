"""Checkpoints: a plain `state_dict` plus metadata, loadable with `torch.load(weights_only=True)`.

Loading never unpickles arbitrary objects, so a checkpoint from a stranger cannot run code.
Every write goes to a temporary file in the target folder and is renamed into place, so an
interrupted save never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
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
from aecluster.errors import UserInputError, WrongFileError
from aecluster.files import describe_file
from aecluster.models import Autoencoder, build_model
from aecluster.registry import REGISTRY, WEIGHT_FORMATS, Bounds
from aecluster.saved_model import fitted_parts
from aecluster.version import __version__

FORMAT = "aecluster-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write a checkpoint dictionary atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (a symlink is written through).
    payload : dict
        The checkpoint dictionary (`make_payload`), saved with `torch.save`.

    Raises
    ------
    UserInputError
        When the file cannot be written (a full disk, say); the target is then left unchanged.
    """
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
    """The checkpoint dictionary: weights + everything needed to rebuild and use them.

    Parameters
    ----------
    model : Autoencoder
        The model whose `state_dict` is stored (the tensors themselves, not copies).
    name : str
        The registered config the model was built from.
    config : dict
        The model's architecture settings (`build_model`'s `config`).
    recipe : dict
        The clustering recipe the model goes with.
    epoch : float
        Epochs trained (fractional for a snapshot taken mid-epoch).
    extra : dict, optional
        More entries (settings, step, optimizer state, fingerprints, ...), added last.

    Returns
    -------
    dict
        "format", "format_version", "aecluster_version", "model", "config", "recipe", "epoch"
        and "state_dict", then the entries of `extra`.
    """
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
    """Read and validate a checkpoint file without executing any code it may contain.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict
        The checkpoint dictionary, its tensors on the CPU, every value, field and tensor checked
        (`check_values`, `check_state`, the recipe and a saved model's fitted groups).

    Raises
    ------
    WrongFileError
        When the path is not a regular file (a folder, say) or looks like another kind of file
        (an array, text, an image, an empty file, an ONNX export).
    UserInputError
        When the file is missing, holds objects other than weights, is not a readable torch
        file, is not an aecluster checkpoint, is of a newer format, or is malformed.
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such checkpoint file")
    found = describe_file(path)
    if not path.is_file() or found.startswith(("a .np", "a text", "an image", "an empty", "an ONNX")):
        raise WrongFileError(f"{path}: found {found}, expected a torch checkpoint (.pth)", found,
                             "a torch checkpoint (.pth)")
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


# How deep and how many a checkpoint's values may be: aecluster writes at most six levels and a few
# thousand values (a long run's history). A structure that refers to itself, or holds one list
# many times over, would otherwise make every walk over it endless or exponential.
MAX_DEPTH = 16
MAX_VALUES = 250_000
PLAIN_VALUES = (str, int, float, bool, type(None))
# The dtypes a stored tensor may have: real numbers (what aecluster writes, and what loads into a model).
REAL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
               torch.int32, torch.int64, torch.bool)
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _malformed(source: str, what: str) -> UserInputError:
    return UserInputError(f"{source}: malformed checkpoint: {what}")


def _dtype_name(tensor: torch.Tensor) -> str:
    """"float32" for a float32 tensor."""
    return str(tensor.dtype).removeprefix("torch.")


def tensor_problem(tensor: torch.Tensor) -> str | None:
    """What makes a loaded tensor other than a dense CPU tensor of real numbers that holds its
    own values (not an expanded view of fewer), all finite; None when nothing. Only the tensor's
    header is read before its values are known to be in the file.

    Parameters
    ----------
    tensor : torch.Tensor
        A tensor loaded from a checkpoint.

    Returns
    -------
    str or None
        The problem in words (for a message), or None when the tensor is sound.
    """
    if tensor.is_nested or tensor.layout != torch.strided:
        kind = "nested" if tensor.is_nested else str(tensor.layout).removeprefix("torch.")
        return f"a {kind} tensor, expected a dense one"
    if tensor.device.type != "cpu":
        return f"a tensor on device {tensor.device.type!r} (no values stored), expected a stored one"
    if tensor.dtype not in REAL_DTYPES:
        return f"a tensor of dtype {_dtype_name(tensor)}, expected real numbers"
    stored = tensor.untyped_storage().nbytes()
    if stored < tensor.numel() * tensor.element_size():
        return (f"a tensor of shape {list(tensor.shape)} over {stored:,} stored bytes (an expanded view), "
                "expected one that holds its values")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        return "a tensor holding NaN or infinite values"
    return None


def _child_path(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def check_values(payload: dict[str, Any], source: str) -> None:
    """Walk every value of a loaded checkpoint once, bounded by `MAX_DEPTH` and `MAX_VALUES`, and
    refuse keys other than text and whole numbers, values other than dictionaries, lists, tuples,
    text, numbers, booleans, None and tensors, and tensors with a `tensor_problem`; errors name
    the value's path (e.g. optimizer.state.3.exp_avg). Each field's own numbers are checked by
    its reader (the recipe's by `check_recipe`, settings by `TrainSettings`, ...).

    Parameters
    ----------
    payload : dict
        A loaded checkpoint dictionary.
    source : str
        The file it was read from, named by an error.

    Raises
    ------
    UserInputError
        For values nested deeper than `MAX_DEPTH`, more than `MAX_VALUES` values, a key or value
        of another type, or a tensor with a `tensor_problem`.
    """
    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    checked: set[int] = set()
    count = 1  # values met so far, each counted when its container is reached (before it is stacked)
    while stack:
        value, where, depth = stack.pop()
        container = isinstance(value, dict | list | tuple)
        count += len(value) if container else 0
        if depth > MAX_DEPTH:
            raise _malformed(source, f"its values nest deeper than {MAX_DEPTH} levels (at {where}; a structure "
                                     "that refers to itself?)")
        if count > MAX_VALUES:
            raise _malformed(source, f"it holds over {MAX_VALUES:,} values (at {where or 'the top'}; a structure "
                                     "that holds its parts many times over?)")
        for key, item in (value.items() if isinstance(value, dict) else enumerate(value)) if container else ():
            if not isinstance(key, str | int):
                raise _malformed(source, f"{where or 'the top level'} has a key of type {type(key).__name__}")
            stack.append((item, _child_path(where, key), depth + 1))
        if isinstance(value, torch.Tensor) and id(value) not in checked:
            checked.add(id(value))
            problem = tensor_problem(value)
            if problem:
                raise _malformed(source, f"{where} is {problem}")
        elif not isinstance(value, (*PLAIN_VALUES, dict, list, tuple, torch.Tensor)):
            raise _malformed(source, f"{where} is a {type(value).__name__}, expected plain values and tensors")


def _check_fields(payload: dict[str, Any], source: str) -> None:
    """Refuse a checkpoint whose values, fields, weights or recipe are not what aecluster writes:
    all of it is checked before any model is built or loaded (`check_values`, then the fields,
    then `check_state` against the model its settings build on the meta device, the recipe, and
    a saved model's fitted groups)."""
    check_values(payload, source)
    if not isinstance(payload.get("model"), str):
        raise _malformed(source, f"'model' is {payload.get('model')!r}, expected a model name")
    if payload["model"] not in REGISTRY:
        raise UserInputError(f"{source}: a checkpoint of unknown model {payload['model']!r} (made by another "
                             f"aecluster version?); this version knows {', '.join(sorted(REGISTRY))}")
    for key in ("config", "recipe", "weight_scales"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise _malformed(source, f"{key!r} is of type {type(payload[key]).__name__}, expected a dictionary")
    if payload.get("epoch") is not None and not Bounds(0).holds(payload["epoch"]):
        raise _malformed(source, f"'epoch' is {payload['epoch']!r}, expected {Bounds(0).describe()}")
    if payload.get("weight_format", "float32") not in WEIGHT_FORMATS:
        raise _malformed(source, f"weight_format is {payload.get('weight_format')!r}, "
                                 f"expected one of {', '.join(WEIGHT_FORMATS)}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise _malformed(source, f"'state_dict' is of type {type(state).__name__}, expected a dictionary of tensors")
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise _malformed(source, f"state_dict entry {key!r} is of type {type(tensor).__name__}, expected a tensor")
    skeleton = skeleton_of(payload, source)
    check_state(payload, skeleton, source)
    check_recipe(payload.get("recipe") or {}, source, skeleton.code_dim)
    if "fitted" in payload:
        fitted_parts(payload["fitted"], skeleton.code_dim, source)


def _dtype_fits(stored: torch.dtype, expected: torch.dtype, scaled: bool) -> bool:
    """Whether a stored dtype can load where the model has `expected`: a floating one (or int8
    with a scale, `scaled`) for floating weights, an integer one for integer buffers."""
    if expected.is_floating_point:
        return stored.is_floating_point or (stored == torch.int8 and scaled)
    return not stored.is_floating_point and stored != torch.bool


def _state_problem(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                   scales: dict[str, Any]) -> str | None:
    """What keeps `state` from loading into a model whose state is `expected` (None when nothing)."""
    unknown = [key for key in state if key not in expected]
    if unknown:
        return f"{unknown[0]!r} is not one of its tensors"
    parts = {key.split(".")[0] for key in state}
    missing = [key for key in expected if key.split(".")[0] in parts | {"encoder"} and key not in state]
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]!r}"
    for key, tensor in state.items():
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape):
            return f"{key!r} is {tuple(tensor.shape)} where its settings give {tuple(want.shape)}"
        if not _dtype_fits(tensor.dtype, want.dtype, key in scales):
            unscaled = " (int8 weights need a weight scale)" if tensor.dtype == torch.int8 else ""
            return f"{key!r} is of dtype {_dtype_name(tensor)} where the model holds {_dtype_name(want)}{unscaled}"
    return None


def _scale_problem(state: dict[str, torch.Tensor], scales: dict[str, Any]) -> str | None:
    """What is wrong with the int8 weight scales (None when nothing): each must belong to an int8
    tensor and be a positive number that keeps the tensor's weights finite in float32."""
    for key, scale in scales.items():
        tensor = state.get(key)
        if tensor is None or tensor.dtype != torch.int8:
            return f"weight_scales names {key!r}, which is not an int8 tensor of its state_dict"
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            return f"weight_scales[{key!r}] is {scale!r}, expected a positive number"
        largest = max(abs(int(tensor.min())), abs(int(tensor.max()))) if tensor.numel() else 0
        if largest * scale > FLOAT32_MAX:
            return (f"weight_scales[{key!r}] is {scale:g}: {largest} times it is beyond float32, so its weights "
                    "would not be finite")
    return None


def check_state(payload: dict[str, Any], skeleton: Autoencoder, source: str) -> None:
    """Refuse stored tensors that would not load into `skeleton` (the model the checkpoint's
    settings build, on the meta device) as they are: unknown or missing names (the encoder is
    required; a decoder or projection head whole or not at all), other shapes, dtypes that are
    not real numbers of the expected kind, and int8 weights without a sound scale.

    Parameters
    ----------
    payload : dict
        A loaded checkpoint dictionary; its "state_dict" and "weight_scales" are checked.
    skeleton : Autoencoder
        The model its settings build (`skeleton_of`).
    source : str
        The file it was read from, named by an error.

    Raises
    ------
    UserInputError
        One line naming the first tensor or scale that does not fit.
    """
    state, scales = payload["state_dict"], payload.get("weight_scales") or {}
    problem = _state_problem(state, skeleton.state_dict(), scales) or _scale_problem(state, scales)
    if problem:
        raise UserInputError(f"{source}: weights do not fit model {payload['model']!r} as its settings describe it "
                             f"({problem})")


def compress_state(state: dict[str, torch.Tensor], weights: str) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Store floating tensors as fp16, or as int8 with one symmetric scale per tensor.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        A state dict.
    weights : {"float32", "float16", "int8"}
        The weight format. "float32" keeps every tensor as it is; "float16" casts floating
        tensors to float16; "int8" rounds each floating tensor of at least 64 values to int8
        times the scale max(abs) / 127 (1.0 for an all-zero tensor), and casts smaller ones to
        float16. Non-floating tensors are always kept as they are.

    Returns
    -------
    packed : dict of str to torch.Tensor
        The tensors, stored in `weights`.
    scales : dict of str to float
        The scale of each int8 tensor, by name (empty unless `weights` is "int8").

    Raises
    ------
    UserInputError
        For a `weights` not in `WEIGHT_FORMATS`.
    """
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
    """A short fingerprint of a model's weights (all of its state), to tell one teacher from another.

    Parameters
    ----------
    model : torch.nn.Module
        The model; each state tensor's name and raw bytes enter the digest, in state-dict order.

    Returns
    -------
    str
        The first 16 hex digits of the SHA-256 digest.
    """
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a model's state dict (what clustering needs: no decoder or heads).

    Parameters
    ----------
    state : dict of str to torch.Tensor
        An `Autoencoder`'s state dict.

    Returns
    -------
    dict of str to torch.Tensor
        The entries whose names start with "encoder.".
    """
    return {key: tensor for key, tensor in state.items() if key.startswith("encoder.")}


def deployable_payload(payload: dict[str, Any], weights: str = "float16") -> dict[str, Any]:
    """An encoder-only copy of a checkpoint dictionary (decoder and projection head dropped),
    its weights stored as `weights` (float32, float16, or int8 with one scale per tensor); the
    fitted groups of a saved model are kept.

    Parameters
    ----------
    payload : dict
        A checkpoint dictionary (`make_payload`).
    weights : {"float32", "float16", "int8"}, default="float16"
        The weight format (`compress_state`).

    Returns
    -------
    dict
        The format fields, "model", "config", "recipe", "epoch" and "fitted" the payload has,
        with the encoder's "state_dict" in `weights`, "weight_format" and "weight_scales";
        everything else (settings, history, optimizer, fingerprints) is dropped.

    Raises
    ------
    UserInputError
        For a `weights` not in `WEIGHT_FORMATS`.
    """
    packed, scales = compress_state(encoder_state(payload["state_dict"]), weights)
    keep = ("format", "format_version", "aecluster_version", "model", "config", "recipe", "epoch", "fitted")
    deployable = {k: payload[k] for k in keep if k in payload}
    deployable.update(state_dict=packed, weight_format=weights, weight_scales=scales)
    return deployable


def expand_state(state: dict[str, torch.Tensor], scales: dict[str, float]) -> dict[str, torch.Tensor]:
    """Inverse of `compress_state`: float32 tensors ready for `load_state_dict`.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        A stored state dict.
    scales : dict of str to float
        The scale of each int8 tensor, by name (`compress_state`).

    Returns
    -------
    dict of str to torch.Tensor
        Scaled tensors times their scale and other floating tensors as float32; the
        non-floating tensors of no scale (integer buffers) unchanged.
    """
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
    except UserInputError as error:
        raise UserInputError(f"{source}: {error}") from None
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserInputError(f"{source}: its settings do not build model {payload['model']!r} "
                             f"({str(exc).splitlines()[0][:160]})") from None


def skeleton_of(payload: dict[str, Any], source: str = "checkpoint") -> Autoencoder:
    """The model a checkpoint's settings build, on torch's meta device (no memory): its tensor
    names, shapes and code width, to check a checkpoint against before anything is loaded.

    Parameters
    ----------
    payload : dict
        A checkpoint dictionary; its "model" and "config" are read.
    source : str, default="checkpoint"
        What the payload was read from, named by an error.

    Returns
    -------
    Autoencoder
        The model on the meta device (with decoder and projection head where its builder makes them).

    Raises
    ------
    UserInputError
        When the model is unknown or its settings do not build it.
    """
    with torch.device("meta"):
        return _build(payload, source)


def code_dim_of(payload: dict[str, Any], source: str = "checkpoint") -> int:
    """The code width of a checkpoint's encoder, from its skeleton (`skeleton_of`), so a recipe
    can be checked against it before any weights are loaded.

    Parameters
    ----------
    payload : dict
        A checkpoint dictionary; its "model" and "config" are read.
    source : str, default="checkpoint"
        What the payload was read from, named by an error.

    Returns
    -------
    int
        The width of the model's codes.

    Raises
    ------
    UserInputError
        When the model is unknown or its settings do not build it.
    """
    return int(skeleton_of(payload, source).code_dim)


def model_from_payload(payload: dict[str, Any], source: str = "checkpoint") -> Autoencoder:
    """Rebuild the model described by a checkpoint as `read_checkpoint` returns it (its tensors
    already checked against the model its settings build) and load its weights (strictly).

    Parameters
    ----------
    payload : dict
        A checkpoint dictionary as `read_checkpoint` returns it.
    source : str, default="checkpoint"
        What the payload was read from, named by an error.

    Returns
    -------
    Autoencoder
        The model on the CPU in eval mode, its weights float32 (`expand_state`); without a
        decoder or projection head when the checkpoint holds none.

    Raises
    ------
    UserInputError
        When the settings do not build the model or the weights do not load into it.
    """
    state = expand_state(payload["state_dict"], payload.get("weight_scales") or {})
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


def load_model(path: str | os.PathLike) -> tuple[Autoencoder, dict[str, Any]]:
    """Load a checkpoint file: the model in eval mode and the checkpoint's metadata.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    model : Autoencoder
        The model on the CPU in eval mode (`model_from_payload`).
    payload : dict
        The whole checkpoint dictionary as `read_checkpoint` returns it (weights included).

    Raises
    ------
    UserInputError
        As `read_checkpoint` and `model_from_payload` do (a `WrongFileError` for another kind of file).
    """
    payload = read_checkpoint(path)
    return model_from_payload(payload, str(path)), payload

