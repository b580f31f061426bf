"""aecluster/clustering/__init__.py: `make_clusterer` and `clusterer_from_state`, which build the
estimator of a recipe's method or of a saved state, and scikit-learn's own estimator checks of
every estimator of `ESTIMATORS`."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from aecluster.clustering import (
    ESTIMATORS,
    METHODS,
    KMeansGroups,
    OverclusterGroups,
    ScanGroups,
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


# scikit-learn's checks that set n_clusters=1, which the estimators refuse: they make at least two
# groups (RECIPE_BOUNDS["n_clusters"]). test_the_one_group_checks_hold_for_two_groups checks their
# points with two groups.
ONE_GROUP = "sets n_clusters=1; the estimators make at least 2 groups (RECIPE_BOUNDS) and refuse 1 as a parameter"
ONE_GROUP_CHECKS = ("check_dont_overwrite_parameters", "check_methods_subset_invariance", "check_fit2d_1feature",
                    "check_fit2d_predict1d")
# The checks that fit ScanGroups on valid codes: ten heads trained for 600 steps make each take
# from half a second to two seconds, 20 s in all, so they are slow; its other checks are not.
SCAN_FITS = {
    "check_clustering", "check_dict_unchanged", "check_dtype_object", "check_estimators_dtypes",
    "check_estimators_fit_returns_self", "check_estimators_nan_inf", "check_estimators_overwrite_params",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_n_features_in", "check_n_features_in_after_fitting", "check_pipeline_consistency",
    "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
}


def expected_failed_checks(estimator):
    return {name: ONE_GROUP for name in ONE_GROUP_CHECKS} if "n_clusters" in estimator.get_params() else {}


def slow_where(parametrize, is_slow):
    """`parametrize_with_checks`'s parametrization with the (estimator, check) pairs that
    `is_slow` picks marked slow."""
    names, params = parametrize.args
    marked = []
    for param in params:
        values, marks = (param.values, list(param.marks)) if hasattr(param, "marks") else (param, [])
        slow = [pytest.mark.slow] if is_slow(*values) else []
        marked.append(pytest.param(*values, marks=marks + slow))
    return pytest.mark.parametrize(names, marked, **parametrize.kwargs)


@slow_where(parametrize_with_checks([estimator() for estimator in ESTIMATORS.values()],
                                    expected_failed_checks=expected_failed_checks, xfail_strict=True),
            lambda estimator, check: isinstance(estimator, ScanGroups) and check.func.__name__ in SCAN_FITS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [KMeansGroups(), OverclusterGroups(fine_clusters=6),
                                       pytest.param(ScanGroups(), marks=pytest.mark.slow)],
                         ids=lambda estimator: type(estimator).__name__)
def test_the_one_group_checks_hold_for_two_groups(estimator):
    codes, labels = blobs()
    before = dict(vars(estimator))
    estimator.fit(codes)
    # check_dont_overwrite_parameters: fit changes no parameter and adds only attributes ending in "_".
    assert {key: vars(estimator)[key] for key in before} == before
    assert all(key.endswith("_") for key in set(vars(estimator)) - set(before))
    # check_methods_subset_invariance: codes predicted in batches join the groups they join all at once.
    batches = np.concatenate([estimator.predict(batch) for batch in np.array_split(codes, 7)])
    np.testing.assert_array_equal(batches, estimator.predict(codes))
    # check_fit2d_predict1d: a single code given as a 1-D array is refused.
    with pytest.raises(ValueError, match="Reshape your data"):
        estimator.predict(codes[0])
    # check_fit2d_1feature: codes of one dimension are grouped.
    one = clone(estimator).fit(codes[:, :1])
    assert one.n_features_in_ == 1
    assert (one.labels_ == labels).all() or (one.labels_ == 1 - labels).all()
