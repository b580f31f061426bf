"""aecluster/plots/compute.py: the numbers behind the report figures (reconstruction errors,
embeddings, confusion counts, galleries' typical and borderline images)."""

import json

import numpy as np
import pytest

from aecluster.checkpoint import load_model
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy
from aecluster.plots import compute
from aecluster.plots.compute import gallery_groups, pixel_codes
from aecluster.reduction import REDUCER_NAMES, parse_chain
from tests.conftest import PLANTED, dark_and_light, expected_order, four_groups_against_three_labels


def test_reconstruction_mse_is_batch_size_independent(image_files, trained_checkpoint):
    import torch

    from aecluster.data import to_tensor

    model, _ = load_model(trained_checkpoint)
    images = np.load(image_files[0], mmap_mode="r")
    with torch.inference_mode():
        inputs = to_tensor(np.asarray(images))
        expected = float(((model.reconstruct(inputs) - inputs) ** 2).mean())
    for batch_size in (7, 64, 512):
        assert compute.reconstruction_mse(model, images, batch_size, "cpu") == pytest.approx(expected, rel=1e-4)


def test_embedding_accuracy_of_groups_known_in_advance(trained_checkpoint):
    """Dark and light images, which the checkpoint's recipe (pca:2, kmeans) puts in two groups; the
    labels' best matching to those groups scores 7/8, computed when the images were made."""
    images, labels, accuracy = dark_and_light()
    panels = compute.embed_checkpoints(images, labels, [trained_checkpoint, trained_checkpoint])
    assert [panel.accuracy for panel in panels] == [accuracy, accuracy]
    assert [panel.source for panel in panels] == [trained_checkpoint.name] * 2 and panels[0].model == "improved"
    assert panels[0].coords.shape == (64, 2) and np.isfinite(panels[0].coords).all()


@pytest.mark.parametrize("name", REDUCER_NAMES)
def test_every_reducer_chain_has_an_axis_title(name):
    links = parse_chain(f"pca:4,{name}" if name == "l2" else f"{name}:2")
    assert compute.chain_title(links) == {"pca": "PCA", "wpca": "whitened PCA", "kpca": "kernel PCA", "tsne": "t-SNE",
                                          "umap": "UMAP", "l2": "unit-length PCA"}[name]


def test_confusion_of_four_groups_against_three_labels():
    predicted, truth = four_groups_against_three_labels()
    table = compute.confusion_counts(predicted, truth)
    assert table.labels == [0, 1, 2] and table.groups == [2, 0, 1, 3] and table.matched == 3
    np.testing.assert_array_equal(table.counts, [[6, 0, 0, 4], [0, 8, 2, 0], [0, 0, 10, 0]])
    assert table.matching == {2: 0, 0: 1, 1: 2}
    assert table.accuracy == clustering_accuracy(predicted, truth) == 24 / 30


def test_confusion_of_two_groups_against_three_labels():
    truth = np.repeat([0, 1, 2], 10)
    predicted = np.repeat([1, 0, 0], 10)
    table = compute.confusion_counts(predicted, truth)
    assert table.counts.shape == (3, 2) and table.matched == 2 and table.labels[2] not in table.matching.values()
    assert table.accuracy == clustering_accuracy(predicted, truth) == 20 / 30


def test_typical_and_borderline_images_of_known_groups(families):
    images, labels = families
    groups = gallery_groups(pixel_codes(images), labels, per_group=5)
    typical, borderline = expected_order(images.reshape(len(images), -1) / 255.0, labels)
    assert [group.label for group in groups] == [0, 1, 2]
    assert [group.size for group in groups] == [30, 30, 30]
    for group in groups:
        assert set(labels[group.typical]) == {group.label} and set(labels[group.borderline]) == {group.label}
        assert group.typical.tolist() == typical[group.label][:5]
        assert group.borderline.tolist() == borderline[group.label][:5]
        assert not set(group.typical) & set(PLANTED)
    # The planted images head their group's borderline list, each beside the family it was pulled to.
    assert groups[0].borderline[:2].tolist() == [0, 3] and groups[0].neighbours[:2].tolist() == [1, 2]
    assert groups[1].borderline[0] == 1 and groups[1].neighbours[0] == 2


def test_any_number_of_groups_small_groups_and_one_group(families):
    images, labels = families
    split = np.where(np.arange(len(labels)) < 4, labels + 10, labels)  # groups 10, 11, 12 of 2, 1, 1 images
    groups = gallery_groups(pixel_codes(images), split, per_group=3)
    assert [(group.label, group.size) for group in groups] == [(0, 28), (1, 29), (2, 29), (10, 2), (11, 1), (12, 1)]
    assert len(groups[4].typical) == len(groups[4].borderline) == 1
    only = gallery_groups(pixel_codes(images), np.full(len(labels), 7), per_group=4)
    assert len(only) == 1 and only[0].size == 90 and len(only[0].typical) == 4 and len(only[0].borderline) == 0



def test_reconstructions_are_uint8_images_with_each_ones_error(trained_checkpoint):
    import torch

    model, _ = load_model(trained_checkpoint)
    images = dark_and_light(4)[0]
    pixels, errors = compute.reconstruct_images(model, images)
    with torch.no_grad():  # by hand: pixels to [-1, 1], the decoder's image, back to 0..255
        inputs = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 127.5 - 1
        outputs = model.double().reconstruct(inputs)
    np.testing.assert_allclose(errors, ((outputs - inputs) ** 2).mean(dim=(1, 2, 3)).numpy(), rtol=1e-4)
    expected = ((outputs + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).numpy()
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 32, 32, 3)
    assert np.abs(pixels.astype(int) - expected).max() <= 1  # float32 against float64 rounding


