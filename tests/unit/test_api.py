"""The scikit-learn style estimator."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

from aecluster import AEClusterer
from aecluster.clustering import KMeansGroups
from aecluster.encoder import ImageEncoder
from aecluster.errors import UserInputError
from aecluster.reduction import ReducerChain


def test_fit_trains_and_labels(two_groups):
    images, labels = two_groups
    estimator = AEClusterer(model="improved", reduce="pca:2", epochs=2, batch_size=16, random_state=0)
    predicted = estimator.fit_predict(images)
    assert predicted.shape == (64,) and set(predicted) == {0, 1}
    assert estimator.encode(images).shape == (64, estimator.encoder_.model_.code_dim)
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


def test_a_checkpoint_given_to_the_constructor_brings_its_recipe(two_groups, trained_checkpoint):
    estimator = AEClusterer(checkpoint=trained_checkpoint)
    assert estimator.resolved_recipe()["reduce"] == "pca:2"  # the file's; the model's would be "l2,pca:32"
    np.testing.assert_array_equal(estimator.fit_predict(two_groups[0]),
                                  AEClusterer.from_checkpoint(trained_checkpoint).fit_predict(two_groups[0]))


def test_a_threshold_that_its_method_ignores_is_a_warning(two_groups, trained_checkpoint):
    with pytest.warns(UserWarning, match="threshold=0.3 has no effect with method 'kmeans'"):
        AEClusterer.from_checkpoint(trained_checkpoint, threshold=0.3).fit(two_groups[0])


def test_a_saved_threshold_stays_with_its_method(tmp_path, two_groups, trained_checkpoint):
    images = two_groups[0]
    AEClusterer.from_checkpoint(trained_checkpoint, method="threshold", threshold=0.2).fit(images).save(
        tmp_path / "thr.pth")
    assert AEClusterer.from_checkpoint(tmp_path / "thr.pth").threshold == 0.2
    switched = AEClusterer.from_checkpoint(tmp_path / "thr.pth", method="kmeans")
    assert switched.threshold == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        switched.fit(images)


def test_params_and_pipeline(two_groups, trained_checkpoint):
    images = two_groups[0]
    estimator = AEClusterer(checkpoint=trained_checkpoint, reduce="pca:2", method="threshold")
    assert estimator.set_params(threshold=0.99) is estimator
    pipeline = Pipeline([("clusterer", estimator)])
    direct = AEClusterer(checkpoint=trained_checkpoint, reduce="pca:2", method="threshold", threshold=0.99)
    np.testing.assert_array_equal(pipeline.fit_predict(images), direct.fit_predict(images))
    unset = AEClusterer(checkpoint=trained_checkpoint, reduce="pca:2", method="threshold").fit_predict(images)
    assert not np.array_equal(direct.labels_, unset)


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


TABULAR = "feeds tabular data of a few float features; AEClusterer takes (N,32,32,3) or (N,3072) uint8 images"
# Checks whose point holds for images too: each has an image-based version in this file.
ON_IMAGES = {
    "check_fit_idempotent": "test_fit_is_idempotent_on_images",
    "check_dict_unchanged": "test_predict_transform_and_encode_leave_the_estimator_unchanged",
    "check_estimators_pickle": "test_fitted_estimator_pickles",
    "check_pipeline_consistency": "test_image_pipeline_of_the_steps",
    "check_fit_check_is_fitted": "test_fit_is_idempotent_on_images",
    "check_n_features_in": "test_fit_is_idempotent_on_images",
}
# scikit-learn's estimator checks that cannot apply to image input, and why (listed in docs/api.md).
NOT_APPLICABLE = {
    name: TABULAR + (f" (on images: {ON_IMAGES[name]})" if name in ON_IMAGES else "") for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_pipeline_consistency",
        "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
        "check_transformer_general", "check_clustering", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d", "check_fit2d_1feature",
        "check_estimators_empty_data_messages", "check_dtype_object", "check_complex_data",
    )
}
NOT_APPLICABLE.update({
    "check_estimators_nan_inf": "uint8 images cannot hold NaN or inf; float input is refused by dtype",
    "check_estimator_sparse_tag": "images are dense arrays; sparse input is refused by type",
    "check_estimator_sparse_array": "images are dense arrays; sparse input is refused by type",
    "check_estimator_sparse_matrix": "images are dense arrays; sparse input is refused by type",
    "check_fit2d_1sample": "one image is refused with 'found 1 images, expected at least 2'",
})
# The checks that need no input data, which every step of the pipeline passes.
WITHOUT_DATA = {"check_estimators_unfitted", "check_get_params_invariance", "check_set_params",
                "check_no_attributes_set_in_init", "check_parameters_default_constructible"}


def test_scikit_learn_estimator_checks(trained_checkpoint):
    results = check_estimator(AEClusterer(checkpoint=str(trained_checkpoint), reduce="pca:2"),
                              expected_failed_checks=NOT_APPLICABLE, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert WITHOUT_DATA <= passed


@pytest.fixture(scope="module")
def forty(two_groups):
    return two_groups[0][:40]


def test_image_pipeline_of_the_steps(forty):
    """The steps AEClusterer composes, as a scikit-learn Pipeline on uint8 images (a one-epoch model)."""
    pipeline = Pipeline([("encode", ImageEncoder(model="improved", epochs=1, batch_size=16)),
                         ("reduce", ReducerChain("pca:2")), ("cluster", KMeansGroups())])
    labels = pipeline.fit_predict(forty)
    assert labels.shape == (40,) and set(labels) <= {0, 1}
    np.testing.assert_array_equal(pipeline.predict(forty), labels)
    np.testing.assert_array_equal(pipeline.predict(forty.reshape(40, -1)), labels)
    encoder = pipeline.named_steps["encode"]
    assert encoder.n_features_in_ == 3072 and encoder.trained_recipe_["reduce"]
    assert pipeline[:-1].transform(forty[:3]).shape == (3, 2)


def test_image_encoder_loads_a_checkpoint(forty, trained_checkpoint):
    encoder = ImageEncoder(checkpoint=trained_checkpoint)
    with pytest.raises(NotFittedError):
        encoder.transform(forty)
    codes = encoder.fit_transform(forty)
    assert codes.shape == (40, encoder.model_.code_dim) and codes.dtype == np.float32
    assert encoder.checkpoint_info_["model"] == "improved"
    np.testing.assert_array_equal(AEClusterer.from_checkpoint(trained_checkpoint).fit(forty).encode(forty), codes)


@pytest.mark.parametrize("method", ["kmeans", "overcluster", "threshold", "scan"])
def test_predict_on_the_training_images_gives_labels_(two_groups, trained_checkpoint, method):
    images = two_groups[0]
    for reduce in ("pca:2", "l2,wpca:2"):
        estimator = AEClusterer.from_checkpoint(trained_checkpoint, method=method, reduce=reduce,
                                                fine_clusters=8).fit(images)
        np.testing.assert_array_equal(estimator.predict(images), estimator.labels_)


def test_fit_transform_encodes_once(monkeypatch, forty, trained_checkpoint):
    calls = []
    transform = ImageEncoder.transform
    monkeypatch.setattr(ImageEncoder, "transform", lambda self, X: calls.append(len(X)) or transform(self, X))
    estimator = AEClusterer.from_checkpoint(trained_checkpoint)
    reduced = estimator.fit_transform(forty)
    assert calls == [40]
    np.testing.assert_array_equal(reduced, estimator.transform(forty))


def test_fit_is_idempotent_on_images(two_groups, trained_checkpoint):
    images = two_groups[0]
    estimator = AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster", fine_clusters=8)
    with pytest.raises(NotFittedError):
        estimator.predict(images)
    first = estimator.fit(images)
    labels, reduced, label_map = first.labels_.copy(), first.transform(images), first.label_map_.copy()
    estimator.fit(images)
    np.testing.assert_array_equal(estimator.labels_, labels)
    np.testing.assert_array_equal(estimator.transform(images), reduced)
    np.testing.assert_array_equal(estimator.label_map_, label_map)
    assert estimator.n_features_in_ == images.reshape(len(images), -1).shape[1] == 3072


def test_predict_transform_and_encode_leave_the_estimator_unchanged(two_groups, trained_checkpoint):
    images = two_groups[0]
    estimator = AEClusterer.from_checkpoint(trained_checkpoint).fit(images)
    before = pickle.dumps(estimator.__dict__)
    for method in (estimator.predict, estimator.transform, estimator.encode):
        method(images[:10])
        assert pickle.dumps(estimator.__dict__) == before, method.__name__


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0)])
def test_random_state_may_be_none_or_a_random_state(forty, trained_checkpoint, random_state):
    estimator = AEClusterer.from_checkpoint(trained_checkpoint, random_state=random_state, verbose=0)
    assert estimator.fit_predict(forty).shape == (40,)
    assert estimator.get_params()["random_state"] is random_state


def test_naming_steps_change_only_the_naming(two_groups, trained_checkpoint):
    images, labels = two_groups
    estimator = AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster", fine_clusters=8).fit(images)
    fitted = {key: value for key, value in vars(estimator).items() if key not in ("label_map_", "labels_")}
    estimator.orient_to(images, labels)
    assert {key: value for key, value in vars(estimator).items() if key not in ("label_map_", "labels_")} == fitted
    groups = estimator.clusterer_
    merge = groups.merge_.copy()
    estimator.label_from_reference(images[:20], labels[:20] + 5)
    assert set(estimator.labels_) <= {5, 6} and estimator.clusterer_ is not groups
    np.testing.assert_array_equal(groups.merge_, merge)
    np.testing.assert_array_equal(estimator.predict(images), estimator.labels_)


def test_fitted_estimator_pickles(two_groups, trained_checkpoint):
    estimator = AEClusterer.from_checkpoint(trained_checkpoint).fit(two_groups[0])
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.predict(two_groups[0]), estimator.predict(two_groups[0]))


def test_readme_python_example_runs(tmp_path, monkeypatch, trained_checkpoint, two_groups):
    """The README's "Python API" example, run as written against a small sample."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "checkpoints").mkdir()
    np.save(tmp_path / "data" / "sample" / "trainX.npy", two_groups[0])
    (tmp_path / "checkpoints" / "best.pth").write_bytes(trained_checkpoint.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["labels"].shape == (64,) and namespace["codes"].shape[0] == 10
