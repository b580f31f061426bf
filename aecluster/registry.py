"""The registered models: one YAML config per model (a pipeline stage) in `aecluster/configs/`.

Each file holds a model's description, architecture, training settings, clustering recipe,
teacher link and deploy format. `ModelConfig.from_mapping` is the config's schema: the one place
a config is validated, into frozen dataclasses (its training settings a `TrainSettings`, its
dictionary fit a `DictionarySettings`). `REGISTRY` reads the folder on first use, not when the
package is imported. Torch-free, so `--help`, the CLI's choices and the API read it fast. A config
that names a `teacher` is a student stage, distilled from that config's model.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, fields, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any, TypeVar

from aecluster.errors import UserInputError

CONFIG_FOLDER = Path(__file__).with_name("configs")
OPTIMIZERS = ("adamw", "sgd")
DISTILL_LOSSES = ("similarity", "codes")
AUGMENTATIONS = ("none", "flip-crop", "simclr")  # implemented in aecluster.augment
RECIPE_KEYS = ("reduce", "method", "standardize", "threshold")
WEIGHT_FORMATS = ("float32", "float16", "int8")
HARDWARE = ("cpu", "gpu", "auto")  # `aecluster train --hardware`: see resolve_hardware
# The sections of a config file; `architecture` is required.
SECTIONS = ("description", "architecture", "training", "recipe", "fallback_recipes", "fallback_model", "teacher",
            "deploy_weights", "dictionary")


@dataclass(frozen=True)
class Bounds:
    """The finite numbers a setting may take: `low` to `high`, `low` itself excluded when
    `low_open`; whole numbers only when `integer`. The one statement of a setting's range, read
    by the library's checks and by the command line's argument types alike.

    Parameters
    ----------
    low : float
        The smallest value allowed (or, with `low_open`, the bound above which values lie).
    high : float, default=math.inf
        The largest value allowed (included).
    low_open : bool, default=False
        Exclude `low` itself.
    integer : bool, default=False
        Allow whole numbers (`numbers.Integral`) only.
    """

    low: float
    high: float = math.inf
    low_open: bool = False
    integer: bool = False

    def holds(self, value: Any) -> bool:
        """Whether `value` is a number (not a bool) within the bounds; NaN and infinities are not.

        Parameters
        ----------
        value : Any
            The value to test; anything that is not a `numbers.Real` (an `Integral` with
            `integer`) fails.

        Returns
        -------
        bool
            True when `value` lies within the bounds.
        """
        kind = Integral if self.integer else Real
        if not isinstance(value, kind) or isinstance(value, bool):
            return False
        if not isinstance(value, Integral) and not math.isfinite(value):
            return False
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def describe(self) -> str:
        """The bounds in words: "a positive integer", "a number in (0, 10]".

        Returns
        -------
        str
            A phrase with its article, for messages ("expected a non-negative number").
        """
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
# The range of each numeric setting of a patch-dictionary fit (`DictionarySettings`).
DICTIONARY_BOUNDS: dict[str, Bounds] = {
    "patches": Bounds(2, integer=True),
    "whitening_eps": Bounds(0, low_open=True),
    "iterations": Bounds(1, integer=True),
}
# The range of each numeric clustering-recipe value (`encoding.check_recipe`, `AEClusterer`'s
# parameters and the clustering options' types read them).
RECIPE_BOUNDS: dict[str, Bounds] = {
    "threshold": Bounds(-1, 1),
    "n_clusters": Bounds(2, integer=True),
    "fine_clusters": Bounds(2, integer=True),
}


def bounds_interval(bounds: Bounds) -> Any:
    """A parameter's `Bounds` (a training setting's, a recipe's) as scikit-learn's parameter constraint.

    scikit-learn is imported here, not with the module, so that the registry stays quick to import.

    Parameters
    ----------
    bounds : Bounds
        The setting's range (`SETTING_BOUNDS`, `RECIPE_BOUNDS`).

    Returns
    -------
    sklearn.utils._param_validation.Interval
        The same range; infinities and NaN are refused.
    """
    from sklearn.utils._param_validation import Interval

    high = None if bounds.high == math.inf else bounds.high
    closed = {(False, True): "both", (True, True): "right", (False, False): "left", (True, False): "neither"}
    return Interval(Integral if bounds.integer else Real, bounds.low, high,
                    closed=closed[bounds.low_open, high is not None])


def check_architecture(config: dict[str, Any], where: str) -> None:
    """Refuse an architecture setting outside `ARCHITECTURE_BOUNDS` (a list one: empty, longer
    than MAX_STAGES, or with a value outside them) and a `flip_average` that is not true or
    false, naming `where` and the key, before any model is built from it.

    Parameters
    ----------
    config : dict
        Architecture settings (a config's `architecture` section without `builder`, or the
        settings a model is built with); keys without bounds other than `flip_average` are not
        checked.
    where : str
        What the settings came from, named by an error.

    Raises
    ------
    UserInputError
        One line naming `where` and the first key that is wrong.
    """
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


_TYPES = {int: (Integral,), float: (Real,), str: (str,), bool: (bool,)}


def _check_types(values: dict[str, Any], cls: type) -> None:
    """Refuse a value of the wrong type for its field of dataclass `cls`, naming the key."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints[key]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        accepted = tuple(t for option in options for t in _TYPES.get(option, (option,)) if t is not type(None))
        fits = (value is None and type(None) in options) or (
            isinstance(value, accepted) and not (isinstance(value, bool) and bool not in options))
        if not fits:
            expected = " or ".join("null" if option is type(None) else option.__name__ for option in options)
            raise UserInputError(f"{key} is {_short(value)}, expected {expected}")


