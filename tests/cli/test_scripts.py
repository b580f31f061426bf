"""The README's shell scripts: usage errors, and the whole flow from another working directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"hw9_best.sh": "<trainX_npy> <checkpoint> <prediction_path>",
           "train_baseline.sh": "<trainX_npy> <checkpoint>",
           "train_improved.sh": "<trainX_npy> <checkpoint>",
           "train_best.sh": "<trainX_npy> <checkpoint>"}


def run_script(name, *args, cwd):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("args", [(), ("a", "b", "c", "d")])
def test_wrong_argument_count_prints_usage(tmp_path, name, args):
    result = run_script(name, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"usage: bash {name} {SCRIPTS[name]}"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_an_option_given_to_a_script_prints_usage_and_runs_nothing(tmp_path, name):
    paths = ["x.npy", "--help", "pred.csv"][: SCRIPTS[name].count("<")]
    result = run_script(name, *paths, cwd=tmp_path)
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []
    assert result.stderr.strip() == (f"usage: bash {name} {SCRIPTS[name]} (the script takes no options; found "
                                     "'--help': a path starting with '-' is written ./--help)")


@pytest.mark.slow
def test_hw9_best_from_other_directory(tmp_path, image_files, trained_checkpoint):
    result = run_script("hw9_best.sh", image_files[0], trained_checkpoint, "pred.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pred.csv").read_text().startswith("id,label\n0,")


@pytest.mark.slow
def test_hw9_best_bad_input(tmp_path, trained_checkpoint):
    result = run_script("hw9_best.sh", tmp_path / "missing.npy", trained_checkpoint, "pred.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("missing.npy: no such file or folder")
    assert not (tmp_path / "pred.csv").exists()


def test_train_script_bad_input(tmp_path):
    result = run_script("train_improved.sh", tmp_path / "missing.npy", "out.pth", cwd=tmp_path)
    assert result.returncode == 2 and "no such file or folder" in result.stderr


@pytest.mark.parametrize("name", ["pred.csv", "model.pth", "new.csv"])
def test_the_readmes_outputs_stay_out_of_git_status(name):
    """A clone that ran the README's commands at its root sees no untracked outputs."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert f" {name}" in (ROOT / "README.md").read_text()
    ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT)
    assert ignored.returncode == 0, f"{name} is not in .gitignore"
    kept = subprocess.run(["git", "check-ignore", "-q", f"checkpoints/{name}"], cwd=ROOT)
    assert kept.returncode == 1, f"checkpoints/{name} must not be ignored"
