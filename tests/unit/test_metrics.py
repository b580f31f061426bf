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


def test_evaluate_adds_purity_when_groups_and_labels_differ_in_number(tmp_path, capsys):
    from aecluster.cli import main

    truth = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    np.save(tmp_path / "y.npy", truth)
    for name, groups in (("four", [0, 0, 0, 0, 1, 1, 2, 2, 2, 3]), ("two", [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]),
                         ("one", [0] * 10)):
        rows = "".join(f"{i},{g}\n" for i, g in enumerate(groups))
        (tmp_path / f"{name}.csv").write_text("id,label\n" + rows)
    assert main(["evaluate", str(tmp_path / "four.csv"), str(tmp_path / "y.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ACC 0.6000  NMI ")
    assert lines[1] == ("purity 0.9000 (each of the 4 groups takes its majority label; ACC matches groups to "
                        "labels one to one, so 2 groups stay unmatched)")
    assert main(["evaluate", str(tmp_path / "two.csv"), str(tmp_path / "y.npy")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["evaluate", str(tmp_path / "one.csv"), str(tmp_path / "y.npy")]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "purity 0.5000 (the one group takes its majority label; ACC matches groups to labels one to one, "
        "so 1 label stays unmatched)")


def test_contingency_table_counts_each_pair_with_zeros_for_missing_labels():
    rows, cols = np.array([0, 0, 3, 3, 3]), np.array([1, 1, 1, 0, 1])
    table = contingency_table(rows, cols, (4, 3))
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, [[0, 2, 0], [0, 0, 0], [0, 0, 0], [1, 2, 0]])
