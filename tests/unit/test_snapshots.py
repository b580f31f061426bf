"""Snapshots given to `--resume`: every field a resumed run reads is checked when the snapshot is
opened (`snapshots.check_resume_state`), so a mistyped or impossible one is one line naming the
file, exit 2, before any training and without writing anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster.errors import UserInputError
from aecluster.registry import TrainSettings
from aecluster.snapshots import newest_snapshot, read_snapshot, run_folder
from aecluster.training import Trainer
from tests.conftest import assert_refused, field_cases, folder_state, parent_of, run_main, spoil_file


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """The newest snapshot of a two-step run of 'improved' at a quarter of its width (8, 8, 16
    channels) on 32 images (x.npy beside its run folder)."""
    folder = tmp_path_factory.mktemp("run")
    images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "x.npy", images)
    settings = TrainSettings.for_model("improved", epochs=1, batch_size=16, snapshots=1)
    Trainer("improved", settings, recipe={"reduce": "pca:2"}, progress=False,
            config={"width_multiplier": 0.25}).fit(images, folder / "m.pth")
    return newest_snapshot(run_folder(folder / "m.pth"))


def at(*keys):
    """A change setting payload[keys[0]]...[keys[-1]] to a value."""
    return lambda value: lambda payload: parent_of(payload, keys).__setitem__(keys[-1], value)


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


def corrupt(snapshot: Path, change, folder: Path) -> Path:
    """bad.pth in `folder`: the snapshot's dictionary after `change`."""
    payload = torch.load(snapshot, weights_only=True)
    change(payload)
    torch.save(payload, folder / "bad.pth")
    return folder / "bad.pth"


@pytest.mark.parametrize("case, change, fragment", CORRUPTIONS, ids=IDS)
def test_resume_refuses_a_corrupt_snapshot_before_training(snapshot, tmp_path, capsys, case, change, fragment):
    bad = corrupt(snapshot, change, tmp_path)
    before = folder_state(tmp_path)
    code, err = run_main(["train", "--model", "improved", snapshot.parents[1] / "x.npy", tmp_path / "out.pth",
                          "--resume", bad, "--quiet"], capsys)
    assert_refused(code, err, fragment, tmp_path, before)
    assert f"{bad}: " in err


def test_the_library_refuses_it_when_reading_it(snapshot, tmp_path):
    bad = corrupt(snapshot, at("optimizer")({}), tmp_path)
    with pytest.raises(UserInputError, match=f"^{bad}: not a resumable snapshot: optimizer holds"):
        Trainer("improved", TrainSettings.for_model("improved", epochs=1, batch_size=16), progress=False).fit(
            np.load(snapshot.parents[1] / "x.npy"), resume=bad)


def test_the_snapshot_a_run_writes_passes_every_check(snapshot):
    payload = read_snapshot(snapshot)
    assert payload["step"] == 2 and payload["scheduler"]["last_epoch"] == 2


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


def test_snapshots_past_ten_million_steps_are_ordered_by_their_step(snapshot, tmp_path):
    import shutil

    from aecluster.snapshots import keep_weights_only

    folder = tmp_path / "m_run"
    folder.mkdir()
    older, newer = folder / "step_9999999.pth", folder / "step_10000000.pth"
    for name in (older, newer):
        shutil.copyfile(snapshot, name)
    assert newest_snapshot(folder) == newer
    keep_weights_only(folder, newer)
    kept = {path: torch.load(path, map_location="cpu", weights_only=True) for path in (older, newer)}
    assert {"optimizer", "scheduler"} <= set(kept[newer]) and not {"optimizer", "scheduler"} & set(kept[older])
    with pytest.raises(UserInputError) as error:
        read_snapshot(older)
    assert str(error.value) == (f"{older}: a weights-only snapshot (step {kept[older]['step']}): only a run's newest "
                                f"snapshot keeps the optimizer state that resuming needs; resume from the newest one, "
                                f"{newer}")
