"""Regenerate reports/README.md and its figures from the shipped checkpoints (run via make_report.sh).

usage: python scripts/make_report.py [DATA_DIR] [--checkpoints DIR] [--output DIR]
                                     [--size-accuracy RESULTS.json] [--quiet]

DATA_DIR holds trainX.npy, valX.npy and valY.npy (default: ../shared/data/two_source relative to
the repository root). Every number in the README is computed here; nothing is typed by hand. The
report renders numbers only (tables, figures, captions saying what is drawn); what they mean is
written by people in docs/ (docs/report.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from aecluster.cli.args import say
from aecluster.cli.errors import run_reporting_errors
from aecluster.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "two_source"
MODELS = ("baseline", "improved", "best")
LABEL_NAMES = ("not landscape", "landscape")  # the benchmarks' labels 0 and 1
FIGURES = {"embedding": "embedding_baseline_vs_improved.png", "reconstructions": "reconstructions.png",
           "checkpoints": "checkpoints_improved.png", "confusion": "confusion_best_val.png",
           "size": "size_accuracy.png", "gallery": "gallery_best_val.png"}


def shown(path: Path) -> str:
    """A path as the README shows it: relative to the repository root."""
    return os.path.relpath(path.resolve(), ROOT)


def check_inputs(data: Path, checkpoints: Path, size_results: Path | None) -> None:
    """One UserInputError naming everything missing (and how to make it)."""
    missing = [f"{shown(data / name)} (benchmark file)" for name in ("trainX.npy", "valX.npy", "valY.npy")
               if not (data / name).is_file()]
    train_x = shown(data / "trainX.npy")
    for model in MODELS:
        path = checkpoints / f"{model}.pth"
        if not path.is_file():
            missing.append(f"{shown(path)} (train it: bash train_{model}.sh {train_x} {shown(path)})")
    run = checkpoints / "improved_run"
    if not run.is_dir() or not any(run.glob("step_*.pth")):
        missing.append(f"{shown(run)}/step_*.pth (the snapshots written while training improved.pth)")
    if size_results is not None and not size_results.is_file():
        missing.append(f"{shown(size_results)} (size sweep results)")
    if missing:
        raise UserInputError("cannot build the report; missing: " + "; ".join(missing))


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def curve_summary(scores: list[Any], correlation: float) -> list[str]:
    """Table rows of the checkpoint curve's first, last and most accurate snapshot, and the correlation."""
    first, last = scores[0], scores[-1]
    peak = max(scores, key=lambda s: s.accuracy)
    pearson = "undefined (a series is constant)" if math.isnan(correlation) else f"{correlation:+.2f}"
    return ["| quantity | value |", "|---|---|",
            f"| trainX MSE, first → last snapshot | {first.mse:.4f} → {last.mse:.4f} |",
            f"| val accuracy, first → last snapshot | {percent(first.accuracy)} → {percent(last.accuracy)} |",
            f"| best val accuracy (epoch) | {percent(peak.accuracy)} ({peak.epoch:g}) |",
            f"| Pearson r(trainX MSE, val accuracy), {len(scores)} snapshots | {pearson} |"]


