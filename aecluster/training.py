"""The training loop: reconstruction (optionally denoising and contrastive) objectives.

All randomness of a step derives from (seed, step): the epoch's shuffling from
`default_rng([seed, epoch])`, augmentation and noise from a generator seeded with the step.
A snapshot therefore resumes to exactly the weights an uninterrupted run reaches.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aecluster.atomic import atomic_path, check_writable
from aecluster.augment import augment
from aecluster.checkpoint import (
    deployable_payload,
    make_payload,
    model_from_payload,
    read_checkpoint,
    save_checkpoint,
)
from aecluster.data import compute_in_batches, to_tensor
from aecluster.errors import UserInputError
from aecluster.models import REGISTRY, Autoencoder, build_model, get_spec, model_config


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (each registered model ships its own defaults)."""

    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64
    augment: str = "none"
    view_size: int = 32
    noise: float = 0.0
    contrastive_weight: float = 0.0
    temperature: float = 0.5
    weight_decay: float = 0.0
    distill_weight: float = 0.0
    distill_originals: int = 0
    distill_loss: str = "similarity"
    distill_maps: float = 0.0
    seed: int = 0
    snapshots: int = 10

    @classmethod
    def for_model(cls, name: str, **overrides: Any) -> TrainSettings:
        """The registered defaults of `name`, with non-None overrides applied."""
        values = {**REGISTRY[name].training, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)


def warmup_cosine(step: int, total: int, warmup: float = 0.1) -> float:
    """Learning-rate factor: linear warm-up over the first 10% of steps, then cosine decay to 0."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020, arXiv:2002.05709)."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    size = z1.shape[0]
    targets = torch.cat([torch.arange(size, 2 * size), torch.arange(size)]).to(z.device)
    return F.cross_entropy(logits, targets)


def similarity_distillation(student_codes: torch.Tensor, teacher_codes: torch.Tensor) -> torch.Tensor:
    """Relational knowledge distillation: match the batch's pairwise cosine-similarity matrices.

    Similarity-preserving KD (Tung & Mori 2019, arXiv:1907.09682): clustering only reads the
    geometry of the codes, so the student copies that geometry rather than the teacher's
    coordinates, and student and teacher codes may have different sizes.
    """
    student = F.normalize(student_codes, dim=1)
    teacher = F.normalize(teacher_codes, dim=1)
    return F.mse_loss(student @ student.T, teacher @ teacher.T)


def code_distillation(student_codes: torch.Tensor, teacher_codes: torch.Tensor) -> torch.Tensor:
    """Feature distillation on the unit sphere: each image's L2-normalised code is pulled onto the
    teacher's, (1 - cosine) per image. Matching every code fixes the similarities of all pairs,
    not only of those that share a batch; it needs codes of the teacher's size."""
    return (1 - F.cosine_similarity(student_codes, teacher_codes, dim=1)).mean()


def map_distillation(student_maps: torch.Tensor, teacher_maps: torch.Tensor) -> torch.Tensor:
    """Hint-based distillation of the latent map (FitNets, Romero et al. 2015, arXiv:1412.6550):
    each image's whole C x H x W map is pulled onto the direction of the teacher's. The pooled
    code that clustering reads is the map's mean, so this passes on where in the image each
    feature fires as well, 16 times the signal of the code alone at 4 x 4."""
    return code_distillation(student_maps.flatten(1), teacher_maps.flatten(1))


DISTILL_LOSSES = {"similarity": similarity_distillation, "codes": code_distillation}


