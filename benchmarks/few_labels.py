"""Few labels: groups named from n labelled images per class, against the label-free recipe and
a logistic regression on the same codes with the same labels.

usage: python -m benchmarks.few_labels BENCH_DIR [--checkpoint PATH] [--shots 1,5,20]
                                      [--seeds 0,1,2] [--fine-clusters 20] [--json OUT]

For every seed: fit the checkpoint's own label-free recipe on trainX, and its encoder and reduction
with method "overcluster" (--fine-clusters fine groups merged to 2) on trainX. For every n, draw
n labelled images per class from valX (seeded), name the fine groups with them as
`aecluster cluster --reference VALX VALY --reference-mode groups` does, and score valX's remaining
images: accuracy of the named groups and of the logistic regression (labels used, plain
accuracy), ACC under the best matching of the label-free recipe and of the label-free
overcluster stage (the drawn images only decide which images are scored). Prints mean ± std
over seeds.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from aecluster.api import AEClusterer
from aecluster.cli.args import fine_count
from aecluster.cli.errors import run_reporting_errors
from aecluster.metrics import clustering_accuracy
from benchmarks.arguments import ROOT, benchmark_parser, number_list
from benchmarks.common import load_bench

COLUMNS = {"groups": "named fine groups (labels)", "logistic": "logistic regression (labels)",
           "recipe": "label-free recipe", "overcluster": "label-free overcluster"}


def draw(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Indices of `shots` images per class, drawn with `seed` (all of a class when it has fewer)."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:shots] for k in np.unique(labels)]))


def run_seed(checkpoint: Path, data: dict[str, np.ndarray], shots: list[int], seed: int,
             fine_clusters: int) -> dict[int, dict[str, float]]:
    """Scores of every column for each n, for one seed."""
    from sklearn.linear_model import LogisticRegression

    recipe = AEClusterer.from_checkpoint(checkpoint, random_state=seed).fit(data["trainX"])
    fine = AEClusterer.from_checkpoint(checkpoint, random_state=seed, method="overcluster",
                                       fine_clusters=fine_clusters).fit(data["trainX"])
    codes = fine.transform(data["valX"])
    label_free = {"recipe": recipe.predict(data["valX"]), "overcluster": fine.predict(data["valX"])}
    scores = {}
    for n in shots:
        labelled = draw(data["valY"], n, seed)
        rest = np.setdiff1d(np.arange(len(data["valY"])), labelled)
        truth = data["valY"][rest]
        named = copy.deepcopy(fine).label_from_reference(data["valX"][labelled], data["valY"][labelled])
        logistic = LogisticRegression(max_iter=1000).fit(codes[labelled], data["valY"][labelled])
        scores[n] = {"groups": float(np.mean(named.predict(data["valX"][rest]) == truth)),
                     "logistic": float(np.mean(logistic.predict(codes[rest]) == truth)),
                     **{name: clustering_accuracy(groups[rest], truth) for name, groups in label_free.items()}}
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, trainY.npy, valX.npy, valY.npy")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "best.pth",
                        help="encoder checkpoint whose codes are clustered")
    parser.add_argument("--shots", type=number_list(int), default=[1, 5, 20],
                        help="labelled images per class (default 1,5,20)")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="seeds (default 0,1,2)")
    parser.add_argument("--fine-clusters", type=fine_count, default=20, help="fine groups named by the labels")
    parser.add_argument("--json", type=Path, help="also write every seed's scores as JSON")
    args = parser.parse_args(argv)

    data = load_bench(args.bench)
    runs = {seed: run_seed(args.checkpoint, data, args.shots, seed, args.fine_clusters) for seed in args.seeds}
    print(f"benchmark {args.bench.resolve().name}: checkpoint {args.checkpoint} N_train={len(data['trainX'])} "
          f"N_val={len(data['valX'])} seeds={args.seeds} fine clusters={args.fine_clusters}; valX images not "
          "drawn are scored")
    print("| n per class | " + " | ".join(COLUMNS.values()) + " |\n" + "|---" * (len(COLUMNS) + 1) + "|")
    for n in args.shots:
        cells = []
        for column in COLUMNS:
            values = [runs[seed][n][column] for seed in args.seeds]
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": args.bench.resolve().name, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("few_labels.py", main))
