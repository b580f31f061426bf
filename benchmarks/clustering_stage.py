"""Clustering-stage benchmark: candidate recipes judged label-free, the rule's choice, then ACC.

usage: python -m benchmarks.clustering_stage BENCH_DIR (--checkpoint PATH [--teacher PATH] |
                                             --codes NAME_codes.npz) [--seeds 0,1,2] [--json OUT]

Codes of trainX and valX come from the student checkpoint PATH (and from its teacher: --teacher,
or PATH_run/teacher.pth when there is one), or from the codes file that `benchmarks.gpu_run`
brings back from the GPU (teacher_train, teacher_val, student_train, student_val). For each
encoder and candidate recipe (the incumbent first: the checkpoint's reducer chain and method, or
best_gpu's for a codes file; every candidate is fitted into two groups on unstandardised codes)
it prints the label-free criteria of aecluster.selection on the trainX codes: agreement
across clustering seeds, across two 80% subsamples, with the teacher's groups (a student), and the
modularity of the split of the codes' neighbour graph (the mean over seeds, and its range). Then
the recipe that the rule of docs/clustering.md chooses for each encoder. Then, reported only and
never used to choose, the ACC of each row on trainX and on valX clustered alone (BENCH_DIR's
trainY and valY).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aecluster.cli.errors import run_reporting_errors
from aecluster.encoding import RECIPE_DEFAULTS
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy
from aecluster.registry import REGISTRY
from aecluster.selection import choose_recipe, is_stable, neighbour_graph, recipe_criteria, recipe_fit
from benchmarks.arguments import benchmark_parser, number_list
from benchmarks.common import load_bench

CANDIDATES = (("l2,pca:32", "kmeans"), ("l2,wpca:32", "kmeans"), ("l2,pca:32", "overcluster"),
              ("l2,pca:32", "scan"), ("l2,wpca:32", "scan"))


def candidates_after(incumbent: tuple[str, str]) -> list[tuple[str, str]]:
    """The candidate recipes, the incumbent first."""
    return [incumbent, *(candidate for candidate in CANDIDATES if candidate != incumbent)]


def checkpoint_codes(path: Path, data: dict[str, np.ndarray],
                     teacher: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Codes of trainX and valX by the teacher (`teacher`, or PATH_run/teacher.pth when it
    exists) and the student."""
    from aecluster.checkpoint import load_model
    from aecluster.encoding import encode_images
    from aecluster.snapshots import teacher_path

    teacher = teacher or teacher_path(path)
    encoders = {"teacher": teacher} if teacher.is_file() else {}
    encoders["student"] = path
    codes = {}
    for encoder, checkpoint in encoders.items():
        model = load_model(checkpoint)[0]
        codes[encoder] = {split: encode_images(model, data[f"{split}X"]) for split in ("train", "val")}
    return codes


