"""Snapshots of a training run and resuming from them.

A run that writes OUT keeps OUT_run/ beside it: evenly spaced `step_N.pth` snapshots (model,
settings, history) and history.json. Only the newest snapshot also holds the optimizer, schedule
and objective heads that resuming needs; the older ones are weights only, so that a run's folder
stays a few times the model's size. Every random draw of a step derives from (seed, step), so
resuming from the newest snapshot reaches exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aecluster.atomic import atomic_path
from aecluster.checkpoint import make_payload, model_from_payload, read_checkpoint, save_checkpoint, skeleton_of
from aecluster.errors import UserInputError
from aecluster.registry import Bounds, TrainSettings
from aecluster.schedule import reference_state

SNAPSHOT_KEYS = ("model", "config", "step", "optimizer", "scheduler", "settings", "history")
RESUME_KEYS = ("optimizer", "scheduler", "heads")  # only the newest snapshot keeps them


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training; `snapshot` is the file to resume from.

    Parameters
    ----------
    snapshot : Path
        The snapshot written where the run stopped, kept as the `snapshot` attribute.
    """

    def __init__(self, snapshot: Path) -> None:
        super().__init__(f"training interrupted; resume with `resume` {snapshot}")
        self.snapshot = snapshot


def run_folder(output: str | Path) -> Path:
    """Where the snapshots and history of a run that ends in `output` live: OUT_run/ beside it.

    Parameters
    ----------
    output : str or Path
        The run's checkpoint, OUT.

    Returns
    -------
    Path
        The folder beside `output` named after its stem: model.pth -> model_run.
    """
    output = Path(output)
    return output.with_name(output.stem + "_run")


def teacher_path(output: str | Path) -> Path:
    """Where a student's run keeps its teacher: OUT_run/teacher.pth.

    Parameters
    ----------
    output : str or Path
        The student's checkpoint, OUT.

    Returns
    -------
    Path
        teacher.pth in OUT's run folder (`run_folder`).
    """
    return run_folder(output) / "teacher.pth"


def fallback_teacher_path(output: str | Path) -> Path:
    """Where a run keeps the teacher of its config's `fallback_model`: OUT_run/fallback_teacher.pth.

    Parameters
    ----------
    output : str or Path
        The run's checkpoint, OUT.

    Returns
    -------
    Path
        fallback_teacher.pth in OUT's run folder (`run_folder`).
    """
    return run_folder(output) / "fallback_teacher.pth"


def snapshot_path(folder: Path, step: int) -> Path:
    """The snapshot file of `step` in run folder `folder`: step_NNNNNNN.pth.

    Parameters
    ----------
    folder : Path
        The run folder (`run_folder`).
    step : int
        Steps trained when the snapshot is taken.

    Returns
    -------
    Path
        `folder` / step_NNNNNNN.pth, the step zero-padded to seven digits (more from 10,000,000
        steps on, so snapshots are ordered by the number their name holds, not by the name).
    """
    return folder / f"step_{step:07d}.pth"


def step_number(path: Path) -> int:
    """The step a step_N.pth file's name holds, so that snapshots sort by step past seven digits.

    Parameters
    ----------
    path : Path
        A snapshot file, step_N.pth.

    Returns
    -------
    int
        N; -1 for a name that holds no number.
    """
    number = path.stem.removeprefix("step_")
    return int(number) if number.isdigit() else -1


