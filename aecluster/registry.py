"""The registered models: one YAML config per model (a pipeline stage) in `aecluster/configs/`.

Each file holds a model's description, architecture, training settings, clustering recipe,
teacher link and deploy format; loading validates it into a `ModelConfig` (with its training
settings a `TrainSettings`). Torch-free, so `--help`, the CLI's choices and the API read it fast.
A config that names a `teacher` is a student stage, distilled from that config's model.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from aecluster.errors import UserInputError

CONFIG_FOLDER = Path(__file__).with_name("configs")
OPTIMIZERS = ("adamw", "sgd")
DISTILL_LOSSES = ("similarity", "codes")
AUGMENTATIONS = ("none", "flip-crop", "simclr")  # implemented in aecluster.augment
RECIPE_KEYS = ("reduce", "method", "standardize", "threshold")
WEIGHT_FORMATS = ("float32", "float16", "int8")
HARDWARE = ("cpu", "gpu", "auto")  # `aecluster train --hardware`: see resolve_hardware


@dataclass(frozen=True)
class Bounds:
    """The finite numbers a setting may take: `low` to `high`, `low` itself excluded when
    `low_open`; whole numbers only when `integer`. The one statement of a setting's range, read
    by the library's checks and by the command line's argument types alike."""

    low: float
    high: float = math.inf
    low_open: bool = False
    integer: bool = False

    def holds(self, value: Any) -> bool:
        """Whether `value` is a number (not a bool) within the bounds; NaN and infinities are not."""
        kind = Integral if self.integer else Real
        if not isinstance(value, kind) or isinstance(value, bool):
            return False
        if not isinstance(value, Integral) and not math.isfinite(value):
            return False
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def describe(self) -> str:
        """The bounds in words: "a positive integer", "a number in (0, 10]"."""
        kind = "integer" if self.integer else "number"
        if self.high == math.inf and self.low == 0:
            return f"a {'positive' if self.low_open else 'non-negative'} {kind}"
        if self.high == math.inf and self.integer:
            return "a positive integer" if self.low == 1 else f"an integer of at least {self.low}"
        if self.high == math.inf:
            return f"a number {'above' if self.low_open else 'of at least'} {self.low:g}"
        if self.integer:
            return f"an integer from {self.low} to {self.high}"
        return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


# The range of each numeric training setting (`TrainSettings`; the training options' types read them).
SETTING_BOUNDS: dict[str, Bounds] = {
    "epochs": Bounds(1, integer=True),
    "lr": Bounds(0, 10, low_open=True),
    "batch_size": Bounds(1, integer=True),
    "momentum": Bounds(0, 1),
    "weight_decay": Bounds(0),
    "warmup_epochs": Bounds(0),
    "view_size": Bounds(1, 32, integer=True),
    "views": Bounds(1, 16, integer=True),
    "noise": Bounds(0),
    "reconstruction_weight": Bounds(0),
    "contrastive_weight": Bounds(0),
    "temperature": Bounds(0, low_open=True),
    "distill_weight": Bounds(0),
    "distill_originals": Bounds(0, integer=True),
    "distill_maps": Bounds(0),
    "feature_regression": Bounds(0),
    "seed": Bounds(0, 2**32 - 1, integer=True),
    "snapshots": Bounds(1, integer=True),
}
# The range of each numeric architecture setting (a model's `config`); a list setting (widths,
# blocks) holds one value per stage, at most MAX_STAGES of them.
ARCHITECTURE_BOUNDS: dict[str, Bounds] = {
    "widths": Bounds(1, 8192, integer=True),
    "decoder_widths": Bounds(1, 8192, integer=True),
    "blocks": Bounds(1, 64, integer=True),
    "projection_dim": Bounds(0, 8192, integer=True),
    "width_multiplier": Bounds(0, 16, low_open=True),
    "patch_size": Bounds(1, 32, integer=True),
    "centres": Bounds(2, 65536, integer=True),
    "grid": Bounds(1, 32, integer=True),
    "normalise": Bounds(0, low_open=True),
}
MAX_STAGES = 8


def check_architecture(config: dict[str, Any], where: str) -> None:
    """Refuse an architecture setting outside `ARCHITECTURE_BOUNDS` (a list one: empty, longer
    than MAX_STAGES, or with a value outside them) and a `flip_average` that is not true or
    false, naming `where` and the key, before any model is built from it."""
    for key, value in config.items():
        bounds = ARCHITECTURE_BOUNDS.get(key)
        if key == "flip_average" and not isinstance(value, bool):
            raise UserInputError(f"{where}: flip_average is {value!r}, expected true or false")
        if bounds is None:
            continue
        if key in ("widths", "decoder_widths", "blocks"):
            if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_STAGES \
                    or not all(bounds.holds(item) for item in value):
                raise UserInputError(f"{where}: {key} is {_short(value)}, expected a list of 1 to {MAX_STAGES} "
                                     f"values, each {bounds.describe()}")
        elif not bounds.holds(value):
            raise UserInputError(f"{where}: {key} is {_short(value)}, expected {bounds.describe()}")


def _short(value: Any) -> str:
    """`repr(value)`, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (each registered model's config gives its own)."""

    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_epochs: float | None = None
    augment: str = "none"
    view_size: int = 32
    views: int | None = None
    noise: float = 0.0
    reconstruction_weight: float = 1.0
    contrastive_weight: float = 0.0
    temperature: float = 0.5
    distill_weight: float = 0.0
    distill_originals: int = 0
    distill_loss: str = "similarity"
    distill_maps: float = 0.0
    feature_regression: float = 0.0
    seed: int = 0
    snapshots: int = 10

    def __post_init__(self) -> None:
        for name, allowed in (("optimizer", OPTIMIZERS), ("distill_loss", DISTILL_LOSSES),
                              ("augment", AUGMENTATIONS)):
            if getattr(self, name) not in allowed:
                kind = "distillation loss" if name == "distill_loss" else name
                raise UserInputError(f"unknown {kind} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        _check_types(vars(self), TrainSettings, "training settings")
        for name, bounds in SETTING_BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not bounds.holds(value):
                raise UserInputError(f"{name} is {_short(value)}, expected {bounds.describe()}")

    @classmethod
    def from_values(cls, values: Any, where: str) -> TrainSettings:
        """Settings from a mapping read from a file (a config, a checkpoint, a stage plan), every
        key, type and range checked; an error names `where`."""
        if not isinstance(values, dict):
            raise UserInputError(f"{where}: expected a mapping of settings, found {type(values).__name__}")
        _check_types(values, cls, where)
        try:
            return cls(**values)
        except UserInputError as error:
            raise UserInputError(f"{where}: {error}") from None

    @classmethod
    def for_model(cls, name: str, **overrides: Any) -> TrainSettings:
        """The registered settings of `name`, with non-None overrides applied."""
        values = {**get_spec(name).training, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)


@dataclass
class DictionarySettings:
    """How a patch-dictionary stage is fitted (`aecluster.patches`): how many random patches,
    the whitening's eps and K-means's rounds. A student dictionary merges its teacher's atoms
    with the same rounds; the seed is the stage's training seed."""

    patches: int = 200_000
    whitening_eps: float = 0.1
    iterations: int = 10

    def __post_init__(self) -> None:
        if not (self.patches >= 2 and self.whitening_eps > 0 and self.iterations >= 1):
            raise UserInputError(f"dictionary settings patches {self.patches}, whitening_eps {self.whitening_eps}, "
                                 f"iterations {self.iterations}: expected at least 2 patches, a positive eps and "
                                 "at least 1 iteration")


@dataclass(frozen=True)
class ModelConfig:
    """One registered model: how to build it (`builder` + `config`), train it and cluster with it."""

    name: str
    description: str
    builder: str
    config: dict[str, Any]
    training: dict[str, Any]
    recipe: dict[str, Any]
    teacher: str | None = None
    deploy_weights: str | None = None
    dictionary: dict[str, Any] | None = None
    fallback_recipes: tuple[dict[str, Any], ...] = ()
    fallback_model: str | None = None

    @property
    def settings(self) -> TrainSettings:
        """The config's training settings (validated; a fresh object each time)."""
        return TrainSettings(**self.training)

    @property
    def dictionary_settings(self) -> DictionarySettings | None:
        """How a patch-dictionary stage is fitted (None for a model trained by gradient)."""
        return DictionarySettings(**self.dictionary) if self.dictionary is not None else None


_TYPES = {int: (Integral,), float: (Real,), str: (str,), bool: (bool,)}


def _check_types(values: dict[str, Any], cls: type, where: str) -> None:
    """Refuse keys `cls` does not have and values of the wrong type, naming the file and key."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise UserInputError(f"{where}: unknown setting(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(hints)}")
    for key, value in values.items():
        hint = hints[key]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        accepted = tuple(t for option in options for t in _TYPES.get(option, (option,)) if t is not type(None))
        fits = (value is None and type(None) in options) or (
            isinstance(value, accepted) and not (isinstance(value, bool) and bool not in options))
        if not fits:
            expected = " or ".join("null" if option is type(None) else option.__name__ for option in options)
            raise UserInputError(f"{where}: {key} is {_short(value)}, expected {expected}")


def _recipe_keys(recipe: Any, where: str) -> dict[str, Any]:
    """A config's recipe mapping, its keys checked (its values are checked where it is used,
    by `encoding.check_recipe`, before any work)."""
    if not isinstance(recipe, dict) or not set(recipe) <= set(RECIPE_KEYS):
        raise UserInputError(f"{where}: {recipe!r}, expected a mapping of some of {', '.join(RECIPE_KEYS)}")
    return dict(recipe)


def load_config(path: str | Path) -> ModelConfig:
    """Read and validate one model's YAML config; its name is the file's stem."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserInputError(f"{path}: not a readable YAML config ({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: expected a mapping of settings, found {type(raw).__name__}")
    allowed = {"description", "architecture", "training", "recipe", "fallback_recipes", "fallback_model", "teacher",
               "deploy_weights", "dictionary"}
    unknown = sorted(set(raw) - allowed)
    if unknown or "architecture" not in raw:
        raise UserInputError(f"{path}: unknown section(s) {', '.join(unknown) or 'none'}; expected "
                             f"architecture (required) and some of {', '.join(sorted(allowed - {'architecture'}))}")
    architecture = dict(raw["architecture"] or {})
    builder = architecture.pop("builder", None)
    if not isinstance(builder, str):
        raise UserInputError(f"{path}: architecture.builder must name a model builder, found {builder!r}")
    training = dict(raw.get("training") or {})
    TrainSettings.from_values(training, f"{path}: training")
    check_architecture(architecture, f"{path}: architecture")
    dictionary = raw.get("dictionary")
    if (dictionary is not None) != (builder == "patches"):
        raise UserInputError(f"{path}: a 'dictionary' section goes with builder 'patches' (and only there)")
    if dictionary is not None:
        dictionary = dict(dictionary)
        _check_types(dictionary, DictionarySettings, f"{path}: dictionary")
        try:
            DictionarySettings(**dictionary)
        except UserInputError as error:
            raise UserInputError(f"{path}: dictionary: {error}") from None
    recipe = _recipe_keys(raw.get("recipe") or {}, f"{path}: recipe")
    fallbacks = raw.get("fallback_recipes") or []
    if not isinstance(fallbacks, list):
        raise UserInputError(f"{path}: fallback_recipes must be a list of recipes, found {type(fallbacks).__name__}")
    fallbacks = tuple(_recipe_keys(item, f"{path}: fallback_recipes[{index}]") for index, item in enumerate(fallbacks))
    if fallbacks and builder != "patches":
        raise UserInputError(f"{path}: fallback_recipes go with builder 'patches' "
                             "(the recipe is chosen when its dictionary is fitted)")
    fallback_model = raw.get("fallback_model")
    if fallback_model is not None and not (isinstance(fallback_model, str) and fallbacks and raw.get("teacher")):
        raise UserInputError(f"{path}: fallback_model {fallback_model!r}: expected the name of a student config, in a "
                             "patch-dictionary student config with fallback_recipes (the model trained instead when "
                             "none of its teacher's recipes holds)")
    weights = raw.get("deploy_weights")
    if weights is not None and weights not in WEIGHT_FORMATS:
        raise UserInputError(f"{path}: deploy_weights {weights!r}, expected one of {', '.join(WEIGHT_FORMATS)}")
    return ModelConfig(name=path.stem, description=str(raw.get("description", "")), builder=builder,
                       config=architecture, training=training, recipe=recipe, teacher=raw.get("teacher"),
                       deploy_weights=weights, dictionary=dictionary, fallback_recipes=fallbacks,
                       fallback_model=fallback_model)


def load_registry(folder: Path = CONFIG_FOLDER) -> dict[str, ModelConfig]:
    """Every config in `folder`, by name; a student's teacher must be registered too."""
    registry = {path.stem: load_config(path) for path in sorted(folder.glob("*.yaml"))}
    for spec in registry.values():
        if spec.teacher is not None and spec.teacher not in registry:
            raise UserInputError(f"{folder / spec.name}.yaml: teacher {spec.teacher!r} is not a registered config")
        fallback = registry.get(spec.fallback_model) if spec.fallback_model is not None else None
        if spec.fallback_model is not None and (fallback is None or fallback.teacher is None):
            raise UserInputError(f"{folder / spec.name}.yaml: fallback_model {spec.fallback_model!r} is not a "
                                 "registered student config (one that names a teacher)")
    return registry


REGISTRY: dict[str, ModelConfig] = load_registry()
MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)
# The distillation defaults of `aecluster distill`: those of the CNN student (configs/best_cnn.yaml).
DISTILL_DEFAULTS: TrainSettings = REGISTRY["best_cnn"].settings


def get_spec(name: str) -> ModelConfig:
    """The registry entry of `name`, or a one-line error listing the registered names."""
    if name not in REGISTRY:
        raise UserInputError(f"unknown model {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def model_config(name: str) -> dict[str, Any]:
    """The full constructor configuration of a registered model (stored in checkpoints)."""
    return dict(get_spec(name).config)


def gpu_counterpart(name: str) -> str | None:
    """The GPU configuration of config `name`: NAME_gpu where registered (best -> best_gpu), `name`
    itself for a *_gpu config, else None."""
    if name.endswith("_gpu"):
        return name
    return f"{name}_gpu" if f"{name}_gpu" in REGISTRY else None


def resolve_hardware(name: str, hardware: str, cuda: bool) -> str:
    """The config that trains model `name` on the given hardware.

    A model may have a GPU configuration (config NAME_gpu) beside its CPU one: the choice between
    them is the hardware's, so that one command (train_best.sh) fits either machine.

    Parameters
    ----------
    name : str
        A registered config.
    hardware : str
        One of `HARDWARE`: 'cpu' the config as named, 'gpu' its GPU configuration, 'auto' the GPU
        configuration when `cuda` and one is registered, else the config as named.
    cuda : bool
        Whether a CUDA device will train it.

    Returns
    -------
    str
        The name of the config to train.

    Raises
    ------
    UserInputError
        For an unknown `hardware`, or 'gpu' for a model without a GPU configuration.
    """
    if hardware not in HARDWARE:
        raise UserInputError(f"unknown `hardware` {hardware!r}; choose one of {', '.join(HARDWARE)}")
    counterpart = gpu_counterpart(get_spec(name).name)
    if hardware == "gpu" and counterpart is None:
        raise UserInputError(f"`hardware` gpu: model {name!r} has no GPU configuration (no config {name}_gpu.yaml)")
    if hardware == "gpu" or (hardware == "auto" and cuda and counterpart is not None):
        return counterpart
    return name
