"""Bad inputs, as a careful user or an attacker would try them: each gets one line and
exit code 2 (or argparse's 2), before any slow work, and no file is created, changed or replaced."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster import atomic
from aecluster.cli import main
from aecluster.csvio import read_predictions
from aecluster.files import SNIFF_BYTES, describe_file
from tests.conftest import assert_refused, folder_state, run_main

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = sorted((ROOT / "checkpoints").glob("*.pth"))


@pytest.fixture
def ws(tmp_path, image_files, trained_checkpoint):
    """A folder with the files a user has: images, labels, a checkpoint, a prediction and a pairs CSV."""
    folder = tmp_path / "w"
    folder.mkdir()
    shutil.copy(image_files[0], folder / "x.npy")
    shutil.copy(image_files[1], folder / "y.npy")
    shutil.copy(trained_checkpoint, folder / "m.pth")
    labels = np.load(image_files[1])
    (folder / "pred.csv").write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    (folder / "pairs.csv").write_text("id,image1_index,image2_index\n0,0,1\n1,2,4\n")
    return folder


def edit_checkpoint(change):
    """A setup step writing bad.pth: the test checkpoint's dictionary after `change(payload)`."""
    def setup(w: Path) -> None:
        payload = torch.load(w / "m.pth", weights_only=True)
        payload = change(payload) or payload
        torch.save(payload, w / "bad.pth")
    return setup


def set_key(key, value):
    def change(payload):
        payload[key] = value
    return change


def nan_weights(every: bool):
    def change(payload):
        tensor = next(t for t in payload["state_dict"].values() if t.is_floating_point())
        if every:
            for tensor in payload["state_dict"].values():
                tensor.fill_(float("nan")) if tensor.is_floating_point() else None
        else:
            tensor.view(-1)[0] = float("nan")
    return change


class CodeRunner:
    def __reduce__(self):
        return print, ("code ran",)


def unsafe_pickle(w: Path) -> None:
    """A checkpoint that would run code, pickled with protocol 4 (torch warns about that first)."""
    torch.save({"format": "aecluster-checkpoint", "model": CodeRunner()}, w / "evil.pth", pickle_protocol=4)


def huge_settings(payload):
    payload["config"] = {**payload["config"], "widths": [2048, 4096, 8192]}


def write(name: str, text: str):
    def setup(w: Path) -> None:
        (w / name).write_text(text)
    return setup


def make_fifo(name: str):
    def setup(w: Path) -> None:
        os.mkfifo(w / name)
    return setup


def declare_huge_labels(w: Path) -> None:
    with open(w / "huge.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<i8", "fortran_order": False, "shape": (10**11,)})
        handle.write(b"\0" * 800)


def link(name: str, target: str, hard: bool = False):
    def setup(w: Path) -> None:
        (os.link if hard else os.symlink)(w / target, w / name)
    return setup


def labels_of(name: str, value: int):
    def setup(w: Path) -> None:
        np.save(w / name, np.full(len(np.load(w / "y.npy")), value))
    return setup


def pred_with(cell: str):
    return write("p.csv", f"id,label\n0,1\n{cell},0\n")


