"""Stages: a student config runs its teacher stage then its own; an interrupted phase resumes itself."""

import logging
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aecluster import training
from aecluster.checkpoint import read_checkpoint
from aecluster.cli import main
from aecluster.registry import REGISTRY
from aecluster.snapshots import run_folder

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--epochs", "1", "--batch-size", "32", "--quiet"]


@pytest.fixture
def quick_teacher(monkeypatch):
    """'best' with a 2-epoch teacher: 4 teacher steps then 2 student steps on 64 images."""
    spec = REGISTRY["teacher"]
    monkeypatch.setitem(REGISTRY, "teacher", replace(spec, settings=replace(spec.settings, epochs=2, batch_size=32)))


@pytest.fixture
def steps(monkeypatch):
    """Counts training steps; `steps.stop_at = N` makes step N behave as if SIGTERM arrived."""
    class Steps:
        count, stop_at = 0, None

    def stop_requested(local, world, device):
        Steps.count += 1
        return Steps.count == Steps.stop_at

    monkeypatch.setattr(training, "stop_requested", stop_requested)
    return Steps


def exit_code(argv):
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def same_weights(first, second):
    a, b = read_checkpoint(first)["state_dict"], read_checkpoint(second)["state_dict"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


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


@pytest.mark.slow
def test_plan_with_measured_times_changes_no_weight(tmp_path, two_groups, quick_teacher):
    from aecluster.registry import TrainSettings
    from aecluster.stages import run_stages

    settings = TrainSettings.for_model("best_cnn", epochs=1, batch_size=32)
    messages = []
    run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, say=messages.append, estimate=True,
               progress=False)
    assert [m.split(":")[0] for m in messages] == ["stage 1/2", "stage 2/2"]
    assert all(re.search(r", about \d+ (s|min|h)\b", m) for m in messages) and "measured" in messages[1]
    run_stages("best_cnn", two_groups[0], tmp_path / "b.pth", settings, progress=False)
    assert same_weights(tmp_path / "a.pth", tmp_path / "b.pth")
    assert same_weights(run_folder(tmp_path / "a.pth") / "teacher.pth", run_folder(tmp_path / "b.pth") / "teacher.pth")
    messages.clear()
    run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, say=messages.append, estimate=True,
               progress=False)
    assert "reused" in messages[0]
    messages.clear()
    run_stages("best_cnn", two_groups[0][::-1], tmp_path / "a.pth", settings, say=messages.append, progress=False)
    assert "reused" not in messages[0]  # other images: the teacher is trained again


def test_a_resumed_teacher_plan_says_its_step_and_times_only_the_steps_left(tmp_path, two_groups, quick_teacher,
                                                                           steps, monkeypatch):
    from aecluster import plans, stages
    from aecluster.registry import TrainSettings
    from aecluster.snapshots import TrainingInterrupted

    settings = TrainSettings.for_model("best_cnn", epochs=1, batch_size=32)
    steps.count, steps.stop_at = 0, 1  # the teacher stops after its first of 4 steps
    with pytest.raises(TrainingInterrupted) as stopped:
        stages.run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, progress=False)
    steps.stop_at = None
    monkeypatch.setattr(plans, "step_seconds", lambda *args, **kwargs: 10.0)
    messages = []
    stages.run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, resume=stopped.value.snapshot,
                      say=messages.append, estimate=True, progress=False)
    # 3 teacher steps left of 4, then the student's 2 steps, 10 s each.
    assert messages[0].startswith("stage 1/2: teacher 'teacher', 2 epochs, resumes at step 1 of 4, about 30 s -> ")
    assert messages[1].startswith("stage 2/2: student 'best_cnn' distilled from it, 1 epoch, about 20 s (times")


@pytest.mark.parametrize(("model", "hardware", "cuda", "chosen"), [
    ("best", "cpu", True, "best"), ("best", "gpu", False, "best_gpu"), ("best", "auto", True, "best_gpu"),
    ("best", "auto", False, "best"), ("improved", "auto", True, "improved"), ("best_gpu", "gpu", False, "best_gpu"),
])
def test_hardware_picks_the_gpu_config_only_where_asked_or_cuda_trains(model, hardware, cuda, chosen):
    from aecluster.registry import resolve_hardware

    assert resolve_hardware(model, hardware, cuda) == chosen


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


