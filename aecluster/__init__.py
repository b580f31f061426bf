"""aecluster: unsupervised image clustering built around a convolutional autoencoder."""

__version__ = "0.1.0"
