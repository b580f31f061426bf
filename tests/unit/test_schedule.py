"""aecluster/schedule.py: the optimizer and the warm-up + cosine learning-rate schedule."""


def test_warmup_epochs_set_the_linear_warmup_then_cosine():
    from aecluster.schedule import warmup_cosine

    assert [warmup_cosine(step, 100, 10) for step in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert warmup_cosine(99, 100, 10) < 0.01 and warmup_cosine(0, 100) == 0.1

