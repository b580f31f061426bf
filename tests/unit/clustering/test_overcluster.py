"""aecluster/clustering/overcluster.py: KMeans into many small groups, merged by Ward's linkage."""

import numpy as np

from aecluster.clustering import OverclusterGroups

# Four tight clusters: two near x = 0 and two near x = 10, so the fine groups merge two by two.
FINE_CENTRES = np.array([[0.0, 0.0], [0.0, 1.5], [10.0, 0.0], [10.0, 1.5]])
CODES = np.repeat(FINE_CENTRES, 5, axis=0) + np.random.default_rng(0).normal(0, 0.05, (20, 2))
SIDE = (np.repeat(FINE_CENTRES, 5, axis=0)[:, 0] > 5).astype(int)  # the side of each code


def test_fine_groups_merge_into_the_groups_they_share():
    estimator = OverclusterGroups(n_clusters=2, fine_clusters=4).fit(CODES)
    assert estimator.centres_.shape == (4, 2) and sorted(estimator.merge_.tolist()) == [0, 0, 1, 1]
    assert len(set(estimator.fine_labels_)) == 4
    labels = estimator.labels_
    assert (labels == SIDE).all() or (labels == 1 - SIDE).all()
    np.testing.assert_array_equal(labels, estimator.merge_[estimator.fine_labels_])


def test_a_new_code_joins_the_merged_group_of_its_nearest_fine_centre():
    estimator = OverclusterGroups(n_clusters=2, fine_clusters=4).fit(CODES)
    new = np.array([[0.4, 2.0], [9.0, -1.0]])
    nearest = [int(np.argmin(((estimator.centres_ - code) ** 2).sum(axis=1))) for code in new]
    np.testing.assert_array_equal(estimator.predict(new), estimator.merge_[nearest])
    assert estimator.predict(new)[0] == estimator.labels_[0] != estimator.predict(new)[1]


def test_no_more_fine_groups_than_codes():
    estimator = OverclusterGroups(n_clusters=2, fine_clusters=20).fit(CODES[::4])
    assert estimator.centres_.shape == (5, 2)
