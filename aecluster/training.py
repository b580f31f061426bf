"""The training loop, shaped as torchvision's classification reference: `train_one_epoch` runs
one pass over the batches (forward, losses, backward, step, schedule, progress), and
`Trainer.fit` sets a run up, calls it for each epoch and writes OUT.

All randomness of a step derives from (seed, step): the epoch's shuffling from
`default_rng([seed, epoch])`, augmentation and noise from a generator seeded with the step.
A snapshot therefore resumes to exactly the weights an uninterrupted run reaches. The losses
are in `losses`, snapshots in `snapshots`, processes and signals in `distributed`, time
estimates in `plans`, and the teacher -> student order of stages in `stages`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aecluster.atomic import check_writable
from aecluster.augment import augment
from aecluster.checkpoint import deployable_payload, make_payload, save_checkpoint, weights_digest
from aecluster.data import compute_in_batches, images_digest, to_tensor
from aecluster.devices import resolve_device
from aecluster.distributed import StopRequest, any_process, broadcast_buffers, distributed_rank, stop_requested
from aecluster.errors import UserInputError
from aecluster.losses import Step, WeightedLosses, build_losses
from aecluster.models import Autoencoder, build_model, latent_map_shape
from aecluster.registry import TrainSettings, get_spec, model_config
from aecluster.schedule import make_optimizer, make_scheduler
from aecluster.snapshots import (
    Snapshot,
    SnapshotWriter,
    TrainingInterrupted,
    open_snapshot,
    restore,
    run_folder,
    snapshot_path,
)


def epoch_batches(n_images: int, settings: TrainSettings) -> tuple[int, int]:
    """The batch size and the number of steps of an epoch on `n_images` images: a batch larger
    than the data shrinks to it, and the last, partial batch is dropped.

    Parameters
    ----------
    n_images : int
        The number of training images (at least 1).
    settings : TrainSettings
        The run's settings; `batch_size` is read.

    Returns
    -------
    batch_size : int
        min(`settings.batch_size`, `n_images`).
    steps : int
        Full batches in an epoch: `n_images // batch_size`.
    """
    batch_size = min(settings.batch_size, n_images)
    return batch_size, n_images // batch_size


def about(seconds: float) -> str:
    """A duration as the plan prints it: "about 40 s", "about 12 min", "about 31 h".

    Parameters
    ----------
    seconds : float
        The duration, in seconds.

    Returns
    -------
    str
        "under a second" below 1 s, whole seconds below 90 s, whole minutes below 2 h, else
        whole hours.
    """
    if seconds < 1:
        return "under a second"
    if seconds >= 2 * 3600:
        return f"about {seconds / 3600:.0f} h"
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def pace_line(name: str, epoch: int, epochs: int, steps_run: int, seconds: float, steps_left: int,
              full_epoch: bool = True) -> str:
    """The line a run prints at its first epoch's end: what that epoch took and, at its pace, how
    long the `steps_left` will take (the plan's estimate, refreshed from measured time).
    `full_epoch` is False when a resumed run ran only the epoch's last `steps_run` steps.

    Parameters
    ----------
    name : str
        The config being trained.
    epoch : int
        The epoch just ended, from 1.
    epochs : int
        The run's epochs.
    steps_run : int
        Steps run in `seconds` (at least 1).
    seconds : float
        The time they took.
    steps_left : int
        Steps of the run still to train.
    full_epoch : bool, default=True
        Whether `steps_run` is the whole epoch.

    Returns
    -------
    str
        "train 'NAME': epoch E of EPOCHS took S s: about T left" (`about`).
    """
    done = f"epoch {epoch} of {epochs}" if full_epoch else f"the last {steps_run} steps of epoch {epoch} of {epochs}"
    return f"train {name!r}: {done} took {seconds:.0f} s: {about(seconds / steps_run * steps_left)} left"


def view_count(settings: TrainSettings) -> int:
    """Augmented views per image: `views`, else two with NT-Xent (it pairs them) and one without.

    Parameters
    ----------
    settings : TrainSettings
        The run's settings; `views` and `contrastive_weight` are read.

    Returns
    -------
    int
        The number of views of each image in a step.
    """
    if settings.views is not None:
        return settings.views
    return 2 if settings.contrastive_weight > 0 else 1


class Learner(nn.Module):
    """The model plus the losses' trainable heads: one module for the optimizer and for
    DistributedDataParallel, whose forward is the model's.

    Parameters
    ----------
    model : Autoencoder
        The model being trained.
    heads : nn.ModuleDict
        The losses' trainable heads by loss name (`WeightedLosses.heads`).
    """

    def __init__(self, model: Autoencoder, heads: nn.ModuleDict) -> None:
        super().__init__()
        self.model = model
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The model's forward pass (`Autoencoder.forward`).

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Input views, in [-1, 1] (plus any denoising noise).

        Returns
        -------
        codes : torch.Tensor of shape (N, code_dim)
            The pooled codes.
        reconstruction : torch.Tensor of shape (N, 3, H, W) or None
            The decoder's output; None without a decoder.
        projection : torch.Tensor of shape (N, projection_dim) or None
            The projection head's output; None without a head.
        """
        return self.model(x)


def training_step(
    learner: nn.Module, batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
    losses: WeightedLosses, teacher: Autoencoder | None = None, teacher_maps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted total loss, each loss's value) for one batch.

    Denoising (Vincent et al. 2008): the encoder sees the views plus Gaussian noise, the decoder
    must return the clean views.

    Parameters
    ----------
    learner : nn.Module
        The `Learner`, or DistributedDataParallel around it.
    batch : torch.Tensor of shape (B, 3, 32, 32)
        The step's images, in [-1, 1], on the training device.
    settings : TrainSettings
        The run's settings: augmentation, views, view size and noise.
    generator : torch.Generator
        The CPU generator of the step's augmentation and noise.
    losses : WeightedLosses
        The run's losses.
    teacher : Autoencoder, optional
        The model distilled from.
    teacher_maps : torch.Tensor of shape (M, C, H, W), optional
        The teacher's latent maps of the first M images of `batch`.

    Returns
    -------
    total : torch.Tensor of shape ()
        The weighted sum of the losses, to back-propagate.
    parts : dict of str to float
        Each loss's unweighted value, by name.
    """
    views = [augment(batch, settings.augment, generator, settings.view_size) for _ in range(view_count(settings))]
    clean = torch.cat(views)
    noisy = clean
    if settings.noise > 0:
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        noisy = clean + settings.noise * noise
    if clean.device.type == "cuda":
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    codes, reconstruction, projection = learner(noisy)
    inner = getattr(learner, "module", learner)  # the Learner itself under DistributedDataParallel
    return losses(Step(inner.model.encoder, batch, clean, codes, reconstruction, projection, teacher, teacher_maps))


def latent_maps(model: Autoencoder, images: np.ndarray, device: torch.device, batch_size: int = 512,
                progress: bool = False) -> torch.Tensor:
    """The model's latent maps of uint8 images as given, float16 (N,C,H,W) on `device`.

    A teacher's maps of the training images never change, so a student's distillation computes
    them once instead of in every epoch (a tenth of a student's step on two CPU cores).

    Parameters
    ----------
    model : Autoencoder
        The model; it is moved to `device` and put in eval mode.
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8.
    device : torch.device
        Where the maps are computed and kept.
    batch_size : int, default=512
        Images per batch.
    progress : bool, default=False
        Draw a progress bar.

    Returns
    -------
    torch.Tensor of shape (N, C, H, W)
        The latent maps, float16.
    """
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encoder.feature_map(batch).half(), images, device,
                              batch_size, progress, desc="teacher maps")


def diverged(where: str, settings: TrainSettings, output: str | Path | None) -> UserInputError:
    """The one-line error of a run whose loss or weights stopped being finite (no OUT written).

    Parameters
    ----------
    where : str
        When it diverged, for the message ("at step 12 of 300 (loss nan)").
    settings : TrainSettings
        The run's settings; the message names its `lr`.
    output : str, Path or None
        The run's OUT, which the message says was not written; None for a run in memory.

    Returns
    -------
    UserInputError
        The error, for the caller to raise.
    """
    written = (f"; {output} was not written (snapshots in {run_folder(output)}/ may hold the diverged weights)"
               if output is not None else "")
    return UserInputError(f"training diverged {where}{written}; train again with a lower lr (now {settings.lr:g})")


@dataclass
class Run:
    """One training run's state, shared by its epochs (`train_one_epoch`).

    Parameters
    ----------
    name : str
        The registered config being trained.
    images : np.ndarray
        The training images, (N,32,32,3) uint8.
    settings : TrainSettings
        The run's settings.
    learner : Learner
        The model and the losses' heads.
    stepper : nn.Module
        What computes the forward pass: `learner`, or DistributedDataParallel around it.
    losses : WeightedLosses
        The run's losses.
    optimizer, scheduler
        The optimizer of `learner`'s parameters and its learning-rate schedule.
    device : torch.device
        Where the run trains.
    history : dict
        Each epoch's and snapshot's record, written as history.json.
    step : int
        Steps trained so far (a resumed run starts at its snapshot's).
    teacher : Autoencoder, optional
        The model distilled from.
    teacher_maps : torch.Tensor, optional
        The teacher's latent maps of every training image, when distillation reads originals.
    output : Path, optional
        Where OUT goes, named by the divergence message.
    rank, world : int
        This process's rank and the number of processes.
    """

    name: str
    images: np.ndarray
    settings: TrainSettings
    learner: Learner
    stepper: nn.Module
    losses: WeightedLosses
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    device: torch.device
    history: dict[str, Any]
    step: int = 0
    teacher: Autoencoder | None = None
    teacher_maps: torch.Tensor | None = None
    output: Path | None = None
    rank: int = 0
    world: int = 1

    @property
    def steps_per_epoch(self) -> int:
        """Full batches in an epoch (`epoch_batches`)."""
        return epoch_batches(len(self.images), self.settings)[1]

    @property
    def total_steps(self) -> int:
        """Steps of the whole run."""
        return self.settings.epochs * self.steps_per_epoch


class Meter:
    """A run's progress bar and clocks: images a second since the run started and each epoch's
    seconds, both without the time spent writing snapshots (`paused`), and whether the pace line
    is still to be printed at the end of the run's first epoch.

    Parameters
    ----------
    bar : tqdm
        The progress bar (disabled where nothing is shown).
    start : int
        The step the run starts at, from which the pace line counts.
    pace : bool
        Whether to print the pace line.
    """

    def __init__(self, bar: Any, start: int, pace: bool) -> None:
        self.bar, self.start, self.pace, self.seen = bar, start, pace, 0
        self.epoch_start, self.tick = time.perf_counter(), time.perf_counter()
        self.run_start = self.tick  # the pace line counts snapshots in, as the plan does

    def count(self, images: int) -> float:
        """Count `images` trained on; return the images a second so far.

        Parameters
        ----------
        images : int
            Images trained on in the last step (across every process).

        Returns
        -------
        float
            Images counted since the meter started, per second of training (snapshots left out).
        """
        self.seen += images
        return self.seen / max(time.perf_counter() - self.tick, 1e-9)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time spent in the block out of the rates and epoch times.

        Yields
        ------
        None
            Control, for the block that is not to be timed.
        """
        paused = time.perf_counter()
        yield
        paused = time.perf_counter() - paused
        self.tick, self.epoch_start = self.tick + paused, self.epoch_start + paused


def train_one_epoch(run: Run, epoch: int, meter: Meter, after_step: Callable[[int], None]) -> None:
    """Train `epoch`'s steps from the step `run` stands at (a resumed run starts mid-epoch).

    Each step draws its batch (this process's share of it), computes the losses, steps the
    optimizer and the schedule and updates the progress bar; then `after_step(steps done)` runs
    (snapshots, stop signals). The epoch's last step first records the epoch in the history and,
    at the end of a run's first epoch, prints the pace line.

    Parameters
    ----------
    run : Run
        The run; its `step` advances.
    epoch : int
        The epoch, from 0; it seeds the shuffling of the images.
    meter : Meter
        The run's progress bar and clocks.
    after_step : callable
        Called with the number of steps done after each step.

    Raises
    ------
    UserInputError
        When the loss stops being finite (in any process).
    """
    settings, images = run.settings, run.images
    batch_size, steps_per_epoch = epoch_batches(len(images), settings)
    total_steps = run.total_steps
    order = np.random.default_rng([settings.seed, epoch]).permutation(len(images))
    autocast = (partial(torch.autocast, "cuda", dtype=torch.bfloat16) if run.device.type == "cuda"
                else contextlib.nullcontext)
    epoch_mse = []
    for step in range(run.step, (epoch + 1) * steps_per_epoch):
        position = step - epoch * steps_per_epoch
        indices = np.sort(order[position * batch_size : (position + 1) * batch_size])[run.rank::run.world]
        batch = to_tensor(images[indices]).to(run.device)
        generator = torch.Generator().manual_seed((settings.seed * 1_000_003 + step) * run.world + run.rank)
        targets = None
        if run.teacher_maps is not None:
            targets = run.teacher_maps[torch.from_numpy(indices[: settings.distill_originals]).to(run.device)]
        with autocast():
            loss, parts = training_step(run.stepper, batch, settings, generator, run.losses, run.teacher, targets)
        value = loss.detach().item()
        if any_process(not math.isfinite(value), run.world, run.device):
            meter.bar.close()
            raise diverged(f"at step {step + 1} of {total_steps} (loss {value})", settings, run.output)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        run.step = step + 1
        mse = parts.get("reconstruction", 0.0)
        epoch_mse.append(mse)
        rate = meter.count(len(indices) * run.world)
        meter.bar.set_postfix(epoch=epoch + 1, loss=f"{value:.4f}", mse=f"{mse:.4f}", img_s=f"{rate:.0f}")
        meter.bar.update()
        if position == steps_per_epoch - 1:
            run.history["epochs"].append({"epoch": epoch + 1, "train_mse": float(np.mean(epoch_mse)),
                                          "seconds": time.perf_counter() - meter.epoch_start,
                                          "images_per_second": rate})
            meter.epoch_start = time.perf_counter()
            if meter.pace and step + 1 < total_steps:
                meter.pace = False
                steps_run = step + 1 - meter.start
                meter.bar.write(pace_line(run.name, epoch + 1, settings.epochs, steps_run,
                                          time.perf_counter() - meter.run_start, total_steps - step - 1,
                                          full_epoch=steps_run == steps_per_epoch), file=sys.stderr)
        after_step(step + 1)


class Trainer:
    """Trains a registered autoencoder on uint8 images and writes snapshots, history and OUT.

    `evaluate`, when given, maps a model to a validation accuracy recorded in the history at each
    snapshot. It is recorded only: nothing in training reads it. With a `teacher` (a trained
    model), the settings' distillation losses apply; without one they are off. A model whose
    config sets `deploy_weights` has OUT written encoder-only in that weight format; snapshots
    keep the full model (the newest also what resuming needs). On CUDA the forward pass runs
    under bf16 autocast in channels-last layout.

    Parameters
    ----------
    model_name : str
        The registered config to train.
    settings : TrainSettings
        The run's settings.
    recipe : dict, optional
        The clustering recipe recorded with the model; None takes the config's.
    device : str, optional
        The torch device; None picks one (`devices.resolve_device`).
    progress : bool, default=True
        Draw a progress bar and print the pace line.
    evaluate : callable, optional
        Maps a model to a validation accuracy, recorded at each snapshot.
    teacher : Autoencoder, optional
        A trained model to distil from; it is put in eval mode and moved to the device.
    config : dict, optional
        Architecture settings that replace the config's (`build_model`).

    Raises
    ------
    UserInputError
        For an unknown config, a device this machine or torch build does not have, or a
        teacher whose codes or maps the distillation losses cannot compare with the student's
        (distill_loss 'codes' with another code width, `distill_maps` with another latent-map
        shape).
    """

    def __init__(
        self, model_name: str, settings: TrainSettings, recipe: dict[str, Any] | None = None,
        device: str | None = None, progress: bool = True,
        evaluate: Callable[[Autoencoder], float] | None = None,
        teacher: Autoencoder | None = None, config: dict[str, Any] | None = None,
    ) -> None:
        spec = get_spec(model_name)
        self.model_name = model_name
        self.settings = settings
        self.recipe = dict(recipe or spec.recipe)
        self.device = torch.device(resolve_device(device))
        self.progress = progress
        self.evaluate = evaluate
        self.config = {**model_config(model_name), **(config or {})}
        self.teacher = self._checked(teacher).eval().to(self.device) if teacher is not None else None

    def _checked(self, teacher: Autoencoder) -> Autoencoder:
        """The teacher, if the distillation losses can compare its codes and maps with the student's."""
        student = build_model(self.model_name, self.config)
        settings = self.settings
        if settings.distill_weight > 0 and settings.distill_loss == "codes" and teacher.code_dim != student.code_dim:
            raise UserInputError(f"distill_loss 'codes': the student's codes have {student.code_dim} dimensions, "
                                 f"the teacher's {teacher.code_dim}; use distill_loss 'similarity'")
        if settings.distill_maps > 0:
            shapes = ["x".join(map(str, latent_map_shape(model))) for model in (student, teacher)]
            if shapes[0] != shapes[1]:
                raise UserInputError(f"distill_maps: the student's latent map is {shapes[0]}, the teacher's "
                                     f"{shapes[1]}; set distill_maps to 0 or use a student of the teacher's width")
        return teacher

    def fit(self, images: np.ndarray, output: str | Path | None = None,
            resume: str | Path | Snapshot | None = None) -> Autoencoder:
        """Train on `images` (N,32,32,3 uint8) and return the model.

        With `output`, also write OUT, and snapshots plus history.json in OUT_run/ beside it.
        Under `torchrun` (torch.distributed initialised) each process trains on its share of
        every batch through DistributedDataParallel, and rank 0 alone writes files. `resume`
        continues from a snapshot: its path, or the `Snapshot` a caller already read.

        Parameters
        ----------
        images : ndarray of shape (N, 32, 32, 3)
            The training images, uint8 (memory-mapped or in memory).
        output : str or Path, optional
            Where the trained model goes; None keeps it in memory and writes nothing.
        resume : str, Path or Snapshot, optional
            A snapshot of this config to continue from.

        Returns
        -------
        Autoencoder
            The trained model on the CPU in eval mode, without the parts no loss trained (the
            decoder without reconstruction, the projection head without NT-Xent).

        Raises
        ------
        UserInputError
            For an unwritable `output`, a snapshot that does not fit this run, or a run whose loss
            or weights stop being finite.
        TrainingInterrupted
            When a stop signal ends a run with `output`: it names the snapshot to resume from.
        KeyboardInterrupt
            When a stop signal ends a run without `output`.
        """
        snapshot = open_snapshot(resume)
        inputs = {"images": images_digest(images),
                  "teacher": weights_digest(self.teacher) if self.teacher is not None else None}
        if output is not None:
            output = Path(output)
            check_writable(output)
        run = self._start(images, output, snapshot, inputs)
        writer = None
        if output is not None and run.rank == 0:
            writer = SnapshotWriter(run_folder(output), self.model_name, self.config, self.recipe, self.settings,
                                    inputs, run.steps_per_epoch, run.total_steps, self.evaluate, fresh=run.step == 0)

        from tqdm.auto import tqdm

        meter = Meter(tqdm(total=run.total_steps, initial=run.step, disable=not self.progress or run.rank != 0,
                           unit="step", desc=f"train {self.model_name}", dynamic_ncols=True),
                      start=run.step, pace=self.progress and run.rank == 0)
        with StopRequest() as stop:
            for epoch in range(run.step // run.steps_per_epoch, self.settings.epochs):
                train_one_epoch(run, epoch, meter, partial(_end_of_step, run, writer, meter, stop))
        meter.bar.close()
        return self._finish(run, inputs)

    def _start(self, images: np.ndarray, output: Path | None, snapshot: Snapshot | None,
               inputs: dict[str, str | None]) -> Run:
        """A run set up: the model built from the seed, its losses and heads, the optimizer and
        schedule (restored from `snapshot`), the teacher's maps if distillation reads originals,
        and DistributedDataParallel around it all under torchrun."""
        settings, teacher = self.settings, self.teacher
        rank, world = distributed_rank()
        torch.manual_seed(settings.seed)
        model = build_model(self.model_name, self.config)
        losses = build_losses(settings, model, teacher)
        # Parts no loss trains are dropped, so that every parameter gets a gradient (as
        # DistributedDataParallel requires) and none is saved untrained.
        if "nt_xent" not in losses.names:
            model.projector = None
        if "reconstruction" not in losses.names:
            model.decoder = None
        learner = Learner(model, losses.heads()).to(self.device)
        if self.device.type == "cuda":
            learner = learner.to(memory_format=torch.channels_last)
        steps_per_epoch = epoch_batches(len(images), settings)[1]
        total_steps = settings.epochs * steps_per_epoch
        optimizer = make_optimizer(settings, learner.parameters())
        warmup = None if settings.warmup_epochs is None else round(settings.warmup_epochs * steps_per_epoch)
        scheduler = make_scheduler(optimizer, total_steps, warmup)
        history: dict[str, Any] = {"model": self.model_name, "settings": asdict(settings),
                                   "epochs": [], "checkpoints": []}
        start = 0
        if snapshot is not None:
            start, history = restore(snapshot, self.model_name, model, learner.heads, optimizer, scheduler,
                                     total_steps, inputs)
        # The teacher's maps (an encoding of every image) come after a snapshot is known to fit.
        teacher_maps = None
        if losses.needs_teacher and settings.distill_originals > 0:
            teacher_maps = latent_maps(teacher, images, self.device, progress=self.progress and rank == 0)
        stepper: nn.Module = learner
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            stepper = DistributedDataParallel(
                learner, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return Run(self.model_name, images, settings, learner, stepper, losses, optimizer, scheduler, self.device,
                   history, start, teacher, teacher_maps, output, rank, world)

    def _finish(self, run: Run, inputs: dict[str, str | None]) -> Autoencoder:
        """The trained model on the CPU in eval mode, its weights checked finite, and OUT written."""
        if run.world > 1:
            broadcast_buffers(run.learner)
        model = run.learner.model.eval().cpu().to(memory_format=torch.contiguous_format)
        if not all(bool(torch.isfinite(tensor).all()) for tensor in model.state_dict().values()
                   if tensor.is_floating_point()):
            raise diverged("in its last step (weights are not finite)", run.settings, run.output)
        if run.output is not None and run.rank == 0:
            settings = run.settings
            payload = make_payload(model, self.model_name, self.config, self.recipe,
                                   epoch=settings.epochs, extra={"settings": asdict(settings), **inputs})
            weights = get_spec(self.model_name).deploy_weights
            save_checkpoint(run.output, deployable_payload(payload, weights) if weights else payload)
        return model


def _end_of_step(run: Run, writer: SnapshotWriter | None, meter: Meter, stop: StopRequest, step: int) -> None:
    """After step `step`: the snapshot due then, if any; and, when any process got a stop signal,
    a snapshot to resume from (with an OUT) and `TrainingInterrupted` (else KeyboardInterrupt)."""
    heads, model = run.learner.heads, run.learner.model
    if writer is not None and writer.due(step):
        with meter.paused():  # writing a snapshot (and its validation score) is not training
            writer.write(step, model, heads, run.optimizer, run.scheduler, run.history)
    if stop_requested(stop.signal is not None, run.world, run.device):
        meter.bar.close()
        if run.output is None:
            raise KeyboardInterrupt
        if writer is not None:
            writer.write(step, model, heads, run.optimizer, run.scheduler, run.history, record=False)
        raise TrainingInterrupted(snapshot_path(run_folder(run.output), step))
