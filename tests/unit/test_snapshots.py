"""Snapshots given to `--resume`: every field a resumed run reads is checked when the snapshot is
opened (`snapshots.check_resume_state`), so a mistyped or impossible one is one line naming the
file, exit 2, before any training and without writing anything (`train --resume`'s tests:
tests/cli/test_train.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aecluster.errors import UserInputError
from aecluster.registry import TrainSettings
from aecluster.snapshots import newest_snapshot, read_snapshot
from aecluster.training import Trainer
from tests.conftest import at, corrupt_snapshot


def test_the_library_refuses_it_when_reading_it(snapshot, tmp_path):
    bad = corrupt_snapshot(snapshot, at("optimizer")({}), tmp_path)
    with pytest.raises(UserInputError, match=f"^{bad}: not a resumable snapshot: optimizer holds"):
        Trainer("improved", TrainSettings.for_model("improved", epochs=1, batch_size=16), progress=False).fit(
            np.load(snapshot.parents[1] / "x.npy"), resume=bad)


def test_the_snapshot_a_run_writes_passes_every_check(snapshot):
    payload = read_snapshot(snapshot)
    assert payload["step"] == 2 and payload["scheduler"]["last_epoch"] == 2


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
