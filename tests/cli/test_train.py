"""Commands train, teacher, student and distill: teacher stages, fallbacks, resuming, refused snapshots, torchrun."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster.checkpoint import load_model, read_checkpoint
from aecluster.cli import main
from aecluster.metrics import clustering_accuracy
from aecluster.registry import REGISTRY, TrainSettings
from aecluster.snapshots import run_folder
from aecluster.stages import run_stages
from tests.conftest import (
    assert_refused,
    at,
    corrupt_snapshot,
    field_cases,
    folder_state,
    make_orientation_textures,
    no_fallback,
    parent_of,
    run_main,
    same_weights,
    spoil_file,
    unstable_first,
)

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--epochs", "1", "--batch-size", "32", "--quiet"]


def exit_code(argv):
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def resume_from_hint(stderr):
    """Run the command the interruption message prints; return its exit code."""
    hint = stderr.strip().splitlines()[-1]
    assert hint.startswith("aecluster: training interrupted; resume with: aecluster train --model best")
    return main(shlex.split(hint.split("resume with: ", 1)[1])[1:] + ["--quiet"])


@pytest.fixture
def reference(tmp_path, image_files, quick_teacher):
    output = tmp_path / "ref.pth"
    assert main(["train", "--model", "best_cnn", str(image_files[0]), str(output), *QUICK]) == 0
    return output


@pytest.mark.parametrize(("stop_at", "phase", "steps_after"), [(2, "teacher", 2 + 2), (5, "student", 1)])
def test_interrupted_phase_resumes_that_phase_then_goes_on(tmp_path, image_files, reference, steps, capsys,
                                                           stop_at, phase, steps_after):
    output = tmp_path / "out.pth"
    steps.count, steps.stop_at = 0, stop_at
    assert main(["train", "--model", "best_cnn", str(image_files[0]), str(output), *QUICK]) == 130
    stderr = capsys.readouterr().err
    folder = run_folder(output) / "teacher_run" if phase == "teacher" else run_folder(output)
    snapshot = folder / f"step_{stop_at if phase == 'teacher' else 1:07d}.pth"
    assert f"--resume {snapshot}" in stderr and snapshot.is_file() and not output.exists()
    teacher = run_folder(output) / "teacher.pth"
    mtime = teacher.stat().st_mtime_ns if phase == "student" else None
    steps.count, steps.stop_at = 0, None
    assert resume_from_hint(stderr) == 0
    # Only the rest of the interrupted phase (and the phases after it) ran again.
    assert steps.count == steps_after
    assert snapshot.is_file()
    if mtime is not None:
        assert teacher.stat().st_mtime_ns == mtime
    assert same_weights(teacher, run_folder(reference) / "teacher.pth")
    assert same_weights(output, reference)


def test_a_final_checkpoint_is_not_a_snapshot_to_resume(tmp_path, image_files, capsys):
    output = tmp_path / "o.pth"
    code = main(["train", "--model", "best_cnn", str(image_files[0]), str(output), "--resume",
                 str(ROOT / "checkpoints" / "best.pth")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("aecluster: error: ") and "best.pth: not a training snapshot" in err
    assert not output.exists() and not run_folder(output).exists()


def test_a_snapshot_of_another_model_is_refused(tmp_path, image_files, trained_checkpoint, capsys):
    snapshot = sorted(run_folder(trained_checkpoint).glob("step_*.pth"))[-1]
    code = main(["train", "--model", "best_cnn", str(image_files[0]), str(tmp_path / "o.pth"), "--resume",
                 str(snapshot)])
    assert code == 2 and "snapshot of model 'improved', but --model is 'best_cnn'" in capsys.readouterr().err


def test_stage_commands_train_a_teacher_then_distil_a_student(tmp_path, image_files, capsys):
    teacher, student = tmp_path / "teacher.pth", tmp_path / "student.pth"
    assert main(["teacher", "--config", "teacher", str(image_files[0]), str(teacher), *QUICK]) == 0
    assert main(["student", "--config", "aecluster/configs/best_cnn.yaml", "--teacher", str(teacher),
                 str(image_files[0]), str(student), *QUICK]) == 0
    payload = read_checkpoint(student)
    assert payload["model"] == "best_cnn" and payload["weight_format"] == "float16"
    snapshot = read_checkpoint(sorted(run_folder(student).glob("step_*.pth"))[-1])
    assert snapshot["settings"]["distill_weight"] == REGISTRY["best_cnn"].settings.distill_weight
    assert not (run_folder(student) / "teacher.pth").exists()
    capsys.readouterr()
    assert exit_code(["student", "--config", "teacher", "--teacher", str(teacher), str(image_files[0]),
                      str(student)]) == 2
    assert "config 'teacher' names no teacher; use `aecluster teacher`" in capsys.readouterr().err
    (tmp_path / "best_cnn.yaml").write_text((ROOT / "aecluster" / "configs" / "best_cnn.yaml").read_text())
    assert exit_code(["student", "--config", str(tmp_path / "best_cnn.yaml"), "--teacher", str(teacher),
                      str(image_files[0]), str(student)]) == 2
    assert "best_cnn.yaml: not a registered config" in capsys.readouterr().err


def test_train_best_runs_the_gpu_configuration_where_cuda_is(monkeypatch, tmp_path, image_files, capsys):
    import aecluster.stages

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(aecluster.stages, "run_stages",
                        lambda name, *args, **kwargs: calls.append((name, kwargs)) or (None, {}))
    assert main(["train", "--model", "best", "--hardware", "auto", str(image_files[0]), str(tmp_path / "o.pth"),
                 "--teacher-epochs", "7", "--quiet"]) == 0
    assert calls[0][0] == "best_gpu" and calls[0][1]["teacher_overrides"] == {"epochs": 7}
    calls.clear()
    assert main(["train", "--model", "best", "--hardware", "auto", "--device", "cpu", str(image_files[0]),
                 str(tmp_path / "o.pth"), "--quiet"]) == 0
    assert calls[0][0] == "best" and calls[0][1]["teacher_overrides"] is None
    assert exit_code(["train", "--model", "improved", "--hardware", "gpu", str(image_files[0]),
                      str(tmp_path / "o.pth")]) == 2
    assert "aecluster: error: --hardware gpu: model 'improved' has no GPU configuration" in capsys.readouterr().err


def test_the_old_recipe_flag_still_picks_the_hardware_and_says_its_new_name(monkeypatch, tmp_path, image_files,
                                                                             capsys):
    import aecluster.stages

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(aecluster.stages, "run_stages", lambda name, *args, **kwargs: calls.append(name) or (None, {}))
    assert main(["train", "--model", "best", "--recipe", "auto", str(image_files[0]), str(tmp_path / "o.pth"),
                 "--quiet"]) == 0
    assert calls == ["best_gpu"]
    assert capsys.readouterr().err.splitlines().count("aecluster: --recipe is now --hardware") == 1


def test_train_best_on_a_cpu_says_it_trains_the_cpu_configuration_then_fits_the_dictionary_pair(
        monkeypatch, tmp_path, image_files, small_dictionary, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_fallback(monkeypatch)
    output = tmp_path / "best.pth"
    assert main(["train", "--model", "best", "--hardware", "auto", str(image_files[0]), str(output)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("fit ")]
    assert lines[0] == f"train 'best' (hardware auto): 64 images from {image_files[0]} -> {output}; loading torch"
    assert lines[1] == ("no CUDA device: training the CPU configuration 'best'; the GPU configuration 'best_gpu' "
                        "needs one (docs/gpu.md)")
    assert re.fullmatch(r"stage 1/2: teacher 'patches', 32 atoms fitted on 10,000 patches, "
                        r"(about \d+ (s|min|h)|under a second) -> .*teacher\.pth", lines[2]), lines[2]
    assert lines[3].startswith("stage 2/2: student 'best' distilled from it, 32 atoms merged from")
    assert read_checkpoint(output)["model"] == "best" and read_checkpoint(output)["weight_format"] == "float16"
    assert read_checkpoint(run_folder(output) / "teacher.pth")["model"] == "patches"


def test_teacher_epochs_shorten_the_teacher_stage_and_resume_keeps_them(tmp_path, image_files, tiny_gpu_recipe,
                                                                        steps, capsys):
    output = tmp_path / "gpu.pth"
    steps.count, steps.stop_at = 0, 5  # 4 teacher steps (2 epochs of 64 images), then the student's first
    assert main(["train", "--model", "best", "--hardware", "gpu", str(image_files[0]), str(output),
                 "--teacher-epochs", "2", *QUICK]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--model best_gpu" in hint and "--teacher-epochs 2" in hint and "teacher_run" not in hint
    teacher = run_folder(output) / "teacher.pth"
    assert read_checkpoint(teacher)["settings"]["epochs"] == 2
    mtime = teacher.stat().st_mtime_ns
    steps.stop_at = None
    command = shlex.split(hint.split("resume with: ", 1)[1])[1:]
    without = [part for part in command if part not in ("--teacher-epochs", "2")]
    assert main(without + ["--quiet"]) == 0  # the student phase keeps its teacher even without the option
    assert teacher.stat().st_mtime_ns == mtime and read_checkpoint(output)["model"] == "best_gpu"


@pytest.mark.slow
def test_stage_pair_writes_weights_only_checkpoints_that_cluster_textures(tmp_path, small_dictionary, capsys):
    images, labels = make_orientation_textures(200)
    np.save(tmp_path / "x.npy", images)
    assert main(["train", "--model", "best", str(tmp_path / "x.npy"), str(tmp_path / "best.pth")]) == 0
    teacher, student = read_checkpoint(tmp_path / "best_run" / "teacher.pth"), read_checkpoint(tmp_path / "best.pth")
    assert teacher["model"] == "patches" and teacher["dictionary"]["patches"] == 10_000
    assert student["model"] == "best" and student["weight_format"] == "float16"
    # the textures split alike for every seed, subsample and 100 images alone: the default recipe is kept
    assert (student["recipe"]["reduce"], student["recipe"]["method"]) == ("wpca:8", "kmeans")
    assert "recipe: wpca:8 + kmeans chosen" in capsys.readouterr().err
    assert torch.equal(student["state_dict"]["encoder.centres"], teacher["state_dict"]["encoder.centres"].half())
    torch.load(tmp_path / "best.pth", weights_only=True)
    assert main(["cluster", str(tmp_path / "x.npy"), str(tmp_path / "best.pth"), str(tmp_path / "p.csv"),
                 "--quiet"]) == 0
    predicted = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert clustering_accuracy(predicted, labels) >= 0.95
    capsys.readouterr()
    # the teacher is reused when fitted with the same seed, settings and images, and refitted otherwise
    teacher_file = tmp_path / "best_run" / "teacher.pth"
    stamp = teacher_file.stat().st_mtime_ns
    run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    assert teacher_file.stat().st_mtime_ns == stamp
    run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best", seed=1), progress=False)
    assert read_checkpoint(teacher_file)["settings"]["seed"] == 1


def test_stage_commands_fit_the_teacher_then_the_student_and_a_saved_model_predicts(tmp_path, small_dictionary,
                                                                                    capsys):
    images, labels = make_orientation_textures(200)
    np.save(tmp_path / "x.npy", images)
    new_images, new_labels = make_orientation_textures(60, seed=1)
    np.save(tmp_path / "new.npy", new_images)
    assert main(["teacher", "--config", "patches", str(tmp_path / "x.npy"), str(tmp_path / "t.pth"), "--quiet"]) == 0
    assert main(["student", "--config", "best", "--teacher", str(tmp_path / "t.pth"), str(tmp_path / "x.npy"),
                 str(tmp_path / "s.pth"), "--quiet"]) == 0
    student, teacher = read_checkpoint(tmp_path / "s.pth"), read_checkpoint(tmp_path / "t.pth")
    assert (student["model"], teacher["model"], student["weight_format"]) == ("best", "patches", "float16")
    assert torch.equal(student["state_dict"]["encoder.centres"], teacher["state_dict"]["encoder.centres"].half())
    assert main(["cluster", str(tmp_path / "x.npy"), str(tmp_path / "s.pth"), str(tmp_path / "p.csv"),
                 "--save-model", str(tmp_path / "fitted.pth"), "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "fitted.pth"), str(tmp_path / "new.npy"), str(tmp_path / "new.csv"),
                 "--quiet"]) == 0
    predicted = np.loadtxt(tmp_path / "new.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert clustering_accuracy(predicted, new_labels) >= 0.95
    capsys.readouterr()
    assert main(["student", "--config", "best", "--teacher", str(tmp_path / "t.pth"), str(tmp_path / "x.npy"),
                 str(tmp_path / "s2.pth"), "--resume", str(tmp_path / "t.pth")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "t.pth" in error and not (tmp_path / "s2.pth").exists()


def test_when_the_dictionarys_recipes_do_not_hold_the_more_stable_cnn_pair_ships(
        tmp_path, small_dictionary, tiny_cnn_pair, monkeypatch, capsys):
    images, _ = make_orientation_textures(200)
    np.save(tmp_path / "x.npy", images)
    calls = unstable_first(monkeypatch, (0.6, 0.7))
    assert main(["train", "--model", "best", str(tmp_path / "x.npy"), str(tmp_path / "best.pth")]) == 0
    err = capsys.readouterr().err
    assert "if the teacher's first recipe does not hold: teacher 'teacher'" in err  # in the plan, before training
    assert err.index("if the teacher's first recipe does not hold") < err.index("training 'teacher' to judge")
    student = read_checkpoint(tmp_path / "best.pth")
    cnn = read_checkpoint(tmp_path / "best_run" / "fallback_teacher.pth")
    assert (student["model"], cnn["model"]) == ("best_cnn", "teacher")
    # the CNN's own recipes were judged (the teacher config's first), and the chosen one is written
    assert calls[1] == ["kmeans", "scan"][: len(calls[1])] and calls[1][0] == "kmeans"
    assert student["recipe"]["reduce"] == "l2,pca:32" and "of 'teacher' chosen: training student 'best_cnn'" in err
    # the dictionary teacher records its judgement, so that a rerun reuses it
    recorded = read_checkpoint(tmp_path / "best_run" / "teacher.pth")["recipe_judgement"]
    assert [row["seed_agreement"] for row in recorded] == [0.6, 0.7]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["teacher", "best_cnn"])
def test_an_interrupted_fallback_resumes_its_phase_from_the_printed_command(
        tmp_path, small_dictionary, tiny_cnn_pair, monkeypatch, capsys, phase):
    import shlex

    import aecluster.training as training

    images, _ = make_orientation_textures(200)
    np.save(tmp_path / "x.npy", images)
    unstable_first(monkeypatch, (0.6, 0.7))
    steps = {"count": 0}

    def stop_requested(local, world, device):  # the teacher has 4 steps (one epoch); the student comes after
        steps["count"] += 1
        return steps["count"] == (2 if phase == "teacher" else 6)

    monkeypatch.setattr(training, "stop_requested", stop_requested)
    output = tmp_path / "best.pth"
    assert main(["train", "--model", "best", str(tmp_path / "x.npy"), str(output), "--quiet"]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    folder = "best_run/fallback_teacher_run" if phase == "teacher" else "best_run"
    assert f"--resume {tmp_path / folder}" in hint and not output.exists()
    monkeypatch.setattr(training, "stop_requested", lambda local, world, device: False)
    assert main(shlex.split(hint.split("resume with: ", 1)[1])[1:] + ["--quiet"]) == 0
    assert read_checkpoint(output)["model"] == "best_cnn"
    assert read_checkpoint(tmp_path / "best_run" / "fallback_teacher.pth")["model"] == "teacher"


def dropping(*keys):
    """A change removing payload[keys[0]]...[keys[-1]]."""
    return lambda payload: parent_of(payload, keys).pop(keys[-1])


def one_step_state(payload):
    return payload["optimizer"]["state"][0]


# (case, change of the snapshot's dictionary, message fragment)
CORRUPTIONS = [
    ("step a string", at("step")("2"), "'step' is '2', expected a non-negative integer"),
    ("step negative", at("step")(-1), "'step' is -1"),
    ("step a fraction", at("step")(1.5), "'step' is 1.5"),
    ("epochs a string", at("settings", "epochs")("1"), "settings: epochs is '1', expected int"),
    ("lr NaN", at("settings", "lr")(float("nan")), "settings: lr is nan, expected a number in (0, 10]"),
    ("lr infinite", at("settings", "lr")(float("inf")), "lr is inf"),
    ("batch size 0", at("settings", "batch_size")(0), "batch_size is 0, expected a positive integer"),
    ("an unknown setting", at("settings", "speed")(3), "unknown setting(s) speed"),
    ("settings a list", at("settings")([1]), "expected a mapping of settings, found list"),
    ("no settings", dropping("settings"), "not a training snapshot (no settings)"),
    # Without its config the weights (of a quarter width) do not fit the registered model.
    ("no config", dropping("config"), "weights do not fit model 'improved' as its settings describe it"),
    ("config a string", at("config")("wide"), "'config' is of type str, expected a dictionary"),
    ("config None", at("config")(None), "weights do not fit model 'improved'"),
    ("config widths 2^40", at("config", "widths")([2**40] * 3), "widths is [1099511627776"),
    ("an empty optimizer", at("optimizer")({}), "optimizer holds the keys [], expected a 'state'"),
    ("optimizer a tensor", at("optimizer")(torch.zeros(2)), "optimizer holds a Tensor"),
    ("param_groups without params", dropping("optimizer", "param_groups", 0, "params"),
     "optimizer.param_groups.0 holds the keys"),
    ("one parameter numbered", at("optimizer", "param_groups", 0, "params")([0]),
     "its optimizer steps 1 parameters in 1 groups, but its model and heads have"),
    ("a group setting missing", dropping("optimizer", "param_groups", 0, "betas"), "param_groups.0 holds the keys"),
    ("lr of a group NaN", at("optimizer", "param_groups", 0, "lr")(float("nan")),
     "optimizer.param_groups.0.lr is nan, expected a non-negative number"),
    ("betas of one value", at("optimizer", "param_groups", 0, "betas")((0.9,)),
     "optimizer.param_groups.0.betas is (0.9,), expected 2 values"),
    ("amsgrad a string", at("optimizer", "param_groups", 0, "amsgrad")("no"), "amsgrad is 'no', expected bool"),
    ("moments of another shape", lambda p: one_step_state(p).update(exp_avg=torch.zeros(5)),
     "optimizer.state.0.exp_avg is (5,), expected a floating tensor of shape (8, 3, 3, 3)"),
    ("moments NaN", lambda p: one_step_state(p)["exp_avg_sq"].fill_(float("nan")), "NaN or infinite values"),
    ("a state entry missing", lambda p: one_step_state(p).pop("exp_avg"), "optimizer.state.0 holds the keys"),
    ("the state of parameter 10^6", lambda p: p["optimizer"]["state"].update({10**6: one_step_state(p)}),
     "optimizer.state.1000000 is the state of no parameter"),
    ("a foreign scheduler", at("scheduler")({"step_size": 30, "gamma": 0.1, "base_lrs": [0.1], "last_epoch": 2}),
     "scheduler holds the keys ['base_lrs', 'gamma', 'last_epoch', 'step_size'], expected the keys"),
    ("scheduler at another step", at("scheduler", "last_epoch")(7),
     "its schedule is at step 7, the snapshot at step 2"),
    ("scheduler base_lrs a string", at("scheduler", "base_lrs")("0.1"),
     "scheduler.base_lrs is '0.1', expected 1 values"),
    ("history a string", at("history")("none"), "'history' is not a dictionary whose 'epochs' and 'checkpoints'"),
    ("history epochs a string", at("history", "epochs")("x"), "'history' is not a dictionary whose"),
    ("history holding a tensor", at("history", "note")(torch.zeros(1)), "'history' is not plain JSON data"),
    ("history holding NaN", at("history", "loss")(float("nan")), "'history' is not plain JSON data"),
    ("heads a tensor", at("heads")(torch.zeros(2)), "'heads' is a Tensor, expected a dictionary of tensors"),
]
IDS = [case for case, *_ in CORRUPTIONS]


@pytest.mark.parametrize("case, change, fragment", CORRUPTIONS, ids=IDS)
def test_resume_refuses_a_corrupt_snapshot_before_training(snapshot, tmp_path, capsys, case, change, fragment):
    bad = corrupt_snapshot(snapshot, change, tmp_path)
    before = folder_state(tmp_path)
    code, err = run_main(["train", "--model", "improved", snapshot.parents[1] / "x.npy", tmp_path / "out.pth",
                          "--resume", bad, "--quiet"], capsys)
    assert_refused(code, err, fragment, tmp_path, before)
    assert f"{bad}: " in err


GROUP = ("optimizer", "param_groups", 0)
SNAPSHOT_FIELDS = [*[(key,) for key in ("format", "format_version", "aecluster_version", "model", "config", "recipe",
                                        "epoch", "state_dict", "step", "optimizer", "scheduler", "heads", "settings",
                                        "history", "images", "teacher")],
                   *[("settings", name) for name in TrainSettings.__dataclass_fields__],
                   ("optimizer", "state"), ("optimizer", "param_groups"), GROUP,
                   *[(*GROUP, key) for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach",
                                               "capturable", "differentiable", "fused", "decoupled_weight_decay",
                                               "initial_lr", "params")],
                   *[("optimizer", "state", 0, key) for key in ("step", "exp_avg", "exp_avg_sq")],
                   *[("scheduler", key) for key in ("base_lrs", "last_epoch", "_step_count", "_is_initial",
                                                    "_get_lr_called_within_step", "_last_lr", "lr_lambdas")],
                   ("history", "epochs"), ("history", "checkpoints"), ("history", "checkpoints", 0)]
# Left out by design: as for any checkpoint (format 0, defaults for settings and recipe), a run
# without objective heads, a snapshot from before fingerprints were kept (trusted), settings that
# did not exist yet (their defaults), a history short of an entry (it is only extended and
# written); the version that wrote it is for information.
OPTIONAL = [("format_version",), ("aecluster_version",), ("recipe",), ("epoch",), ("heads",), ("images",),
            ("teacher",), *[("settings", name) for name in TrainSettings.__dataclass_fields__],
            ("history", "checkpoints", 0)]
HARMLESS = {(field, "missing") for field in OPTIONAL} | {(("aecluster_version",), kind)
                                                         for kind in ("wrong type", "non-finite")}


@pytest.mark.parametrize("field, kind", field_cases(SNAPSHOT_FIELDS, HARMLESS))
def test_every_field_of_a_snapshot_spoiled_is_refused_in_one_line(snapshot, tmp_path, capsys, field, kind):
    bad = spoil_file(snapshot, field, kind, tmp_path / "bad.pth")
    before = folder_state(tmp_path)
    code, err = run_main(["train", "--model", "improved", snapshot.parents[1] / "x.npy", tmp_path / "out.pth",
                          "--resume", bad, "--quiet"], capsys)
    assert_refused(code, err, f"{bad}: ", tmp_path, before)


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
