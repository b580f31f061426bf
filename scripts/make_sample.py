"""Build the small labelled sample that ships in data/sample/ from a shared benchmark.

usage: python scripts/make_sample.py ../shared/data/two_source data/sample [--size 2000]
Draws a fixed-seed random subset of the benchmark's trainX with its labels (labels are for the
README's scoring demo only).
"""

import argparse
from pathlib import Path

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("benchmark", type=Path)
parser.add_argument("output", type=Path)
parser.add_argument("--size", type=int, default=2000)
args = parser.parse_args()

images = np.load(args.benchmark / "trainX.npy", mmap_mode="r")
labels = np.load(args.benchmark / "trainY.npy")
rows = np.sort(np.random.default_rng(20261122).choice(len(images), args.size, replace=False))
args.output.mkdir(parents=True, exist_ok=True)
np.save(args.output / "trainX.npy", np.ascontiguousarray(images[rows]))
np.save(args.output / "trainY.npy", labels[rows])
print(f"wrote {args.size} images ({int(labels[rows].sum())} labelled 1) to {args.output}")
