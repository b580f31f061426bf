"""Speed benchmark: `hw9_best.sh` against the course's pipeline, both as cold processes.

usage: python -m benchmarks.speed TRAINX [--best checkpoints/best.pth] [--baseline checkpoints/baseline.pth]
       python -m benchmarks.speed TRAINX --throughput resnet18_teacher [--steps 5] [--batch-size N]

Times, in the same run and each in a fresh process (imports included):
  ours:   bash hw9_best.sh TRAINX BEST pred.csv
  course: baseline codes -> KernelPCA(200, rbf) -> scikit-learn t-SNE(2) -> MiniBatchKMeans(2)
and prints both wall times and the ratio, then our per-stage breakdown (--verbose), the start-up
time of `aecluster --help`, and what the UMAP recipe costs on a first run (empty numba cache)
against a second run (compiled code read from the cache).

With --throughput CONFIG it instead times a few training steps of that config on TRAINX (after a
warm-up step; bf16 autocast and channels-last on CUDA, as training runs there) and prints the
device and the training throughput in images per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.cli.args import positive_int
from aecluster.cli.errors import run_reporting_errors
from aecluster.data import load_images
from aecluster.registry import MODEL_NAMES
from benchmarks.arguments import ROOT, benchmark_parser


def course_pipeline(images_path: str, checkpoint: str, output: str) -> None:
    """The HW9 reference pipeline, as the course's solutions run it."""
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import KernelPCA
    from sklearn.manifold import TSNE

    from aecluster.checkpoint import load_model
    from aecluster.csvio import write_predictions
    from aecluster.data import load_images
    from aecluster.encoding import encode_images

    model, _ = load_model(checkpoint)
    codes = encode_images(model, load_images(images_path))
    reduced = KernelPCA(n_components=200, kernel="rbf", random_state=0).fit_transform(codes)
    embedded = TSNE(n_components=2, random_state=0).fit_transform(reduced)
    labels = MiniBatchKMeans(n_clusters=2, random_state=0, n_init=3).fit_predict(embedded)
    write_predictions(output, np.asarray(labels))


def training_throughput(name: str, images: np.ndarray, steps: int = 5, batch_size: int | None = None,
                        device: str | None = None) -> dict[str, Any]:
    """The device and training throughput of config `name` (with its teacher, untrained, if it is
    a student): images per second over `steps` timed steps of its registered settings."""
    import torch

    from aecluster.devices import resolve_device
    from aecluster.models import build_model
    from aecluster.plans import step_seconds
    from aecluster.registry import TrainSettings, get_spec

    device = resolve_device(device)
    settings = TrainSettings.for_model(name, batch_size=batch_size)
    batch = min(settings.batch_size, len(images))
    teacher = get_spec(name).teacher
    seconds = step_seconds(name, images[: (steps + 1) * batch], settings, device=device, steps=steps + 1,
                           teacher=build_model(teacher) if teacher else None)
    return {"config": name, "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
            "precision": "bf16 autocast, channels-last" if device.startswith("cuda") else "float32",
            "batch_size": batch, "steps": steps, "step_seconds": seconds,
            "images_per_second": batch / seconds if seconds > 0 else float("inf")}


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds, result.stderr


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("trainx", help="images to cluster (.npy)")
    parser.add_argument("--best", default=str(ROOT / "checkpoints" / "best.pth"), help="checkpoint hw9_best.sh uses")
    parser.add_argument("--baseline", default=str(ROOT / "checkpoints" / "baseline.pth"),
                        help="checkpoint of the course's pipeline")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP first-run/cached timing")
    parser.add_argument("--throughput", metavar="CONFIG", choices=MODEL_NAMES,
                        help="only time training steps of this config (e.g. resnet18_teacher) on TRAINX")
    parser.add_argument("--steps", type=positive_int, default=5, help="timed steps of --throughput")
    parser.add_argument("--batch-size", type=positive_int, help="batch of --throughput (default: the config's)")
    parser.add_argument("--course-only", nargs=3, metavar=("TRAINX", "CKPT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.course_only:
        course_pipeline(*args.course_only)
        return 0
    images = load_images(args.trainx)
    if args.throughput:
        rate = training_throughput(args.throughput, images, args.steps, args.batch_size)
        print(f"training {rate['config']} on {rate['device']} ({rate['precision']}): batch {rate['batch_size']}, "
              f"{rate['step_seconds']:.3g} s a step over {rate['steps']} timed steps, "
              f"{rate['images_per_second']:.0f} images/s")
        return 0
    trainx = str(Path(args.trainx).resolve())
    with tempfile.TemporaryDirectory() as folder:
        ours, _ = timed(["bash", "hw9_best.sh", trainx, args.best, f"{folder}/ours.csv"])
        course, _ = timed([sys.executable, "-m", "benchmarks.speed", trainx, "--course-only", trainx, args.baseline,
                           f"{folder}/course.csv"])
        _, breakdown = timed([sys.executable, "-m", "aecluster", "cluster", trainx, args.best,
                              f"{folder}/again.csv", "--verbose", "--quiet"])
        startup = statistics.median(timed([sys.executable, "-m", "aecluster", "--help"])[0] for _ in range(5))
        umap_env = {**os.environ, "NUMBA_CACHE_DIR": f"{folder}/numba"}
        umap_command = [sys.executable, "-m", "aecluster", "cluster", trainx, args.best, f"{folder}/umap.csv",
                        "--reduce", "l2,umap:2", "--quiet"]
        umap_times = [] if args.no_umap else [timed(umap_command, umap_env)[0] for _ in range(2)]
    print(f"hw9_best.sh (cold process):      {ours:7.1f} s")
    print(f"course pipeline (cold process):  {course:7.1f} s")
    print(f"speed-up:                        {course / ours:7.1f}x")
    print("per-stage breakdown of ours (--verbose):")
    print(breakdown.rstrip())
    print(f"aecluster --help (cold process, median of 5): {startup:5.2f} s")
    if umap_times:
        print(f"--reduce l2,umap:2, first run (empty numba cache): {umap_times[0]:6.1f} s")
        print(f"--reduce l2,umap:2, second run (cached):           {umap_times[1]:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("speed.py", main))