def _check_bounds(settings: Any, bounds: dict[str, Bounds]) -> None:
    """Refuse a numeric field of dataclass instance `settings` outside its `bounds`, naming the key."""
    for name, allowed in bounds.items():
        value = getattr(settings, name)
        if value is not None and not allowed.holds(value):
            raise UserInputError(f"{name} is {_short(value)}, expected {allowed.describe()}")


SectionT = TypeVar("SectionT")


def _section(cls: type[SectionT], values: Any, where: str) -> SectionT:
    """An instance of settings dataclass `cls` from a mapping read from a file, its keys checked
    here and its types and ranges by `cls` itself; an error names `where`."""
    if not isinstance(values, dict):
        raise UserInputError(f"{where}: expected a mapping of settings, found {type(values).__name__}")
    names = [field.name for field in fields(cls)]
    unknown = sorted(map(str, set(values) - set(names)))
    if unknown:
        raise UserInputError(f"{where}: unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(names)}")
    try:
        return cls(**values)
    except UserInputError as error:
        raise UserInputError(f"{where}: {error}") from None


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (each registered model's config gives its own).

    Every field is checked on construction: its type, its choices (`OPTIMIZERS`,
    `DISTILL_LOSSES`, `AUGMENTATIONS`) and its range (`SETTING_BOUNDS`).

    Parameters
    ----------
    epochs : int, default=20
        Passes over the training images.
    lr : float, default=1e-3
        The peak learning rate, in (0, 10] (`schedule.warmup_cosine`: linear warm-up, then cosine
        decay to 0).
    batch_size : int, default=64
        Images per step (shrunk to the number of images when larger).
    optimizer : {"adamw", "sgd"}, default="adamw"
        AdamW, or SGD with `momentum`.
    momentum : float, default=0.9
        SGD's momentum, in [0, 1] (unused by AdamW).
    weight_decay : float, default=0.0
        The optimizer's weight decay (non-negative).
    warmup_epochs : float, optional
        Epochs of linear learning-rate warm-up; None warms up over the first 10% of steps.
    augment : {"none", "flip-crop", "simclr"}, default="none"
        How each view is augmented (`augment.augment`).
    view_size : int, default=32
        The side of each view, in pixels, in 1..32.
    views : int, optional
        Augmented views of each image per step, in 1..16; None: two with the contrastive loss,
        one without. NT-Xent pairs two views of each image, so with `contrastive_weight` above 0
        it must be 2 or None.
    noise : float, default=0.0
        The standard deviation of the Gaussian noise added to the encoder's input (denoising),
        in the units of pixels scaled to [-1, 1]; 0 adds none.
    reconstruction_weight : float, default=1.0
        Weight of the reconstruction MSE; 0 turns it off (and drops the decoder).
    contrastive_weight : float, default=0.0
        Weight of SimCLR's NT-Xent loss; 0 turns it off (and drops the projection head).
    temperature : float, default=0.5
        NT-Xent's softmax temperature (positive).
    distill_weight : float, default=0.0
        Weight of the relational distillation (`distill_loss`) when a teacher is given.
    distill_originals : int, default=0
        Images of each batch also matched unaugmented at full size against the teacher's
        latent maps (0: augmented views only).
    distill_loss : {"similarity", "codes"}, default="similarity"
        The relational distillation: the batch's pairwise cosine similarities, or each image's
        code direction (which needs the teacher's code width).
    distill_maps : float, default=0.0
        Weight of matching the whole latent map of each of the `distill_originals` images to the
        teacher's (zero without them).
    feature_regression : float, default=0.0
        Weight of the cosine regression of the student's codes, through a linear projector, onto
        the teacher's.
    seed : int, default=0
        Seed of everything random in the run, in 0..2**32 - 1.
    snapshots : int, default=10
        Evenly spaced snapshots kept in the run folder (one per step for shorter runs).

    Raises
    ------
    UserInputError
        One line naming the first field that is wrong, or the fields of a combination no
        training can use: `views` other than 2 with `contrastive_weight` above 0, or every loss
        off (`reconstruction_weight`, `contrastive_weight`, `distill_weight` and
        `feature_regression` 0, and `distill_maps` 0 or without `distill_originals`).
    """

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
        _check_types(vars(self), TrainSettings)
        for name, allowed in (("optimizer", OPTIMIZERS), ("distill_loss", DISTILL_LOSSES),
                              ("augment", AUGMENTATIONS)):
            if getattr(self, name) not in allowed:
                kind = "distillation loss" if name == "distill_loss" else name
                raise UserInputError(f"unknown {kind} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        _check_bounds(self, SETTING_BOUNDS)
        if self.contrastive_weight > 0 and self.views not in (None, 2):
            raise UserInputError(f"`views` is {self.views} with `contrastive_weight` {self.contrastive_weight:g}, "
                                 "expected 2 (NT-Xent pairs two views of each image) or `contrastive_weight` 0")
        weights = (self.reconstruction_weight, self.contrastive_weight, self.distill_weight, self.feature_regression,
                   self.distill_maps if self.distill_originals > 0 else 0)
        if not any(weight > 0 for weight in weights):
            raise UserInputError("no loss is switched on: `reconstruction_weight`, `contrastive_weight`, "
                                 "`distill_weight`, `feature_regression` and `distill_maps` (with `distill_originals`) "
                                 "are all 0, expected at least one above 0")

    @classmethod
    def from_values(cls, values: Any, where: str) -> TrainSettings:
        """Settings from a mapping read from a file (a config, a checkpoint, a stage plan).

        Parameters
        ----------
        values : Any
            The mapping read; every key, type and range is checked.
        where : str
            What the mapping was read from, named by an error.

        Returns
        -------
        TrainSettings
            The settings.

        Raises
        ------
        UserInputError
            One line naming `where` and the key, for a value that is not a mapping, an unknown
            key or a value of the wrong type or outside its range.
        """
        return _section(cls, values, where)

    @classmethod
    def for_model(cls, name: str, **overrides: Any) -> TrainSettings:
        """The registered settings of config `name`, with the non-None `overrides` applied.

        Parameters
        ----------
        name : str
            A registered config.
        **overrides : Any
            Settings that replace the config's (None: keep the config's).

        Returns
        -------
        TrainSettings
            The settings, checked.

        Raises
        ------
        UserInputError
            For an unknown config or an override of the wrong type or outside its range.
        """
        return replace(get_spec(name).settings, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class DictionarySettings:
    """How a patch-dictionary stage is fitted (`aecluster.patches`): how many random patches,
    the whitening's eps and K-means's rounds. A student dictionary merges its teacher's atoms
    with the same rounds; the seed is the stage's training seed.

    Parameters
    ----------
    patches : int, default=200_000
        How many random patches the dictionary is fitted on (at least 2).
    whitening_eps : float, default=0.1
        Added to the eigenvalues of the patches' covariance in the ZCA whitening (positive).
    iterations : int, default=10
        K-means's rounds (at least 1).

    Raises
    ------
    UserInputError
        One line naming a field of the wrong type or outside its `DICTIONARY_BOUNDS`.
    """

    patches: int = 200_000
    whitening_eps: float = 0.1
    iterations: int = 10

    def __post_init__(self) -> None:
        _check_types(vars(self), DictionarySettings)
        _check_bounds(self, DICTIONARY_BOUNDS)


def _recipe_keys(recipe: Any, where: str) -> dict[str, Any]:
    """A config's recipe mapping, its keys checked (its values are checked where it is used,
    by `encoding.check_recipe`, before any work)."""
    if not isinstance(recipe, dict) or not set(recipe) <= set(RECIPE_KEYS):
        raise UserInputError(f"{where}: {recipe!r}, expected a mapping of some of {', '.join(RECIPE_KEYS)}")
    return dict(recipe)


@dataclass(frozen=True)
class ModelConfig:
    """One registered model, as its YAML file declares it. Build one with `from_mapping`, which
    validates every section once.

    Parameters
    ----------
    name : str
        The config's name: its file's stem.
    source : Path
        The file it was read from (named by errors about it).
    description : str
        One line for `aecluster models`.
    builder : str
        The model builder, a name `aecluster.models.register_builder` registered.
    config : dict
        The builder's arguments: the `architecture` section without `builder`.
    settings : TrainSettings
        The `training` section.
    recipe : dict
        The clustering recipe (some of `RECIPE_KEYS`).
    teacher : str or None
        For a student stage, the config it is distilled from.
    deploy_weights : str or None
        The weight format the stage's output is written in (one of `WEIGHT_FORMATS`).
    dictionary_settings : DictionarySettings or None
        The `dictionary` section of a patch-dictionary config (builder 'patches').
    fallback_recipes : tuple of dict
        The recipes tried after `recipe` when its groups do not hold (patch dictionaries only).
    fallback_model : str or None
        The student config trained instead when none of a dictionary teacher's recipes holds.
    """

    name: str
    source: Path
    description: str
    builder: str
    config: dict[str, Any]
    settings: TrainSettings
    recipe: dict[str, Any]
    teacher: str | None = None
    deploy_weights: str | None = None
    dictionary_settings: DictionarySettings | None = None
    fallback_recipes: tuple[dict[str, Any], ...] = ()
    fallback_model: str | None = None

    @classmethod
    def from_mapping(cls, raw: Any, source: str | Path) -> ModelConfig:
        """The config of mapping `raw`, read from file `source` (whose stem is its name).

        Parameters
        ----------
        raw : Any
            The file's content: a mapping of `SECTIONS`.
        source : str or Path
            The file it was read from, named by an error.

        Returns
        -------
        ModelConfig
            The validated config.

        Raises
        ------
        UserInputError
            One line naming `source` and the section or key, for anything that is not a
            mapping of known sections, settings of the right types within their bounds.
        """
        source = Path(source)
        if not isinstance(raw, dict):
            raise UserInputError(f"{source}: expected a mapping of settings, found {type(raw).__name__}")
        unknown = sorted(map(str, set(raw) - set(SECTIONS)))
        if unknown or "architecture" not in raw:
            raise UserInputError(f"{source}: unknown section(s) {', '.join(unknown) or 'none'}; expected architecture "
                                 f"(required) and some of {', '.join(sorted(set(SECTIONS) - {'architecture'}))}")
        architecture = raw["architecture"] or {}
        if not isinstance(architecture, dict):
            raise UserInputError(f"{source}: architecture: expected a mapping of settings, "
                                 f"found {type(architecture).__name__}")
        architecture = dict(architecture)
        builder = architecture.pop("builder", None)
        if not isinstance(builder, str):
            raise UserInputError(f"{source}: architecture.builder must name a model builder, found {builder!r}")
        settings = _section(TrainSettings, raw.get("training") or {}, f"{source}: training")
        check_architecture(architecture, f"{source}: architecture")
        dictionary = raw.get("dictionary")
        if (dictionary is not None) != (builder == "patches"):
            raise UserInputError(f"{source}: a 'dictionary' section goes with builder 'patches' (and only there)")
        dictionary_settings = (_section(DictionarySettings, dictionary, f"{source}: dictionary")
                               if dictionary is not None else None)
        recipe = _recipe_keys(raw.get("recipe") or {}, f"{source}: recipe")
        fallbacks = raw.get("fallback_recipes") or []
        if not isinstance(fallbacks, list):
            raise UserInputError(f"{source}: fallback_recipes must be a list of recipes, "
                                 f"found {type(fallbacks).__name__}")
        fallbacks = [_recipe_keys(item, f"{source}: fallback_recipes[{index}]") for index, item in enumerate(fallbacks)]
        if fallbacks and builder != "patches":
            raise UserInputError(f"{source}: fallback_recipes go with builder 'patches' "
                                 "(the recipe is chosen when its dictionary is fitted)")
        teacher, fallback_model = raw.get("teacher"), raw.get("fallback_model")
        if teacher is not None and not isinstance(teacher, str):
            raise UserInputError(f"{source}: teacher {_short(teacher)}, expected the name of a config")
        if fallback_model is not None and not (isinstance(fallback_model, str) and fallbacks and teacher):
            raise UserInputError(f"{source}: fallback_model {fallback_model!r}: expected the name of a student config, "
                                 "in a patch-dictionary student config with fallback_recipes (the model trained "
                                 "instead when none of its teacher's recipes holds)")
        weights = raw.get("deploy_weights")
        if weights is not None and weights not in WEIGHT_FORMATS:
            raise UserInputError(f"{source}: deploy_weights {weights!r}, expected one of {', '.join(WEIGHT_FORMATS)}")
        return cls(
            name=source.stem, source=source, description=str(raw.get("description", "")), builder=builder,
            config=architecture, settings=settings, recipe=recipe, teacher=teacher, deploy_weights=weights,
            dictionary_settings=dictionary_settings,
            fallback_recipes=tuple(fallbacks),
            fallback_model=fallback_model)


def load_config(path: str | Path) -> ModelConfig:
    """Read and validate one model's YAML config; its name is the file's stem.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    ModelConfig
        The config, validated by `ModelConfig.from_mapping`.

    Raises
    ------
    UserInputError
        One line naming the file, for a file that cannot be read as YAML or a config that is not valid.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserInputError(f"{path}: not a readable YAML config ({str(exc).splitlines()[0][:160]})") from None
    return ModelConfig.from_mapping(raw, path)


