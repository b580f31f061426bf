"""Unit tests of aecluster.plots's library modules (compute, draw); the command is tested in tests/cli."""
