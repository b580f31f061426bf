"""Saved models: a checkpoint that also holds its fitted reduction and groups (`fitted`), as
tensors and plain values that `torch.load(weights_only=True)` reads, nothing pickled.

`fitted_state` writes them (`AEClusterer.save`); `fitted_parts` is their one reader: it checks
every part (types, shapes against the encoder's code width and each other, finite numbers,
group counts) before rebuilding the reduction and the groups, so that `read_checkpoint`, the
command line and `AEClusterer.from_checkpoint(...).predict` refuse the same files in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aecluster.clustering import ESTIMATORS, GroupsEstimator, clusterer_from_state
from aecluster.encoding import recipe_value_problem
from aecluster.errors import UserInputError
from aecluster.reduction import ReducerChain, check_savable, parse_chain
from aecluster.registry import SETTING_BOUNDS


@dataclass(frozen=True)
class FittedParts:
    """What a saved model adds to its encoder: the fitted reduction, the fitted groups, and the
    label of each group.

    Attributes
    ----------
    reducer : ReducerChain
        The fitted reduction of the codes.
    clusterer : GroupsEstimator
        The fitted clustering of the reduced codes.
    label_map : ndarray of shape (G,)
        The output label of each group number the clusterer gives (int64).
    """

    reducer: ReducerChain
    clusterer: GroupsEstimator
    label_map: np.ndarray


def as_tensors(value: Any) -> Any:
    """numpy arrays inside nested dicts/lists as torch tensors (what `weights_only` loading allows).

    Parameters
    ----------
    value : Any
        A value, or dicts, lists and tuples of values, nested.

    Returns
    -------
    Any
        The same structure with each ndarray as a tensor (sharing memory when contiguous), each
        numpy scalar as a Python scalar and each tuple as a list; other values as they are.
    """
    if isinstance(value, dict):
        return {key: as_tensors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_tensors(item) for item in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value.item() if isinstance(value, np.generic) else value


def as_arrays(value: Any) -> Any:
    """Inverse of `as_tensors`.

    Parameters
    ----------
    value : Any
        A value, or dicts and lists of values, nested (as `torch.load` returns a saved model's
        `fitted` entry).

    Returns
    -------
    Any
        The same structure with each tensor as an ndarray (`Tensor.numpy`); other values as they are.
    """
    if isinstance(value, dict):
        return {key: as_arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_arrays(item) for item in value]
    return value.numpy() if isinstance(value, torch.Tensor) else value


def fitted_state(parts: FittedParts) -> dict[str, Any]:
    """The `fitted` entry of a saved model: `parts` as tensors and plain values.

    Parameters
    ----------
    parts : FittedParts
        The fitted reduction, groups and labels.

    Returns
    -------
    dict
        "reduction" (`ReducerChain.get_state`), "groups" (`GroupsEstimator.get_state`) and
        "label_map", with arrays as tensors (`as_tensors`).
    """
    return as_tensors({"reduction": parts.reducer.get_state(), "groups": parts.clusterer.get_state(),
                       "label_map": parts.label_map})


def _kind(value: Any) -> str:
    """"a tensor", "a str": what `value` is, as a file holds it."""
    return "a tensor" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"


def _fields(value: Any, where: str, required: tuple[str, ...]) -> Mapping[str, Any]:
    """`value` if it is a dictionary holding every key of `required`, else a ValueError naming `where`."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} is {_kind(value)}, expected a dictionary")
    missing = [key for key in required if key not in value]
    if missing:
        raise ValueError(f"{where} has no {missing[0]!r}")
    return value


