import numpy as np
import pytest

from aecluster.metrics import clustering_accuracy, score_all


def test_accuracy_is_invariant_to_label_swap():
    truth = np.array([0, 0, 1, 1, 1])
    assert clustering_accuracy(np.array([1, 1, 0, 0, 0]), truth) == 1.0
    assert clustering_accuracy(np.array([1, 1, 0, 0, 1]), truth) == pytest.approx(0.8)


def test_scores_perfect_and_random():
    truth = np.repeat([0, 1], 50)
    perfect = score_all(1 - truth, truth)
    assert perfect == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
    mixed = score_all(np.tile([0, 1], 50), truth)
    assert mixed["acc"] == 0.5 and mixed["ari"] < 0.05
