"""The package version, in one place (read by setup.py, checkpoints and `aecluster --version`)."""

__version__ = "0.3.0"