CLUSTER = ["cluster", "{x}", "{m}"]
BAD = ["cluster", "{x}", "{bad.pth}", "{o.csv}"]
# (case, arguments with {name} standing for w/name, setup or None, exit code, message fragment)
CASES = [
    # 1. an output that is an input, or whose extension contradicts its kind
    ("cluster output is the images", CLUSTER + ["{x}"], None, 2, "is also the input"),
    ("cluster output is the checkpoint", CLUSTER + ["{m}"], None, 2, "is also the input"),
    ("cluster output is a symlink to the images", CLUSTER + ["{l.csv}"], link("l.csv", "x.npy"), 2,
     "is also the input"),
    ("cluster output is a hard link to the images", CLUSTER + ["{h.csv}"], link("h.csv", "x.npy", hard=True), 2,
     "is also the input"),
    ("cluster output is the labels of --reference", CLUSTER + ["{y.npy}", "--reference", "{x}", "{y.npy}"], None, 2,
     "is also the input"),
    ("cluster output named .npy", CLUSTER + ["{new.npy}"], None, 2, "expected .csv"),
    ("the CSV and --save-model at one path", CLUSTER + ["{o.pth}", "--save-model", "{o.pth}", "--force"], None, 2,
     "o.pth: is also the output"),
    ("pairs output is the pairs CSV", ["pairs", "{x}", "{m}", "{pairs.csv}", "{pairs.csv}"], None, 2,
     "is also the input"),
    ("train output is the images", ["train", "--model", "improved", "{x}", "{x}"], None, 2, "is also the input"),
    ("train output named .csv", ["train", "--model", "improved", "{x}", "{t.csv}"], None, 2, "expected .pth"),
    ("deploy output is the checkpoint", ["deploy", "{m}", "{m}"], None, 2, "is also the input"),
    ("export output named .npy", ["export", "{m}", "{e.npy}"], None, 2, "expected .onnx"),
    # 2. an output that is not a regular file
    ("cluster output is a FIFO", CLUSTER + ["{f.csv}"], make_fifo("f.csv"), 2, "not a regular file"),
    ("cluster output is a folder", CLUSTER + ["{d.csv}"], lambda w: (w / "d.csv").mkdir(), 2, "is a folder"),
    # 6. malformed checkpoints that load safely
    ("all weights NaN", BAD, edit_checkpoint(nan_weights(every=True)), 2, "NaN"),
    ("one weight NaN", BAD, edit_checkpoint(nan_weights(every=False)), 2, "NaN"),
    ("format_version a string", BAD, edit_checkpoint(set_key("format_version", "1")), 2,
     "format_version"),
    ("no model key", BAD, edit_checkpoint(lambda p: p.pop("model") and None), 2, "'model'"),
    ("recipe a string", BAD, edit_checkpoint(set_key("recipe", "pca:2")), 2, "'recipe' is of type str"),
    ("state_dict of ints", BAD,
     edit_checkpoint(lambda p: p.update(state_dict={k: 1 for k in p["state_dict"]})), 2, "expected a tensor"),
    ("state_dict a list", BAD, edit_checkpoint(set_key("state_dict", [1, 2])), 2,
     "'state_dict' is of type list"),
    ("weight_scales holding a string", BAD,
     edit_checkpoint(set_key("weight_scales", {"encoder.x": "big"})), 2, "weight_scales"),
    ("a checkpoint that would run code", ["cluster", "{x}", "{evil.pth}", "{o.csv}"], unsafe_pickle, 2,
     "refused to load: the file holds objects other than weights (Unsupported "),
    # 7. settings declaring a huge model over small tensors
    ("settings declare widths 2048-8192", BAD, edit_checkpoint(huge_settings), 2,
     "do not fit model"),
    # 8. CSV and label readers
    ("evaluate: id of 10^23", ["evaluate", "{p.csv}", "{y.npy}"], pred_with("1" + "0" * 23), 2, "expected 2 integers"),
    ("evaluate: cell '²'", ["evaluate", "{p.csv}", "{y.npy}"], pred_with("²"), 2, "expected 2 integers"),
    ("evaluate: cell '--9'", ["evaluate", "{p.csv}", "{y.npy}"], pred_with("--9"), 2, "expected 2 integers"),
    ("evaluate: Arabic-Indic digit", ["evaluate", "{p.csv}", "{y.npy}"], pred_with("\u0661"), 2, "expected 2 integers"),
    ("plots confusion: id of 10^23", ["plots", "confusion", "{p.csv}", "{y.npy}", "{c.png}"],
     pred_with("1" + "0" * 23), 2, "expected 2 integers"),
    ("pairs: index of 10^23", ["pairs", "{x}", "{m}", "{q.csv}", "{o.csv}"],
     write("q.csv", "id,image1_index,image2_index\n0,0," + "9" * 23 + "\n"), 2, "expected 3 integers"),
    ("labels .npy declaring 10^11 entries", ["evaluate", "{pred.csv}", "{huge.npy}"], declare_huge_labels, 2,
     "declares more entries"),
    # 9. impossible settings
    ("--reduce pca:200 on 64-d codes", CLUSTER + ["{o.csv}", "--reduce", "pca:200"], None, 2,
     "largest allowed is pca:64"),
    ("--reduce kpca:8,pca:20", CLUSTER + ["{o.csv}", "--reduce", "kpca:8,pca:20"], None, 2,
     "largest allowed is pca:8"),
    # 10. FIFOs never hang
    ("images are a FIFO", ["cluster", "{fifo.npy}", "{m}", "{o.csv}"], make_fifo("fifo.npy"), 2, "not a regular file"),
    ("checkpoint is a FIFO", ["cluster", "{x}", "{fifo.pth}", "{o.csv}"], make_fifo("fifo.pth"), 2,
     "found a FIFO, device or socket, not a regular file, expected a torch checkpoint"),
    ("labels are a FIFO", ["evaluate", "{pred.csv}", "{fifo.npy}"], make_fifo("fifo.npy"), 2, "not a regular file"),
    ("predictions are a FIFO", ["evaluate", "{fifo.csv}", "{y.npy}"], make_fifo("fifo.csv"), 2, "not a regular file"),
    # 11. NaN settings
    ("--threshold nan", CLUSTER + ["{o.csv}", "--method", "threshold", "--threshold", "nan"], None, 2,
     "expected a number in [-1, 1]"),
    ("--threshold without --method threshold", CLUSTER + ["{o.csv}", "--threshold", "0.5"], None, 2,
     "--threshold applies to --method threshold only, and this run uses --method kmeans (the checkpoint's recipe)"),
    ("--threshold 2", CLUSTER + ["{o.csv}", "--method", "threshold", "--threshold", "2"], None, 2,
     "expected a number in [-1, 1]"),
    ("--noise nan", ["train", "--model", "improved", "{x}", "{t.pth}", "--noise", "nan"], None, 2,
     "expected a non-negative number"),
    # 12. outputs that cannot be written
    ("output in /proc", CLUSTER + ["/proc/o.csv"], None, 2, "not writable"),
    ("output folder missing", CLUSTER + ["{nowhere/o.csv}"], None, 2, "does not exist"),
    # 13. swapped or wrong files
    ("images and checkpoint swapped", ["cluster", "{m}", "{x}", "{o.csv}"], None, 2,
     "x.npy: found a .npy array, expected a torch checkpoint (.pth); are two arguments swapped?"),
    ("a .npy as checkpoint", ["cluster", "{x}", "{y.npy}", "{o.csv}"], None, 2,
     "found a .npy array, expected a torch checkpoint"),
    ("a CSV as images", ["cluster", "{pred.csv}", "{m}", "{o.csv}"], None, 2, "is it a CSV given in the wrong place"),
    ("evaluate arguments swapped", ["evaluate", "{y.npy}", "{pred.csv}"], None, 2,
     "found a .npy array, expected a CSV file"),
    ("a checkpoint as labels", ["evaluate", "{pred.csv}", "{m}"], None, 2, "are two arguments swapped"),
    # 14. seeds, devices, group counts and labels refused before any work
    ("cluster --seed -1", CLUSTER + ["{o.csv}", "--seed", "-1"], None, 2, "expected an integer from 0 to 4294967295"),
    ("train --seed 2^40", ["train", "--model", "improved", "{x}", "{t.pth}", "--seed", str(2**40)], None, 2,
     "expected an integer from 0 to 4294967295"),
    ("train --teacher-epochs without a teacher", ["train", "--model", "improved", "{x}", "{t.pth}",
                                                  "--teacher-epochs", "2"], None, 2,
     "--teacher-epochs: model 'improved' has no teacher stage"),
    ("train --device foo", ["train", "--model", "improved", "{x}", "{t.pth}", "--device", "foo"], None, 2,
     "unknown device 'foo'"),
    ("predict --device meta", ["predict", "{m}", "{x}", "{o.csv}", "--device", "meta"], None, 2,
     "device 'meta' cannot run aecluster"),
    ("--clusters beyond the images", CLUSTER + ["{o.csv}", "--clusters", "9000"], None, 2,
     "need at least 9000 images to form 9000 groups"),
    ("--reference labels out of range", CLUSTER + ["{o.csv}", "--reference", "{x}", "{y5.npy}"],
     labels_of("y5.npy", 5), 2, "y5.npy: labels must lie in 0..1 to orient 2 groups, found 5..5"),
    ("checkpoint of an unknown model: cluster", BAD, edit_checkpoint(set_key("model", "nosuch")), 2,
     "a checkpoint of unknown model 'nosuch'"),
    ("size of an ONNX export", ["size", "{e.onnx}"], write("e.onnx", "onnx"), 2,
     "found an ONNX export, expected a torch checkpoint (.pth); ONNX exports are for other runtimes"),
    ("truncated checkpoint", ["size", "{cut.pth}"],
     lambda w: (w / "cut.pth").write_bytes((w / "m.pth").read_bytes()[:3000]), 2,
     "not a readable checkpoint: not a torch file, or truncated or corrupt"),
    ("output folder is a file", CLUSTER + ["{pred.csv/sub/o.csv}"], None, 2, "pred.csv is a file, not a folder"),
    ("plots checkpoints given a checkpoint as run folder",
     ["plots", "checkpoints", "{m}", "{x}", "{x}", "{y.npy}", "{c.png}"], None, 2,
     "found a torch checkpoint (.pth), expected a training run folder OUT_run/ holding step_*.pth snapshots; "
     "the run folder of "),
    ("pairs: an id twice", ["pairs", "{x}", "{m}", "{q.csv}", "{o.csv}"],
     write("q.csv", "id,image1_index,image2_index\n0,0,1\n1,2,3\n0,4,5\n"), 2,
     "id 0 appears on lines 2 and 4; expected each id once"),
    ("checkpoint of an unknown model: deploy", ["deploy", "{bad.pth}", "{d.pth}"],
     edit_checkpoint(set_key("model", "nosuch")), 2, "a checkpoint of unknown model 'nosuch'"),
    # 15. CSV rows longer than the header are refused, not cut
    ("evaluate: a trailing comma", ["evaluate", "{p.csv}", "{y.npy}"], write("p.csv", "id,label\n0,1\n1,0,\n"), 2,
     "p.csv: line 3 has 3 cells '1,0,', but the header 'id,label' has 2 columns; expected one cell per column "
     "(a trailing comma?)"),
    ("evaluate: 1,000 extra cells", ["evaluate", "{p.csv}", "{y.npy}"],
     write("p.csv", "id,label\n0,1\n1,0" + ",7" * 1000 + "\n"), 2, "p.csv: line 3 has 1002 cells"),
    ("evaluate: a third number", ["evaluate", "{p.csv}", "{y.npy}"], write("p.csv", "id,label\n0,1\n1,0,1\n"), 2,
     "p.csv: line 3 has 3 cells '1,0,1', but the header 'id,label' has 2 columns"),
    ("evaluate: a name missing under id,label,file", ["evaluate", "{p.csv}", "{y.npy}"],
     write("p.csv", "id,label,file\n0,1,a.png\n1,0\n"), 2, "p.csv: line 3 has 2 cells '1,0', but the header"),
    ("plots confusion: a trailing comma", ["plots", "confusion", "{p.csv}", "{y.npy}", "{c.png}"],
     write("p.csv", "id,label\n0,1\n1,0,\n"), 2, "p.csv: line 3 has 3 cells"),
    ("pairs: a fourth cell", ["pairs", "{x}", "{m}", "{q.csv}", "{o.csv}"],
     write("q.csv", "id,image1_index,image2_index\n0,0,1\n1,2,3,4\n"), 2,
     "q.csv: line 3 has 4 cells '1,2,3,4', but the header 'id,image1_index,image2_index' has 3 columns"),
    # 16. output paths the file system cannot take as they are
    ("cluster output is a symlink loop", CLUSTER + ["{loop.csv}"], lambda w: (w / "loop.csv").symlink_to("loop.csv"),
     2, "loop.csv: is a symlink loop"),
    ("cluster output name of 256 bytes", CLUSTER + ["{" + "n" * 252 + ".csv}"], None, 2,
     "name too long for the file system (256 bytes in nnnn"),
    ("evaluate predictions name of 300 bytes", ["evaluate", "{" + "n" * 296 + ".csv}", "{y.npy}"], None, 2,
     "nnn.csv: name too long for the file system"),
    ("plots confusion output name of 256 bytes", ["plots", "confusion", "{pred.csv}", "{y.npy}",
                                                  "{" + "n" * 252 + ".png}"], None, 2,
     "name too long for the file system (256 bytes in nnnn"),
]


