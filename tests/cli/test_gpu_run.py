"""The prepared GPU run (docs/gpu.md), on a CPU with the GPU configuration shrunk: packing, budget, outputs."""

import json
import shutil

import numpy as np
import pytest

from aecluster.checkpoint import read_checkpoint
from aecluster.errors import UserInputError
from tests.conftest import make_two_group_images


@pytest.fixture
def packed(tmp_path):
    """A benchmark folder (64 training and 48 validation images with labels) packed as gpu_data does."""
    from benchmarks.gpu_data import main

    folder = tmp_path / "tiny"
    folder.mkdir()
    for split, count, seed in (("train", 64, 1), ("val", 48, 2)):
        images, labels = make_two_group_images(count, seed)
        np.save(folder / f"{split}X.npy", images)
        np.save(folder / f"{split}Y.npy", labels)
    assert main([str(folder), str(tmp_path / "packed")]) == 0
    return tmp_path / "packed" / "tiny.npz", folder


def test_packing_is_lossless(packed):
    from benchmarks.gpu_data import decode_images, encode_images, load_packed

    data = load_packed(packed[0])
    for name in ("trainX", "valX", "trainY", "valY"):
        assert np.array_equal(data[name], np.load(packed[1] / f"{name}.npy"))
    noise = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)  # no structure to predict
    assert np.array_equal(decode_images(encode_images(noise), noise.shape), noise)


@pytest.mark.slow
def test_gpu_run_trains_scores_and_writes_what_the_device_returns(tmp_path, packed, tiny_gpu_recipe, capsys):
    from benchmarks.gpu_run import main

    out, second = tmp_path / "out", packed[0].with_name("again.npz")
    shutil.copyfile(packed[0], second)
    assert main([str(packed[0]), str(second), "--out", str(out), "--hardware", "gpu",
                 "--work", str(tmp_path / "w")]) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "again_best.pth", "again_codes.npz", "results.json", "tiny_best.pth", "tiny_codes.npz"]
    assert read_checkpoint(out / "tiny_best.pth")["model"] == "best_gpu"
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert list(results) == ["tiny", "again"]
    result = results["tiny"]
    assert result["config"] == "best_gpu" and result["teacher_config"] == "resnet18_teacher"
    assert result["epochs"] == {"teacher": 1, "student": 1} and not result["scaled_to_budget"]
    assert result["teacher_stage"]["seconds"] > 0 and result["student_stage"]["images_per_second"] > 0
    codes = np.load(out / "tiny_codes.npz")
    assert codes["teacher_train"].shape == (64, 32) and codes["student_val"].shape[0] == 48
    printed = capsys.readouterr().out
    assert printed.count("teacher val / train ACC ") == 2 and "tiny: " in printed and "again: " in printed


@pytest.mark.slow
def test_gpu_run_scales_epochs_down_to_its_budget(packed, tiny_gpu_recipe):
    from benchmarks.gpu_data import load_packed
    from benchmarks.gpu_run import planned_epochs

    images = load_packed(packed[0])["trainX"]
    assert planned_epochs("best_gpu", images, [30, 20], 1e9, 0)[0] == [30, 20]
    epochs, seconds = planned_epochs("best_gpu", images, [30, 20], 0.0, 0)
    assert epochs == [1, 1] and len(seconds) == 2


def test_gpu_run_refuses_to_train_the_cpu_recipe_without_a_gpu(tmp_path, packed, monkeypatch, capsys):
    import torch

    from benchmarks.gpu_run import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserInputError, match="no CUDA device is visible"):
        main([str(packed[0]), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_benchmark_folder_given_as_dot_is_named_as_its_files_are(tmp_path, monkeypatch):
    from pathlib import Path

    from benchmarks.gpu_run import benchmark_name

    folder = tmp_path / "two_source"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert [benchmark_name(Path(text)) for text in (".", "../two_source/", "packed/two_source.npz")] == [
        "two_source"] * 3
