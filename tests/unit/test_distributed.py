"""Training and distillation under torchrun: two CPU processes (gloo), rank 0 alone writes files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aecluster.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command_args", [["train", "--model", "improved"], ["distill", "--student", "best_cnn"],
                                          ["student", "--config", "best_gpu"]],
                         ids=["train", "distill", "gpu-student"])
@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path, image_files, trained_checkpoint, command_args):
    if command_args[0] in ("distill", "student"):
        command_args = [*command_args, "--teacher", str(trained_checkpoint)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "aecluster", *command_args, "--epochs", "3", "--batch-size", "16",
               "--device", "cpu", str(image_files[0]), str(tmp_path / "ddp.pth")]
    result = subprocess.run(command, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1",
                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count(f"wrote {tmp_path / 'ddp.pth'}") == 1  # messages come from rank 0 alone
    if command_args[0] == "train":
        assert result.stderr.count("plan: 'improved', 3 epochs") == 1
    model, payload = load_model(tmp_path / "ddp.pth")
    assert payload["epoch"] == 3 and all(torch.isfinite(p).all() for p in model.parameters())
    folder = tmp_path / "ddp_run"
    assert len(list(folder.glob("step_*.pth"))) == 10
    assert [e["epoch"] for e in json.loads((folder / "history.json").read_text())["epochs"]] == [1, 2, 3]
    assert not list(tmp_path.glob(".*.tmp")) and not list(folder.glob(".*.tmp"))


GATHER_SCRIPT = '''
import json, sys
import torch
import torch.distributed as dist
from aecluster.losses import NTXentLoss, SimilarityDistillationLoss, Step, nt_xent, similarity_distillation

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
z1, z2, teacher = torch.randn(10, 6), torch.randn(10, 6), torch.randn(10, 5)
rows = {0: slice(0, 6), 1: slice(6, 10)}[rank]  # uneven shares
full = [z.clone().requires_grad_() for z in (z1, z2)]
expected = nt_xent(full[0], full[1], 0.2) + similarity_distillation(torch.cat(full), torch.cat([teacher, teacher]))
expected.backward()
local = [z[rows].clone().requires_grad_() for z in (z1, z2)]
codes = torch.cat(local)
step = Step(None, None, None, codes, None, codes, None)
step._cache["teacher_codes"] = torch.cat([teacher[rows], teacher[rows]])
loss = NTXentLoss(0.2)(step) + SimilarityDistillationLoss()(step)
loss.backward()
# Every process computes the whole batch's loss, so each rows' gradient arrives from every
# process: world times the single-process gradient, which DistributedDataParallel's averaging of
# parameter gradients over processes divides back.
ok = bool(torch.allclose(loss, expected, atol=1e-6)) and all(
    torch.allclose(part.grad / world, whole.grad[rows], atol=1e-6) for part, whole in zip(local, full))
json.dump({"ok": ok, "loss": float(loss), "expected": float(expected)}, open(sys.argv[1] + f"/{rank}.json", "w"))
dist.destroy_process_group()
'''


def run_in_two_processes(code: str, folder) -> None:
    """Run a Python script under torchrun with two CPU processes, its one argument `folder`."""
    script = folder / "script.py"
    script.write_text(code)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(folder),
                                 "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_gathered_losses_equal_the_single_process_batch(tmp_path):
    """NT-Xent and similarity distillation see every process's rows: the same loss and gradient as
    one process with the whole batch, whatever the split."""
    run_in_two_processes(GATHER_SCRIPT, tmp_path)
    for rank in range(2):
        report = json.loads((tmp_path / f"{rank}.json").read_text())
        assert report["ok"], report


RANK_WEIGHTS_SCRIPT = '''
import sys
import torch.distributed as dist
sys.path.insert(0, "tests")
from tests.conftest import make_two_group_images
from aecluster.checkpoint import weights_digest
from aecluster.registry import TrainSettings
from aecluster.training import Trainer

dist.init_process_group("gloo")
model = Trainer("improved", TrainSettings.for_model("improved", epochs=1, batch_size=16), device="cpu",
                progress=False).fit(make_two_group_images()[0])
open(sys.argv[1] + f"/{dist.get_rank()}.txt", "w").write(weights_digest(model))
dist.destroy_process_group()
'''


@pytest.mark.slow
def test_every_process_ends_with_the_weights_and_statistics_rank_0_saves(tmp_path):
    """A teacher trained under torchrun is the same model in every process (BatchNorm statistics
    included), so the student is distilled from the teacher that is saved."""
    run_in_two_processes(RANK_WEIGHTS_SCRIPT, tmp_path)
    assert (tmp_path / "0.txt").read_text() == (tmp_path / "1.txt").read_text()
