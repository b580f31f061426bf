"""aecluster/models.py: the autoencoder architectures and their builders."""

import pytest
import torch

from aecluster.checkpoint import load_model, make_payload, save_checkpoint
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


def test_resnet18_is_the_cifar_variant_with_a_light_decoder():
    from aecluster.models import BasicBlock, build_model

    model = build_model("resnet18_teacher").eval()
    stem = model.encoder.features[0]
    assert (stem.kernel_size, stem.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 8
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert 11_000_000 < encoder < 11_300_000
    assert sum(p.numel() for p in model.decoder.parameters()) < 0.06 * encoder
    with torch.no_grad():
        maps = model.encoder.feature_map(torch.zeros(2, 3, 32, 32))
        codes, reconstruction, projection = model(torch.zeros(2, 3, 32, 32))
    assert maps.shape == (2, 512, 4, 4) and codes.shape == (2, 512) and reconstruction.shape == (2, 3, 32, 32)

