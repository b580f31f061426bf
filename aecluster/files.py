"""What a file is, from its first bytes: the words a message about a wrong file uses for what it
found (torch- and numpy-free, so every reader can use it)."""

from __future__ import annotations

import codecs
import os
import zipfile
from pathlib import Path

SNIFF_BYTES = 512  # how much of a file `describe_file` reads to tell its kind


def describe_file(path: str | os.PathLike) -> str:
    """What a file looks like from its first bytes ("a .npy array", "a torch checkpoint", ...),
    so that a message about a wrong file can say what was found instead.

    Parameters
    ----------
    path : str or os.PathLike
        The path; a regular file's first `SNIFF_BYTES` bytes are read (a zip archive's list of names too).

    Returns
    -------
    str
        A phrase with its article: "a folder", "a FIFO, device or socket, not a regular file"
        (also for a missing path), "an ONNX export" (by the suffix alone), "a .npy array",
        "a torch checkpoint (.pth)", "a .npz archive of arrays", "a zip archive", "a damaged
        zip archive", "an image file", "an empty file", "binary data", or "a text file (first
        line ...)".
    """
    path = Path(path)
    if path.is_dir():
        return "a folder"
    if not path.is_file():
        return "a FIFO, device or socket, not a regular file"
    if path.suffix.lower() == ".onnx":
        return "an ONNX export"
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(b"\x93NUMPY"):
        return "a .npy array"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a damaged zip archive"
        if any(name.endswith("data.pkl") for name in names):
            return "a torch checkpoint (.pth)"
        if names and all(name.endswith(".npy") for name in names):
            return "a .npz archive of arrays"
        return "a zip archive"
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff"):
        return "an image file"
    if not head:
        return "an empty file"
    try:
        # A character cut by the window's end is not an error unless the file ends there too.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        return "binary data"
    first = text.splitlines()[0] if text.splitlines() else ""
    return f"a text file (first line {first[:40]!r})"