def save_snapshot(folder: Path, step: int, payload: dict[str, Any], history: dict[str, Any],
                  replace_earlier_run: bool = False) -> Path:
    """Write one snapshot and the run's history.json (each atomically), creating the folder with
    the first one (a run refused earlier leaves no folder; one whose first write fails leaves none
    it made). `replace_earlier_run` then deletes the other step_N.pth files, an earlier run's;
    otherwise the earlier snapshots are kept weights only (`keep_weights_only`).

    Parameters
    ----------
    folder : Path
        The run folder; its parent must exist.
    step : int
        Steps trained, which names the file (`snapshot_path`).
    payload : dict
        The snapshot's checkpoint dictionary.
    history : dict
        The run's history, written as history.json.
    replace_earlier_run : bool, default=False
        Delete every other step_N.pth of `folder` (the first snapshot of a fresh run).

    Returns
    -------
    Path
        The snapshot file written.

    Raises
    ------
    UserInputError
        When a file cannot be written.
    """
    made = not folder.is_dir()
    folder.mkdir(exist_ok=True)
    path = snapshot_path(folder, step)
    try:
        save_checkpoint(path, payload)
        with atomic_path(folder / "history.json") as temporary:
            temporary.write_text(json.dumps(history, indent=2))
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise
    if replace_earlier_run:
        for stale in folder.glob("step_*.pth"):
            if stale != path:
                stale.unlink()
    else:
        keep_weights_only(folder, path)
    return path


class SnapshotWriter:
    """Writes one run's snapshots into its run folder: at `settings.snapshots` evenly spaced
    steps (`due`), and where a stopped run leaves off.

    Parameters
    ----------
    folder : Path
        The run folder, OUT_run/.
    model_name : str
        The registered config being trained.
    config, recipe : dict
        The model's constructor configuration and clustering recipe, recorded in each snapshot.
    settings : TrainSettings
        The run's settings (how many snapshots, recorded for resuming).
    inputs : dict of str to str or None
        Fingerprints of the training images and the teacher (`check_inputs`).
    steps_per_epoch, total_steps : int
        The run's length, which spaces the snapshots.
    evaluate : callable, optional
        Maps the model to a validation accuracy, recorded in the history at each snapshot.
    fresh : bool
        Whether the run starts at step 0: its first snapshot then replaces an earlier run's.
    """

    def __init__(self, folder: Path, model_name: str, config: dict[str, Any], recipe: dict[str, Any],
                 settings: TrainSettings, inputs: dict[str, str | None], steps_per_epoch: int, total_steps: int,
                 evaluate: Callable[[nn.Module], float] | None = None, fresh: bool = True) -> None:
        self.folder = folder
        self.model_name, self.config, self.recipe, self.settings = model_name, config, recipe, settings
        self.inputs = inputs
        self.steps_per_epoch = steps_per_epoch
        self.evaluate = evaluate
        self.fresh = fresh
        kept = min(settings.snapshots, total_steps)  # more snapshots than steps: one per step
        self.steps = {max(1, round(total_steps * k / kept)) for k in range(1, kept + 1)}

    def due(self, step: int) -> bool:
        """Whether a snapshot is written after `step` steps.

        Parameters
        ----------
        step : int
            Steps trained so far.

        Returns
        -------
        bool
            True at the `settings.snapshots` evenly spaced steps (every step of a run with fewer).
        """
        return step in self.steps

    def write(self, step: int, model: nn.Module, heads: nn.Module, optimizer: Any, scheduler: Any,
              history: dict[str, Any], record: bool = True) -> Path:
        """Write the snapshot of `step` (`save_snapshot`) and return its path.

        Parameters
        ----------
        step : int
            Steps trained so far.
        model, heads : nn.Module
            The model and the losses' trainable heads; the model is scored in eval mode, then
            put back in training mode.
        optimizer, scheduler
            Their states go into the snapshot for resuming.
        history : dict
            The run's history; with `record`, the snapshot's entry (and score) is added to it.
        record : bool
            False for the snapshot of a stopped run, which the evenly spaced list leaves out.

        Returns
        -------
        Path
            The snapshot file.
        """
        epoch = step / self.steps_per_epoch
        if record:
            entry: dict[str, Any] = {"epoch": epoch, "step": step, "path": snapshot_path(self.folder, step).name}
            if self.evaluate is not None:
                model.eval()
                entry["val_acc"] = float(self.evaluate(model))
                model.train()
            history["checkpoints"].append(entry)
        payload = make_payload(
            model, self.model_name, self.config, self.recipe, epoch=epoch,
            extra={"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "heads": heads.state_dict(), "settings": asdict(self.settings), "history": history,
                   **self.inputs})
        path = save_snapshot(self.folder, step, payload, history, replace_earlier_run=self.fresh)
        self.fresh = False
        return path