def _array(value: Any, where: str, shape: tuple[int | None, ...], whole: bool = False) -> np.ndarray:
    """`value` if it is an array of `shape` (None: any size of at least 1) holding finite real
    numbers (whole numbers with `whole`), else a ValueError naming `where`."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{where} is {_kind(value)}, expected a tensor")
    if value.dtype.kind not in ("iu" if whole else "f"):
        raise ValueError(f"{where} is of dtype {value.dtype}, expected {'integers' if whole else 'real numbers'}")
    if value.ndim != len(shape) or not all(got >= 1 if want is None else got == want
                                           for got, want in zip(value.shape, shape, strict=True)):
        expected = ", ".join("N" if want is None else str(want) for want in shape)
        raise ValueError(f"{where} has shape {value.shape}, expected ({expected})")
    if not whole and not np.isfinite(value).all():
        raise ValueError(f"{where} holds NaN or infinite values")
    return value


def _link(link: Any, name: str, width: int, where: str) -> int:
    """Check one fitted link of a chain over `width`-dimensional input; return its output width."""
    if _fields(link, where, ("name",))["name"] != name:
        raise ValueError(f"{where} is a {link['name']!r} link where the chain names {name!r}")
    if name == "l2":
        return width
    link = _fields(link, where, ("mean", "components", "scale") if name == "wpca" else ("mean", "components"))
    _array(link["mean"], f"{where}.mean", (width,))
    components = _array(link["components"], f"{where}.components", (None, width))
    if len(components) > width:
        raise ValueError(f"{where}.components has {len(components)} rows, more than its {width} input dimensions")
    if name == "wpca":
        scale = _array(link["scale"], f"{where}.scale", (len(components),))
        if not (scale > 0).all():
            raise ValueError(f"{where}.scale holds values that are not positive")
    return len(components)


def _reduction(state: Any, code_dim: int) -> tuple[ReducerChain, int]:
    """The fitted chain of `state` over `code_dim`-dimensional codes, and its output width."""
    state = _fields(state, "fitted.reduction", ("spec", "standardize", "shift", "scale", "links"))
    if not isinstance(state["spec"], str) or not isinstance(state["standardize"], bool):
        raise ValueError(f"fitted.reduction spec {state['spec']!r} and standardize {state['standardize']!r} are not "
                         "a reducer chain and true or false")
    links = parse_chain(state["spec"])
    check_savable(state["spec"])
    if state["standardize"]:
        _array(state["shift"], "fitted.reduction.shift", (code_dim,))
        if not (_array(state["scale"], "fitted.reduction.scale", (code_dim,)) > 0).all():
            raise ValueError("fitted.reduction.scale holds values that are not positive")
    elif state["shift"] is not None or state["scale"] is not None:
        raise ValueError("fitted.reduction.shift and scale are set, but the chain does not standardize")
    if not isinstance(state["links"], list) or len(state["links"]) != len(links):
        raise ValueError(f"fitted.reduction.links is not a list of the {len(links)} links of {state['spec']!r}")
    width = code_dim
    for index, ((name, _), link) in enumerate(zip(links, state["links"], strict=True)):
        width = _link(link, name, width, f"fitted.reduction.links.{index}")
    return ReducerChain.from_state(state, n_features_in=code_dim), width


def _groups(state: Any, width: int) -> GroupsEstimator:
    """The fitted clustering of `state` over `width`-dimensional reduced codes."""
    state = _fields(state, "fitted.groups", ("method", "threshold", "random_state", "n_clusters", "fine_clusters"))
    for key in ("method", "threshold", "n_clusters", "fine_clusters"):
        problem = recipe_value_problem(key, state[key])
        if problem:
            raise ValueError(f"fitted.groups.{key}: {problem}")
    seed = SETTING_BOUNDS["seed"]
    if state["random_state"] is not None and not seed.holds(state["random_state"]):
        raise ValueError(f"fitted.groups.random_state is {state['random_state']!r}, expected {seed.describe()}")
    method, groups = state["method"], state["n_clusters"]
    arrays = _fields(state, f"fitted.groups of method {method!r}", ESTIMATORS[method].fitted)
    if method == "kmeans":
        _array(arrays["centres_"], "fitted.groups.centres_", (groups, width))
    elif method == "overcluster":
        fine = len(_array(arrays["centres_"], "fitted.groups.centres_", (None, width)))
        if not (_array(arrays["merge_"], "fitted.groups.merge_", (fine,), whole=True) >= 0).all():
            raise ValueError("fitted.groups.merge_ holds negative group numbers")
    elif method == "threshold":
        _array(arrays["center_"], "fitted.groups.center_", (width,))
        _array(arrays["direction_"], "fitted.groups.direction_", (width,))
    else:
        _array(arrays["weights_"], "fitted.groups.weights_", (groups, width))
        _array(arrays["bias_"], "fitted.groups.bias_", (groups,))
    return clusterer_from_state(state)


def _label_map(value: Any, clusterer: GroupsEstimator) -> np.ndarray:
    """The label of each group, whole numbers: one per group, or for "overcluster" one for each
    group number its `merge_` holds (fine groups named from reference labels may leave some out)."""
    label_map = _array(value, "fitted.label_map", (None,), whole=True).astype(np.int64)
    if clusterer.method == "overcluster":
        fits, groups = len(label_map) > int(clusterer.merge_.max()), int(clusterer.merge_.max()) + 1
    else:
        fits, groups = len(label_map) == clusterer.groups, clusterer.groups
    if not fits:
        raise ValueError(f"fitted.label_map holds {len(label_map)} labels for {groups} groups")
    return label_map


def fitted_parts(fitted: Any, code_dim: int, source: str) -> FittedParts:
    """The reduction, groups and labels a saved model holds (its `fitted` entry, as loaded), each
    checked against the encoder's `code_dim` and each other before it is rebuilt; a one-line
    `UserInputError` naming `source` and the part otherwise.

    Parameters
    ----------
    fitted : Any
        The `fitted` entry as loaded (tensors and plain values, `fitted_state`'s layout).
    code_dim : int
        The width of the encoder's codes, which the reduction takes.
    source : str
        Names the file in the message.

    Returns
    -------
    FittedParts
        The rebuilt reduction, groups and labels.

    Raises
    ------
    UserInputError
        When a part is missing, of the wrong type, dtype or shape, holds NaN or infinite values,
        or names values the recipe checks refuse ("SOURCE: its fitted groups are unusable (...)").
    """
    try:
        state = as_arrays(_fields(fitted, "fitted", ("reduction", "groups", "label_map")))
        reducer, width = _reduction(state["reduction"], code_dim)
        clusterer = _groups(state["groups"], width)
        return FittedParts(reducer, clusterer, _label_map(state["label_map"], clusterer))
    except (ValueError, UserInputError) as error:
        raise UserInputError(f"{source}: its fitted groups are unusable ({str(error)[:200]}); fit the model and "
                             "save it again (`save_model`)") from None
