"""Unit tests of atomic output writing and the early output checks in aecluster.atomic."""

import errno
import os
import re

import pytest

from aecluster.atomic import atomic_path, check_output, check_writable, remove_stale_temporaries, same_file
from aecluster.errors import UserInputError

# Larger than any Linux pid_max (at most 2**22), so no process can have it.
DEAD_PID = 2**22 + 1


def test_success_writes_the_file_and_leaves_nothing_else(tmp_path):
    with atomic_path(tmp_path / "out.csv") as temporary:
        temporary.write_text("new\n")
    assert (tmp_path / "out.csv").read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_success_replaces_an_existing_file(tmp_path):
    (tmp_path / "out.csv").write_text("old\n")
    with atomic_path(tmp_path / "out.csv") as temporary:
        temporary.write_text("new\n")
    assert (tmp_path / "out.csv").read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_temporary_is_a_hidden_sibling_named_after_the_output_and_process(tmp_path):
    (tmp_path / "out.csv").write_text("old\n")
    with atomic_path(str(tmp_path / "out.csv")) as temporary:
        assert temporary.parent == tmp_path and temporary.exists()
        assert re.fullmatch(rf"\.out\.csv\.{os.getpid()}-[^.]+\.tmp", temporary.name), temporary.name
        assert (tmp_path / "out.csv").read_text() == "old\n"  # untouched until the block ends
        temporary.write_text("new\n")


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    (tmp_path / "out.csv").write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(tmp_path / "out.csv") as temporary:
            temporary.write_text("half")
            raise RuntimeError("boom")
    assert (tmp_path / "out.csv").read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_failure_creates_no_file(tmp_path):
    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "out.csv") as temporary:
            temporary.write_text("half")
            raise KeyError("x")
    assert os.listdir(tmp_path) == []


def test_full_disk_is_one_line_naming_the_path(tmp_path):
    (tmp_path / "out.csv").write_text("old\n")
    with pytest.raises(UserInputError) as error:
        with atomic_path(tmp_path / "out.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(error.value) == f"{tmp_path / 'out.csv'}: could not be written (No space left on device); " \
                               "nothing was changed"
    assert (tmp_path / "out.csv").read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]


def test_other_os_errors_pass_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "out.csv"):
            raise FileNotFoundError(errno.ENOENT, "gone")
    assert os.listdir(tmp_path) == []


def test_written_file_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "out.csv") as temporary:
            temporary.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o640


def test_symlink_is_written_through_and_kept(tmp_path):
    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to("real.csv")
    with atomic_path(tmp_path / "link.csv") as temporary:
        temporary.write_text("new\n")
    assert (tmp_path / "link.csv").is_symlink() and os.readlink(tmp_path / "link.csv") == "real.csv"
    assert (tmp_path / "real.csv").read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]