ALIASES = {"x": "x.npy", "m": "m.pth"}


def fill(template: str, w: Path) -> str:
    """`{name}` -> the path of `name` (or its alias) in the workspace; other arguments as they are."""
    if template.startswith("{") and template.endswith("}"):
        return str(w / ALIASES.get(template[1:-1], template[1:-1]))
    return template


@pytest.mark.parametrize("case, args, setup, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(ws, capsys, case, args, setup, code, fragment):
    if setup:
        setup(ws)
    before = folder_state(ws)
    got, err = run_main([fill(a, ws) for a in args], capsys)
    assert got == code, err
    assert fragment in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aecluster: error:"), err
    assert folder_state(ws) == before


def test_extension_check_yields_to_force(ws, capsys):
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "out.npy"), "--force", "--quiet",
                 "--reduce", "pca:2"]) == 0
    assert (ws / "out.npy").read_text().startswith("id,label\n")
    code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "x.npy"), "--force"], capsys)
    assert code == 2 and "is also the input" in err


def test_symlinked_output_is_written_through(ws):
    target = ws / "real.csv"
    target.write_text("old\n")
    (ws / "link.csv").symlink_to(target)
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "link.csv"), "--quiet"]) == 0
    assert (ws / "link.csv").is_symlink() and target.read_text().startswith("id,label\n")


