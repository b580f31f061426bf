"""Codes to groups (`aecluster.encoding`): what is checked before any slow work."""

import numpy as np
import pytest

from aecluster import encoding
from aecluster.errors import UserInputError


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
