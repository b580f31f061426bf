"""Commands deploy and size."""

import torch

from aecluster.checkpoint import load_model, read_checkpoint
from aecluster.cli import main
from aecluster.deploy import describe_size


def test_deploy_sets_the_recipe_it_ships_with_and_keeps_the_weights(tmp_path, trained_checkpoint, capsys):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    assert main(["deploy", str(trained_checkpoint), str(first)]) == 0
    assert main(["deploy", str(first), str(second), "--method", "scan", "--reduce", "l2,wpca:8"]) == 0
    before, after = read_checkpoint(first), read_checkpoint(second)
    assert after["recipe"] == {**before["recipe"], "method": "scan", "reduce": "l2,wpca:8"}
    assert all(torch.equal(before["state_dict"][key], after["state_dict"][key]) for key in before["state_dict"])
    capsys.readouterr()
    assert main(["deploy", str(first), str(tmp_path / "c.pth"), "--reduce", "pca:x"]) == 2
    assert "bad reducer 'pca:x'" in capsys.readouterr().err and not (tmp_path / "c.pth").exists()
    payload = read_checkpoint(first)
    payload["recipe"]["n_clusters"] = 3
    torch.save(payload, tmp_path / "three.pth")
    assert main(["deploy", str(tmp_path / "three.pth"), str(tmp_path / "c.pth"), "--method", "threshold"]) == 2
    assert "splits two ways only" in capsys.readouterr().err and not (tmp_path / "c.pth").exists()


def test_size_command(trained_checkpoint, capsys):
    assert main(["size", str(trained_checkpoint)]) == 0
    out = capsys.readouterr().out
    info = describe_size(trained_checkpoint)
    assert f"total params: {info['total']:,}" in out
    assert f"bytes on disk: {trained_checkpoint.stat().st_size:,}" in out
    encoder = sum(tensor.numel() for key, tensor in load_model(trained_checkpoint)[0].state_dict().items()
                  if key.startswith("encoder.") and "running_" not in key and "num_batches" not in key)
    assert f"encoder params: {encoder:,} (what clustering uses)" in out and encoder < info["total"]
