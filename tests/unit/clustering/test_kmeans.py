"""aecluster/clustering/kmeans.py: KMeans into K groups; a new code joins its nearest centre."""

import numpy as np

from aecluster.clustering import KMeansGroups

# Three tight clusters of four codes around known centres.
CENTRES = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
OFFSETS = np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]])
CODES = (CENTRES[:, None, :] + OFFSETS[None]).reshape(-1, 2)


def test_the_centres_are_the_means_of_the_groups():
    estimator = KMeansGroups(n_clusters=3).fit(CODES)
    found = estimator.centres_[np.lexsort(estimator.centres_.T[::-1])]
    expected = CENTRES[np.lexsort(CENTRES.T[::-1])]  # each cluster's offsets sum to zero
    np.testing.assert_allclose(found, expected, atol=1e-12)
    groups = estimator.labels_.reshape(3, 4)
    assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 3


def test_new_codes_join_the_group_of_their_nearest_centre():
    estimator = KMeansGroups(n_clusters=3).fit(CODES)
    group_of = {tuple(centre): estimator.predict(centre[None])[0] for centre in CENTRES}
    new = np.array([[2.0, 0.5], [4.0, 0.5], [0.5, 4.0], [-3.0, -3.0]])
    expected = [group_of[(0.0, 0.0)], group_of[(6.0, 0.0)], group_of[(0.0, 6.0)], group_of[(0.0, 0.0)]]
    np.testing.assert_array_equal(estimator.predict(new), expected)


def test_the_same_seed_gives_the_same_centres():
    codes = np.random.default_rng(0).normal(size=(40, 3))
    first, second = (KMeansGroups(n_clusters=4, random_state=5).fit(codes) for _ in range(2))
    np.testing.assert_array_equal(first.centres_, second.centres_)
    assert first.get_params() == {"n_clusters": 4, "random_state": 5}
