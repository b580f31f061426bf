"""aecluster/seeds.py: the one integer seed a scikit-learn style `random_state` stands for."""

import numpy as np
import pytest

from aecluster.seeds import integer_seed


def test_integer_seed():
    assert integer_seed(7) == 7 and integer_seed(np.int64(7)) == 7
    assert integer_seed(np.random.RandomState(1)) == integer_seed(np.random.RandomState(1))
    assert 0 <= integer_seed(None) < 2**32
    with pytest.raises(ValueError, match="random_state -1"):
        integer_seed(-1)



def test_an_integer_is_its_own_seed_from_zero_to_two_to_the_32_less_one():
    assert [integer_seed(value) for value in (0, 2**32 - 1, np.uint32(5))] == [0, 2**32 - 1, 5]
    assert all(type(integer_seed(value)) is int for value in (np.int64(3), np.uint8(3)))
    with pytest.raises(ValueError, match=r"random_state 4294967296 is not a seed in 0\.\.4294967295"):
        integer_seed(2**32)


def test_a_random_state_gives_the_integer_it_draws_and_moves_on():
    state = np.random.RandomState(1)
    expected = np.random.RandomState(1).randint(2**32, dtype=np.int64, size=2)  # the same draws, made here
    assert [integer_seed(state), integer_seed(state)] == expected.tolist()


def test_none_draws_from_numpys_global_state():
    saved = np.random.get_state()
    try:
        np.random.seed(7)
        first = integer_seed(None)
        np.random.seed(7)
        assert integer_seed(None) == first and 0 <= first < 2**32
    finally:
        np.random.set_state(saved)


@pytest.mark.parametrize("random_state", ["0", 1.5, [1]])
def test_other_values_are_refused(random_state):
    with pytest.raises(ValueError):
        integer_seed(random_state)
