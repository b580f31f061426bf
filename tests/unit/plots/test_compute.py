"""aecluster/plots/compute.py: the numbers behind the report figures (reconstruction errors,
embeddings, confusion counts, galleries' typical and borderline images)."""

import numpy as np
import pytest

from aecluster.checkpoint import load_model
from aecluster.metrics import clustering_accuracy
from aecluster.plots import compute
from aecluster.plots.compute import gallery_groups, pixel_codes
from aecluster.reduction import REDUCER_NAMES, parse_chain
from tests.conftest import PLANTED, dark_and_light, expected_order


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
    truth = np.repeat([0, 1, 2], 10)
    predicted = np.repeat([2, 0, 1], 10)  # group 2 is label 0, group 0 label 1, group 1 label 2
    predicted[:4] = 3  # a fourth group, left unmatched
    predicted[10:12] = 1  # two label-1 images in label 2's group
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

