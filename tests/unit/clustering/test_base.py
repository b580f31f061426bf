"""aecluster/clustering/_base.py: what every clustering estimator shares (fit, state, group-count
checks, nearest centre, the degenerate-split warning)."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from aecluster.clustering import KMeansGroups, check_group_counts, degenerate_warning, nearest_centre
from aecluster.clustering._base import STATE_DEFAULTS
from aecluster.errors import UserInputError


def test_degenerate_warning():
    assert degenerate_warning(np.array([0] * 99 + [1])) is not None
    assert degenerate_warning(np.array([0, 1] * 50)) is None



def test_degenerate_warning_counts_an_empty_group_as_the_smallest():
    message = degenerate_warning(np.zeros(10, dtype=np.int64), n_groups=2)
    assert message is not None and "0 of 10 images" in message
    assert degenerate_warning(np.array([0] * 19 + [1]), n_groups=2) is None  # 1 of 20 is 5%: not under it
    assert degenerate_warning(np.array([0, 1, 2] * 10), n_groups=3) is None


def test_nearest_centre_by_hand():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    codes = np.array([[1.0, 1.0], [9.0, -1.0], [-1.0, 8.0], [5.0, 0.0], [6.0, 6.0]])
    # [5, 0] lies 25 from centres 0 and 1, and [6, 6] 52 from centres 1 and 2: ties go to the lower index.
    np.testing.assert_array_equal(nearest_centre(codes, centres), [0, 1, 2, 0, 1])
    many = np.random.default_rng(0).normal(0, 5, (50, 2))
    by_hand = np.array([np.argmin([((code - centre) ** 2).sum() for centre in centres]) for code in many])
    np.testing.assert_array_equal(nearest_centre(many, centres, chunk=7), by_hand)


@pytest.mark.parametrize("method, n_clusters, fine, images, message", [
    ("dbscan", 2, 20, None, "unknown method 'dbscan'; choose one of kmeans, threshold, overcluster, scan"),
    ("threshold", 3, 20, None, "method 'threshold' splits two ways only, but 3 groups were asked for"),
    ("overcluster", 5, 4, None, "overcluster merges 4 fine groups, fewer than the 5 groups asked for"),
    ("kmeans", 3, 20, 2, "need at least 3 images to form 3 groups, found 2"),
    ("kmeans", 1, 20, 1, "need at least 2 images to form 1 groups, found 1"),
])
def test_group_counts_a_method_cannot_make_are_refused(method, n_clusters, fine, images, message):
    with pytest.raises(UserInputError) as raised:
        check_group_counts(method, n_clusters, fine, images)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("method, n_clusters, fine, images", [
    ("kmeans", 3, 20, 3), ("threshold", 2, 1, 2), ("overcluster", 5, 5, None), ("scan", 4, 1, 10)])
def test_group_counts_a_method_can_make_pass(method, n_clusters, fine, images):
    assert check_group_counts(method, n_clusters, fine, images) is None


def test_predict_before_fit_is_refused():
    with pytest.raises(NotFittedError):
        KMeansGroups().predict(np.zeros((2, 2)))


def test_state_holds_the_defaults_the_parameters_and_the_fitted_arrays():
    estimator = KMeansGroups(n_clusters=2, random_state=4).fit(np.array([[0.0], [0.2], [5.0], [5.2]]))
    state = estimator.get_state()
    assert {key: state[key] for key in STATE_DEFAULTS} == {"threshold": 0.0, "random_state": 4, "n_clusters": 2,
                                                           "fine_clusters": 20}
    assert state["method"] == "kmeans"
    np.testing.assert_allclose(np.sort(state["centres_"], axis=0), [[0.1], [5.1]])
    restored = KMeansGroups.from_state(state)
    np.testing.assert_array_equal(restored.predict([[1.0], [4.0]]), estimator.predict([[1.0], [4.0]]))
    del state["centres_"]
    with pytest.raises(KeyError):
        KMeansGroups.from_state(state)


def test_fit_labels_the_codes_it_saw_with_predict():
    codes = np.array([[0.0, 0.0], [0.1, 0.0], [4.0, 4.0], [4.1, 4.0]])
    estimator = KMeansGroups().fit(codes)
    np.testing.assert_array_equal(estimator.labels_, estimator.predict(codes))
    assert estimator.labels_[0] == estimator.labels_[1] != estimator.labels_[2] == estimator.labels_[3]


def test_codes_are_checked_as_scikit_learn_checks_them_and_fitted_in_float64():
    codes = np.array([[0.0, 0.0], [0.1, 0.0], [4.0, 4.0], [4.1, 4.0]], dtype=np.float32)
    estimator = KMeansGroups().fit(codes)
    assert estimator.n_features_in_ == 2 and estimator.centres_.dtype == np.float64
    np.testing.assert_array_equal(estimator.centres_, KMeansGroups().fit(codes.astype(np.float64)).centres_)
    with pytest.raises(ValueError, match="X has 3 features, but KMeansGroups is expecting 2 features"):
        estimator.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KMeansGroups().fit(np.where(codes == 0.1, np.nan, codes))
    with pytest.raises(UserInputError, match="need at least 2 images to form groups, found 1 sample"):
        KMeansGroups(n_clusters=1).fit(codes[:1])  # one code is refused before the parameters are checked
    with pytest.raises(ValueError, match="'n_clusters' parameter of KMeansGroups must be an int in the range"):
        KMeansGroups(n_clusters=1).fit(codes)


def test_a_restored_estimator_knows_the_width_of_its_codes():
    estimator = KMeansGroups().fit(np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [4.0, 4.0, 1.0], [4.1, 4.0, 1.0]]))
    restored = KMeansGroups.from_state(estimator.get_state())
    assert restored.n_features_in_ == 3
    with pytest.raises(ValueError, match="X has 2 features, but KMeansGroups is expecting 3 features"):
        restored.predict(np.zeros((1, 2)))
