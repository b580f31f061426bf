"""Pack benchmark folders so that two of them travel to a GPU machine in one call.

usage: python -m benchmarks.gpu_data ../shared/data/two_source ../shared/data/intel_same_source .gpu-data/

Writes .gpu-data/NAME.npz per benchmark: trainX and valX losslessly compressed, plus trainY and
valY where present (labels only score, never choose). A device call carries the repository's
working tree and the carried folders, 64 MiB in all: a benchmark's trainX is 26 MB, 24.6 MiB
with zlib, and two of them beside the repository do not fit; compressed here they take about
14 MiB each. The codec is the lossless image coder's usual one (as in JPEG-LS, Weinberger et
al. 2000): each pixel is predicted from its left, upper and upper-left neighbours by the median
edge detector, red and blue residuals are taken relative to green, and the residual planes are
LZMA-compressed. `load_packed` undoes it exactly (tested). See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import lzma
import sys
from pathlib import Path

import numpy as np

from aecluster.data import load_images
from aecluster.errors import run_reporting_errors


def _predicted(left: np.ndarray, up: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """The median edge detector: min(left, up) or max(left, up) at an edge, else the gradient."""
    low, high = np.minimum(left, up), np.maximum(left, up)
    return np.where(corner >= high, low, np.where(corner <= low, high, left + up - corner))


def encode_images(images: np.ndarray) -> np.ndarray:
    """(N,H,W,3) uint8 images -> LZMA bytes (as a uint8 array) of their prediction residuals."""
    x = np.asarray(images, dtype=np.int16)
    left, up, corner = (np.zeros_like(x) for _ in range(3))
    left[:, :, 1:], up[:, 1:], corner[:, 1:, 1:] = x[:, :, :-1], x[:, :-1], x[:, :-1, :-1]
    residual = (x - _predicted(left, up, corner)) % 256
    residual[..., [0, 2]] = (residual[..., [0, 2]] - residual[..., 1:2]) % 256
    planes = np.ascontiguousarray(residual.astype(np.uint8).transpose(3, 0, 1, 2))
    return np.frombuffer(lzma.compress(planes.tobytes(), preset=6), dtype=np.uint8)


def decode_images(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The exact images `encode_images` packed, given their shape (N,H,W,3)."""
    count, height, width, channels = shape
    planes = np.frombuffer(lzma.decompress(packed.tobytes()), dtype=np.uint8)
    residual = planes.reshape(channels, count, height, width).transpose(1, 2, 3, 0).astype(np.int16)
    residual[..., [0, 2]] = (residual[..., [0, 2]] + residual[..., 1:2]) % 256
    x = np.zeros((count, height + 1, width + 1, channels), dtype=np.int16)  # a zero border above and left
    for row in range(1, height + 1):
        for column in range(1, width + 1):
            guess = _predicted(x[:, row, column - 1], x[:, row - 1, column], x[:, row - 1, column - 1])
            x[:, row, column] = (residual[:, row - 1, column - 1] + guess) % 256
    return x[:, 1:, 1:].astype(np.uint8)


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
    partial = path.with_name(f".{path.stem}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
    return path


def load_packed(path: str | Path) -> dict[str, np.ndarray]:
    """trainX and valX of a packed benchmark, and trainY and valY where it has them."""
    with np.load(path) as packed:
        data = {name: decode_images(packed[name], tuple(packed[f"{name}_shape"])) for name in ("trainX", "valX")}
        data.update({name: packed[name] for name in ("trainY", "valY") if name in packed})
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="+", type=Path, help="benchmark folders (trainX.npy, valX.npy, ...)")
    parser.add_argument("destination", type=Path, help="folder for NAME.npz (git-ignored: .gpu-data/)")
    args = parser.parse_args(argv)
    for benchmark in args.benchmarks:
        path = pack(benchmark, args.destination)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("gpu_data.py", main))
