"""Compact encoder-only checkpoints, size reports and ONNX export."""

import numpy as np
import pytest
import torch

from aecluster.checkpoint import load_model, read_checkpoint, save_checkpoint
from aecluster.deploy import count_parameters, describe_size, export_onnx, make_deployable
from aecluster.encoding import encode_images
from aecluster.models import build_model


@pytest.mark.parametrize("weights, tolerance", [("float16", 1e-2), ("int8", 5e-2)])
def test_deployable_drops_decoder_and_keeps_codes(tmp_path, two_groups, trained_checkpoint, weights, tolerance):
    make_deployable(trained_checkpoint, tmp_path / "small.pth", weights)
    full, _ = load_model(trained_checkpoint)
    small, payload = load_model(tmp_path / "small.pth")
    assert small.decoder is None and small.projector is None and payload["weight_format"] == weights
    full_codes = encode_images(full, two_groups[0])
    small_codes = encode_images(small, two_groups[0])
    relative = np.abs(full_codes - small_codes).max() / np.abs(full_codes).max()
    assert relative < tolerance
    assert (tmp_path / "small.pth").stat().st_size < trained_checkpoint.stat().st_size / 2
    with pytest.raises(RuntimeError, match="without its decoder"):
        small.reconstruct(torch.zeros(1, 3, 32, 32))


def test_deploying_a_saved_model_keeps_its_groups_and_refuses_a_new_recipe(tmp_path, two_groups, trained_checkpoint):
    from aecluster.api import AEClusterer
    from aecluster.errors import UserInputError

    images = two_groups[0]
    fitted = AEClusterer.from_checkpoint(trained_checkpoint).fit(images)
    fitted.save(tmp_path / "model.pth")
    make_deployable(tmp_path / "model.pth", tmp_path / "small.pth", "float16")
    small = AEClusterer.from_checkpoint(tmp_path / "small.pth")
    assert np.mean(small.predict(images) == fitted.labels_) >= 0.95
    with pytest.raises(UserInputError, match="changing the recipe would not match them"):
        make_deployable(tmp_path / "model.pth", tmp_path / "other.pth", "float16", {"method": "threshold"})
    with pytest.raises(UserInputError, match="int8 weights \\(which move the codes\\) would not match them"):
        make_deployable(tmp_path / "model.pth", tmp_path / "other.pth", "int8")
    assert not (tmp_path / "other.pth").exists()


def test_parameter_counts_like_torchsummary():
    model = build_model("improved")
    frozen = model.encoder.features[0][0].weight.requires_grad_(False)
    counts = count_parameters(model)
    assert counts["non_trainable"] == frozen.numel()
    assert counts["total"] == counts["trainable"] + counts["non_trainable"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_onnx_matches_torch(tmp_path, two_groups, trained_checkpoint):
    onnxruntime = pytest.importorskip("onnxruntime")
    export_onnx(trained_checkpoint, tmp_path / "encoder.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "encoder.onnx"))
    images = two_groups[0][:7]
    codes = session.run(["codes"], {"images": images})[0]
    model, _ = load_model(trained_checkpoint)
    np.testing.assert_allclose(codes, encode_images(model, images), atol=1e-4, rtol=0)


def test_best_trains_its_teacher_then_ships_a_compact_student(tmp_path, two_groups, monkeypatch):
    from dataclasses import replace

    from aecluster import losses
    from aecluster.registry import REGISTRY, TrainSettings
    from aecluster.snapshots import teacher_path
    from aecluster.stages import run_stages

    spec = REGISTRY["best_cnn"]
    assert spec.teacher == "teacher" and spec.deploy_weights == "float16"
    distilled = []
    monkeypatch.setattr(losses, "similarity_distillation",
                        lambda student, teacher: distilled.append(teacher.shape) or student.sum() * 0)
    quick_teacher = replace(REGISTRY["teacher"], settings=replace(REGISTRY["teacher"].settings, epochs=1,
                                                                  batch_size=32))
    monkeypatch.setitem(REGISTRY, "teacher", quick_teacher)
    output = tmp_path / "best.pth"
    settings = TrainSettings.for_model("best_cnn", epochs=1, batch_size=32)
    run_stages("best_cnn", two_groups[0], output, settings, progress=False)
    path = teacher_path(output)
    assert read_checkpoint(path)["model"] == "teacher"
    # Two steps, each matching the two 32-image views and then the 32 originals as given.
    assert distilled == [(64, 128), (32, 128)] * 2
    info = describe_size(output)
    assert info["model"] == "best_cnn" and info["weight_format"] == "float16" and not info["has_decoder"]
    assert info["total"] < 100_000 and info["bytes"] < 225_000
    # A teacher saved before a newer setting existed (here: without distill_originals) is reused.
    payload = read_checkpoint(path)
    del payload["settings"]["distill_originals"]
    save_checkpoint(path, payload)
    teacher_mtime = path.stat().st_mtime_ns
    run_stages("best_cnn", two_groups[0], output, settings, progress=False)
    assert path.stat().st_mtime_ns == teacher_mtime
    run_stages("best_cnn", two_groups[0], output, TrainSettings.for_model("best_cnn", epochs=1, batch_size=32, seed=1),
               progress=False)
    assert read_checkpoint(path)["settings"]["seed"] == 1