def keep_weights_only(folder: Path, newest: Path) -> None:
    """Rewrite (atomically) each snapshot of `folder` before `newest` that still holds resume
    state without it: the optimizer's moments alone are twice the model, and only the newest
    snapshot is resumed from. Runs after `newest` is written, so a resumable snapshot always exists.

    Parameters
    ----------
    folder : Path
        The run folder.
    newest : Path
        The snapshot just written; those of lower steps lose their `RESUME_KEYS`.
    """
    for older in sorted(folder.glob("step_*.pth"), key=step_number):
        if step_number(older) >= step_number(newest):
            continue
        payload = torch.load(older, map_location="cpu", weights_only=True, mmap=True)
        if any(key in payload for key in RESUME_KEYS):
            save_checkpoint(older, {key: value for key, value in payload.items() if key not in RESUME_KEYS})


def newest_snapshot(folder: Path) -> Path | None:
    """The snapshot of the highest step in run folder `folder` (None without one).

    Parameters
    ----------
    folder : Path
        The run folder.

    Returns
    -------
    Path or None
        The step_N.pth file of the largest N, or None when there is none.
    """
    return max(folder.glob("step_*.pth"), key=step_number, default=None)


def read_snapshot(path: str | Path) -> dict[str, Any]:
    """A training snapshot's payload, or a one-line error for any other checkpoint.

    Parameters
    ----------
    path : str or Path
        A step_N.pth file.

    Returns
    -------
    dict
        The payload, checked as a checkpoint (`read_checkpoint`) and as resume state
        (`check_resume_state`).

    Raises
    ------
    UserInputError
        For an unreadable or malformed checkpoint, a weights-only (older) snapshot, a checkpoint
        that is not a snapshot (lacking a `SNAPSHOT_KEYS` entry), or resume state unlike what a
        run saves.
    """
    payload = read_checkpoint(path)
    if "step" in payload and "history" in payload and "optimizer" not in payload:
        newest = newest_snapshot(Path(path).parent)
        where = (f"the newest one, {newest}" if newest is not None and step_number(newest) > step_number(Path(path))
                 else "the newest step_N.pth of its run folder")
        raise UserInputError(f"{path}: a weights-only snapshot (step {payload['step']}): only a run's newest "
                             f"snapshot keeps the optimizer state that resuming needs; resume from {where}")
    missing = [key for key in SNAPSHOT_KEYS if key not in payload]
    if missing:
        raise UserInputError(f"{path}: not a training snapshot (no {', '.join(missing)}); resume from a "
                             "step_N.pth file in the run folder (OUT_run/, or OUT_run/teacher_run/ for a teacher)")
    check_resume_state(payload, str(path))
    return payload


def _unresumable(source: str, what: str) -> UserInputError:
    return UserInputError(f"{source}: not a resumable snapshot: {what}")


def _like(value: Any, reference: Any, where: str, source: str) -> None:
    """Refuse `value` unless it has the kind of `reference` (what this torch's optimizer or
    schedule saves there): the same keys, the same lengths, true-or-false where it has a bool,
    text where text, None where None, and non-negative numbers (whole where whole) where numbers.
    Tensors are checked by the caller, which knows their shapes."""
    if isinstance(reference, dict):
        if not isinstance(value, dict) or set(value) != set(reference):
            raise _unresumable(source, f"{where} holds {_keys(value)}, expected the keys {sorted(reference)}")
        for key, item in reference.items():
            _like(value[key], item, f"{where}.{key}", source)
    elif isinstance(reference, list | tuple):
        if not isinstance(value, list | tuple) or len(value) != len(reference):
            raise _unresumable(source, f"{where} is {value!r:.60}, expected {len(reference)} values")
        for index, (item, expected) in enumerate(zip(value, reference, strict=True)):
            _like(item, expected, f"{where}.{index}", source)
    elif isinstance(reference, bool | str) or reference is None:
        if type(value) is not type(reference):
            raise _unresumable(source, f"{where} is {value!r:.60}, expected {type(reference).__name__}")
    elif not (number := Bounds(0, integer=isinstance(reference, int))).holds(value):
        raise _unresumable(source, f"{where} is {value!r:.60}, expected {number.describe()}")


