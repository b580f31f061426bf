"""How every aecluster program reports what went wrong: a user's mistake (`UserInputError`), a
missing dependency or a path the system refused is one line and exit code 2, an interruption one
line and 130; warnings are held back until the command succeeds. Library messages name
parameters (`epochs`); here they name the flags that set them (--epochs)."""

from __future__ import annotations

import errno
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from aecluster.cli.inputs import wrong_file_message
from aecluster.cli.outputs import sigterm_as_interrupt
from aecluster.errors import UserInputError, WrongFileError

# Optional dependencies: the module a command needs -> how to get it.
INSTALL_HINTS = {
    "onnxscript": "pip install 'aecluster[onnx]'",
    "onnx": "pip install 'aecluster[onnx]'",
    "onnxruntime": "pip install 'aecluster[onnx]'",
}
# The flag of each library parameter that a message names between backticks.
FLAGS = {name: f"--{name.replace('_', '-')}" for name in (
    "batch_size", "distill_loss", "distill_maps", "epochs", "force", "hardware", "lr", "method", "model", "reduce",
    "resume", "save_model", "seed", "width_multiplier")}
PARAMETER = re.compile(r"`([a-z_]+)`")
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b.|[\x00-\x08\x0b-\x1f\x7f]")


def one_line(text: str) -> str:
    """`text` without terminal escape codes or control characters, its lines joined.

    Parameters
    ----------
    text : str
        A message (anything `str` accepts).

    Returns
    -------
    str
        The message on one line: newlines become spaces, then ANSI escape sequences and control
        characters other than tab are removed.
    """
    return CONTROL.sub("", " ".join(str(text).split("\n")))


def as_flags(text: str) -> str:
    """`text` with each parameter it names between backticks (`epochs`) replaced by its flag.

    Parameters
    ----------
    text : str
        A library message.

    Returns
    -------
    str
        The message as the command line says it; names not in `FLAGS` are left as they are.
    """
    return PARAMETER.sub(lambda match: FLAGS.get(match[1], match[0]), text)


def user_error_message(error: UserInputError) -> str:
    """What the command line says about a user's mistake: the library's message in flags, with the
    likely mistake behind a wrong input file (`inputs.mistake_hint`).

    Parameters
    ----------
    error : UserInputError
        The library's error; a `WrongFileError` also gets `inputs.wrong_file_message`'s hint.

    Returns
    -------
    str
        The message on one line (`one_line`), parameters named by their flags (`as_flags`).
    """
    text = wrong_file_message(error) if isinstance(error, WrongFileError) else str(error)
    return one_line(as_flags(text))


def missing_module_message(error: ModuleNotFoundError) -> str:
    """What a missing dependency means and how to install it.

    Parameters
    ----------
    error : ModuleNotFoundError
        The failed import; its top-level package name is reported ("?" when it has none).

    Returns
    -------
    str
        "this command needs the Python package ..., which is not installed; install it with: ...",
        with the `INSTALL_HINTS` command for that package, else "pip install -e SOURCE": SOURCE is
        the folder above the `aecluster` package (the repository root of a source checkout) when
        it holds a setup.py, else "aecluster".
    """
    name = (error.name or "?").split(".")[0]
    checkout = Path(__file__).resolve().parents[2]
    source = str(checkout) if (checkout / "setup.py").is_file() else "aecluster"
    hint = INSTALL_HINTS.get(name, f"pip install -e {source} (aecluster and its dependencies)")
    return f"this command needs the Python package {name!r}, which is not installed; install it with: {hint}"


def path_refused(error: OSError) -> str | None:
    """What a path the system refused at its first look means, in one line naming it: a name too
    long for the file system, or one this user may not read, write or search (an unreadable
    input, an output folder without search permission); None for any other error. Outputs'
    names are checked earlier, so these are mostly inputs, refused before any work.

    Parameters
    ----------
    error : OSError
        The error; its `filename` names the path ("a file" when it has none).

    Returns
    -------
    str or None
        The message for ENAMETOOLONG or a `PermissionError`; None for any other error.
    """
    where = error.filename if error.filename is not None else "a file"
    if error.errno == errno.ENAMETOOLONG:
        return f"{where}: name too long for the file system"
    if isinstance(error, PermissionError):
        reason = (error.strerror or "permission denied").lower()
        return f"{where}: {reason}: this user may not read or write it, or search a folder on its path"
    return None


def run_reporting_errors(program: str, entry: Callable[[], int],
                         interrupted: str = "interrupted; no output was written") -> int:
    """Run `entry` and return its exit code; a `UserInputError` prints `PROGRAM: error: ...` and
    returns 2 (so does a path too long for the file system or refused for lack of permission,
    `path_refused`), Ctrl-C or SIGTERM prints
    `PROGRAM: <interrupted>` and returns 130 (no traceback).

    Warnings raised on the way are held back and shown, one `PROGRAM: warning: ...` line each,
    only when the command succeeds, so an error stays one line; a missing dependency is a
    one-line error naming how to install it.

    Parameters
    ----------
    program : str
        The program name that starts each printed line ("aecluster").
    entry : callable
        The command, taking no arguments and returning its exit code.
    interrupted : str, default="interrupted; no output was written"
        What an interruption prints after "PROGRAM: ".

    Returns
    -------
    int
        `entry`'s exit code; 2 after a user's mistake, a missing module or a refused path; 130
        after Ctrl-C or SIGTERM.

    Raises
    ------
    OSError
        Any other OS error of `entry` is raised again (with its traceback), held-back warnings unshown.
    """
    with warnings.catch_warnings(record=True) as caught, sigterm_as_interrupt():
        warnings.simplefilter("default")
        try:
            code = entry()
        except UserInputError as error:
            print(f"{program}: error: {user_error_message(error)}", file=sys.stderr)
            return 2
        except ModuleNotFoundError as error:
            print(f"{program}: error: {missing_module_message(error)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{program}: {interrupted}", file=sys.stderr)
            return 130
        except OSError as error:
            message = path_refused(error)
            if message is None:
                raise
            print(f"{program}: error: {one_line(message)}", file=sys.stderr)
            return 2
    for warning in caught:
        message = one_line(as_flags(str(warning.message))) or warning.category.__name__
        print(f"{program}: warning: {message}", file=sys.stderr)
    return code
