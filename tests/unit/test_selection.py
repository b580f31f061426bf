"""aecluster/selection.py: the label-free criteria and rule that choose a clustering recipe."""

import numpy as np
import pytest

from aecluster.metrics import clustering_accuracy
from aecluster.selection import (
    MARGIN,
    choose_recipe,
    modularity,
    most_stable,
    neighbour_graph,
    recipe_criteria,
    recipe_fit,
    sample_agreement,
    sample_fits,
    stable_recipe,
    subsample_agreement,
)
from tests.conftest import two_bars


def two_cliques():
    """A graph of two 5-cliques joined by nothing, as neighbour_graph's sparse matrix."""
    from scipy import sparse

    block = np.ones((5, 5)) - np.eye(5)
    return sparse.csr_matrix(np.block([[block, np.zeros((5, 5))], [np.zeros((5, 5)), block]]))


def test_modularity_of_splits_of_two_cliques():
    graph = two_cliques()
    assert modularity(graph, np.repeat([0, 1], 5)) == pytest.approx(0.5)
    assert modularity(graph, np.zeros(10, dtype=int)) == pytest.approx(0.0)
    assert modularity(graph, np.tile([0, 1], 5)) < 0  # a split across both cliques


def test_neighbour_graph_is_symmetric_and_uses_cosine_neighbours():
    codes = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0], [0.4, 9.0]])  # two directions, far-apart norms
    graph = neighbour_graph(codes, n_neighbours=1)
    assert (graph != graph.T).nnz == 0
    assert graph[0, 1] == 2 and graph[2, 3] == 2 and graph[0, 2] == 0  # mutual nearest by angle


def test_neighbours_of_duplicate_codes_are_other_images_never_the_image_itself():
    codes = np.repeat(np.array([[1.0, 0.0], [0.0, 1.0]]), 4, axis=0)  # two sets of 4 identical codes
    graph = neighbour_graph(codes, n_neighbours=3)
    assert graph.diagonal().sum() == 0
    assert graph[:4, 4:].nnz == 0 and (graph[:4, :4] == 2).sum() == 12  # each copy's 3 others, mutual


def test_stable_recipe_agrees_with_itself_across_seeds_and_subsamples():
    directions = np.repeat(np.eye(3)[:2] * 5, 50, axis=0)  # two groups of codes, at right angles
    codes = directions + np.random.default_rng(0).normal(0, 0.2, (100, 3))
    assert subsample_agreement(recipe_fit("pca:2", "kmeans"), codes, 0) == 1.0
    row = recipe_criteria(codes, "pca:2", "kmeans", neighbour_graph(codes), seeds=(0, 1),
                          reference=np.repeat([1, 0], 50))
    assert row["seed_agreement"] == row["subsample_agreement"] == row["teacher_agreement"] == 1.0
    assert row["modularity"] > 0.45 and row["groups"].shape == (100,)


@pytest.mark.slow
def test_modularity_is_the_mean_over_seeds_and_its_range_is_reported():
    codes = np.random.default_rng(0).normal(size=(120, 4))  # no structure: each seed splits its own way
    graph, fit = neighbour_graph(codes), recipe_fit("none", "scan")
    per_seed = [modularity(graph, fit(codes, seed)) for seed in (0, 1, 2)]
    row = recipe_criteria(codes, "none", "scan", graph, seeds=(0, 1, 2))
    assert row["modularity"] == pytest.approx(np.mean(per_seed))
    assert row["modularity_range"] == pytest.approx(max(per_seed) - min(per_seed)) and row["modularity_range"] > 0


def row(name, modularity_value, seeds=1.0, subsamples=1.0, **extra):
    return {"recipe": name, "modularity": modularity_value, "seed_agreement": seeds,
            "subsample_agreement": subsamples, **extra}


def test_rule_keeps_the_incumbent_unless_a_stable_recipe_beats_it_by_the_margin():
    assert choose_recipe([row("old", 0.40), row("new", 0.40 + MARGIN / 2)])["recipe"] == "old"
    assert choose_recipe([row("old", 0.40), row("new", 0.40 + 2 * MARGIN)])["recipe"] == "new"
    assert choose_recipe([row("old", 0.40), row("new", 0.50, seeds=0.90)])["recipe"] == "old"
    assert choose_recipe([row("old", 0.40), row("new", 0.50, teacher_agreement=0.90)])["recipe"] == "old"
    # An unstable incumbent gives way to the best stable recipe, however small its lead.
    assert choose_recipe([row("old", 0.45, subsamples=0.9), row("a", 0.40), row("b", 0.41)])["recipe"] == "b"
    assert choose_recipe([row("old", 0.45, seeds=0.8), row("a", 0.40, subsamples=0.9)])["recipe"] == "a"
    # With none stable, the teacher agreement counts too: "a" agrees least with its teacher.
    assert choose_recipe([row("a", 0.4, seeds=0.94, teacher_agreement=0.5),
                          row("b", 0.4, seeds=0.90, teacher_agreement=0.92)])["recipe"] == "b"


