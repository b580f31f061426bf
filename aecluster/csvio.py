"""Reading and writing the CSV formats: `id,label` predictions and `id,image1_index,image2_index` pairs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.errors import UserInputError


def write_columns(path: str | os.PathLike, header: tuple[str, ...], columns: list[np.ndarray]) -> None:
    """Write integer columns under `header`, atomically (no half-written file on failure)."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(zip(*(np.asarray(c, dtype=np.int64).tolist() for c in columns), strict=True))


def write_predictions(path: str | os.PathLike, labels: np.ndarray) -> None:
    """`id,label` with ids 0..N-1."""
    write_columns(path, ("id", "label"), [np.arange(len(labels)), labels])


def _read_rows(path: str | os.PathLike, header: tuple[str, ...]) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: unreadable CSV ({exc})") from None
    if not rows or tuple(cell.strip() for cell in rows[0]) != header:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise UserInputError(f"{path}: header is {found!r}, expected {','.join(header)!r}")
    body = [row for row in rows[1:] if row]
    values = np.empty((len(body), len(header)), dtype=np.int64)
    for line, row in enumerate(body, start=2):
        if len(row) != len(header) or not all(cell.strip().lstrip("-").isdigit() for cell in row):
            raise UserInputError(
                f"{path}: line {line} is {','.join(row)!r}, expected {len(header)} integers")
        values[line - 2] = [int(cell) for cell in row]
    if not len(values):
        raise UserInputError(f"{path}: no rows after the header")
    return values


def read_predictions(path: str | os.PathLike) -> np.ndarray:
    """Labels of an `id,label` file, ordered by id (ids must be 0..N-1, each once)."""
    values = _read_rows(path, ("id", "label"))
    order = np.argsort(values[:, 0])
    if not np.array_equal(values[order, 0], np.arange(len(values))):
        raise UserInputError(f"{path}: ids must be 0..{len(values) - 1}, each exactly once")
    return values[order, 1]


def read_pairs(path: str | os.PathLike, n_images: int) -> np.ndarray:
    """(M,3) array of id, image1_index, image2_index; indices checked against `n_images`."""
    values = _read_rows(path, ("id", "image1_index", "image2_index"))
    bad = np.flatnonzero((values[:, 1:] < 0).any(axis=1) | (values[:, 1:] >= n_images).any(axis=1))
    if len(bad):
        row = values[bad[0]]
        raise UserInputError(
            f"{path}: line {bad[0] + 2} pairs images {row[1]} and {row[2]}, but indices must lie "
            f"in 0..{n_images - 1} ({len(bad)} such rows)")
    return values
