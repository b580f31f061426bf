"""aecluster/clustering/__init__.py: `make_clusterer` and `clusterer_from_state`, which build the
estimator of a recipe's method or of a saved state."""

import numpy as np
import pytest

from aecluster.clustering import (
    ESTIMATORS,
    METHODS,
    KMeansGroups,
    OverclusterGroups,
    clusterer_from_state,
    make_clusterer,
)
from aecluster.errors import UserInputError
from tests.conftest import blobs


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_both_methods_separate_blobs(method):
    codes, labels = blobs()
    groups = make_clusterer(method).fit(codes).labels_
    assert set(groups) == {0, 1}
    assert (groups == labels).all() or (groups == 1 - labels).all()


def test_unknown_method_and_too_few():
    with pytest.raises(UserInputError, match="unknown method"):
        make_clusterer("dbscan")
    with pytest.raises(UserInputError, match="at least 2 images"):
        KMeansGroups().fit(np.zeros((1, 2)))


def test_every_method_has_its_estimator():
    assert sorted(ESTIMATORS) == sorted(METHODS)
    assert all(estimator.method == method for method, estimator in ESTIMATORS.items())


@pytest.mark.parametrize("method, params", [
    ("kmeans", {"n_clusters": 3, "random_state": 7}),
    ("threshold", {"threshold": 0.25}),
    ("overcluster", {"n_clusters": 3, "fine_clusters": 9, "random_state": 7}),
    ("scan", {"n_clusters": 3, "random_state": 7}),
])
def test_an_estimator_takes_only_the_recipe_values_of_its_method(method, params):
    values = {"n_clusters": 3, "random_state": 7, "fine_clusters": 9, "threshold": 0.25}
    if method == "threshold":
        values["n_clusters"] = 2
    estimator = make_clusterer(method, **values)
    assert type(estimator) is ESTIMATORS[method] and estimator.get_params() == params


def test_make_clusterer_checks_the_group_counts_first():
    with pytest.raises(UserInputError, match="splits two ways only"):
        make_clusterer("threshold", n_clusters=3)
    with pytest.raises(UserInputError, match="overcluster merges 2 fine groups"):
        make_clusterer("overcluster", n_clusters=3, fine_clusters=2)


def test_a_saved_state_rebuilds_the_fitted_estimator_of_its_method():
    codes, _ = blobs()
    for method in ("kmeans", "threshold", "overcluster"):
        fitted = make_clusterer(method, fine_clusters=6).fit(codes)
        rebuilt = clusterer_from_state(fitted.get_state())
        assert type(rebuilt) is type(fitted)
        np.testing.assert_array_equal(rebuilt.predict(codes), fitted.labels_)


def test_a_saved_state_of_an_unknown_method_or_impossible_counts_is_refused():
    with pytest.raises(UserInputError, match="unknown method 'dbscan'"):
        clusterer_from_state({"method": "dbscan"})
    with pytest.raises(UserInputError, match="splits two ways only"):
        clusterer_from_state({"method": "threshold", "n_clusters": 3, "threshold": 0.0,
                              "center_": np.zeros(2), "direction_": np.ones(2)})


def test_a_saved_overcluster_without_fine_clusters_is_missing_a_value_not_two_fine_groups():
    codes, _ = blobs()
    state = OverclusterGroups(n_clusters=3, fine_clusters=6).fit(codes).get_state()
    assert state["fine_clusters"] == 6
    del state["fine_clusters"]
    # A missing value is a KeyError (as clusterer_from_state documents); the check of the group
    # counts reads the saved layout's default of 20 fine groups, which three groups fit.
    with pytest.raises(KeyError, match="fine_clusters"):
        clusterer_from_state(state)
