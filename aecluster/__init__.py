"""aecluster: unsupervised image clustering built around a convolutional autoencoder."""

from typing import Any

from aecluster.version import __version__

__all__ = ["AEClusterer", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the estimator lazily, so that `aecluster --help` does not pay for torch."""
    if name == "AEClusterer":
        from aecluster.api import AEClusterer

        return AEClusterer
    raise AttributeError(f"module 'aecluster' has no attribute {name!r}")
