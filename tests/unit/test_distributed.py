"""Training under torchrun, two CPU processes (gloo), through the library: the losses see the whole
batch and every process ends with rank 0's weights (the commands under torchrun: tests/cli/test_train.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
