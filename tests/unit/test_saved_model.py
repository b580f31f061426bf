"""Saved models (`cluster --save-model`, `AEClusterer.save`): their fitted reduction and groups
are checked part by part by `saved_model.fitted_parts`, so that a missing, mistyped or
non-finite part is one line naming the file in `AEClusterer.from_checkpoint` (and in `predict`:
tests/cli/test_cluster.py), never a traceback or labels from NaN arithmetic."""

from __future__ import annotations

import time

import numpy as np
import pytest

from aecluster.api import AEClusterer
from aecluster.checkpoint import read_checkpoint
from aecluster.errors import UserInputError
from aecluster.saved_model import FittedParts, fitted_parts, fitted_state
from tests.conftest import SAVED_MODEL_CORRUPTIONS, SAVED_MODEL_IDS, corrupt_saved_model, nested_in_itself


@pytest.mark.parametrize("case, method, change, fragment", SAVED_MODEL_CORRUPTIONS, ids=SAVED_MODEL_IDS)
def test_the_api_refuses_a_corrupt_saved_model_alike(saved, tmp_path, case, method, change, fragment):
    bad = corrupt_saved_model(saved, method, change, tmp_path)
    with pytest.raises(UserInputError, match=f"^{bad}: ") as error:
        AEClusterer.from_checkpoint(bad).predict(np.load(saved / "x.npy"))
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_structure_nested_in_itself_is_refused_fast(saved, tmp_path):
    bad = corrupt_saved_model(saved, "kmeans", lambda f: f["reduction"].update(links=nested_in_itself(40)), tmp_path)
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="nest deeper"):
        AEClusterer.from_checkpoint(bad)
    assert time.perf_counter() - start < 5


def test_a_loaded_model_knows_the_width_of_the_codes_its_steps_take(saved):
    loaded = AEClusterer.from_checkpoint(saved / "s_kmeans.pth")
    assert loaded.reducer_.n_features_in_ == loaded.encoder_.model_.code_dim
    assert loaded.clusterer_.n_features_in_ == 4  # the recipe's wpca:4
    with pytest.raises(ValueError, match="X has 3 features, but ReducerChain is expecting"):
        loaded.reducer_.transform(np.zeros((2, 3), np.float32))


def test_fitted_state_and_fitted_parts_round_trip(saved):
    payload = read_checkpoint(saved / "s_scan.pth")
    parts = fitted_parts(payload["fitted"], 64, "s_scan.pth")
    again = fitted_parts(fitted_state(FittedParts(parts.reducer, parts.clusterer, parts.label_map)), 64, "again")
    codes = np.random.default_rng(1).normal(size=(10, 64))
    assert np.array_equal(again.clusterer.predict(again.reducer.transform(codes)),
                          parts.clusterer.predict(parts.reducer.transform(codes)))
    with pytest.raises(UserInputError, match="shift has shape \\(64,\\), expected \\(65\\)"):
        fitted_parts(payload["fitted"], 65, "s_scan.pth")
