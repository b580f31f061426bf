import json
import os
import re
import signal
import threading

import pytest
import torch

from aecluster.checkpoint import read_checkpoint
from aecluster.errors import UserInputError
from aecluster.registry import TrainSettings
from aecluster.snapshots import RESUME_KEYS, TrainingInterrupted, run_folder
from aecluster.training import Trainer

RECIPE = {"reduce": "pca:2", "method": "kmeans"}


def settings(**overrides):
    return TrainSettings.for_model("improved", **{"epochs": 2, "batch_size": 16, **overrides})


def weights(path):
    return read_checkpoint(path)["state_dict"]


def assert_same_weights(first, second):
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def stop_at_snapshot(count):
    """An `evaluate` callback that sends SIGTERM at the `count`-th snapshot, so that the run stops
    with that snapshot as its newest, the one a resume continues from."""
    calls = []

    def evaluate(model):
        calls.append(model)
        if len(calls) == count:
            os.kill(os.getpid(), signal.SIGTERM)
        return 0.0

    return evaluate


def test_run_writes_snapshots_history_and_output(tmp_path, two_groups):
    scores = []
    trainer = Trainer("improved", settings(epochs=3), recipe=RECIPE, progress=False,
                      evaluate=lambda model: scores.append(1) or 0.75)
    trainer.fit(two_groups[0], tmp_path / "out.pth")
    folder = run_folder(tmp_path / "out.pth")
    snapshots = sorted(folder.glob("step_*.pth"))
    assert len(snapshots) == 10
    history = json.loads((folder / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert all(e["train_mse"] > 0 and e["seconds"] > 0 for e in history["epochs"])
    assert len(history["checkpoints"]) == 10 and history["checkpoints"][-1]["val_acc"] == 0.75
    assert len(scores) == 10
    final = read_checkpoint(tmp_path / "out.pth")
    assert final["epoch"] == 3 and final["recipe"] == RECIPE and "optimizer" not in final
    # Only the newest snapshot keeps what resuming needs; the others are weights plus metadata.
    newest = torch.load(snapshots[-1], weights_only=True)
    assert set(RESUME_KEYS) <= newest.keys()
    for path in snapshots[:-1]:
        older = torch.load(path, weights_only=True)
        assert not set(RESUME_KEYS) & older.keys(), path.name
        assert older.keys() == newest.keys() - set(RESUME_KEYS)
        assert older["images"] == newest["images"] and older["recipe"] == RECIPE and older["step"] < newest["step"]
        assert older["state_dict"].keys() == newest["state_dict"].keys()
    assert snapshots[-2].stat().st_size * 2 < snapshots[-1].stat().st_size


def test_the_first_epoch_refreshes_the_estimate_from_its_measured_time(two_groups, monkeypatch, capsys):
    from types import SimpleNamespace

    from aecluster import training

    clock = [0.0]
    step = training.training_step

    def two_seconds_a_step(*args, **kwargs):
        clock[0] += 2.0
        return step(*args, **kwargs)

    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(training, "training_step", two_seconds_a_step)
    Trainer("improved", settings(epochs=3), progress=True).fit(two_groups[0])  # 4 steps an epoch
    lines = [line for line in capsys.readouterr().err.splitlines() if "epoch 1 of" in line]
    assert lines == ["train 'improved': epoch 1 of 3 took 8 s: about 16 s left"]
    for quiet in (Trainer("improved", settings(epochs=3), progress=False), Trainer("improved", settings(epochs=1))):
        quiet.fit(two_groups[0])  # no progress, or no epoch left after the first: no line
        assert "left" not in capsys.readouterr().err


def test_the_pace_line_of_a_resumed_epoch_says_how_many_steps_it_timed():
    from aecluster.training import pace_line

    assert pace_line("improved", 1, 30, 33, 6.0, 957) == "train 'improved': epoch 1 of 30 took 6 s: about 3 min left"
    assert (pace_line("teacher", 4, 50, 10, 3.0, 1000, full_epoch=False)
            == "train 'teacher': the last 10 steps of epoch 4 of 50 took 3 s: about 5 min left")


def test_training_reduces_reconstruction_error(tmp_path, two_groups):
    Trainer("improved", settings(epochs=4, augment="none", noise=0.0), recipe=RECIPE,
            progress=False).fit(two_groups[0], tmp_path / "out.pth")
    history = json.loads((run_folder(tmp_path / "out.pth") / "history.json").read_text())
    assert history["epochs"][-1]["train_mse"] < history["epochs"][0]["train_mse"]


def test_same_seed_same_weights_and_resume_matches(tmp_path, two_groups):
    images = two_groups[0]
    Trainer("improved", settings(), recipe=RECIPE, progress=False).fit(images, tmp_path / "a.pth")
    Trainer("improved", settings(), recipe=RECIPE, progress=False).fit(images, tmp_path / "b.pth")
    assert_same_weights(weights(tmp_path / "a.pth"), weights(tmp_path / "b.pth"))
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer("improved", settings(), recipe=RECIPE, progress=False, evaluate=stop_at_snapshot(4)).fit(
            images, tmp_path / "c.pth")
    Trainer("improved", settings(), recipe=RECIPE, progress=False).fit(
        images, tmp_path / "c.pth", resume=stopped.value.snapshot)
    assert_same_weights(weights(tmp_path / "a.pth"), weights(tmp_path / "c.pth"))


def test_resuming_from_an_older_weights_only_snapshot_names_the_newest(tmp_path, two_groups, trained_checkpoint):
    snapshots = sorted(run_folder(trained_checkpoint).glob("step_*.pth"))
    message = (rf"^{re.escape(str(snapshots[3]))}: a weights-only snapshot \(step \d+\): only a run's newest snapshot "
               rf"keeps the optimizer state that resuming needs; resume from the newest one, "
               rf"{re.escape(str(snapshots[-1]))}$")
    with pytest.raises(UserInputError, match=message):
        Trainer("improved", settings(), recipe=RECIPE, progress=False).fit(
            two_groups[0], tmp_path / "x.pth", resume=snapshots[3])
    assert list(tmp_path.iterdir()) == []


def test_different_seed_different_weights(tmp_path, two_groups):
    Trainer("improved", settings(seed=1), recipe=RECIPE, progress=False).fit(two_groups[0], tmp_path / "a.pth")
    Trainer("improved", settings(seed=2), recipe=RECIPE, progress=False).fit(two_groups[0], tmp_path / "b.pth")
    first, second = weights(tmp_path / "a.pth"), weights(tmp_path / "b.pth")
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_sigterm_leaves_resumable_snapshot(tmp_path, two_groups):
    images = two_groups[0]
    reference = tmp_path / "ref.pth"
    Trainer("improved", settings(epochs=3), recipe=RECIPE, progress=False).fit(images, reference)
    stop_after_first_snapshot = lambda model: os.kill(os.getpid(), signal.SIGTERM) or 0.0  # noqa: E731
    interrupted = Trainer("improved", settings(epochs=3), recipe=RECIPE, progress=False,
                          evaluate=stop_after_first_snapshot)
    with pytest.raises(TrainingInterrupted) as stopped:
        interrupted.fit(images, tmp_path / "run.pth")
    assert not (tmp_path / "run.pth").exists()
    assert stopped.value.snapshot.exists()
    Trainer("improved", settings(epochs=3), recipe=RECIPE, progress=False).fit(
        images, tmp_path / "run.pth", resume=stopped.value.snapshot)
    assert_same_weights(weights(reference), weights(tmp_path / "run.pth"))
    assert threading.current_thread() is threading.main_thread()


def test_resume_rejects_final_checkpoint_and_other_model(tmp_path, two_groups, trained_checkpoint):
    trainer = Trainer("improved", settings(), recipe=RECIPE, progress=False)
    with pytest.raises(UserInputError, match="not a training snapshot"):
        trainer.fit(two_groups[0], tmp_path / "x.pth", resume=trained_checkpoint)
    snapshot = sorted(run_folder(trained_checkpoint).glob("step_*.pth"))[-1]
    with pytest.raises(UserInputError, match="snapshot of model 'improved'"):
        Trainer("baseline", TrainSettings.for_model("baseline", epochs=1), progress=False).fit(
            two_groups[0], tmp_path / "y.pth", resume=snapshot)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_resume_refuses_other_training_images_even_of_the_same_count(tmp_path, two_groups, trained_checkpoint):
    snapshot = sorted(run_folder(trained_checkpoint).glob("step_*.pth"))[-1]
    trainer = Trainer("improved", settings(), recipe=RECIPE, progress=False)
    with pytest.raises(UserInputError, match="a different set of training images from the run's .*resume with"):
        trainer.fit(two_groups[0][::-1], tmp_path / "x.pth", resume=snapshot)
    trainer.fit(two_groups[0], tmp_path / "y.pth", resume=snapshot)
    assert (tmp_path / "y.pth").is_file() and not (tmp_path / "x.pth").exists()


def test_resume_refuses_another_teacher(tmp_path, two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.models import build_model

    teacher, _ = load_model(trained_checkpoint)
    distilled = settings(distill_weight=1.0, distill_originals=8)
    Trainer("improved", distilled, recipe=RECIPE, progress=False, teacher=teacher).fit(
        two_groups[0], tmp_path / "s.pth")
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer("improved", distilled, recipe=RECIPE, progress=False, teacher=teacher,
                evaluate=stop_at_snapshot(4)).fit(two_groups[0], tmp_path / "t.pth")
    snapshot = stopped.value.snapshot
    torch.manual_seed(1)
    other = build_model("improved").eval()
    with pytest.raises(UserInputError, match="a different teacher from the run's .*distilled from"):
        Trainer("improved", distilled, recipe=RECIPE, progress=False, teacher=other).fit(
            two_groups[0], tmp_path / "t.pth", resume=snapshot)
    Trainer("improved", distilled, recipe=RECIPE, progress=False, teacher=teacher).fit(
        two_groups[0], tmp_path / "t.pth", resume=snapshot)
    assert_same_weights(weights(tmp_path / "s.pth"), weights(tmp_path / "t.pth"))


def test_a_diverging_run_stops_with_one_line_and_writes_no_output(tmp_path, two_groups):
    # Learning rates are bounded (at most 10); input noise near float32's largest value overflows the loss.
    message = (r"training diverged at step \d+ of 8 \(loss nan\); .*out.pth was not written .*; "
               r"train again with a lower lr \(now 0.002\)")
    with pytest.raises(UserInputError, match=message):
        Trainer("improved", settings(epochs=2, noise=3e38), recipe=RECIPE, progress=False).fit(
            two_groups[0], tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_a_fresh_run_into_an_earlier_output_replaces_its_snapshots(tmp_path, two_groups):
    output = tmp_path / "out.pth"
    Trainer("improved", settings(epochs=3), recipe=RECIPE, progress=False).fit(two_groups[0], output)
    (run_folder(output) / "notes.txt").write_text("mine")
    Trainer("improved", settings(epochs=1), recipe=RECIPE, progress=False).fit(two_groups[0], output)
    history = json.loads((run_folder(output) / "history.json").read_text())
    listed = sorted(entry["path"] for entry in history["checkpoints"])
    assert len(listed) == 4
    assert sorted(path.name for path in run_folder(output).glob("step_*.pth")) == listed
    assert (run_folder(output) / "notes.txt").read_text() == "mine"


def test_distillation_pulls_student_towards_teacher_geometry(tmp_path, two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.losses import similarity_distillation

    teacher, _ = load_model(trained_checkpoint)
    images = two_groups[0]
    config = {"width_multiplier": 0.25}
    plain = Trainer("improved", settings(epochs=10), recipe=RECIPE, progress=False, config=config).fit(images)
    distilled = Trainer("improved", settings(epochs=10, distill_weight=1.0), recipe=RECIPE, progress=False,
                        teacher=teacher, config=config).fit(images, tmp_path / "student.pth")
    assert read_checkpoint(tmp_path / "student.pth")["config"]["width_multiplier"] == 0.25
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        target = teacher.encode(batch)
        assert similarity_distillation(distilled.encode(batch), target) < similarity_distillation(
            plain.encode(batch), target)


def test_distilling_originals_matches_the_teacher_on_full_size_images(two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.losses import similarity_distillation

    teacher, _ = load_model(trained_checkpoint)
    images = two_groups[0]
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    config = {"width_multiplier": 0.25}
    gaps = []
    for originals in (0, 16):
        student = Trainer("improved", settings(epochs=10, distill_weight=100.0, distill_originals=originals),
                          recipe=RECIPE, progress=False, teacher=teacher, config=config).fit(images)
        with torch.no_grad():
            gaps.append(similarity_distillation(student.encode(batch), teacher.encode(batch)))
    assert gaps[1] < gaps[0]


def test_teacher_maps_are_computed_once_as_float16(two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.data import to_tensor
    from aecluster.models import latent_map_shape
    from aecluster.training import latent_maps

    teacher, _ = load_model(trained_checkpoint)
    images = two_groups[0][:20]
    maps = latent_maps(teacher, images, torch.device("cpu"), batch_size=8)
    assert maps.dtype == torch.float16 and maps.shape == (20, *latent_map_shape(teacher)) == (20, 64, 4, 4)
    with torch.no_grad():
        exact = teacher.encoder.feature_map(to_tensor(images))
    torch.testing.assert_close(maps.float(), exact, atol=1e-2, rtol=1e-2)


def student_gaps(images, teacher, gap, runs):
    """gap(student, batch) of an `improved` student distilled from `teacher` with each settings override."""
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    gaps = []
    for overrides in runs:
        student = Trainer("improved", settings(**overrides), recipe=RECIPE, progress=False,
                          teacher=teacher).fit(images).eval()
        with torch.no_grad():
            gaps.append(gap(student, batch))
    return gaps


def test_map_distillation_pulls_student_maps_towards_the_teachers(two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.losses import map_distillation

    teacher, _ = load_model(trained_checkpoint)
    runs = [{"epochs": 6, "distill_weight": 1.0, "distill_originals": 16, "distill_maps": weight}
            for weight in (0.0, 100.0)]
    gaps = student_gaps(two_groups[0], teacher, lambda student, batch: map_distillation(
        student.encoder.feature_map(batch), teacher.encoder.feature_map(batch)), runs)
    assert gaps[1] < gaps[0]


def test_map_distillation_needs_the_teachers_map_shape(trained_checkpoint):
    from aecluster.checkpoint import load_model

    teacher, _ = load_model(trained_checkpoint)
    state = {key: value.clone() for key, value in teacher.state_dict().items()}
    with pytest.raises(UserInputError, match="the student's latent map is 16x4x4, the teacher's 64x4x4"):
        Trainer("improved", settings(distill_weight=1.0, distill_maps=1.0), recipe=RECIPE, progress=False,
                teacher=teacher, config={"width_multiplier": 0.25})
    # Probing the shapes leaves the teacher's BatchNorm statistics and mode untouched.
    assert all(torch.equal(state[key], value) for key, value in teacher.state_dict().items())


def test_code_distillation_pulls_each_code_towards_the_teacher(two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model
    from aecluster.losses import code_distillation

    teacher, _ = load_model(trained_checkpoint)
    runs = [{"epochs": 10, "distill_weight": weight, "distill_loss": "codes", "distill_originals": 16}
            for weight in (0.0, 100.0)]
    gaps = student_gaps(two_groups[0], teacher, lambda student, batch: code_distillation(
        student.encode(batch), teacher.encode(batch)), runs)
    assert gaps[1] < gaps[0] / 2


def test_code_distillation_needs_the_teachers_code_size(tmp_path, trained_checkpoint):
    from aecluster.checkpoint import load_model

    teacher, _ = load_model(trained_checkpoint)
    with pytest.raises(UserInputError, match="student's codes have 16 dimensions, the teacher's 64"):
        Trainer("improved", settings(distill_weight=1.0, distill_loss="codes"), recipe=RECIPE,
                progress=False, teacher=teacher, config={"width_multiplier": 0.25})
    with pytest.raises(UserInputError, match="unknown distillation loss 'kl'"):
        Trainer("improved", settings(distill_weight=1.0, distill_loss="kl"), recipe=RECIPE,
                progress=False, teacher=teacher)


TINY_RESNET = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "decoder_widths": [8, 8], "projection_dim": 8}


def test_gpu_teacher_and_student_configs_train_and_resume_exactly_on_cpu(tmp_path, two_groups):
    """The ResNet teacher's recipe (SGD, warm-up, temperature) at reduced widths, and the best_gpu
    student with feature regression through a projector that is snapshotted with the model."""
    images = two_groups[0][:16]
    teacher_settings = TrainSettings.for_model("resnet18_teacher", epochs=2, batch_size=8, warmup_epochs=1)
    narrow = {"reduce": "l2,pca:8", "method": "kmeans"}  # a recipe the shrunk codes can hold
    teacher = Trainer("resnet18_teacher", teacher_settings, config=TINY_RESNET, recipe=narrow, progress=False).fit(
        images, tmp_path / "teacher.pth")
    assert teacher.code_dim == 16 and all(torch.isfinite(p).all() for p in teacher.parameters())
    snapshot = read_checkpoint(run_folder(tmp_path / "teacher.pth") / "step_0000004.pth")
    assert "momentum_buffer" in str(snapshot["optimizer"]["state"][0].keys())
    student_settings = TrainSettings.for_model("best_gpu", epochs=2, batch_size=8, distill_originals=8)
    config = {"width_multiplier": 0.25}
    for name in "ab":
        Trainer("best_gpu", student_settings, config=config, teacher=teacher, recipe=narrow, progress=False).fit(
            images, tmp_path / f"{name}.pth")
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer("best_gpu", student_settings, config=config, teacher=teacher, recipe=narrow, progress=False,
                evaluate=stop_at_snapshot(2)).fit(images, tmp_path / "c.pth")
    middle = stopped.value.snapshot
    heads = read_checkpoint(middle)["heads"]
    assert middle.name == "step_0000002.pth" and heads["feature_regression.weight"].shape == (16, 32)
    Trainer("best_gpu", student_settings, config=config, teacher=teacher, recipe=narrow, progress=False).fit(
        images, tmp_path / "c.pth", resume=middle)
    for name in "ab", "ac":
        assert_same_weights(weights(tmp_path / f"{name[0]}.pth"), weights(tmp_path / f"{name[1]}.pth"))
    final = read_checkpoint(tmp_path / "a.pth")
    assert final["weight_format"] == "float16"
    assert not any(key.startswith(("decoder.", "heads")) for key in final["state_dict"])


def test_feature_regression_takes_part_in_training(two_groups, trained_checkpoint):
    from aecluster.checkpoint import load_model

    teacher, _ = load_model(trained_checkpoint)
    students = [Trainer("improved", settings(epochs=1, feature_regression=weight, distill_originals=16),
                        recipe=RECIPE, progress=False, teacher=teacher, config={"width_multiplier": 0.25}
                        ).fit(two_groups[0]).state_dict() for weight in (0.0, 10.0)]
    assert any(not torch.equal(students[0][key], students[1][key]) for key in students[0] if "encoder" in key)




@pytest.mark.parametrize("seconds, words", [
    (0.2, "under a second"), (0.99, "under a second"), (1.4, "about 1 s"), (40.4, "about 40 s"),
    (89, "about 89 s"), (90, "about 2 min"),
    (7199, "about 120 min"), (7200, "about 2 h"), (111600, "about 31 h"),
])
def test_a_duration_in_the_plans_words(seconds, words):
    from aecluster.training import about

    assert about(seconds) == words
