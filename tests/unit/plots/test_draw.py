"""aecluster/plots/draw.py: the report's matplotlib figures, drawn from numbers given to them."""

import re

import numpy as np
import pytest

from aecluster.plots import draw
from tests.conftest import four_groups_against_three_labels


@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 12, 30])
def test_series_styles_stay_distinct_beyond_the_palette(count):
    pairs = {(str(colour), marker) for colour, marker in draw.styles(count)}
    colours = {str(colour) for colour, _ in draw.styles(count)}
    assert len(pairs) == len(colours) == count


def test_a_two_by_two_title_never_splits_a_count_from_its_noun():
    figure = draw.confusion_figure(np.array([0, 1, 1, 0] * 125), np.array([0, 1, 0, 0] * 125),
                                   "Confusion matrix of best_val_predictions.csv", ["not landscape", "landscape"])
    lines = figure.axes[0].get_title().splitlines()
    for phrase in ("N=500", "2 groups", "2 labels", "accuracy 75.0%", "group 0→not landscape (0)",
                   "group 1→landscape (1)"):
        assert any(phrase in line for line in lines), (phrase, lines)
    assert max(map(len, lines)) <= figure.get_figwidth() * 9


LONG_TITLE = "clustering of the holiday photos from the shared folder " * 3


@pytest.mark.parametrize("figure_of", [
    lambda: draw.reconstructions_figure(np.zeros((3, 32, 32, 3)), np.zeros((3, 32, 32, 3)), [0, 1, 2],
                                         np.zeros(3), LONG_TITLE),
    lambda: draw.confusion_figure(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), LONG_TITLE),
], ids=["suptitle", "axis title"])
def test_long_titles_are_wrapped_to_the_figure_width(figure_of):
    figure = figure_of()
    title = figure.get_suptitle() or figure.axes[0].get_title()
    lines = title.splitlines()
    assert len(lines) >= 3 and max(map(len, lines)) <= figure.get_figwidth() * 9
    assert " ".join(" ".join(lines).split()).startswith(" ".join(LONG_TITLE.split()))


def test_confusion_figure_of_four_groups_against_three_labels():
    predicted, truth = four_groups_against_three_labels()
    figure = draw.confusion_figure(predicted, truth)
    matrix = figure.axes[0]
    assert [tick.get_text() for tick in matrix.get_xticklabels()] == [
        "group 2\n→ label 0", "group 0\n→ label 1", "group 1\n→ label 2", "group 3\n(unmatched)"]
    assert len(matrix.texts) == 12 and "accuracy 80.0%" in matrix.get_title()


def test_label_names_with_and_without_names():
    assert draw.label_names([0, 2]) == ["label 0", "label 2"]
    assert draw.label_names([0, 1, 2], ["cat", "dog"]) == ["cat (0)", "dog (1)", "label 2"]


def test_a_title_is_wrapped_to_the_figure_but_never_inside_an_unbreakable_phrase():
    figure = draw.new_figure(4.0, 3.0)  # about 36 characters a line
    phrase = draw.unbreakable("group 12→not landscape (0)")
    text = draw.fitted_title(f"{'word ' * 12}{phrase} {'word ' * 6}", figure)
    lines = text.splitlines()
    assert len(lines) > 2 and max(map(len, lines)) <= 36
    assert any("group 12→not landscape (0)" in line for line in lines) and draw.NO_BREAK not in text


def test_an_image_strip_puts_the_chosen_images_side_by_side_on_white():
    images = np.stack([np.full((4, 3, 3), value, dtype=np.uint8) for value in (10, 20, 30)])
    strip = draw.image_strip(images, np.array([2, 0]), slots=3)
    gap = draw.GALLERY_GAP
    assert strip.shape == (4, 3 * 3 + 2 * gap, 3)
    assert (strip[:, :3] == 30).all() and (strip[:, 3 + gap : 6 + gap] == 10).all()
    assert (strip[:, 3 : 3 + gap] == 255).all() and (strip[:, 6 + gap :] == 255).all()


