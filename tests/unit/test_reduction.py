"""aecluster/reduction.py: the reducer chain (parsing, fitting, transforming, saving) of codes, and
scikit-learn's own estimator checks of it."""

import re

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aecluster.errors import UserInputError
from aecluster.reduction import ReducerChain, check_chain, check_savable, numba_cache_dir, parse_chain, single_threaded
from tests.conftest import blobs


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


def test_parse_chain_reads_l2_case_and_spaces():
    assert parse_chain(" L2 , PCA:3 ") == [("l2", 0), ("pca", 3)]
    assert parse_chain("") == [] and parse_chain("NONE") == []


@pytest.mark.parametrize("spec", ["pca:３", "pca:-1", "l2:2", "pca:2,,tsne:2"])
def test_parse_chain_refuses_other_digits_signs_and_empty_links(spec):
    with pytest.raises(UserInputError, match="expected NAME:DIM"):
        parse_chain(spec)


@pytest.mark.parametrize("spec, code_dim, n_images, message", [
    ("pca:9", 8, None, "pca:9 asks for more dimensions than its 8-dimensional input has; the largest allowed is pca:8"),
    ("kpca:20,umap:25", 8, None, "umap:25 asks for more dimensions than its 20-dimensional input"),
    ("pca:5,wpca:4", 8, 3, "wpca:4 asks for more dimensions than its 3-dimensional input"),
    ("tsne:3", 8, None, "t-SNE embeds in at most 2 dimensions; the largest allowed is tsne:2"),
])
def test_check_chain_refuses_links_wider_than_their_input(spec, code_dim, n_images, message):
    with pytest.raises(UserInputError, match=re.escape(message)):
        check_chain(spec, code_dim, n_images)


@pytest.mark.parametrize("spec, code_dim, n_images", [
    ("kpca:50", 8, None), ("l2,pca:8,l2", 8, None), ("pca:5,pca:3", 8, 3), ("none", 1, None)])
def test_check_chain_lets_links_within_their_input_pass(spec, code_dim, n_images):
    assert check_chain(spec, code_dim, n_images) is None


def test_pca_link_matches_a_pca_done_here_with_numpy():
    codes, _ = blobs(count=40, dim=5)
    reduced = ReducerChain("pca:2").fit_transform(codes)
    standardised = (codes - codes.mean(axis=0)) / codes.std(axis=0)
    _, _, axes = np.linalg.svd(standardised - standardised.mean(axis=0), full_matrices=False)
    expected = standardised @ axes[:2].T
    signs = np.sign((reduced * expected).sum(axis=0))  # an axis's sign is arbitrary
    np.testing.assert_allclose(reduced * signs, expected, rtol=1e-4, atol=1e-4)


def test_whitened_pca_gives_components_of_unit_variance():
    codes, _ = blobs(count=40, dim=5)
    reduced = ReducerChain("wpca:3").fit_transform(codes)
    np.testing.assert_allclose(reduced.var(axis=0, ddof=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.corrcoef(reduced.T), np.eye(3), atol=1e-4)


def test_l2_link_scales_each_code_to_unit_length_and_standardize_false_keeps_the_codes():
    codes = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 1.0]])
    chain = ReducerChain("l2", standardize=False)
    np.testing.assert_allclose(chain.fit_transform(codes), [[0.6, 0.8], [0.0, 1.0], [2**-0.5, 2**-0.5]], rtol=1e-6)
    np.testing.assert_array_equal(ReducerChain("none", standardize=False).fit_transform(codes), codes)
    assert chain.transform(np.zeros((1, 2))).tolist() == [[0.0, 0.0]]  # a zero code stays zero


def test_standardisation_alone_is_the_z_score():
    codes, _ = blobs(count=30, dim=3)
    expected = (codes - codes.mean(axis=0)) / codes.std(axis=0)
    np.testing.assert_allclose(ReducerChain("none").fit_transform(codes), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["pca:3", "l2,wpca:2", "none"])
def test_a_saved_chain_transforms_new_codes_as_the_fitted_one(spec):
    codes, _ = blobs(count=40, dim=6)
    chain = ReducerChain(spec).fit(codes)
    rebuilt = ReducerChain.from_state(chain.get_state())
    new, _ = blobs(count=10, dim=6, seed=1)
    np.testing.assert_allclose(rebuilt.transform(new), chain.transform(new), rtol=1e-5, atol=1e-6)
    assert rebuilt.reducers_ == [] and rebuilt.n_features_in_ == chain.n_features_in_ == 6


@pytest.mark.parametrize("spec, standardize, width", [("pca:3", False, 6), ("l2,wpca:2", False, 6), ("l2", True, 6),
                                                      ("l2", False, None), ("none", False, None)])
def test_a_saved_chain_reads_the_width_of_its_codes_from_its_state(spec, standardize, width):
    state = ReducerChain(spec, standardize=standardize).fit(blobs(count=40, dim=6)[0]).get_state()
    rebuilt = ReducerChain.from_state(state)
    assert getattr(rebuilt, "n_features_in_", None) == width
    # The width the state holds wins over the one given, which fills in where it holds none.
    assert ReducerChain.from_state(state, n_features_in=9).n_features_in_ == (width or 9)
    if width:
        with pytest.raises(ValueError, match=f"X has 5 features, but ReducerChain is expecting {width} features"):
            rebuilt.transform(np.zeros((2, 5)))


@pytest.mark.parametrize("spec, name", [("kpca:3", "kpca"), ("pca:4,tsne:2", "tsne"), ("umap:2", "umap")])
def test_chains_that_cannot_be_saved_without_pickling_say_so(spec, name):
    with pytest.raises(UserInputError, match=f"a fitted '{name}' reduction cannot be saved"):
        check_savable(spec)
    with pytest.raises(UserInputError, match="cannot be saved"):
        ReducerChain.from_state({"spec": spec})


def test_numba_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert numba_cache_dir() == tmp_path / "numba"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert numba_cache_dir() == tmp_path / "cache" / "aecluster" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert numba_cache_dir() == tmp_path / "home" / ".cache" / "aecluster" / "numba"


def test_single_threaded_limits_every_thread_pool_to_one_thread():
    from threadpoolctl import threadpool_info

    with single_threaded():
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())


# The checks ReducerChain("pca:2") cannot pass, and why.
REDUCER_EXPECTED_FAILURES = {
    "check_transformer_preserve_dtypes": "reduced codes are float32 whatever the codes' dtype",
    "check_fit2d_1feature": "'pca:2' asks one feature for two components, which PCA refuses as 'n_components=2 "
                            "must be between 0 and min(n_samples, n_features)=1', not in the words the check seeks",
}


@parametrize_with_checks([ReducerChain("pca:2")], expected_failed_checks=lambda _: REDUCER_EXPECTED_FAILURES,
                         xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
