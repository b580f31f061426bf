"""aecluster/checkpoint.py: checkpoints written and read back (weights only, nothing pickled run),
and checkpoints whose tensors, settings or structure are not what aecluster writes: each is refused
by `read_checkpoint` in one line naming the file, before any model is built or loaded, so every
command that reads one (cluster, size, deploy, ...) exits 2 and writes nothing (those commands'
tests: tests/cli/test_cluster.py)."""

from __future__ import annotations

import pickle
import time

import pytest
import torch

from aecluster import checkpoint
from aecluster.checkpoint import load_model, make_payload, read_checkpoint, save_checkpoint
from aecluster.errors import UserInputError
from aecluster.models import build_model
from tests.conftest import corrupt_checkpoint, replace_tensor, self_nested


def test_the_good_checkpoint_passes_every_check(folder):
    assert read_checkpoint(folder / "m.pth")["model"] == "improved"
    assert checkpoint.load_model(folder / "m.pth")[0].code_dim == 64


def test_a_huge_expanded_tensor_is_refused_before_any_model_is_built(folder, payload, monkeypatch):
    built = []
    monkeypatch.setattr(checkpoint, "build_model", lambda *args: built.append(args))
    corrupt_checkpoint(payload, replace_tensor(lambda t: torch.zeros(1, 1).expand(2**16, 2**16)), folder / "bad.pth")
    with pytest.raises(UserInputError, match="an expanded view"):
        checkpoint.load_model(folder / "bad.pth")
    assert built == []


def test_a_structure_nested_in_itself_is_refused_fast(folder, payload):
    corrupt_checkpoint(payload, self_nested(40), folder / "bad.pth")
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="nest deeper than 16 levels"):
        read_checkpoint(folder / "bad.pth")
    assert time.perf_counter() - start < 5


def test_wide_but_shallow_sharing_is_refused_by_its_count(folder, payload):
    def change(p):
        row = list(range(1000))
        p["notes"] = [[row] * 1000] * 2
    corrupt_checkpoint(payload, change, folder / "bad.pth")
    with pytest.raises(UserInputError, match="it holds over 250,000 values"):
        read_checkpoint(folder / "bad.pth")


def test_round_trip_weights_only(tmp_path):
    model = build_model("improved")
    path = tmp_path / "m.pth"
    save_checkpoint(path, make_payload(model, "improved", {}, {"reduce": "pca:2", "method": "kmeans"}, 3))
    raw = torch.load(path, weights_only=True)
    assert raw["model"] == "improved" and raw["epoch"] == 3.0
    loaded, payload = load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert payload["recipe"]["reduce"] == "pca:2"
    assert not list(tmp_path.glob(".*tmp"))


class _RunsCode:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickle_that_runs_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"format": "aecluster-checkpoint", "payload": _RunsCode()}, path)
    with pytest.raises(UserInputError, match="refused to load"):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out
    with open(path, "wb") as handle:
        pickle.dump(_RunsCode(), handle)
    with pytest.raises(UserInputError):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_foreign_and_mismatched_checkpoints(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pth")
    with pytest.raises(UserInputError, match="not an aecluster checkpoint"):
        read_checkpoint(tmp_path / "foreign.pth")
    payload = make_payload(build_model("improved"), "baseline", {}, {}, 1)
    save_checkpoint(tmp_path / "wrong.pth", payload)
    with pytest.raises(UserInputError, match="weights do not fit model 'baseline'"):
        load_model(tmp_path / "wrong.pth")
    (tmp_path / "trunc.pth").write_bytes((tmp_path / "wrong.pth").read_bytes()[:500])
    with pytest.raises(UserInputError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "trunc.pth")


def test_newer_format_is_refused(tmp_path):
    payload = make_payload(build_model("improved"), "improved", {}, {}, 1)
    payload["format_version"] = 99
    save_checkpoint(tmp_path / "new.pth", payload)
    with pytest.raises(UserInputError, match="upgrade aecluster"):
        read_checkpoint(tmp_path / "new.pth")