def test_symlink_loop_is_refused(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(UserInputError, match="is a symlink loop"):
        with atomic_path(tmp_path / "loop"):
            pass
    assert os.listdir(tmp_path) == ["loop"] and (tmp_path / "loop").is_symlink()


def test_stale_temporaries_of_dead_runs_are_removed_before_writing(tmp_path):
    (tmp_path / f".out.csv.{DEAD_PID}-abc123.tmp").write_text("left by a killed run")
    with atomic_path(tmp_path / "out.csv") as temporary:
        temporary.write_text("new\n")
    assert os.listdir(tmp_path) == ["out.csv"]


def test_remove_stale_temporaries_keeps_live_runs_and_other_names(tmp_path):
    stale = [f".out.csv.{DEAD_PID}-abc.tmp", f".out.csv.{os.getpid()}-xyz.tmp"]
    kept = [f".out.csv.{os.getppid()}-abc.tmp",  # a running process's
            ".out.csv.tmp", f".out.csv.{DEAD_PID}.tmp", f".out.csv.{DEAD_PID}-abc.tmp.bak",
            f".other.csv.{DEAD_PID}-abc.tmp", f"out.csv.{DEAD_PID}-abc.tmp", "out.csv"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    assert remove_stale_temporaries(tmp_path / "out.csv") == 2
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "out.csv") == 0


def test_remove_stale_temporaries_leaves_symlinks_and_folders(tmp_path):
    (tmp_path / "elsewhere").write_text("keep")
    (tmp_path / f".out.csv.{DEAD_PID}-a.tmp").symlink_to("elsewhere")
    (tmp_path / f".out.csv.{DEAD_PID}-b.tmp").mkdir()
    assert remove_stale_temporaries(tmp_path / "out.csv") == 0
    assert len(os.listdir(tmp_path)) == 3 and (tmp_path / "elsewhere").read_text() == "keep"


def test_check_writable_returns_the_folder(tmp_path):
    assert check_writable(tmp_path / "out.csv") == tmp_path
    assert os.listdir(tmp_path) == []  # the probe file is gone


def test_check_writable_missing_folder(tmp_path):
    path = tmp_path / "no" / "out.csv"
    with pytest.raises(UserInputError) as error:
        check_writable(path)
    assert str(error.value) == f"{path}: output folder {tmp_path / 'no'} does not exist"


def test_check_writable_file_in_place_of_a_folder(tmp_path):
    (tmp_path / "data").write_text("x")
    path = tmp_path / "data" / "sub" / "out.csv"
    with pytest.raises(UserInputError) as error:
        check_writable(path)
    assert str(error.value) == f"{path}: {tmp_path / 'data'} is a file, not a folder; choose an output path in a folder"


def test_check_writable_refuses_a_folder(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(UserInputError) as error:
        check_writable(tmp_path / "out")
    assert str(error.value) == f"{tmp_path / 'out'}: is a folder, expected a file path"


def test_check_writable_refuses_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserInputError) as error:
        check_writable(tmp_path / "pipe")
    assert str(error.value).startswith(f"{tmp_path / 'pipe'}: exists and is not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_check_writable_refuses_a_read_only_file(tmp_path):
    (tmp_path / "out.csv").write_text("x")
    (tmp_path / "out.csv").chmod(0o444)
    with pytest.raises(UserInputError, match="existing file is not writable"):
        check_writable(tmp_path / "out.csv")


def test_check_writable_refuses_an_overlong_name(tmp_path):
    path = tmp_path / ("a" * 256)
    with pytest.raises(UserInputError) as error:
        check_writable(path)
    assert str(error.value).startswith(f"{path}: name too long for the file system (256 bytes in {'a' * 24}...")
    assert check_writable(tmp_path / ("a" * 255)) == tmp_path


def test_longest_name_can_be_written(tmp_path):
    with atomic_path(tmp_path / ("b" * 255)) as temporary:
        temporary.write_text("x")
    assert os.listdir(tmp_path) == ["b" * 255]


@pytest.mark.parametrize("name, kind", [("p.csv", "csv"), ("p.TXT", "csv"), ("p", "csv"), ("m.pth", "checkpoint"),
                                        ("m.ckpt", "checkpoint"), ("m.onnx", "onnx"), ("g.png", "png")])
def test_check_output_accepts_the_kind_extensions(tmp_path, name, kind):
    check_output(tmp_path / name, kind, [tmp_path / "x.npy", None])


def test_check_output_refuses_another_kind_extension_unless_forced(tmp_path):
    with pytest.raises(UserInputError) as error:
        check_output(tmp_path / "p.npy", "csv", [])
    assert str(error.value) == (f"{tmp_path / 'p.npy'}: a .npy name for the csv output, expected .csv or .txt "
                                "(check the order of the arguments, or pass `force`)")
    check_output(tmp_path / "p.npy", "csv", [], force=True)
    with pytest.raises(UserInputError, match="expected .png"):
        check_output(tmp_path / "g", "png", [])


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink"])
def test_check_output_refuses_to_overwrite_an_input(tmp_path, alias):
    source = tmp_path / "in.csv"
    source.write_text("keep")
    output = {"same": source, "symlink": tmp_path / "s.csv", "hardlink": tmp_path / "h.csv"}[alias]
    if alias == "symlink":
        output.symlink_to(source)
    elif alias == "hardlink":
        os.link(source, output)
    with pytest.raises(UserInputError) as error:
        check_output(output, "csv", [tmp_path / "other.npy", None, source], force=True)
    assert str(error.value) == (f"{output}: is also the input {source}; refusing to overwrite an input "
                                "(check the order of the arguments)")
    assert source.read_text() == "keep"


def test_check_output_runs_the_writability_check(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        check_output(tmp_path / "no" / "p.csv", "csv", [])


def test_same_file_through_links_and_spellings(tmp_path):
    (tmp_path / "a").write_text("same text")
    (tmp_path / "b").write_text("same text")
    os.link(tmp_path / "a", tmp_path / "hard")
    (tmp_path / "soft").symlink_to("a")
    (tmp_path / "sub").mkdir()
    assert same_file(tmp_path / "a", tmp_path / "sub" / ".." / "a")
    assert same_file(tmp_path / "a", tmp_path / "hard")
    assert same_file(str(tmp_path / "soft"), tmp_path / "a")
    assert same_file(tmp_path / "hard", tmp_path / "soft")
    assert not same_file(tmp_path / "a", tmp_path / "b")


def test_same_file_with_missing_paths(tmp_path):
    (tmp_path / "a").write_text("x")
    assert not same_file(tmp_path / "a", tmp_path / "missing")
    assert not same_file(tmp_path / "missing", tmp_path / "other")
    assert same_file(tmp_path / "missing", tmp_path / "." / "missing")


@pytest.mark.parametrize("name", ["out[1].csv", "a*b?.csv", "x+y(2).csv"])
def test_stale_temporaries_of_names_with_pattern_characters(tmp_path, name):
    (tmp_path / f".{name}.{DEAD_PID}-abc.tmp").write_text("x")
    (tmp_path / f".{name[:-5]}Z.csv.{DEAD_PID}-abc.tmp").write_text("x")  # a similar name, another output's
    assert remove_stale_temporaries(tmp_path / name) == 1
    assert os.listdir(tmp_path) == [f".{name[:-5]}Z.csv.{DEAD_PID}-abc.tmp"]
