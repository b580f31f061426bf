"""User-facing error type: the CLI prints these as one line and exits with code 2."""


class UserInputError(ValueError):
    """A problem with a file, argument or array the user supplied (not a bug in aecluster)."""