def _keys(value: Any) -> str:
    """The keys of a dictionary, or what else `value` is, for a message."""
    return f"the keys {sorted(map(str, value))[:8]}" if isinstance(value, dict) else f"a {type(value).__name__}"


def parameter_shapes(payload: dict[str, Any], source: str) -> list[tuple[int, ...]]:
    """The shapes of the parameters a run's optimizer steps, in its order: those of the model's
    parts that the snapshot holds, then those of the losses' heads.

    Parameters
    ----------
    payload : dict
        A snapshot's payload; its "state_dict", "model", "config" and "heads" are read.
    source : str
        The file it was read from, named by an error.

    Returns
    -------
    list of tuple of int
        One shape per parameter the optimizer steps.

    Raises
    ------
    UserInputError
        When the snapshot's settings do not build its model (`skeleton_of`).
    """
    parts = {key.split(".")[0] for key in payload["state_dict"]}
    model = skeleton_of(payload, source).named_parameters()
    return ([tuple(parameter.shape) for name, parameter in model if name.split(".")[0] in parts]
            + [tuple(tensor.shape) for tensor in payload.get("heads", {}).values()])


def _check_optimizer(saved: Any, reference: dict[str, Any], shapes: list[tuple[int, ...]], source: str) -> None:
    """Refuse a saved optimizer state unlike `reference` (`schedule.reference_state`) for
    parameters of `shapes`: its groups must hold the reference's settings and number every
    parameter once, its per-parameter state the reference's entries at each parameter's shape."""
    if not isinstance(saved, dict) or set(saved) != {"state", "param_groups"} \
            or not isinstance(saved["param_groups"], list) or not isinstance(saved["state"], dict):
        raise _unresumable(source, f"optimizer holds {_keys(saved)}, expected a 'state' and a list of 'param_groups'")
    settings = {key: value for key, value in reference["param_groups"][0].items() if key != "params"}
    numbered: list[Any] = []
    for index, group in enumerate(saved["param_groups"]):
        where = f"optimizer.param_groups.{index}"
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise _unresumable(source, f"{where} holds {_keys(group)}, expected settings and a list of 'params'")
        _like({key: value for key, value in group.items() if key != "params"}, settings, where, source)
        numbered += group["params"]
    if len(saved["param_groups"]) != len(reference["param_groups"]) or numbered != list(range(len(shapes))):
        raise _unresumable(source, f"its optimizer steps {len(numbered)} parameters in {len(saved['param_groups'])} "
                                   f"groups, but its model and heads have {len(shapes)} parameters (one group)")
    entry = next(iter(reference["state"].values()), {})
    for number, state in saved["state"].items():
        where = f"optimizer.state.{number}"
        if not entry or not isinstance(number, int) or not 0 <= number < len(shapes):
            raise _unresumable(source, f"{where} is the state of no parameter of its optimizer")
        if not isinstance(state, dict) or set(state) != set(entry):
            raise _unresumable(source, f"{where} holds {_keys(state)}, expected the keys {sorted(entry)}")
        for key, expected in entry.items():
            _check_state_value(state[key], expected, shapes[number], f"{where}.{key}", source)


def _check_state_value(value: Any, expected: Any, shape: tuple[int, ...], where: str, source: str) -> None:
    """One value of a parameter's optimizer state, against the reference's: a floating tensor
    of the parameter's shape (of no dimensions where the reference's has none, a step count)."""
    if not isinstance(expected, torch.Tensor):
        _like(value, expected, where, source)
        return
    wanted = () if expected.ndim == 0 else shape
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or tuple(value.shape) != wanted:
        found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise _unresumable(source, f"{where} is {found}, expected a floating tensor of shape {wanted}")


