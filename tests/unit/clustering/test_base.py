"""aecluster/clustering/_base.py: what every clustering estimator shares (fit, state, group-count
checks, nearest centre, the degenerate-split warning)."""

import numpy as np

from aecluster.clustering import degenerate_warning


def test_degenerate_warning():
    assert degenerate_warning(np.array([0] * 99 + [1])) is not None
    assert degenerate_warning(np.array([0, 1] * 50)) is None

