"""Writing output files safely (torch-free, so reading and writing CSVs never imports torch).

Every write goes to a hidden temporary file beside the target and is renamed into place only
when complete, so an interrupted or failed write never leaves a half-written file. The checks
refuse, before any slow work, the outputs that would destroy something: an input, a path whose
extension says it is another kind of file, a device or a folder.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aecluster.errors import UserInputError

# What each kind of output may be called; another extension is refused unless forced.
OUTPUT_SUFFIXES = {
    "csv": (".csv", ".txt", ""),
    "checkpoint": (".pth", ".pt", ".ckpt", ""),
    "onnx": (".onnx", ""),
    "png": (".png",),
}


# Bytes in one file name on Linux file systems (ext4, XFS, Btrfs, tmpfs).
NAME_MAX = 255
# What a temporary adds to its output's name: ".NAME.PID-XXXXXXXX.tmp", a PID of at most 10 digits.
TEMPORARY_EXTRA = len("..") + 10 + len("-") + 8 + len(".tmp")


def _check_names(path: Path) -> None:
    """Refuse, in one line, a path with a part longer than a file name may be (the system's
    ENAMETOOLONG would otherwise surface as a traceback from the first look at the path)."""
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise UserInputError(f"{path}: name too long for the file system ({size} bytes in "
                                 f"{part[:24]}..., at most {NAME_MAX}); choose a shorter name")


def _target(path: Path) -> Path:
    """The file a write to `path` must change: a symlink's target (written through, the link kept).

    A symlink loop (`ln -s loop loop`) leads to no file: it is refused, not replaced by one.
    """
    _check_names(path)
    if not path.is_symlink():
        return path
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserInputError(f"{path}: is a symlink loop (it leads back to itself, to no file); "
                                 "refusing to replace it, choose a file path") from None
    target = Path(os.path.realpath(path))
    _check_names(target)
    return target


def _temporary_stem(target: Path) -> str:
    """The output's name as its temporaries carry it: whole, or cut to the characters that let
    the temporary's name fit NAME_MAX (a 250-byte output name is allowed, so its temporary must be)."""
    stem = target.name
    while len(os.fsencode(stem)) > NAME_MAX - TEMPORARY_EXTRA:
        stem = stem[:-1]
    return stem


