"""aecluster/clustering/threshold.py: two groups split by cosine similarity to the codes' first axis."""

from aecluster.clustering import ThresholdGroups
from tests.conftest import blobs


def test_threshold_moves_the_split():
    codes, _ = blobs()
    loose = ThresholdGroups(threshold=-1.1).fit(codes).labels_
    assert loose.sum() == len(codes)