def test_seed_agreement_needs_two_seeds():
    from aecluster.errors import UserInputError

    codes, _ = two_bars(50)
    with pytest.raises(UserInputError, match="at least two seeds"):
        recipe_criteria(codes, "none", "kmeans", neighbour_graph(codes), seeds=(0,))


def test_sample_agreement_compares_small_fits_with_the_fit_on_all_codes():
    rng = np.random.default_rng(0)
    codes = np.repeat(np.eye(3)[:2] * 5, 200, axis=0) + rng.normal(0, 0.2, (400, 3))  # two clear groups
    fit = recipe_fit("none", "kmeans")
    fits = sample_fits(fit, codes, 100, range(3))
    assert [len(part) for part, _ in fits] == [100] * 3 and all(len(set(part)) == 100 for part, _ in fits)
    assert not np.array_equal(fits[0][0], fits[1][0])
    assert sample_agreement(fits, fit(codes, 0)) == 1.0
    # against an unrelated reference the samples' fits agree about as often as chance allows
    assert 0.5 <= sample_agreement(fits, rng.integers(0, 2, 400)) < 0.65
    # fits that label at random on each sample agree with the full fit no better
    random_fits = sample_fits(lambda part, seed: rng.integers(0, 2, len(part)), codes, 100, range(3))
    assert sample_agreement(random_fits, fit(codes, 0)) < 0.65


def test_most_stable_keeps_a_stable_default_else_takes_the_highest_least_agreement():
    keys = ("seed_agreement", "subsample_agreement", "sample_agreement")

    def stability(name, seeds, samples):
        return {"recipe": name, "seed_agreement": seeds, "subsample_agreement": 1.0, "sample_agreement": samples}

    assert most_stable([stability("default", 0.96, 0.95), stability("b", 1.0, 1.0)], keys)["recipe"] == "default"
    assert most_stable([stability("default", 1.0, 0.90), stability("b", 0.94, 0.93),
                        stability("c", 0.99, 0.92)], keys)["recipe"] == "b"


def ball_and_blobs(count=400, seed=0):
    """A wide round ball in two dimensions (any cut through it is as good as another) and, in a
    third, two tight blobs 4 apart: the split that holds is blob against blob."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    codes = np.column_stack([rng.normal(0, 3, (count, 2)), 4.0 * labels - 2 + rng.normal(0, 0.1, count)])
    return codes, labels


# PCA(2) without scaling keeps the ball's two widest directions; scaled, every axis has unit
# variance and the blobs' axis is the best cut.
BALL_ONLY = {"reduce": "pca:2", "method": "kmeans", "standardize": False}
ALL_SCALED = {"reduce": "none", "method": "kmeans", "standardize": True}


def test_stable_recipe_falls_back_to_the_split_that_holds():
    codes, labels = ball_and_blobs()
    lines = []
    chosen, rows = stable_recipe(codes, [BALL_ONLY, ALL_SCALED], report=lines.append)
    assert chosen is ALL_SCALED and [row["recipe"] for row in rows] == [BALL_ONLY, ALL_SCALED]
    assert min(rows[0][key] for key in ("seed_agreement", "subsample_agreement", "sample_agreement")) < 0.95
    assert min(rows[1][key] for key in ("seed_agreement", "subsample_agreement", "sample_agreement")) >= 0.95
    assert len(lines) == 2 and lines[1].startswith("none + kmeans: agreement across seeds 1.000")
    assert "200 images alone" in lines[1]
    groups = recipe_fit("none", "kmeans", standardize=True)(codes, 0)
    assert clustering_accuracy(groups, labels) == 1.0


def test_stable_recipe_keeps_a_stable_first_recipe_without_judging_the_others():
    codes, _ = ball_and_blobs()
    chosen, rows = stable_recipe(codes, [ALL_SCALED, BALL_ONLY])
    assert chosen is ALL_SCALED and len(rows) == 1
