"""The benchmark scripts run end to end on a tiny benchmark folder and print their tables."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_two_group_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    for split, count, seed in (("train", 64, 1), ("val", 48, 2)):
        images, labels = make_two_group_images(count, seed)
        np.save(folder / f"{split}X.npy", images)
        np.save(folder / f"{split}Y.npy", labels)
    return folder


def run_benchmark(name, *args, cwd):
    """`python -m benchmarks.NAME ARGS...` as users run it, from any folder."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name.removesuffix('.py')}", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.slow
def test_accuracy_scores_raw_pixels_and_a_checkpoint(tmp_path, bench_dir, trained_checkpoint):
    result = run_benchmark("accuracy.py", bench_dir, "--models", "raw", "--seeds", "0,1",
                           "--checkpoint", f"tiny={trained_checkpoint}", "--json", tmp_path / "runs.json",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| raw") or line.startswith("| tiny")]
    assert len(rows) == 2
    runs = json.loads((tmp_path / "runs.json").read_text())["results"]
    assert set(runs) == {"raw", "tiny"} and len(runs["raw"]) == 2
    # Raw pixels separate the fixture's validation images; the checkpoint's row is its own clustering of valX.
    assert [run["val_acc"] for run in runs["raw"]] == [1.0, 1.0]
    from aecluster.api import AEClusterer
    from aecluster.metrics import clustering_accuracy

    val_x, val_y = np.load(bench_dir / "valX.npy"), np.load(bench_dir / "valY.npy")
    assert [run["val_acc"] for run in runs["tiny"]] == [
        clustering_accuracy(AEClusterer.from_checkpoint(trained_checkpoint, random_state=seed).fit(val_x).labels_,
                            val_y) for seed in (0, 1)]


@pytest.mark.slow
def test_accuracy_scores_a_distilled_checkpoint_against_its_teacher(tmp_path, bench_dir, trained_checkpoint):
    student = tmp_path / "student.pth"
    shutil.copyfile(trained_checkpoint, student)
    (tmp_path / "student_run").mkdir()
    shutil.copyfile(trained_checkpoint, tmp_path / "student_run" / "teacher.pth")
    result = run_benchmark("accuracy.py", bench_dir, "--models", "raw", "--seeds", "0",
                           "--checkpoint", f"student={student}", "--json", tmp_path / "runs.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("| student teacher") for line in result.stdout.splitlines())
    runs = json.loads((tmp_path / "runs.json").read_text())["results"]
    assert runs["student teacher"][0]["val_acc"] == runs["student"][0]["val_acc"]
    assert runs["student"][0]["val_agreement"] == runs["student"][0]["train_agreement"] == 1.0
    # valX placed into the groups fitted on trainX: scored, and compared with the teacher's too.
    assert runs["student"][0]["placed_agreement"] == 1.0
    assert runs["student"][0]["placed_acc"] == runs["student teacher"][0]["placed_acc"]
    assert "student behind its teacher, points per seed: val 0.0 (mean 0.0); placed 0.0 (mean 0.0); " \
           "train 0.0 (mean 0.0)" in result.stdout
    raw_row = next(line for line in result.stdout.splitlines() if line.startswith("| raw"))
    assert raw_row.split("|")[8:10] == [" — ", " — "]
    assert "groups" not in runs["student"][0]


def test_accuracy_trains_the_gpu_pair_with_tiny_settings_and_reuses_its_teacher(tmp_path, bench_dir,
                                                                                 tiny_gpu_recipe, capsys):
    from benchmarks.accuracy import main

    work = tmp_path / "runs"
    assert main([str(bench_dir), "--models", "resnet18_teacher,best_gpu", "--seeds", "0", "--work", str(work),
                 "--set", "epochs=1,batch_size=32", "--json", str(tmp_path / "runs.json")]) == 0
    out = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")][1:] == [
        "resnet18_teacher", "best_gpu", "best_gpu teacher"]
    assert "best_gpu behind its teacher, points per seed: val " in out
    runs = json.loads((tmp_path / "runs.json").read_text())["results"]
    # The student's teacher is the one trained in the row above, copied rather than trained again.
    assert runs["best_gpu teacher"][0]["train_acc"] == runs["resnet18_teacher"][0]["train_acc"]
    assert {"val_agreement", "train_agreement", "placed_agreement"} <= set(runs["best_gpu"][0])
    assert sorted(path.name for path in work.glob("*.pth")) == [
        "best_gpu_batch_size32_epochs1_seed0.pth", "resnet18_teacher_batch_size32_epochs1_seed0.pth"]
    assert (work / "best_gpu_batch_size32_epochs1_seed0_run" / "teacher.pth").read_bytes() == (
        work / "resnet18_teacher_batch_size32_epochs1_seed0.pth").read_bytes()


def test_speed_prints_the_training_throughput_of_a_config_on_its_device(image_files, tiny_gpu_recipe, capsys):
    from benchmarks.speed import main

    assert main([str(image_files[0]), "--throughput", "resnet18_teacher", "--steps", "2", "--batch-size", "16"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("training resnet18_teacher on cpu (float32): batch 16, ")
    seconds, rate = float(line.split(", ")[1].split(" s a step")[0]), float(line.split(", ")[-1].split()[0])
    assert line.endswith(" images/s") and abs(rate - 16 / seconds) <= 0.05 * rate + 1  # both rounded


def test_distill_variants_parse_settings_that_may_be_none():
    from benchmarks.distill_variants import parse_variants

    assert parse_variants("warmup_epochs=2.5,views=3;;warmup_epochs=none") == [
        {"warmup_epochs": 2.5, "views": 3}, {}, {"warmup_epochs": None}]


@pytest.mark.slow
def test_size_sweep_writes_the_plot_input(tmp_path, bench_dir):
    output = tmp_path / "sweep.json"
    result = run_benchmark("size_sweep.py", bench_dir, "--multipliers", "0.25,0.5", "--epochs", "1",
                           "--seeds", "0,1", "--work", tmp_path / "runs", "--json", output, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    points = json.loads(output.read_text())["points"]
    assert [p["family"] for p in points] == ["separable", "separable", "plain", "plain"]
    assert len(list((tmp_path / "runs").glob("*.pth"))) == 8
    for point in points:
        assert len(point["val_accs"]) == 2 and point["acc"] == pytest.approx(np.median(point["val_accs"]))
        assert point["acc_std"] == pytest.approx(np.std(point["val_accs"]))
    separable, plain = points[0]["params"], points[2]["params"]
    assert separable < plain and points[1]["params"] > separable
    from aecluster.cli import main

    assert main(["plots", "size-accuracy", str(output), str(tmp_path / "sweep.png")]) == 0
    assert (tmp_path / "sweep.png").stat().st_size > 0


@pytest.mark.slow
def test_speed_prints_both_pipelines_and_the_ratio(tmp_path, trained_checkpoint):
    images, _ = make_two_group_images(240, seed=3)
    np.save(tmp_path / "X.npy", images)
    result = run_benchmark("speed.py", tmp_path / "X.npy", "--best", trained_checkpoint,
                           "--baseline", trained_checkpoint, "--no-umap", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ours, course = (float(lines[i].split()[-2]) for i in range(2))
    ratio = float(lines[2].split()[-1].rstrip("x"))
    assert lines[2].startswith("speed-up") and abs(ratio - course / ours) < 0.1
    assert any("encode" in line for line in lines) and "aecluster --help" in result.stdout


@pytest.mark.slow
def test_scale_prints_time_and_peak_memory(tmp_path, trained_checkpoint):
    result = run_benchmark("scale.py", "--sizes", "300", "--checkpoint", trained_checkpoint,
                           "--work", tmp_path / "scale", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[-1]
    assert row.startswith("| 300 |")
    seconds, peak_mb = (float(cell) for cell in row.strip("|").split("|")[1:])
    assert seconds > 0 and 50 < peak_mb < 4000


@pytest.mark.slow
def test_distill_variants_compare_students_of_one_teacher(tmp_path, bench_dir):
    work = tmp_path / "runs"
    result = run_benchmark("distill_variants.py", bench_dir, "--variants", "epochs=1;distill_maps=0,epochs=1",
                           "--seeds", "0", "--work", work, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == [
        "epochs=1", "its teacher", "distill_maps=0, epochs=1", "its teacher"]
    for row in rows[1::2]:  # on the obvious two-group fixture every student groups as its teacher does
        agreements = [float(cell.split("±")[0]) for cell in row.split("|")[6:8] + row.split("|")[9:10]]
        assert len(agreements) == 3 and min(agreements) >= 0.95
    assert rows[2].split("|")[2] == rows[4].split("|")[2]  # the same teacher for both variants
    assert sorted(path.name for path in work.glob("*.pth")) == [
        "best_cnn_distill_maps0_epochs1_seed0.pth", "best_cnn_epochs1_seed0.pth", "teacher_seed0.pth"]


@pytest.mark.slow
def test_clustering_stage_judges_candidates_label_free_and_names_the_choice(tmp_path, bench_dir, trained_checkpoint):
    from aecluster.checkpoint import read_checkpoint
    from benchmarks.clustering_stage import CANDIDATES

    recipe = read_checkpoint(trained_checkpoint)["recipe"]
    count = len(CANDIDATES) + ((recipe["reduce"], recipe["method"]) not in CANDIDATES)  # the incumbent first
    student = tmp_path / "student.pth"
    shutil.copyfile(trained_checkpoint, student)
    (tmp_path / "student_run").mkdir()
    shutil.copyfile(trained_checkpoint, tmp_path / "student_run" / "teacher.pth")
    result = run_benchmark("clustering_stage", bench_dir, "--checkpoint", student, "--seeds", "0,1",
                           "--json", tmp_path / "rows.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [row["encoder"] for row in rows] == ["teacher"] * count + ["student"] * count
    assert (rows[0]["reduce"], rows[0]["method"]) == (recipe["reduce"], recipe["method"])
    students = rows[count:]
    assert all(row["teacher_agreement"] == 1.0 for row in students)  # the same encoder twice
    assert [row["modularity"] for row in students] == [row["modularity"] for row in rows[:count]]
    assert sum(row["chosen"] for row in rows) == 2
    chosen = next(row for row in students if row["chosen"])
    assert f"student: the label-free rule chooses {chosen['recipe']}" in result.stdout
    assert result.stdout.count("| teacher | ") == count

    from aecluster.checkpoint import load_model
    from aecluster.encoding import encode_images

    model = load_model(trained_checkpoint)[0]
    np.savez(tmp_path / "codes.npz", **{f"{encoder}_{split}": encode_images(model, np.load(bench_dir / f"{split}X.npy"))
                                        for encoder in ("student",) for split in ("train", "val")})
    again = run_benchmark("clustering_stage", bench_dir, "--codes", tmp_path / "codes.npz", "--seeds", "0,1",
                          cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    table = [line for line in again.stdout.splitlines() if line.startswith("| student | ")]
    assert len(table) == len(CANDIDATES) and table[0].startswith("| student | l2,pca:32 + kmeans")  # best_gpu's
    assert "student: the label-free rule chooses " in again.stdout


@pytest.mark.slow
def test_training_time_prints_plan_refreshed_and_measured_times(tmp_path, bench_dir):
    result = run_benchmark("training_time.py", bench_dir / "trainX.npy", "--models", "improved", "--epochs", "2",
                           "--limit", "48", "--work", tmp_path / "work", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"48 images of {bench_dir / 'trainX.npy'}; epochs: 2"
    assert re.fullmatch(r"\| `improved` \| \d+ s \| \d+ s \| \d+ s \| \d+ s \|", lines[3]), lines
    work = tmp_path / "work"
    assert len(np.load(work / "trainX_first48.npy")) == 48 and (work / "improved.pth").is_file()


def test_training_time_reads_the_estimates_and_the_measured_time_from_the_lines():
    from benchmarks.training_time import read_times

    lines = [(2.0, "train 'improved': 8,500 images ..."),
             (9.0, "plan: 'improved', 30 epochs, about 7 min (measured here)"),
             (19.0, "train 'improved': epoch 1 of 30 took 10 s: about 5 min left"), (270.0, "wrote o.pth in 268 s"),
             (271.0, "")]
    assert read_times(lines) == {"plan": 420, "refreshed": 10 + 300, "training": 261.0, "command": 271.0}
    assert math.isnan(read_times(lines[:2] + lines[3:])["refreshed"])  # one epoch: nothing refreshed


@pytest.mark.parametrize(("script", "args", "message"), [
    ("training_time.py", ["missing.npy"], "missing.npy: no such file"),
    ("training_time.py", ["BENCH/trainX.npy", "--models", "improved,huge"], "unknown model 'huge'"),
    ("distill_variants.py", ["missing", "--variants", "maps=1"], "unknown setting 'maps'"),
    ("accuracy.py", ["missing"], "missing/trainX.npy: no such file"),
    ("accuracy.py", ["missing", "--seeds", "0,x"], "argument --seeds: expected comma-separated int"),
    ("size_sweep.py", ["missing"], "missing/trainX.npy: no such file"),
    ("size_sweep.py", ["missing", "--multipliers", "half"], "argument --multipliers: expected comma-separated float"),
    ("scale.py", ["--sizes", "10k"], "argument --sizes: expected comma-separated int"),
    ("speed.py", ["missing.npy"], "missing.npy: no such file"),
    ("clustering_stage.py", ["missing", "--codes", "c.npz"], "missing/trainX.npy: no such file"),
    ("clustering_stage.py", ["missing", "--codes", "c.npz", "--seeds", "0"], "needs at least two seeds"),
    ("clustering_stage.py", ["BENCH", "--codes", "c.npz"], "c.npz: no such codes file"),
    ("clustering_stage.py", ["BENCH", "--codes", "BENCH/trainY.npy"], "not a codes file"),
])
@pytest.mark.slow
def test_benchmarks_answer_user_mistakes_in_one_line(tmp_path, bench_dir, script, args, message):
    result = run_benchmark(script, *[arg.replace("BENCH", str(bench_dir)) for arg in args], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{script}: error: " in result.stderr.splitlines()[-1] and message in result.stderr


def test_paired_gaps_are_points_behind_each_seeds_own_teacher():
    from benchmarks.accuracy import paired_gaps

    students = [{"val_acc": 0.76, "placed_acc": 0.80, "train_acc": 0.70},
                {"val_acc": 0.80, "placed_acc": 0.80, "train_acc": 0.70}]
    teachers = [{"val_acc": 0.786, "placed_acc": 0.79, "train_acc": 0.70},
                {"val_acc": 0.79, "placed_acc": 0.80, "train_acc": 0.71}]
    assert paired_gaps("best", students, teachers) == (
        "best behind its teacher, points per seed: val 2.6, -1.0 (mean 0.8); "
        "placed -1.0, 0.0 (mean -0.5); train 0.0, 1.0 (mean 0.5)")


@pytest.mark.parametrize("script", ["accuracy", "clustering_stage", "distill_variants", "few_labels", "gpu_data",
                                    "samples_alone", "gpu_run", "scale", "size_sweep", "speed",
                                    "training_time"])
def test_benchmark_help_gives_a_whole_description_and_the_defaults(script, capsys, monkeypatch):
    import importlib

    module = importlib.import_module(f"benchmarks.{script}")
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as stopped:
        module.main()
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps after hyphens
    assert stopped.value.code == 0
    summary = " ".join(module.__doc__.split("\n\n")[0].split())
    assert summary.endswith(".") and summary in text
    root = str(Path(__file__).resolve().parents[2])
    if script in ("few_labels", "scale", "speed"):
        assert f"(default: {root}/checkpoints/" in text


@pytest.mark.slow
def test_dictionary_candidates_prints_one_row_per_encoder_and_recipe_and_the_rules_choice(tmp_path, bench_dir):
    result = run_benchmark("dictionary_candidates", bench_dir, "--encoders", "8:2,8:1:flip",
                           "--recipes", "wpca:4+kmeans;l2,pca:2+kmeans", "--sample", "32", "--draws", "2",
                           "--patches", "2000",
                           "--json", tmp_path / "rows.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| 8 atoms")]
    assert [line.split(" | ")[:2] for line in table] == [
        ["| 8 atoms, 2x2", "wpca:4 + kmeans" + (" (chosen)" if "(chosen)" in table[0] else "")],
        ["| 8 atoms, 2x2", "l2,pca:2 + kmeans" + (" (chosen)" if "(chosen)" in table[1] else "")],
        ["| 8 atoms, 1x1, flip", "wpca:4 + kmeans" + (" (chosen)" if "(chosen)" in table[2] else "")],
        ["| 8 atoms, 1x1, flip", "l2,pca:2 + kmeans" + (" (chosen)" if "(chosen)" in table[3] else "")]]
    assert sum("(chosen)" in line for line in table) == 1
    rows = json.loads((tmp_path / "rows.json").read_text())
    least = [min(row[key] for key in ("seed_agreement", "subsample_agreement", "sample_agreement")) for row in rows]
    chosen = 0 if least[0] >= 0.95 else int(np.argmax(least))
    assert "(chosen)" in table[chosen]
    # each printed row carries the JSON row's agreements and their lowest, in the table's columns
    for line, row, lowest in zip(table, rows, least, strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[2:6] == [f"{row['seed_agreement']:.3f}", f"{row['subsample_agreement']:.3f}",
                              f"{row['sample_agreement']:.3f}", f"{lowest:.3f}"]


@pytest.mark.slow
def test_dictionary_candidates_refuses_a_bad_encoder_in_one_line(tmp_path, bench_dir):
    result = run_benchmark("dictionary_candidates", bench_dir, "--encoders", "400x2", cwd=tmp_path)
    assert result.returncode == 2 and "bad encoder '400x2'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_samples_alone_scores_each_draw_clustered_by_itself(tmp_path, bench_dir, trained_checkpoint):
    result = run_benchmark("samples_alone", bench_dir, trained_checkpoint, "--sample", "32", "--draws", "3",
                           "--json", tmp_path / "rows.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = json.loads((tmp_path / "rows.json").read_text())
    assert row["recipe"] == "pca:2 + kmeans" and len(row["accs"]) == len(row["agreements"]) == 3
    [line] = [line for line in result.stdout.splitlines() if line.startswith(f"| {trained_checkpoint}")]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[3] == f"{np.mean(row['agreements']):.3f} ({min(row['agreements']):.3f})"
    assert cells[5] == ", ".join(f"{acc:.3f}" for acc in row["accs"])
