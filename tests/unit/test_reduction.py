"""aecluster/reduction.py: the reducer chain (parsing, fitting, transforming, saving) of codes."""

import numpy as np
import pytest

from aecluster.errors import UserInputError
from aecluster.reduction import ReducerChain, parse_chain
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