def training_loss(
    model: torch.nn.Module, batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
    teacher: Autoencoder | None = None, teacher_maps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """(total loss, reconstruction MSE) for one batch.

    Denoising (Vincent et al. 2008): the encoder sees the view plus Gaussian noise, the decoder
    must return the clean view. With `contrastive_weight` > 0 a second view is drawn and both
    views' projections are pulled together by NT-Xent, while both are also reconstructed.
    With a `teacher`, the similarities of its codes of the clean views are distilled into the
    model's. `teacher_maps`, the teacher's latent maps of the first `distill_originals` images of
    the batch as given (full size, unaugmented: what clustering encodes; no flip averaging),
    has the similarities of their pooled codes distilled too, and with `distill_maps` > 0 the
    maps themselves.
    """
    views = [augment(batch, settings.augment, generator, settings.view_size)]
    if settings.contrastive_weight > 0:
        views.append(augment(batch, settings.augment, generator, settings.view_size))
    clean = torch.cat(views)
    noisy = clean
    if settings.noise > 0:
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        noisy = clean + settings.noise * noise
    codes, reconstruction, projection = model(noisy)
    mse = F.mse_loss(reconstruction, clean)
    loss = mse
    if settings.contrastive_weight > 0:
        z1, z2 = projection.chunk(2)
        loss = loss + settings.contrastive_weight * nt_xent(z1, z2, settings.temperature)
    if teacher is not None and settings.distill_weight > 0:
        relational = DISTILL_LOSSES[settings.distill_loss]
        with torch.no_grad():
            teacher_codes = teacher.encode_as_given(clean)
        loss = loss + settings.distill_weight * relational(codes, teacher_codes)
        if teacher_maps is not None:
            teacher_maps = teacher_maps.float()
            encoder = getattr(model, "module", model).encoder  # the model itself under DistributedDataParallel
            student_maps = encoder.feature_map(batch[: len(teacher_maps)])
            loss = loss + settings.distill_weight * relational(encoder.pool(student_maps),
                                                               teacher.encoder.pool(teacher_maps))
            if settings.distill_maps > 0:
                loss = loss + settings.distill_maps * map_distillation(student_maps, teacher_maps)
    return loss, float(mse.detach())


def latent_map_shape(model: Autoencoder) -> tuple[int, ...]:
    """(C, H, W) of the latent map the model's encoder makes of a 32x32 image (in eval mode, so
    that no BatchNorm statistics move)."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probe = torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device)
            return tuple(model.encoder.feature_map(probe).shape[1:])
    finally:
        model.train(training)


def latent_maps(model: Autoencoder, images: np.ndarray, device: torch.device, batch_size: int = 512,
                progress: bool = False) -> torch.Tensor:
    """The model's latent maps of uint8 images as given, float16 (N,C,H,W) on `device`.

    A teacher's maps of the training images never change, so a student's distillation computes
    them once instead of in every epoch (a tenth of a student's step on two CPU cores).
    """
    model = model.to(device).eval()
    return compute_in_batches(lambda batch: model.encoder.feature_map(batch).half(), images, device,
                              batch_size, progress, desc="teacher maps")


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training; `snapshot` is the file to `--resume` from."""

    def __init__(self, snapshot: Path) -> None:
        super().__init__(f"training interrupted; resume with --resume {snapshot}")
        self.snapshot = snapshot


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless torch.distributed is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> str | None:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPUs); return the device.

    Returns None when not launched by torchrun (WORLD_SIZE unset or 1).
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return "cpu"


def shutdown_distributed() -> None:
    """Leave the process group together: wait for every process (rank 0 may still be writing),
    then close it, so that no process exits while another still talks to it (gloo aborts then)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def stop_requested(local: bool, world: int, device: torch.device) -> bool:
    """Whether any process got a stop signal (all processes must leave the loop together)."""
    if world == 1:
        return local
    import torch.distributed as dist

    flag = torch.tensor([1.0 if local else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def run_folder(output: Path) -> Path:
    """Where the snapshots and history of a run that ends in `output` live: OUT_run/ beside it."""
    return output.with_name(output.stem + "_run")


class Trainer:
    """Trains a registered autoencoder on uint8 images and writes snapshots, history and OUT.

    `evaluate`, when given, maps a model to a validation accuracy recorded in the history at each
    snapshot. It is recorded only: nothing in training reads it.

    A model whose registry entry names a teacher is distilled from it: unless `teacher` is given,
    the teacher is trained first with its own defaults and the same seed (into
    OUT_run/teacher.pth, reused by a later run or `--resume` with the same settings). A model whose entry sets
    `deploy_weights` has OUT written encoder-only in that weight format; snapshots stay complete.
    """

    def __init__(
        self, model_name: str, settings: TrainSettings, recipe: dict[str, Any] | None = None,
        device: str | None = None, progress: bool = True,
        evaluate: Callable[[Autoencoder], float] | None = None,
        teacher: Autoencoder | None = None, config: dict[str, Any] | None = None,
    ) -> None:
        get_spec(model_name)
        self.model_name = model_name
        self.settings = settings
        self.recipe = dict(recipe or REGISTRY[model_name].recipe)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.progress = progress
        self.evaluate = evaluate
        self.config = {**model_config(model_name), **(config or {})}
        self.teacher = self._checked(teacher).eval().to(self.device) if teacher is not None else None

    def _checked(self, teacher: Autoencoder) -> Autoencoder:
        """The teacher, if the distillation loss can compare its codes with the student's."""
        if self.settings.distill_loss not in DISTILL_LOSSES:
            raise UserInputError(f"unknown distillation loss {self.settings.distill_loss!r}; "
                                 f"choose one of {', '.join(DISTILL_LOSSES)}")
        student = build_model(self.model_name, self.config)
        if self.settings.distill_loss == "codes" and teacher.code_dim != student.code_dim:
            raise UserInputError(f"--distill-loss codes: the student's codes have {student.code_dim} dimensions, "
                                 f"the teacher's {teacher.code_dim}; use 'similarity'")
        if self.settings.distill_maps > 0:
            shapes = ["x".join(map(str, latent_map_shape(model))) for model in (student, teacher)]
            if shapes[0] != shapes[1]:
                raise UserInputError(f"--distill-maps: the student's latent map is {shapes[0]}, the teacher's "
                                     f"{shapes[1]}; use --distill-maps 0 or a student of the teacher's width")
        return teacher

    def _registered_teacher(self, images: np.ndarray, folder: Path | None) -> Autoencoder | None:
        """The teacher the registry names for this model: the one in `folder` if it was trained
        with the same settings (seed included), else one trained now (and saved there)."""
        name = get_spec(self.model_name).teacher
        if self.teacher is not None or name is None:
            return self.teacher
        settings = TrainSettings.for_model(name, seed=self.settings.seed)
        path = folder / "teacher.pth" if folder is not None else None
        if path is not None and path.is_file():
            payload = read_checkpoint(path)
            if TrainSettings(**payload.get("settings", {})) == settings:
                return self._checked(model_from_payload(payload, str(path))).to(self.device)
        trained = Trainer(name, settings, device=str(self.device), progress=self.progress).fit(images, path)
        return self._checked(trained).eval().to(self.device)

    def _snapshot_payload(self, model: Autoencoder, optimizer: Any, scheduler: Any, step: int,
                          steps_per_epoch: int, history: dict[str, Any]) -> dict[str, Any]:
        return make_payload(
            model, self.model_name, self.config, self.recipe,
            epoch=step / steps_per_epoch,
            extra={"step": step, "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "settings": asdict(self.settings),
                   "history": history},
        )

    def fit(self, images: np.ndarray, output: str | Path | None = None,
            resume: str | Path | None = None) -> Autoencoder:
        """Train on `images` (N,32,32,3 uint8) and return the model.

        With `output`, also write OUT, and snapshots plus history.json in OUT_run/ beside it.
        Under `torchrun` (torch.distributed initialised) each process trains on its share of
        every batch through DistributedDataParallel, and rank 0 alone writes files.
        """
        settings = self.settings
        rank, world = distributed_rank()
        batch_size = min(settings.batch_size, len(images))
        steps_per_epoch = len(images) // batch_size
        total_steps = settings.epochs * steps_per_epoch
        snapshot_steps = {max(1, round(total_steps * k / settings.snapshots))
                          for k in range(1, settings.snapshots + 1)}
        folder = None
        if output is not None:
            output = Path(output)
            check_writable(output)
            folder = run_folder(output)
            folder.mkdir(exist_ok=True)
        writes = folder is not None and rank == 0
        teacher = self._registered_teacher(images, folder)
        teacher_maps = None
        if teacher is not None and settings.distill_weight > 0 and settings.distill_originals > 0:
            teacher_maps = latent_maps(teacher, images, self.device, progress=self.progress and rank == 0)

        torch.manual_seed(settings.seed)
        model = build_model(self.model_name, self.config).to(self.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, total=total_steps))
        history: dict[str, Any] = {"model": self.model_name, "settings": asdict(settings),
                                   "epochs": [], "checkpoints": []}
        start = 0
        if resume is not None:
            start, history = self._restore(resume, model, optimizer, scheduler, total_steps)
        stepper = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            stepper = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=start, disable=not self.progress or rank != 0, unit="step",
                   desc=f"train {self.model_name}", dynamic_ncols=True)
        model.train()
        epoch_mse, epoch_start, seen, tick = [], time.perf_counter(), 0, time.perf_counter()
        order = None
        with _StopRequest() as stop:
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
                loss, mse = training_loss(stepper, batch, settings, generator, teacher, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                epoch_mse.append(mse)
                seen += len(indices) * world
                rate = seen / max(time.perf_counter() - tick, 1e-9)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.detach().item():.4f}", mse=f"{mse:.4f}",
                                img_s=f"{rate:.0f}")
                bar.update()
                if position == steps_per_epoch - 1:
                    history["epochs"].append({"epoch": epoch + 1, "train_mse": float(np.mean(epoch_mse)),
                                              "seconds": time.perf_counter() - epoch_start,
                                              "images_per_second": rate})
                    epoch_mse, epoch_start = [], time.perf_counter()
                if writes and step + 1 in snapshot_steps:
                    self._save_snapshot(folder, model, optimizer, scheduler, step + 1, steps_per_epoch, history)
                if stop_requested(stop.signal is not None, world, self.device):
                    bar.close()
                    if folder is None:
                        raise KeyboardInterrupt
                    path = folder / f"step_{step + 1:07d}.pth"
                    if writes:
                        self._save_snapshot(folder, model, optimizer, scheduler, step + 1, steps_per_epoch,
                                            history, record=False)
                    raise TrainingInterrupted(path)
        bar.close()
        model.eval()
        if writes:
            payload = make_payload(model.cpu(), self.model_name, self.config, self.recipe,
                                   epoch=settings.epochs, extra={"settings": asdict(settings)})
            weights = get_spec(self.model_name).deploy_weights
            save_checkpoint(output, deployable_payload(payload, weights) if weights else payload)
        return model.cpu()

    def _save_snapshot(self, folder: Path, model: Autoencoder, optimizer: Any, scheduler: Any,
                       step: int, steps_per_epoch: int, history: dict[str, Any],
                       record: bool = True) -> Path:
        path = folder / f"step_{step:07d}.pth"
        if record:
            entry: dict[str, Any] = {"epoch": step / steps_per_epoch, "step": step, "path": path.name}
            if self.evaluate is not None:
                model.eval()
                entry["val_acc"] = float(self.evaluate(model))
                model.train()
            history["checkpoints"].append(entry)
        save_checkpoint(path, self._snapshot_payload(model, optimizer, scheduler, step, steps_per_epoch, history))
        with atomic_path(folder / "history.json") as temporary:
            temporary.write_text(json.dumps(history, indent=2))
        return path

    def _restore(self, resume: str | Path, model: Autoencoder, optimizer: Any, scheduler: Any,
                 total_steps: int) -> tuple[int, dict[str, Any]]:
        payload = read_checkpoint(resume)
        if "optimizer" not in payload or "step" not in payload:
            raise UserInputError(f"{resume}: not a training snapshot (no optimizer state); "
                                 "resume from a file in the run folder")
        if payload["model"] != self.model_name:
            raise UserInputError(f"{resume}: snapshot of model {payload['model']!r}, "
                                 f"but --model is {self.model_name!r}")
        restored = model_from_payload(payload, str(resume))
        model.load_state_dict(restored.state_dict())
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        step = int(payload["step"])
        if step > total_steps:
            raise UserInputError(f"{resume}: snapshot is at step {step}, beyond this run's {total_steps} steps")
        return step, payload["history"]