def test_a_model_without_decoder_cannot_draw_reconstructions(trained_checkpoint):
    model, _ = load_model(trained_checkpoint)
    model.decoder = None
    with pytest.raises(UserInputError, match="m.pth: checkpoint has no decoder"):
        compute.require_decoder(model, "m.pth")


@pytest.mark.parametrize("mse, accuracy", [
    ([0.3, 0.2, 0.1], [0.6, 0.7, 0.9]), ([0.1, 0.5, 0.2, 0.4], [0.9, 0.5, 0.6, 0.8])])
def test_the_correlation_of_mse_and_accuracy_is_pearsons(mse, accuracy):
    scores = [compute.SnapshotScore(f"s{i}", i, m, a) for i, (m, a) in enumerate(zip(mse, accuracy, strict=True))]
    x, y = np.array(mse) - np.mean(mse), np.array(accuracy) - np.mean(accuracy)
    expected = (x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum())
    assert compute.mse_accuracy_correlation(scores) == pytest.approx(expected)


def test_the_correlation_is_undefined_for_one_snapshot_or_a_constant_series():
    one = [compute.SnapshotScore("s", 1, 0.1, 0.9)]
    flat = [compute.SnapshotScore("s", e, 0.1 * e, 0.9) for e in (1, 2, 3)]
    assert np.isnan(compute.mse_accuracy_correlation(one)) and np.isnan(compute.mse_accuracy_correlation(flat))


def test_snapshots_are_found_in_step_order(tmp_path):
    for step in (10, 2, 300, 12_000_000):
        (tmp_path / f"step_{step:07d}.pth").write_bytes(b"")
    (tmp_path / "history.json").write_text("{}")
    assert [path.name for path in compute.find_snapshots(tmp_path)] == [
        "step_0000002.pth", "step_0000010.pth", "step_0000300.pth", "step_12000000.pth"]


def test_a_run_folder_that_is_not_one_is_named(tmp_path):
    with pytest.raises(UserInputError, match="no such run folder"):
        compute.find_snapshots(tmp_path / "none")
    with pytest.raises(UserInputError, match="no step_.*pth snapshots"):
        compute.find_snapshots(tmp_path)
    (tmp_path / "m.pth").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"expected a training run folder .*; the run folder of .*m\.pth is"):
        compute.find_snapshots(tmp_path / "m.pth")


@pytest.mark.parametrize("links, title", [
    ([], "code"), ([("l2", 0)], "unit-length code"), ([("kpca", 50), ("tsne", 2)], "t-SNE"),
    ([("pca", 4), ("l2", 0)], "unit-length PCA"), ([("l2", 0), ("pca", 4)], "PCA")])
def test_the_axis_is_named_after_the_last_link_that_sets_a_dimension(links, title):
    assert compute.chain_title(links) == title


def test_pixel_codes_are_pixels_over_255_one_row_per_image():
    images = np.arange(2 * 32 * 32 * 3).reshape(2, 32, 32, 3).astype(np.uint8)
    codes = compute.pixel_codes(images)
    assert codes.shape == (2, 3072) and codes[0, 5] == 5 / 255 and codes[1, 0] == (3072 % 256) / 255


def test_centre_distances_by_hand():
    codes = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    groups, distances = compute.centre_distances(codes, np.array([5, 5, 1, 1]))
    assert groups.tolist() == [1, 5]  # centres (10, 2) and (1, 0)
    np.testing.assert_allclose(distances, [[np.hypot(10, 2), 1], [np.hypot(8, 2), 1], [2, 9], [2, np.hypot(9, 4)]])


def test_a_gallery_needs_one_label_per_code():
    with pytest.raises(ValueError, match="3 codes but 2 labels"):
        gallery_groups(np.zeros((3, 2)), np.array([0, 1]), per_group=1)


def write_json(path, value):
    path.write_text(json.dumps(value))
    return path


def test_size_results_are_read_with_their_defaults(tmp_path):
    path = write_json(tmp_path / "r.json", {"points": [
        {"family": " plain ", "params": 1000, "acc": 1, "name": "p"},
        {"family": "separable", "params": 2.5e3, "acc": 0.5, "acc_std": 0.1}]})
    assert compute.load_size_results(path) == {"benchmark": None, "metric": "clustering accuracy", "points": [
        {"family": "plain", "params": 1000.0, "acc": 1.0, "acc_std": 0.0, "name": "p"},
        {"family": "separable", "params": 2500.0, "acc": 0.5, "acc_std": 0.1, "name": None}]}


@pytest.mark.parametrize("point, message", [
    ({"family": "", "params": 1, "acc": 0.5}, "points[0].family is '', expected a non-empty string"),
    ({"family": "a", "params": True, "acc": 0.5}, "points[0].params is True, expected a positive number"),
    ({"family": "a", "params": float("inf"), "acc": 0.5}, "points[0].params is inf"),
    ({"family": "a", "params": 0, "acc": 0.5}, "points[0].params is 0"),
    ({"family": "a", "params": 1, "acc": -0.1}, "points[0].acc is -0.1, expected a number in [0, 1]"),
    ({"family": "a", "params": 1, "acc": 0.5, "name": 3}, "points[0].name is 3, expected a string"),
    ("a point", "points[0] is 'a point', expected an object"),
])
def test_a_bad_size_result_is_named_in_one_line(tmp_path, point, message):
    path = write_json(tmp_path / "r.json", {"points": [point]})
    with pytest.raises(UserInputError) as raised:
        compute.load_size_results(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_size_result_title_must_be_text(tmp_path):
    path = write_json(tmp_path / "r.json", {"benchmark": 3, "points": [{"family": "a", "params": 1, "acc": 0.5}]})
    with pytest.raises(UserInputError, match='"benchmark" is 3, expected a string'):
        compute.load_size_results(path)