def load_registry(folder: Path = CONFIG_FOLDER) -> dict[str, ModelConfig]:
    """Every config in `folder`, by name; a student's teacher must be registered too.

    Parameters
    ----------
    folder : Path, default=CONFIG_FOLDER
        The folder whose *.yaml files are read (not its subfolders).

    Returns
    -------
    dict of str to ModelConfig
        Each config (`load_config`) by its file's stem, in sorted file order.

    Raises
    ------
    UserInputError
        For a config that is not valid, a `teacher` that is not registered, or a
        `fallback_model` that is not a registered student config.
    """
    registry = {path.stem: load_config(path) for path in sorted(folder.glob("*.yaml"))}
    for spec in registry.values():
        if spec.teacher is not None and spec.teacher not in registry:
            raise UserInputError(f"{spec.source}: teacher {spec.teacher!r} is not a registered config")
        fallback = registry.get(spec.fallback_model) if spec.fallback_model is not None else None
        if spec.fallback_model is not None and (fallback is None or fallback.teacher is None):
            raise UserInputError(f"{spec.source}: fallback_model {spec.fallback_model!r} is not a "
                                 "registered student config (one that names a teacher)")
    return registry


class ConfigRegistry(MutableMapping[str, ModelConfig]):
    """The configs of a folder by name, read and validated (`load_registry`) on first use, so
    that importing aecluster reads no file. Tests swap an entry with `monkeypatch.setitem`.

    Parameters
    ----------
    folder : Path
        The folder of YAML configs.

    Raises
    ------
    UserInputError
        On first use, for a config of the folder that is not valid.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._configs: dict[str, ModelConfig] | None = None

    def _loaded(self) -> dict[str, ModelConfig]:
        if self._configs is None:
            self._configs = load_registry(self.folder)
        return self._configs

    def __getitem__(self, name: str) -> ModelConfig:
        return self._loaded()[name]

    def __setitem__(self, name: str, spec: ModelConfig) -> None:
        self._loaded()[name] = spec

    def __delitem__(self, name: str) -> None:
        del self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


REGISTRY = ConfigRegistry(CONFIG_FOLDER)


def __getattr__(name: str) -> Any:
    """The constants derived from the registry, computed from it when read: `MODEL_NAMES` (every
    registered config's name) and `DISTILL_DEFAULTS` (the distillation defaults of `aecluster
    distill`: the training settings of the CNN student, configs/best_cnn.yaml)."""
    if name == "MODEL_NAMES":
        return tuple(REGISTRY)
    if name == "DISTILL_DEFAULTS":
        return get_spec("best_cnn").settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_spec(name: str) -> ModelConfig:
    """The registry entry of `name`, or a one-line error listing the registered names.

    Parameters
    ----------
    name : str
        A config's name.

    Returns
    -------
    ModelConfig
        The registered config.

    Raises
    ------
    UserInputError
        For a name that is not registered (or a registry folder with an invalid config).
    """
    if name not in REGISTRY:
        raise UserInputError(f"unknown model {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def model_config(name: str) -> dict[str, Any]:
    """The full constructor configuration of a registered model (stored in checkpoints).

    Parameters
    ----------
    name : str
        A registered config.

    Returns
    -------
    dict
        A copy of its builder's arguments (`ModelConfig.config`).

    Raises
    ------
    UserInputError
        For a name that is not registered.
    """
    return dict(get_spec(name).config)


def gpu_counterpart(name: str) -> str | None:
    """The GPU configuration of config `name`: NAME_gpu where registered (best -> best_gpu), `name`
    itself for a *_gpu config, else None.

    Parameters
    ----------
    name : str
        A config's name.

    Returns
    -------
    str or None
        The name of its GPU configuration, or None when it has none.
    """
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
