"""aecluster/files.py: what a file is, from its first bytes."""

import zipfile

import numpy as np
import pytest

from aecluster.files import SNIFF_BYTES, describe_file


@pytest.mark.parametrize("name, content, expected", [
    ("x.npy", None, "a .npy array"),
    ("e.bin", b"", "an empty file"),
    ("t.csv", b"id,label\n0,1\n", "a text file (first line 'id,label')"),
    ("b.bin", bytes(range(128, 256)), "binary data"),
    ("i.png", b"\x89PNG\r\n\x1a\n" + bytes(20), "an image file"),
    ("j.jpg", b"\xff\xd8\xff\xe0" + bytes(20), "an image file"),
    ("m.onnx", b"anything", "an ONNX export"),
    ("z.zip", b"PK\x03\x04 cut short", "a damaged zip archive"),
])
def test_a_file_is_named_by_its_first_bytes(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros(3))
    else:
        path.write_bytes(content)
    assert describe_file(path) == expected


@pytest.mark.parametrize("members, expected", [
    (["archive/data.pkl", "archive/version"], "a torch checkpoint (.pth)"),
    (["a.npy", "b.npy"], "a .npz archive of arrays"),
    (["notes.txt"], "a zip archive"),
])
def test_a_zip_archive_is_named_by_its_members(tmp_path, members, expected):
    path = tmp_path / "a.bin"
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, b"x")
    assert describe_file(path) == expected


def test_a_folder_and_a_missing_path(tmp_path):
    assert describe_file(tmp_path) == "a folder"
    assert describe_file(tmp_path / "none") == "a FIFO, device or socket, not a regular file"


def test_a_character_cut_by_the_window_is_still_text(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"a" * (SNIFF_BYTES - 1) + "é".encode())  # é's second byte lies past the window
    assert describe_file(path) == f"a text file (first line {'a' * 40!r})"