def test_device_output_is_refused_not_replaced(ws, capsys):
    try:
        os.mknod(ws / "null.csv", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "null.csv")], capsys)
    assert code == 2 and "not a regular file" in err
    assert stat.S_ISCHR(os.lstat(ws / "null.csv").st_mode)


def test_immutable_output_is_refused_before_work(ws, capsys):
    output = ws / "o.csv"
    output.write_text("keep\n")
    if subprocess.run(["chattr", "+i", str(output)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(output)], capsys)
    finally:
        subprocess.run(["chattr", "-i", str(output)])
    assert code == 2 and "not writable" in err and "encode" not in err
    assert output.read_text() == "keep\n"


def test_full_disk_is_one_line_and_keeps_the_old_file(ws, capsys, monkeypatch):
    import errno

    output = ws / "o.csv"
    output.write_text("keep\n")

    def full(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("aecluster.atomic.os.replace", full)
    code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(output), "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert output.read_text() == "keep\n" and not list(ws.glob(".o.csv.*"))


def test_checkpoint_write_failure_is_one_line(ws, capsys, monkeypatch):
    def full(*_args, **_kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    (ws / "d.pth").write_bytes(b"keep")
    monkeypatch.setattr("aecluster.checkpoint.torch.save", full)
    code, err = run_main(["deploy", str(ws / "m.pth"), str(ws / "d.pth")], capsys)
    assert code == 2 and err.count("\n") == 1 and "bytes free on its disk" in err
    assert (ws / "d.pth").read_bytes() == b"keep" and not list(ws.glob(".d.pth.*"))


def test_stale_temporaries_of_the_output_are_removed(ws):
    stale = ws / ".o.csv.999999999-abcd.tmp"
    stale.write_text("id,label\n0,")
    other = ws / ".other.csv.999999999-abcd.tmp"
    other.write_text("not ours")
    longer = ws / ".o.csv.bak.999999999-abcd.tmp"  # the temporary of o.csv.bak, not of o.csv
    longer.write_text("not ours either")
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "o.csv"), "--quiet"]) == 0
    assert not stale.exists() and other.exists() and longer.exists()


