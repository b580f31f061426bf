"""User-facing errors: every aecluster program prints them as one line and exits with code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserInputError(ValueError):
    """A problem with a file, argument or array the user supplied (not a bug in aecluster)."""


def run_reporting_errors(program: str, entry: Callable[[], int],
                         interrupted: str = "interrupted; no output was written") -> int:
    """Run `entry` and return its exit code; a `UserInputError` prints `PROGRAM: error: ...` and
    returns 2, Ctrl-C prints `PROGRAM: <interrupted>` and returns 130 (no traceback either way)."""
    try:
        return entry()
    except UserInputError as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{program}: {interrupted}", file=sys.stderr)
        return 130
