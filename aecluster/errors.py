"""The library's error for a user's mistake; the command line (`aecluster.cli.errors`) prints it
as one line and exits with code 2."""

from __future__ import annotations


class UserInputError(ValueError):
    """A problem with a file, argument or array the user supplied (not a bug in aecluster)."""
