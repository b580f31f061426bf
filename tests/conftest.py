"""Shared fixtures: small synthetic image sets with an obvious structure of two or three groups."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from aecluster.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def folder_state(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` (hidden ones too): its type, and its content's hash if a file."""
    state = {}
    for path in sorted(folder.rglob("*")):
        info = os.lstat(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else None
        state[str(path.relative_to(folder))] = (stat.S_IFMT(info.st_mode), digest,
                                                os.readlink(path) if path.is_symlink() else None)
    return state


def run_main(argv: list, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """`aecluster ARGV` run in this process: its exit code and what it printed to stderr."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, fragment: str, folder: Path, before: dict) -> None:
    """Exit 2, one line holding `fragment`, and the folder as it was (no output)."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("aecluster: error:"), err
    assert fragment in lines[0], err
    assert folder_state(folder) == before


def make_two_group_images(count: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Half smooth green/blue gradients (label 1), half grey high-contrast stripes (label 0)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    images = np.empty((count, 32, 32, 3), dtype=np.uint8)
    ramp = np.linspace(0, 1, 32)[:, None]
    for index, label in enumerate(labels):
        if label:
            base = np.stack([0.2 * ramp, 0.5 + 0.4 * ramp, 0.7 - 0.3 * ramp], axis=-1) * np.ones((32, 32, 1))
        else:
            stripes = (np.arange(32)[None, :] // rng.integers(2, 5)) % 2
            base = np.repeat((0.3 + 0.5 * stripes * np.ones((32, 1)))[..., None], 3, axis=-1)
        noisy = base + rng.normal(0, 0.05, base.shape)
        images[index] = np.clip(noisy * 255, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def make_colour_families(count: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Warm red/orange images (label 1) and cool blue images (label 0), each with its own hue
    jitter, coarse brightness texture and pixel noise: two groups any working pipeline separates."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    images = np.empty((count, 32, 32, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        colour = np.array([0.8, 0.35, 0.15] if label else [0.15, 0.4, 0.8]) + rng.uniform(-0.1, 0.1, 3)
        texture = np.kron(rng.normal(0, 1, (8, 8, 1)), np.ones((4, 4, 1)))
        noisy = colour * (0.8 + 0.15 * texture) + rng.normal(0, 0.06, (32, 32, 3))
        images[index] = np.clip(noisy * 255, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


# Red, green and blue families: mean colour scores (G + B - 2R) -1.2, 0.6 and 1.0, so the
# deterministic label order is red 0, green 1, blue 2.
FAMILIES = np.array([[0.8, 0.2, 0.2], [0.2, 0.7, 0.3], [0.1, 0.3, 0.9]])


def three_families(count: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Solid-colour images of three colour families, with brightness jitter and pixel noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    base = FAMILIES[labels] * rng.uniform(0.85, 1.15, (count, 1))
    images = base[:, None, None, :] + rng.normal(0, 0.05, (count, 32, 32, 3))
    return np.clip(images * 255, 0, 255).astype(np.uint8), labels


def blobs(count=60, dim=8, seed=0):
    """Codes of two Gaussian blobs 3 apart in every dimension (spread 0.3), alternating: (codes, labels)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    return rng.normal(0, 0.3, (count, dim)) + labels[:, None] * 3.0, labels


def two_bars(count=400, seed=0):
    """Two long parallel bars 2 apart: KMeans cuts them across at the middle (their widest axis),
    the split that keeps every neighbourhood whole is one bar against the other."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    codes = np.stack([rng.uniform(-10, 10, count), 2.0 * labels + rng.normal(0, 0.1, count)], axis=1)
    return codes, labels


def dark_and_light(count: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Dark grey and light grey images, alternating, with a little pixel noise: two groups any
    encoder tells apart, so that a clustering of them is known without running one. The labels
    are 1 for every light image and for every fourth dark one, 0 for the other dark images, so
    the best matching of the two groups to the labels (dark -> 0, light -> 1) gets 7/8 of them
    right: (images, labels, 0.875)."""
    rng = np.random.default_rng(seed)
    light = np.arange(count) % 2
    images = np.where(light[:, None, None, None] == 1, 200, 50) + rng.integers(-4, 5, (count, 32, 32, 3))
    labels = np.where((light == 1) | (np.arange(count) % 8 == 0), 1, 0)
    return images.astype(np.uint8), labels.astype(np.int64), 0.875


PLANTED = {0: 1, 3: 2, 1: 2}  # image -> the family its colour is pulled towards (images 0, 3: red; 1: green)


@pytest.fixture(scope="session")
def families() -> tuple[np.ndarray, np.ndarray]:
    """Three colour families (labels 0, 1, 2), with three images pulled halfway to another family
    (`PLANTED`): a gallery's borderline images are known in advance."""
    images, labels = three_families(90)
    images = images.copy()
    for index, towards in PLANTED.items():
        pulled = 0.55 * FAMILIES[labels[index]] + 0.45 * FAMILIES[towards]
        images[index] = np.clip(pulled * 255, 0, 255).astype(np.uint8)
    return images, labels


def expected_order(codes: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Typical and borderline orders per label, computed directly: every code against every centre
    (the mean code of a label), ties by index."""
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    groups = sorted(set(labels.tolist()))
    centres = np.stack([codes[labels == group].mean(axis=0) for group in groups])
    distances = np.sqrt(((codes[:, None, :] - centres[None]) ** 2).sum(axis=2))
    typical, borderline = {}, {}
    for column, group in enumerate(groups):
        members = np.flatnonzero(labels == group)
        own = distances[members, column]
        other = np.delete(distances[members], column, axis=1).min(axis=1)
        typical[group] = members[np.lexsort((members, own))].tolist()
        borderline[group] = members[np.lexsort((members, other - own))].tolist()
    return typical, borderline


@pytest.fixture(scope="session")
def two_groups() -> tuple[np.ndarray, np.ndarray]:
    return make_two_group_images()


@pytest.fixture(scope="session")
def image_files(tmp_path_factory: pytest.TempPathFactory, two_groups) -> tuple[Path, Path]:
    """(images .npy, labels .npy) on disk."""
    folder = tmp_path_factory.mktemp("data")
    images, labels = two_groups
    np.save(folder / "X.npy", images)
    np.save(folder / "Y.npy", labels)
    return folder / "X.npy", folder / "Y.npy"


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory, two_groups) -> Path:
    """An `improved` model trained for 2 epochs on the synthetic images, recipe pca:2 + kmeans."""
    from aecluster.registry import TrainSettings
    from aecluster.training import Trainer

    folder = tmp_path_factory.mktemp("ckpt")
    settings = TrainSettings.for_model("improved", epochs=2, batch_size=16)
    Trainer("improved", settings, recipe={"reduce": "pca:2", "method": "kmeans"},
            progress=False).fit(two_groups[0], folder / "model.pth")
    return folder / "model.pth"


@pytest.fixture
def tiny_gpu_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU configuration (best_gpu and its ResNet-18 teacher) shrunk to a few channels, blocks and
    steps, so that its code paths run on a CPU in seconds."""
    from dataclasses import replace

    from aecluster.registry import REGISTRY

    for name, architecture in (("resnet18_teacher", {"widths": [4, 8, 16, 32], "blocks": [1, 1, 1, 1],
                                                     "decoder_widths": [4, 4]}), ("best_gpu", {})):
        spec = REGISTRY[name]
        monkeypatch.setitem(REGISTRY, name, replace(spec, config={**spec.config, **architecture},
                                                    settings=replace(spec.settings, epochs=1, batch_size=32,
                                                                     distill_originals=32)))


def make_orientation_textures(count: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fine stripes, horizontal (label 1) or vertical (label 0), two pixels apart and faint, on a
    strong smooth gradient of random direction, brightness and tint drawn alike for both labels.
    Like photographs, the images' power is in the low frequencies; only the faint fine texture
    tells the labels apart, which is what whitening the patches brings out."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    images = np.empty((count, 32, 32, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:32, 0:32] / 31 - 0.5
    for index, label in enumerate(labels):
        angle, phase = rng.uniform(0, 2 * np.pi), rng.integers(2)
        gradient = np.cos(angle) * rows + np.sin(angle) * cols
        stripes = ((np.arange(32) + phase) % 2 - 0.5)
        texture = stripes[:, None] * np.ones((1, 32)) if label else np.ones((32, 1)) * stripes[None, :]
        colour = rng.uniform(0.35, 0.65) + rng.uniform(-0.05, 0.05, 3)
        image = colour + rng.uniform(0.3, 0.6) * gradient[..., None] + 0.06 * texture[..., None]
        images[index] = np.clip(image * 255, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


@pytest.fixture
def small_dictionary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch-dictionary pair ('patches' teacher, 'best' student) with 32 atoms fitted on 10,000
    patches and KMeans on 8 whitened dimensions, so that it fits and clusters in a second."""
    from dataclasses import replace

    from aecluster.registry import REGISTRY, DictionarySettings

    for name in ("patches", "best"):
        spec = REGISTRY[name]
        monkeypatch.setitem(REGISTRY, name, replace(
            spec, config={**spec.config, "centres": 32},
            dictionary_settings=DictionarySettings(patches=10_000, whitening_eps=0.1, iterations=10),
            recipe={**spec.recipe, "reduce": "wpca:8", "method": "kmeans"},
            fallback_recipes=({"reduce": "wpca:4", "method": "kmeans", "standardize": False},)))



# The ways `corrupt_field` spoils a field of a file's dictionary.
CORRUPTIONS = ("wrong type", "missing", "non-finite", "absurd shape")


def spoiled(value: object, kind: str) -> object:
    """`value` spoiled in way `kind` (not "missing"): a value of another type, NaN (a tensor of
    NaN in a tensor's place), or a tensor of 2**20 x 2**20 values over one stored value."""
    if kind == "wrong type":
        return 7 if isinstance(value, str) else "x"
    if kind == "non-finite":
        return torch.full(value.shape, float("nan")) if isinstance(value, torch.Tensor) else float("nan")
    return torch.zeros(1, 1).expand(2**20, 2**20)


def parent_of(payload: dict, field: tuple) -> dict | list:
    """The dictionary or list that holds `payload`'s field at the path `field`."""
    for key in field[:-1]:
        payload = payload[key]
    return payload


def corrupt_field(payload: dict, field: tuple, kind: str) -> None:
    """Spoil `payload`'s field at the path `field` (keys, and numbers of list items) in way
    `kind` of CORRUPTIONS, in place."""
    target = parent_of(payload, field)
    if kind == "missing":
        target.pop(field[-1])
    else:
        target[field[-1]] = spoiled(target[field[-1]], kind)


def field_cases(fields: list[tuple], harmless: set[tuple[tuple, str]]) -> list:
    """pytest parameters (field, corruption) for every field of `fields` spoiled in every way of
    CORRUPTIONS, less the `harmless` pairs (an optional field left out, say), which a file may
    have by design."""
    return [pytest.param(field, kind, id=f"{'/'.join(map(str, field))}: {kind}")
            for field in fields for kind in CORRUPTIONS if (field, kind) not in harmless]


def spoil_file(source: Path, field: tuple, kind: str, target: Path) -> Path:
    """`target`: the file `source` with its dictionary's `field` spoiled in way `kind`."""
    payload = torch.load(source, weights_only=True)
    corrupt_field(payload, field, kind)
    torch.save(payload, target)
    return target


def four_groups_against_three_labels() -> tuple[np.ndarray, np.ndarray]:
    """(predicted, truth) of 30 images: group 2 is label 0, group 0 label 1, group 1 label 2; a
    fourth group (3) of four label-0 images is left unmatched, and two label-1 images sit in label
    2's group: 24 of 30 images are matched."""
    truth = np.repeat([0, 1, 2], 10)
    predicted = np.repeat([2, 0, 1], 10)
    predicted[:4] = 3
    predicted[10:12] = 1
    return predicted, truth


# A checkpoint and ways to spoil it: tests/unit/test_checkpoint.py reads them with the library,
# tests/cli/test_cluster.py gives them to the commands.

FIRST = "encoder.features.0.0.weight"  # (16, 3, 3, 3) in model 'improved'


@pytest.fixture(scope="module")
def payload() -> dict:
    """An untrained 'improved' checkpoint's dictionary (nothing here runs far enough to encode)."""
    from aecluster.checkpoint import make_payload
    from aecluster.models import build_model
    from aecluster.registry import model_config

    torch.manual_seed(0)
    model = build_model("improved")
    return make_payload(model, "improved", model_config("improved"), {"reduce": "pca:2", "method": "kmeans"}, 1)


@pytest.fixture
def folder(tmp_path: Path, payload: dict) -> Path:
    """A folder with images and the good checkpoint, m.pth."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    torch.save(payload, tmp_path / "m.pth")
    return tmp_path


def replace_tensor(value):
    return lambda p: p["state_dict"].__setitem__(FIRST, value(p["state_dict"][FIRST]))


def nested_in_itself(depth: int) -> list:
    """A list holding one list twice, `depth` levels down (2**depth items to a naive walk)."""
    nested: list = []
    for _ in range(depth):
        nested = [nested, nested]
    return nested


def self_nested(depth):
    """A change setting the payload's notes to `nested_in_itself(depth)`."""
    def change(p):
        p["notes"] = nested_in_itself(depth)
    return change


def corrupt_checkpoint(payload: dict, change, path: Path) -> None:
    """Save a copy of `payload` after `change` to `path`."""
    copy = {**payload, "state_dict": dict(payload["state_dict"]), "config": dict(payload["config"])}
    change(copy)
    torch.save(copy, path)


# Saved models and ways to spoil them: tests/unit/test_saved_model.py loads them with
# `AEClusterer.from_checkpoint`, tests/cli/test_cluster.py with `predict`.

METHODS = ("kmeans", "overcluster", "scan", "threshold")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder with 24 images (x.npy), an untrained encoder (m.pth) and one saved model per
    method (s_METHOD.pth, recipe l2,wpca:4, fine groups 4) with its labels (o_METHOD.csv), as
    `cluster --save-model` writes them."""
    from aecluster.api import AEClusterer
    from aecluster.checkpoint import make_payload
    from aecluster.clustering import scan
    from aecluster.csvio import write_predictions
    from aecluster.models import build_model
    from aecluster.registry import model_config

    folder = tmp_path_factory.mktemp("saved")
    images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "x.npy", images)
    torch.manual_seed(0)
    torch.save(make_payload(build_model("improved"), "improved", model_config("improved"), {}, 1), folder / "m.pth")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "SCAN_STEPS", 20)  # a scan head fitted in a moment; its quality is not tested
        for method in METHODS:
            fitted = AEClusterer.from_checkpoint(folder / "m.pth", reduce="l2,wpca:4", method=method,
                                                 fine_clusters=4).fit(images)
            fitted.save(folder / f"s_{method}.pth")
            write_predictions(folder / f"o_{method}.csv", fitted.labels_)
    return folder


def wpca(fitted):
    return fitted["reduction"]["links"][1]


# (case, method of the saved model, change of its `fitted` entry, message fragment)
SAVED_MODEL_CORRUPTIONS = [
    ("no PCA components", "kmeans", lambda f: wpca(f).pop("components"),
     "fitted.reduction.links.1 has no 'components'"),
    ("shift a string", "kmeans", lambda f: f["reduction"].update(standardize=True, shift="abc"),
     "fitted.reduction.shift is a str, expected a tensor"),
    ("groups a tensor", "kmeans", lambda f: f.update(groups=torch.zeros(3)),
     "fitted.groups is a tensor, expected a dictionary"),
    ("no groups", "kmeans", lambda f: f.pop("groups"), "fitted has no 'groups'"),
    ("reduction a list", "kmeans", lambda f: f.update(reduction=[1]), "fitted.reduction is a list"),
    ("NaN head weights", "scan", lambda f: f["groups"]["weights_"].fill_(float("nan")),
     "fitted.groups.weights_ is a tensor holding NaN or infinite values"),
    ("infinite head bias", "scan", lambda f: f["groups"]["bias_"].fill_(float("inf")), "NaN or infinite"),
    ("NaN PCA components", "kmeans", lambda f: wpca(f)["components"].fill_(float("nan")),
     "fitted.reduction.links.1.components is a tensor holding NaN"),
    ("NaN threshold", "threshold", lambda f: f["groups"].update(threshold=float("nan")),
     "fitted.groups.threshold: nan is not a cosine-similarity threshold"),
    ("threshold 5", "threshold", lambda f: f["groups"].update(threshold=5.0), "5.0 is not a cosine-similarity"),
    ("components wider than the codes", "kmeans", lambda f: wpca(f).update(components=torch.zeros(4, 65)),
     "fitted.reduction.links.1.components has shape (4, 65), expected (N, 64)"),
    ("whitening scale of zero", "kmeans", lambda f: wpca(f)["scale"].zero_(),
     "scale holds values that are not positive"),
    ("centres of another width", "kmeans", lambda f: f["groups"].update(centres_=torch.zeros(2, 5)),
     "fitted.groups.centres_ has shape (2, 5), expected (2, 4)"),
    ("negative merged group", "overcluster", lambda f: f["groups"]["merge_"].fill_(-1), "negative group numbers"),
    ("merge into more groups than labels", "overcluster", lambda f: f["groups"]["merge_"].fill_(7),
     "fitted.label_map holds 2 labels for 8 groups"),
    ("label_map of fractions", "kmeans", lambda f: f.update(label_map=torch.tensor([0.5, 1.0])),
     "fitted.label_map is of dtype float32, expected integers"),
    ("three labels for two groups", "kmeans", lambda f: f.update(label_map=torch.tensor([0, 1, 2])),
     "fitted.label_map holds 3 labels for 2 groups"),
    ("n_clusters a string", "kmeans", lambda f: f["groups"].update(n_clusters="2"),
     "fitted.groups.n_clusters: '2' is not a whole number"),
    ("method spectral", "kmeans", lambda f: f["groups"].update(method="spectral"), "unknown method 'spectral'"),
    ("random_state negative", "kmeans", lambda f: f["groups"].update(random_state=-1), "random_state is -1"),
    ("unsavable t-SNE chain", "kmeans", lambda f: f["reduction"].update(spec="tsne:2"),
     "a fitted 'tsne' reduction cannot be saved"),
    ("a link too few", "kmeans", lambda f: f["reduction"]["links"].pop(), "is not a list of the 2 links"),
    ("a link of another kind", "kmeans", lambda f: f["reduction"].update(spec="l2,pca:4"),
     "is a 'wpca' link where the chain names 'pca'"),
    ("a list nested 40 deep in itself", "kmeans", lambda f: f["reduction"].update(links=nested_in_itself(40)),
     "nest deeper than 16 levels"),
]
SAVED_MODEL_IDS = [case for case, *_ in SAVED_MODEL_CORRUPTIONS]


def corrupt_saved_model(saved: Path, method: str, change, folder: Path) -> Path:
    """bad.pth in `folder`: the saved model of `method` after `change` of its fitted entry."""
    payload = torch.load(saved / f"s_{method}.pth", weights_only=True)
    change(payload["fitted"])
    torch.save(payload, folder / "bad.pth")
    return folder / "bad.pth"


# A training snapshot and a way to spoil it: tests/unit/test_snapshots.py reads it with the
# library, tests/cli/test_train.py gives it to `train --resume`.

@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """The newest snapshot of a two-step run of 'improved' at a quarter of its width (8, 8, 16
    channels) on 32 images (x.npy beside its run folder)."""
    from aecluster.registry import TrainSettings
    from aecluster.snapshots import newest_snapshot, run_folder
    from aecluster.training import Trainer

    folder = tmp_path_factory.mktemp("run")
    images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "x.npy", images)
    settings = TrainSettings.for_model("improved", epochs=1, batch_size=16, snapshots=1)
    Trainer("improved", settings, recipe={"reduce": "pca:2"}, progress=False,
            config={"width_multiplier": 0.25}).fit(images, folder / "m.pth")
    return newest_snapshot(run_folder(folder / "m.pth"))


def at(*keys):
    """A change setting payload[keys[0]]...[keys[-1]] to a value."""
    return lambda value: lambda payload: parent_of(payload, keys).__setitem__(keys[-1], value)


def corrupt_snapshot(snapshot: Path, change, folder: Path) -> Path:
    """bad.pth in `folder`: the snapshot's dictionary after `change`."""
    payload = torch.load(snapshot, weights_only=True)
    change(payload)
    torch.save(payload, folder / "bad.pth")
    return folder / "bad.pth"


# Quick student configs and their stages, stopped and judged at will: tests/unit/test_stages.py
# and tests/unit/test_patches.py run them with the library, tests/cli/test_train.py with the
# training commands.

@pytest.fixture
def quick_teacher(monkeypatch):
    """'best' with a 2-epoch teacher: 4 teacher steps then 2 student steps on 64 images."""
    from dataclasses import replace

    from aecluster.registry import REGISTRY

    spec = REGISTRY["teacher"]
    monkeypatch.setitem(REGISTRY, "teacher", replace(spec, settings=replace(spec.settings, epochs=2, batch_size=32)))


@pytest.fixture
def steps(monkeypatch):
    """Counts training steps; `steps.stop_at = N` makes step N behave as if SIGTERM arrived."""
    from aecluster import training

    class Steps:
        count, stop_at = 0, None

    def stop_requested(local, world, device):
        Steps.count += 1
        return Steps.count == Steps.stop_at

    monkeypatch.setattr(training, "stop_requested", stop_requested)
    return Steps


@pytest.fixture
def stage_log(caplog: pytest.LogCaptureFixture):
    """`caplog` holding the "aecluster" logger's INFO records (the library's stage lines), also where
    the command line's tests have stopped that logger propagating to the root logger."""
    package = logging.getLogger("aecluster")
    package.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="aecluster"):
            yield caplog
    finally:
        package.removeHandler(caplog.handler)


def same_weights(first, second):
    from aecluster.checkpoint import read_checkpoint

    a, b = read_checkpoint(first)["state_dict"], read_checkpoint(second)["state_dict"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def no_fallback(monkeypatch):
    """`best` without its CNN fallback: 64 random images split no way that holds, and the
    fallback's own tests are in tests/unit/test_patches.py and tests/cli/test_train.py."""
    from dataclasses import replace

    from aecluster.registry import REGISTRY

    monkeypatch.setitem(REGISTRY, "best", replace(REGISTRY["best"], fallback_model=None))


@pytest.fixture
def tiny_cnn_pair(monkeypatch):
    """The CNN pair ('teacher', 'best_cnn') that `best` falls back to, at 8-16-32 channels and one
    epoch of 50-image batches, so that it trains in seconds."""
    from dataclasses import replace

    from aecluster.registry import REGISTRY

    for name in ("teacher", "best_cnn"):
        spec = REGISTRY[name]
        monkeypatch.setitem(REGISTRY, name, replace(spec, config={**spec.config, "widths": [8, 16, 32]},
                                                    settings=replace(spec.settings, epochs=1, batch_size=50,
                                                                     distill_originals=50)))


def unstable_first(monkeypatch, agreements: tuple[float, float]) -> list[list[str]]:
    """Make the first judgement (the dictionary teacher's) find `agreements` for its two recipes
    (the same across seeds, subsamples and samples); the later ones are judged for real. Returns
    the methods of each judgement."""
    import aecluster.stages as stages

    calls: list[list[str]] = []
    real = stages.stable_recipe

    def judged(codes, recipes, seed=0, report=None):
        calls.append([recipe["method"] for recipe in recipes])
        if len(calls) > 1:
            return real(codes, recipes, seed, report)
        rows = [{"recipe": recipe, "seed_agreement": agreement, "subsample_agreement": agreement,
                 "sample_agreement": agreement} for recipe, agreement in zip(recipes, agreements, strict=True)]
        return recipes[0], rows

    monkeypatch.setattr(stages, "stable_recipe", judged)
    return calls
