"""aecluster/plots/draw.py: the report's matplotlib figures, drawn from numbers given to them."""

import numpy as np
import pytest

from aecluster.plots import draw


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
    truth = np.repeat([0, 1, 2], 10)
    predicted = np.repeat([2, 0, 1], 10)  # group 2 is label 0, group 0 label 1, group 1 label 2
    predicted[:4] = 3  # a fourth group, left unmatched
    predicted[10:12] = 1  # two label-1 images in label 2's group
    figure = draw.confusion_figure(predicted, truth)
    matrix = figure.axes[0]
    assert [tick.get_text() for tick in matrix.get_xticklabels()] == [
        "group 2\n→ label 0", "group 0\n→ label 1", "group 1\n→ label 2", "group 3\n(unmatched)"]
    assert len(matrix.texts) == 12 and "accuracy 80.0%" in matrix.get_title()
