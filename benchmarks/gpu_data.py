"""Pack benchmark folders so that two of them travel to a GPU machine in one call.

usage: python -m benchmarks.gpu_data ../shared/data/two_source ../shared/data/intel_same_source .gpu-data/

Writes .gpu-data/NAME.npz per benchmark: trainX and valX losslessly compressed, plus trainY and
valY where present (labels only score, never choose). A device call carries the repository's
working tree and the carried folders, 64 MiB in all: a benchmark's trainX is 26 MB, 24.6 MiB
with zlib, and two of them beside the repository do not fit. Here the images are tiled
into one picture and stored as lossless WebP (Pillow), 14 to 16 MiB a benchmark; `load_packed`
gives back the exact arrays (tested). See docs/gpu.md.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from aecluster.atomic import atomic_path
from aecluster.cli.errors import run_reporting_errors
from aecluster.data import load_images
from benchmarks.arguments import benchmark_parser

GRID_COLUMNS = 100  # images per row of the tiled picture (WebP allows 16,383 pixels a side)


def encode_images(images: np.ndarray) -> np.ndarray:
    """(N,H,W,3) uint8 images -> the bytes (as a uint8 array) of one lossless WebP of them tiled."""
    from PIL import Image

    count, height, width, channels = images.shape
    rows = -(-count // GRID_COLUMNS)
    tiles = np.zeros((rows * GRID_COLUMNS, height, width, channels), dtype=np.uint8)
    tiles[:count] = images
    grid = tiles.reshape(rows, GRID_COLUMNS, height, width, channels).transpose(0, 2, 1, 3, 4)
    buffer = io.BytesIO()
    Image.fromarray(grid.reshape(rows * height, GRID_COLUMNS * width, channels)).save(
        buffer, format="WEBP", lossless=True, quality=100, method=4, exact=True)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def decode_images(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The exact images `encode_images` packed, given their shape (N,H,W,3)."""
    from PIL import Image

    count, height, width, channels = shape
    with Image.open(io.BytesIO(packed.tobytes())) as picture:
        grid = np.asarray(picture.convert("RGB"))
    rows = grid.shape[0] // height
    tiles = grid.reshape(rows, height, GRID_COLUMNS, width, channels).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(tiles.reshape(-1, height, width, channels)[:count])


def pack(benchmark: Path, destination: Path) -> Path:
    """Write destination/NAME.npz from benchmark/{trainX,valX,trainY,valY}.npy; returns its path."""
    arrays: dict[str, np.ndarray] = {}
    for name in ("trainX", "valX"):
        images = load_images(benchmark / f"{name}.npy")
        arrays[name], arrays[f"{name}_shape"] = encode_images(images), np.asarray(images.shape)
    for name in ("trainY", "valY"):
        if (benchmark / f"{name}.npy").is_file():
            arrays[name] = np.load(benchmark / f"{name}.npy")
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / f"{benchmark.resolve().name}.npz"
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_packed(path: str | Path) -> dict[str, np.ndarray]:
    """trainX and valX of a packed benchmark, and trainY and valY where it has them."""
    with np.load(path) as packed:
        data = {name: decode_images(packed[name], tuple(packed[f"{name}_shape"])) for name in ("trainX", "valX")}
        data.update({name: packed[name] for name in ("trainY", "valY") if name in packed})
    return data


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("benchmarks", nargs="+", type=Path, help="benchmark folders (trainX.npy, valX.npy, ...)")
    parser.add_argument("destination", type=Path, help="folder for NAME.npz (git-ignored: .gpu-data/)")
    args = parser.parse_args(argv)
    for benchmark in args.benchmarks:
        path = pack(benchmark, args.destination)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("gpu_data.py", main))
