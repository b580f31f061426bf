import numpy as np
import pytest

from aecluster.metrics import clustering_accuracy, contingency_table, purity, score_all


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


def test_purity_lets_groups_share_a_label_where_acc_leaves_them_unmatched():
    # Groups 0 and 1 are mostly label 0 (3 of 4, 2 of 2), groups 2 and 3 mostly label 1 (3 of 3, 1 of 1):
    # purity (3 + 2 + 3 + 1) / 10; ACC matches only group 0 -> 0 and group 2 -> 1: (3 + 3) / 10.
    predicted = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
    truth = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    assert purity(predicted, truth) == pytest.approx(0.9)
    assert clustering_accuracy(predicted, truth) == pytest.approx(0.6)
    assert purity(truth, truth) == 1.0 and purity(np.zeros(4), np.array([0, 1, 1, 1])) == 0.75


def test_contingency_table_counts_each_pair_with_zeros_for_missing_labels():
    rows, cols = np.array([0, 0, 3, 3, 3]), np.array([1, 1, 1, 0, 1])
    table = contingency_table(rows, cols, (4, 3))
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, [[0, 2, 0], [0, 0, 0], [0, 0, 0], [1, 2, 0]])
