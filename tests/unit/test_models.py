"""aecluster/models.py: the autoencoder architectures and their builders."""

import pytest
import torch

from aecluster import models
from aecluster.checkpoint import load_model, make_payload, save_checkpoint
from aecluster.errors import UserInputError
from aecluster.models import (
    BasicBlock,
    ConvEncoder,
    ResNetEncoder,
    build_model,
    build_resnet,
    latent_map_shape,
    projection_head,
    register_builder,
    scale_width,
)
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



def images(count=3, seed=0):
    """A batch of [-1, 1] images that a left-right flip changes."""
    return torch.rand(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("width, multiplier, expected", [(64, 1.0, 64), (64, 0.25, 16), (100, 0.9, 88),
                                                         (10, 0.5, 8), (128, 1.5, 192)])
def test_scale_width_rounds_to_a_multiple_of_eight_of_at_least_eight(width, multiplier, expected):
    assert scale_width(width, multiplier) == expected


def test_the_width_multiplier_scales_every_stage():
    model = build_model("improved", {"width_multiplier": 0.5})  # widths 16, 32, 64 -> 8, 16, 32
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sorted({conv.out_channels for conv in convs}) == [8, 16, 32] and model.code_dim == 32


def test_the_pooled_code_is_the_mean_of_the_latent_map_and_inference_averages_the_mirror_image():
    model = build_model("improved").eval()
    batch = images()
    with torch.no_grad():
        maps = model.encoder.feature_map(batch)
        mirror_maps = model.encoder.feature_map(torch.flip(batch, dims=[3]))
        as_given = maps.sum(dim=(2, 3)) / (maps.shape[2] * maps.shape[3])
        torch.testing.assert_close(model.encode_as_given(batch), as_given)
        torch.testing.assert_close(model.encode(batch), (as_given + mirror_maps.mean(dim=(2, 3))) / 2)
        torch.testing.assert_close(model.encode(torch.flip(batch, dims=[3])), model.encode(batch))
    model.train()
    with torch.no_grad():
        torch.testing.assert_close(model.encode(batch), model.encode_as_given(batch))  # training: no averaging


def test_the_baseline_code_is_its_whole_latent_map():
    model = build_model("baseline").eval()
    with torch.no_grad():
        maps = model.encoder.feature_map(images(2))
        assert maps.shape == (2, 256, 4, 4)
        torch.testing.assert_close(model.encode(images(2)), maps.reshape(2, -1))


def test_forward_gives_codes_reconstruction_and_projection():
    model = build_model("improved").eval()
    with torch.no_grad():
        codes, reconstruction, projection = model(images(2))
        torch.testing.assert_close(codes, model.encode_as_given(images(2)))
        torch.testing.assert_close(reconstruction, model.reconstruct(images(2)))
    assert projection.shape == (2, 64) and reconstruction.shape == (2, 3, 32, 32)


def test_an_encoder_only_model_cannot_reconstruct():
    model = build_model("improved")
    model.decoder = None
    with pytest.raises(RuntimeError, match="saved without its decoder"):
        model.reconstruct(images(1))
    assert model(images(1))[1] is None


def test_latent_map_shape_probes_in_eval_mode_and_restores_the_mode():
    model = build_model("improved").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    assert latent_map_shape(model) == (64, 4, 4) and model.training
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())
    assert latent_map_shape(build_model("baseline").eval()) == (256, 4, 4)


def test_projection_head_is_a_two_layer_mlp():
    head = projection_head(32, 8)
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 32), (32, 8)]
    assert head(torch.zeros(5, 32)).shape == (5, 8)


def test_a_basic_block_projects_its_shortcut_only_where_the_shape_changes():
    same, strided, wider = BasicBlock(8, 8, 1), BasicBlock(8, 8, 2), BasicBlock(8, 16, 1)
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert not isinstance(strided.shortcut, torch.nn.Identity) and not isinstance(wider.shortcut, torch.nn.Identity)
    batch = torch.zeros(2, 8, 8, 8)
    assert strided(batch).shape == (2, 8, 4, 4) and wider(batch).shape == (2, 16, 8, 8)
    assert (same.eval()(torch.randn(2, 8, 8, 8)) >= 0).all()  # ends in a ReLU


def test_architectures_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="block must be one of"):
        ConvEncoder((8, 16), "dense")
    with pytest.raises(ValueError, match="need one entry per stage"):
        ResNetEncoder((8, 16), (1, 1, 1))
    with pytest.raises(ValueError, match="a ResNet for 32x32 images has 4 stages"):
        build_resnet(widths=(8, 8, 8))
    with pytest.raises(UserInputError, match="model 'improved' has no setting 'depth'"):
        build_model("improved", {"depth": 3})


def test_a_builder_name_is_registered_once(monkeypatch):
    monkeypatch.setattr(models, "BUILDERS", dict(models.BUILDERS))
    build = register_builder("tiny")(lambda: None)
    assert models.BUILDERS["tiny"] is build
    with pytest.raises(ValueError, match="model builder 'tiny' is registered twice"):
        register_builder("tiny")(lambda: None)
