"""aecluster: unsupervised image clustering built around a convolutional autoencoder."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["AEClusterer", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the estimator lazily, so that `aecluster --help` does not pay for torch."""
    if name == "AEClusterer":
        from aecluster.api import AEClusterer

        return AEClusterer
    raise AttributeError(f"module 'aecluster' has no attribute {name!r}")
