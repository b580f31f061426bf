"""The learning-rate schedule (`aecluster.schedule.warmup_cosine`) against values worked out by hand."""

import math

import pytest

from aecluster.schedule import warmup_cosine


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
