"""`aecluster gallery` / `plots gallery`: each group's most typical and most borderline images,
drawn from a fixture whose groups (and whose borderline images) are known."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aecluster.checkpoint import load_model, make_payload, save_checkpoint
from aecluster.cli import main as cli_main
from aecluster.cli import plots as plots_cli
from aecluster.csvio import write_predictions
from aecluster.encoding import encode_images
from aecluster.models import build_model
from aecluster.plots.compute import gallery_groups, pixel_codes
from tests.conftest import FAMILIES, three_families

PLANTED = {0: 1, 3: 2, 1: 2}  # image -> the family its colour is pulled towards (images 0, 3: red; 1: green)


@pytest.fixture(scope="module")
def families() -> tuple[np.ndarray, np.ndarray]:
    """Three colour families (labels 0, 1, 2), with three images pulled halfway to another family:
    the gallery's borderline images are known in advance."""
    images, labels = three_families(90)
    images = images.copy()
    for index, towards in PLANTED.items():
        pulled = 0.55 * FAMILIES[labels[index]] + 0.45 * FAMILIES[towards]
        images[index] = np.clip(pulled * 255, 0, 255).astype(np.uint8)
    return images, labels


def expected_order(images: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Typical and borderline orders per label, computed directly: every image against every centre."""
    codes = images.reshape(len(images), -1) / 255.0
    groups = sorted(set(labels.tolist()))
    centres = np.stack([codes[labels == group].mean(axis=0) for group in groups])
    distances = np.sqrt(((codes[:, None, :] - centres[None]) ** 2).sum(axis=2))
    typical, borderline = {}, {}
    for column, group in enumerate(groups):
        members = np.flatnonzero(labels == group)
        own = distances[members, column]
        other = np.delete(distances[members], column, axis=1).min(axis=1)
        typical[group] = members[np.lexsort((members, own))].tolist()
        borderline[group] = members[np.lexsort((members, other - own))].tolist()
    return typical, borderline


def test_typical_and_borderline_images_of_known_groups(families):
    images, labels = families
    groups = gallery_groups(pixel_codes(images), labels, per_group=5)
    typical, borderline = expected_order(images, labels)
    assert [group.label for group in groups] == [0, 1, 2]
    assert [group.size for group in groups] == [30, 30, 30]
    for group in groups:
        assert set(labels[group.typical]) == {group.label} and set(labels[group.borderline]) == {group.label}
        assert group.typical.tolist() == typical[group.label][:5]
        assert group.borderline.tolist() == borderline[group.label][:5]
        assert not set(group.typical) & set(PLANTED)
    # The planted images head their group's borderline list, each beside the family it was pulled to.
    assert groups[0].borderline[:2].tolist() == [0, 3] and groups[0].neighbours[:2].tolist() == [1, 2]
    assert groups[1].borderline[0] == 1 and groups[1].neighbours[0] == 2


def test_any_number_of_groups_small_groups_and_one_group(families):
    images, labels = families
    split = np.where(np.arange(len(labels)) < 4, labels + 10, labels)  # groups 10, 11, 12 of 2, 1, 1 images
    groups = gallery_groups(pixel_codes(images), split, per_group=3)
    assert [(group.label, group.size) for group in groups] == [(0, 28), (1, 29), (2, 29), (10, 2), (11, 1), (12, 1)]
    assert len(groups[4].typical) == len(groups[4].borderline) == 1
    only = gallery_groups(pixel_codes(images), np.full(len(labels), 7), per_group=4)
    assert len(only) == 1 and only[0].size == 90 and len(only[0].typical) == 4 and len(only[0].borderline) == 0


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
    assert [axes[2 * row].get_title(loc="left").split(";")[0] for row in range(3)] == [
        f"group {label}: 30 images" for label in range(3)]
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
    codes = encode_images(load_model(tmp_path / "m.pth")[0], images)
    expected = gallery_groups(codes, labels, per_group=2)
    shown = [[text.get_text() for text in axis.get_xticklabels()] for axis in figure.axes[::2]]
    assert shown == [[f"#{index}" for index in group.typical] for group in expected]
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
