"""The library's errors for a user's mistake; the command line (`aecluster.cli.errors`) prints them
as one line and exits with code 2.

A message names a parameter between backticks (`epochs`), as the Python caller knows it; the
command line shows its flag there instead (`aecluster.cli.errors.FLAGS`)."""

from __future__ import annotations


class UserInputError(ValueError):
    """A problem with a file, argument or array the user supplied (not a bug in aecluster)."""


class WrongFileError(UserInputError):
    """A file of another kind than the one expected where it was given (a `.npy` array where a
    checkpoint goes, say): `found` is what it looks like (`files.describe_file`), `expected` the
    kind that goes there, so that the command line can guess the mistake (swapped arguments).

    Parameters
    ----------
    message : str
        The one-line message, naming the file.
    found : str
        What the file looks like, in `files.describe_file`'s words ("a .npy array").
    expected : str
        The kind of file that goes there, in the same words.

    Attributes
    ----------
    found : str
        As given.
    expected : str
        As given.
    """

    def __init__(self, message: str, found: str, expected: str) -> None:
        super().__init__(message)
        self.found, self.expected = found, expected
