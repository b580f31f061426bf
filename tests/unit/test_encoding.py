"""aecluster/encoding.py: recipes checked and completed, images -> codes, codes -> fitted groups,
and the validation score of a training history."""

import numpy as np
import pytest
import torch

from aecluster import encoding
from aecluster.encoding import RECIPE_DEFAULTS, check_recipe, encode_images, fit_groups, recipe_value_problem
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy
from aecluster.models import build_model
from tests.conftest import blobs, dark_and_light

RECIPE = {"reduce": "pca:2", "method": "kmeans"}


def test_validation_scores_encode_on_the_models_device_not_the_default(two_groups, trained_checkpoint, monkeypatch):
    import aecluster.devices
    from aecluster.checkpoint import load_model
    from aecluster.encoding import validation_scorer

    monkeypatch.setattr(aecluster.devices, "default_device", lambda: "meta")
    model, _ = load_model(trained_checkpoint)
    validation_scorer(*two_groups, RECIPE)(model)  # on the default (meta) device this raises
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("key, value", [
    ("reduce", "l2,pca:32"), ("reduce", "none"), ("method", "scan"), ("threshold", -1), ("threshold", 0.5),
    ("standardize", False), ("standardize", np.bool_(True)), ("n_clusters", 2), ("fine_clusters", 50)])
def test_a_good_recipe_value_has_no_problem(key, value):
    assert recipe_value_problem(key, value) is None


@pytest.mark.parametrize("key, value, problem", [
    ("reduce", 32, "32 is not a reducer chain"),
    ("method", "dbscan", "unknown method 'dbscan'; choose one of kmeans, threshold, overcluster, scan"),
    ("method", 3, "unknown method 3"),
    ("threshold", 1.5, "1.5 is not a cosine-similarity threshold (a number in [-1, 1])"),
    ("threshold", float("nan"), "nan is not a cosine-similarity threshold"),
    ("standardize", "yes", "'yes' is not true or false"),
    ("n_clusters", 1, "1 is not a whole number of at least 2"),
    ("fine_clusters", 2.5, "2.5 is not a whole number of at least 2"),
    ("n_clusters", True, "True is not a whole number of at least 2"),
])
def test_a_bad_recipe_value_is_described(key, value, problem):
    assert recipe_value_problem(key, value).startswith(problem)


def test_a_malformed_chain_raises_its_own_message():
    with pytest.raises(UserInputError, match="bad reducer 'svd:2'"):
        recipe_value_problem("reduce", "svd:2")


def test_check_recipe_completes_the_recipe_from_the_defaults():
    full = check_recipe({"reduce": "pca:8", "threshold": None, "notes": "kept out"}, "m.pth")
    assert full == {**RECIPE_DEFAULTS, "reduce": "pca:8"}
    assert RECIPE_DEFAULTS == {"reduce": "pca:50", "method": "kmeans", "threshold": 0.0, "standardize": True,
                               "n_clusters": 2, "fine_clusters": 20}


@pytest.mark.parametrize("recipe, code_dim, n_images, names, message", [
    ({"method": "dbscan"}, None, None, None, "m.pth: recipe 'method': unknown method 'dbscan'"),
    ({"threshold": 2}, None, None, {"threshold": "--threshold"}, "m.pth: --threshold: 2 is not a cosine"),
    ({"reduce": "pca:80"}, 64, None, None, "m.pth: recipe 'reduce': reduce 'pca:80': pca:80 asks for more dimensions"),
    ({"reduce": "pca:3,wpca:3"}, 64, 2, None, "wpca:3 asks for more dimensions than its 2-dimensional input"),
    ({"method": "threshold", "n_clusters": 3}, None, None, None, "m.pth: recipe: method 'threshold' splits two ways"),
    ({"n_clusters": 5}, None, 4, None, "m.pth: recipe: need at least 5 images to form 5 groups, found 4"),
])
def test_check_recipe_names_the_source_and_the_key_of_a_bad_value(recipe, code_dim, n_images, names, message):
    with pytest.raises(UserInputError) as raised:
        check_recipe(recipe, "m.pth", code_dim, n_images, names)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_codes_are_the_models_codes_of_pixels_scaled_to_minus_one_to_one():
    torch.manual_seed(0)
    model = build_model("improved", {"width_multiplier": 0.25}).eval()
    images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    codes = encode_images(model, images, batch_size=3, device="cpu")
    with torch.no_grad():  # all at once, scaled by hand
        expected = model.encode(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).numpy()
    assert codes.dtype == np.float32 and codes.shape == (7, model.code_dim)
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)


def test_fit_groups_fits_the_chain_and_the_clustering_on_the_codes():
    codes, labels = blobs(count=40, dim=6)
    reducer, clusterer = fit_groups(codes, "pca:2", "overcluster", n_clusters=2, fine_clusters=6)
    assert reducer.transform(codes).shape == (40, 2) and clusterer.method == "overcluster"
    assert clusterer.get_params()["fine_clusters"] == 6
    assert clustering_accuracy(clusterer.labels_, labels) == 1.0
    np.testing.assert_array_equal(clusterer.predict(reducer.transform(codes)), clusterer.labels_)


def test_the_validation_score_is_the_accuracy_of_groups_known_in_advance(trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.encoding import validation_scorer

    images, labels, accuracy = dark_and_light()
    model, _ = load_model(trained_checkpoint)
    assert validation_scorer(images, labels, RECIPE)(model) == accuracy
    assert validation_scorer(images, 1 - labels, {"method": "threshold", "reduce": "pca:2"})(model) == accuracy


@pytest.mark.parametrize(("method", "counts", "message"), [
    ("nope", {}, "unknown method 'nope'; choose one of kmeans, threshold, overcluster, scan"),
    ("threshold", {"n_clusters": 3}, "method 'threshold' splits two ways only, but 3 groups were asked for; "
                                     "use kmeans or overcluster"),
    ("overcluster", {"n_clusters": 6, "fine_clusters": 4}, "overcluster merges 4 fine groups, fewer than the 6 "
                                                           "groups asked for; raise the fine-cluster count"),
])
def test_fit_groups_refuses_a_method_before_fitting_the_reduction(monkeypatch, method, counts, message):
    fitted = []
    monkeypatch.setattr(encoding.ReducerChain, "fit_transform", lambda self, codes, y=None: fitted.append(codes))
    codes = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    with pytest.raises(UserInputError) as error:
        encoding.fit_groups(codes, "pca:2", method, **counts)
    assert str(error.value) == message
    assert fitted == []
