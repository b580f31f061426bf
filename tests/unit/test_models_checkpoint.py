import pickle

import pytest
import torch

from aecluster.checkpoint import load_model, make_payload, read_checkpoint, save_checkpoint
from aecluster.errors import UserInputError
from aecluster.models import build_model
from aecluster.registry import REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_encodes_and_reconstructs(name):
    model = build_model(name).eval()
    batch = torch.rand(2, 3, 32, 32) * 2 - 1
    codes, reconstruction, _ = model(batch)
    assert codes.shape == (2, model.code_dim)
    if REGISTRY[name].builder == "patches":  # a fitted dictionary: an encoder without decoder
        assert reconstruction is None and model.decoder is None
        return
    assert reconstruction.shape == batch.shape
    assert reconstruction.abs().max() <= 1


def test_baseline_matches_course_architecture():
    model = build_model("baseline")
    assert model.code_dim == 256 * 4 * 4
    kernels = [m.kernel_size for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert kernels == [(5, 5), (9, 9), (17, 17)]


def test_unknown_model():
    with pytest.raises(UserInputError, match="unknown model 'huge'"):
        build_model("huge")


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


def test_hybrid_encoder_mixes_families_per_stage_and_round_trips(tmp_path):
    def encoder_params(block):
        return sum(p.numel() for p in build_model("plaincnn", {"block": block}).encoder.parameters())

    hybrid = ["plain", "plain", "separable"]
    assert encoder_params("separable") < encoder_params(hybrid) < encoder_params("plain")
    model = build_model("plaincnn", {"block": hybrid}).eval()
    depthwise = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [m.in_channels for m in depthwise] == [64, 128]
    assert model.encoder.feature_map(torch.zeros(1, 3, 32, 32)).shape == (1, 128, 4, 4)
    path = tmp_path / "hybrid.pth"
    save_checkpoint(path, make_payload(model, "plaincnn", {"block": hybrid}, {"reduce": "pca:2"}, 1))
    loaded, payload = load_model(path)
    assert payload["config"]["block"] == hybrid
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(ValueError, match="one per stage"):
        build_model("plaincnn", {"block": ["plain", "separable"]})
    bad = tmp_path / "bad.pth"
    save_checkpoint(bad, make_payload(model, "plaincnn", {"block": ["plain", "dense", "plain"]}, {}, 1))
    with pytest.raises(UserInputError, match=r"bad.pth: its settings do not build model 'plaincnn' \(block must be"):
        load_model(bad)


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
