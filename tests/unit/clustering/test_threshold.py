"""aecluster/clustering/threshold.py: two groups split by cosine similarity to the codes' first axis."""

import numpy as np

from aecluster.clustering import ThresholdGroups
from tests.conftest import blobs


def test_threshold_moves_the_split():
    codes, _ = blobs()
    loose = ThresholdGroups(threshold=-1.0).fit(codes).labels_
    assert loose.sum() == len(codes)



def test_the_direction_is_the_first_axis_signed_so_its_largest_entry_is_positive():
    # Codes spread along -x (so that an unsigned axis could point either way) and a little along y.
    codes = np.array([[-4.0, 0.2], [-2.0, -0.2], [2.0, 0.2], [4.0, -0.2]]) + [1.0, 3.0]
    estimator = ThresholdGroups().fit(codes)
    np.testing.assert_allclose(estimator.center_, [1.0, 3.0])
    centred = codes - codes.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # the scatter matrix's eigenvectors, largest last
    expected = vectors[:, -1] * np.sign(vectors[np.argmax(np.abs(vectors[:, -1])), -1])
    np.testing.assert_allclose(estimator.direction_, expected, atol=1e-12)
    assert estimator.direction_[0] > 0.99
    np.testing.assert_array_equal(estimator.labels_, [0, 0, 1, 1])


def test_a_code_is_in_group_1_when_its_cosine_to_the_direction_exceeds_the_threshold():
    codes = np.array([[-4.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    estimator = ThresholdGroups(threshold=0.5).fit(codes)
    new = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, -1.5], [1.0, -2.0], [-1.0, 0.0], [0.0, 0.0]])
    cosines = new[:, 0] / np.maximum(np.linalg.norm(new, axis=1), 1e-12)  # direction (1, 0), centre 0
    np.testing.assert_array_equal(estimator.predict(new), (cosines > 0.5).astype(int))
    np.testing.assert_array_equal(estimator.predict(new), [1, 0, 1, 0, 0, 0])  # cosines .71 .45 .55 .45 -1 0
