"""The optimizer and learning-rate schedule of a training run, built in one place: for the
trainer, and as the reference that a snapshot's saved optimizer and schedule are checked
against before a run resumes from it (`snapshots.check_resume_state`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial

import torch
from torch import nn

from aecluster.registry import TrainSettings


def warmup_cosine(step: int, total: int, warmup_steps: int | None = None) -> float:
    """Learning-rate factor: linear warm-up (default the first 10% of steps), then cosine decay to 0."""
    warm = max(1, int(total * 0.1) if warmup_steps is None else warmup_steps)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))


def make_optimizer(settings: TrainSettings, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum (SimCLR's choice at large batches), with the settings' decay."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                   warmup_steps: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """The `warmup_cosine` schedule of `optimizer` over `total_steps` steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(warmup_cosine, total=total_steps, warmup_steps=warmup_steps))


def reference_state(settings: TrainSettings) -> tuple[dict, dict]:
    """What the optimizer and the schedule of a run with `settings` save, for one parameter of
    one value after one step: the keys and kinds of values a snapshot's saved states must have
    (those of this torch version)."""
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = make_optimizer(settings, [parameter])
    scheduler = make_scheduler(optimizer, 1)
    parameter.grad = torch.zeros(1)
    optimizer.step()
    scheduler.step()
    return optimizer.state_dict(), scheduler.state_dict()
