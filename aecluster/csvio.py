"""Reading and writing the CSV formats: `id,label` predictions and `id,image1_index,image2_index` pairs."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.errors import UserInputError, WrongFileError
from aecluster.files import describe_file


def write_columns(path: str | os.PathLike, header: tuple[str, ...], columns: list[np.ndarray | list[str]]) -> None:
    """Write integer (or text) columns under `header`, atomically (no half-written file on failure).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file to write (UTF-8, "\\n" line ends).
    header : tuple of str
        The column names, one per column.
    columns : list of (ndarray or list of str)
        The columns, all of one length: an array is written as integers (int64), a list as text.

    Raises
    ------
    UserInputError
        When `path` cannot be written (`atomic.atomic_path`).
    ValueError
        When the columns differ in length.
    """
    cells = [list(c) if isinstance(c, list) else np.asarray(c, dtype=np.int64).tolist() for c in columns]
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(zip(*cells, strict=True))


def write_predictions(path: str | os.PathLike, labels: np.ndarray, names: list[str] | None = None) -> None:
    """`id,label` with ids 0..N-1, plus a `file` column of image file names when `names` is given.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file to write.
    labels : ndarray of shape (N,)
        The label of each image (written as integers).
    names : list of str, optional
        The file name of each image (N of them); None for no `file` column.

    Raises
    ------
    UserInputError
        When `path` cannot be written.
    """
    if names is None:
        write_columns(path, ("id", "label"), [np.arange(len(labels)), labels])
    else:
        write_columns(path, ("id", "label", "file"), [np.arange(len(labels)), labels, list(names)])


INTEGER = re.compile(r"-?[0-9]{1,18}")


def _read_rows(path: str | os.PathLike, header: tuple[str, ...],
               extra: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Integer rows under `header` (optionally followed by the text columns `extra`, not returned)
    and the file line of each (blank lines are skipped, so messages can name the right line).
    Every row has exactly the header's cells: a shorter or longer one is refused with its line."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    found = describe_file(path)
    if not found.startswith("a text file"):
        raise WrongFileError(f"{path}: found {found}, expected a CSV file with header {','.join(header)!r}", found,
                             "a text file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: unreadable CSV ({str(exc)[:160]})") from None
    names = tuple(cell.strip() for cell in rows[0][1]) if rows else ()
    if names not in (header, header + extra):
        found = ",".join(rows[0][1]) if rows else "an empty file"
        raise UserInputError(f"{path}: header is {found[:80]!r}, expected {','.join(header)!r}")
    body = [(line, row) for line, row in rows[1:] if row]
    values = np.empty((len(body), len(header)), dtype=np.int64)
    for index, (line, row) in enumerate(body):
        numbers = row[: len(header)]
        if len(numbers) != len(header) or not all(INTEGER.fullmatch(cell.strip()) for cell in numbers):
            raise UserInputError(
                f"{path}: line {line} is {','.join(row)[:80]!r}, expected {len(header)} integers "
                "(ASCII digits, at most 18 of them)")
        if len(row) != len(names):
            # A longer row is refused, not cut: its extra cells would be lost without a word.
            hint = " (a trailing comma?)" if len(row) == len(names) + 1 and not row[-1].strip() else ""
            raise UserInputError(
                f"{path}: line {line} has {len(row)} cells {','.join(row)[:40]!r}, but the header "
                f"{','.join(names)!r} has {len(names)} columns; expected one cell per column{hint}")
        values[index] = [int(cell) for cell in numbers]
    if not len(values):
        raise UserInputError(f"{path}: no rows after the header")
    return values, np.array([line for line, _ in body])


def read_predictions(path: str | os.PathLike) -> np.ndarray:
    """Labels of an `id,label` file, ordered by id (ids must be 0..N-1, each once).

    A third column `file` (as `write_predictions` writes with names) is allowed and ignored.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file (UTF-8, a byte-order mark allowed; blank lines skipped).

    Returns
    -------
    ndarray of shape (N,)
        The label of id 0, 1, ..., N-1 (int64).

    Raises
    ------
    UserInputError
        When the file is missing, unreadable or not a text file (`WrongFileError`), its header is
        not `id,label` (or `id,label,file`), a row does not hold one integer per column, it has no
        rows, or its ids are not 0..N-1 each once.
    """
    values, _ = _read_rows(path, ("id", "label"), extra=("file",))
    order = np.argsort(values[:, 0])
    if not np.array_equal(values[order, 0], np.arange(len(values))):
        raise UserInputError(f"{path}: ids must be 0..{len(values) - 1}, each exactly once")
    return values[order, 1]


def read_pairs(path: str | os.PathLike, n_images: int) -> np.ndarray:
    """(M,3) array of id, image1_index, image2_index; ids must be distinct, indices in 0..n_images-1.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file, with header `id,image1_index,image2_index`.
    n_images : int
        How many images the indices may point to.

    Returns
    -------
    ndarray of shape (M, 3)
        The rows in file order (int64).

    Raises
    ------
    UserInputError
        When the file is missing, unreadable or not a text file (`WrongFileError`), its header is
        wrong, a row does not hold three integers, it has no rows, an id appears twice, or an index
        lies outside 0..n_images-1.
    """
    values, lines = _read_rows(path, ("id", "image1_index", "image2_index"))
    ids, counts = np.unique(values[:, 0], return_counts=True)
    if (counts > 1).any():
        repeated = ids[np.argmax(counts > 1)]
        first, second = lines[values[:, 0] == repeated][:2]
        raise UserInputError(f"{path}: id {repeated} appears on lines {first} and {second}; "
                             "expected each id once")
    bad = np.flatnonzero((values[:, 1:] < 0).any(axis=1) | (values[:, 1:] >= n_images).any(axis=1))
    if len(bad):
        row = values[bad[0]]
        raise UserInputError(
            f"{path}: line {lines[bad[0]]} pairs images {row[1]} and {row[2]}, but indices must lie "
            f"in 0..{n_images - 1} ({len(bad)} such rows)")
    return values
