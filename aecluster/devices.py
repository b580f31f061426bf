"""The torch device work runs on: the default, and a check of a user's choice before any work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aecluster.errors import UserInputError

if TYPE_CHECKING:
    import torch

SUPPORTED = ("cpu", "cuda", "mps")


def default_device() -> str:
    """cuda when a CUDA device is present, else cpu.

    Returns
    -------
    str
        "cuda" or "cpu".
    """
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | torch.device | None) -> str:
    """The device `name` names (as text), or the default when None; a one-line `UserInputError`
    when torch does not know the name, it is not a device that computes (meta), or this machine
    or torch build does not have it.

    Parameters
    ----------
    name : str, torch.device or None
        The device, e.g. "cpu", "cuda", "cuda:1" or "mps"; None for `default_device`.

    Returns
    -------
    str
        The device as torch writes it ("cuda:1"), or `default_device()` for None.

    Raises
    ------
    UserInputError
        For a name torch does not parse, a type other than cpu, cuda and mps, an index other than 0
        for cpu, cuda without a CUDA build of torch, a CUDA device or index this machine lacks, or
        mps where it is not available.
    """
    if name is None:
        return default_device()
    import torch

    expected = f"expected one of {', '.join(SUPPORTED)}, optionally with an index such as cuda:0"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {name!r}; {expected}") from None
    text = str(device)
    if device.type not in SUPPORTED:
        raise UserInputError(f"device {text!r} cannot run aecluster; {expected}")
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserInputError(f"device {text!r} does not exist: there is one cpu device (cpu or cpu:0)")
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise UserInputError(f"device {text!r} is not available: this torch build ({torch.__version__}) "
                                 "has no CUDA support; use cpu, or install a CUDA build of torch")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserInputError(f"device {text!r} is not available: this machine has no CUDA device; use cpu")
        if device.index is not None and device.index >= count:
            raise UserInputError(f"device {text!r} does not exist: this machine has {count} CUDA "
                                 f"device(s), cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"device {text!r} is not available on this machine; use cpu")
    return text
