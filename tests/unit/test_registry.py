"""The torch-free registry: YAML stage configs validated at load, serving the CLI's names and defaults."""

import math
import subprocess
import sys
from numbers import Integral, Real
from pathlib import Path

import pytest

from aecluster.errors import UserInputError
from aecluster.registry import (
    CONFIG_FOLDER,
    REGISTRY,
    Bounds,
    ConfigRegistry,
    DictionarySettings,
    ModelConfig,
    TrainSettings,
    bounds_interval,
    load_config,
    load_registry,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_config_file_is_registered_and_students_name_registered_teachers():
    assert set(REGISTRY) == {path.stem for path in CONFIG_FOLDER.glob("*.yaml")}
    assert {"baseline", "improved", "teacher", "best", "best_cnn", "patches", "mobilenet", "plaincnn",
            "resnet18_teacher", "best_gpu"} <= set(REGISTRY)
    assert REGISTRY["best"].teacher == "patches" and REGISTRY["best_cnn"].teacher == "teacher"
    assert REGISTRY["best_gpu"].teacher == "resnet18_teacher"
    assert REGISTRY["best_gpu"].config == REGISTRY["best_cnn"].config
    assert all(spec.settings.epochs >= 1 and spec.settings.batch_size >= 1 for spec in REGISTRY.values())


def test_gpu_teacher_config_is_simclrs_cifar_recipe():
    settings = REGISTRY["resnet18_teacher"].settings
    assert (settings.optimizer, settings.lr, settings.momentum, settings.weight_decay) == ("sgd", 0.6, 0.9, 5e-4)
    assert (settings.batch_size, settings.epochs, settings.warmup_epochs, settings.temperature) == (512, 300, 10, 0.2)
    assert (settings.augment, settings.view_size) == ("simclr", 32) and settings.reconstruction_weight > 0
    assert REGISTRY["best_gpu"].settings.feature_regression > 0


def write(folder, name, text):
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


GOOD = "architecture:\n  builder: conv\n  widths: [8, 16, 32]\ntraining:\n  epochs: 3\n"


@pytest.mark.parametrize(("text", "message"), [
    (GOOD + "  epocs: 3\n", "unknown setting.*epocs"),
    (GOOD.replace("epochs: 3", "epochs: ten"), "epochs is 'ten', expected int"),
    (GOOD.replace("epochs: 3", "epochs: true"), "epochs is True, expected int"),
    (GOOD + "  optimizer: lbfgs\n", "unknown optimizer 'lbfgs'"),
    (GOOD + "recipe:\n  reducer: pca:2\n", "recipe: {.reducer.: .pca:2.}, expected a mapping"),
    (GOOD + "fallback_recipes:\n  - {method: scan}\n  - {reducer: pca:2}\n",
     r"fallback_recipes\[1\]: .*expected a mapping"),
    (GOOD + "fallback_recipes: {method: scan}\n", "fallback_recipes must be a list"),
    (GOOD + "fallback_recipes:\n  - {method: scan}\n", "fallback_recipes go with builder .patches."),
    (GOOD + "deploy_weights: float8\n", "deploy_weights 'float8'"),
    (GOOD + "teacher: [a, b]\n", "teacher \\['a', 'b'\\], expected the name of a config"),
    ("architecture: [conv]\n", "architecture: expected a mapping of settings, found list"),
    ("architecture:\n  builder: patches\ndictionary:\n  patches: 1\n",
     "dictionary: patches is 1, expected an integer of at least 2"),
    ("architecture:\n  builder: patches\ndictionary:\n  whitening_eps: none\n",
     "dictionary: whitening_eps is 'none', expected float"),
    ("architecture:\n  builder: patches\ndictionary:\n  rounds: 3\n", "dictionary: unknown setting.*rounds"),
    (GOOD + "teacher: t\nfallback_model: s\n", "fallback_model 's': expected .* with fallback_recipes"),
    ("training:\n  epochs: 3\n", "architecture \\(required\\)"),
    ("- a list\n", "expected a mapping"),
    ("architecture: [unclosed\n", "not a readable YAML config"),
])
def test_bad_config_is_one_line_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, "broken", text)
    with pytest.raises(UserInputError, match=message) as error:
        load_config(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_config_is_validated_into_frozen_settings_once():
    spec = ModelConfig.from_mapping({"architecture": {"builder": "patches"}, "dictionary": {"patches": 1000}},
                                    "somewhere/mine.yaml")
    assert (spec.name, spec.builder, spec.config) == ("mine", "patches", {})
    assert spec.dictionary_settings == DictionarySettings(patches=1000) and spec.settings == TrainSettings()
    assert REGISTRY["best"].settings is REGISTRY["best"].settings
    with pytest.raises(AttributeError):
        spec.settings.epochs = 3  # type: ignore[misc]


def test_registry_reads_its_folder_on_first_use_and_takes_swapped_entries(tmp_path, monkeypatch):
    registry = ConfigRegistry(tmp_path)
    write(tmp_path, "broken", "- a list\n")  # written after the registry was made: read on first use
    with pytest.raises(UserInputError, match="broken.yaml: expected a mapping"):
        len(registry)
    write(tmp_path, "broken", GOOD)
    write(tmp_path, "other", GOOD)
    registry = ConfigRegistry(tmp_path)
    assert "broken" in registry and list(registry) == ["broken", "other"]
    monkeypatch.setitem(registry, "broken", registry["other"])
    assert registry["broken"].name == "other"
    monkeypatch.undo()
    assert registry["broken"].name == "broken"


def test_unknown_builder_is_one_line_error_naming_the_file(tmp_path, monkeypatch):
    from aecluster.models import build_model

    path = write(tmp_path, "odd", "architecture:\n  builder: transformer\n")
    monkeypatch.setitem(REGISTRY, "odd", load_config(path))
    with pytest.raises(UserInputError, match=r"odd.yaml: architecture.builder 'transformer' is not a model "
                                             r"builder; choose one of baseline, conv, resnet, patches") as error:
        build_model("odd")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_builder_registers_itself_once():
    from aecluster.models import BUILDERS, build_conv, register_builder

    assert BUILDERS["conv"] is build_conv
    with pytest.raises(ValueError, match="'conv' is registered twice"):
        register_builder("conv")(build_conv)


def test_derived_constants_follow_the_registry():
    from aecluster import registry

    assert registry.MODEL_NAMES == tuple(REGISTRY)
    assert registry.DISTILL_DEFAULTS == REGISTRY["best_cnn"].settings
    with pytest.raises(AttributeError):
        registry.NO_SUCH_NAME  # noqa: B018


def test_student_config_must_name_a_registered_teacher(tmp_path):
    write(tmp_path, "student", GOOD + "teacher: nobody\n")
    with pytest.raises(UserInputError, match="teacher 'nobody' is not a registered config"):
        load_registry(tmp_path)
    write(tmp_path, "nobody", GOOD)
    assert load_registry(tmp_path)["student"].teacher == "nobody"


PATCH_STUDENT = ("architecture:\n  builder: patches\ndictionary:\n  patches: 1000\nteacher: nobody\n"
                 "fallback_recipes:\n  - {method: scan}\nfallback_model: other\n")


def test_a_fallback_model_must_be_a_registered_student(tmp_path):
    write(tmp_path, "nobody", GOOD)
    write(tmp_path, "student", PATCH_STUDENT)
    with pytest.raises(UserInputError, match="fallback_model 'other' is not a registered student config"):
        load_registry(tmp_path)
    write(tmp_path, "other", GOOD)  # registered, but no student
    with pytest.raises(UserInputError, match="fallback_model 'other' is not a registered student config"):
        load_registry(tmp_path)
    write(tmp_path, "other", GOOD + "teacher: nobody\n")
    assert load_registry(tmp_path)["student"].fallback_model == "other"


def test_registry_and_help_do_not_import_torch():
    code = ("import sys, contextlib, io\n"
            "from aecluster.registry import REGISTRY\n"
            "from aecluster.cli import build_parser\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    build_parser().parse_args(['train', '--help'])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(out.getvalue())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-1500:]
    text = " ".join(result.stdout.split())
    assert "(default: improved)" in text and "(default 0; a resumed run keeps its own)" in text
    assert "training epochs (default: the model's config)" in text


@pytest.mark.parametrize("bounds, words", [
    (Bounds(0, 10, low_open=True), "a number in (0, 10]"), (Bounds(0), "a non-negative number"),
    (Bounds(0, low_open=True), "a positive number"), (Bounds(1, integer=True), "a positive integer"),
    (Bounds(2, integer=True), "an integer of at least 2"), (Bounds(0, 9, integer=True), "an integer from 0 to 9"),
])
def test_bounds_refuse_nan_infinities_and_bools_and_say_their_range(bounds, words):
    assert bounds.describe() == words
    assert bounds.holds(bounds.low + 1)
    for value in (math.nan, math.inf, -math.inf, True, "1", None, bounds.low - 1):
        assert not bounds.holds(value)


@pytest.mark.parametrize("bounds, inside, outside", [
    (Bounds(1, integer=True), [1, 10**9], [0, 1.5, math.inf]),
    (Bounds(0, 10, low_open=True), [1e-9, 10], [0, 10.5, math.nan]),
    (Bounds(-1, 1), [-1, 0.0, 1], [-1.01, 1.01]),
    (Bounds(0), [0, 2.5, 1e300], [-1e-9, math.inf, math.nan]),
])
def test_bounds_become_the_same_interval(bounds, inside, outside):
    interval = bounds_interval(bounds)  # what scikit-learn's parameter validation checks a value with
    assert interval.type is (Integral if bounds.integer else Real)
    assert all(interval.is_satisfied_by(value) for value in inside)
    assert not any(interval.is_satisfied_by(value) for value in outside)


@pytest.mark.parametrize("key, value", [("lr", math.inf), ("lr", math.nan), ("lr", 1e9), ("epochs", "10"),
                                        ("epochs", 0), ("momentum", 2.0), ("temperature", 0.0), ("views", 10**9),
                                        ("view_size", 10**6), ("seed", -1), ("noise", math.inf)])
def test_training_settings_refuse_values_outside_their_bounds(key, value):
    with pytest.raises(UserInputError, match=f"^snap.pth: {key} is ") as error:
        TrainSettings.from_values({key: value}, "snap.pth")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key, value", [("widths", [2**40, 8, 8]), ("widths", []), ("widths", [8] * 9),
                                        ("width_multiplier", math.inf), ("width_multiplier", 1e9),
                                        ("centres", 10**9), ("flip_average", "yes"), ("blocks", "2")])
