"""aecluster/clustering/scan.py: SCAN's clustering head over fixed codes."""


import numpy as np
import pytest
import torch

from aecluster.clustering import KMeansGroups, ScanGroups, clusterer_from_state, nearest_others
from aecluster.metrics import clustering_accuracy
from aecluster.selection import modularity, neighbour_graph
from tests.conftest import two_bars


def test_scan_keeps_neighbourhoods_whole_where_kmeans_cuts_across():
    codes, labels = two_bars()
    assert clustering_accuracy(KMeansGroups().fit(codes).labels_, labels) < 0.7
    scan = ScanGroups().fit(codes)
    assert clustering_accuracy(scan.labels_, labels) >= 0.95
    graph = neighbour_graph(codes - codes.mean(axis=0))
    assert modularity(graph, scan.labels_) > modularity(graph, KMeansGroups().fit(codes).labels_)


def test_scan_state_places_new_codes_as_the_fitted_head_does():
    codes, labels = two_bars()
    scan = ScanGroups(random_state=3).fit(codes)
    state = scan.get_state()
    assert state["weights_"].shape == (2, 2) and state["bias_"].shape == (2,)
    restored = clusterer_from_state(state)
    np.testing.assert_array_equal(restored.predict(codes), scan.labels_)
    new_codes, new_labels = two_bars(100, seed=1)
    assert clustering_accuracy(restored.predict(new_codes), new_labels) >= 0.95


def test_scan_is_the_same_whatever_the_thread_count_and_restores_it():

    codes, _ = two_bars(200)
    before = torch.get_num_threads()
    heads = []
    for threads in (2, 1):
        torch.set_num_threads(threads)
        heads.append(ScanGroups().fit(codes).get_state())
        assert torch.get_num_threads() == threads
    torch.set_num_threads(before)
    np.testing.assert_array_equal(heads[0]["weights_"], heads[1]["weights_"])


def test_scan_gives_directions_without_spread_no_weight():
    """Fewer codes than PCA components: the last components are float noise, which a head
    standardised on them would magnify into the labels of new codes."""
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(0, 1, (10, 3)), rng.normal(0, 1e-9, (10, 1))], axis=1)
    scan = ScanGroups().fit(codes)
    assert np.all(scan.weights_[:, 3] == 0) and np.abs(scan.weights_).max() < 1e3
    same = ScanGroups().fit(np.ones((6, 4)))  # identical codes: no direction has spread
    assert np.all(same.weights_ == 0) and len(set(same.labels_)) == 1


def test_scan_accepts_a_random_state_that_is_not_an_int():
    codes, _ = two_bars(100)
    heads = [ScanGroups(random_state=np.random.RandomState(5)).fit(codes).weights_ for _ in range(2)]
    np.testing.assert_array_equal(heads[0], heads[1])
    assert set(ScanGroups(random_state=None).fit(codes).labels_) == {0, 1}


def test_scan_finds_three_groups():
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    codes = np.eye(3)[labels] * 4 + rng.normal(0, 0.3, (300, 3))
    scan = ScanGroups(n_clusters=3).fit(codes)
    assert clustering_accuracy(scan.labels_, labels) >= 0.95
    assert scan.get_state()["weights_"].shape == (3, 3)


def test_scan_pairs_each_code_with_other_codes_never_itself():
    from aecluster.clustering import nearest_others

    points = np.repeat(np.array([[3.0, 0.0], [0.0, 3.0]]), 3, axis=0)  # two sets of 3 identical codes
    neighbours = nearest_others(points, 2)
    assert all(set(row) == set(range(3)) - {i} for i, row in enumerate(neighbours[:3]))
    assert all(set(row) == set(range(3, 6)) - {i} for i, row in enumerate(neighbours[3:], start=3))


def test_a_new_code_joins_the_group_its_head_scores_highest():
    head = ScanGroups.from_state({"method": "scan", "n_clusters": 3, "random_state": 0,
                                  "weights_": np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
                                  "bias_": np.array([0.0, 0.5, 0.0])})
    codes = np.array([[2.0, 1.0], [1.0, 1.0], [-1.0, -0.5], [0.0, 0.0]])
    # Scores: (2, 1.5, -3), (1, 1.5, -2), (-1, 0, 1.5), (0, 0.5, 0).
    np.testing.assert_array_equal(head.predict(codes), [0, 1, 2, 1])


@pytest.mark.parametrize("weights, bias", [
    (np.zeros((3, 2)), np.zeros(2)), (np.zeros((2, 2)), np.zeros(3)), (np.zeros(2), np.zeros(2))])
def test_a_saved_head_that_cannot_make_its_groups_is_refused(weights, bias):
    with pytest.raises(ValueError, match="cannot make 2 groups"):
        ScanGroups.from_state({"n_clusters": 2, "random_state": 0, "weights_": weights, "bias_": bias})


def test_the_nearest_other_points_by_hand():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_array_equal(nearest_others(points, 2), [[1, 2], [0, 2], [1, 0], [2, 1]])
