"""Unit tests of aecluster.clustering: one file per module of the package."""
