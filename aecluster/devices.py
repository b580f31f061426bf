"""The torch device work runs on: the default, and a check of a user's choice before any work."""

from __future__ import annotations

from aecluster.errors import UserInputError

SUPPORTED = ("cpu", "cuda", "mps")


def default_device() -> str:
    """cuda when a CUDA device is present, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None) -> str:
    """`name`, or the default when None; a one-line `UserInputError` when torch does not know the
    name, it is not a device that computes (meta), or this machine does not have it."""
    if name is None:
        return default_device()
    import torch

    expected = f"expected one of {', '.join(SUPPORTED)}, optionally with an index such as cuda:0"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {name!r}; {expected}") from None
    if device.type not in SUPPORTED:
        raise UserInputError(f"device {name!r} cannot run aecluster; {expected}")
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserInputError(f"device {name!r} does not exist: there is one cpu device (cpu or cpu:0)")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserInputError(f"device {name!r} is not available: this machine has no CUDA device "
                                 f"(torch {torch.__version__}); use cpu or leave --device out")
        if device.index is not None and device.index >= count:
            raise UserInputError(f"device {name!r} does not exist: this machine has {count} CUDA "
                                 f"device(s), cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"device {name!r} is not available on this machine; use cpu or leave --device out")
    return name
