"""Scale benchmark: wall time and peak memory of `aecluster cluster` for growing N.

usage: python -m benchmarks.scale [--sizes 10000,100000,1000000] [--checkpoint checkpoints/best.pth]
                                  [--work DIR]

Synthetic images (smooth random colour fields, uint8, written to a memory-mapped .npy in chunks)
are clustered by a fresh `aecluster cluster` process per size; peak RSS is that process's
maximum resident set size.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aecluster.cli.errors import run_reporting_errors
from benchmarks.arguments import ROOT, benchmark_parser, number_list

PEAK_RSS = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def synthetic_images(path: Path, count: int, chunk: int = 20000, seed: int = 0) -> None:
    """Smooth colour fields: 4x4 random colours upsampled to 32x32, plus pixel noise."""
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, 32, 32, 3))
    rng = np.random.default_rng(seed)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        coarse = rng.integers(0, 256, (size, 4, 4, 3)).astype(np.float32)
        fine = coarse.repeat(8, axis=1).repeat(8, axis=2) + rng.normal(0, 12, (size, 32, 32, 3))
        images[start : start + size] = np.clip(fine, 0, 255).astype(np.uint8)
    images.flush()
    del images


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sizes", type=number_list(int), default=[10_000, 100_000, 1_000_000],
                        help="numbers of images (default 10000,100000,1000000)")
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "best.pth"),
                        help="checkpoint to cluster with")
    parser.add_argument("--work", type=Path, default=Path("bench-runs") / "scale",
                        help="where the generated image arrays and predictions go")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print("| N | wall s | peak RSS MB |")
    print("|---|---|---|")
    for count in args.sizes:
        images = args.work / f"synthetic_{count}.npy"
        if not images.exists():
            synthetic_images(images, count)
        command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "aecluster", "cluster", str(images),
                   args.checkpoint, str(args.work / f"pred_{count}.csv"), "--quiet"]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"N={count} failed:\n{result.stderr[-2000:]}")
        peak_mb = int(result.stdout.split()[-1]) / 1024
        print(f"| {count:,} | {seconds:.1f} | {peak_mb:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("scale.py", main))
