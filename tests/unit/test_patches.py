"""The patch dictionary: fit, whitening, encoding in convolution form, stages and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from aecluster.checkpoint import load_model, read_checkpoint
from aecluster.metrics import clustering_accuracy
from aecluster.models import build_model
from aecluster.patches import PatchDictionaryEncoder, fit_dictionary, merge_atoms, sample_patches
from aecluster.registry import REGISTRY, TrainSettings
from aecluster.stages import run_stages, train_stage
from tests.conftest import make_orientation_textures, unstable_first

FIT = {"patch_size": 6, "centres": 16, "patches": 5000, "normalise": 10.0, "whitening_eps": 0.1, "iterations": 5}


@pytest.fixture(scope="module")
def textures():
    return make_orientation_textures()


@pytest.fixture(scope="module")
def fitted(textures):
    return fit_dictionary(textures[0], **FIT, seed=0)


def numpy_codes(image: np.ndarray, mean: np.ndarray, whitening: np.ndarray, centres: np.ndarray,
                row: int, col: int) -> np.ndarray:
    """The triangle code of one 6x6 patch, written out in numpy from the paper's formulas."""
    patch = image[row : row + 6, col : col + 6].astype(np.float64).transpose(2, 0, 1).ravel()
    normalised = (patch - patch.mean()) / np.sqrt(patch.var(ddof=1) + 10.0)
    whitened = whitening @ (normalised - mean)
    distances = np.sqrt(((centres - whitened) ** 2).sum(axis=1))
    return np.maximum(distances.mean() - distances, 0)


def test_whitening_is_the_zca_of_the_normalised_patches(textures, fitted):
    rows = sample_patches(textures[0], FIT["patches"], 6, np.random.default_rng(0)).astype(np.float64)
    rows = (rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, ddof=1, keepdims=True) + 10.0)
    values, vectors = np.linalg.eigh(np.cov(rows, rowvar=False))
    expected = vectors @ np.diag(1 / np.sqrt(np.clip(values, 0, None) + 0.1)) @ vectors.T
    np.testing.assert_allclose(fitted.mean.numpy(), rows.mean(0), atol=1e-5)
    np.testing.assert_allclose(fitted.whitening.numpy(), expected, rtol=1e-3, atol=1e-3)
    # whitened, the patches' covariance has eigenvalues lambda / (lambda + eps): near 1 where the
    # data vary, not the raw spectrum spanning orders of magnitude
    whitened = (rows - rows.mean(0)) @ expected.T
    spectrum = np.sort(np.linalg.eigvalsh(np.cov(whitened, rowvar=False)))
    np.testing.assert_allclose(spectrum, np.sort(values / (np.clip(values, 0, None) + 0.1)), atol=1e-6)
    assert spectrum[-1] < 1.0 < values.max()


def test_encoder_gives_the_papers_triangle_codes_pooled_over_quadrants(textures, fitted):
    encoder = PatchDictionaryEncoder(6, 16, 2).load_dictionary(fitted).eval()
    images = textures[0][:3]
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        pooled = encoder.feature_map(batch).numpy()
        codes = encoder(batch).numpy()
    arrays = [fitted.mean.numpy(), fitted.whitening.numpy(), fitted.centres.numpy()]
    for index, image in enumerate(images):
        every = np.stack([[numpy_codes(image, *arrays, r, c) for c in range(27)] for r in range(27)])  # (27,27,K)
        quadrants = [every[rows, cols].mean(axis=(0, 1)) for rows in (slice(0, 14), slice(13, 27))
                     for cols in (slice(0, 14), slice(13, 27))]
        np.testing.assert_allclose(pooled[index].reshape(16, 4).T, np.stack(quadrants), rtol=1e-3, atol=1e-3)
    assert codes.shape == (3, 64) and np.allclose(codes, pooled.reshape(3, -1))


def test_fit_is_seeded_and_the_same_at_any_thread_count(textures):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = fit_dictionary(textures[0], **FIT, seed=3)
        torch.set_num_threads(1)
        second = fit_dictionary(textures[0], **FIT, seed=3)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(getattr(first, name), getattr(second, name)) for name in ("mean", "whitening", "centres"))
    assert not torch.equal(first.centres, fit_dictionary(textures[0], **FIT, seed=4).centres)


