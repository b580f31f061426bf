"""`aecluster gallery` / `plots gallery`: each group's most typical and most borderline images,
drawn from a fixture whose groups (and whose borderline images) are known."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aecluster.checkpoint import load_model, make_payload, save_checkpoint
from aecluster.cli import main as cli_main
from aecluster.cli import plots as plots_cli
from aecluster.csvio import write_predictions
from aecluster.models import build_model
from tests.conftest import expected_order


@pytest.fixture()
def gallery_inputs(tmp_path, families) -> tuple[Path, Path]:
    images, labels = families
    np.save(tmp_path / "x.npy", images)
    write_predictions(tmp_path / "pred.csv", labels)
    return tmp_path / "x.npy", tmp_path / "pred.csv"


def test_gallery_png_of_three_groups(tmp_path, gallery_inputs):
    out = tmp_path / "gallery.png"
    figure = plots_cli.draw(["gallery", *map(str, gallery_inputs), str(out), "--per-group", "4", "--quiet"])
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and 5_000 < out.stat().st_size < 1_000_000
    with Image.open(out) as png:
        assert 600 <= png.width <= 2000 and 300 <= png.height <= 2000
    axes = figure.axes
    assert len(axes) == 6
    # Each row's heading names its group and that group's size (30 images each).
    assert [re.findall(r"\d+", axes[2 * row].get_title(loc="left"))[:2] for row in range(3)] == [
        [str(label), "30"] for label in range(3)]
    assert [text.get_text() for text in axes[1].get_xticklabels()][:2] == ["#0 → 1", "#3 → 2"]
    assert all(image.get_interpolation() == "nearest" for axis in axes for image in axis.get_images())
    assert "raw pixels" in figure.get_suptitle()


def test_top_level_command_with_a_checkpoint(tmp_path, gallery_inputs, families, capsys):
    model = build_model("baseline")
    save_checkpoint(tmp_path / "m.pth", make_payload(model, "baseline", {}, {}, 0))
    out = tmp_path / "g.png"
    argv = [*map(str, gallery_inputs), str(out), "--checkpoint", str(tmp_path / "m.pth"), "--per-group", "2"]
    assert cli_main(["gallery", *argv]) == 0
    assert capsys.readouterr().err == f"wrote {out}\n"
    figure = plots_cli.draw(["gallery", *argv, "--quiet"])
    images, labels = families
    model = load_model(tmp_path / "m.pth")[0].eval()
    with torch.no_grad():  # the codes by hand: pixels scaled to [-1, 1], channels first
        codes = model.encode(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).numpy()
    typical, _ = expected_order(codes, labels)
    shown = [[text.get_text() for text in axis.get_xticklabels()] for axis in figure.axes[::2]]
    assert shown == [[f"#{index}" for index in typical[label][:2]] for label in range(3)]
    assert "baseline codes (m.pth)" in figure.get_suptitle()


@pytest.mark.parametrize("case", ["too few rows", "too many rows", "output is an input", "per-group 0"])
def test_user_errors_write_nothing(tmp_path, gallery_inputs, families, capsys, case):
    images_path, csv = gallery_inputs
    labels = families[1]
    out = tmp_path / "g.png"
    if case == "too few rows":
        write_predictions(csv, labels[:-1])
        message = f"{csv}: has 89 rows, but {images_path} has 90 images; expected one row per image"
    elif case == "too many rows":
        write_predictions(csv, np.append(labels, 0))
        message = f"{csv}: has 91 rows"
    elif case == "output is an input":
        folder = tmp_path / "pngs"
        folder.mkdir()
        for index in range(len(labels)):
            Image.fromarray(families[0][index]).save(folder / f"{index}.png")
        images_path, out = folder, folder / "5.png"
        message = "refusing to overwrite an input"
    else:
        message = "--per-group: expected an integer from 1 to 20, found '0'"
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    argv = [str(images_path), str(csv), str(out)] + (["--per-group", "0"] if case == "per-group 0" else [])
    assert cli_main(["gallery", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aecluster: error: ") and message in err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
