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
    """Learning-rate factor: linear warm-up (default the first 10% of steps), then cosine decay to 0.

    Parameters
    ----------
    step : int
        The step, counted from 0.
    total : int
        The steps of the whole run.
    warmup_steps : int, optional
        Steps of the warm-up; None for 10% of `total`. At least one step warms up either way.

    Returns
    -------
    float
        The factor of the peak learning rate: (step + 1) / warm-up steps during the warm-up, then
        0.5 * (1 + cos(pi * t)) with t going from 0 at the warm-up's end to 1 at `total` (and held
        there after it). A warm-up that lasts to `total` or beyond leaves no decay: after it the
        factor stays 1.
    """
    warm = max(1, int(total * 0.1) if warmup_steps is None else warmup_steps)
    if step < warm:
        return (step + 1) / warm
    decay = total - warm
    if decay <= 0:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(step - warm, decay) / decay))


def make_optimizer(settings: TrainSettings, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum (SimCLR's choice at large batches), with the settings' decay.

    Parameters
    ----------
    settings : TrainSettings
        Reads `optimizer` ("sgd", or anything else for AdamW), `lr`, `weight_decay` and, for SGD,
        `momentum`.
    parameters : iterable of torch.nn.Parameter
        The parameters to train.

    Returns
    -------
    torch.optim.Optimizer
        The optimizer, at the peak learning rate `settings.lr`.
    """
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                   warmup_steps: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """The `warmup_cosine` schedule of `optimizer` over `total_steps` steps.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer whose learning rate is scaled.
    total_steps : int
        The steps of the whole run.
    warmup_steps : int, optional
        Steps of the warm-up; None for 10% of `total_steps`.

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
        The schedule, to step once per training step.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(warmup_cosine, total=total_steps, warmup_steps=warmup_steps))


def reference_state(settings: TrainSettings) -> tuple[dict, dict]:
    """What the optimizer and the schedule of a run with `settings` save, for one parameter of
    one value after one step: the keys and kinds of values a snapshot's saved states must have
    (those of this torch version).

    Parameters
    ----------
    settings : TrainSettings
        The run's settings (`make_optimizer`).

    Returns
    -------
    optimizer_state : dict
        The optimizer's `state_dict` after one step.
    scheduler_state : dict
        The schedule's `state_dict` after one step.
    """
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = make_optimizer(settings, [parameter])
    scheduler = make_scheduler(optimizer, 1)
    parameter.grad = torch.zeros(1)
    optimizer.step()
    scheduler.step()
    return optimizer.state_dict(), scheduler.state_dict()