def no_fallback(monkeypatch):
    """`best` without its CNN fallback: 64 random images split no way that holds, and the
    fallback's own tests are in test_patches.py."""
    monkeypatch.setitem(REGISTRY, "best", replace(REGISTRY["best"], fallback_model=None))


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
    assert lines[2].startswith("stage 1/2: teacher 'patches', 32 atoms fitted on 10,000 patches, about ")
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


def test_the_estimator_trains_through_train_model_and_chooses_the_recipe_train_writes(
        monkeypatch, tmp_path, image_files, small_dictionary):
    import numpy as np

    import aecluster.stages
    from aecluster.api import AEClusterer

    no_fallback(monkeypatch)
    judged = []
    stable_recipe = aecluster.stages.stable_recipe
    monkeypatch.setattr(aecluster.stages, "stable_recipe",
                        lambda codes, *args, **kw: judged.append(len(codes)) or stable_recipe(codes, *args, **kw))
    output = tmp_path / "best.pth"
    assert main(["train", "--model", "best", str(image_files[0]), str(output), "--quiet"]) == 0
    written = read_checkpoint(output)["recipe"]
    judged.clear()
    estimator = AEClusterer(model="best").fit(np.load(image_files[0]))
    assert judged == [64]  # the student's recipe, judged by stability as `train` judges it
    assert {key: estimator.trained_recipe_[key] for key in written} == written
    assert {key: estimator.resolved_recipe()[key] for key in ("reduce", "method")} == {
        key: written[key] for key in ("reduce", "method")}


def test_resuming_the_student_phase_without_output_names_the_missing_teacher(tmp_path, two_groups, quick_teacher,
                                                                            steps):
    from aecluster.errors import UserInputError
    from aecluster.registry import TrainSettings
    from aecluster.snapshots import TrainingInterrupted
    from aecluster.stages import run_stages

    settings = TrainSettings.for_model("best_cnn", epochs=1, batch_size=32)
    steps.count, steps.stop_at = 0, 5  # the teacher's 4 steps, then the student stops at its first
    with pytest.raises(TrainingInterrupted) as stopped:
        run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, progress=False)
    snapshot = stopped.value.snapshot
    assert read_checkpoint(snapshot)["model"] == "best_cnn"
    steps.stop_at = None
    with pytest.raises(UserInputError) as error:
        run_stages("best_cnn", two_groups[0], None, settings, resume=snapshot, progress=False)
    assert str(error.value) == (f"{snapshot}: the student phase needs its teacher, kept beside the run's `output` "
                                "(OUT_run/teacher.pth); `output` is None, expected the checkpoint that run was writing")


def judgements_counted(monkeypatch) -> list[int]:
    """Count the codes `stages.stable_recipe` judges (it still judges them for real)."""
    import aecluster.stages as stages

    counted: list[int] = []
    real = stages.stable_recipe

    def counting(codes, recipes, seed=0, report=None):
        counted.append(len(codes))
        return real(codes, recipes, seed, report)

    monkeypatch.setattr(stages, "stable_recipe", counting)
    return counted


def test_a_student_that_keeps_its_teachers_atoms_takes_its_judgement(tmp_path, small_dictionary, monkeypatch,
                                                                       caplog):
    from aecluster.registry import TrainSettings
    from aecluster.stages import run_stages
    from tests.conftest import make_orientation_textures

    images, _ = make_orientation_textures(200)
    counted = judgements_counted(monkeypatch)
    package = logging.getLogger("aecluster")  # the command line's tests may have stopped its propagation
    package.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="aecluster"):
            run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    finally:
        package.removeHandler(caplog.handler)
    teacher, student = read_checkpoint(tmp_path / "best_run" / "teacher.pth"), read_checkpoint(tmp_path / "best.pth")
    assert counted == [200]  # the teacher's codes only
    assert teacher["recipe_judgement"] and student["recipe"] == teacher["recipe"]
    assert "judged on the codes of teacher 'patches', which are 'best''s too" in caplog.text


def test_a_student_with_fewer_atoms_judges_its_own_codes(tmp_path, small_dictionary, monkeypatch):
    from aecluster.registry import TrainSettings
    from aecluster.stages import run_stages
    from tests.conftest import make_orientation_textures

    spec = REGISTRY["best"]
    monkeypatch.setitem(REGISTRY, "best", replace(spec, config={**spec.config, "centres": 16}))
    images, _ = make_orientation_textures(200)
    counted = judgements_counted(monkeypatch)
    run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    assert counted == [200, 200]
