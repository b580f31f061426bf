"""The whole pipeline separates an obviously two-group image set: what a user sees first."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aecluster.cli import main
from aecluster.csvio import read_predictions
from aecluster.metrics import clustering_accuracy
from tests.conftest import make_colour_families

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PREDICTIONS_SHA256 = "26d096a285df74e606153d94f368c14fca9ff28289442322ab670dd36bc8f576"


@pytest.fixture(scope="module")
def colour_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("colours")
    images, labels = make_colour_families(128, seed=0)
    np.save(folder / "X.npy", images)
    np.save(folder / "Y.npy", labels)
    return folder / "X.npy", folder / "Y.npy"


def test_train_cluster_evaluate_separates_two_colour_families(tmp_path, colour_files, capsys):
    images, labels = map(str, colour_files)
    model, predictions = str(tmp_path / "m.pth"), str(tmp_path / "pred.csv")
    assert main(["train", "--model", "improved", images, model, "--epochs", "2", "--batch-size", "32",
                 "--quiet"]) == 0
    assert main(["cluster", images, model, predictions, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", predictions, labels]) == 0
    printed = float(capsys.readouterr().out.split()[1])
    assert printed >= 0.95
    assert printed == pytest.approx(clustering_accuracy(read_predictions(predictions), np.load(labels)), abs=1e-4)


@pytest.mark.slow
def test_homework_script_with_the_shipped_best_labels_the_sample_as_the_readme_says(tmp_path):
    """The README's first run: the shipped dictionary `best` on data/sample's 2,000 two_source
    images, scored against their labels (0.8855 in the README)."""
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "hw9_best.sh"), str(ROOT / "data" / "sample" / "trainX.npy"),
                             str(ROOT / "checkpoints" / "best.pth"), str(tmp_path / "pred.csv")],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    labels = np.load(ROOT / "data" / "sample" / "trainY.npy")
    assert clustering_accuracy(read_predictions(tmp_path / "pred.csv"), labels) == pytest.approx(0.8855, abs=5e-5)
    assert "pred.csv: 1187 images labelled 0, 813 labelled 1" in result.stderr
    # The file itself, byte for byte: a change of the code must not change what it writes.
    assert hashlib.sha256((tmp_path / "pred.csv").read_bytes()).hexdigest() == SAMPLE_PREDICTIONS_SHA256