def test_an_output_name_of_250_bytes_is_written_as_named(ws):
    """The file system takes 250 bytes; the temporary beside it, named after it, must fit too."""
    before = set(os.listdir(ws))
    name = "n" * 246 + ".csv"
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / name), "--quiet"]) == 0
    assert set(os.listdir(ws)) - before == {name}
    assert (ws / name).read_text().startswith("id,label\n")


def test_stale_temporaries_of_a_long_output_name_are_removed(ws):
    name = "\u0436" * 120 + ".csv"  # 244 bytes in UTF-8: the temporaries carry a cut name
    stem = atomic._temporary_stem(ws / name)
    assert len(os.fsencode(stem)) <= atomic.NAME_MAX - atomic.TEMPORARY_EXTRA and name.startswith(stem)
    stale = ws / f".{stem}.999999999-abcd.tmp"
    stale.write_text("id,label\n0,")
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / name), "--quiet"]) == 0
    assert not stale.exists() and not [f for f in os.listdir(ws) if f.endswith(".tmp")]


def test_text_cut_mid_character_by_the_sniffing_window_is_text(tmp_path):
    """A two-byte character straddling `describe_file`'s window does not make a CSV binary."""
    head = "id,label,file\n0,0,"
    # Row 0's name puts a Cyrillic character (two bytes) at bytes SNIFF_BYTES-1 and SNIFF_BYTES.
    name = "a" * (SNIFF_BYTES - 1 - len(head)) + "я.png"
    text = head + name + "\n" + "".join(f"{i},{i % 2},{'я' * 9}.png\n" for i in range(1, 40))
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    head = path.read_bytes()[:SNIFF_BYTES]
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")
    assert describe_file(path).startswith("a text file")
    assert read_predictions(path).tolist() == [i % 2 for i in range(40)]


def test_cyrillic_file_names_written_by_names_are_read_back(tmp_path, ws, two_groups, capsys):
    """`cluster --names` on PNG files named in Cyrillic, then `evaluate` and `plots confusion` on its CSV."""
    from PIL import Image

    images, labels = two_groups
    folder = tmp_path / "снимки"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"снимок_{index:02d}.png")
    output = tmp_path / "o.csv"
    assert main(["cluster", str(folder), str(ws / "m.pth"), str(output), "--names", "--quiet"]) == 0
    data = output.read_bytes()
    assert data.startswith(b"id,label,file\n0,") and "снимок_00.png".encode() in data
    with pytest.raises(UnicodeDecodeError):  # the case of the issue: the window cuts a character
        data[:SNIFF_BYTES].decode("utf-8")
    assert main(["evaluate", str(output), str(ws / "y.npy")]) == 0
    assert "ACC " in capsys.readouterr().out
    assert main(["plots", "confusion", str(output), str(ws / "y.npy"), str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_a_csv_named_like_the_model_without_its_extension_is_written_with_it(ws):
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "out"), "--save-model",
                 str(ws / "out.pth"), "--quiet"]) == 0
    assert (ws / "out").read_text().startswith("id,label\n") and (ws / "out.pth").stat().st_size > 0
    assert not list(ws.glob(".out*"))