def check_resume_state(payload: dict[str, Any], source: str) -> None:
    """Refuse, before anything is built or trained, a snapshot (as `read_checkpoint` has checked
    it) whose resume fields are not what a run saves: `config` a dictionary, `step` a whole
    number, `settings` valid `TrainSettings`, `history` JSON-ready lists of epochs and
    checkpoints, `heads` tensors, and the optimizer and schedule states of this torch's
    optimizer and schedule for those settings (`schedule.reference_state`) over the model's
    and heads' parameters, the schedule at the snapshot's step.

    Parameters
    ----------
    payload : dict
        A snapshot's payload, holding every `SNAPSHOT_KEYS` entry.
    source : str
        The file it was read from, named by an error.

    Raises
    ------
    UserInputError
        One line naming the first resume field that is not what a run saves.
    """
    if not isinstance(payload["config"], dict):
        raise _unresumable(source, f"'config' is {payload['config']!r:.60}, expected a dictionary")
    if not Bounds(0, integer=True).holds(payload["step"]):
        raise _unresumable(source, f"'step' is {payload['step']!r:.60}, expected {Bounds(0, integer=True).describe()}")
    settings = settings_of(payload, source)
    _check_history(payload["history"], source)
    heads = payload.get("heads", {})
    if not isinstance(heads, dict) or not all(isinstance(tensor, torch.Tensor) for tensor in heads.values()):
        raise _unresumable(source, f"'heads' is {_keys(heads)}, expected a dictionary of tensors")
    optimizer, scheduler = reference_state(settings)
    _check_optimizer(payload["optimizer"], optimizer, parameter_shapes(payload, source), source)
    _like(payload["scheduler"], scheduler, "scheduler", source)
    if payload["scheduler"]["last_epoch"] != payload["step"]:
        raise _unresumable(source, f"its schedule is at step {payload['scheduler']['last_epoch']}, the snapshot at "
                                   f"step {payload['step']}")


