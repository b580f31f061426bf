"""Stages: a student config runs its teacher stage then its own; an interrupted phase resumes itself."""

import re
from dataclasses import replace

import pytest

from aecluster.checkpoint import read_checkpoint
from aecluster.registry import REGISTRY
from aecluster.snapshots import run_folder
from tests.conftest import no_fallback, same_weights


@pytest.mark.slow
def test_plan_with_measured_times_changes_no_weight(tmp_path, two_groups, quick_teacher):
    from aecluster.registry import TrainSettings
    from aecluster.stages import run_stages

    settings = TrainSettings.for_model("best_cnn", epochs=1, batch_size=32)
    messages = []
    run_stages("best_cnn", two_groups[0], tmp_path / "a.pth", settings, say=messages.append, estimate=True,
               progress=False)
    assert [m.split(":")[0] for m in messages] == ["stage 1/2", "stage 2/2"]
    assert all(re.search(r", (about \d+ (s|min|h)\b|under a second)", m) for m in messages)
    assert "measured" in messages[1]
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
    # what `aecluster train --model best IMAGES OUTPUT --quiet` runs
    aecluster.stages.train_model("best", np.load(image_files[0]), output, {}, progress=False)
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
                                                                       stage_log):
    from aecluster.registry import TrainSettings
    from aecluster.stages import run_stages
    from tests.conftest import make_orientation_textures

    images, _ = make_orientation_textures(200)
    counted = judgements_counted(monkeypatch)
    run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    teacher, student = read_checkpoint(tmp_path / "best_run" / "teacher.pth"), read_checkpoint(tmp_path / "best.pth")
    assert counted == [200]  # the teacher's codes only
    assert teacher["recipe_judgement"] and student["recipe"] == teacher["recipe"]
    assert "judged on the codes of teacher 'patches', which are 'best''s too" in stage_log.text


@pytest.mark.slow
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
