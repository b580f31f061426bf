"""aecluster/naming.py: naming fitted groups from labelled reference images (orienting K groups'
labels, or naming an over-clustering's fine groups)."""

import numpy as np
import pytest

from aecluster.clustering import KMeansGroups, OverclusterGroups
from aecluster.errors import UserInputError
from aecluster.naming import name_fine_groups, name_from_reference, orient, orientable_labels

IMAGES = np.zeros((6, 32, 32, 3), dtype=np.uint8)  # what `place` is given; the groups below are fixed


def placed(groups):
    """A `place` callable that puts the reference images in `groups`, whatever they are."""
    return lambda images: np.asarray(groups)[: len(images)]


def test_orientable_labels_are_integers_in_zero_to_k_less_one():
    np.testing.assert_array_equal(orientable_labels([0, 2, 1.0], 3, "y"), [0, 2, 1])
    with pytest.raises(UserInputError, match=r"y: labels must lie in 0\.\.1 to orient 2 groups, found 0\.\.2"):
        orientable_labels([0, 1, 2], 2, "y")
    with pytest.raises(UserInputError, match="y: found 2 labels, expected 3"):
        orientable_labels([0, 1], 2, "y", n_images=3)
    with pytest.raises(UserInputError, match="y: found"):
        orientable_labels([0.5, 1], 2, "y")


def test_orient_gives_each_group_the_label_most_of_its_reference_images_have():
    groups = [0, 0, 1, 1, 2, 2]
    truth = [2, 2, 0, 0, 1, 0]  # group 0 holds label 2, group 1 label 0, group 2 one each of 1 and 0
    np.testing.assert_array_equal(orient(np.arange(3), placed(groups), IMAGES, truth), [2, 0, 1])


def test_orient_keeps_the_current_labels_unless_a_permutation_matches_better():
    groups = [0, 0, 1, 1]
    truth = [0, 1, 0, 1]  # each group holds one of each label: 2 of 4 right either way, a tie
    current = np.array([1, 0])
    assert orient(current, placed(groups), IMAGES[:4], truth) is current
    np.testing.assert_array_equal(orient(np.array([1, 0]), placed([0, 0, 0, 1, 1, 1]), IMAGES, [0, 0, 1, 1, 1, 1]),
                                  [0, 1])


def test_orient_only_permutes_labels_zero_to_k_less_one():
    with pytest.raises(UserInputError, match=r"the groups carry the labels \[5, 6\]"):
        orient(np.array([5, 6]), placed([0, 1]), IMAGES[:2], [0, 1])
    with pytest.raises(UserInputError, match="X_reference: found"):
        orient(np.arange(2), placed([0, 1]), np.zeros((2, 8, 8, 3), dtype=np.uint8), [0, 1])


def fine_groups():
    """An over-clustering of four fine centres on a line, two near 0 and two near 10, fitted on
    codes of each fine group in turn."""
    clusterer = OverclusterGroups(n_clusters=2, fine_clusters=4)
    clusterer.centres_ = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    clusterer.merge_ = np.array([0, 0, 1, 1])
    clusterer.fine_labels_ = np.array([0, 1, 2, 3, 3])
    return clusterer


def test_each_fine_group_gets_the_majority_label_of_its_reference_codes_or_its_nearest_named_neighbours():
    clusterer = fine_groups()
    codes = np.array([[0.1, 0.0], [-0.2, 0.1], [0.0, 0.3], [9.8, 0.0], [10.1, -0.1]])
    labels = np.array([7, 7, 3, 3, 3])  # centre 0: two 7s and a 3; centre 2: two 3s; centres 1 and 3: none
    classes = name_fine_groups(clusterer, codes, labels)
    np.testing.assert_array_equal(classes, [3, 7])
    # centre 0 -> 7 (index 1), centre 1 takes centre 0's, centre 2 -> 3 (index 0), centre 3 takes centre 2's.
    np.testing.assert_array_equal(clusterer.merge_, [1, 1, 0, 0])
    np.testing.assert_array_equal(clusterer.labels_, [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(classes[clusterer.predict(np.array([[0.6, 0.0], [12.0, 1.0]]))], [7, 3])


def test_a_tie_of_labels_in_a_fine_group_goes_to_the_smaller_label():
    clusterer = fine_groups()
    name_fine_groups(clusterer, np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0]]), np.array([9, 4, 9]))
    assert clusterer.merge_[0] == 0  # labels 4 and 9 once each: 4, the smaller


def test_naming_needs_two_classes():
    with pytest.raises(UserInputError, match=r"the reference labels hold one class \(5\)"):
        name_fine_groups(fine_groups(), np.zeros((3, 2)), np.array([5, 5, 5]))


def test_naming_from_reference_images_needs_an_over_clustering():
    with pytest.raises(UserInputError, match="needs method 'overcluster' .* not 'kmeans'"):
        name_from_reference(KMeansGroups(), lambda images: np.zeros((len(images), 2)), IMAGES, [0, 1, 0, 1, 0, 1])
    clusterer = fine_groups()

    def reduce(images):  # fine groups 0, 0, 2, 2 (a tie goes to the lower index), 3 and 1
        return np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.5, 0.0], [11.0, 0.0], [1.0, 0.0]])

    np.testing.assert_array_equal(name_from_reference(clusterer, reduce, IMAGES, [4, 4, 8, 8, 8, 4]), [4, 8])
    np.testing.assert_array_equal(clusterer.merge_, [0, 0, 1, 1])