def test_codes_separate_two_textures_that_colour_cannot():
    images, labels = make_orientation_textures(200)
    fitted = fit_dictionary(images, **{**FIT, "centres": 32, "patches": 10_000, "iterations": 10}, seed=0)
    encoder = PatchDictionaryEncoder(6, 32, 2).load_dictionary(fitted).eval()
    with torch.no_grad():
        codes = encoder(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).numpy()
    groups = KMeans(2, n_init=10, random_state=0).fit_predict(PCA(8, whiten=True).fit_transform(codes))
    assert clustering_accuracy(groups, labels) >= 0.95
    colours = images.reshape(len(images), -1, 3).mean(axis=1)
    assert clustering_accuracy(KMeans(2, n_init=10, random_state=0).fit_predict(colours), labels) < 0.75


def test_merged_atoms_keep_the_whitening_and_a_copy_when_counts_match(fitted):
    merged = merge_atoms(fitted, 4, iterations=5, seed=0)
    assert merged.centres.shape == (4, 108) and torch.equal(merged.whitening, fitted.whitening)
    # each merged atom lies among the teacher's atoms: inside their bounding box
    assert bool((merged.centres >= fitted.centres.min(0).values - 1e-5).all())
    assert bool((merged.centres <= fitted.centres.max(0).values + 1e-5).all())
    assert merge_atoms(fitted, 16, iterations=5, seed=0) is fitted


def test_a_dictionary_stage_has_nothing_to_resume_and_needs_a_dictionary_teacher(tmp_path, small_dictionary,
                                                                                 trained_checkpoint):
    images = make_orientation_textures(count=16)[0]
    settings = TrainSettings.for_model("patches")
    with pytest.raises(Exception, match="fitted in one go"):
        train_stage("patches", images, None, settings, resume=tmp_path / "snapshot.pth")
    with pytest.raises(Exception, match="merges the atoms of a patch-dictionary teacher"):
        train_stage("best", images, None, settings, teacher=load_model(trained_checkpoint)[0])


def test_shipped_dictionary_config_fits_the_size_budget():
    model = build_model("best")
    assert REGISTRY["best"].deploy_weights == "float16"
    assert sum(p.numel() for p in model.parameters()) <= 100_000
    assert 2 * sum(p.numel() for p in model.parameters()) <= 225_000


def test_the_estimator_fits_a_dictionary_and_places_new_images(small_dictionary):
    from aecluster import AEClusterer

    images, labels = make_orientation_textures(200)
    clusterer = AEClusterer(model="patches", reduce="wpca:8", standardize=False, random_state=0).fit(images)
    assert clustering_accuracy(clusterer.labels_, labels) >= 0.95
    new_images, new_labels = make_orientation_textures(60, seed=1)
    assert clustering_accuracy(clusterer.predict(new_images), new_labels) >= 0.95
    assert clusterer.transform(images[:3]).shape == (3, 8)


def test_a_dictionary_recipe_more_stable_than_the_cnns_keeps_the_dictionary_student(
        tmp_path, small_dictionary, tiny_cnn_pair, monkeypatch, stage_log):
    images, _ = make_orientation_textures(200)
    calls = unstable_first(monkeypatch, (0.6, 0.9999))  # the fallback recipe beats any CNN row here
    model, recipe = run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    assert read_checkpoint(tmp_path / "best.pth")["model"] == "best"
    # judged: the dictionary teacher (made unstable), the CNN teacher; the student keeps the teacher's atoms
    assert (tmp_path / "best_run" / "fallback_teacher.pth").is_file() and len(calls) == 2
    assert "of the first teacher kept" in stage_log.text and recipe["reduce"] == "wpca:4"


def test_a_stable_dictionary_trains_no_cnn(tmp_path, small_dictionary, tiny_cnn_pair):
    images, _ = make_orientation_textures(200)
    run_stages("best", images, tmp_path / "best.pth", TrainSettings.for_model("best"), progress=False)
    assert read_checkpoint(tmp_path / "best.pth")["model"] == "best"
    assert not (tmp_path / "best_run" / "fallback_teacher.pth").exists()