def test_save_figure_writes_a_png_and_nothing_else(tmp_path):
    draw.save_figure(draw.new_figure(2.0, 2.0), tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [path.name for path in tmp_path.iterdir()] == ["f.png"]


def test_reconstructions_show_each_original_above_its_reconstruction():
    originals = np.stack([np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(3)])
    reconstructions = 255 - originals
    figure = draw.reconstructions_figure(originals, reconstructions, [5, 7, 9], np.array([0.1, 0.25, 0.5]))
    top, bottom = figure.axes[:3], figure.axes[3:]
    for position, index in enumerate((5, 7, 9)):
        np.testing.assert_array_equal(top[position].get_images()[0].get_array(), originals[position])
        np.testing.assert_array_equal(bottom[position].get_images()[0].get_array(), reconstructions[position])
        assert str(index) in top[position].get_title()
    assert "0.1000" in bottom[0].get_xlabel() and "0.2500" in bottom[1].get_xlabel()  # each image's MSE


def test_an_embedding_panel_shows_each_labels_points_and_its_accuracy():
    from aecluster.plots.compute import EmbeddingPanel

    coords = np.arange(10.0).reshape(5, 2)
    labels = np.array([0, 1, 1, 0, 1])
    panel = EmbeddingPanel("improved", "m.pth", coords, 0.875, ("x axis", "y axis"))
    (axis,) = draw.embedding_figure([panel], labels, names=["sea", "land"]).axes
    assert "improved" in axis.get_title() and "m.pth" in axis.get_title() and "87.5%" in axis.get_title()
    shown = [collection.get_offsets() for collection in axis.collections]
    np.testing.assert_array_equal(shown[0], coords[[0, 3]])
    np.testing.assert_array_equal(shown[1], coords[[1, 2, 4]])
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["sea (0): 2", "land (1): 3"]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("x axis", "y axis")


def test_the_checkpoints_title_gives_the_correlation_of_the_two_curves():
    from aecluster.plots.compute import SnapshotScore

    mse, accuracy = np.array([0.3, 0.25, 0.1]), np.array([0.6, 0.8, 0.7])
    scores = [SnapshotScore(f"s{i}", i + 1.0, m, a) for i, (m, a) in enumerate(zip(mse, accuracy, strict=True))]
    left, right = draw.checkpoints_figure(scores).axes
    x, y = mse - mse.mean(), accuracy - accuracy.mean()
    r = (x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum())  # -0.36
    assert f"{r:+.2f}" in left.get_title() and "3 snapshots" in left.get_title()
    np.testing.assert_array_equal(right.get_lines()[0].get_ydata(), accuracy)
    flat = [SnapshotScore("s", 1.0, 0.1, 0.5), SnapshotScore("t", 2.0, 0.2, 0.5)]
    assert not re.search(r"[+-]\d\.\d\d", draw.checkpoints_figure(flat).axes[0].get_title())


def test_size_against_accuracy_draws_one_line_per_family_in_parameter_order():
    results = {"benchmark": None, "metric": "clustering accuracy", "points": [
        {"family": "a", "params": p, "acc": acc, "acc_std": 0.0, "name": None}
        for p, acc in ((300.0, 0.7), (100.0, 0.5), (200.0, 0.6))] + [
        {"family": "b", "params": 150.0, "acc": 0.9, "acc_std": 0.0, "name": "b1"}]}
    (axis,) = draw.size_accuracy_figure(results).axes
    first = axis.containers[0].lines[0]
    assert list(first.get_xdata()) == [100.0, 200.0, 300.0] and list(first.get_ydata()) == [0.5, 0.6, 0.7]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]  # each family and its count of models
    assert legend == ["a (3 models)", "b (1 model)"]
    assert [text.get_text() for text in axis.texts] == ["b1"]


def test_a_gallery_has_a_row_of_two_strips_per_group():
    from aecluster.plots.compute import gallery_groups

    images = np.stack([np.full((32, 32, 3), 20 * i, dtype=np.uint8) for i in range(6)])
    groups = gallery_groups(images.reshape(6, -1) / 255.0, np.array([0, 0, 0, 1, 1, 1]), per_group=2)
    figure = draw.gallery_figure(images, groups, per_group=2)
    assert len(figure.axes) == 4
    typical = [[int(text.get_text().lstrip("#")) for text in axis.get_xticklabels()] for axis in figure.axes[::2]]
    assert typical == [group.typical.tolist() for group in groups] == [[1, 0], [4, 3]]