def test_architecture_settings_outside_their_bounds_build_nothing(key, value):
    from aecluster.models import build_model

    name = "resnet18_teacher" if key == "blocks" else "best" if key == "centres" else "improved"
    with pytest.raises(UserInputError, match=f"^model '{name}': {key} is "):
        build_model(name, {key: value})


@pytest.mark.parametrize("views", [1, 3, 4])
def test_contrastive_training_refuses_views_other_than_two_naming_the_file(tmp_path, views):
    config = tmp_path / "odd.yaml"
    config.write_text(f"architecture:\n  builder: conv\ntraining:\n  contrastive_weight: 1.0\n  views: {views}\n")
    with pytest.raises(UserInputError) as error:
        load_config(config)
    assert str(error.value) == (f"{config}: training: `views` is {views} with `contrastive_weight` 1, expected 2 "
                                "(NT-Xent pairs two views of each image) or `contrastive_weight` 0")


def test_views_other_than_two_are_accepted_without_the_contrastive_loss():
    assert TrainSettings(views=3).views == 3
    assert TrainSettings(views=2, contrastive_weight=1.0).views == 2
    assert TrainSettings(contrastive_weight=1.0).views is None


@pytest.mark.parametrize("values", [
    {"reconstruction_weight": 0.0},
    {"reconstruction_weight": 0.0, "distill_maps": 5.0},  # map distillation without originals matches nothing
])
def test_settings_without_any_loss_are_refused_naming_the_weights(values):
    with pytest.raises(UserInputError) as error:
        TrainSettings.from_values(values, "run.yaml: training")
    assert str(error.value) == (
        "run.yaml: training: no loss is switched on: `reconstruction_weight`, `contrastive_weight`, `distill_weight`, "
        "`feature_regression` and `distill_maps` (with `distill_originals`) are all 0, expected at least one above 0")


@pytest.mark.parametrize("values", [{"reconstruction_weight": 0.0, "contrastive_weight": 0.5},
                                    {"reconstruction_weight": 0.0, "distill_weight": 1.0},
                                    {"reconstruction_weight": 0.0, "feature_regression": 1.0},
                                    {"reconstruction_weight": 0.0, "distill_maps": 1.0, "distill_originals": 8}])
def test_settings_with_one_loss_switched_on_are_accepted(values):
    assert TrainSettings(**values).reconstruction_weight == 0.0


@pytest.mark.slow
def test_importing_the_estimators_reads_no_config():
    # A fresh interpreter, so that configs read by other tests do not count.
    code = ("import aecluster.api, aecluster.stages\n"
            "from aecluster.registry import REGISTRY\n"
            "assert REGISTRY._configs is None, 'configs read at import'\n"
            "aecluster.api.ImageEncoder(model='best')._validate_params()\n"
            "assert REGISTRY._configs is not None, 'configs not read when validating'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-1500:]
