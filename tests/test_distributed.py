"""Training and distillation under torchrun: two CPU processes (gloo), rank 0 alone writes files."""

import json
import subprocess
import sys

import pytest
import torch

from aecluster.checkpoint import load_model


@pytest.mark.parametrize("command_args", [["train", "--model", "improved"], ["distill", "--student", "best"]],
                         ids=["train", "distill"])
def test_torchrun_two_cpu_processes(tmp_path, image_files, trained_checkpoint, command_args):
    if command_args[0] == "distill":
        command_args = [*command_args, "--teacher", str(trained_checkpoint)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "aecluster", *command_args, "--epochs", "3", "--batch-size", "16",
               "--device", "cpu", "--quiet", str(image_files[0]), str(tmp_path / "ddp.pth")]
    result = subprocess.run(command, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1",
                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    model, payload = load_model(tmp_path / "ddp.pth")
    assert payload["epoch"] == 3 and all(torch.isfinite(p).all() for p in model.parameters())
    folder = tmp_path / "ddp_run"
    assert len(list(folder.glob("step_*.pth"))) == 10
    assert [e["epoch"] for e in json.loads((folder / "history.json").read_text())["epochs"]] == [1, 2, 3]
    assert not list(tmp_path.glob(".*.tmp")) and not list(folder.glob(".*.tmp"))
