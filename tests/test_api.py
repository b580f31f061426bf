"""The scikit-learn style estimator."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from aecluster import AEClusterer
from aecluster.errors import UserInputError


def test_fit_trains_and_labels(two_groups):
    images, labels = two_groups
    estimator = AEClusterer(model="improved", reduce="pca:2", epochs=2, batch_size=16, random_state=0)
    predicted = estimator.fit_predict(images)
    assert predicted.shape == (64,) and set(predicted) <= {0, 1}
    assert estimator.encode(images).shape == (64, 128)
    assert estimator.transform(images[:5]).shape == (5, 2)
    np.testing.assert_array_equal(estimator.predict(images), estimator.labels_)


def test_from_checkpoint_uses_recipe_and_accepts_flat(two_groups, trained_checkpoint):
    images, _ = two_groups
    estimator = AEClusterer.from_checkpoint(trained_checkpoint)
    assert estimator.get_params()["reduce"] == "pca:2"
    first = estimator.fit_predict(images)
    second = clone(estimator).fit_predict(images.reshape(64, -1))
    np.testing.assert_array_equal(first, second)


def test_orient_to_flips_labels(two_groups, trained_checkpoint):
    images, labels = two_groups
    estimator = AEClusterer.from_checkpoint(trained_checkpoint).fit(images)
    before = estimator.labels_.copy()
    target = before if np.mean(before == labels) < 0.5 else 1 - before
    estimator.orient_to(images, 1 - target)
    np.testing.assert_array_equal(estimator.labels_, 1 - target)
    np.testing.assert_array_equal(estimator.predict(images), estimator.labels_)


def test_params_and_pipeline(two_groups, trained_checkpoint):
    estimator = AEClusterer(checkpoint=trained_checkpoint, reduce="pca:2", method="threshold")
    estimator.set_params(threshold=0.2)
    assert estimator.get_params()["threshold"] == 0.2
    pipeline = Pipeline([("clusterer", estimator)])
    assert pipeline.fit_predict(two_groups[0]).shape == (64,)


def test_degenerate_clustering_warns(trained_checkpoint):
    images = np.zeros((40, 32, 32, 3), np.uint8)
    images[0] = 255
    with pytest.warns(UserWarning, match="degenerate clustering"):
        AEClusterer.from_checkpoint(trained_checkpoint).fit(images)


def test_bad_input(trained_checkpoint):
    with pytest.raises(UserInputError, match="expected shape"):
        AEClusterer.from_checkpoint(trained_checkpoint).fit(np.zeros((5, 10), np.uint8))
    with pytest.raises(UserInputError, match="at least 2"):
        AEClusterer.from_checkpoint(trained_checkpoint).fit(np.zeros((1, 32, 32, 3), np.uint8))
