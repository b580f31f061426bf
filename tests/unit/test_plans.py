"""aecluster/plans.py: how long a stage will take (timed steps scaled to the stage) and the plan a
student's run records. Times come from a fake clock here, so every expected number is exact."""

import json

import numpy as np
import pytest

from aecluster import plans
from aecluster.errors import UserInputError
from aecluster.plans import planned
from aecluster.registry import TrainSettings
from aecluster.snapshots import run_folder

IMAGES = np.zeros((100, 32, 32, 3), dtype=np.uint8)


class FakeClock:
    """`time.perf_counter` that moves only when told."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(plans.time, "perf_counter", fake)
    return fake


def test_a_stage_trains_its_epochs_times_the_full_batches_of_an_epoch():
    assert plans.stage_steps(IMAGES, TrainSettings(epochs=3, batch_size=30)) == 3 * 3  # 100 // 30 full batches
    assert plans.stage_steps(IMAGES, TrainSettings(epochs=2, batch_size=500)) == 2  # one batch of all 100


def test_a_step_is_timed_without_the_start_up_cost(clock, monkeypatch):
    """A fake trainer that takes 5 s to start and 2 s a step: the start-up cancels out."""
    runs = []

    class Trainer:
        def __init__(self, name, settings, **_):
            self.settings = settings

        def fit(self, images):
            runs.append(len(images))
            clock.now += 5.0 + 2.0 * (len(images) // self.settings.batch_size)

    monkeypatch.setattr(plans, "Trainer", Trainer)
    settings = TrainSettings(batch_size=10)
    assert plans.step_seconds("improved", IMAGES, settings, steps=4) == pytest.approx(2.0)
    assert runs == [10, 40, 10]  # a warm-up step, then 4 steps and 1 step
    assert plans.step_seconds("improved", IMAGES[:10], settings) == pytest.approx(7.0)  # one step: its whole time


def test_a_stage_takes_its_steps_left_times_a_step(monkeypatch):
    monkeypatch.setattr(plans, "step_seconds", lambda *args, **kwargs: 1.5)
    settings = TrainSettings(epochs=4, batch_size=25)  # 16 steps
    assert plans.estimate_seconds("improved", IMAGES, settings) == 24.0
    assert plans.estimate_seconds("improved", IMAGES, settings, from_step=10) == 9.0
    assert plans.estimate_seconds("improved", IMAGES, settings, from_step=20) == 0.0


def test_a_dictionary_stage_takes_its_fit_and_the_encoding_its_fallback_needs(monkeypatch):
    fits = []
    monkeypatch.setattr(plans, "fit_seconds", lambda *args: fits.append(args) or 30.0)
    monkeypatch.setattr(plans, "encode_seconds", lambda model, images: 4.0)
    spec = plans.get_spec("patches")
    seconds = plans.estimate_seconds("patches", IMAGES, TrainSettings())
    assert seconds == 34.0
    config = {**plans.model_config("patches")}
    assert fits == [(spec.dictionary_settings.patches, config["centres"], config["patch_size"],
                     spec.dictionary_settings.iterations)]


def test_encoding_time_is_a_probes_time_scaled_to_all_images(clock, monkeypatch):
    def encode(model, images):
        clock.now += 0.01 * len(images)

    monkeypatch.setattr(plans, "encode_images", encode)
    assert plans.encode_seconds(None, IMAGES, probe=20) == pytest.approx(1.0)  # 0.2 s for 20 of 100 images
    assert plans.encode_seconds(None, IMAGES[:8], probe=20) == pytest.approx(0.08)


def test_a_recipe_is_timed_stage_by_stage_teacher_first(monkeypatch):
    stages = []

    def estimate(stage, images, settings, *, teacher=None, device=None):
        stages.append((stage, settings.batch_size, settings.distill_originals, teacher is not None))
        return float(len(stages))

    monkeypatch.setattr(plans, "estimate_seconds", estimate)
    monkeypatch.setattr(plans, "build_model", lambda name: object())
    assert plans.recipe_seconds("best_cnn", IMAGES, batch=32) == [1.0, 2.0]
    assert stages == [("teacher", 32, 0, False), ("best_cnn", 32, 32, True)]
    stages.clear()
    assert plans.recipe_seconds("improved", IMAGES) == [1.0]
    assert stages == [("improved", TrainSettings.for_model("improved").batch_size, 0, False)]


def test_the_plan_records_the_students_settings_and_a_resumed_teacher_phase_reads_them(tmp_path):
    output = tmp_path / "student.pth"
    settings, config = TrainSettings(epochs=7, lr=0.01), {"width_multiplier": 0.5}
    assert plans.planned(output, False, settings, config) == (settings, config)
    recorded = json.loads((run_folder(output) / "stages.json").read_text())
    assert recorded["config"] == config and recorded["settings"]["epochs"] == 7
    assert plans.planned(output, True, TrainSettings(), None) == (settings, config)
    assert plans.planned(output, False, TrainSettings(epochs=2), None) == (TrainSettings(epochs=2), None)
    assert json.loads((run_folder(output) / "stages.json").read_text())["config"] is None


EXPECTED = ("expected the student's settings and config as the run recorded them (delete it to use the settings "
            "given)")


def json_error(text):
    """What the json module says of `text`: "Expecting ..., line L column C (char N)"."""
    try:
        json.loads(text)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{text!r} is JSON")


JSON_ERROR = json_error("{not json")


def test_a_recorded_plan_gives_its_settings_when_the_teacher_phase_resumes(tmp_path):
    output = tmp_path / "out.pth"
    recorded = TrainSettings(epochs=3, seed=7)
    assert planned(output, False, recorded, {"widths": [4, 8]}) == (recorded, {"widths": [4, 8]})
    assert planned(output, True, TrainSettings(), None) == (recorded, {"widths": [4, 8]})


@pytest.mark.parametrize(("text", "found"), [
    ("{not json", f"not readable as JSON ({JSON_ERROR})"),
    ("[1, 2]", "a JSON list, not a mapping"),
    ('{"settings": {}}', "its config is missing"),
    ('{"settings": {}, "config": "wide"}', "its config is 'wide'"),
    ('{"config": null}', "its training settings are missing"),
])
def test_a_damaged_plan_is_one_line_naming_the_file(tmp_path, text, found):
    output = tmp_path / "out.pth"
    plan = tmp_path / "out_run" / "stages.json"
    plan.parent.mkdir()
    plan.write_text(text)
    with pytest.raises(UserInputError) as error:
        planned(output, True, TrainSettings(), None)
    message = str(error.value)
    if found == "its training settings are missing":  # settings_of's own message
        assert message == f"{plan}: {found}"
    else:
        assert message == f"{plan}: {found}; {EXPECTED}"
    assert plan.read_text() == text  # the damaged plan is left as it was


def test_a_stage_is_described_by_its_epochs_or_its_dictionary():
    assert plans.epochs_text(1) == "1 epoch" and plans.epochs_text(50) == "50 epochs"
    assert plans.stage_text("improved", TrainSettings(epochs=3)) == "3 epochs"
    assert plans.stage_text("patches", TrainSettings()) == "400 atoms fitted on 200,000 patches"
    assert plans.stage_text("best", TrainSettings(), {"centres": 64}, distilled=True) == (
        "64 atoms merged from the teacher's")


def test_the_fallback_plan_names_both_stages_and_where_they_go(tmp_path):
    line = plans.fallback_plan("best_cnn", IMAGES, tmp_path / "best.pth", seed=0, estimate=False, device=None)
    assert line == (f"  if the teacher's first recipe does not hold: teacher 'teacher', 50 epochs -> "
                    f"{run_folder(tmp_path / 'best.pth')}/fallback_teacher.pth, then student 'best_cnn' instead, "
                    f"60 epochs -> {tmp_path / 'best.pth'}")