def test_sigterm_while_writing_leaves_no_temporary(tmp_path, capsys):
    from aecluster.atomic import atomic_path
    from aecluster.cli.errors import run_reporting_errors

    def entry() -> int:
        with atomic_path(tmp_path / "o.csv") as temporary:
            temporary.write_text("partial")
            os.kill(os.getpid(), signal.SIGTERM)
        return 0

    assert run_reporting_errors("aecluster", entry) == 130
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err == "aecluster: interrupted; no output was written\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow
def test_sigterm_of_hw9_best_is_one_line_and_writes_nothing(tmp_path):
    """SIGTERM during the reduce step (outside training): exit 130, no output, no temporary."""
    output = tmp_path / "o.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "aecluster", "cluster", str(ROOT / "data/sample/trainX.npy"),
                                str(ROOT / "checkpoints/improved.pth"), str(output), "--reduce", "tsne:2"],
                               stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
        if "reduce: fitting tsne" in line:
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130, rest
    assert rest == "aecluster: interrupted; no output was written\n"
    assert list(tmp_path.iterdir()) == []


def test_huge_settings_are_refused_before_allocating(ws, monkeypatch):
    """The model is built on the meta device (no memory) before the shapes are compared."""
    import aecluster.checkpoint as checkpoint

    devices = []
    real = checkpoint.build_model

    def spy(*args, **kwargs):
        devices.append(torch.empty(0).device.type)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "build_model", spy)
    edit_checkpoint(huge_settings)(ws)
    with pytest.raises(checkpoint.UserInputError, match="do not fit"):
        checkpoint.load_model(ws / "bad.pth")
    assert devices and set(devices) == {"meta"}