def build_report(args: argparse.Namespace) -> None:
    """Compute every number and figure, then write README.md and metrics.json into the output folder."""
    from aecluster import __version__
    from aecluster.atomic import atomic_path, check_writable
    from aecluster.checkpoint import load_model
    from aecluster.cli import main as cli_main
    from aecluster.cli.plots import draw
    from aecluster.csvio import read_predictions
    from aecluster.data import load_images, load_labels
    from aecluster.plots.compute import confusion_counts, embed_checkpoints, mse_accuracy_correlation, score_snapshots
    from aecluster.plots.draw import checkpoints_figure, embedding_figure, label_names, save_figure

    data, checkpoints, out = args.data.resolve(), args.checkpoints.resolve(), args.output.resolve()
    check_inputs(data, checkpoints, args.size_accuracy)
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out / "README.md")
    paths = {model: checkpoints / f"{model}.pth" for model in MODELS}
    train_x = load_images(data / "trainX.npy")
    val_x = load_images(data / "valX.npy", min_images=2)
    val_y = load_labels(data / "valY.npy", len(val_x))
    progress = not args.quiet

    say(args, "[1/4] baseline vs improved: clustering valX with each checkpoint's recipe")
    panels = embed_checkpoints(val_x, val_y, [paths["baseline"], paths["improved"]], progress=progress)
    save_figure(embedding_figure(panels, val_y, f"valX ({len(val_x)} images) in the 2-D space each "
                                                "model clusters in, coloured by true label", LABEL_NAMES),
                out / FIGURES["embedding"])
    loaded = {model: load_model(paths[model]) for model in MODELS}
    recipes = {model: payload.get("recipe", {}) for model, (_, payload) in loaded.items()}

    say(args, "[2/4] best.pth on valX: aecluster cluster, then the confusion matrix and the gallery")
    predictions = out / "best_val_predictions.csv"
    if cli_main(["cluster", str(data / "valX.npy"), str(paths["best"]), str(predictions), "--quiet"]) != 0:
        raise SystemExit(2)
    draw(["confusion", str(predictions), str(data / "valY.npy"), str(out / FIGURES["confusion"]), "--quiet",
          "--label-names", ",".join(LABEL_NAMES)])
    draw(["gallery", str(data / "valX.npy"), str(predictions), str(out / FIGURES["gallery"]),
          "--checkpoint", str(paths["best"]), "--quiet"])
    table = confusion_counts(read_predictions(predictions), val_y)
    accuracy = {"baseline": panels[0].accuracy, "improved": panels[1].accuracy, "best": table.accuracy}

    say(args, "[3/4] reconstructions of trainX 1,2,3,6,7,9 by the most accurate checkpoint")
    with_decoder = [m for m in MODELS if loaded[m][0].decoder is not None]
    if not with_decoder:
        raise UserInputError("no shipped checkpoint has a decoder, so no reconstructions can be drawn")
    chosen = max(with_decoder, key=lambda m: accuracy[m])
    draw(["reconstructions", str(data / "trainX.npy"), str(paths[chosen]),
          str(out / FIGURES["reconstructions"]), "--quiet"])

    say(args, "[4/4] improved_run snapshots: reconstruction MSE on all trainX and val accuracy")
    scores = score_snapshots(checkpoints / "improved_run", train_x, val_x, val_y, progress=progress)
    correlation = mse_accuracy_correlation(scores)
    save_figure(checkpoints_figure(scores, "improved_run"), out / FIGURES["checkpoints"])

    if args.size_accuracy is not None:
        draw(["size-accuracy", str(args.size_accuracy), str(out / FIGURES["size"]), "--quiet"])

    metrics = {
        "aecluster_version": __version__, "data": shown(data), "train_images": len(train_x),
        "val_images": len(val_x), "val_accuracy": accuracy,
        "recipes": recipes, "reconstructions_checkpoint": chosen,
        "snapshots": [vars(s) for s in scores],
        "mse_accuracy_pearson": None if math.isnan(correlation) else correlation,
        "confusion_best": {"labels": table.labels, "groups": table.groups, "counts": table.counts.tolist(),
                           "matching": {str(group): label for group, label in table.matching.items()}},
    }
    with atomic_path(out / "metrics.json") as temporary:
        temporary.write_text(json.dumps(metrics, indent=2) + "\n")
    readme = render_readme(args, data, checkpoints, out, metrics, scores, correlation, table,
                           label_names(table.labels, LABEL_NAMES))
    with atomic_path(out / "README.md") as temporary:
        temporary.write_text(readme, encoding="utf-8")
    say(args, f"wrote {shown(out / 'README.md')}, metrics.json and {len(FIGURES) - (args.size_accuracy is None)} "
                    "figures")


