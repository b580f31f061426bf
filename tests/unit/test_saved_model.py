"""Saved models (`cluster --save-model`, `AEClusterer.save`): their fitted reduction and groups
are checked part by part by `saved_model.fitted_parts`, so that a missing, mistyped or
non-finite part is one line naming the file in `predict` and in `AEClusterer.from_checkpoint`,
never a traceback or labels from NaN arithmetic."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster.api import AEClusterer
from aecluster.checkpoint import make_payload, read_checkpoint
from aecluster.cli import main
from aecluster.clustering import scan
from aecluster.csvio import read_predictions
from aecluster.errors import UserInputError
from aecluster.models import build_model
from aecluster.registry import model_config
from aecluster.saved_model import FittedParts, fitted_parts, fitted_state
from tests.conftest import assert_refused, field_cases, folder_state, run_main, spoil_file

METHODS = ("kmeans", "overcluster", "scan", "threshold")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder with 24 images (x.npy), an untrained encoder (m.pth) and one saved model per
    method (s_METHOD.pth, recipe l2,wpca:4, fine groups 4) with its labels (o_METHOD.csv)."""
    folder = tmp_path_factory.mktemp("saved")
    np.save(folder / "x.npy", np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8))
    torch.manual_seed(0)
    torch.save(make_payload(build_model("improved"), "improved", model_config("improved"), {}, 1), folder / "m.pth")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "SCAN_STEPS", 20)  # a scan head fitted in a moment; its quality is not tested
        for method in METHODS:
            assert main([str(arg) for arg in ("cluster", folder / "x.npy", folder / "m.pth", folder / f"o_{method}.csv",
                                              "--quiet", "--reduce", "l2,wpca:4", "--method", method,
                                              "--fine-clusters", "4", "--save-model", folder / f"s_{method}.pth")]) == 0
    return folder


def nested_in_itself(depth: int) -> list:
    """A list holding one list twice, `depth` levels down (2**depth items to a naive walk)."""
    nested: list = []
    for _ in range(depth):
        nested = [nested, nested]
    return nested


def wpca(fitted):
    return fitted["reduction"]["links"][1]


# (case, method of the saved model, change of its `fitted` entry, message fragment)
CORRUPTIONS = [
    ("no PCA components", "kmeans", lambda f: wpca(f).pop("components"),
     "fitted.reduction.links.1 has no 'components'"),
    ("shift a string", "kmeans", lambda f: f["reduction"].update(standardize=True, shift="abc"),
     "fitted.reduction.shift is a str, expected a tensor"),
    ("groups a tensor", "kmeans", lambda f: f.update(groups=torch.zeros(3)),
     "fitted.groups is a tensor, expected a dictionary"),
    ("no groups", "kmeans", lambda f: f.pop("groups"), "fitted has no 'groups'"),
    ("reduction a list", "kmeans", lambda f: f.update(reduction=[1]), "fitted.reduction is a list"),
    ("NaN head weights", "scan", lambda f: f["groups"]["weights_"].fill_(float("nan")),
     "fitted.groups.weights_ is a tensor holding NaN or infinite values"),
    ("infinite head bias", "scan", lambda f: f["groups"]["bias_"].fill_(float("inf")), "NaN or infinite"),
    ("NaN PCA components", "kmeans", lambda f: wpca(f)["components"].fill_(float("nan")),
     "fitted.reduction.links.1.components is a tensor holding NaN"),
    ("NaN threshold", "threshold", lambda f: f["groups"].update(threshold=float("nan")),
     "fitted.groups.threshold: nan is not a cosine-similarity threshold"),
    ("threshold 5", "threshold", lambda f: f["groups"].update(threshold=5.0), "5.0 is not a cosine-similarity"),
    ("components wider than the codes", "kmeans", lambda f: wpca(f).update(components=torch.zeros(4, 65)),
     "fitted.reduction.links.1.components has shape (4, 65), expected (N, 64)"),
    ("whitening scale of zero", "kmeans", lambda f: wpca(f)["scale"].zero_(),
     "scale holds values that are not positive"),
    ("centres of another width", "kmeans", lambda f: f["groups"].update(centres_=torch.zeros(2, 5)),
     "fitted.groups.centres_ has shape (2, 5), expected (2, 4)"),
    ("negative merged group", "overcluster", lambda f: f["groups"]["merge_"].fill_(-1), "negative group numbers"),
    ("merge into more groups than labels", "overcluster", lambda f: f["groups"]["merge_"].fill_(7),
     "fitted.label_map holds 2 labels for 8 groups"),
    ("label_map of fractions", "kmeans", lambda f: f.update(label_map=torch.tensor([0.5, 1.0])),
     "fitted.label_map is of dtype float32, expected integers"),
    ("three labels for two groups", "kmeans", lambda f: f.update(label_map=torch.tensor([0, 1, 2])),
     "fitted.label_map holds 3 labels for 2 groups"),
    ("n_clusters a string", "kmeans", lambda f: f["groups"].update(n_clusters="2"),
     "fitted.groups.n_clusters: '2' is not a whole number"),
    ("method spectral", "kmeans", lambda f: f["groups"].update(method="spectral"), "unknown method 'spectral'"),
    ("random_state negative", "kmeans", lambda f: f["groups"].update(random_state=-1), "random_state is -1"),
    ("unsavable t-SNE chain", "kmeans", lambda f: f["reduction"].update(spec="tsne:2"),
     "a fitted 'tsne' reduction cannot be saved"),
    ("a link too few", "kmeans", lambda f: f["reduction"]["links"].pop(), "is not a list of the 2 links"),
    ("a link of another kind", "kmeans", lambda f: f["reduction"].update(spec="l2,pca:4"),
     "is a 'wpca' link where the chain names 'pca'"),
    ("a list nested 40 deep in itself", "kmeans", lambda f: f["reduction"].update(links=nested_in_itself(40)),
     "nest deeper than 16 levels"),
]
IDS = [case for case, *_ in CORRUPTIONS]


