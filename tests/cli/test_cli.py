"""End-to-end runs of the command line on small data, and its one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aecluster.cli import main
from aecluster.csvio import read_predictions
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "aecluster", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.slow
def test_train_cluster_evaluate_end_to_end(tmp_path, image_files):
    images, labels = image_files
    result = run_cli("train", "--model", "improved", "--epochs", "3", "--batch-size", "16", "--quiet",
                     images, tmp_path / "m.pth", "--val", images, labels)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "m_run").glob("step_*.pth"))) == 10
    result = run_cli("cluster", images, tmp_path / "m.pth", tmp_path / "pred.csv", "--reduce", "pca:2",
                     "--quiet")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == 65 and lines[1].startswith("0,")
    result = run_cli("evaluate", tmp_path / "pred.csv", labels)
    assert result.returncode == 0 and result.stdout.startswith("ACC ")
    predicted = read_predictions(tmp_path / "pred.csv")
    assert result.stdout.split()[1] == f"{clustering_accuracy(predicted, np.load(labels)):.4f}"


def test_cluster_is_byte_identical_and_reference_orients(tmp_path, image_files, trained_checkpoint):
    images, labels = image_files
    for name in ("a.csv", "b.csv"):
        assert main(["cluster", str(images), str(trained_checkpoint), str(tmp_path / name), "--quiet"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    flipped = tmp_path / "flipped.npy"
    np.save(flipped, 1 - np.load(labels))
    for reference, name in ((labels, "ref.csv"), (flipped, "ref_flipped.csv")):
        assert main(["cluster", str(images), str(trained_checkpoint), str(tmp_path / name), "--quiet",
                     "--reference", str(images), str(reference)]) == 0
    oriented, opposite = read_predictions(tmp_path / "ref.csv"), read_predictions(tmp_path / "ref_flipped.csv")
    assert (oriented == 1 - opposite).all()
    # Oriented by best matching on the reference: the plain agreement is the best-matching accuracy.
    assert np.mean(oriented == np.load(labels)) == clustering_accuracy(oriented, np.load(labels))


def test_threshold_method_and_verbose_timings(tmp_path, image_files, trained_checkpoint, capsys):
    images, _ = image_files
    code = main(["cluster", str(images), str(trained_checkpoint), str(tmp_path / "t.csv"), "--method",
                 "threshold", "--threshold", "0.1", "--verbose", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "encode" in err and "reduce + cluster" in err
    assert set(read_predictions(tmp_path / "t.csv")) == {0, 1}


def test_pairs(tmp_path, image_files, trained_checkpoint, monkeypatch):
    import aecluster.data

    loads = []
    load_images = aecluster.data.load_images
    monkeypatch.setattr(aecluster.data, "load_images", lambda *a, **k: loads.append(a[0]) or load_images(*a, **k))
    images, _ = image_files
    (tmp_path / "cases.csv").write_text("id,image1_index,image2_index\n0,0,0\n1,0,1\n2,5,63\n")
    assert main(["pairs", str(images), str(trained_checkpoint), str(tmp_path / "cases.csv"),
                 str(tmp_path / "ans.csv"), "--quiet"]) == 0
    lines = (tmp_path / "ans.csv").read_text().splitlines()
    assert lines[0] == "id,Ans" and lines[1] == "0,1" and len(lines) == 4
    assert loads == [str(images)]  # a folder of images is decoded once


@pytest.mark.parametrize("case, message", [
    ("index", "line 4 pairs images 0 and 64, but indices must lie in 0..63"),
    ("header", "expected 'id,image1_index,image2_index'"),
    ("text", "line 4 is '1,a,1', expected 3 integers"),
])
def test_pairs_bad_csv(tmp_path, image_files, trained_checkpoint, capsys, case, message):
    body = {"index": "id,image1_index,image2_index\n0,1,2\n\n1,0,64\n", "header": "a,b\n0,1\n",
            "text": "id,image1_index,image2_index\n0,1,2\n\n1,a,1\n"}[case]
    (tmp_path / "cases.csv").write_text(body)
    code = main(["pairs", str(image_files[0]), str(trained_checkpoint), str(tmp_path / "cases.csv"),
                 str(tmp_path / "ans.csv"), "--quiet"])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "ans.csv").exists()


def test_resume_refuses_settings_it_would_ignore(tmp_path, image_files, trained_checkpoint, capsys):
    snapshot = sorted((trained_checkpoint.parent / "model_run").glob("step_*.pth"))[-1]
    code = main(["train", "--model", "improved", str(image_files[0]), str(tmp_path / "o.pth"), "--resume",
                 str(snapshot), "--epochs", "5", "--lr", "0.1", "--snapshots", "3"])
    error = capsys.readouterr().err
    assert code == 2
    assert "--resume continues the run with the settings it started with; leave out --epochs, --lr, --snapshots" \
        in error
    assert list(tmp_path.iterdir()) == []


def test_snapshots_sets_how_many_a_run_keeps(tmp_path, image_files, capsys):
    from aecluster.checkpoint import read_checkpoint

    output = tmp_path / "m.pth"
    assert main(["train", "--model", "baseline", "--epochs", "1", "--batch-size", "16", "--snapshots", "3",
                 "--quiet", str(image_files[0]), str(output)]) == 0
    snapshots = sorted((tmp_path / "m_run").glob("step_*.pth"))
    assert len(snapshots) == 3
    assert [("optimizer" in read_checkpoint(path)) for path in snapshots] == [False, False, True]
    assert read_checkpoint(snapshots[-1])["settings"]["snapshots"] == 3
    assert main(["train", str(image_files[0]), str(tmp_path / "n.pth"), "--snapshots", "0"]) == 2
    assert "--snapshots: expected a positive integer, found '0'" in capsys.readouterr().err
    assert not (tmp_path / "n_run").exists()


def test_evaluate_reads_a_csv_saved_with_a_byte_order_mark(tmp_path, image_files, capsys):
    labels = np.load(image_files[1])
    rows = "".join(f"{index},{label}\r\n" for index, label in enumerate(labels))
    (tmp_path / "excel.csv").write_bytes(("\ufeffid,label\r\n" + rows).encode("utf-8"))
    assert main(["evaluate", str(tmp_path / "excel.csv"), str(image_files[1])]) == 0
    assert capsys.readouterr().out.startswith("ACC 1.0000")


@pytest.mark.slow
def test_user_errors_are_one_line_exit_2(tmp_path, image_files, trained_checkpoint):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 32, 32), np.float64))
    cases = [
        (["cluster", bad, trained_checkpoint, tmp_path / "p.csv"], "expected shape (N, 32, 32, 3)"),
        (["cluster", image_files[0], tmp_path / "none.pth", tmp_path / "p.csv"], "no such checkpoint"),
        (["cluster", image_files[0], trained_checkpoint, tmp_path / "nodir" / "p.csv"], "does not exist"),
        (["cluster", image_files[0], trained_checkpoint, tmp_path / "p.csv", "--reduce", "svd:2"],
         "bad reducer"),
        (["train", image_files[0], tmp_path / "m.pth", "--epochs", "0"], "expected a positive integer"),
        (["distill", "--teacher", "t.pth", "--student", "best_cnn", image_files[0], tmp_path / "m.pth",
          "--distill-originals", "-1"], "expected a non-negative integer"),
        (["distill", "--teacher", trained_checkpoint, "--student", "best_cnn", image_files[0], tmp_path / "m.pth",
          "--distill-loss", "codes"], "the student's codes have 128 dimensions, the teacher's 64"),
        (["distill", "--teacher", trained_checkpoint, "--student", "best_cnn", image_files[0], tmp_path / "m.pth",
          "--distill-maps", "10"], "the student's latent map is 128x4x4, the teacher's 64x4x4"),
        (["distill", "--teacher", "t.pth", "--student", "best_cnn", image_files[0], tmp_path / "m.pth",
          "--distill-maps", "-1"], "expected a non-negative number"),
        (["evaluate", tmp_path / "missing.csv", image_files[1]], "no such file"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "p.csv").exists()


FIRST_LINE = """
import os, sys
from aecluster.cli import main

