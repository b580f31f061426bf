"""Report figures (`aecluster plots ...`, `aecluster.plots`) and scripts/make_report.sh, on tiny synthetic data."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aecluster.checkpoint import load_model, read_checkpoint, save_checkpoint
from aecluster.cli import main as cli_main
from aecluster.cli import plots as plots_cli
from aecluster.csvio import write_predictions
from aecluster.snapshots import run_folder
from tests.conftest import dark_and_light, three_families

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def shown_accuracy(title: str) -> float:
    """The one percentage a title shows, as a fraction."""
    (percent,) = re.findall(r"(\d+(?:\.\d+)?)\s*%", title)
    return float(percent) / 100


def matched_in(title: str, group: int, label: str) -> bool:
    """Whether a title pairs `group` with `label` ("group 0 → label 1", spaces optional)."""
    return re.search(rf"group\s*{group}\s*→\s*{re.escape(label)}", title) is not None


def legend_texts(axis) -> list[str]:
    return [text.get_text() for text in axis.get_legend().get_texts()]


@pytest.fixture()
def encoder_only(tmp_path, trained_checkpoint) -> Path:
    """The fixture checkpoint saved without its decoder weights."""
    payload = read_checkpoint(trained_checkpoint)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("decoder.")}
    save_checkpoint(tmp_path / "encoder_only.pth", payload)
    return tmp_path / "encoder_only.pth"


def test_reconstructions_default_indices(tmp_path, image_files, trained_checkpoint):
    out = tmp_path / "rec.png"
    figure = plots_cli.draw(["reconstructions", str(image_files[0]), str(trained_checkpoint), str(out), "--quiet"])
    assert_png(out)
    axes = figure.axes
    assert len(axes) == 12
    images = np.load(image_files[0])
    for axis, index in zip(axes[:6], (1, 2, 3, 6, 7, 9), strict=True):  # each column shows and names its image
        assert re.findall(r"\d+", axis.get_title()) == [str(index)]
        np.testing.assert_array_equal(np.asarray(axis.get_images()[0].get_array()), images[index])
    assert "original" in axes[0].get_ylabel() and "reconstruction" in axes[6].get_ylabel()
    assert all(axis.get_xlabel().startswith("MSE ") for axis in axes[6:])
    assert "improved" in figure.get_suptitle()


def test_reconstructions_custom_indices_and_pixels(tmp_path, image_files, trained_checkpoint, two_groups):
    figure = plots_cli.draw(["reconstructions", str(image_files[0]), str(trained_checkpoint),
                         str(tmp_path / "rec.png"), "--indices", "0,63", "--quiet"])
    assert len(figure.axes) == 4 and re.findall(r"\d+", figure.axes[1].get_title()) == ["63"]
    for axis, index in zip(figure.axes[:2], (0, 63), strict=True):
        assert np.array_equal(np.asarray(axis.get_images()[0].get_array()), two_groups[0][index])


def test_many_reconstructions_wrap_after_ten_columns_and_too_many_are_refused(tmp_path, image_files,
                                                                              trained_checkpoint, capsys):
    figure = plots_cli.draw(["reconstructions", str(image_files[0]), str(trained_checkpoint),
                             str(tmp_path / "rec.png"), "--indices", ",".join(map(str, range(12))), "--quiet"])
    shown = [axis for axis in figure.axes if axis.axison]
    assert len(figure.axes) == 40 and len(shown) == 24
    assert re.findall(r"\d+", figure.axes[20].get_title()) == ["10"] and "original" in figure.axes[20].get_ylabel()
    assert cli_main(["plots", "reconstructions", str(image_files[0]), str(trained_checkpoint), str(tmp_path / "r.png"),
                           "--indices", ",".join(map(str, range(61)))]) == 2
    assert "expected at most 60 indices" in capsys.readouterr().err and not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("reduce, xlabel", [
    (None, ["PCA"]),  # the checkpoint's pca:2
    ("pca:3", ["PCA", "3-D", "pca:3"]),  # brought to 2-D by a PCA of the 3-D codes
    ("pca:1", ["pca:1"]),
    ("wpca:2", ["whitened PCA"]),
], ids=["recipe", "pca:3", "pca:1", "wpca:2"])
def test_embedding_panels_side_by_side(tmp_path, image_files, trained_checkpoint, reduce, xlabel):
    out = tmp_path / "emb.png"
    extra = ["--reduce", reduce] if reduce else []
    figure = plots_cli.draw(["embedding", str(image_files[0]), str(image_files[1]), str(trained_checkpoint),
                         str(trained_checkpoint), str(out), "--quiet", *extra])
    assert_png(out)
    assert len(figure.axes) == 2
    for axis in figure.axes:  # each panel names its model, its file and an accuracy in percent
        assert "improved" in axis.get_title() and "model.pth" in axis.get_title()
        assert 0 <= shown_accuracy(axis.get_title()) <= 1
        assert all(words in axis.get_xlabel() for words in xlabel) and axis.get_ylabel()
        assert legend_texts(axis) == ["label 0: 32", "label 1: 32"]  # no names given: no meaning assumed
        assert sum(len(collection.get_offsets()) for collection in axis.collections) == 64


def test_embedding_of_three_groups_has_three_colours(tmp_path, trained_checkpoint):
    images, labels = three_families()
    np.save(tmp_path / "X.npy", images)
    np.save(tmp_path / "Y.npy", labels)
    figure = plots_cli.draw(["embedding", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), str(trained_checkpoint),
                             str(tmp_path / "emb.png"), "--clusters", "3", "--quiet"])
    axis = figure.axes[0]
    assert legend_texts(axis) == ["label 0: 30", "label 1: 30", "label 2: 30"]
    colours = {tuple(collection.get_facecolor()[0]) for collection in axis.collections}
    assert len(colours) == 3
    assert shown_accuracy(axis.get_title()) >= 0.95  # three groups, not two: two groups would score at most 2/3


def test_checkpoints_curve(tmp_path, image_files, trained_checkpoint):
    """Each snapshot's MSE on the training images, computed here with torch alone, and its accuracy on
    dark and light validation images, whose best matching to their labels scores 7/8 for any encoder."""
    import torch

    run = run_folder(trained_checkpoint)
    snapshots = sorted(run.glob("step_*.pth"))
    out = tmp_path / "ck.png"
    images = str(image_files[0])
    val_images, val_labels, accuracy = dark_and_light()
    np.save(tmp_path / "valX.npy", val_images)
    np.save(tmp_path / "valY.npy", val_labels)
    figure = plots_cli.draw(["checkpoints", str(run), images, str(tmp_path / "valX.npy"),
                             str(tmp_path / "valY.npy"), str(out), "--quiet"])
    assert_png(out)
    left, right = figure.axes
    assert "MSE" in left.get_ylabel() and "[-1, 1]" in left.get_ylabel()
    assert "accuracy" in right.get_ylabel() and "epoch" in left.get_xlabel()
    assert f"{len(snapshots)} snapshots" in left.get_title()
    assert len(figure.legends[0].get_texts()) == 2
    epochs = [read_checkpoint(path)["epoch"] for path in snapshots]
    mse_line, acc_line = left.get_lines()[0], right.get_lines()[0]
    assert list(mse_line.get_xdata()) == sorted(epochs)
    model, _ = load_model(snapshots[-1])
    with torch.no_grad():  # pixels scaled to [-1, 1], channels first, as the models see them
        inputs = torch.from_numpy(np.load(images)).permute(0, 3, 1, 2).double() / 127.5 - 1
        expected = float(((model.double().eval().reconstruct(inputs) - inputs) ** 2).mean())
    assert mse_line.get_ydata()[-1] == pytest.approx(expected, rel=1e-4)
    assert list(acc_line.get_ydata()) == [accuracy] * len(snapshots)


def test_checkpoints_curve_leaves_no_cursor_codes_in_a_log(tmp_path, image_files, trained_checkpoint, capsys):
    images, labels = map(str, image_files)
    run = str(run_folder(trained_checkpoint))
    plots_cli.draw(["checkpoints", run, images, images, labels, str(tmp_path / "c.png")])
    err = capsys.readouterr().err  # captured: not a terminal
    assert "snapshots: 100%" in err and "\x1b[" not in err


def test_confusion_counts_rates_and_matching(tmp_path, image_files):
    truth = np.load(image_files[1])
    predicted = 1 - truth
    predicted[:3] = truth[:3]  # three mistakes once the flipped groups are matched to labels
    write_predictions(tmp_path / "pred.csv", predicted)
    out = tmp_path / "conf.png"
    figure = plots_cli.draw(["confusion", str(tmp_path / "pred.csv"), str(image_files[1]), str(out), "--quiet"])
    assert_png(out)
    matrix = figure.axes[0]
    assert len(figure.axes) == 2 and "row rate" in figure.axes[1].get_ylabel()
    assert [text.get_text() for text in matrix.texts] == [
        "30\n93.8% of row", "2\n6.2% of row", "1\n3.1% of row", "31\n96.9% of row"]
    title = matrix.get_title()  # the accuracy (61 of 64 after matching) and the matching itself
    assert f"{61 / 64:.1%}" in title and matched_in(title, 0, "label 1") and matched_in(title, 1, "label 0")
    assert "true label" in matrix.get_ylabel() and "predicted group" in matrix.get_xlabel()


def test_label_names_name_the_legend_ticks_and_matching(tmp_path, image_files, trained_checkpoint):
    images, labels = map(str, image_files)
    names = ["label-names", "not landscape,landscape"]
    figure = plots_cli.draw(["embedding", images, labels, str(trained_checkpoint), str(tmp_path / "e.png"),
                             "--quiet", f"--{names[0]}", names[1]])
    assert legend_texts(figure.axes[0]) == ["not landscape (0): 32", "landscape (1): 32"]
    truth = np.load(labels)
    write_predictions(tmp_path / "pred.csv", 1 - truth)
    figure = plots_cli.draw(["confusion", str(tmp_path / "pred.csv"), labels, str(tmp_path / "c.png"), "--quiet",
                             f"--{names[0]}", names[1]])
    matrix = figure.axes[0]
    assert [tick.get_text() for tick in matrix.get_yticklabels()] == ["not landscape (0)", "landscape (1)"]
    assert matched_in(matrix.get_title(), 1, "not landscape (0)") and matched_in(matrix.get_title(), 0, "landscape (1)")


def write_results(path: Path, points: list[dict]) -> Path:
    path.write_text(json.dumps({"benchmark": "synthetic", "points": points}))
    return path


SWEEP = [{"family": family, "params": params * scale, "acc": acc, "name": f"{family}-{params}"}
         for family, scale in (("separable", 1), ("plain", 4))
         for params, acc in ((1000, 0.6), (5000, 0.7), (20000, 0.8))]


def test_size_accuracy(tmp_path, capsys):
    out = tmp_path / "size.png"
    figure = plots_cli.draw(["size-accuracy", str(write_results(tmp_path / "r.json", SWEEP)), str(out)])
    assert_png(out)
    (axis,) = figure.axes
    assert axis.get_xscale() == "log" and "parameters" in axis.get_xlabel() and "accuracy" in axis.get_ylabel()
    assert legend_texts(axis) == ["separable (3 models)", "plain (3 models)"]
    assert "synthetic" in axis.get_title()
    assert capsys.readouterr().err.strip() == f"wrote {out}"


def test_size_accuracy_draws_the_seed_spread_as_error_bars(tmp_path):
    spread = [{**point, "acc_std": 0.05 if index == 0 else 0.0} for index, point in enumerate(SWEEP)]
    figure = plots_cli.draw(["size-accuracy", str(write_results(tmp_path / "r.json", spread)), str(tmp_path / "s.png")])
    separable = figure.axes[0].containers[0]
    (bars,) = separable.lines[2]
    (low, high), *others = [segment[:, 1] for segment in bars.get_segments()]
    assert (low, high) == pytest.approx((0.55, 0.65))
    assert all(a == pytest.approx(b) for a, b in others)


def test_size_accuracy_warns_below_three_points(tmp_path, capsys):
    results = write_results(tmp_path / "r.json", SWEEP[:5])
    assert cli_main(["plots", "size-accuracy", str(results), str(tmp_path / "s.png"), "--quiet"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"aecluster: warning: {results}: family 'plain' has 2 point(s); a size comparison wants at least 3 "
        "per family")


def test_cli_forwards_to_plots(tmp_path, image_files):
    write_predictions(tmp_path / "pred.csv", np.load(image_files[1]))
    out = tmp_path / "conf.png"
    assert cli_main(["plots", "confusion", str(tmp_path / "pred.csv"), str(image_files[1]), str(out),
                     "--quiet"]) == 0
    assert_png(out)


def bad_cases(tmp_path: Path, image_files, trained_checkpoint, encoder_only) -> dict[str, tuple[list, str]]:
    images, labels = map(str, image_files)
    ckpt = str(trained_checkpoint)
    short = tmp_path / "short.npy"
    np.save(short, np.zeros(5, dtype=np.int64))
    (tmp_path / "bad.json").write_text('{"points": [')
    (tmp_path / "header.csv").write_text("a,b\n0,1\n")
    np.save(tmp_path / "three.npy", np.arange(64) % 3)
    write_predictions(tmp_path / "three.csv", np.arange(64) % 3)
    encoder_run = tmp_path / "encoder_run"
    encoder_run.mkdir()
    shutil.copy(encoder_only, encoder_run / "step_0000001.pth")
    return {
        "missing images": (["reconstructions", tmp_path / "none.npy", ckpt], "none.npy: no such file or folder"),
        "index range": (["reconstructions", images, ckpt, "--indices", "1,64"], "index 64 is out of range"),
        "index text": (["reconstructions", images, ckpt, "--indices", "a"], "expected comma-separated"),
        "no decoder": (["reconstructions", images, str(encoder_only)], "checkpoint has no decoder"),
        "labels length": (["embedding", images, short, ckpt], "found 5 labels, expected 64"),
        "missing ckpt": (["embedding", images, labels, ckpt, tmp_path / "none.pth"], "no such checkpoint"),
        "bad reducer": (["embedding", images, labels, ckpt, "--reduce", "svd:2"], "bad reducer"),
        "empty run": (["checkpoints", tmp_path, images, images, labels], "no step_*.pth snapshots"),
        "no run": (["checkpoints", tmp_path / "none_run", images, images, labels], "no such run folder"),
        "run no decoder": (["checkpoints", encoder_run, images, images, labels], "has no decoder"),
        "csv header": (["confusion", tmp_path / "header.csv", labels], "header is 'a,b'"),
        "bad json": (["size-accuracy", tmp_path / "bad.json"], "not valid JSON"),
        "bad acc": (["size-accuracy", write_results(tmp_path / "acc.json", [{**SWEEP[0], "acc": 2}])],
                    "points[0].acc is 2, expected a number in [0, 1]"),
        "no points": (["size-accuracy", write_results(tmp_path / "empty.json", [])], 'no non-empty "points"'),
        "bad spread": (["size-accuracy", write_results(tmp_path / "std.json", [{**SWEEP[0], "acc_std": -1}])],
                       "points[0].acc_std is -1, expected a number in [0, 1]"),
        "missing args": (["confusion", labels], "the following arguments are required"),
        "too few names": (["confusion", tmp_path / "three.csv", tmp_path / "three.npy", "--label-names", "cat,dog"],
                          "--label-names: 2 name(s) for labels 0 to 1, but"),
        "empty name": (["confusion", tmp_path / "three.csv", tmp_path / "three.npy", "--label-names", "cat,"],
                       "expected comma-separated names"),
        "unknown figure": (["histogram", images], "invalid choice: 'histogram'"),
    }


CASES = ["missing images", "index range", "index text", "no decoder", "labels length", "missing ckpt",
         "bad reducer", "empty run", "no run", "run no decoder", "csv header", "bad json", "bad acc", "bad spread",
         "no points", "missing args", "unknown figure", "too few names", "empty name"]


@pytest.mark.parametrize("case", CASES)
def test_user_errors_are_one_line_exit_2(tmp_path, image_files, trained_checkpoint, encoder_only, capsys, case):
    args, message = bad_cases(tmp_path, image_files, trained_checkpoint, encoder_only)[case]
    out = tmp_path / "out.png"
    argv = [str(arg) for arg in args] + ([] if case in ("missing args", "unknown figure") else [str(out)])
    assert cli_main(["plots", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aecluster: error: ") and message in err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("output, message", [("out.jpg", "output must be a .png file"),
                                             ("missing/out.png", "output folder")])
def test_bad_output_path(tmp_path, output, message, capsys):
    results = write_results(tmp_path / "r.json", SWEEP)
    assert cli_main(["plots", "size-accuracy", str(results), str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("figure, words", [
    ("reconstructions", "top row"), ("embedding", "coloured by true label"), ("checkpoints", "two y axes"),
    ("confusion", "best one-to-one matching"), ("size-accuracy", "log scale"), ("gallery", "most borderline"),
])
def test_help_says_what_each_figure_draws(capsys, figure, words):
    with pytest.raises(SystemExit) as stopped:
        cli_main(["plots", figure, "--help"])
    assert stopped.value.code == 0
    assert words in " ".join(capsys.readouterr().out.split())


def test_module_runs_without_heavy_imports_or_traceback(tmp_path):
    code = ("import sys; from aecluster.cli import build_parser; build_parser().format_help(); "
            "import aecluster.plots.compute; print(sorted({'torch', 'matplotlib', 'sklearn'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr
    result = subprocess.run([sys.executable, "-m", "aecluster.plots", "confusion", "none.csv", "none.npy",
                             str(tmp_path / "c.png")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == "aecluster: error: none.csv: no such file\n"


def run_report(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / "scripts" / "make_report.sh"), *map(str, args), "--quiet"],
                          capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture()
def report_inputs(tmp_path, image_files, trained_checkpoint) -> tuple[Path, Path]:
    """A benchmark folder and a checkpoints folder laid out as the report expects."""
    data, checkpoints = tmp_path / "data", tmp_path / "checkpoints"
    data.mkdir()
    checkpoints.mkdir()
    for name in ("trainX.npy", "valX.npy"):
        shutil.copy(image_files[0], data / name)
    shutil.copy(image_files[1], data / "valY.npy")
    return data, checkpoints


@pytest.mark.slow
def test_make_report_names_what_is_missing(tmp_path, report_inputs):
    data, checkpoints = report_inputs
    result = run_report(data, "--checkpoints", checkpoints, "--output", tmp_path / "report", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    for name in ("baseline.pth", "improved.pth", "best.pth", "improved_run/step_*.pth", "train_best.sh"):
        assert name in result.stderr
    assert not (tmp_path / "report" / "README.md").exists()


@pytest.mark.slow
def test_make_report_end_to_end(tmp_path, report_inputs, trained_checkpoint):
    data, checkpoints = report_inputs
    for model in ("baseline", "improved", "best"):
        shutil.copy(trained_checkpoint, checkpoints / f"{model}.pth")
    shutil.copytree(run_folder(trained_checkpoint), checkpoints / "improved_run")
    report = tmp_path / "report"
    result = run_report(data, "--checkpoints", checkpoints, "--output", report, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    readme = (report / "README.md").read_text()
    metrics = json.loads((report / "metrics.json").read_text())
    for figure in ("embedding_baseline_vs_improved", "reconstructions", "checkpoints_improved",
                   "confusion_best_val", "gallery_best_val"):
        assert f"]({figure}.png)" in readme
        assert_png(report / f"{figure}.png")
        assert (report / f"{figure}.png").stat().st_size <= 300_000
    assert len(metrics["snapshots"]) == len(list(run_folder(trained_checkpoint).glob("step_*.pth")))
    assert f"{100 * metrics['val_accuracy']['best']:.1f}%" in readme
    snapshots = len(metrics["snapshots"])
    assert f"| Pearson r(trainX MSE, val accuracy), {snapshots} snapshots | " in readme
    assert (report / "best_val_predictions.csv").read_text().startswith("id,label\n")


def test_report_compares_the_families_where_their_sizes_overlap():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_report", ROOT / "scripts" / "make_report.py")
    make_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_report)
    points = [{"family": "separable", "params": p, "acc": a} for p, a in ((1e3, 0.6), (1e4, 0.7), (1e5, 0.8))]
    points += [{"family": "plain", "params": p, "acc": a} for p, a in ((1e4, 0.6), (1e5, 0.7), (1e6, 0.9))]
    result = make_report.compare_families(points)
    assert result["families"] == ("separable", "plain") and result["params"] == pytest.approx((1e4, 1e5))
    assert result["gap"] == pytest.approx(0.10) and result["spread"] == 0.0
    assert make_report.compare_families(points[:1] + points[4:]) is None
    noisy = make_report.family_gap_table([{**point, "acc_std": 0.12} for point in points])
    assert noisy[2:] == ["| parameter range where both families have models | 10,000 – 100,000 |",
                         "| mean val accuracy separable − plain there (points) | +10.0 |",
                         "| mean spread over seeds (points) | 12.0 |"]
