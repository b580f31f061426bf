"""aecluster/clustering/orientation.py: the colour prior that orders group labels."""

import numpy as np

from aecluster.clustering import natural_colour_score, order_by_colour


def test_order_by_colour(two_groups):
    images, labels = two_groups
    assert (order_by_colour(1 - labels, images, 2)[1 - labels] == labels).all()
    assert (order_by_colour(labels, images, 2)[labels] == labels).all()


def solid(*rgb):
    """A solid-colour 32 x 32 image."""
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (32, 32, 3))


def test_the_colour_score_is_green_plus_blue_minus_twice_red_over_255():
    images = np.stack([solid(255, 0, 0), solid(0, 255, 255), solid(10, 20, 30), solid(0, 0, 0), solid(100, 50, 0)])
    expected = [-2.0, 2.0, (20 + 30 - 20) / 255, 0.0, (50 - 200) / 255]
    np.testing.assert_allclose(natural_colour_score(images, batch_size=2), expected, rtol=1e-6)


def test_groups_are_ranked_by_their_mean_score_and_empty_groups_come_last():
    images = np.stack([solid(0, 200, 0), solid(200, 0, 0), solid(0, 0, 50), solid(90, 90, 90)])
    # Image scores 200/255, -400/255, 50/255 and 0. Group 0 (images 0, 3) averages 100/255, group 1
    # (image 1) -400/255, group 3 (image 2) 50/255, group 2 is empty: ascending, group 1 gets label 0,
    # group 3 label 1, group 0 label 2 and the empty group 2 label 3.
    groups = np.array([0, 1, 3, 0])
    np.testing.assert_array_equal(order_by_colour(groups, images, 4), [2, 0, 3, 1])


def test_groups_of_equal_scores_keep_their_order():
    images = np.stack([solid(0, 100, 0), solid(0, 0, 100), solid(255, 0, 0)])  # scores 100/255 twice, then -2
    np.testing.assert_array_equal(order_by_colour(np.array([0, 1, 2]), images, 3), [1, 2, 0])


def test_a_single_group_keeps_its_number():
    images = np.stack([solid(0, 200, 0), solid(200, 0, 0)])
    np.testing.assert_array_equal(order_by_colour(np.array([1, 1]), images, 3), [0, 1, 2])