def _temporary_prefix(target: Path) -> str:
    """`.STEM.PID-`: the start of the names of this process's temporaries for `target`."""
    return f".{_temporary_stem(target)}.{os.getpid()}-"


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with a one-line message, when `path` cannot be written; return its folder.

    The folder is probed by creating (and removing) a temporary file, so a read-only file system,
    a full disk or a pseudo file system such as /proc is found before the work, not after it.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written (a symlink is checked through to its target).

    Returns
    -------
    Path
        The folder the file (the symlink's target) lies in.

    Raises
    ------
    UserInputError
        When a part of the path is longer than `NAME_MAX` bytes, the path is a symlink loop, its
        folder does not exist (or a file stands on its way), it is a folder, a device, FIFO or
        socket, or a read-only file, or a file cannot be created in its folder.
    """
    path = Path(path)
    target = _target(path)
    folder = target.parent
    if not folder.is_dir():
        blocker = next((part for part in [folder, *folder.parents] if part.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise UserInputError(f"{path}: {blocker} is a file, not a folder; choose an output path in a folder")
        raise UserInputError(f"{path}: output folder {folder} does not exist")
    if target.is_dir():
        raise UserInputError(f"{path}: is a folder, expected a file path")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise UserInputError(f"{path}: exists and is not a regular file (a device, FIFO or socket); "
                             "refusing to replace it, choose a file path")
    if target.exists() and not os.access(target, os.W_OK):
        raise UserInputError(f"{path}: existing file is not writable (read-only or immutable)")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(target), suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UserInputError(f"{path}: output folder {folder} is not writable ({_reason(exc)})") from None
    return folder


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0]


def remove_stale_temporaries(path: str | os.PathLike) -> int:
    """Remove `.NAME.PID-XXXX.tmp` files left beside `path` by a killed earlier run; return how many.

    A temporary names the process writing it; one whose process still runs is left alone, and
    so is any name of another shape (the temporary of `NAME.pth` when NAME is `out`, say). NAME
    is `_temporary_stem`'s, so a name cut to fit may also match a dead run's temporary of
    another output of the same long start: garbage either way.

    This process's own temporaries for `path` are removed too; symlinks and non-files are kept.

    Parameters
    ----------
    path : str or os.PathLike
        The output whose temporaries are looked for (a symlink: those of its target).

    Returns
    -------
    int
        How many files were removed.

    Raises
    ------
    UserInputError
        When a part of the path is too long or the path is a symlink loop (as `check_writable`).
    """
    target = _target(Path(path))
    stem = _temporary_stem(target)
    pattern = re.compile(rf"\.{re.escape(stem)}\.(\d+)-[^.]+\.tmp")
    removed = 0
    for stale in target.parent.glob(f".{glob.escape(stem)}.*.tmp"):
        owner = pattern.fullmatch(stale.name)
        if owner is None or (int(owner[1]) != os.getpid() and _running(int(owner[1]))):
            continue
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A symlink is written through (its target is replaced, the link kept); a device is refused.
    A full disk or another write failure is reported in one line and nothing is changed.

    Before the block, `path` is checked (`check_writable`) and stale temporaries of dead runs are
    removed (`remove_stale_temporaries`). The temporary is created empty; the renamed file gets
    the permissions 0o666 less the umask. The temporary is removed whatever happens.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    Path
        The temporary file (empty, in the same folder) to write the whole output to.

    Raises
    ------
    UserInputError
        When `path` cannot be written (`check_writable`), or an OSError of a full disk or quota,
        a read-only file system, a permission or an I/O error happens in the block or the rename.
    """
    path = Path(path)
    target = _target(path)
    folder = check_writable(path)
    remove_stale_temporaries(target)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(target), suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO):
            raise UserInputError(f"{path}: could not be written ({_reason(exc)}); "
                                 "nothing was changed") from None
        raise
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def check_output(output: str | os.PathLike, kind: str, inputs: Iterable[str | os.PathLike | None],
                 force: bool = False) -> None:
    """Refuse, before any work, an output that would destroy a file, then `check_writable` it.

    Parameters
    ----------
    output : str or os.PathLike
        The file to be written.
    kind : str
        What it holds: a key of `OUTPUT_SUFFIXES`.
    inputs : iterable of str, os.PathLike or None
        The files the work reads (None entries are skipped).
    force : bool
        Allow a name whose extension contradicts `kind` (a `.npy` as the prediction CSV).

    Raises
    ------
    UserInputError
        When `output` is one of `inputs` (through symlinks or hard links), has another kind's
        extension without `force`, or cannot be written.
    """
    output = Path(output)
    for source in (Path(p) for p in inputs if p is not None):
        if same_file(output, source):
            raise UserInputError(f"{output}: is also the input {source}; refusing to overwrite "
                                 "an input (check the order of the arguments)")
    allowed = OUTPUT_SUFFIXES[kind]
    if not force and output.suffix.lower() not in allowed:
        expected = " or ".join(s for s in allowed if s)
        raise UserInputError(f"{output}: a {output.suffix} name for the {kind} output, expected "
                             f"{expected} (check the order of the arguments, or pass `force`)")
    check_writable(output)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether paths `a` and `b` lead to one file (through symlinks or hard links).

    Parameters
    ----------
    a : str or os.PathLike
        One path.
    b : str or os.PathLike
        The other path.

    Returns
    -------
    bool
        True when both resolve to the same path, or `os.path.samefile` says they are one file;
        False otherwise, including when either does not exist.
    """
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
