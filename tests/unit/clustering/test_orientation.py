"""aecluster/clustering/orientation.py: the colour prior that orders group labels."""

from aecluster.clustering import order_by_colour


def test_order_by_colour(two_groups):
    images, labels = two_groups
    assert (order_by_colour(1 - labels, images, 2)[1 - labels] == labels).all()
    assert (order_by_colour(labels, images, 2)[labels] == labels).all()

