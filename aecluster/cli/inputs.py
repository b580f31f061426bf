"""What the command line adds to a library message about a wrong input file: the likely mistake
(two arguments swapped, a CSV given for images), which only someone typing a command can make."""

from __future__ import annotations

from aecluster.errors import WrongFileError


def mistake_hint(found: str, expected: str) -> str:
    """A hint at the likely mistake when a file of kind `found` was given where `expected` goes.

    Parameters
    ----------
    found : str
        What the file looks like (`aecluster.files.describe_file`).
    expected : str
        The kind of file that goes there, in the same words.

    Returns
    -------
    str
        "; ..." to append to the message, or "" when no mistake is likely.
    """
    if found in (expected, "an empty file") or found.startswith("a FIFO"):
        return ""
    if found == "an ONNX export" and "checkpoint" in expected:
        return "; ONNX exports are for other runtimes: give the .pth checkpoint it was exported from"
    if found.startswith("a text file") and expected != "a text file":
        return "; is it a CSV given in the wrong place? check the order of the arguments"
    return "; are two arguments swapped? check their order"


def wrong_file_message(error: WrongFileError) -> str:
    """The library's message about a wrong file with the likely mistake appended (`mistake_hint`).

    Parameters
    ----------
    error : WrongFileError
        The error; its `found` and `expected` give the hint.

    Returns
    -------
    str
        The error's message followed by the hint ("" when no mistake is likely).
    """
    return f"{error}{mistake_hint(error.found, error.expected)}"