class FirstLine:
    def write(self, text):
        print(repr(text), "torch" in sys.modules, flush=True)
        os._exit(0)

sys.stderr = FirstLine()
main(sys.argv[1:])
"""


def test_train_says_what_it_trains_before_importing_torch(tmp_path, image_files):
    output = tmp_path / "best.pth"
    result = subprocess.run([sys.executable, "-c", FIRST_LINE, "train", "--model", "best", "--hardware", "auto",
                             str(image_files[0]), str(output)], capture_output=True, text=True, cwd=ROOT)
    line = f"train 'best' (hardware auto): 64 images from {image_files[0]} -> {output}; loading torch"
    assert result.stdout == f"{line!r} False\n", result.stderr


def test_help_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("aecluster ")
    result = run_cli("cluster", "--help")
    assert "threshold: codes are centred" in " ".join(result.stdout.split())



@pytest.mark.slow
def test_bad_input_catalogue(tmp_path, image_files, trained_checkpoint, capsys):
    """Every bad input a user can hand `cluster`: one line naming it, exit 2, no output file."""
    import torch

    def npy(name, array):
        np.save(tmp_path / name, array)
        return tmp_path / name

    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(image_files[0].read_bytes()[:1000])
    payload = torch.load(trained_checkpoint, weights_only=True)
    torch.save({**payload, "format_version": 99}, tmp_path / "future.pth")
    torch.save({**payload, "model": "baseline"}, tmp_path / "other.pth")
    (tmp_path / "not_images").mkdir()
    (tmp_path / "not_images" / "notes.txt").write_text("hello")
    images, ckpt = image_files[0], trained_checkpoint
    cases = {
        "wrong rank": (npy("rank.npy", np.zeros((4, 32, 32), np.uint8)), ckpt, "expected shape (N, 32, 32, 3)"),
        "wrong dtype": (npy("float.npy", np.zeros((4, 32, 32, 3), np.float32)), ckpt, "dtype float32"),
        "nan values": (npy("nan.npy", np.full((4, 32, 32, 3), np.nan)), ckpt, "dtype float64"),
        "empty": (npy("empty.npy", np.zeros((0, 32, 32, 3), np.uint8)), ckpt, "found 0 images"),
        "one image": (npy("one.npy", np.zeros((1, 32, 32, 3), np.uint8)), ckpt, "found 1 images"),
        "identical": (npy("same.npy", np.full((8, 32, 32, 3), 7, np.uint8)), ckpt, "same code"),
        "truncated npy": (truncated, ckpt, "not a readable .npy"),
        "no images in folder": (tmp_path / "not_images", ckpt, "holds no .png/.jpg/.jpeg"),
        "missing images": (tmp_path / "nothing.npy", ckpt, "no such file or folder"),
        "missing checkpoint": (images, tmp_path / "none.pth", "no such checkpoint"),
        "newer checkpoint": (images, tmp_path / "future.pth", "upgrade aecluster"),
        "other model's weights": (images, tmp_path / "other.pth", "made for another model"),
    }
    for name, (data, checkpoint, message) in cases.items():
        output = tmp_path / "out.csv"
        assert main(["cluster", str(data), str(checkpoint), str(output), "--quiet"]) == 2, name
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not output.exists(), name
    result = run_cli("cluster", cases["identical"][0], ckpt, tmp_path / "out.csv", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unwritable_output_folder_and_folder_as_output(tmp_path, image_files, trained_checkpoint, capsys,
                                                       monkeypatch):
    images, ckpt = str(image_files[0]), str(trained_checkpoint)
    assert main(["cluster", images, ckpt, str(tmp_path), "--quiet"]) == 2
    assert "is a folder, expected a file path" in capsys.readouterr().err
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("aecluster.atomic.tempfile.mkstemp", refused)
    assert main(["cluster", images, ckpt, str(tmp_path / "p.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(f"output folder {tmp_path} is not writable (Permission denied)")
    assert err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


def test_distill_matches_maps_by_default_only_where_the_shapes_match(tmp_path, image_files, trained_checkpoint):
    from aecluster.checkpoint import read_checkpoint

    # The teacher's latent map is 64x4x4: an `improved` student's too, a `best` student's is 128x4x4.
    for student, expected in (("improved", 300.0), ("best_cnn", 0.0)):
        assert main(["distill", "--teacher", str(trained_checkpoint), "--student", student, "--epochs", "1",
                     "--batch-size", "32", "--quiet", str(image_files[0]), str(tmp_path / f"{student}.pth")]) == 0
        snapshot = sorted((tmp_path / f"{student}_run").glob("step_*.pth"))[-1]
        assert read_checkpoint(snapshot)["settings"]["distill_maps"] == expected


@pytest.mark.parametrize("option, value", [
    ("--width-multiplier", "1e9"), ("--width-multiplier", "inf"), ("--width-multiplier", "nan"),
    ("--width-multiplier", "0"), ("--lr", "inf"), ("--lr", "nan"), ("--lr", "1e9"), ("--lr", "-1"),
    ("--noise", "inf"), ("--batch-size", "1e3"),
])
def test_training_options_out_of_range_are_refused_at_parsing(tmp_path, image_files, capsys, option, value):
    from aecluster.registry import ARCHITECTURE_BOUNDS, SETTING_BOUNDS

    code = main(["train", str(image_files[0]), str(tmp_path / "t.pth"), "--epochs", "1", option, value])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    name = option[2:].replace("-", "_")
    bounds = ARCHITECTURE_BOUNDS.get(name) or SETTING_BOUNDS[name]
    assert f"argument {option}: expected {bounds.describe()}, found '{value}'" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, key", [("--clusters", "n_clusters"), ("--fine-clusters", "fine_clusters")])
@pytest.mark.parametrize("value", ["1", "2.5", "inf"])
def test_group_counts_out_of_range_are_refused_at_parsing(option, key, value):
    from aecluster.cli import build_parser
    from aecluster.registry import RECIPE_BOUNDS

    argv = ["cluster", "x.npy", "m.pth", "p.csv", option, value]
    with pytest.raises(UserInputError, match=f"argument {option}: expected {RECIPE_BOUNDS[key].describe()}, "
                                             f"found '{value}'"):
        build_parser().parse_args(argv)
    assert getattr(build_parser().parse_args([*argv[:-1], "3"]), option[2:].replace("-", "_")) == 3


@pytest.mark.parametrize("value, accepted", [("0", True), ("-1", False), ("nan", False)])
def test_distill_weight_takes_the_settings_range(value, accepted, capsys):
    from aecluster.cli import build_parser

    argv = ["distill", "--teacher", "t.pth", "--student", "best", "x.npy", "s.pth", "--distill-weight", value]
    if accepted:
        assert build_parser().parse_args(argv).distill_weight == 0.0
    else:
        with pytest.raises(UserInputError, match=f"argument --distill-weight: expected a non-negative number, "
                                                 f"found '{value}'"):
            build_parser().parse_args(argv)
