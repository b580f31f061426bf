"""aecluster/schedule.py: the optimizer and the warm-up + cosine learning-rate schedule."""

import math

import pytest
import torch

from aecluster.registry import TrainSettings
from aecluster.schedule import make_optimizer, make_scheduler, reference_state, warmup_cosine


def test_warmup_epochs_set_the_linear_warmup_then_cosine():
    from aecluster.schedule import warmup_cosine

    assert [warmup_cosine(step, 100, 10) for step in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert warmup_cosine(99, 100, 10) < 0.01 and warmup_cosine(0, 100) == 0.1


def test_after_the_warmup_the_factor_falls_along_half_a_cosine_to_zero():
    # 110 steps, 10 of warm-up: the cosine runs over the 100 after them.
    assert warmup_cosine(10, 110, 10) == 1.0
    assert warmup_cosine(35, 110, 10) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert warmup_cosine(60, 110, 10) == pytest.approx(0.5)
    assert warmup_cosine(110, 110, 10) == pytest.approx(0.0) == warmup_cosine(500, 110, 10)


def test_the_default_warmup_is_a_tenth_of_the_steps_and_at_least_one():
    assert [warmup_cosine(step, 50) for step in range(5)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert warmup_cosine(0, 5) == 1.0  # a tenth of 5 steps is no step: one step of warm-up
    assert warmup_cosine(0, 100, 0) == 1.0


@pytest.mark.parametrize("optimizer, kind", [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])
def test_the_optimizer_takes_the_settings_values(optimizer, kind):
    settings = TrainSettings(optimizer=optimizer, lr=0.05, momentum=0.8, weight_decay=0.01)
    made = make_optimizer(settings, [torch.nn.Parameter(torch.zeros(2))])
    group = made.param_groups[0]
    assert type(made) is kind and group["lr"] == 0.05 and group["weight_decay"] == 0.01
    assert ("momentum" in group) == (optimizer == "sgd") and group.get("momentum", 0.8) == 0.8


def test_the_scheduler_sets_the_learning_rate_to_the_factor_times_the_base_rate():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.2)
    scheduler = make_scheduler(optimizer, total_steps=20, warmup_steps=4)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    cosine = [(1 + math.cos(math.pi * k / 16)) / 2 for k in range(4)]
    assert rates == pytest.approx([0.2 * f for f in (0.25, 0.5, 0.75, 1.0, *cosine)])


def test_the_reference_state_is_that_of_one_step():
    optimizer_state, scheduler_state = reference_state(TrainSettings(optimizer="sgd"))
    assert set(optimizer_state) == {"state", "param_groups"} and optimizer_state["param_groups"][0]["lr"] == 1e-3
    assert "momentum_buffer" in optimizer_state["state"][0]
    assert scheduler_state["last_epoch"] == 1
    adamw_state, _ = reference_state(TrainSettings())
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(adamw_state["state"][0])


@pytest.mark.parametrize("warmup", [10, 13, 14, 20])
def test_a_warm_up_as_long_as_the_run_or_longer_rises_linearly_then_holds_the_peak(warmup):
    total = 10
    assert [warmup_cosine(step, total, warmup) for step in range(warmup)] == [
        (step + 1) / warmup for step in range(warmup)]
    assert [warmup_cosine(step, total, warmup) for step in range(warmup, warmup + 5)] == [1.0] * 5


def test_a_shorter_warm_up_is_followed_by_a_cosine_decay_to_zero_held_after_the_run():
    # warm-up 4 of 10 steps: t = (step - 4) / 6 after it
    values = [warmup_cosine(step, 10, 4) for step in range(13)]
    expected = [0.25, 0.5, 0.75, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(7)] + [0.0, 0.0]
    assert values == pytest.approx(expected, abs=1e-12)
    assert values[7] == pytest.approx(0.5)
