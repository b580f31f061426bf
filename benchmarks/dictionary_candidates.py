"""Patch-dictionary candidates: encoders (atoms, pooling grid, flip averaging) and whitened
recipes, judged without labels, in one table.

usage: python -m benchmarks.dictionary_candidates BENCH_DIR [--encoders K:GRID[:flip],...]
                                                  [--recipes REDUCE+METHOD;...] [--seeds 0,1,2]
                                                  [--sample 2000] [--draws 5] [--patches N]
                                                  [--json OUT]

For each encoder: fit a dictionary on BENCH_DIR/trainX.npy (the `patches` config's other
settings, fit seed 0), encode trainX and valX, and for each recipe measure on the training codes
its agreement across clustering seeds, across two 80% subsamples, and between `--sample` images
clustered alone and the same images in the fit on all codes (the 2,000 images `hw9_best.sh`
may be given; mean over `--draws` random samples). The rule (`aecluster.selection.most_stable`)
keeps the first row, the issue's default encoder and recipe, while every agreement is at least
0.95; else the row whose lowest agreement is highest. Labels (trainY, valY) only score: train ACC, valX alone, valX
placed into trainX's groups (first seed), and `--sample` images alone (mean and lowest of the
`--draws` samples).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.cli.args import bounded, integer_at_least
from aecluster.cli.errors import run_reporting_errors
from aecluster.data import compute_in_batches
from aecluster.encoding import fit_groups
from aecluster.metrics import clustering_accuracy
from aecluster.patches import PatchDictionaryEncoder, fit_dictionary
from aecluster.registry import DICTIONARY_BOUNDS, get_spec
from aecluster.selection import AGREEMENTS, SAMPLE_DRAWS, SAMPLE_SIZE, most_stable, recipe_agreements, recipe_fit
from benchmarks.arguments import benchmark_parser, number_list
from benchmarks.common import load_bench


def encoder_list(text: str) -> list[tuple[int, int, bool]]:
    """"400:2,800:2,400:2:flip" -> [(400, 2, False), (800, 2, False), (400, 2, True)]."""
    encoders = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts[:2]) or parts[2:] not in ([], ["flip"]):
            raise argparse.ArgumentTypeError(f"bad encoder {item!r} in {text!r}; expected ATOMS:GRID or "
                                             "ATOMS:GRID:flip, e.g. 400:2")
        encoders.append((int(parts[0]), int(parts[1]), parts[2:] == ["flip"]))
    return encoders


def recipe_list(text: str) -> list[tuple[str, str]]:
    """"wpca:32+kmeans;l2,wpca:32+kmeans" -> [("wpca:32", "kmeans"), ("l2,wpca:32", "kmeans")]."""
    recipes = []
    for item in text.split(";"):
        reduce, plus, method = item.strip().rpartition("+")
        if not plus or not reduce or not method:
            raise argparse.ArgumentTypeError(f"bad recipe {item!r} in {text!r}; expected REDUCE+METHOD")
        recipes.append((reduce, method))
    return recipes


def encode(data: dict[str, np.ndarray], atoms: int, grid: int, flip: bool,
           patches: int) -> tuple[dict[str, np.ndarray], float]:
    """Codes of trainX and valX by a dictionary of `atoms` fitted on `patches` random patches of
    trainX, and the seconds taken."""
    spec = get_spec("patches")
    architecture, fit = spec.config, spec.dictionary_settings
    start = time.perf_counter()
    dictionary = fit_dictionary(data["trainX"], patch_size=architecture["patch_size"], centres=atoms,
                                patches=patches, normalise=architecture["normalise"],
                                whitening_eps=fit.whitening_eps, iterations=fit.iterations, seed=0)
    encoder = PatchDictionaryEncoder(architecture["patch_size"], atoms, grid, architecture["normalise"], flip)
    encoder.load_dictionary(dictionary).eval()
    codes = {split: compute_in_batches(encoder, data[f"{split}X"], "cpu", 64, progress=True, desc=f"encode {split}X",
                                       leave=False).numpy() for split in ("train", "val")}
    return codes, time.perf_counter() - start


def recipe_row(codes: dict[str, np.ndarray], reduce: str, method: str, data: dict[str, np.ndarray],
               seeds: list[int], sample: int, draws: int) -> dict[str, Any]:
    """The agreements of one recipe on one encoder's codes, and its ACC (reported only): the
    `sample` images alone, mean and lowest over the `draws`."""
    fit = recipe_fit(reduce, method)
    agreements = recipe_agreements(fit, codes["train"], seeds, sample, draws)
    reducer, clusterer = fit_groups(codes["train"], reduce, method, random_state=seeds[0], standardize=False)
    sample_accs = [clustering_accuracy(labels, data["trainY"][part]) for part, labels in agreements["samples"]]
    return {"recipe": f"{reduce} + {method}", **{key: agreements[key] for key in AGREEMENTS},
            "train_acc": clustering_accuracy(agreements["groups"], data["trainY"]),
            "val_acc": clustering_accuracy(fit(codes["val"], seeds[0]), data["valY"]),
            "placed_acc": clustering_accuracy(clusterer.predict(reducer.transform(codes["val"])), data["valY"]),
            "sample_acc": float(np.mean(sample_accs)), "sample_acc_lowest": min(sample_accs)}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, valX.npy, and trainY, valY to score")
    parser.add_argument("--encoders", type=encoder_list, default=encoder_list("400:2,400:2:flip,800:2,400:3"),
                        help="dictionaries as ATOMS:GRID[:flip], the first the default (patches config)")
    parser.add_argument("--recipes", type=recipe_list,
                        default=recipe_list("wpca:32+kmeans;l2,wpca:32+kmeans;wpca:16+kmeans;wpca:32+scan"),
                        help="whitened recipes as REDUCE+METHOD separated by ';', the first the default")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="clustering seeds")
    parser.add_argument("--sample", type=integer_at_least(2), default=SAMPLE_SIZE,
                        help="images clustered alone for sample agreement")
    parser.add_argument("--draws", type=integer_at_least(1), default=SAMPLE_DRAWS,
                        help="random samples of --sample images, one per draw")
    parser.add_argument("--patches", type=bounded(DICTIONARY_BOUNDS["patches"]),
                        default=get_spec("patches").dictionary_settings.patches,
                        help="random patches each dictionary is fitted on (the patches config's)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    data = load_bench(args.bench)
    rows = []
    for atoms, grid, flip in args.encoders:
        codes, seconds = encode(data, atoms, grid, flip, args.patches)
        name = f"{atoms} atoms, {grid}x{grid}{', flip' if flip else ''}"
        print(f"{name}: fitted and encoded in {seconds:.0f} s", file=sys.stderr)
        for reduce, method in args.recipes:
            rows.append({"encoder": name, "fit_seconds": seconds,
                         **recipe_row(codes, reduce, method, data, args.seeds, args.sample, args.draws)})
    chosen = most_stable(rows, AGREEMENTS)
    print(f"| encoder | recipe | seed agr. | subsample agr. | {args.sample:,}-sample agr. | least | train ACC | "
          f"val alone | val placed | {args.sample:,} alone, mean | lowest |\n" + "|---" * 11 + "|")
    for row in rows:
        agreements = " | ".join(f"{row[key]:.3f}" for key in AGREEMENTS)
        scores = " | ".join(f"{row[key]:.3f}" for key in ("train_acc", "val_acc", "placed_acc", "sample_acc",
                                                            "sample_acc_lowest"))
        least = min(row[key] for key in AGREEMENTS)
        print(f"| {row['encoder']} | {row['recipe']}{' (chosen)' if row is chosen else ''} | {agreements} | "
              f"{least:.3f} | {scores} |")
    print(f"the label-free rule chooses: {chosen['encoder']}, {chosen['recipe']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("dictionary_candidates.py", main))