def test_huge_image_in_a_folder_is_named(tmp_path, ws, capsys, monkeypatch):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "small.png")
    Image.new("RGB", (100, 100)).save(folder / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    code, err = run_main(["cluster", str(folder), str(ws / "m.pth"), str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "bomb.png: image too large" in err and err.count("\n") == 1


def test_folder_names_natural_order_and_skipped_files(tmp_path, ws, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    colours = {"10.png": (0, 200, 100), "2.png": (200, 0, 0), "1.png": (0, 100, 200), "3.png": (210, 10, 0),
               "x1.PNG": (0, 90, 210), "X1.png": (220, 0, 0)}
    for name, colour in colours.items():
        Image.new("RGB", (32, 32), colour).save(folder / name)
    (folder / "notes.txt").write_text("x")
    (folder / "._1.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    os.mkfifo(folder / "pipe.png")
    output = tmp_path / "o.csv"
    assert main(["cluster", str(folder), str(ws / "m.pth"), str(output), "--names", "--reduce", "none"]) == 0
    err = capsys.readouterr().err
    assert ("skipped 3 entries (1 hidden (a name starting with '.', such as macOS's ._ files), "
            "1 not .png/.jpg/.jpeg, 1 not a regular file)") in err
    rows = output.read_text().splitlines()
    assert rows[0] == "id,label,file"
    assert [r.split(",")[2] for r in rows[1:]] == ["1.png", "2.png", "3.png", "10.png", "X1.png", "x1.PNG"]
    assert len(read_predictions(output)) == 6
    assert main(["cluster", str(folder), str(ws / "m.pth"), str(output), "--quiet", "--reduce", "none"]) == 0
    assert output.read_text().splitlines()[0] == "id,label"


def test_stage_lines_on_reduce_and_cluster(ws, capsys):
    assert main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "aecluster: reduce: fitting pca:2 on 64 codes" in err and "aecluster: cluster: kmeans" in err


def test_warnings_and_escapes_do_not_break_the_one_line(capsys):
    from aecluster.cli.errors import run_reporting_errors
    from aecluster.errors import UserInputError

    def entry() -> int:
        warnings.warn("TypedStorage is deprecated", UserWarning, stacklevel=1)
        warnings.warn("invalid value encountered", RuntimeWarning, stacklevel=1)
        raise UserInputError("x.pth: refused to load (\x1b[31mevil\x1b[0m\nsecond line)")

    assert run_reporting_errors("aecluster", entry) == 2
    assert capsys.readouterr().err == "aecluster: error: x.pth: refused to load (evil second line)\n"

    def succeeding() -> int:
        warnings.warn("shown after success", UserWarning, stacklevel=1)
        return 0

    assert run_reporting_errors("aecluster", succeeding) == 0
    assert capsys.readouterr().err == "aecluster: warning: shown after success\n"


@pytest.mark.slow
def test_torch_warning_does_not_precede_the_error(ws):
    """torch.load warns about pickle protocol 4 before refusing the file: only the error is shown."""
    unsafe_pickle(ws)
    result = subprocess.run([sys.executable, "-m", "aecluster", "cluster", str(ws / "x.npy"), str(ws / "evil.pth"),
                             str(ws / "o.csv")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refused to load" in result.stderr, result.stderr
    assert "code ran" not in result.stdout


def test_reduce_and_cluster_run_single_threaded(two_groups, monkeypatch):
    """BLAS/OpenMP sums depend on their thread count; one thread makes labels thread-independent."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import aecluster.reduction as reduction
    from aecluster.clustering import KMeansGroups

    seen = []
    real = reduction._make_reducer

    def spy(*args):
        seen.extend(pool["num_threads"] for pool in threadpool_info())
        return real(*args)

    monkeypatch.setattr(reduction, "_make_reducer", spy)
    codes = two_groups[0].reshape(64, -1)[:, :40].astype(np.float32)
    with threadpool_limits(limits=2):
        reduced = reduction.ReducerChain("kpca:8,pca:2").fit_transform(codes)
        KMeansGroups().fit(reduced)
    assert seen and set(seen) == {1}


# Environments without a package: a shim on PYTHONPATH hides modules.
BLOCKER = """
import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, Blocker())
"""


def run_without(modules: list[str], command: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(BLOCKER.format(blocked=tuple(modules)))
    env = {**os.environ, "PYTHONPATH": f"{shim}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)


def test_evaluate_works_without_torch(ws, tmp_path):
    result = run_without(["torch"], [sys.executable, "-m", "aecluster", "evaluate", str(ws / "pred.csv"),
                                     str(ws / "y.npy")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ACC 1.0000")


def test_missing_torch_says_how_to_install(ws, tmp_path):
    result = run_without(["torch"], ["bash", str(ROOT / "hw9_best.sh"), str(ws / "x.npy"), str(ws / "m.pth"),
                                     str(tmp_path / "o.csv")], tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'torch'" in result.stderr and "pip install" in result.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.slow
def test_export_without_onnxscript_names_the_extra(ws, tmp_path):
    result = run_without(["onnxscript"], [sys.executable, "-m", "aecluster", "export", str(ws / "m.pth"),
                                          str(tmp_path / "m.onnx")], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "aecluster[onnx]" in result.stderr
    assert not list(tmp_path.glob("*m.onnx*"))


DETERMINISM = """
import sys
import numpy as np
from aecluster.cli import main
images = np.load(sys.argv[1], mmap_mode="r")[:500]
np.save(sys.argv[2] + "/x.npy", images)
for checkpoint in sys.argv[3:]:
    name = checkpoint.rsplit("/", 1)[-1]
    assert main(["cluster", sys.argv[2] + "/x.npy", checkpoint, sys.argv[2] + "/" + name + ".csv", "--quiet"]) == 0
"""


@pytest.mark.slow
def test_every_shipped_checkpoint_labels_the_same_at_one_and_two_threads(tmp_path):
    outputs = {}
    for threads in ("1", "2"):
        folder = tmp_path / threads
        folder.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}
        result = subprocess.run([sys.executable, "-c", DETERMINISM, str(ROOT / "data/sample/trainX.npy"),
                                 str(folder), *map(str, CHECKPOINTS)], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        outputs[threads] = {path.name: path.read_bytes() for path in folder.glob("*.csv")}
    assert len(outputs["1"]) == len(CHECKPOINTS) >= 1
    assert outputs["1"] == outputs["2"]


# Recipe values that scikit-learn, openTSNE or umap-learn would refuse only mid-run, after
# encoding: (key, value, fragment of the one-line error). The test codes are 64-dimensional.
BAD_RECIPES = [
    ("method", "spectral", "unknown method 'spectral'"),
    ("n_clusters", 0, "0 is not a whole number of at least 2"),
    ("n_clusters", "2", "'2' is not a whole number of at least 2"),
    ("threshold", float("nan"), "nan is not a cosine-similarity threshold (a number in [-1, 1])"),
    ("threshold", 5.0, "5.0 is not a cosine-similarity threshold"),
    ("standardize", "yes", "'yes' is not true or false"),
    ("fine_clusters", 1, "1 is not a whole number of at least 2"),
    ("reduce", "tsne:100000", "reduce 'tsne:100000': t-SNE embeds in at most 2 dimensions"),
    ("reduce", "umap:500", "reduce 'umap:500': umap:500 asks for more dimensions than its 64-dimensional "
                           "input has; the largest allowed is umap:64"),
    ("reduce", "pca:\u00b2", "bad reducer 'pca:\u00b2'"),
]
RECIPE_IDS = [f"{key}={value!r}" for key, value, _ in BAD_RECIPES]


@pytest.fixture
def no_encoding(monkeypatch):
    """Encoding images (the first slow step after loading) fails the test if it starts."""
    import aecluster.encoder
    import aecluster.encoding

    def refuse(*_args, **_kwargs):
        raise AssertionError("encoding started before the recipe was checked")

    monkeypatch.setattr(aecluster.encoding, "encode_images", refuse)
    monkeypatch.setattr(aecluster.encoder, "encode_images", refuse)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, image_files, trained_checkpoint) -> Path:
    """A model saved by `cluster --save-model` (encoder, recipe pca:2 + kmeans, fitted groups)."""
    folder = tmp_path_factory.mktemp("saved")
    assert main(["cluster", str(image_files[0]), str(trained_checkpoint), str(folder / "o.csv"), "--quiet",
                 "--save-model", str(folder / "s.pth")]) == 0
    return folder / "s.pth"


def with_recipe(key, value):
    """A change of a checkpoint dictionary setting one key of its recipe."""
    return lambda payload: payload["recipe"].update({key: value})


@pytest.mark.parametrize("key, value, fragment", BAD_RECIPES, ids=RECIPE_IDS)
def test_recipe_of_a_checkpoint_is_refused_before_encoding(ws, capsys, no_encoding, key, value, fragment):
    edit_checkpoint(with_recipe(key, value))(ws)
    before = folder_state(ws)
    code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "bad.pth"), str(ws / "o.csv")], capsys)
    assert_refused(code, err, f"bad.pth: recipe {key!r}: {fragment}", ws, before)


@pytest.mark.parametrize("key, value, fragment", BAD_RECIPES, ids=RECIPE_IDS)
def test_recipe_of_a_saved_model_is_refused_by_predict(ws, capsys, no_encoding, saved_model, key, value, fragment):
    shutil.copy(saved_model, ws / "m.pth")
    edit_checkpoint(with_recipe(key, value))(ws)
    before = folder_state(ws)
    code, err = run_main(["predict", str(ws / "bad.pth"), str(ws / "x.npy"), str(ws / "o.csv")], capsys)
    assert_refused(code, err, f"bad.pth: recipe {key!r}: {fragment}", ws, before)


@pytest.mark.parametrize("key, value, fragment", BAD_RECIPES, ids=RECIPE_IDS)
def test_recipe_parameters_of_the_api_are_refused_before_encoding(two_groups, trained_checkpoint, no_encoding,
                                                                  key, value, fragment):
    from aecluster.api import AEClusterer
    from aecluster.errors import UserInputError

    estimator = AEClusterer(checkpoint=trained_checkpoint, reduce="pca:2", method="kmeans", standardize=True)
    estimator.set_params(**{key: value})
    with pytest.raises(UserInputError) as caught:
        estimator.fit(two_groups[0])
    assert f"AEClusterer: recipe {key!r}: {fragment}" in str(caught.value)


@pytest.mark.parametrize("option, value, fragment", [
    ("--reduce", "tsne:100000", "command line: --reduce: reduce 'tsne:100000': t-SNE embeds in at most 2"),
    ("--reduce", "umap:500", "command line: --reduce: reduce 'umap:500': umap:500 asks for more dimensions"),
    ("--reduce", "pca:\u00b2", "bad reducer 'pca:\u00b2'"),
    ("--method", "spectral", "argument --method: expected one of kmeans"),
    ("--clusters", "0", "--clusters"),
    ("--fine-clusters", "1", "--fine-clusters"),
    ("--threshold", "5", "--threshold"),
], ids=lambda value: str(value))
def test_recipe_options_are_refused_before_encoding(ws, capsys, no_encoding, option, value, fragment):
    before = folder_state(ws)
    code, err = run_main(["cluster", str(ws / "x.npy"), str(ws / "m.pth"), str(ws / "o.csv"), option, value], capsys)
    assert_refused(code, err, fragment, ws, before)


@pytest.mark.slow
def test_recipe_method_spectral_in_hw9_best_is_one_line(ws):
    edit_checkpoint(with_recipe("method", "spectral"))(ws)
    before = folder_state(ws)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", str(ROOT / "hw9_best.sh"), str(ws / "x.npy"), str(ws / "bad.pth"),
                           str(ws / "o.csv")], capture_output=True, text=True, env=env, timeout=120)
    assert_refused(done.returncode, done.stderr, "bad.pth: recipe 'method': unknown method 'spectral'", ws, before)


def test_recipe_deploy_refuses_a_reduction_wider_than_the_codes(ws, capsys):
    before = folder_state(ws)
    code, err = run_main(["deploy", str(ws / "m.pth"), str(ws / "d.pth"), "--reduce", "pca:500"], capsys)
    assert_refused(code, err, "deploy: recipe 'reduce': reduce 'pca:500': pca:500 asks for more dimensions than "
                              "its 64-dimensional input has; the largest allowed is pca:64", ws, before)