def render_readme(args: argparse.Namespace, data: Path, checkpoints: Path, out: Path, metrics: dict[str, Any],
                  scores: list[Any], correlation: float, table: Any, names: list[str]) -> str:
    """The report's Markdown, from the computed metrics."""
    accuracy, recipes = metrics["val_accuracy"], metrics["recipes"]
    ckpt = {model: shown(checkpoints / f"{model}.pth") for model in MODELS}
    gain = accuracy["improved"] - accuracy["baseline"]
    matching = ", ".join(f"group {group} → {name}" for group, name in zip(table.matching, names, strict=False))
    lines = [
        "# Report: landscape vs not-landscape clustering on two_source",
        "",
        f"Generated by `bash scripts/make_report.sh {shown(data)}` (aecluster {metrics['aecluster_version']}); "
        "do not edit by hand: every number below is computed by the script. "
        f"Data: `{metrics['data']}` ({metrics['train_images']} training images, {metrics['val_images']} "
        "labelled validation images). Accuracy is clustering accuracy: the fraction of images whose "
        "group maps to their true label under the best one-to-one matching of groups to labels. "
        f"Raw numbers: [metrics.json](metrics.json); what they mean: "
        f"[docs/report.md]({os.path.relpath(ROOT / 'docs' / 'report.md', out)}).",
        "",
        "## 1. Baseline vs improved autoencoder",
        "",
        "| model | checkpoint | clustering recipe | val accuracy |",
        "|---|---|---|---|",
    ]
    for model in MODELS:
        recipe = recipes[model]
        lines.append(f"| {model} | `{ckpt[model]}` | `{recipe.get('reduce')}` + {recipe.get('method')} | "
                     f"{percent(accuracy[model])} |")
    lines += [
        "",
        f"improved − baseline: {100 * gain:+.1f} percentage points. Each panel shows valX in "
        "the 2-D space its model's recipe clusters in, coloured by the true label:",
        "",
        f"![baseline vs improved embeddings]({FIGURES['embedding']})",
        "",
        "## 2. Reconstructions of trainX images 1, 2, 3, 6, 7, 9",
        "",
        f"Drawn with `{ckpt[metrics['reconstructions_checkpoint']]}`, the checkpoint with the highest "
        f"validation accuracy ({percent(accuracy[metrics['reconstructions_checkpoint']])}) among those with "
        "a decoder. Top row: originals; bottom row: reconstructions, with each image's MSE.",
        "",
        f"![reconstructions]({FIGURES['reconstructions']})",
        "",
        "## 3. Reconstruction error vs accuracy over training",
        "",
        f"{len(scores)} snapshots of `{shown(checkpoints / 'improved_run')}`: reconstruction MSE on all of "
        "trainX (pixels scaled to [-1, 1]) and validation accuracy with the snapshot's own recipe.",
        "",
        "| epoch | snapshot | trainX MSE | val accuracy |",
        "|---|---|---|---|",
        *[f"| {s.epoch:g} | `{s.name}` | {s.mse:.4f} | {percent(s.accuracy)} |" for s in scores],
        "",
        f"![checkpoint curve]({FIGURES['checkpoints']})",
        "",
        *curve_summary(scores, correlation),
        "",
        "## 4. Confusion matrix of best.pth on valX",
        "",
        "Clustered exactly as the homework's script does, then scored:",
        "",
        "```bash",
        f"aecluster cluster {shown(data / 'valX.npy')} {ckpt['best']} {shown(out / 'best_val_predictions.csv')}",
        f"aecluster plots confusion {shown(out / 'best_val_predictions.csv')} {shown(data / 'valY.npy')} "
        f"{shown(out / FIGURES['confusion'])}",
        "```",
        "",
        "| true \\ predicted group | " + " | ".join(f"group {group}" for group in table.groups) + " | recall |",
        "|---|" + "---|" * (len(table.groups) + 1),
    ]
    for row, name in enumerate(names):
        recall = table.counts[row, row] / max(int(table.counts[row].sum()), 1) if row < table.matched else 0.0
        lines.append(f"| {name} | " + " | ".join(str(int(v)) for v in table.counts[row]) + f" | {percent(recall)} |")
    lines += [
        "",
        f"Accuracy {percent(accuracy['best'])} after matching groups to labels "
        f"({matching}).",
        "",
        f"![confusion matrix]({FIGURES['confusion']})",
        "",
        "Each predicted group's most typical valX images (nearest its centre in best.pth's codes) and "
        "its most borderline ones (nearest another group's centre):",
        "",
        "```bash",
        f"aecluster gallery {shown(data / 'valX.npy')} {shown(out / 'best_val_predictions.csv')} "
        f"{shown(out / FIGURES['gallery'])} --checkpoint {ckpt['best']}",
        "```",
        "",
        f"![gallery of the groups]({FIGURES['gallery']})",
        "",
    ]
    if args.size_accuracy is not None:
        sweep = json.loads(args.size_accuracy.read_text(encoding="utf-8"))
        lines += ["## 5. Model size vs accuracy", "",
                  f"From `{shown(args.size_accuracy)}` ({sweep.get('benchmark', '')}), written by "
                  "`python -m benchmarks.size_sweep`: both encoder families at several width multipliers, "
                  "trained identically.", "",
                  "| family | params | val accuracy (median over seeds ± std) |", "|---|---|---|",
                  *[f"| {p['family']} | {p['params']:,} | {percent(p['acc'])} ± {percent(p.get('acc_std', 0.0))} |"
                    for p in sweep["points"]],
                  "", f"![size vs accuracy]({FIGURES['size']})", "", *family_gap_table(sweep["points"]), ""]
    return "\n".join(lines)