def corrupt(saved: Path, method: str, change, folder: Path) -> Path:
    """bad.pth in `folder`: the saved model of `method` after `change` of its fitted entry."""
    payload = torch.load(saved / f"s_{method}.pth", weights_only=True)
    change(payload["fitted"])
    torch.save(payload, folder / "bad.pth")
    return folder / "bad.pth"


@pytest.mark.parametrize("case, method, change, fragment", CORRUPTIONS, ids=IDS)
def test_predict_refuses_a_corrupt_saved_model_in_one_line(saved, tmp_path, capsys, case, method, change, fragment):
    bad = corrupt(saved, method, change, tmp_path)
    before = folder_state(tmp_path)
    code, err = run_main(["predict", bad, saved / "x.npy", tmp_path / "p.csv"], capsys)
    assert_refused(code, err, fragment, tmp_path, before)
    assert f"{bad}: " in err


@pytest.mark.parametrize("case, method, change, fragment", CORRUPTIONS, ids=IDS)
def test_the_api_refuses_a_corrupt_saved_model_alike(saved, tmp_path, case, method, change, fragment):
    bad = corrupt(saved, method, change, tmp_path)
    with pytest.raises(UserInputError, match=f"^{bad}: ") as error:
        AEClusterer.from_checkpoint(bad).predict(np.load(saved / "x.npy"))
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_structure_nested_in_itself_is_refused_fast(saved, tmp_path):
    bad = corrupt(saved, "kmeans", lambda f: f["reduction"].update(links=nested_in_itself(40)), tmp_path)
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="nest deeper"):
        AEClusterer.from_checkpoint(bad)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("method", METHODS)
def test_every_good_saved_model_predicts_the_labels_it_was_fitted_with(saved, tmp_path, method):
    model, images, output = (str(path) for path in (saved / f"s_{method}.pth", saved / "x.npy", tmp_path / "p.csv"))
    assert main(["predict", model, images, output, "--quiet"]) == 0
    assert np.array_equal(read_predictions(tmp_path / "p.csv"), read_predictions(saved / f"o_{method}.csv"))


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


LINK = ("fitted", "reduction", "links", 1)
GROUPS = ("fitted", "groups")
SAVED_FIELDS = [("fitted",), ("fitted", "reduction"), *[("fitted", "reduction", key) for key in
                                                         ("spec", "standardize", "shift", "scale", "links")],
                ("fitted", "reduction", "links", 0), *[(*LINK, key) for key in ("name", "mean", "components", "scale")],
                GROUPS, *[(*GROUPS, key) for key in ("method", "threshold", "random_state", "n_clusters",
                                                     "fine_clusters", "weights_", "bias_")],
                ("fitted", "label_map"), ("recipe",), ("weight_format",)]
# Left out by design: the fitted groups carry the recipe they were fitted with; weights without
# a format are float32 (as the saved encoder's are).
HARMLESS = {(("recipe",), "missing"), (("weight_format",), "missing")}


@pytest.mark.parametrize("field, kind", field_cases(SAVED_FIELDS, HARMLESS))
def test_every_field_of_a_saved_model_spoiled_is_refused_in_one_line(saved, tmp_path, capsys, field, kind):
    bad = spoil_file(saved / "s_scan.pth", field, kind, tmp_path / "bad.pth")
    before = folder_state(tmp_path)
    code, err = run_main(["predict", bad, saved / "x.npy", tmp_path / "p.csv"], capsys)
    assert_refused(code, err, f"{bad}: ", tmp_path, before)
