"""The training loop: each step draws the batch, renders its views, sums the objectives and steps.

All randomness of a step derives from (seed, step): the epoch's shuffling from
`default_rng([seed, epoch])`, augmentation and noise from a generator seeded with the step.
A snapshot therefore resumes to exactly the weights an uninterrupted run reaches. The
objectives are in `objectives`, snapshots in `snapshots`, processes and signals in
`distributed`, and the teacher -> student order of stages in `stages`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
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
from aecluster.models import Autoencoder, build_model, latent_map_shape
from aecluster.objectives import OBJECTIVES, Step, active_objectives
from aecluster.registry import TrainSettings, get_spec, model_config
from aecluster.schedule import make_optimizer, make_scheduler
from aecluster.snapshots import (
    Snapshot,
    TrainingInterrupted,
    open_snapshot,
    restore,
    run_folder,
    save_snapshot,
    snapshot_path,
)


def epoch_batches(n_images: int, settings: TrainSettings) -> tuple[int, int]:
    """The batch size and the number of steps of an epoch on `n_images` images: a batch larger
    than the data shrinks to it, and the last, partial batch is dropped."""
    batch_size = min(settings.batch_size, n_images)
    return batch_size, n_images // batch_size


def about(seconds: float) -> str:
    """A duration as the plan prints it: "about 40 s", "about 12 min", "about 31 h"."""
    if seconds >= 2 * 3600:
        return f"about {seconds / 3600:.0f} h"
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def pace_line(name: str, epoch: int, epochs: int, steps_run: int, seconds: float, steps_left: int,
              full_epoch: bool = True) -> str:
    """The line a run prints at its first epoch's end: what that epoch took and, at its pace, how
    long the `steps_left` will take (the plan's estimate, refreshed from measured time).
    `full_epoch` is False when a resumed run ran only the epoch's last `steps_run` steps."""
    done = f"epoch {epoch} of {epochs}" if full_epoch else f"the last {steps_run} steps of epoch {epoch} of {epochs}"
    return f"train {name!r}: {done} took {seconds:.0f} s: {about(seconds / steps_run * steps_left)} left"


def view_count(settings: TrainSettings) -> int:
    """Augmented views per image: `views`, else two with NT-Xent (it pairs them) and one without."""
    if settings.views is not None:
        return settings.views
    return 2 if settings.contrastive_weight > 0 else 1


class Learner(nn.Module):
    """The model plus the objectives' trainable heads: one module for the optimizer and for
    DistributedDataParallel, whose forward is the model's."""

    def __init__(self, model: Autoencoder, heads: nn.ModuleDict) -> None:
        super().__init__()
        self.model = model
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        return self.model(x)


def training_step(
    learner: nn.Module, batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
    objectives: list[str], teacher: Autoencoder | None = None, teacher_maps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted total loss, each objective's value) for one batch.

    Denoising (Vincent et al. 2008): the encoder sees the views plus Gaussian noise, the decoder
    must return the clean views.
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
    step = Step(inner.model.encoder, batch, clean, codes, reconstruction, projection, teacher, teacher_maps)
    parts = {name: OBJECTIVES[name](step, settings, inner.heads[name] if name in inner.heads else None)
             for name in objectives}
    loss = sum(getattr(settings, OBJECTIVES[name].weight) * value for name, value in parts.items())
    return loss, {name: float(value.detach()) for name, value in parts.items()}


def latent_maps(model: Autoencoder, images: np.ndarray, device: torch.device, batch_size: int = 512,
                progress: bool = False) -> torch.Tensor:
    """The model's latent maps of uint8 images as given, float16 (N,C,H,W) on `device`.

    A teacher's maps of the training images never change, so a student's distillation computes
    them once instead of in every epoch (a tenth of a student's step on two CPU cores).
    """
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encoder.feature_map(batch).half(), images, device,
                              batch_size, progress, desc="teacher maps")


def diverged(where: str, settings: TrainSettings, output: str | Path | None) -> UserInputError:
    """The one-line error of a run whose loss or weights stopped being finite (no OUT written)."""
    written = (f"; {output} was not written (snapshots in {run_folder(output)}/ may hold the diverged weights)"
               if output is not None else "")
    return UserInputError(f"training diverged {where}{written}; train again with a lower learning rate "
                          f"(this run's: {settings.lr:g})")


class Trainer:
    """Trains a registered autoencoder on uint8 images and writes snapshots, history and OUT.

    `evaluate`, when given, maps a model to a validation accuracy recorded in the history at each
    snapshot. It is recorded only: nothing in training reads it. With a `teacher` (a trained
    model), the settings' distillation objectives apply; without one they are off. A model whose
    config sets `deploy_weights` has OUT written encoder-only in that weight format; snapshots
    keep the full model (the newest also what resuming needs). On CUDA the forward pass runs
    under bf16 autocast in channels-last layout.
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
        """The teacher, if the distillation objectives can compare its codes and maps with the student's."""
        student = build_model(self.model_name, self.config)
        settings = self.settings
        if settings.distill_weight > 0 and settings.distill_loss == "codes" and teacher.code_dim != student.code_dim:
            raise UserInputError(f"--distill-loss codes: the student's codes have {student.code_dim} dimensions, "
                                 f"the teacher's {teacher.code_dim}; use 'similarity'")
        if settings.distill_maps > 0:
            shapes = ["x".join(map(str, latent_map_shape(model))) for model in (student, teacher)]
            if shapes[0] != shapes[1]:
                raise UserInputError(f"--distill-maps: the student's latent map is {shapes[0]}, the teacher's "
                                     f"{shapes[1]}; use --distill-maps 0 or a student of the teacher's width")
        return teacher

    def fit(self, images: np.ndarray, output: str | Path | None = None,
            resume: str | Path | Snapshot | None = None) -> Autoencoder:
        """Train on `images` (N,32,32,3 uint8) and return the model.

        With `output`, also write OUT, and snapshots plus history.json in OUT_run/ beside it.
        Under `torchrun` (torch.distributed initialised) each process trains on its share of
        every batch through DistributedDataParallel, and rank 0 alone writes files. `resume`
        continues from a snapshot: its path, or the `Snapshot` a caller already read.
        """
        settings = self.settings
        rank, world = distributed_rank()
        batch_size, steps_per_epoch = epoch_batches(len(images), settings)
        total_steps = settings.epochs * steps_per_epoch
        kept = min(settings.snapshots, total_steps)  # more snapshots than steps: one per step
        snapshot_steps = {max(1, round(total_steps * k / kept)) for k in range(1, kept + 1)}
        snapshot = open_snapshot(resume)
        fingerprint = {"images": images_digest(images),
                       "teacher": weights_digest(self.teacher) if self.teacher is not None else None}
        folder = None
        if output is not None:
            output = Path(output)
            check_writable(output)
            folder = run_folder(output)
        writes = folder is not None and rank == 0
        teacher = self.teacher
        objectives = active_objectives(settings, teacher is not None)
        torch.manual_seed(settings.seed)
        model = build_model(self.model_name, self.config)
        # Parts no objective trains are dropped, so that every parameter gets a gradient (as
        # DistributedDataParallel requires) and none is saved untrained.
        if "nt_xent" not in objectives:
            model.projector = None
        if "reconstruction" not in objectives:
            model.decoder = None
        heads = nn.ModuleDict({name: head for name in objectives
                               if (head := OBJECTIVES[name].head(model, teacher)) is not None})
        learner = Learner(model, heads).to(self.device)
        if self.device.type == "cuda":
            learner = learner.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(settings, learner.parameters())
        warmup = None if settings.warmup_epochs is None else round(settings.warmup_epochs * steps_per_epoch)
        scheduler = make_scheduler(optimizer, total_steps, warmup)
        history: dict[str, Any] = {"model": self.model_name, "settings": asdict(settings),
                                   "epochs": [], "checkpoints": []}
        start = 0
        if snapshot is not None:
            start, history = restore(snapshot, self.model_name, model, heads, optimizer, scheduler, total_steps,
                                     fingerprint)
        # The teacher's maps (an encoding of every image) come after a snapshot is known to fit.
        teacher_maps = None
        if any(OBJECTIVES[name].needs_teacher for name in objectives) and settings.distill_originals > 0:
            teacher_maps = latent_maps(teacher, images, self.device, progress=self.progress and rank == 0)
        stepper: nn.Module = learner
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            stepper = DistributedDataParallel(
                learner, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        autocast = (partial(torch.autocast, "cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                    else contextlib.nullcontext)

        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=start, disable=not self.progress or rank != 0, unit="step",
                   desc=f"train {self.model_name}", dynamic_ncols=True)
        learner.train()
        epoch_mse, epoch_start, seen, tick = [], time.perf_counter(), 0, time.perf_counter()
        # The first epoch's end refreshes the plan's estimate with measured time (snapshots included).
        run_start, paced = tick, self.progress and rank == 0
        order = None

        fresh = start == 0  # the first snapshot of a fresh run replaces an earlier run's

        def save(step: int, record: bool = True) -> None:
            nonlocal fresh
            self._save_snapshot(folder, learner, optimizer, scheduler, step, steps_per_epoch, history, fingerprint,
                                record, replace_earlier_run=fresh)
            fresh = False

        with StopRequest() as stop:
            for step in range(start, total_steps):
                epoch, position = divmod(step, steps_per_epoch)
                if order is None or position == 0:
                    order = np.random.default_rng([settings.seed, epoch]).permutation(len(images))
                indices = np.sort(order[position * batch_size : (position + 1) * batch_size])[rank::world]
                batch = to_tensor(images[indices]).to(self.device)
                generator = torch.Generator().manual_seed((settings.seed * 1_000_003 + step) * world + rank)
                targets = None
                if teacher_maps is not None:
                    targets = teacher_maps[torch.from_numpy(indices[: settings.distill_originals]).to(self.device)]
                with autocast():
                    loss, parts = training_step(stepper, batch, settings, generator, objectives, teacher, targets)
                value = loss.detach().item()
                if any_process(not math.isfinite(value), world, self.device):
                    bar.close()
                    raise diverged(f"at step {step + 1} of {total_steps} (loss {value})", settings, output)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                mse = parts.get("reconstruction", 0.0)
                epoch_mse.append(mse)
                seen += len(indices) * world
                rate = seen / max(time.perf_counter() - tick, 1e-9)
                bar.set_postfix(epoch=epoch + 1, loss=f"{value:.4f}", mse=f"{mse:.4f}",
                                img_s=f"{rate:.0f}")
                bar.update()
                if position == steps_per_epoch - 1:
                    history["epochs"].append({"epoch": epoch + 1, "train_mse": float(np.mean(epoch_mse)),
                                              "seconds": time.perf_counter() - epoch_start,
                                              "images_per_second": rate})
                    epoch_mse, epoch_start = [], time.perf_counter()
                    if paced and step + 1 < total_steps:
                        paced = False
                        bar.write(pace_line(self.model_name, epoch + 1, settings.epochs, step + 1 - start,
                                            time.perf_counter() - run_start, total_steps - step - 1,
                                            full_epoch=step + 1 - start == steps_per_epoch), file=sys.stderr)
                if writes and step + 1 in snapshot_steps:
                    paused = time.perf_counter()
                    save(step + 1)
                    # Writing a snapshot (and the --val score) is not training: keep it out of the rates.
                    paused = time.perf_counter() - paused
                    tick, epoch_start = tick + paused, epoch_start + paused
                if stop_requested(stop.signal is not None, world, self.device):
                    bar.close()
                    if folder is None:
                        raise KeyboardInterrupt
                    if writes:
                        save(step + 1, record=False)
                    raise TrainingInterrupted(snapshot_path(folder, step + 1))
        bar.close()
        if world > 1:
            broadcast_buffers(learner)
        model = model.eval().cpu().to(memory_format=torch.contiguous_format)
        if not all(bool(torch.isfinite(tensor).all()) for tensor in model.state_dict().values()
                   if tensor.is_floating_point()):
            raise diverged("in its last step (weights are not finite)", settings, output)
        if writes:
            payload = make_payload(model, self.model_name, self.config, self.recipe,
                                   epoch=settings.epochs, extra={"settings": asdict(settings), **fingerprint})
            weights = get_spec(self.model_name).deploy_weights
            save_checkpoint(output, deployable_payload(payload, weights) if weights else payload)
        return model

    def _save_snapshot(self, folder: Path, learner: Learner, optimizer: Any, scheduler: Any, step: int,
                       steps_per_epoch: int, history: dict[str, Any], inputs: dict[str, str | None],
                       record: bool = True,
                       replace_earlier_run: bool = False) -> None:
        if record:
            entry: dict[str, Any] = {"epoch": step / steps_per_epoch, "step": step,
                                     "path": snapshot_path(folder, step).name}
            if self.evaluate is not None:
                learner.model.eval()
                entry["val_acc"] = float(self.evaluate(learner.model))
                learner.model.train()
            history["checkpoints"].append(entry)
        payload = make_payload(
            learner.model, self.model_name, self.config, self.recipe, epoch=step / steps_per_epoch,
            extra={"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "heads": learner.heads.state_dict(), "settings": asdict(self.settings), "history": history,
                   **inputs})
        save_snapshot(folder, step, payload, history, replace_earlier_run)
