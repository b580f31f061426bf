"""The stage plan (`aecluster.plans.planned`): OUT_run/stages.json recorded, read back, and refused in
one line naming the file when it is damaged."""

import json

import pytest

from aecluster.errors import UserInputError
from aecluster.plans import planned
from aecluster.registry import TrainSettings

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
