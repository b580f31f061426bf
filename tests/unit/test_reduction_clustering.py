import numpy as np
import pytest

from aecluster.clustering import KMeansGroups, ThresholdGroups, degenerate_warning, make_clusterer, order_by_colour
from aecluster.errors import UserInputError
from aecluster.reduction import ReducerChain, parse_chain


def blobs(count=60, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    return rng.normal(0, 0.3, (count, dim)) + labels[:, None] * 3.0, labels


def test_parse_chain():
    assert parse_chain("kpca:200, tsne:2") == [("kpca", 200), ("tsne", 2)]
    assert parse_chain("none") == []


@pytest.mark.parametrize("spec", ["svd:3", "pca", "pca:0", "pca:x"])
def test_parse_chain_rejects(spec):
    with pytest.raises(UserInputError, match="expected NAME:DIM"):
        parse_chain(spec)


@pytest.mark.parametrize("spec, dim", [("pca:3", 3), ("kpca:5,pca:2", 2),
                                       pytest.param("tsne:2", 2, marks=pytest.mark.slow), ("none", 8)])
def test_chain_shapes_and_transform(spec, dim):
    codes, _ = blobs()
    chain = ReducerChain(spec, random_state=0)
    reduced = chain.fit_transform(codes)
    assert reduced.shape == (60, dim)
    assert chain.transform(codes[:5]).shape == (5, dim)


def test_chain_is_deterministic():
    codes, _ = blobs()
    first = ReducerChain("tsne:2", random_state=3).fit_transform(codes)
    second = ReducerChain("tsne:2", random_state=3).fit_transform(codes)
    np.testing.assert_array_equal(first, second)


def test_chain_fits_on_sample_and_transforms_all():
    codes, _ = blobs(count=200)
    chain = ReducerChain("pca:2", max_fit_samples=50)
    assert chain.fit_transform(codes).shape == (200, 2)
    assert chain.scaler_.n_samples_seen_ == 50


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_both_methods_separate_blobs(method):
    codes, labels = blobs()
    groups = make_clusterer(method).fit(codes).labels_
    assert set(groups) == {0, 1}
    assert (groups == labels).all() or (groups == 1 - labels).all()


def test_threshold_moves_the_split():
    codes, _ = blobs()
    loose = ThresholdGroups(threshold=-1.1).fit(codes).labels_
    assert loose.sum() == len(codes)


def test_unknown_method_and_too_few():
    with pytest.raises(UserInputError, match="unknown method"):
        make_clusterer("dbscan")
    with pytest.raises(UserInputError, match="at least 2 images"):
        KMeansGroups().fit(np.zeros((1, 2)))


def test_order_by_colour(two_groups):
    images, labels = two_groups
    assert (order_by_colour(1 - labels, images, 2)[1 - labels] == labels).all()
    assert (order_by_colour(labels, images, 2)[labels] == labels).all()


def test_degenerate_warning():
    assert degenerate_warning(np.array([0] * 99 + [1])) is not None
    assert degenerate_warning(np.array([0, 1] * 50)) is None


@pytest.mark.slow
def test_umap_compiled_code_is_cached_in_the_user_cache(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    script = ("import numpy as np; from aecluster.reduction import ReducerChain; "
              "print(ReducerChain('umap:2').fit_transform(np.random.default_rng(0).normal(size=(60, 8))).shape)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(60, 2)"
    assert any((tmp_path / "aecluster" / "numba").rglob("*.nbi"))


def test_a_saved_overcluster_without_fine_clusters_is_missing_a_value_not_two_fine_groups():
    from aecluster.clustering import OverclusterGroups, clusterer_from_state

    codes, _ = blobs()
    state = OverclusterGroups(n_clusters=3, fine_clusters=6).fit(codes).get_state()
    assert state["fine_clusters"] == 6
    del state["fine_clusters"]
    # A missing value is a KeyError (as clusterer_from_state documents); the check of the group
    # counts reads the saved layout's default of 20 fine groups, which three groups fit.
    with pytest.raises(KeyError, match="fine_clusters"):
        clusterer_from_state(state)
