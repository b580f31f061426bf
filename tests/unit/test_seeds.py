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