def _check_history(history: Any, source: str) -> None:
    """Refuse a history that a resumed run could not extend and write as history.json."""
    if not isinstance(history, dict) or not all(
            isinstance(history.get(key), list) and all(isinstance(entry, dict) for entry in history[key])
            for key in ("epochs", "checkpoints")):
        raise _unresumable(source, "'history' is not a dictionary whose 'epochs' and 'checkpoints' are lists of "
                                   "dictionaries")
    try:
        json.dumps(history, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _unresumable(source, f"'history' is not plain JSON data ({str(exc)[:80]})") from None


@dataclass(frozen=True)
class Snapshot:
    """A training snapshot read once (`open_snapshot`): the path it was named by, for messages,
    and its payload, handed down the stages so that no one reads the file again.

    Parameters
    ----------
    source : str or Path
        The snapshot's path, as given.
    payload : dict
        Its payload, as `read_snapshot` returns it.
    """

    source: str | Path
    payload: dict[str, Any]


def open_snapshot(resume: str | Path | Snapshot | None) -> Snapshot | None:
    """`resume` as a `Snapshot`: a path is read (`read_snapshot`), a `Snapshot` or None is kept.

    Parameters
    ----------
    resume : str, Path, Snapshot or None
        A snapshot file, a snapshot already read, or None (no resume).

    Returns
    -------
    Snapshot or None
        The snapshot, or None when `resume` is None.

    Raises
    ------
    UserInputError
        When a path is not a resumable snapshot (`read_snapshot`).
    """
    if resume is None or isinstance(resume, Snapshot):
        return resume
    return Snapshot(resume, read_snapshot(resume))


def settings_of(payload: dict[str, Any], source: str | Path) -> TrainSettings:
    """The training settings a checkpoint, snapshot or stage plan was made with (defaults for
    settings that did not exist yet), every key, type and range checked, or a one-line error.

    Parameters
    ----------
    payload : dict
        A checkpoint or snapshot payload, or a stage plan; its "settings" mapping is read.
    source : str or Path
        What it was read from, named by an error.

    Returns
    -------
    TrainSettings
        The settings (`TrainSettings.from_values`).

    Raises
    ------
    UserInputError
        When "settings" is missing or not valid settings.
    """
    if "settings" not in payload:
        raise UserInputError(f"{source}: its training settings are missing")
    return TrainSettings.from_values(payload["settings"], f"{source}: settings")


def check_inputs(snapshot: Snapshot, inputs: dict[str, str | None]) -> None:
    """Refuse to resume a run on other training images, or distilled from another teacher, than
    the snapshot's (fingerprints `images` from `images_digest`, `teacher` from `weights_digest`;
    a snapshot from before fingerprints were kept is trusted).

    Parameters
    ----------
    snapshot : Snapshot
        The snapshot resumed from.
    inputs : dict of str to str or None
        This run's fingerprints, by key "images" and "teacher" (None: no teacher); a key the
        snapshot does not record is not checked.

    Raises
    ------
    UserInputError
        When a fingerprint differs from the snapshot's.
    """
    advice = {"images": ("set of training images", "resume with the images the run had"),
              "teacher": ("teacher", "resume with the teacher the run was distilled from (a student "
                                     "stage keeps it in OUT_run/teacher.pth)")}
    for key, value in inputs.items():
        recorded = snapshot.payload.get(key, value)
        if recorded != value:
            noun, hint = advice[key]
            raise UserInputError(f"{snapshot.source}: a different {noun} from the run's (fingerprint "
                                 f"{value or 'none'}; the run's {recorded or 'none'}); {hint}")


def restore(snapshot: Snapshot, model_name: str, model: nn.Module, heads: nn.Module,
            optimizer: Any, scheduler: Any, total_steps: int,
            inputs: dict[str, str | None]) -> tuple[int, dict[str, Any]]:
    """Load a snapshot's state into a fresh run; return (step reached, history so far). `inputs`
    are the fingerprints of this run's training images and teacher (`check_inputs`).

    Parameters
    ----------
    snapshot : Snapshot
        The snapshot to resume from (`open_snapshot`).
    model_name : str
        The config this run trains; the snapshot must be of it.
    model : nn.Module
        The run's freshly built model; its weights are replaced by the snapshot's.
    heads : nn.Module
        The losses' trainable heads; their state is replaced by the snapshot's "heads".
    optimizer, scheduler
        The run's optimizer and learning-rate schedule; their states are replaced.
    total_steps : int
        The run's length; the snapshot's step may not be beyond it.
    inputs : dict of str to str or None
        This run's fingerprints (`check_inputs`).

    Returns
    -------
    step : int
        The step the snapshot was taken at, which the run continues from.
    history : dict
        The run's history up to that step.

    Raises
    ------
    UserInputError
        For a snapshot of another model, of other images or teacher, or beyond `total_steps`,
        whose settings and weights do not build its model (`model_from_payload`), or whose heads
        do not fit this run's.
    """
    payload, source = snapshot.payload, snapshot.source
    if payload["model"] != model_name:
        raise UserInputError(f"{source}: snapshot of model {payload['model']!r}, but `model` is {model_name!r}")
    check_inputs(snapshot, inputs)
    step = int(payload["step"])
    if step > total_steps:
        raise UserInputError(f"{source}: snapshot is at step {step}, beyond this run's {total_steps} steps; "
                             "resume with the training images the interrupted run had")
    model.load_state_dict(model_from_payload(payload, str(source)).state_dict())
    try:
        heads.load_state_dict(payload.get("heads", {}))
    except RuntimeError as exc:
        raise _unresumable(str(source), f"its losses' heads do not fit this run's "
                                        f"({str(exc).splitlines()[0][:120]})") from None
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    return step, payload["history"]