def compare_families(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean accuracy gap between the two families where their parameter ranges overlap (accuracies
    interpolated linearly in log-parameters on 5 points), and the mean spread over seeds; None when
    there are not exactly two families or their ranges do not overlap."""
    import numpy as np

    families: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        families.setdefault(point["family"], []).append((math.log10(point["params"]), point["acc"]))
    if len(families) != 2:
        return None
    (name_a, curve_a), (name_b, curve_b) = ((name, sorted(curve)) for name, curve in families.items())
    low, high = max(curve_a[0][0], curve_b[0][0]), min(curve_a[-1][0], curve_b[-1][0])
    if low > high:
        return None
    grid = np.linspace(low, high, 5)
    gap = float(np.mean(np.interp(grid, *np.array(curve_a).T) - np.interp(grid, *np.array(curve_b).T)))
    return {"families": (name_a, name_b), "params": (10 ** low, 10 ** high), "gap": gap,
            "spread": float(np.mean([point.get("acc_std", 0.0) for point in points]))}


def family_gap_table(points: list[dict[str, Any]]) -> list[str]:
    """The comparison of `compare_families` as table rows (a dash when there is none)."""
    result = compare_families(points)
    if result is None:
        return ["| families compared at equal parameters | — (not two families with overlapping sizes) |",
                "|---|---|"]
    (name_a, name_b), (low, high) = result["families"], result["params"]
    return ["| quantity | value |", "|---|---|",
            f"| parameter range where both families have models | {low:,.0f} – {high:,.0f} |",
            f"| mean val accuracy {name_a} − {name_b} there (points) | {100 * result['gap']:+.1f} |",
            f"| mean spread over seeds (points) | {100 * result['spread']:.1f} |"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_report", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA,
                        help=f"benchmark folder (default {shown(DEFAULT_DATA)})")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints",
                        help="folder with baseline.pth, improved.pth, best.pth and improved_run/")
    parser.add_argument("--output", type=Path, default=ROOT / "reports", help="report folder (default reports/)")
    parser.add_argument("--size-accuracy", type=Path, help="optional RESULTS.json of a size sweep")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    args = parser.parse_args(argv)

    def run() -> int:
        build_report(args)
        return 0

    return run_reporting_errors("make_report", run, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
