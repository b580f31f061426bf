"""aecluster/clustering/__init__.py: `make_clusterer` and `clusterer_from_state`, which build the
estimator of a recipe's method or of a saved state."""

import numpy as np
import pytest

from aecluster.clustering import KMeansGroups, make_clusterer
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

