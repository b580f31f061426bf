"""Label-free criteria for choosing a clustering recipe, and the rule that chooses one.

A recipe (reducer chain + clustering method) is judged without labels by
- how stable its groups are: across clustering seeds, and across two random 80% subsamples
  (groups of the images both hold);
- how well its groups follow the codes' neighbourhoods: the modularity of its split of the
  cosine 20-nearest-neighbour graph of the codes (Newman 2006), one graph per encoder, whatever
  the recipe, so that recipes are compared on the same graph;
- for a distilled student, how often its groups agree with its teacher's groups.
`choose_recipe` applies the rule in docs/clustering.md. Labels only score afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from aecluster.clustering import nearest_others
from aecluster.encoding import fit_groups
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy

GRAPH_NEIGHBOURS = 20
SUBSAMPLE_FRACTION = 0.8
STABLE = 0.95  # least agreement across seeds, subsamples and with the teacher for a recipe to be eligible
# Modularity a stable candidate must gain over the incumbent recipe to replace it: below this,
# splits that disagree on a fifth of the images score alike, so the graph prefers neither.
MARGIN = 0.01

# What a few thousand images clustered alone are judged on: draws of this many codes.
SAMPLE_SIZE = 2000
SAMPLE_DRAWS = 5
AGREEMENTS = ("seed_agreement", "subsample_agreement", "sample_agreement")

GroupFit = Callable[[np.ndarray, int], np.ndarray]


def neighbour_graph(codes: np.ndarray, n_neighbours: int = GRAPH_NEIGHBOURS) -> Any:
    """Symmetric sparse adjacency of the cosine `n_neighbours`-nearest-neighbour graph of `codes`
    (an edge where either code is among the other's nearest; weight 2 where both are).

    Parameters
    ----------
    codes : ndarray of shape (N, dim)
        The codes; each is scaled to unit length first.
    n_neighbours : int
        Nearest neighbours per code (at most N - 1).

    Returns
    -------
    scipy.sparse.csr_matrix of shape (N, N)
        The symmetric adjacency, with weights 1 or 2.
    """
    from scipy import sparse

    unit = np.asarray(codes, dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    n_neighbours = min(n_neighbours, len(unit) - 1)
    nearest = nearest_others(unit, n_neighbours)
    rows = np.repeat(np.arange(len(unit)), n_neighbours)
    directed = sparse.csr_matrix((np.ones(len(rows)), (rows, nearest.ravel())), shape=(len(unit),) * 2)
    return (directed + directed.T).tocsr()


def modularity(graph: Any, labels: np.ndarray) -> float:
    """Newman's modularity of the split `labels` of `graph`: the share of edge weight inside
    groups minus the share expected if edges ignored the groups (0 for a random split, at most
    1 - 1/K for K groups).

    Parameters
    ----------
    graph : scipy.sparse matrix of shape (N, N)
        A symmetric adjacency, as `neighbour_graph` returns it.
    labels : ndarray of shape (N,)
        The group of each node.

    Returns
    -------
    float
        The modularity of the split.
    """
    labels = np.asarray(labels)
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    total = degrees.sum()
    edges = graph.tocoo()
    inside = float(edges.data[labels[edges.row] == labels[edges.col]].sum()) / total
    expected = sum((degrees[labels == group].sum() / total) ** 2 for group in np.unique(labels))
    return inside - float(expected)


def seed_agreement(fit: GroupFit, codes: np.ndarray, seeds: Sequence[int]) -> tuple[float, list[np.ndarray]]:
    """Mean agreement (best label matching) of the groups fitted with each pair of `seeds`, and
    the groups of each seed.

    Parameters
    ----------
    fit : GroupFit
        Fits groups to codes with a seed.
    codes : ndarray of shape (N, dim)
        The codes to cluster.
    seeds : sequence of int
        One fit per seed; the mean is over every pair.

    Returns
    -------
    agreement : float
        The mean pairwise agreement.
    groups : list of ndarray of shape (N,)
        The labels of each seed's fit, in the order of `seeds`.
    """
    groups = [fit(codes, seed) for seed in seeds]
    return float(np.mean([clustering_accuracy(a, b) for a, b in combinations(groups, 2)])), groups


def subsample_agreement(fit: GroupFit, codes: np.ndarray, seed: int) -> float:
    """How often two clusterings, each fitted on its own random 80% of the codes, group the codes
    they share alike (best label matching).

    Parameters
    ----------
    fit : GroupFit
        Fits groups to codes with a seed.
    codes : ndarray of shape (N, dim)
        The codes to cluster.
    seed : int
        Seeds the two subsamples and both fits.

    Returns
    -------
    float
        The agreement on the codes both subsamples hold.
    """
    rng = np.random.default_rng(seed)
    size = int(SUBSAMPLE_FRACTION * len(codes))
    first, second = (np.sort(rng.choice(len(codes), size, replace=False)) for _ in range(2))
    shared = np.intersect1d(first, second)
    labels = [fit(codes[part], seed)[np.searchsorted(part, shared)] for part in (first, second)]
    return clustering_accuracy(labels[0], labels[1])


def sample_fits(fit: GroupFit, codes: np.ndarray, size: int,
                seeds: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(indices, groups) of `size` random codes clustered by themselves, one draw per seed: a
    recipe as `hw9_best.sh` runs it on a few thousand images.

    Parameters
    ----------
    fit : GroupFit
        Fits groups to codes with a seed.
    codes : ndarray of shape (N, dim)
        The codes to draw from.
    size : int
        Codes per draw (at most N).
    seeds : sequence of int
        One draw per seed; each seeds both its draw and its fit.

    Returns
    -------
    list of (ndarray, ndarray)
        For each draw, the sorted indices of its codes and their labels.
    """
    fits = []
    for seed in seeds:
        part = np.sort(np.random.default_rng([seed, size]).choice(len(codes), min(size, len(codes)), replace=False))
        fits.append((part, fit(codes[part], seed)))
    return fits


def sample_agreement(fits: Sequence[tuple[np.ndarray, np.ndarray]], groups: np.ndarray) -> float:
    """How often the `sample_fits` group their codes as `groups` (the fit on all codes) does,
    averaged over the draws: whether a recipe holds on a few thousand images alone.

    Parameters
    ----------
    fits : sequence of (ndarray, ndarray)
        The draws, as `sample_fits` returns them.
    groups : ndarray of shape (N,)
        The labels of the fit on all codes.

    Returns
    -------
    float
        The mean agreement over the draws.
    """
    return float(np.mean([clustering_accuracy(labels, groups[part]) for part, labels in fits]))


def recipe_agreements(fit: GroupFit, codes: np.ndarray, seeds: Sequence[int] = (0, 1, 2),
                      sample: int = SAMPLE_SIZE, draws: int = SAMPLE_DRAWS) -> dict[str, Any]:
    """The three agreements of a recipe (`AGREEMENTS`): across `seeds`, across two 80% subsamples
    (the first two seeds) and between `sample` codes clustered alone and the fit on all codes
    (`draws` draws, seeded from the first seed; at most half the codes each). Also returns the
    first seed's groups ("groups") and the draws ("samples", as `sample_fits` gives them).

    Parameters
    ----------
    fit : GroupFit
        Fits the recipe's groups to codes with a seed.
    codes : ndarray of shape (N, dim)
        The codes to cluster.
    seeds : sequence of int
        Seeds of the seed agreement; the first two seed the subsamples, the first the draws.
    sample : int
        Codes per draw (at most N // 2).
    draws : int
        Number of draws.

    Returns
    -------
    dict
        "seed_agreement", "subsample_agreement" and "sample_agreement" (floats), "groups" (the first
        seed's labels) and "samples" (the draws).
    """
    seeds_agree, groups = seed_agreement(fit, codes, seeds)
    samples = sample_fits(fit, codes, min(sample, len(codes) // 2), [seeds[0] + draw for draw in range(draws)])
    return {"seed_agreement": seeds_agree,
            "subsample_agreement": float(np.mean([subsample_agreement(fit, codes, seed) for seed in seeds[:2]])),
            "sample_agreement": sample_agreement(samples, groups[0]), "groups": groups[0], "samples": samples}


def holds(row: dict[str, Any], keys: Sequence[str] = AGREEMENTS) -> bool:
    """Whether a judged row's agreements (`keys`) are all at least STABLE: the test that keeps a
    default recipe (`most_stable`, `stable_recipe`) and that sends `best` to its fallback model.

    Parameters
    ----------
    row : dict
        A judged row, with the `keys`.
    keys : sequence of str
        The agreements to judge by.

    Returns
    -------
    bool
    """
    return min(row[key] for key in keys) >= STABLE


def most_stable(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """The rule of docs/accuracy.md for patch-dictionary candidates; `rows[0]` is the default.

    The default is kept while all its agreements (`keys`) are at least STABLE; otherwise the row
    whose lowest agreement is highest (earlier rows win ties).

    Parameters
    ----------
    rows : sequence of dict
        Candidate rows, the default first, each with the `keys`.
    keys : sequence of str
        The agreements to judge by.

    Returns
    -------
    dict
        The chosen row (one of `rows`).
    """
    def least(row: dict[str, Any]) -> float:
        return min(row[key] for key in keys)

    return rows[0] if holds(rows[0], keys) else max(rows, key=least)


def recipe_fit(reduce: str, method: str, **options: Any) -> GroupFit:
    """A GroupFit fitting recipe (`reduce`, `method`) on codes, unstandardised unless `options`
    (the other keyword arguments of `encoding.fit_groups`) say otherwise; two groups by default.

    Parameters
    ----------
    reduce : str
        The reducer chain.
    method : str
        The clustering method.
    **options
        Other keyword arguments of `encoding.fit_groups`.

    Returns
    -------
    GroupFit
        A function of (codes, seed) that returns the labels of the fit.
    """
    options = {"standardize": False, **options}

    def fit(codes: np.ndarray, seed: int) -> np.ndarray:
        return fit_groups(codes, reduce, method, random_state=seed, **options)[1].labels_

    return fit


def recipe_criteria(codes: np.ndarray, reduce: str, method: str, graph: Any, seeds: Sequence[int] = (0, 1, 2),
                    reference: np.ndarray | None = None) -> dict[str, Any]:
    """The label-free criteria of one recipe on one encoder's codes; `reference` is the teacher's
    groups of the same codes, when judging a student. Modularity is the mean over seeds, with
    the range of its per-seed values. Also returns the first seed's groups.

    Parameters
    ----------
    codes : ndarray of shape (N, dim)
        One encoder's codes.
    reduce : str
        The recipe's reducer chain.
    method : str
        The recipe's clustering method.
    graph : scipy.sparse matrix of shape (N, N)
        The codes' `neighbour_graph`.
    seeds : sequence of int
        At least two seeds; the first two also seed the subsamples.
    reference : ndarray of shape (N,), optional
        The teacher's groups of the same codes.

    Returns
    -------
    dict
        "recipe", "reduce", "method", "seed_agreement", "subsample_agreement", "modularity",
        "modularity_range", "groups" and, with `reference`, "teacher_agreement".

    Raises
    ------
    UserInputError
        When fewer than two seeds are given.
    """
    if len(seeds) < 2:
        raise UserInputError(f"seed agreement needs at least two seeds, found {list(seeds)}")
    fit = recipe_fit(reduce, method)
    seeds_agree, groups = seed_agreement(fit, codes, seeds)
    per_seed = [modularity(graph, labels) for labels in groups]
    row = {"recipe": f"{reduce} + {method}", "reduce": reduce, "method": method,
           "seed_agreement": seeds_agree,
           "subsample_agreement": float(np.mean([subsample_agreement(fit, codes, seed) for seed in seeds[:2]])),
           "modularity": float(np.mean(per_seed)), "modularity_range": float(np.ptp(per_seed)),
           "groups": groups[0]}
    if reference is not None:
        row["teacher_agreement"] = clustering_accuracy(groups[0], reference)
    return row


def least_agreement(row: dict[str, Any]) -> float:
    """The lowest of a recipe's agreements: across seeds, subsamples and (a student's) its teacher.

    Parameters
    ----------
    row : dict
        A row of `recipe_criteria`.

    Returns
    -------
    float
        The lowest agreement the row holds.
    """
    return min(row[key] for key in ("seed_agreement", "subsample_agreement", "teacher_agreement") if key in row)


def is_stable(row: dict[str, Any]) -> bool:
    """Whether a recipe's groups hold across seeds, subsamples and (a student's) its teacher.

    Parameters
    ----------
    row : dict
        A row of `recipe_criteria`.

    Returns
    -------
    bool
        True when its `least_agreement` is at least STABLE.
    """
    return least_agreement(row) >= STABLE


def choose_recipe(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The rule of docs/clustering.md; `rows[0]` is the incumbent (the config's recipe).

    Among the stable recipes, the one with the highest modularity, unless the incumbent is
    stable and within MARGIN of it; when none is stable, the most stable one. Earlier rows win
    ties.

    Parameters
    ----------
    rows : sequence of dict
        Rows of `recipe_criteria`, the incumbent first.

    Returns
    -------
    dict
        The chosen row (one of `rows`).
    """
    stable = [row for row in rows if is_stable(row)]
    if not stable:
        return max(rows, key=least_agreement)
    best = max(stable, key=lambda row: row["modularity"])
    if is_stable(rows[0]) and best["modularity"] - rows[0]["modularity"] <= MARGIN:
        return rows[0]
    return best


def stable_recipe(codes: np.ndarray, recipes: Sequence[dict[str, Any]], seed: int = 0,
                  report: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rule of docs/accuracy.md on one encoder's codes: `recipes[0]` (complete recipes, as
    `encoding.check_recipe` returns them) is kept while its three agreements (`recipe_agreements`,
    seeds `seed`..`seed`+2) are at least STABLE; otherwise the most stable of all `recipes`
    (`most_stable`). The others are only judged when needed. Returns the chosen recipe and the
    judged rows (the recipe and its agreements); `report` gets one line per row.

    Parameters
    ----------
    codes : ndarray of shape (N, dim)
        One encoder's codes.
    recipes : sequence of dict
        Complete recipes, the default first.
    seed : int
        The first of the three seeds.
    report : callable, optional
        Gets one line per judged row.

    Returns
    -------
    recipe : dict
        The chosen recipe (one of `recipes`).
    rows : list of dict
        The judged rows: "recipe" and its three agreements.
    """
    rows = []
    for recipe in recipes:
        rows.append({"recipe": recipe, **_judged(codes, recipe, seed)})
        if report is not None:
            report(f"{recipe['reduce']} + {recipe['method']}: agreement across seeds "
                   f"{rows[-1]['seed_agreement']:.3f}, subsamples {rows[-1]['subsample_agreement']:.3f}, "
                   f"{min(SAMPLE_SIZE, len(codes) // 2):,} images alone {rows[-1]['sample_agreement']:.3f}")
        if len(rows) == 1 and holds(rows[0]):
            break
    return most_stable(rows, AGREEMENTS)["recipe"], rows


def complete_recipe_fit(recipe: dict[str, Any]) -> GroupFit:
    """`recipe_fit` of a complete recipe (every key of `encoding.RECIPE_DEFAULTS`).

    Parameters
    ----------
    recipe : dict
        A complete recipe.

    Returns
    -------
    GroupFit
        A function of (codes, seed) that returns the labels of the fit.
    """
    options = {key: value for key, value in recipe.items() if key not in ("reduce", "method")}
    return recipe_fit(recipe["reduce"], recipe["method"], **options)


def _judged(codes: np.ndarray, recipe: dict[str, Any], seed: int) -> dict[str, float]:
    """`recipe_agreements` of a complete recipe with seeds `seed`..`seed`+2, the agreements only."""
    package = logging.getLogger("aecluster")  # every module's logger is below it
    level = package.level
    package.setLevel(max(level, logging.WARNING))  # not a line for each of the many fits
    try:
        agreements = recipe_agreements(complete_recipe_fit(recipe), codes, (seed, seed + 1, seed + 2))
    finally:
        package.setLevel(level)
    return {key: agreements[key] for key in AGREEMENTS}
