"""Fit once, label many: validated parameters, saved clusterings, K groups, the over-cluster stage
and labelling groups from a few labelled images."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from aecluster import AEClusterer
from aecluster.cli import main
from aecluster.clustering import OverclusterGroups, clusterer_from_state
from aecluster.csvio import read_predictions
from aecluster.encoder import ImageEncoder
from aecluster.errors import UserInputError
from aecluster.metrics import clustering_accuracy, score_all
from tests.conftest import three_families

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(scope="module")
def families():
    return three_families()


@pytest.mark.parametrize("params, name", [
    ({"batch_size": 0}, "batch_size"), ({"epochs": -1}, "epochs"), ({"method": "dbscan"}, "method"),
    ({"n_clusters": 1}, "n_clusters"), ({"lr": 0.0}, "lr"), ({"augment": "rotate"}, "augment"),
    ({"random_state": -1}, "random_state"), ({"threshold": 5.0}, "threshold"),
])
def test_bad_parameters_fail_before_any_work(monkeypatch, two_groups, params, name):
    monkeypatch.setattr(ImageEncoder, "fit", lambda *_: pytest.fail("work started"))
    # A recipe value is refused by `check_recipe` (a UserInputError), the others by scikit-learn.
    with pytest.raises(ValueError, match=f"'{name}' parameter of AEClusterer|AEClusterer: recipe '{name}'"):
        AEClusterer(**params).fit(two_groups[0])


@pytest.mark.parametrize("params, message", [
    ({"method": "threshold", "n_clusters": 3}, "splits two ways only"),
    ({"method": "overcluster", "n_clusters": 5, "fine_clusters": 4}, "fewer than the 5 groups"),
    ({"reduce": "svd:3"}, "expected NAME:DIM"),
    ({"reduce": "pca:5000"}, "the largest allowed is pca:"),
    ({"n_clusters": 9000}, "need at least 9000 images to form 9000 groups, found"),
    ({"device": "foo"}, "unknown device 'foo'"),
    ({"device": "meta"}, "device 'meta' cannot run aecluster"),
])
def test_bad_recipes_fail_before_any_work(monkeypatch, two_groups, params, message):
    monkeypatch.setattr(ImageEncoder, "fit", lambda *_: pytest.fail("work started"))
    with pytest.raises(UserInputError, match=message):
        AEClusterer(**params).fit(two_groups[0])


def test_save_load_predict_gives_identical_labels(tmp_path, two_groups, trained_checkpoint):
    images, _ = two_groups
    fitted = AEClusterer.from_checkpoint(trained_checkpoint, reduce="l2,wpca:2").fit(images)
    fitted.save(tmp_path / "model.pth")
    payload = torch.load(tmp_path / "model.pth", weights_only=True)
    assert payload["recipe"]["reduce"] == "l2,wpca:2" and "fitted" in payload
    assert not any(key.startswith("decoder.") for key in payload["state_dict"])
    loaded = AEClusterer.from_checkpoint(tmp_path / "model.pth")
    assert loaded.checkpoint_info_["model"] == "improved"
    assert loaded.reducer_.n_features_in_ == fitted.reducer_.n_features_in_ == fitted.encoder_.model_.code_dim
    assert loaded.clusterer_.n_features_in_ == fitted.clusterer_.n_features_in_ == 2
    new_images = np.concatenate([images[::-1], images[:7] // 2 + 60])
    np.testing.assert_array_equal(loaded.predict(images), fitted.labels_)
    np.testing.assert_array_equal(loaded.predict(new_images), fitted.predict(new_images))
    refitted = AEClusterer.from_checkpoint(tmp_path / "model.pth").fit(images)
    np.testing.assert_array_equal(refitted.labels_, fitted.labels_)
    loaded.save(tmp_path / "again.pth")
    np.testing.assert_array_equal(AEClusterer.from_checkpoint(tmp_path / "again.pth").predict(new_images),
                                  fitted.predict(new_images))


def test_save_never_overwrites_its_own_checkpoint_and_checks_the_extension(tmp_path, two_groups,
                                                                           trained_checkpoint):
    source = tmp_path / "encoder.pth"
    source.write_bytes(trained_checkpoint.read_bytes())
    fitted = AEClusterer.from_checkpoint(source).fit(two_groups[0])
    with pytest.raises(UserInputError, match="is also the input"):
        fitted.save(source)
    with pytest.raises(UserInputError, match="a .csv name for the checkpoint output"):
        fitted.save(tmp_path / "model.csv")
    assert source.read_bytes() == trained_checkpoint.read_bytes() and not (tmp_path / "model.csv").exists()
    fitted.save(tmp_path / "model.csv", force=True)
    np.testing.assert_array_equal(AEClusterer.from_checkpoint(tmp_path / "model.csv").predict(two_groups[0]),
                                  fitted.labels_)


@pytest.mark.parametrize("labels, message", [
    (lambda y: y[:-1], "y_reference: found 63 labels, expected 64"),
    (lambda y: y + 0.5, "expected shape \\(N,\\) of integer labels"),
    (lambda y: y.astype(str), "expected shape \\(N,\\) of integer labels"),
    (lambda y: y[:, None], "expected shape \\(N,\\) of integer labels"),
    (lambda y: y + 1, "y_reference: labels must lie in 0..1 to orient 2 groups, found 1..2"),
])
def test_reference_labels_are_checked_with_a_one_line_error(two_groups, trained_checkpoint, labels, message):
    images, truth = two_groups
    fitted = AEClusterer.from_checkpoint(trained_checkpoint).fit(images)
    with pytest.raises(UserInputError, match=message):
        fitted.orient_to(images, labels(truth))


def test_whole_valued_float_reference_labels_orient_like_integers(two_groups, trained_checkpoint):
    images, truth = two_groups
    as_integers = AEClusterer.from_checkpoint(trained_checkpoint).fit(images).orient_to(images, 1 - truth)
    as_floats = AEClusterer.from_checkpoint(trained_checkpoint).fit(images).orient_to(images, (1 - truth) * 1.0)
    np.testing.assert_array_equal(as_floats.labels_, as_integers.labels_)
    np.testing.assert_array_equal(as_floats.label_map_, as_integers.label_map_)


def test_plain_checkpoint_needs_fit_and_says_so(trained_checkpoint, two_groups):
    with pytest.raises(NotFittedError, match="holds no fitted groups.*Call fit"):
        AEClusterer.from_checkpoint(trained_checkpoint).predict(two_groups[0])


def test_overriding_the_recipe_of_a_saved_model_or_cloning_it_needs_fit(tmp_path, two_groups, trained_checkpoint):
    from sklearn.base import clone

    AEClusterer.from_checkpoint(trained_checkpoint).fit(two_groups[0]).save(tmp_path / "model.pth")
    with pytest.raises(NotFittedError, match="a recipe parameter differs"):
        AEClusterer.from_checkpoint(tmp_path / "model.pth", reduce="pca:3").predict(two_groups[0])
    with pytest.raises(NotFittedError, match="or the estimator was cloned"):
        clone(AEClusterer.from_checkpoint(tmp_path / "model.pth")).predict(two_groups[0])


@pytest.mark.parametrize("reduce, reason", [("pca:4,tsne:2", "t-SNE"), ("kpca:4", "KernelPCA"), ("umap:2", "UMAP")])
def test_unsavable_reductions_are_refused_with_the_reason(trained_checkpoint, reduce, reason):
    with pytest.raises(UserInputError, match=f"cannot be saved \\({reason}"):
        AEClusterer(checkpoint=trained_checkpoint, reduce=reduce).check_savable()


def test_cli_save_model_then_predict(tmp_path, image_files, trained_checkpoint, capsys):
    images_path, _ = image_files
    assert main(["cluster", str(images_path), str(trained_checkpoint), str(tmp_path / "fit.csv"),
                 "--save-model", str(tmp_path / "model.pth"), "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "model.pth"), str(images_path), str(tmp_path / "new.csv"),
                 "--quiet"]) == 0
    assert (tmp_path / "new.csv").read_text() == (tmp_path / "fit.csv").read_text()
    capsys.readouterr()
    assert main(["predict", str(trained_checkpoint), str(images_path), str(tmp_path / "no.csv")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("aecluster: error: ") and "no fitted groups" in error and "\n" not in error
    assert not (tmp_path / "no.csv").exists()
    assert main(["cluster", str(images_path), str(trained_checkpoint), str(tmp_path / "t.csv"),
                 "--reduce", "pca:2,tsne:2", "--save-model", str(tmp_path / "t.pth")]) == 2
    error = capsys.readouterr().err.strip()
    assert "t-SNE" in error and "\n" not in error
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "t.pth").exists()


def test_save_model_keeps_a_float16_encoder_in_float16(tmp_path, image_files, trained_checkpoint):
    from aecluster.deploy import make_deployable

    images_path, _ = image_files
    half = tmp_path / "half.pth"
    make_deployable(trained_checkpoint, half, "float16")
    assert main(["cluster", str(images_path), str(half), str(tmp_path / "fit.csv"),
                 "--save-model", str(tmp_path / "model.pth"), "--quiet"]) == 0
    saved = torch.load(tmp_path / "model.pth", weights_only=True)
    source = torch.load(half, weights_only=True)
    assert saved["weight_format"] == "float16" and saved["state_dict"].keys() == source["state_dict"].keys()
    assert {t.dtype for t in saved["state_dict"].values() if t.is_floating_point()} == {torch.float16}
    assert (tmp_path / "model.pth").stat().st_size < half.stat().st_size * 1.5
    assert main(["predict", str(tmp_path / "model.pth"), str(images_path), str(tmp_path / "new.csv"),
                 "--quiet"]) == 0
    assert (tmp_path / "new.csv").read_text() == (tmp_path / "fit.csv").read_text()


def test_save_model_and_csv_are_written_together_or_not_at_all(tmp_path, image_files, trained_checkpoint,
                                                                monkeypatch, capsys):
    import aecluster.csvio

    def full_disk(*_, **__):
        raise UserInputError("fit.csv: could not be written (no space left on device); nothing was changed")

    monkeypatch.setattr(aecluster.csvio, "write_predictions", full_disk)
    (tmp_path / "model.pth").write_bytes(b"the user's earlier model")
    assert main(["cluster", str(image_files[0]), str(trained_checkpoint), str(tmp_path / "fit.csv"),
                 "--save-model", str(tmp_path / "model.pth"), "--quiet"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pth"]
    assert (tmp_path / "model.pth").read_bytes() == b"the user's earlier model"


def test_predict_names_the_files_of_a_folder_like_cluster(tmp_path, two_groups, trained_checkpoint):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(two_groups[0][:12]):
        Image.fromarray(image).save(folder / f"img{index}.png")
    assert main(["cluster", str(folder), str(trained_checkpoint), str(tmp_path / "fit.csv"), "--names",
                 "--device", "cpu", "--save-model", str(tmp_path / "m.pth"), "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "m.pth"), str(folder), str(tmp_path / "new.csv"), "--names",
                 "--quiet"]) == 0
    text = (tmp_path / "new.csv").read_text()
    assert text == (tmp_path / "fit.csv").read_text() and text.splitlines()[3].endswith(",img2.png")


def test_names_that_are_not_utf8_are_written_as_escapes(tmp_path, two_groups, trained_checkpoint):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(two_groups[0][:8]):
        name = b"b\xff.png" if index == 3 else f"{index}.png".encode()
        Image.fromarray(image).save(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    assert main(["cluster", str(folder), str(trained_checkpoint), str(tmp_path / "p.csv"), "--names",
                 "--save-model", str(tmp_path / "m.pth"), "--quiet"]) == 0
    rows = (tmp_path / "p.csv").read_bytes().splitlines()
    assert rows[0] == b"id,label,file" and len(rows) == 9 and rows[-1].endswith(b",b\\xff.png")
    assert (tmp_path / "m.pth").is_file()
    np.save(tmp_path / "y.npy", np.zeros(8, dtype=np.int64))
    assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "y.npy")]) == 0


@pytest.mark.slow
def test_predict_is_the_same_whatever_the_thread_count(tmp_path, image_files, trained_checkpoint):
    images_path, _ = image_files
    AEClusterer.from_checkpoint(trained_checkpoint).fit(np.load(images_path)).save(tmp_path / "model.pth")
    outputs = []
    for threads in ("1", "2"):
        output = tmp_path / f"threads{threads}.csv"
        env = {"OMP_NUM_THREADS": threads, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-m", "aecluster", "predict", str(tmp_path / "model.pth"),
                        str(images_path), str(output), "--quiet"], check=True, env=env)
        outputs.append(output.read_text())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("method", ["kmeans", "overcluster", "scan"])
def test_three_groups_are_found_and_ordered_by_colour(tmp_path, families, trained_checkpoint, method):
    images, labels = families
    fitted = AEClusterer.from_checkpoint(trained_checkpoint, n_clusters=3, method=method,
                                         fine_clusters=9).fit(images)
    assert clustering_accuracy(fitted.labels_, labels) >= 0.95
    assert np.mean(fitted.labels_ == labels) >= 0.95  # red 0, green 1, blue 2
    fitted.save(tmp_path / "three.pth")
    new_images, new_labels = three_families(30, seed=1)
    loaded = AEClusterer.from_checkpoint(tmp_path / "three.pth")
    assert loaded.n_clusters == 3
    np.testing.assert_array_equal(loaded.predict(new_images), fitted.predict(new_images))
    assert np.mean(loaded.predict(new_images) == new_labels) >= 0.95


def test_cli_clusters_option_and_threshold_is_two_way(tmp_path, families, trained_checkpoint, capsys):
    images, labels = families
    np.save(tmp_path / "X.npy", images)
    np.save(tmp_path / "Y.npy", labels)
    assert main(["cluster", str(tmp_path / "X.npy"), str(trained_checkpoint), str(tmp_path / "p.csv"),
                 "--clusters", "3"]) == 0
    assert "images labelled 0" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "Y.npy")]) == 0
    acc = float(capsys.readouterr().out.split()[1])
    assert acc >= 0.95
    assert main(["cluster", str(tmp_path / "X.npy"), str(trained_checkpoint), str(tmp_path / "q.csv"),
                 "--clusters", "3", "--method", "threshold"]) == 2
    assert "splits two ways only" in capsys.readouterr().err
    assert main(["cluster", str(tmp_path / "X.npy"), str(trained_checkpoint), str(tmp_path / "q.csv"),
                 "--clusters", "1"]) == 2
    assert "expected an integer of at least 2" in capsys.readouterr().err


def test_accuracy_is_one_to_one_for_any_number_of_groups():
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(np.array([2, 2, 0, 0, 1, 1]), truth) == 1.0
    # A third group cannot borrow a label already matched: its items count as wrong.
    assert clustering_accuracy(np.array([0, 0, 1, 2]), np.array([0, 0, 1, 1])) == 0.75
    assert score_all(np.array([0, 1, 2, 0]), np.array([1, 1, 1, 1]))["acc"] == 0.5


def test_overcluster_merges_fine_groups_into_the_classes():
    """Five tight sub-groups per class; the fine centres merge into the two classes, and new points
    follow their nearest fine centre."""
    rng = np.random.default_rng(0)
    axes = np.eye(11) * 3  # sub-groups 4.2 apart within a class, 5.2 across (offset on axis 10)
    centres = np.concatenate([axes[:5], axes[5:10] + axes[10]])
    sub = np.arange(400) % 10
    codes = centres[sub] + rng.normal(0, 0.2, (400, 11))
    labels = (sub >= 5).astype(int)
    clusterer = OverclusterGroups(fine_clusters=20).fit(codes)
    assert clustering_accuracy(clusterer.labels_, labels) >= 0.95
    state = clusterer.get_state()
    assert set(state) >= {"centres_", "merge_"} and len(state["centres_"]) == 20
    restored = clusterer_from_state(state)
    np.testing.assert_array_equal(restored.predict(codes), clusterer.labels_)


def test_reference_groups_mode_names_groups_with_labels(families, trained_checkpoint):
    images, labels = families
    names = np.array([3, 5, 7])[labels]  # any label values are kept
    reference = np.concatenate([np.flatnonzero(labels == k)[:5] for k in range(3)])
    rest = np.setdiff1d(np.arange(len(images)), reference)
    fitted = AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster", fine_clusters=9)
    fitted.fit(images).label_from_reference(images[reference], names[reference])
    assert np.mean(fitted.predict(images[rest]) == names[rest]) >= 0.95
    np.testing.assert_array_equal(fitted.labels_, fitted.predict(images))


def test_groups_named_with_more_labels_than_groups_save_and_reload(tmp_path, families, trained_checkpoint):
    images, labels = families
    reference = np.concatenate([np.flatnonzero(labels == k)[:5] for k in range(3)])
    named = AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster", fine_clusters=9, n_clusters=2)
    named.fit(images).label_from_reference(images[reference], labels[reference] + 5)
    named.save(tmp_path / "named.pth")
    reloaded = AEClusterer.from_checkpoint(tmp_path / "named.pth", n_clusters=2)
    np.testing.assert_array_equal(reloaded.predict(images), named.labels_)
    assert set(named.labels_) == {5, 6, 7}
    with pytest.raises(UserInputError, match=r"carry the labels \[5, 6, 7\] of label_from_reference"):
        named.orient_to(images[reference], labels[reference])
    few = AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster", fine_clusters=3).fit(images)
    few.label_from_reference(images[:25], np.arange(25) % 5).save(tmp_path / "few.pth")  # 5 labels, 3 groups
    np.testing.assert_array_equal(AEClusterer.from_checkpoint(tmp_path / "few.pth").predict(images), few.labels_)
    with pytest.raises(UserInputError, match="the reference labels hold one class"):
        AEClusterer.from_checkpoint(trained_checkpoint, method="overcluster").fit(images).label_from_reference(
            images[:5], np.zeros(5, dtype=int))


def test_a_numpy_integer_seed_works_like_an_int(two_groups, trained_checkpoint):
    images = two_groups[0]
    as_numpy = AEClusterer.from_checkpoint(trained_checkpoint, method="scan", random_state=np.int64(3)).fit(images)
    as_int = AEClusterer.from_checkpoint(trained_checkpoint, method="scan", random_state=3).fit(images)
    np.testing.assert_array_equal(as_numpy.labels_, as_int.labels_)


def test_cli_reference_groups_mode_says_it_uses_labels(tmp_path, families, trained_checkpoint, capsys):
    images, labels = families
    np.save(tmp_path / "X.npy", images)
    np.save(tmp_path / "refX.npy", images[:15])
    np.save(tmp_path / "refY.npy", labels[:15])
    args = ["cluster", str(tmp_path / "X.npy"), str(trained_checkpoint), str(tmp_path / "p.csv"), "--quiet"]
    assert main(args + ["--reference", str(tmp_path / "refX.npy"), str(tmp_path / "refY.npy"),
                        "--reference-mode", "groups", "--fine-clusters", "9",
                        "--save-model", str(tmp_path / "m.pth")]) == 0
    assert "LABELS USED" in capsys.readouterr().err
    predicted = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
    assert np.mean(predicted == labels) >= 0.95
    assert main(args + ["--reference-mode", "groups"]) == 2
    assert "needs --reference" in capsys.readouterr().err


def test_hw9_best_cannot_forward_a_reference(tmp_path, image_files):
    result = subprocess.run(["bash", str(ROOT / "hw9_best.sh"), str(image_files[0]), "ckpt.pth",
                             str(tmp_path / "p.csv"), "--reference", "X", "Y", "--reference-mode", "groups"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("usage:")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_few_labels_benchmark_prints_its_table(tmp_path, families, trained_checkpoint):
    images, labels = families
    for split, index in (("train", np.arange(0, 90, 2)), ("val", np.arange(1, 90, 2))):
        np.save(tmp_path / f"{split}X.npy", images[index])
        np.save(tmp_path / f"{split}Y.npy", labels[index])
    result = subprocess.run([sys.executable, "-m", "benchmarks.few_labels", str(tmp_path),
                             "--checkpoint", str(trained_checkpoint), "--shots", "2", "--seeds", "0",
                             "--fine-clusters", "6"], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| 2 |"))
    named, logistic = (float(cell.split()[0]) for cell in row.split("|")[2:4])
    assert named >= 0.95 and logistic >= 0.95


@pytest.mark.parametrize(("change", "message"), [
    (lambda groups: groups.pop("bias_"), "fitted.groups of method 'scan' has no 'bias_'"),
    (lambda groups: groups.update(bias_=torch.zeros(3, dtype=torch.float64)), "bias_ has shape (3,), expected (2)"),
    (lambda groups: groups.update(weights_=torch.zeros(4, dtype=torch.float64)), "weights_ has shape (4,)"),
    (lambda groups: groups.update(weights_=torch.zeros(2, 7, dtype=torch.float64)),
     "weights_ has shape (2, 7), expected (2, 2)"),
])
def test_a_saved_scan_head_that_does_not_fit_is_one_line(tmp_path, image_files, trained_checkpoint, capsys,
                                                         change, message):
    images_path, _ = image_files
    assert main(["cluster", str(images_path), str(trained_checkpoint), str(tmp_path / "fit.csv"), "--method", "scan",
                 "--save-model", str(tmp_path / "model.pth"), "--quiet"]) == 0
    payload = torch.load(tmp_path / "model.pth", weights_only=True)
    change(payload["fitted"]["groups"])
    torch.save(payload, tmp_path / "broken.pth")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "broken.pth"), str(images_path), str(tmp_path / "new.csv")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("aecluster: error: ") and message in error and "\n" not in error
    assert not (tmp_path / "new.csv").exists()


def test_predict_says_which_folder_entries_it_skipped(tmp_path, image_files, trained_checkpoint, capsys):
    from PIL import Image

    images_path, _ = image_files
    AEClusterer.from_checkpoint(trained_checkpoint).fit(np.load(images_path)).save(tmp_path / "model.pth")
    folder = tmp_path / "new"
    folder.mkdir()
    for index, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        Image.new("RGB", (32, 32), colour).save(folder / f"{index}.png")
    (folder / "notes.txt").write_text("x")
    assert main(["predict", str(tmp_path / "model.pth"), str(folder), str(tmp_path / "new.csv")]) == 0
    skipped = [line for line in capsys.readouterr().err.splitlines() if "skipped 1 entries" in line]
    assert skipped == [f"aecluster: {folder}: skipped 1 entries (1 not .png/.jpg/.jpeg)"]
    assert len(read_predictions(tmp_path / "new.csv")) == 3
    assert main(["predict", str(tmp_path / "model.pth"), str(folder), str(tmp_path / "q.csv"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
