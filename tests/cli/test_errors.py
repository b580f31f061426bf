"""Paths refused for lack of permission (`cli.errors.path_refused`), as an ordinary user meets them:
an unreadable images file, checkpoint, CSV, labels file or image folder, and an output folder
without search permission, are one line naming the path, exit 2, and nothing written.

Root reads everything, so the commands run in a child process without the capabilities that
let root ignore permission bits (`setpriv --bounding-set -dac_override,-dac_read_search`): the
files, owned by root with their bits cleared, are then refused as to any user. Without
`setpriv` (or where dropping them does not take), the tests are skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster.checkpoint import make_payload
from aecluster.cli.errors import missing_module_message, path_refused
from aecluster.models import build_model
from aecluster.registry import model_config
from tests.conftest import folder_state

ROOT = Path(__file__).resolve().parents[2]
# Runs each command of argv lists read from stdin; prints exit code and stderr of each as JSON.
RUNNER = """
import contextlib, io, json, sys
from aecluster.cli import main
results = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        except BaseException as error:
            code = f"raised {type(error).__name__}: {error}"
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""
# (case, arguments with {name} for a workspace path, the path the message must name)
CASES = [
    ("cluster: unreadable images", ["cluster", "{xu.npy}", "{m.pth}", "{o.csv}"], "xu.npy"),
    ("cluster: unreadable checkpoint", ["cluster", "{x.npy}", "{mu.pth}", "{o.csv}"], "mu.pth"),
    ("cluster: unreadable image folder", ["cluster", "{closed}", "{m.pth}", "{o.csv}"], "closed"),
    ("cluster: image folder without search permission", ["cluster", "{unsearchable}", "{m.pth}", "{o.csv}"],
     "unsearchable/a.png"),
    ("cluster: output folder without search permission", ["cluster", "{x.npy}", "{m.pth}", "{unsearchable/o.csv}"],
     "unsearchable/o.csv"),
    ("cluster: unreadable reference labels", ["cluster", "{x.npy}", "{m.pth}", "{o.csv}", "--reference", "{x.npy}",
                                              "{yu.npy}"], "yu.npy"),
    ("evaluate: unreadable CSV", ["evaluate", "{pu.csv}", "{y.npy}"], "pu.csv"),
    ("evaluate: unreadable labels", ["evaluate", "{p.csv}", "{yu.npy}"], "yu.npy"),
    ("pairs: unreadable pairs CSV", ["pairs", "{x.npy}", "{m.pth}", "{pu.csv}", "{o.csv}"], "pu.csv"),
    ("size: unreadable checkpoint", ["size", "{mu.pth}"], "mu.pth"),
    ("predict: unreadable model", ["predict", "{mu.pth}", "{x.npy}", "{o.csv}"], "mu.pth"),
    ("train: unreadable images", ["train", "{xu.npy}", "{t.pth}", "--quiet"], "xu.npy"),
]


def ordinary_user_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which a file of `folder` with its permission bits cleared cannot
    be read (none is needed by an ordinary user), or None where there is no such prefix."""
    secret = folder / "secret"
    secret.write_text("x")
    secret.chmod(0)
    setpriv = shutil.which("setpriv")
    prefix = [] if os.geteuid() != 0 else [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    try:
        if None in prefix or subprocess.run([*prefix, "cat", str(secret)], capture_output=True).returncode == 0:
            return None
    finally:
        secret.unlink()
    return prefix


def workspace(folder: Path) -> None:
    """The inputs of the cases: each readable one (x.npy, y.npy, m.pth, p.csv) and an unreadable
    copy (xu.npy, yu.npy, mu.pth, pu.csv), a folder of images without read permission (closed)
    and one without search permission (unsearchable)."""
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "x.npy", images)
    np.save(folder / "y.npy", np.arange(8) % 2)
    torch.save(make_payload(build_model("improved"), "improved", model_config("improved"), {}, 1), folder / "m.pth")
    (folder / "p.csv").write_text("id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(8)))
    for name in ("x.npy", "y.npy", "m.pth", "p.csv"):
        locked = folder / name.replace(".", "u.")
        shutil.copy(folder / name, locked)
        locked.chmod(0)
    for name, mode in (("closed", 0o300), ("unsearchable", 0o600)):
        (folder / name).mkdir()
        (folder / name / "a.png").write_bytes(b"")
        (folder / name).chmod(mode)


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[Path, dict, list]:
    """The workspace, its state before the commands, and each case's (exit code, stderr), all
    run in one child process as an ordinary user would run them."""
    folder = tmp_path_factory.mktemp("permissions")
    prefix = ordinary_user_prefix(folder)
    if prefix is None:
        pytest.skip("no way here to run a command that root's permissions do not override (setpriv)")
    workspace(folder)
    before = folder_state(folder)
    argvs = [[str(folder / part[1:-1]) if part.startswith("{") else part for part in argv] for _, argv, _ in CASES]
    done = subprocess.run([*prefix, sys.executable, "-c", RUNNER], input=json.dumps(argvs), capture_output=True,
                          text=True, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    yield folder, before, json.loads(done.stdout)
    for name in ("closed", "unsearchable"):
        (folder / name).chmod(0o700)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case for case, *_ in CASES])
def test_a_path_this_user_may_not_use_is_one_line_and_writes_nothing(refused, index):
    folder, before, results = refused
    code, err = results[index]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (f"aecluster: error: {folder / CASES[index][2]}: permission denied: this user may not read "
                        "or write it, or search a folder on its path")
    assert folder_state(folder) == before


def test_other_system_errors_are_left_to_their_traceback():
    assert path_refused(FileExistsError(17, "File exists", "x")) is None
    assert path_refused(PermissionError(1, "Operation not permitted", "x")).startswith("x: operation not permitted:")


def test_missing_dependency_hint_installs_the_checkout_that_holds_setup_py():
    message = missing_module_message(ModuleNotFoundError("No module named 'torch'", name="torch.nn"))
    assert (ROOT / "setup.py").is_file()
    assert message == (f"this command needs the Python package 'torch', which is not installed; install it with: "
                       f"pip install -e {ROOT} (aecluster and its dependencies)")