def file_codes(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Codes saved by benchmarks.gpu_run: ENCODER_SPLIT arrays (float16) as float32."""
    if not path.is_file():
        raise UserInputError(f"{path}: no such codes file; expected NAME_codes.npz from benchmarks.gpu_run")
    try:
        saved = np.load(path)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not a codes file (.npz) ({str(exc)[:120]})") from None
    if not hasattr(saved, "files"):
        raise UserInputError(f"{path}: one array, not a codes file (.npz of ENCODER_SPLIT arrays)")
    with saved:
        codes: dict[str, dict[str, np.ndarray]] = {}
        for key in saved.files:
            encoder, _, split = key.partition("_")
            codes.setdefault(encoder, {})[split] = saved[key].astype(np.float32)
    if not all({"train", "val"} <= set(splits) for splits in codes.values()) or "student" not in codes:
        raise UserInputError(f"{path}: expected student_train, student_val (and teacher_...) arrays, "
                             f"found {', '.join(sorted(saved.files))}")
    return dict(sorted(codes.items(), key=lambda item: item[0] != "teacher"))


def candidate_table(codes: dict[str, dict[str, np.ndarray]], incumbent: tuple[str, str],
                    seeds: list[int], labels: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Rows of label-free criteria per encoder and candidate (the teacher's first, so that a
    student's rows can be compared with its teacher's groups), each marked `chosen` where the rule
    picks it; with `labels` (trainY, valY) also their ACC, reported only."""
    rows, teacher_groups = [], {}
    for encoder, splits in codes.items():
        graph = neighbour_graph(splits["train"])
        encoder_rows = []
        for reduce, method in candidates_after(incumbent):
            clock = time.perf_counter()
            row = recipe_criteria(splits["train"], reduce, method, graph, seeds,
                                  reference=teacher_groups.get((reduce, method)) if encoder != "teacher" else None)
            if encoder == "teacher":
                teacher_groups[(reduce, method)] = row["groups"]
            if labels is not None:
                row["train_acc"] = clustering_accuracy(row["groups"], labels["trainY"])
                row["val_acc"] = clustering_accuracy(recipe_fit(reduce, method)(splits["val"], seeds[0]),
                                                     labels["valY"])
            row.update(encoder=encoder, seconds=time.perf_counter() - clock)
            encoder_rows.append(row)
        chosen = choose_recipe(encoder_rows)
        for row in encoder_rows:
            row["chosen"] = row is chosen
        rows.extend(encoder_rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """The rows as a markdown table, then the rule's choice per encoder."""
    print("| encoder | recipe | seed agreement | subsample agreement | teacher agreement | modularity | "
          "its range over seeds | stable | train ACC (reported only) | val ACC alone (reported only) | seconds |\n"
          + "|---" * 11 + "|")
    for row in rows:
        cells = [f"{row[key]:.3f}" if key in row else "—" for key in
                 ("seed_agreement", "subsample_agreement", "teacher_agreement", "modularity", "modularity_range")]
        scores = [f"{row[key]:.3f}" if key in row else "—" for key in ("train_acc", "val_acc")]
        print(f"| {row['encoder']} | {row['recipe']}{' (chosen)' if row['chosen'] else ''} | {' | '.join(cells)} "
              f"| {'yes' if is_stable(row) else 'no'} | {' | '.join(scores)} | {row['seconds']:.0f} |")
    for row in rows:
        if row["chosen"]:
            print(f"{row['encoder']}: the label-free rule chooses {row['recipe']}")


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bench", type=Path, help="folder with trainX.npy, valX.npy, and trainY, valY to score")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a student checkpoint (its teacher from PATH_run/)")
    source.add_argument("--codes", type=Path, help="NAME_codes.npz written by benchmarks.gpu_run")
    parser.add_argument("--teacher", type=Path, help="the student's teacher (default: PATH_run/teacher.pth if any)")
    parser.add_argument("--seeds", type=number_list(int), default=[0, 1, 2], help="clustering seeds (default 0,1,2)")
    parser.add_argument("--json", type=Path, help="also write the rows (without groups) as JSON")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        raise UserInputError(f"--seeds {','.join(map(str, args.seeds))}: seed agreement needs at least two seeds")
    if args.teacher and not args.teacher.is_file():
        raise UserInputError(f"{args.teacher}: no such teacher checkpoint")
    data = load_bench(args.bench)
    if args.checkpoint:
        from aecluster.checkpoint import read_checkpoint

        recipe = read_checkpoint(args.checkpoint).get("recipe") or {}
        codes = checkpoint_codes(args.checkpoint, data, args.teacher)
    else:
        recipe = REGISTRY["best_gpu"].recipe
        codes = file_codes(args.codes)
        for encoder, splits in codes.items():
            for split, values in splits.items():
                if len(values) != len(data[f"{split}Y"]):
                    raise UserInputError(f"{args.codes}: {encoder}_{split} holds {len(values)} codes, but "
                                         f"{args.bench} has {len(data[f'{split}Y'])} {split} labels")
    incumbent = (recipe.get("reduce", RECIPE_DEFAULTS["reduce"]), recipe.get("method", RECIPE_DEFAULTS["method"]))
    rows = candidate_table(codes, incumbent, args.seeds, {"trainY": data["trainY"], "valY": data["valY"]})
    print_table(rows)
    if args.json:
        from aecluster.atomic import atomic_path

        with atomic_path(args.json) as path:
            path.write_text(json.dumps([{key: value for key, value in row.items() if key != "groups"}
                                        for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors("clustering_stage.py", main))
